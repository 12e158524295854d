"""Integration tests of `awsha failover` and `awsha validate`, written against the fixed contracts
of docs/contracts.md (CLI and exit codes §2, JSON report §4, config rows §5, validation §6, tags §7,
execution §8, takeover marker §9.2, locks §10).

Owns: the required failover tests. They drive the real binary (AWSHA_BIN, default
target/debug/awsha) against moto with fidelity patches, through the fault proxy, with one IMDS
emulator and one fake ifconfig per node (see conftest.py and awsha_scenario.py for the scenario:
B holds wan@1's address, EIP and routes, A is CARP MASTER). Without the binary every test here
fails (never skips).

Each test says which moto behaviour it relies on ("moto:"), patched ones named after the patches
in tests/harness/moto_launcher.py (P1 address move, P3 AssociateAddress PrivateIpAddress, ...).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from awsha_scenario import (
    DEFAULT_ROUTE, LAN_UNIQID, LAN_VIP, MISSING_RTB, OTHER_ROUTE, RFC3339_MS, TAG_KEYS,
    WAN_UNIQID, WAN_VIP, Cloud, Node, Proxy, Scenario, Timed, actions_by, check_report,
    parse_modified,
)

# How long past --deadline a run may take: process start, IMDS and config reading, and the time
# to report. Generous for a debug build on a 2-core machine, small next to the deadline tests.
DEADLINE_MARGIN_S = 2.5

# Tab names in error messages: docs/contracts.md §6.2 fixes `<tab> row <n> <element>: …` but not
# whether <tab> is the GUI tab title or the config.xml element; both are accepted.
TAB = {
    "ips": r"(?:ips|awshaips)",
    "routes": r"(?:routes|awsharoutes)",
    "eips": r"(?:elastic ips|eips|awshaeips)",
}


def row_error(tab: str, row: int, element: str) -> re.Pattern[str]:
    return re.compile(rf"(?i)(?<![\w-]){TAB[tab]}\s+row\s+{row}\s+{element}\s*:")


def wan1_actions_ok(r: Timed, scn: Scenario, node: Node, status: str = "changed") -> None:
    """wan@1 has four rows → four actions (one per row), each with `status`, on node's ENIs."""
    rep = check_report(r, "failover")
    acts = rep["actions"]
    assert len(acts) == 4, f"one action per configured row (1 ip, 2 routes, 1 eip)\n{r.describe()}"
    assert all(a["vhid"] == "wan@1" for a in acts), r.describe()
    assert all(a["status"] == status for a in acts), r.describe()
    assert sorted(a["kind"] for a in acts) == ["eip", "ip", "route", "route"], r.describe()
    if status == "skipped":
        # A node that is not MASTER may stop before asking IMDS which ENI is its own, so the
        # ip action's `resource` is not pinned down here.
        return
    assert [a["resource"] for a in actions_by(rep, "ip")] == [node.eni("wan")], r.describe()
    assert sorted(a["resource"] for a in actions_by(rep, "route")) == sorted(
        [scn.rt1, scn.rt2]), r.describe()
    assert [a["resource"] for a in actions_by(rep, "eip")] == [scn.allocation], r.describe()


def assert_wan1_at(cloud: Cloud, scn: Scenario, node: str) -> None:
    """wan@1's address, both routes and the EIP all point at `node`'s ENIs."""
    wan, lan = scn.eni[(node, "wan")], scn.eni[(node, "lan")]
    assert cloud.ip_holders(WAN_VIP) == [wan]
    assert cloud.route_target(scn.rt1, DEFAULT_ROUTE) == lan
    assert cloud.route_target(scn.rt2, OTHER_ROUTE) == lan
    assert cloud.eip(scn.allocation) == (wan, WAN_VIP)


