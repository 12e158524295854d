"""Integration tests of `awsha reconcile`, written against the fixed contracts of docs/contracts.md
(§2 command line and exit codes, §4 JSON report, §7 tags, §8.2 observe-then-repair, §9 reconcile
rules, §10 locks).

Owns: the required reconcile tests. They drive the real binary (AWSHA_BIN, default
target/debug/awsha) against moto with fidelity patches, through the fault proxy (which counts every
EC2 Action the binary sends), with one IMDS emulator and one fake ifconfig per node (conftest.py and
awsha_scenario.py: A advskew 0 and MASTER, B advskew 100 and BACKUP, wan@1's address, EIP and both
routes initially on B, untagged). The harness sets AWSHA_GRACE=0 unless a test says otherwise.

Every test asserts real state: where moto says the resources point (read straight from moto, not
through the proxy), their awsha tags, and the proxy's request counts.

moto behaviour relied on, named after the patches in tests/harness/moto_launcher.py: P1
(AssignPrivateIpAddresses moves the address, and its EIP with it), P3 (AssociateAddress honours
PrivateIpAddress), P4 (DescribeAddresses reports that private address; the ENI filter on
secondary addresses). Plain moto: ReplaceRoute/CreateRoute/DescribeRouteTables, CreateTags and
DescribeTags on eni-/rtb-/eipalloc- ids.
"""

from __future__ import annotations

import fcntl
import re
from typing import Any

import pytest

from awsha_scenario import (
    DEFAULT_ROUTE, LAN_VIP, MISSING_RTB, OTHER_ROUTE, READ_ONLY_PREFIXES, WAN_VIP, Cloud, Node,
    Proxy, Scenario, actions_by, check_report, ec2_request_total, failover_ok, parse_modified,
    wan1_on, wan1_resources, wan1_where,
)

WAN1_KINDS = ["eip", "ip", "route", "route"]
UNAUTHORIZED = {"kind": "error", "status": 400, "code": "UnauthorizedOperation",
                "message": "You are not authorized to perform this operation.", "times": None}


# ---- helpers ------------------------------------------------------------------------------------

def reconcile(node: Node, *flags: str, code: int = 0, env: dict[str, str] | None = None
              ) -> dict[str, Any]:
    """Run `awsha reconcile --json` on `node`, require exit `code`, return the checked report."""
    r = node.run("reconcile", "--json", *flags, env_extra=env)
    assert r.code == code, r.describe()
    rep = check_report(r, "reconcile")
    rep["_run"] = r  # for describe() in later assertions
    for s in rep.get("split_brain", []):
        for key in ("vhid", "resource", "by_instance", "advbase", "advskew", "at", "resolution"):
            assert key in s, f"split_brain entry lacks {key!r}: {s}\n{r.describe()}"
        # docs/contracts.md §4.4: also `failed` (a reclaim that failed) and `planned` (--dry-run).
        assert s["resolution"] in ("reclaimed", "deferred", "failed", "planned"), s
    return rep


def why(rep: dict[str, Any]) -> str:
    return rep["_run"].describe()


def of_vhid(rep: dict[str, Any], vhid: str) -> list[dict[str, Any]]:
    return [a for a in rep["actions"] if a["vhid"] == vhid]


def statuses(acts: list[dict[str, Any]]) -> list[str]:
    return [a["status"] for a in acts]


def vhid_states(rep: dict[str, Any]) -> dict[str, str]:
    assert isinstance(rep.get("vhids"), list), f"reconcile must list `vhids`\n{why(rep)}"
    return {v["vhid"]: v["state"] for v in rep["vhids"]}


def wan1_by_key(rep: dict[str, Any], scn: Scenario) -> dict[str, dict[str, Any]]:
    """wan@1's four actions keyed like wan1_where (ip, rt1, rt2, eip)."""
    acts = of_vhid(rep, "wan@1")
    assert sorted(a["kind"] for a in acts) == WAN1_KINDS, why(rep)
    out = {"ip": actions_by({"actions": acts}, "ip")[0],
           "eip": actions_by({"actions": acts}, "eip")[0]}
    for a in actions_by({"actions": acts}, "route"):
        out["rt1" if a["resource"] == scn.rt1 else "rt2"] = a
    assert set(out) == {"ip", "rt1", "rt2", "eip"}, why(rep)
    return out


def writer_tags(cloud: Cloud, scn: Scenario, holder: str) -> dict[str, dict[str, str]]:
    """awsha tags of the resources that name wan@1's last writer when `holder` holds it all: the
    holder's wan ENI (the address), rt1, rt2 and the allocation — keyed like wan1_where."""
    return {k: cloud.tags(res) for k, res in wan1_resources(scn, holder).items()}


