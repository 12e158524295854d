"""The package's wrapper with the real binary (issue 12 point 3): notices on change.

`awsha-run failover 1@ena0` — the command pfSense's CARP hook starts — runs the real awsha against
moto (through the fault proxy), node A's IMDS emulator and fake ifconfig. The proxy refuses rt1's
ReplaceRoute twice (UnauthorizedOperation, which is not retried), then lets it through: the
failover fails twice, then succeeds. pfSense's side is the PHP shim's test stubs
(php-shim/tests/stubs: file_notice() with its unlocked queue, notify_all_remote() counted,
openlog/syslog captured); the wrapper runs as on pfSense, as its own PHP program.

It must file 1 + 1 notices: the failure once (the binary's own text), and one "resolved" when it
clears — not one per run — and send each to the remote channels once. A healthy reconcile after
that writes nothing to syslog and files nothing.
moto: P1 (address move), P3 (AssociateAddress PrivateIpAddress).
"""

from __future__ import annotations

import json

from awsha_scenario import DEFAULT_ROUTE, Cloud, Node, Proxy, Scenario
from shim_php import Shim, describe

LOG_WARNING = 4


def test_a_failure_twice_and_its_recovery_file_one_notice_each(scenario: Scenario, node_a: Node,
                                                               cloud: Cloud, proxy: Proxy) -> None:
    shim = Shim(node_a)

    # lan@2 first, so that the reconcile at the end has nothing of it to repair.
    p = shim.wrapper("failover", "2@ena1")
    assert p.returncode == 0, describe(p)

    proxy.rules([{"action": "ReplaceRoute", "params": {"RouteTableId": scenario.rt1}, "kind": "error",
                  "status": 403, "code": "UnauthorizedOperation",
                  "message": "You are not authorized to perform this operation.", "times": 2}])
    reports = []
    for expected in (1, 1, 0):
        p = shim.wrapper("failover", "1@ena0")
        assert p.returncode == expected, describe(p)
        reports.append(json.loads(p.stdout))
        if expected == 1:
            assert "UnauthorizedOperation" in p.stderr, "the binary's own log line, passed through"

    failed = [n for n in reports[0]["notices"] if n["level"] == "error"]
    assert [n["key"] for n in failed] == [f"failed:wan@1:route:{scenario.rt1}"], reports[0]
    assert [n["key"] for n in reports[1]["notices"] if n["level"] == "error"] == [failed[0]["key"]]

    filed = shim.calls("file_notice")
    assert len(filed) == 2, filed
    assert filed[0][:5] == ["awsha", f"awsha: {failed[0]['message']}", "AWS HA", "", 2], filed[0]
    assert filed[1][1].startswith("awsha: resolved (failover found it in order): "), filed[1]
    assert filed[1][1].endswith(failed[0]["message"]), filed[1]
    assert filed[1][4] == 0
    remote = [c[0] for c in shim.calls("notify_all_remote")]
    assert remote == [f[1] for f in filed], "each notice to the remote channels once"
    assert len(json.loads(shim.queue.read_text())) == 2

    state = json.loads((node_a.run_dir / "awsha.notices.json").read_text())
    assert state["conditions"] == {}, state
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == node_a.eni("lan")

    # The wrapper's own lines: one per failover, under the program name awsha; the failures at
    # notice (the binary logs them at error itself).
    lines = shim.syslog()
    assert [(c[0], c[1]) for c in lines] == [("awsha", 6), ("awsha", 5), ("awsha", 5), ("awsha", 6)], lines
    assert "notices: 1 new" in lines[1][2] and "notices: 1 resolved" in lines[3][2], lines

    # No credential of the instance profile in any notice or log line.
    creds = node_a.imds.credentials()
    secrets = [v for k, v in creds.items() if k in ("AccessKeyId", "SecretAccessKey", "Token") and v]
    assert secrets, creds
    for text in [f[1] for f in filed] + [c[2] for c in lines]:
        for secret in secrets:
            assert secret not in text

    # A healthy reconcile now: nothing to repair, nothing filed, nothing logged — by the wrapper
    # nor by the binary (its stderr mirrors its syslog lines at warning and above).
    shim.forget_calls()
    p = shim.wrapper("reconcile")
    assert p.returncode == 0, describe(p)
    report = json.loads(p.stdout)
    assert report["actions"] and all(a["status"] == "unchanged" for a in report["actions"]), report
    assert shim.calls("file_notice") == []
    assert [c for c in shim.calls("syslog") if c[1] <= LOG_WARNING] == []
    assert shim.calls("syslog") == [], "a reconcile with nothing to do is not logged every minute"
    assert "warning" not in p.stderr and "error" not in p.stderr, p.stderr