def assert_tagged(cloud: Cloud, resource: str, node: Node, advskew: int, since: datetime,
                  until: datetime, vhid: str = "wan@1", advbase: int = 1) -> None:
    tags = cloud.tags(resource)
    missing = [k for k in TAG_KEYS if k not in tags]
    assert not missing, f"{resource} lacks tags {missing}: {tags}"
    assert tags["awsha:vhid"] == vhid, tags
    assert tags["awsha:instance"] == node.instance_id, tags
    assert tags["awsha:advbase"] == str(advbase), tags
    assert tags["awsha:advskew"] == str(advskew), tags
    at = parse_modified(tags["awsha:modified"])
    # Same clock (one machine); one second of slack for rounding to milliseconds.
    assert since - timedelta(seconds=1) <= at <= until + timedelta(seconds=1), (at, since, until)


MUTATING_EXPECTED = ("AssignPrivateIpAddresses", "ReplaceRoute", "AssociateAddress", "CreateTags")


# ---- the happy path -----------------------------------------------------------------------------

@pytest.mark.parametrize("vhid", ["wan@1", "WAN@1", "1@ena0", f"_vip{WAN_UNIQID}"])
def test_failover_moves_everything_and_tags(vhid: str, scenario: Scenario, node_a: Node,
                                            cloud: Cloud, proxy: Proxy) -> None:
    # moto: P1 (AssignPrivateIpAddresses removes the address from B's ENI, so "only on A" is
    # checkable), P3 (the EIP is associated to the PrivateIpAddress asked for, and only once the
    # address is on A's ENI: AssociateAddress before the assignment lands fails), P4 (DescribeAddresses
    # reports that private address); ReplaceRoute with NetworkInterfaceId and CreateTags on
    # eni-/rtb-/eipalloc- ids are plain moto.
    since = datetime.now(timezone.utc)
    r = node_a.run("failover", vhid, "--json")
    until = datetime.now(timezone.utc)
    assert r.code == 0, r.describe()
    rep = check_report(r, "failover")
    assert rep["ok"] is True and rep["instance"] == node_a.instance_id, r.describe()
    wan1_actions_ok(r, scenario, node_a, "changed")  # canonical vhid whatever form was given
    assert_wan1_at(cloud, scenario, "A")
    assert cloud.ip_holders(LAN_VIP) == [scenario.eni[("B", "lan")]], "lan@2 was not asked for"
    for resource in (node_a.eni("wan"), scenario.rt1, scenario.rt2, scenario.allocation):
        assert_tagged(cloud, resource, node_a, advskew=0, since=since, until=until)
    counts = proxy.mutating_counts()
    # docs/contracts.md §8.1: one AssignPrivateIpAddresses per ENI, every ReplaceRoute, the
    # dependent AssociateAddress, then CreateTags ("one call per run where possible") — and nothing
    # else.
    assert counts.get("AssignPrivateIpAddresses") == 1, counts
    assert counts.get("ReplaceRoute") == 2, counts
    assert counts.get("AssociateAddress") == 1, counts
    assert counts.get("CreateTags", 0) >= 1, counts
    assert set(counts) <= set(MUTATING_EXPECTED), counts
    log = proxy.log()
    assign = [c for c in log if c["action"] == "AssignPrivateIpAddresses"][0]
    assoc = [c for c in log if c["action"] == "AssociateAddress"][0]
    # By the proxy's order, not its clock: sent only once the assignment had been answered.
    assert assoc["seq"] > assign["done_seq"], (
        "the EIP association must wait for the address assignment's answer")
    assert [c["params"].get("AllowReassignment") for c in proxy.calls(
        "AssignPrivateIpAddresses")] == ["true"], "AllowReassignment=true must be sent"
    assert all(c["params"].get("AllowReassociation") == "true"
               for c in proxy.calls("AssociateAddress")), "AllowReassociation=true must be sent"