def mutating(proxy: Proxy) -> dict[str, int]:
    return proxy.mutating_counts()


def reads(proxy: Proxy) -> dict[str, int]:
    return {a: n for a, n in proxy.counts().items() if a.startswith(READ_ONLY_PREFIXES)}


def created_tags_on(proxy: Proxy) -> list[str]:
    """Every resource id any CreateTags request named."""
    out = []
    for c in proxy.calls("CreateTags"):
        out += [v for k, v in c["params"].items() if re.fullmatch(r"ResourceId\.\d+", k)]
    return sorted(out)


def only_wan1_master(node: Node) -> None:
    """Keep lan@2 out of the way: this node is BACKUP of it (and so never touches it)."""
    node.set_carp(2, state="BACKUP")


# ---- split brain: reclaim from the lower priority, defer to the higher, no ping-pong -------------

def test_split_brain_reclaimed_then_deferred_without_ping_pong(scenario: Scenario, node_a: Node,
                                                               node_b: Node, cloud: Cloud,
                                                               proxy: Proxy) -> None:
    # moto: P1, P3, P4 (resources really move A → B → A); tags overwritten by CreateTags.
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    t_a = parse_modified(node_a.marker().read_text().strip())

    # CARP split brain: B stops hearing A, also becomes MASTER of wan@1, and fails over — after A's
    # takeover, so its change is at/after A's T.
    node_b.set_carp(1, state="MASTER")
    failover_ok(node_b, "wan@1")
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")
    b_tags = writer_tags(cloud, scenario, "B")
    for k, tags in b_tags.items():
        assert tags.get("awsha:instance") == node_b.instance_id, (k, tags)
        assert parse_modified(tags["awsha:modified"]) >= t_a, (k, tags, t_a)

    # Round 1, A (higher priority, still MASTER): reclaims everything, one split brain per resource.
    proxy.reset()
    rep = reconcile(node_a)
    assert rep["instance"] == node_a.instance_id, why(rep)
    assert vhid_states(rep) == {"wan@1": "MASTER", "lan@2": "BACKUP"}, why(rep)
    assert all(a["vhid"] == "wan@1" for a in rep["actions"]), "actions only for MASTER VHIDs"
    acts = wan1_by_key(rep, scenario)
    assert {k: a["status"] for k, a in acts.items()} == dict.fromkeys(acts, "changed"), why(rep)
    assert acts["ip"]["resource"] == node_a.eni("wan"), why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    sb = rep["split_brain"]
    assert len(sb) == 4, f"one split_brain entry per resource B changed\n{why(rep)}"
    assert {s["resource"] for s in sb} == {a["resource"] for a in acts.values()}, why(rep)
    for s in sb:
        assert (s["vhid"], s["by_instance"], s["advbase"], s["advskew"], s["resolution"]) == (
            "wan@1", node_b.instance_id, 1, 100, "reclaimed"), s
    # `at` is B's awsha:modified on the resource that names the writer (for the address: the ENI
    # that held it, B's).
    at_by_resource = {s["resource"]: s["at"] for s in sb}
    for k, a in acts.items():
        assert at_by_resource[a["resource"]] == b_tags[k]["awsha:modified"], (k, sb, b_tags)
    assert any("split brain" in n["message"].lower() for n in rep["notices"]), why(rep)
    m = mutating(proxy)
    assert m.get("AssignPrivateIpAddresses") == 1 and m.get("ReplaceRoute") == 2, m
    assert m.get("AssociateAddress") == 1 and m.get("CreateTags", 0) >= 1, m
    a_tags = writer_tags(cloud, scenario, "A")
    for k, tags in a_tags.items():
        assert (tags.get("awsha:instance"), tags.get("awsha:advskew")) == (
            node_a.instance_id, "0"), (k, tags)
    assert parse_modified(node_a.marker().read_text().strip()) == t_a, \
        "reconcile's repairs must not move the takeover time"

    # Round 1, B (still claiming MASTER): A changed it after B's takeover and A is preferred → defer.
    proxy.reset()
    rep = reconcile(node_b)
    assert vhid_states(rep) == {"wan@1": "MASTER", "lan@2": "BACKUP"}, why(rep)
    acts_b = wan1_by_key(rep, scenario)
    assert statuses(list(acts_b.values())) == ["deferred"] * 4, why(rep)
    sb = rep["split_brain"]
    assert len(sb) == 4, why(rep)
    for s in sb:
        assert (s["vhid"], s["by_instance"], s["advbase"], s["advskew"], s["resolution"]) == (
            "wan@1", node_a.instance_id, 1, 0, "deferred"), s
    at_by_resource = {s["resource"]: s["at"] for s in sb}
    for k, a in acts_b.items():
        assert at_by_resource[a["resource"]] == a_tags[k]["awsha:modified"], (k, sb, a_tags)
    assert rep["notices"], "a deferred split brain is filed as a notice"
    assert mutating(proxy) == {}, mutating(proxy)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")

    # Ten alternating rounds: A finds everything in sync, B keeps deferring. No ping-pong.
    proxy.reset()
    for i in range(10):
        node = node_a if i % 2 == 0 else node_b
        rep = reconcile(node)
        expected = "unchanged" if node is node_a else "deferred"
        assert statuses(of_vhid(rep, "wan@1")) == [expected] * 4, f"round {i}\n{why(rep)}"
        if node is node_a:
            assert rep["split_brain"] == [], why(rep)
    assert mutating(proxy) == {}, f"no ping-pong: {mutating(proxy)}"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    assert writer_tags(cloud, scenario, "A") == a_tags, "nothing re-tagged"


