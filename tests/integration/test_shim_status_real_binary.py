"""Status > AWS High Availability and the dashboard widget with the real binary's JSON (issue 15
point 3).

The PHP side (php-shim/tests/integration/StatusPageRealBinaryTest.php) renders the page and the
widget as php-fpm runs them, with pfSense stubbed, and `awsha --json status` / `history` run by
the real binary against moto (through the fault proxy), node A's IMDS emulator and fake ifconfig.
This side builds the scene and checks EC2 afterwards:

  * config.xml gets hostile descriptions (`<script>` and quotes in the WAN interface's and the
    wan@1 VIP's), the same as pfSense's PHP sees them (a JSON config for the stubs);
  * A fails over wan@1; lan@2 stays on B although A is MASTER of it: wan@1 green, lan@2 red;
  * "Reconcile now" (POST with pfSense's CSRF token, the wrapper started in the background as
    pfSense's mwexec_bg() does) repairs lan@2, and the page then shows the result and all green;
  * with lan@2 BACKUP on A, its line is grey.

`test_status_page_shows_the_last_failover_and_the_recent_runs` needs docs/contracts.md §13 in the
binary (`last_failover` in status, `awsha history --json`, `timeline`): it fails until the binary
has them.

moto: P1 (address move), P3 (AssociateAddress PrivateIpAddress), P4 (DescribeAddresses).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from awsha_scenario import LAN_VIP, Cloud, Node, Proxy, Scenario, awsha_bin
from shim_php import REPO, Shim, php_config

HOSTILE_IFACE = '<script>alert("wan")</script>'
HOSTILE_VIP = "\"><script>alert('vip')</script>"


def hostile(node: Node) -> None:
    node.config.interfaces["wan"]["descr"] = HOSTILE_IFACE
    node.config.vips[0]["descr"] = HOSTILE_VIP
    node.write_config()


def phpunit(node: Node, test_filter: str, expect: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shim = Shim(node)  # php present; the ini directory
    cfg = node.dir / "php-config.json"
    cfg.write_text(json.dumps(php_config(node)))
    env = dict(shim.env)
    env.pop("PHP_INI_SCAN_DIR", None)  # PHPUnit's bootstrap sets its own
    env.pop("AWSHA_STUB_LOG", None)
    env.update({
        "AWSHA_BIN": str(awsha_bin()),
        "AWSHA_TEST_SERVERS": "1",
        "AWSHA_TEST_RUN_DIR": str(node.run_dir),
        "AWSHA_TEST_PHP_CONFIG": str(cfg),
        "AWSHA_TEST_EXPECT": json.dumps(expect),
    })
    return subprocess.run(
        ["phpunit", "-c", str(REPO / "php-shim/tests/phpunit.xml"), "--filter", test_filter],
        env=env, cwd=str(node.dir), capture_output=True, text=True, timeout=180)


def ran(p: subprocess.CompletedProcess[str], n: int) -> None:
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert f"OK ({n} test" in out, f"the PHP tests must run, not be skipped\n{out}"


def test_status_page_and_widget_with_the_real_binary(scenario: Scenario, node_a: Node, cloud: Cloud,
                                                      proxy: Proxy) -> None:
    hostile(node_a)
    r = node_a.run("failover", "1@ena0", "--json")
    assert r.code == 0, r.describe()
    assert cloud.ip_holders(LAN_VIP) == [scenario.eni[("B", "lan")]]

    p = phpunit(node_a, "StatusPageRealBinaryTest::testPageAndWidgetShowTheRealStatus",
                {"wan@1": "green", "lan@2": "red"})
    ran(p, 1)
    assert proxy.mutating_counts().get("AssignPrivateIpAddresses") == 1, "the page and the widget only read"

    p = phpunit(node_a, "StatusPageRealBinaryTest::testReconcileNowRepairsAndShowsTheResult", {})
    ran(p, 1)
    assert cloud.ip_holders(LAN_VIP) == [node_a.eni("lan")], "Reconcile now moved lan@2 here"

    node_a.set_carp(2, "BACKUP")
    p = phpunit(node_a, "StatusPageRealBinaryTest::testPageAndWidgetShowTheRealStatus",
                {"wan@1": "green", "lan@2": "grey"})
    ran(p, 1)


def test_status_page_shows_the_last_failover_and_the_recent_runs(scenario: Scenario, node_a: Node,
                                                                 cloud: Cloud, proxy: Proxy) -> None:
    r = node_a.run("failover", "1@ena0", "--json")
    assert r.code == 0, r.describe()
    p = phpunit(node_a, "StatusPageRealBinaryTest::testLastFailoverAndRecentRunsFromTheRealBinary", {})
    ran(p, 1)