def test_failover_json_alone_on_stdout_even_when_logging(scenario: Scenario, node_a: Node) -> None:
    # moto: InvalidRouteTableID.NotFound for the unknown table (plain moto); P1/P3 for the rest.
    # Global flags before the command (docs/contracts.md §2.1); -vv and a failing action make the
    # binary log, and logs must never reach stdout: it parses as exactly one JSON object
    # (docs/contracts.md §4).
    node_a.config.routes[1]["routetable"] = MISSING_RTB
    node_a.write_config()
    r = node_a.run("-vv", "--json", "failover", "wan@1")
    assert r.code == 1, r.describe()
    assert r.json is not None, f"stdout is not exactly one JSON object\n{r.describe()}"
    rep = check_report(r, "failover")
    assert len(rep["actions"]) == 4 and rep["ok"] is False, r.describe()


def test_lower_priority_node_takes_over_and_writes_its_advskew(scenario: Scenario, node_a: Node,
                                                               node_b: Node, cloud: Cloud) -> None:
    # moto: P1 and P3 (resources really go A → B); tags overwritten by CreateTags (plain moto).
    r = node_a.run("failover", "wan@1", "--json")
    assert r.code == 0, r.describe()
    assert_wan1_at(cloud, scenario, "A")

    # CARP moves to B (A died or entered maintenance): B is MASTER with its advskew 100.
    node_a.set_carp(1, state="BACKUP")
    node_b.set_carp(1, state="MASTER")
    since = datetime.now(timezone.utc)
    r = node_b.run("failover", "wan@1", "--json")
    until = datetime.now(timezone.utc)
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_b, "changed")
    assert_wan1_at(cloud, scenario, "B")
    for resource in (node_b.eni("wan"), scenario.rt1, scenario.rt2, scenario.allocation):
        assert_tagged(cloud, resource, node_b, advskew=100, since=since, until=until)


def test_forced_failover_on_backup_node_writes_running_advskew(scenario: Scenario, node_a: Node,
                                                               node_b: Node, cloud: Cloud) -> None:
    # moto: P1, P3. B stays BACKUP; --force acts anyway (docs/contracts.md §2.3) and the tags carry
    # B's running advskew from ifconfig (here 100, as in config.xml).
    assert node_a.run("failover", "wan@1").code == 0
    assert_wan1_at(cloud, scenario, "A")
    since = datetime.now(timezone.utc)
    r = node_b.run("failover", "wan@1", "--force", "--json")
    until = datetime.now(timezone.utc)
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_b, "changed")
    assert_wan1_at(cloud, scenario, "B")
    for resource in (node_b.eni("wan"), scenario.rt1, scenario.rt2, scenario.allocation):
        assert_tagged(cloud, resource, node_b, advskew=100, since=since, until=until)


# ---- not MASTER, --force, --dry-run, takeover marker -------------------------------------------

def test_not_master_skips_everything_then_force_acts(scenario: Scenario, node_a: Node,
                                                     cloud: Cloud, proxy: Proxy) -> None:
    # moto: P1/P3 only for the --force half. The skip half depends on nothing in moto: it must not
    # send a single mutating request.
    node_a.set_carp(1, state="BACKUP")
    r = node_a.run("failover", "wan@1", "--json")
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_a, "skipped")
    assert proxy.mutating_counts() == {}, proxy.mutating_counts()
    assert cloud.ip_holders(WAN_VIP) == [scenario.eni[("B", "wan")]]
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == scenario.eni[("B", "lan")]
    assert not node_a.marker().exists(), "a skipped failover must not write the takeover marker"

    # not MASTER + --dry-run is still `skipped` (docs/contracts.md §4.2)
    r = node_a.run("failover", "wan@1", "--dry-run", "--json")
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_a, "skipped")
    assert proxy.mutating_counts() == {}

    r = node_a.run("failover", "--force", "wan@1", "--json")
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_a, "changed")
    assert_wan1_at(cloud, scenario, "A")