# ---- incomplete takeovers -----------------------------------------------------------------------

def test_incomplete_takeover_completed_by_next_reconcile(scenario: Scenario, node_a: Node,
                                                         node_b: Node, cloud: Cloud,
                                                         proxy: Proxy) -> None:
    # moto: P1, P3, P4. The proxy refuses every ReplaceRoute during A's failover.
    only_wan1_master(node_a)
    # B was MASTER earlier and tagged its resources then (B's own failover).
    node_a.set_carp(1, state="BACKUP")
    node_b.set_carp(1, state="MASTER")
    failover_ok(node_b, "wan@1")
    b_route_tags = cloud.tags(scenario.rt1)
    assert b_route_tags.get("awsha:instance") == node_b.instance_id

    # CARP moves to A; A's failover moves the address and the EIP but both routes fail.
    node_b.set_carp(1, state="BACKUP")
    node_a.set_carp(1, state="MASTER")
    proxy.rules([{"action": "ReplaceRoute", **UNAUTHORIZED}])
    r = node_a.run("failover", "wan@1", "--json")
    assert r.code == 1, r.describe()
    rep = check_report(r, "failover")
    assert statuses(actions_by(rep, "route")) == ["failed", "failed"], r.describe()
    where = wan1_where(cloud, scenario)
    assert where["ip"] == [node_a.eni("wan")] and where["eip"] == (node_a.eni("wan"), WAN_VIP)
    assert where["rt1"] == where["rt2"] == node_b.eni("lan"), "the takeover is incomplete"
    t_a = parse_modified(node_a.marker().read_text().strip())
    assert parse_modified(b_route_tags["awsha:modified"]) < t_a

    # The next reconcile completes it: B's route change is older than A's takeover time, so this
    # is an incomplete takeover (repair), not a split brain.
    proxy.rules([])
    proxy.reset()
    rep = reconcile(node_a)
    acts = wan1_by_key(rep, scenario)
    assert {k: a["status"] for k, a in acts.items()} == {
        "ip": "unchanged", "rt1": "changed", "rt2": "changed", "eip": "unchanged"}, why(rep)
    assert acts["rt1"]["actual"] == node_b.eni("lan"), "`actual` is what AWS pointed at"
    assert rep["split_brain"] == [], why(rep)
    assert rep["notices"], f"a repair files a notice\n{why(rep)}"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    m = mutating(proxy)
    assert m.get("ReplaceRoute") == 2 and m.get("CreateTags", 0) >= 1, m
    assert set(m) <= {"ReplaceRoute", "CreateTags"}, f"only the drifted routes are touched: {m}"
    assert created_tags_on(proxy) == sorted([scenario.rt1, scenario.rt2]), proxy.calls("CreateTags")
    for rtb in (scenario.rt1, scenario.rt2):
        assert cloud.tags(rtb).get("awsha:instance") == node_a.instance_id

    proxy.reset()
    rep = reconcile(node_a)
    assert statuses(of_vhid(rep, "wan@1")) == ["unchanged"] * 4, why(rep)
    assert mutating(proxy) == {}


