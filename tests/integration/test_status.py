"""Integration tests of `awsha status`, written against the fixed contracts of docs/contracts.md
(§2 command line, §4 JSON report: `vhids`, and per action the added fields of §4.7 `state`,
`desired`, `actual`, `points_here`, `in_sync`, `last_writer`; §7 tags).

Owns: the required status tests. They drive the real binary (AWSHA_BIN, default target/debug/awsha)
against moto with fidelity patches, through the fault proxy, with one IMDS emulator and one fake
ifconfig per node (conftest.py and awsha_scenario.py: A advskew 0 and MASTER, B advskew 100 and
BACKUP, wan@1 and lan@2 initially on B). `status` only reads: every test also checks that it sent no
mutating request.

`in_sync` means: the resource points here exactly when this node is MASTER of its VHID
(docs/decisions.md "`status` statuses").

moto behaviour relied on (patches in tests/harness/moto_launcher.py): P1, P3 for the failovers that
set the scene; P4 (DescribeAddresses reports the associated private IP; the ENI filter on secondary
addresses) for what status reads. Plain moto: DescribeRouteTables, DescribeTags, ReplaceRoute,
CreateTags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from awsha_scenario import (
    LAN_VIP, MISSING_RTB, OTHER_ROUTE, WAN_VIP, Cloud, Node, Proxy, Scenario, check_report,
    failover_ok, parse_modified, wan1_on, wan1_where,
)

STATUS_FIELDS = ("state", "desired", "actual", "points_here", "in_sync")


def status(node: Node, code: int = 0) -> dict[str, Any]:
    """`awsha status --json` on `node`: exit `code`, the shape of docs/contracts.md §4, the status
    fields on every action, and in_sync = (points_here == (state == MASTER))."""
    r = node.run("status", "--json")
    assert r.code == code, r.describe()
    rep = check_report(r, "status")
    rep["_run"] = r
    assert isinstance(rep.get("vhids"), list), f"status lists `vhids`\n{r.describe()}"
    for a in rep["actions"]:
        if a["status"] == "failed":
            continue
        missing = [k for k in STATUS_FIELDS if k not in a]
        assert not missing, f"status action lacks {missing}: {a}\n{r.describe()}"
        assert isinstance(a["points_here"], bool) and isinstance(a["in_sync"], bool), a
        assert a["in_sync"] == (a["points_here"] == (a["state"] == "MASTER")), a
    return rep


def why(rep: dict[str, Any]) -> str:
    return rep["_run"].describe()


def states(rep: dict[str, Any]) -> dict[str, str]:
    return {v["vhid"]: v["state"] for v in rep["vhids"]}


def keyed(rep: dict[str, Any], scn: Scenario) -> dict[str, dict[str, Any]]:
    """The five actions keyed: wan-ip, rt1, rt2, eip, lan-ip."""
    out = {}
    for a in rep["actions"]:
        if a["kind"] == "ip":
            out["wan-ip" if a["vhid"] == "wan@1" else "lan-ip"] = a
        elif a["kind"] == "eip":
            out["eip"] = a
        else:
            out["rt1" if a["resource"] == scn.rt1 else "rt2"] = a
    assert sorted(out) == ["eip", "lan-ip", "rt1", "rt2", "wan-ip"], why(rep)
    return out


def take_over_everything(node: Node, cloud: Cloud, scn: Scenario) -> None:
    failover_ok(node, "wan@1")
    failover_ok(node, "lan@2")
    assert wan1_where(cloud, scn) == wan1_on(scn, node.name)
    assert cloud.ip_holders(LAN_VIP) == [node.eni("lan")]


def table_lines(text: str, *needles: str) -> list[str]:
    return [ln for ln in text.splitlines() if all(n in ln for n in needles)]


def table_row(text: str, vhid: str, kind: str, resource: str) -> list[str]:
    """The table rows whose first four columns are VHID, STATE, KIND, RESOURCE = these."""
    return [ln for ln in text.splitlines()
            if ln.split()[:4:2] == [vhid, kind] and ln.split()[3:4] == [resource]]


# ---- after a failover ---------------------------------------------------------------------------

def test_status_json_after_failover_on_master_and_backup(scenario: Scenario, node_a: Node,
                                                         node_b: Node, cloud: Cloud,
                                                         proxy: Proxy) -> None:
    take_over_everything(node_a, cloud, scenario)
    proxy.reset()

    rep = status(node_a)
    assert rep["instance"] == node_a.instance_id, why(rep)
    assert states(rep) == {"wan@1": "MASTER", "lan@2": "MASTER"}, why(rep)
    acts = keyed(rep, scenario)
    for k, a in acts.items():
        assert (a["state"], a["points_here"], a["in_sync"]) == ("MASTER", True, True), (k, a)
        w = a.get("last_writer")
        assert isinstance(w, dict), f"{k}: last_writer from the resource's awsha tags: {a}"
        assert (w["instance"], w["advbase"], w["advskew"], w["vhid"]) == (
            node_a.instance_id, 1, 0, a["vhid"]), (k, w)
        parse_modified(w["at"])
    # `actual` is what AWS points at now: this node's ENIs.
    assert node_a.eni("lan") in acts["rt1"]["actual"] and node_a.eni("lan") in acts["rt2"]["actual"]
    assert node_a.eni("wan") in acts["eip"]["actual"] and WAN_VIP in acts["eip"]["actual"]
    assert node_a.eni("lan") in acts["rt1"]["desired"], acts["rt1"]
    for res, key in ((scenario.rt1, "rt1"), (scenario.allocation, "eip"),
                     (node_a.eni("wan"), "wan-ip")):
        assert acts[key]["last_writer"]["at"] == cloud.tags(res)["awsha:modified"], key

    rep = status(node_b)
    assert rep["instance"] == node_b.instance_id, why(rep)
    assert states(rep) == {"wan@1": "BACKUP", "lan@2": "BACKUP"}, why(rep)
    acts = keyed(rep, scenario)
    for k, a in acts.items():
        assert (a["state"], a["points_here"], a["in_sync"]) == ("BACKUP", False, True), (k, a)
    # B sees the same last writer (A), from the same tags.
    assert acts["rt2"]["last_writer"]["instance"] == node_a.instance_id, acts["rt2"]
    assert node_a.eni("lan") in acts["rt2"]["actual"], acts["rt2"]
    assert acts["eip"]["last_writer"]["advskew"] == 0, acts["eip"]

    assert proxy.mutating_counts() == {}, f"status reads only: {proxy.mutating_counts()}"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")


def test_status_shows_a_stolen_route_out_of_sync(ec2: Any, scenario: Scenario, node_a: Node,
                                                 node_b: Node, cloud: Cloud,
                                                 proxy: Proxy) -> None:
    take_over_everything(node_a, cloud, scenario)
    # B steals rt2's route (as B's awsha would: move it, then tag it with B's stamp).
    ec2.replace_route(RouteTableId=scenario.rt2, DestinationCidrBlock=OTHER_ROUTE,
                      NetworkInterfaceId=node_b.eni("lan"))
    stamp = {"awsha:modified": "2026-11-26T10:00:00.123Z", "awsha:advbase": "1",
             "awsha:advskew": "100", "awsha:instance": node_b.instance_id, "awsha:vhid": "wan@1"}
    ec2.create_tags(Resources=[scenario.rt2],
                    Tags=[{"Key": k, "Value": v} for k, v in stamp.items()])
    proxy.reset()

    rep = status(node_a)
    acts = keyed(rep, scenario)
    rt2 = acts["rt2"]
    assert (rt2["state"], rt2["points_here"], rt2["in_sync"]) == ("MASTER", False, False), rt2
    assert rt2["actual"] == node_b.eni("lan"), rt2
    assert (rt2["last_writer"]["instance"], rt2["last_writer"]["advskew"],
            rt2["last_writer"]["at"]) == (node_b.instance_id, 100, stamp["awsha:modified"]), rt2
    for k in ("wan-ip", "rt1", "eip", "lan-ip"):
        assert acts[k]["in_sync"] is True, (k, acts[k])

    rep = status(node_b)
    rt2 = keyed(rep, scenario)["rt2"]
    assert (rt2["state"], rt2["points_here"], rt2["in_sync"]) == ("BACKUP", True, False), rt2

    # The human table on A: the VHID, the stolen route marked NO, the others yes.
    r = node_a.run("status")
    assert r.code == 0, r.describe()
    stolen = table_row(r.stdout, "wan@1", "route", scenario.rt2)
    assert len(stolen) == 1 and re.search(r"\bNO\b", stolen[0]), r.describe()
    assert node_b.eni("lan") in stolen[0] and node_b.instance_id in stolen[0], stolen
    for kind, res in (("route", scenario.rt1), ("ip", node_a.eni("wan")),
                      ("eip", scenario.allocation)):
        row = table_row(r.stdout, "wan@1", kind, res)
        assert len(row) == 1 and re.search(r"\byes\b", row[0]), (kind, r.describe())
    row = table_row(r.stdout, "lan@2", "ip", node_a.eni("lan"))
    assert len(row) == 1 and re.search(r"\byes\b", row[0]), r.describe()

    assert proxy.mutating_counts() == {}, f"status reads only: {proxy.mutating_counts()}"
    assert cloud.route_target(scenario.rt2, OTHER_ROUTE) == node_b.eni("lan"), "status changed it"


def test_status_human_table_after_failover(scenario: Scenario, node_a: Node, cloud: Cloud,
                                           proxy: Proxy, tmp_path: Path) -> None:
    take_over_everything(node_a, cloud, scenario)
    proxy.reset()
    r = node_a.run("status")
    assert r.code == 0, r.describe()
    # Kept for docs/status-example.txt (copied from a real run of this test).
    (tmp_path / "status-example.txt").write_text(r.stdout)
    lines = r.stdout.splitlines()
    assert node_a.instance_id in r.stdout, r.describe()
    for kind, res in (("ip", node_a.eni("wan")), ("route", scenario.rt1),
                      ("route", scenario.rt2), ("eip", scenario.allocation)):
        row = table_row(r.stdout, "wan@1", kind, res)
        assert len(row) == 1, f"one table row for {res}\n{r.describe()}"
        assert re.search(r"\bMASTER\b", row[0]) and re.search(r"\byes\b", row[0]), row
        assert node_a.instance_id in row[0], f"the last writer is shown: {row}"
    row = table_row(r.stdout, "lan@2", "ip", node_a.eni("lan"))
    assert len(row) == 1 and re.search(r"\byes\b", row[0]), r.describe()
    assert not any(re.search(r"\bNO\b", ln) for ln in lines), r.describe()
    assert proxy.mutating_counts() == {}


# ---- observation problems -----------------------------------------------------------------------

def test_status_wrong_route_table_affects_only_its_row(scenario: Scenario, node_a: Node,
                                                       cloud: Cloud, proxy: Proxy) -> None:
    take_over_everything(node_a, cloud, scenario)
    node_a.config.routes.append({"vhid": "wan@1", "routetable": MISSING_RTB,
                                 "cidr": "10.98.0.0/16", "interface": "lan", "xmlrpcsync": ""})
    node_a.write_config()
    proxy.reset()
    r = node_a.run("status", "--json")
    rep = check_report(r, "status")
    by_resource = {a["resource"]: a for a in rep["actions"]}
    bad = by_resource[MISSING_RTB]
    assert bad["status"] == "failed" or bad.get("in_sync") is False, r.describe()
    for res in (scenario.rt1, scenario.rt2):
        assert by_resource[res].get("in_sync") is True, r.describe()
    assert proxy.mutating_counts() == {}