def test_dry_run_plans_and_sends_nothing(scenario: Scenario, node_a: Node, cloud: Cloud,
                                         proxy: Proxy) -> None:
    # moto: none (no mutating request may reach it, not even with DryRun=true — docs/contracts.md
    # §8.4).
    r = node_a.run("failover", "wan@1", "--dry-run", "--json")
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_a, "planned")
    assert proxy.mutating_counts() == {}, proxy.mutating_counts()
    assert cloud.ip_holders(WAN_VIP) == [scenario.eni[("B", "wan")]]
    assert not node_a.marker().exists(), "--dry-run must not write the takeover marker"


def test_takeover_marker_written_by_real_failover(node_a: Node) -> None:
    # moto: plain (a successful failover). docs/contracts.md §9.2: the takeover time, same format as
    # awsha:modified, in AWSHA_RUN_DIR/awsha.<key>_<n>.takeover.
    assert not node_a.marker().exists()
    since = datetime.now(timezone.utc)
    r = node_a.run("failover", "1@ena0")
    until = datetime.now(timezone.utc)
    assert r.code == 0, r.describe()
    marker = node_a.marker("wan_1")
    assert marker.exists(), f"no {marker.name} in the run dir: {list(node_a.run_dir.iterdir())}"
    text = marker.read_text().strip()
    assert RFC3339_MS.match(text), f"marker holds {text!r}, not an awsha:modified-style time"
    at = parse_modified(text)
    assert since - timedelta(seconds=1) <= at <= until + timedelta(seconds=1)
    assert not node_a.marker("lan_2").exists(), "only the VHID that failed over"


# ---- routes -------------------------------------------------------------------------------------

def test_missing_route_is_created(scenario: Scenario, node_a: Node, cloud: Cloud,
                                  proxy: Proxy) -> None:
    # moto: ReplaceRoute on a missing destination answers InvalidParameterValue "… Use CreateRoute
    # instead." exactly like EC2 (moto PR #6425, unpatched); CreateRoute with an ENI target.
    cloud.delete_route(scenario.rt2, OTHER_ROUTE)
    assert cloud.route_target(scenario.rt2, OTHER_ROUTE) is None
    r = node_a.run("failover", "wan@1", "--json")
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_a, "changed")
    assert cloud.route_target(scenario.rt2, OTHER_ROUTE) == node_a.eni("lan")
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == node_a.eni("lan")
    replaced = [c for c in proxy.calls("ReplaceRoute") if c["params"]["RouteTableId"] == scenario.rt2]
    created = proxy.calls("CreateRoute")
    assert replaced and replaced[0]["status"] == 400, "ReplaceRoute first, refused by EC2"
    assert len(created) == 1 and created[0]["params"]["RouteTableId"] == scenario.rt2
    assert created[0]["params"]["DestinationCidrBlock"] == OTHER_ROUTE
    assert created[0]["params"]["NetworkInterfaceId"] == node_a.eni("lan")
    assert created[0]["seq"] > replaced[0]["done_seq"], "CreateRoute only after ReplaceRoute's refusal"


def test_nonexistent_route_table_fails_that_action_only(scenario: Scenario, node_a: Node,
                                                        cloud: Cloud) -> None:
    # moto: ReplaceRoute on an unknown table → InvalidRouteTableID.NotFound "The routeTable ID
    # 'rtb-…' does not exist" (plain moto, as EC2); P1/P3 for the actions that succeed.
    node_a.config.routes[1]["routetable"] = MISSING_RTB
    node_a.write_config()
    r = node_a.run("failover", "wan@1", "--json")
    assert r.code == 1, r.describe()
    rep = check_report(r, "failover")
    assert rep["ok"] is False
    by_resource = {a["resource"]: a for a in rep["actions"]}
    assert len(rep["actions"]) == 4, r.describe()
    bad = by_resource.get(MISSING_RTB)
    assert bad is not None and bad["status"] == "failed", r.describe()
    assert MISSING_RTB in bad["error"], f"the error must name the route table: {bad['error']!r}"
    for a in rep["actions"]:
        if a["resource"] != MISSING_RTB:
            assert a["status"] == "changed", f"one failed action never stops the others\n{a}"
    assert cloud.ip_holders(WAN_VIP) == [node_a.eni("wan")]
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == node_a.eni("lan")
    assert cloud.eip(scenario.allocation) == (node_a.eni("wan"), WAN_VIP)