@pytest.mark.parametrize("marker", ["kept", "lost"])
def test_incomplete_takeover_from_dead_higher_priority_master(marker: str, scenario: Scenario,
                                                              node_a: Node, node_b: Node,
                                                              cloud: Cloud, proxy: Proxy) -> None:
    # moto: P1, P3, P4. A (advskew 0) was MASTER and its tags remain on the resources; A dies, B
    # (advskew 100) becomes MASTER and its failover's ReplaceRoutes are refused.
    # marker "lost": B's takeover file is gone (e.g. /var/run wiped by a reboot); T then falls back
    # to the newest awsha:modified among B's own tags for wan@1 (docs/contracts.md §9.2) — the
    # address and EIP B's failover did move — and the result must be the same. (Were T unknown, A's
    # higher priority would make B defer.)
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    a_route_tags = cloud.tags(scenario.rt2)
    assert (a_route_tags.get("awsha:instance"), a_route_tags.get("awsha:advskew")) == (
        node_a.instance_id, "0")

    node_a.set_carp(1, state="INIT")  # A is gone (it runs nothing from here on)
    node_b.set_carp(1, state="MASTER")
    proxy.rules([{"action": "ReplaceRoute", **UNAUTHORIZED}])
    r = node_b.run("failover", "wan@1", "--json")
    assert r.code == 1, r.describe()
    where = wan1_where(cloud, scenario)
    assert where["ip"] == [node_b.eni("wan")] and where["eip"] == (node_b.eni("wan"), WAN_VIP)
    assert where["rt1"] == where["rt2"] == node_a.eni("lan")
    t_b = parse_modified(node_b.marker().read_text().strip())
    assert parse_modified(a_route_tags["awsha:modified"]) < t_b

    if marker == "lost":
        node_b.marker().unlink()
    # A's route change is older than B's takeover: B repairs although A has the higher priority
    # (A acted before B took over — it has since died). No split brain.
    proxy.rules([])
    proxy.reset()
    rep = reconcile(node_b)
    assert vhid_states(rep) == {"wan@1": "MASTER", "lan@2": "BACKUP"}, why(rep)
    acts = wan1_by_key(rep, scenario)
    assert {k: a["status"] for k, a in acts.items()} == {
        "ip": "unchanged", "rt1": "changed", "rt2": "changed", "eip": "unchanged"}, why(rep)
    assert rep["split_brain"] == [], why(rep)
    assert rep["notices"], why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")
    m = mutating(proxy)
    assert m.get("ReplaceRoute") == 2 and set(m) <= {"ReplaceRoute", "CreateTags"}, m
    for rtb in (scenario.rt1, scenario.rt2):
        tags = cloud.tags(rtb)
        assert (tags.get("awsha:instance"), tags.get("awsha:advskew")) == (
            node_b.instance_id, "100"), tags

    proxy.reset()
    rep = reconcile(node_b)
    assert statuses(of_vhid(rep, "wan@1")) == ["unchanged"] * 4, why(rep)
    assert mutating(proxy) == {}


# ---- nothing to do ------------------------------------------------------------------------------

def test_backup_node_sends_no_request(scenario: Scenario, node_a: Node, node_b: Node,
                                      cloud: Cloud, proxy: Proxy) -> None:
    # moto: P1, P3 for A's failover; then nothing may reach moto from B.
    failover_ok(node_a, "wan@1")
    failover_ok(node_a, "lan@2")
    before = wan1_where(cloud, scenario)
    assert before == wan1_on(scenario, "A")
    tags_before = writer_tags(cloud, scenario, "A")
    proxy.reset()
    rep = reconcile(node_b)
    assert vhid_states(rep) == {"wan@1": "BACKUP", "lan@2": "BACKUP"}, why(rep)
    assert rep["actions"] == [] and rep["split_brain"] == [], why(rep)
    assert proxy.counts() == {}, f"a BACKUP node sends no EC2 request: {proxy.counts()}"
    assert wan1_where(cloud, scenario) == before
    assert cloud.ip_holders(LAN_VIP) == [node_a.eni("lan")]
    assert writer_tags(cloud, scenario, "A") == tags_before


