"""The PHP shim driving the real binary (docs/contracts.md §12, issue 4): pfSense's CARP hook
`awsha_plugin_carp()` on rc.carpmaster → the `awsha-run` wrapper → `awsha --json failover 1@ena0`
against moto (through the fault proxy), node A's IMDS emulator and fake ifconfig.

The PHP side (php-shim/tests/integration/CarpRealBinaryAgainstMotoTest.php) checks the wrapper's
report and notices; this side starts the servers and checks in EC2 that the resources moved.
moto: P1 (address move), P3 (AssociateAddress PrivateIpAddress).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from awsha_scenario import DEFAULT_ROUTE, OTHER_ROUTE, WAN_VIP, Cloud, Node, Proxy, Scenario, awsha_bin

REPO = Path(__file__).resolve().parents[2]


def test_plugin_carp_moves_the_resources_with_the_real_binary(scenario: Scenario, node_a: Node,
                                                              cloud: Cloud, proxy: Proxy) -> None:
    phpunit = shutil.which("phpunit")
    if phpunit is None:
        pytest.fail("phpunit is not installed (Debian package phpunit; .ci/run installs it)")
    assert cloud.ip_holders(WAN_VIP) == [scenario.eni[("B", "wan")]], "starts on B"
    env = node_a.env({
        "AWSHA_BIN": str(awsha_bin()),
        "AWSHA_TEST_SERVERS": "1",
        "AWSHA_TEST_CARP_INTERFACE": "1@ena0",
    })
    env.pop("AWSHA_TEST_REAL_BIN", None)
    proc = subprocess.run(
        [phpunit, "-c", str(REPO / "php-shim/tests/phpunit.xml"), "--filter", "CarpRealBinaryAgainstMotoTest"],
        env=env, cwd=str(node_a.dir), capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "OK (1 test" in out, f"the PHP test must run, not be skipped\n{out}"

    assert cloud.ip_holders(WAN_VIP) == [node_a.eni("wan")]
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == node_a.eni("lan")
    assert cloud.route_target(scenario.rt2, OTHER_ROUTE) == node_a.eni("lan")
    assert cloud.eip(scenario.allocation) == (node_a.eni("wan"), WAN_VIP)
    assert cloud.tags(node_a.eni("wan")).get("awsha:instance") == node_a.instance_id
    counts = proxy.mutating_counts()
    assert counts.get("AssignPrivateIpAddresses") == 1 and counts.get("ReplaceRoute") == 2, counts