# ---- EC2 misbehaving ----------------------------------------------------------------------------

def test_throttling_is_retried_to_success(scenario: Scenario, node_a: Node, cloud: Cloud,
                                          proxy: Proxy) -> None:
    # moto: P1/P3 once the throttles pass. The proxy answers RequestLimitExceeded (HTTP 503) to the
    # first two ReplaceRoutes (whichever table they are for) and the first two AssociateAddresses.
    proxy.rules([
        {"action": "ReplaceRoute", "kind": "throttle", "times": 2},
        {"action": "AssociateAddress", "kind": "throttle", "times": 2},
    ])
    r = node_a.run("failover", "wan@1", "--json")
    assert r.code == 0, r.describe()
    wan1_actions_ok(r, scenario, node_a, "changed")
    assert_wan1_at(cloud, scenario, "A")
    counts = proxy.counts()
    # two successful ReplaceRoutes + the two throttled; one successful AssociateAddress + two.
    assert counts.get("ReplaceRoute") == 4, counts
    assert counts.get("AssociateAddress") == 3, counts
    assert sum(1 for c in proxy.log() if c["status"] == 503) == 4


def test_hung_endpoint_ends_at_the_deadline(scenario: Scenario, node_a: Node, cloud: Cloud,
                                            proxy: Proxy) -> None:
    # moto: P1/P3 for the address and EIP, which do not depend on routes (docs/contracts.md §8.1).
    # The proxy holds every ReplaceRoute without answering (up to 60 s, far beyond the deadline).
    proxy.rules([{"action": "ReplaceRoute", "kind": "hang", "seconds": 60, "times": None}])
    r = node_a.run("--deadline", "3", "failover", "wan@1", "--json", timeout=30)
    assert r.elapsed <= 3 + DEADLINE_MARGIN_S, f"took {r.elapsed:.1f}s with --deadline 3"
    assert r.code == 1, r.describe()
    rep = check_report(r, "failover")
    routes = actions_by(rep, "route")
    assert len(routes) == 2 and all(a["status"] == "failed" for a in routes), r.describe()
    assert [a["status"] for a in actions_by(rep, "ip")] == ["changed"], r.describe()
    assert [a["status"] for a in actions_by(rep, "eip")] == ["changed"], r.describe()
    assert cloud.ip_holders(WAN_VIP) == [node_a.eni("wan")]
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == scenario.eni[("B", "lan")]


# ---- concurrency --------------------------------------------------------------------------------

def test_two_vhids_fail_over_in_parallel(scenario: Scenario, node_a: Node, cloud: Cloud) -> None:
    # moto: P1 for both addresses. rc.carpmaster fires once per VHID at the same moment; the locks
    # are per VHID (docs/contracts.md §10), so neither waits for nor breaks the other.
    p_wan = node_a.start("failover", "wan@1", "--json")
    p_lan = node_a.start("failover", f"_vip{LAN_UNIQID}", "--json")
    r_wan, r_lan = p_wan.wait(), p_lan.wait()
    assert r_wan.code == 0, r_wan.describe()
    assert r_lan.code == 0, r_lan.describe()
    wan1_actions_ok(r_wan, scenario, node_a, "changed")
    rep_lan = check_report(r_lan, "failover")
    assert [(a["vhid"], a["kind"], a["resource"], a["status"]) for a in rep_lan["actions"]] == [
        ("lan@2", "ip", node_a.eni("lan"), "changed")], r_lan.describe()
    assert_wan1_at(cloud, scenario, "A")
    assert cloud.ip_holders(LAN_VIP) == [node_a.eni("lan")]
    assert cloud.tags(node_a.eni("lan")).get("awsha:vhid") == "lan@2"
    assert node_a.marker("wan_1").exists() and node_a.marker("lan_2").exists()