@pytest.mark.parametrize("extra_routes", [0, 18], ids=["5-actions", "23-actions"])
def test_in_sync_makes_no_mutating_request_and_few_reads(extra_routes: int, ec2: Any,
                                                         scenario: Scenario, node_a: Node,
                                                         cloud: Cloud, proxy: Proxy) -> None:
    # moto: P1, P3, P4; CreateRoute/ReplaceRoute/DescribeRouteTables (plain). docs/contracts.md §8:
    # the observation is a fixed, small number of Describe calls however many actions there are.
    extra = []
    for i in range(extra_routes):
        rtb = scenario.rt1 if i % 2 == 0 else scenario.rt2
        cidr = f"10.{100 + i}.0.0/16"
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=cidr,
                         NetworkInterfaceId=scenario.eni[("B", "lan")])
        node_a.config.routes.append({"vhid": "wan@1", "routetable": rtb, "cidr": cidr,
                                     "interface": "lan", "xmlrpcsync": "on"})
        extra.append((rtb, cidr))
    node_a.write_config()
    n_actions = 5 + extra_routes  # wan@1: 1 ip, 2 + extra routes, 1 eip; lan@2: 1 ip
    failover_ok(node_a, "wan@1")
    failover_ok(node_a, "lan@2")
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    assert all(cloud.route_target(t, c) == node_a.eni("lan") for t, c in extra)

    proxy.reset()
    rep = reconcile(node_a)
    assert len(rep["actions"]) == n_actions, why(rep)
    assert statuses(rep["actions"]) == ["unchanged"] * n_actions, why(rep)
    assert rep["split_brain"] == [], why(rep)
    assert mutating(proxy) == {}, mutating(proxy)
    total = ec2_request_total(proxy)
    assert 1 <= total <= 4, f"in sync: at most 4 EC2 requests in all, got {proxy.counts()}"
    assert "DescribeNetworkInterfaces" not in proxy.counts(), \
        f"no address drifted, so no DescribeNetworkInterfaces: {proxy.counts()}"

    # Drift a third of the routes by hand (a manual change: the tables still carry A's tags). The
    # observation stays as small; only the drifted routes are replaced.
    routes = [(scenario.rt1, DEFAULT_ROUTE), (scenario.rt2, OTHER_ROUTE)] + extra
    stolen = routes[::3]
    for t, c in stolen:
        ec2.replace_route(RouteTableId=t, DestinationCidrBlock=c,
                          NetworkInterfaceId=scenario.eni[("B", "lan")])
    proxy.reset()
    rep = reconcile(node_a)
    changed = sorted((a["resource"], a["target"].split(" ")[0]) for a in rep["actions"]
                     if a["status"] == "changed")
    assert changed == sorted(stolen), why(rep)
    assert statuses(rep["actions"]).count("unchanged") == n_actions - len(stolen), why(rep)
    assert rep["split_brain"] == [], "drift under this node's own tags is no split brain"
    assert all(cloud.route_target(t, c) == node_a.eni("lan") for t, c in routes)
    m = mutating(proxy)
    assert m.get("ReplaceRoute") == len(stolen), m
    assert set(m) <= {"ReplaceRoute", "CreateTags"}, m
    assert sum(reads(proxy).values()) <= 4, f"observation must stay small: {proxy.counts()}"


# ---- switched off, dry run, grace, lock ----------------------------------------------------------

def test_enable_off_does_nothing_and_says_so(scenario: Scenario, node_a: Node, cloud: Cloud,
                                            proxy: Proxy) -> None:
    # moto: nothing may reach it while off; P1/P3 once switched on again.
    node_a.config.settings["enable"] = ""
    node_a.write_config()
    before = wan1_where(cloud, scenario)
    assert before == wan1_on(scenario, "B"), "A is MASTER and everything has drifted to B"

    r = node_a.run("reconcile")
    assert r.code == 0, r.describe()
    assert re.search(r"(?i)\b(off|disabled|not enabled|not ticked)\b", r.stdout + r.stderr), \
        f"reconcile must say it is switched off\n{r.describe()}"
    rep = reconcile(node_a)
    assert rep["ok"] is True and rep["actions"] == [] and rep["split_brain"] == [], why(rep)
    assert proxy.counts() == {}, f"switched off: no EC2 request at all, got {proxy.counts()}"
    assert node_a.imds.counts() == {}, f"switched off: no IMDS request, got {node_a.imds.counts()}"
    assert wan1_where(cloud, scenario) == before
    assert cloud.ip_holders(LAN_VIP) == [scenario.eni[("B", "lan")]]

    # Switched on again, the same drift is repaired: the test above was not vacuous.
    node_a.config.settings["enable"] = "on"
    node_a.write_config()
    rep = reconcile(node_a)
    assert statuses(rep["actions"]) == ["changed"] * 5, why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")


def test_dry_run_plans_repairs_and_sends_nothing(scenario: Scenario, node_a: Node, cloud: Cloud,
                                                 proxy: Proxy) -> None:
    # moto: reads only (DescribeRouteTables/Tags/Addresses/NetworkInterfaces, P4).
    rep = reconcile(node_a, "--dry-run")
    assert vhid_states(rep) == {"wan@1": "MASTER", "lan@2": "MASTER"}, why(rep)
    assert len(rep["actions"]) == 5, why(rep)
    assert statuses(rep["actions"]) == ["planned"] * 5, why(rep)
    acts = wan1_by_key(rep, scenario)
    assert acts["rt1"]["actual"] == scenario.eni[("B", "lan")], why(rep)
    assert mutating(proxy) == {}, f"--dry-run sends no mutating request: {mutating(proxy)}"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")
    assert cloud.ip_holders(LAN_VIP) == [scenario.eni[("B", "lan")]]
    assert cloud.tags(scenario.rt1) == {}, "nothing tagged"
    assert not node_a.marker().exists()


def test_recent_change_is_skipped_within_grace(scenario: Scenario, node_a: Node, node_b: Node,
                                               cloud: Cloud, proxy: Proxy) -> None:
    # moto: P1, P3, P4.
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    failover_ok(node_b, "wan@1", "--force")  # B moves everything, just now
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")

    proxy.reset()
    rep = reconcile(node_a, env={"AWSHA_GRACE": "600"})
    acts = of_vhid(rep, "wan@1")
    assert statuses(acts) == ["skipped"] * 4, why(rep)
    for a in acts:
        assert "recent" in (a.get("reason") or "").lower(), f"reason must say recent: {a}"
    assert rep["split_brain"] == [], f"a change left for later is not judged yet\n{why(rep)}"
    assert mutating(proxy) == {}, mutating(proxy)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")

    # Without the grace time the same state is a split brain A wins.
    rep = reconcile(node_a)
    assert statuses(of_vhid(rep, "wan@1")) == ["changed"] * 4, why(rep)
    assert {s["resolution"] for s in rep["split_brain"]} == {"reclaimed"}, why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")


def test_vhid_locked_by_a_failover_is_skipped(scenario: Scenario, node_a: Node, cloud: Cloud,
                                              proxy: Proxy) -> None:
    # moto: P1, P3 for the VHIDs that are repaired. A is MASTER of both VHIDs, both drifted to B;
    # a failover of wan@1 holds its lock (docs/contracts.md §10: flock on
    # AWSHA_RUN_DIR/awsha.wan_1.lock).
    lock_path = node_a.run_dir / "awsha.wan_1.lock"
    with open(lock_path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        rep = reconcile(node_a)
    acts = of_vhid(rep, "wan@1")
    assert statuses(acts) == ["skipped"] * 4, why(rep)
    assert all(a.get("reason") for a in acts), f"skipped says why\n{why(rep)}"
    assert statuses(of_vhid(rep, "lan@2")) == ["changed"], "other VHIDs are not blocked"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B"), "nothing of wan@1 changed"
    assert cloud.ip_holders(LAN_VIP) == [node_a.eni("lan")]
    m = mutating(proxy)
    assert "ReplaceRoute" not in m and "AssociateAddress" not in m, m
    assigns = proxy.calls("AssignPrivateIpAddresses")
    assert [c["params"].get("NetworkInterfaceId") for c in assigns] == [node_a.eni("lan")], assigns
    assert created_tags_on(proxy) == [node_a.eni("lan")], proxy.calls("CreateTags")
    assert cloud.tags(scenario.rt1) == {} and cloud.tags(scenario.allocation) == {}

    # Lock released: the next run repairs wan@1.
    rep = reconcile(node_a)
    assert statuses(of_vhid(rep, "wan@1")) == ["changed"] * 4, why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")


# ---- invalid rows -------------------------------------------------------------------------------

def test_invalid_rows_fail_while_valid_vhids_are_reconciled(scenario: Scenario, node_a: Node,
                                                            cloud: Cloud, proxy: Proxy) -> None:
    # moto: P1, P3, P4 for wan@1.
    node_a.config.ips[1]["ipaddr"] = "10.0.2.300"           # lan@2's only row: invalid
    node_a.config.routes.append({"vhid": "opt9@7", "routetable": scenario.rt1,  # names no VIP
                                 "cidr": "10.77.0.0/16", "interface": "lan", "xmlrpcsync": ""})
    node_a.write_config()
    rep = reconcile(node_a, code=1)
    assert rep["ok"] is False
    failed = [a for a in rep["actions"] if a["status"] == "failed"]
    assert sorted((a["vhid"], a["kind"]) for a in failed) == [
        ("lan@2", "ip"), ("opt9@7", "route")], why(rep)
    lan = next(a for a in failed if a["vhid"] == "lan@2")
    assert "10.0.2.300" in lan["error"] or "ipaddr" in lan["error"], lan
    assert statuses(of_vhid(rep, "wan@1")) == ["changed"] * 4, why(rep)
    assert vhid_states(rep).get("wan@1") == "MASTER", why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    assert cloud.ip_holders(LAN_VIP) == [scenario.eni[("B", "lan")]], "invalid rows act on nothing"
    assert cloud.route_target(scenario.rt1, "10.77.0.0/16") is None
    assert [c["params"].get("NetworkInterfaceId") for c in proxy.calls(
        "AssignPrivateIpAddresses")] == [node_a.eni("wan")]


# ---- priority: unknown T, running advskew, ties -------------------------------------------------

def test_unknown_takeover_time_counts_as_split_brain(scenario: Scenario, node_a: Node,
                                                    node_b: Node, cloud: Cloud,
                                                    proxy: Proxy) -> None:
    # moto: P1, P3, P4. A never failed over (no takeover file, none of its tags anywhere): T is
    # unknown, so B's change is a split brain (docs/contracts.md §9.3 rule 5) — and B has the lower
    # priority.
    only_wan1_master(node_a)
    failover_ok(node_b, "wan@1", "--force")
    assert not node_a.marker().exists()
    proxy.reset()
    rep = reconcile(node_a)
    assert statuses(of_vhid(rep, "wan@1")) == ["changed"] * 4, why(rep)
    sb = rep["split_brain"]
    assert len(sb) == 4 and {(s["by_instance"], s["resolution"]) for s in sb} == {
        (node_b.instance_id, "reclaimed")}, why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    assert not node_a.marker().exists(), "reconcile never writes the takeover time"


def test_running_advskew_counts_maintenance_mode_defers(scenario: Scenario, node_a: Node,
                                                        node_b: Node, cloud: Cloud,
                                                        proxy: Proxy) -> None:
    # moto: P1, P3, P4. docs/contracts.md §7/§9: this node's priority is its *running* advskew from
    # ifconfig. A is in persistent CARP maintenance (ifconfig shows advskew 254; config.xml still
    # says 0) yet still claims MASTER; B (100) failed over after A: B is preferred, A defers.
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    node_b.set_carp(1, state="MASTER")
    failover_ok(node_b, "wan@1")
    node_a.set_carp(1, advskew=254)
    proxy.reset()
    rep = reconcile(node_a)
    assert statuses(of_vhid(rep, "wan@1")) == ["deferred"] * 4, why(rep)
    assert {(s["by_instance"], s["advskew"], s["resolution"]) for s in rep["split_brain"]} == {
        (node_b.instance_id, 100, "deferred")}, why(rep)
    assert mutating(proxy) == {}, mutating(proxy)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")

    # Out of maintenance (advskew 0 again), A is preferred and reclaims.
    node_a.set_carp(1, advskew=0)
    rep = reconcile(node_a)
    assert statuses(of_vhid(rep, "wan@1")) == ["changed"] * 4, why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")


def test_equal_priority_is_broken_by_the_smaller_instance_id(scenario: Scenario, node_a: Node,
                                                             node_b: Node, cloud: Cloud,
                                                             proxy: Proxy) -> None:
    # moto: P1, P3, P4. Both members run advskew 0 (docs/contracts.md §7: a tie goes to the smaller
    # instance id as a plain string). Each takes over in turn (A first, then B), then both
    # reconcile: exactly the one with the smaller id ends up holding everything, with no ping-pong.
    only_wan1_master(node_a)
    node_b.set_carp(1, state="MASTER", advskew=0)
    failover_ok(node_a, "wan@1")
    failover_ok(node_b, "wan@1")
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")
    winner, loser = sorted([node_a, node_b], key=lambda n: n.instance_id)
    proxy.reset()
    rep_a = reconcile(node_a)
    rep_b = reconcile(node_b)
    for _ in range(2):
        rep_a, rep_b = reconcile(node_a), reconcile(node_b)
    wins = rep_a if winner is node_a else rep_b
    loses = rep_b if winner is node_a else rep_a
    assert statuses(of_vhid(wins, "wan@1")) == ["unchanged"] * 4, why(wins)
    assert statuses(of_vhid(loses, "wan@1")) == ["deferred"] * 4, why(loses)
    assert {s["by_instance"] for s in loses["split_brain"]} == {winner.instance_id}, why(loses)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, winner.name)
    # B's failover moved everything last, so only A may ever have had to move anything: 4 actions
    # once if A wins, none if B wins.
    m = mutating(proxy)
    if winner is node_a:
        assert m.get("ReplaceRoute") == 2 and m.get("AssignPrivateIpAddresses") == 1, m
    else:
        assert m == {}, m
    assert loser.instance_id > winner.instance_id