# ---- bad input: exit 2, nothing changed ---------------------------------------------------------

def _bad_malformed(node: Node) -> None:
    node.write_raw_config(node.config.render()[:-60] + "<awshaips><config><vhid>wan@1")


def _bad_unknown_vhid(node: Node) -> None:
    node.config.ips[0]["vhid"] = "wan@9"
    node.write_config()


def _bad_routetable(node: Node) -> None:
    node.config.routes[0]["routetable"] = "rtb-0123xyz"
    node.write_config()


def _bad_ipaddr(node: Node) -> None:
    node.config.ips[0]["ipaddr"] = "10.0.1.300"
    node.write_config()


def _bad_cidr(node: Node) -> None:
    node.config.routes[1]["cidr"] = "10.0.1.1/24"
    node.write_config()


def _bad_allocation(node: Node) -> None:
    node.config.eips[0]["allocationid"] = "eipalloc-12345"
    node.write_config()


# (id, config breaker, failover argument, expected row error or None, extra text the error needs)
BAD_INPUTS = [
    ("malformed-xml", _bad_malformed, "wan@1", None, None),
    # The row now names a VIP that does not exist; `failover wan@9` asks for it.
    ("unknown-vhid", _bad_unknown_vhid, "wan@9", ("ips", 1, "vhid"), "wan@9"),
    ("bad-routetable", _bad_routetable, "wan@1", ("routes", 1, "routetable"), "rtb-0123xyz"),
    ("bad-ipv4", _bad_ipaddr, "wan@1", ("ips", 1, "ipaddr"), "10.0.1.300"),
    # docs/contracts.md §6.1: "say which network was meant"
    ("cidr-host-bits", _bad_cidr, "wan@1", ("routes", 2, "cidr"), "10.0.1.0/24"),
    ("bad-allocation", _bad_allocation, "wan@1", ("eips", 1, "allocationid"), "eipalloc-12345"),
]