# ---- CARP state re-read, missing routes, broken observation --------------------------------------

def test_carp_state_is_reread_just_before_repairing(scenario: Scenario, node_a: Node,
                                                    cloud: Cloud, proxy: Proxy) -> None:
    # moto: reads only. docs/contracts.md §10: reconcile re-reads CARP state immediately before
    # acting on a VHID. This ifconfig shows A MASTER of wan@1 on its first call and BACKUP on every
    # later one (CARP moved while reconcile was observing).
    only_wan1_master(node_a)
    master_text = node_a.ifconfig.read()
    node_a.set_carp(1, state="BACKUP")
    backup_text = node_a.ifconfig.read()
    flip = node_a.dir / "flip"
    flip.mkdir()
    (flip / "first.txt").write_text(master_text)
    (flip / "later.txt").write_text(backup_text)
    script = flip / "ifconfig"
    script.write_text('#!/bin/sh\nhere=$(dirname "$0")\n'
                      'if [ -e "$here/seen" ]; then exec cat "$here/later.txt"; fi\n'
                      ': > "$here/seen"\nexec cat "$here/first.txt"\n')
    script.chmod(0o755)
    rep = reconcile(node_a, env={"AWSHA_IFCONFIG": str(script)})
    assert (flip / "seen").exists()
    acts = of_vhid(rep, "wan@1")
    assert statuses(acts) == ["skipped"] * 4, why(rep)
    assert all("master" in (a.get("reason") or "").lower() for a in acts), why(rep)
    assert mutating(proxy) == {}, mutating(proxy)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")


def test_missing_route_is_recreated(scenario: Scenario, node_a: Node, cloud: Cloud,
                                   proxy: Proxy) -> None:
    # moto: ReplaceRoute on a missing destination answers "… Use CreateRoute" (plain moto, as EC2);
    # CreateRoute with an ENI target. Somebody deleted the route after A's takeover.
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    cloud.delete_route(scenario.rt2, OTHER_ROUTE)
    proxy.reset()
    rep = reconcile(node_a)
    acts = wan1_by_key(rep, scenario)
    assert {k: a["status"] for k, a in acts.items()} == {
        "ip": "unchanged", "rt1": "unchanged", "rt2": "changed", "eip": "unchanged"}, why(rep)
    assert cloud.route_target(scenario.rt2, OTHER_ROUTE) == node_a.eni("lan")
    created = proxy.calls("CreateRoute")
    assert [(c["params"].get("RouteTableId"), c["params"].get("DestinationCidrBlock"))
            for c in created] == [(scenario.rt2, OTHER_ROUTE)], created


def test_wrong_route_table_fails_only_its_own_action(scenario: Scenario, node_a: Node,
                                                     cloud: Cloud, proxy: Proxy) -> None:
    # moto: DescribeRouteTables with an unknown id in RouteTableId.N fails the whole call with
    # InvalidRouteTableID.NotFound (as EC2); with a route-table-id filter the unknown table is simply
    # absent. docs/contracts.md §8.1 ("one failed action never stops the others") and
    # docs/behaviour.md ("a route table id is wrong → that route stays failed every run"): only that
    # route fails.
    only_wan1_master(node_a)
    node_a.config.routes.append({"vhid": "wan@1", "routetable": MISSING_RTB,
                                 "cidr": "10.98.0.0/16", "interface": "lan", "xmlrpcsync": ""})
    node_a.write_config()
    rep = reconcile(node_a, code=1)
    by_resource = {a["resource"]: a for a in of_vhid(rep, "wan@1")}
    assert by_resource[MISSING_RTB]["status"] == "failed", why(rep)
    assert MISSING_RTB in by_resource[MISSING_RTB]["error"], why(rep)
    others = {r: a["status"] for r, a in by_resource.items() if r != MISSING_RTB}
    assert set(others.values()) == {"changed"} and len(others) == 4, why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")


def test_address_holder_found_without_describe_network_interfaces(scenario: Scenario,
                                                                  node_a: Node, node_b: Node,
                                                                  cloud: Cloud,
                                                                  proxy: Proxy) -> None:
    # moto: P1, P3, P4. docs/contracts.md §9.1: the last writer of an address not on this node's ENI
    # is the ENI that holds it — "DescribeNetworkInterfaces where permitted, else the newest
    # awsha-tagged ENI of another instance with awsha:vhid = this VHID". Here the policy denies
    # DescribeNetworkInterfaces; B's wan ENI carries B's tags for wan@1 (split brain after A's
    # takeover), so A must still find B as the writer and reclaim the address.
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    node_b.set_carp(1, state="MASTER")
    failover_ok(node_b, "wan@1")
    proxy.rules([{"action": "DescribeNetworkInterfaces", **UNAUTHORIZED}])
    rep = reconcile(node_a)
    acts = wan1_by_key(rep, scenario)
    assert acts["ip"]["status"] == "changed", why(rep)
    assert {k: a["status"] for k, a in acts.items()} == dict.fromkeys(acts, "changed"), why(rep)
    ip_sb = [s for s in rep["split_brain"] if s["resource"] == node_a.eni("wan")]
    assert [(s["by_instance"], s["resolution"]) for s in ip_sb] == [
        (node_b.instance_id, "reclaimed")], why(rep)
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