@pytest.mark.parametrize("case,breaker,vhid,row,needle", BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_and_changes_nothing(case, breaker, vhid, row, needle, scenario: Scenario,
                                               node_a: Node, cloud: Cloud, proxy: Proxy) -> None:
    # moto: none — nothing may reach it but (at most) reads. A is MASTER, so any leak would act.
    breaker(node_a)

    r = node_a.run("failover", vhid)
    assert r.code == 2, r.describe()
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines, f"an error must be printed\n{r.describe()}"
    if case == "unknown-vhid":
        # Decision: the command-line VHID names no CARP VIP — a usage error that must name it.
        # The row-level report for the same problem is checked through `validate` below.
        assert "wan@9" in r.stderr, r.describe()
    elif row is not None:
        pattern = row_error(*row)
        hits = [ln for ln in lines if pattern.search(ln)]
        assert hits, f"no one-line error like '{row[0]} row {row[1]} {row[2]}: …'\n{r.describe()}"
        assert any(needle in ln for ln in hits), f"error should mention {needle}\n{r.describe()}"

    rj = node_a.run("failover", vhid, "--json")
    assert rj.code == 2, rj.describe()
    rep = rj.json
    assert isinstance(rep, dict), f"--json must still print one object on exit 2\n{rj.describe()}"
    assert rep.get("ok") is False and rep.get("command") == "failover", rj.describe()
    assert isinstance(rep.get("error"), str) and rep["error"].strip(), rj.describe()

    rv = node_a.run("validate")
    assert rv.code == 2, rv.describe()
    if row is not None:
        assert row_error(*row).search(rv.stdout + "\n" + rv.stderr), rv.describe()

    assert proxy.mutating_counts() == {}, f"exit 2 must change nothing: {proxy.counts()}"
    assert cloud.ip_holders(WAN_VIP) == [scenario.eni[("B", "wan")]]
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == scenario.eni[("B", "lan")]
    assert cloud.eip(scenario.allocation) == (scenario.eni[("B", "wan")], WAN_VIP)
    assert not node_a.marker().exists()


# ---- validate -----------------------------------------------------------------------------------

def test_validate_good_config(node_a: Node, node_b: Node, proxy: Proxy) -> None:
    # moto: none. validate uses no network at all: no EC2 request and no IMDS request.
    for node in (node_a, node_b):
        r = node.run("validate")
        assert r.code == 0, r.describe()
        assert node.imds.counts() == {}, f"validate read IMDS: {node.imds.counts()}"
    assert proxy.counts() == {}, f"validate called EC2: {proxy.counts()}"


def test_validate_lists_every_problem(node_a: Node, proxy: Proxy) -> None:
    # moto: none.
    cfg = node_a.config
    cfg.ips[0]["ipaddr"] = "10.0.1.300"                       # ips row 1 ipaddr
    cfg.ips[1]["vhid"] = "wan@9"                              # ips row 2 vhid (no such CARP VIP)
    cfg.ips.append({"vhid": "wan@1", "interface": "opt7",     # ips row 3 interface (not in
                    "ipaddr": "10.0.1.20", "xmlrpcsync": ""})  # config.xml's <interfaces>)
    cfg.routes[0]["routetable"] = "rtb-nothex!"               # routes row 1 routetable
    cfg.routes[1]["cidr"] = "10.0.1.1/24"                     # routes row 2 cidr
    cfg.eips[0]["allocationid"] = "eipalloc-xyz"              # eips row 1 allocationid
    node_a.write_config()
    r = node_a.run("validate")
    assert r.code == 2, r.describe()
    text = r.stdout + "\n" + r.stderr
    expected = [("ips", 1, "ipaddr"), ("ips", 2, "vhid"), ("ips", 3, "interface"),
                ("routes", 1, "routetable"), ("routes", 2, "cidr"), ("eips", 1, "allocationid")]
    missing = [e for e in expected if not row_error(*e).search(text)]
    assert not missing, f"validate must list every problem; missing {missing}\n{r.describe()}"
    assert "10.0.1.0/24" in text, "say which network was meant"
    assert proxy.counts() == {}


def test_validate_address_claimed_by_two_vhids(node_a: Node) -> None:
    # moto: none. docs/contracts.md §6.1: an address claimed by IP rows of two different VHIDs makes
    # all the rows involved invalid.
    node_a.config.ips[1]["ipaddr"] = WAN_VIP  # lan@2's row now claims wan@1's address too
    node_a.write_config()
    r = node_a.run("validate")
    assert r.code == 2, r.describe()
    text = r.stdout + "\n" + r.stderr
    for row in (1, 2):
        assert re.search(rf"(?i)(?<![\w-]){TAB['ips']}\s+row\s+{row}\b", text), (
            f"ips row {row} must be reported\n{r.describe()}")


def test_failover_ignores_problems_in_other_vhids_rows(scenario: Scenario, node_a: Node,
                                                       cloud: Cloud) -> None:
    # moto: P1. docs/contracts.md §6.3: `failover <VHID>` exits 2 only if *that VHID's* rows are
    # invalid; problems in other rows are warnings.
    node_a.config.ips[0]["ipaddr"] = "10.0.1.300"  # wan@1's IP row is broken ...
    node_a.write_config()
    r = node_a.run("failover", "lan@2", "--json")  # ... but lan@2 is asked for
    assert r.code == 0, r.describe()
    rep = check_report(r, "failover")
    assert [(a["vhid"], a["status"]) for a in rep["actions"]] == [("lan@2", "changed")]
    assert cloud.ip_holders(LAN_VIP) == [node_a.eni("lan")]
    assert cloud.ip_holders(WAN_VIP) == [scenario.eni[("B", "wan")]]

