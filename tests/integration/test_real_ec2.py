"""Real EC2, not moto (issue 11): the binary against a harness made as hard as EC2 — pagination
with short and empty pages, the 200-filter-value limit, per-action token buckets, CreateTags that
fails whole for one resource, 400 RequestTimeout, InvalidRoute.NotFound, a VGW-propagated route
beside the static one, and a second pfSense pair in the same account with the same CIDRs and VHID
names (docs/contracts.md §8.3, §9.4 and §4.4 state the contract).

Owns: one test (or a few) per numbered point of issue 11, each named `test_<n>_…` after it. Each
asserts what the fixed binary must do and fails on the seed's binary for the reason the issue
names (docs/reliability.md, "Real EC2, not moto", lists them):
   1 pagination            every Describe follows NextToken to the end (split brain deferred)
   2 filter limit          ≥ 250 route tables: reconcile in sync, no request over 200 values
   3 two pairs             another pair's tags never cause a deferral or a split-brain entry;
                           doctor says what degrades without DescribeNetworkInterfaces
   4 CreateTags            one refusing resource does not leave the others untagged
   5 duplicate routes      the static route is judged, not the propagated one
   6 retryable codes       400 RequestTimeout retried; InvalidRoute.NotFound → CreateRoute
   7 doctor DryRun         refusals for state, not permission, are "permission not determined"
   8 validation            an EIP row on another VHID's IP row address is a configuration error
   9 throttling at scale   100 / 200 routes behind a token bucket: 0 failed actions; a run that
                           cannot fit its deadline says so before it starts
  10 report                resolution `planned` / `failed`; `instance` whenever IMDS answered

The proxy's EC2-like settings are per test (conftest resets the proxy, so every test starts with
EC2's filter limit on and nothing else). moto: P1 (addresses move within their subnet only, so the
second pair's identical addresses stay apart), P3, P4, P5 (tests/harness/moto_launcher.py); moto's
own TagLimitExceeded (50 user tags) for point 4.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from awsha_scenario import (
    DEFAULT_ROUTE, OTHER_ROUTE, READ_ONLY_PREFIXES, TAG_KEYS, WAN_VIP, Cloud, Node, Proxy,
    Scenario, Timed, actions_by, build_second_pair, check_report, failover_ok, parse_modified,
    wan1_on, wan1_resources, wan1_where,
)

DENIED = {"kind": "error", "status": 403, "code": "UnauthorizedOperation",
          "message": "You are not authorized to perform this operation.", "times": None}
RESOLUTIONS = ("reclaimed", "deferred", "failed", "planned")
FAILOVER_DEADLINE_S = 30  # docs/contracts.md §2.1: the default --deadline
# Process start, config, IMDS and the report, on a loaded 2-core machine with a debug build.
MARGIN_S = 3.0
# CIDR of the extra route rows (one per route table).
SCALE_CIDR = "10.200.0.0/16"


# ---- helpers ------------------------------------------------------------------------------------

def run_report(node: Node, command: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 90) -> tuple[Timed, dict[str, Any]]:
    """Run `awsha <command> … --json`; check the report shape of docs/contracts.md §4 (with the
    four resolutions of §4.4); return (run, report)."""
    r = node.run(command, *args, "--json", env_extra=env, timeout=timeout)
    rep = check_report(r, command)
    for s in rep.get("split_brain", []):
        for key in ("vhid", "resource", "by_instance", "advbase", "advskew", "at", "resolution"):
            assert key in s, f"split_brain entry lacks {key!r}: {s}\n{r.describe()}"
        assert s["resolution"] in RESOLUTIONS, f"{s}\n{r.describe()}"
    return r, rep


def of_vhid(rep: dict[str, Any], vhid: str) -> list[dict[str, Any]]:
    return [a for a in rep["actions"] if a["vhid"] == vhid]


def by_resource(rep: dict[str, Any], vhid: str = "wan@1") -> dict[str, dict[str, Any]]:
    return {a["resource"]: a for a in of_vhid(rep, vhid)}


def statuses(rep: dict[str, Any], vhid: str = "wan@1") -> dict[str, str]:
    return {r: a["status"] for r, a in by_resource(rep, vhid).items()}


def notice_keys(rep: dict[str, Any]) -> list[str]:
    return [n.get("key", "") for n in rep.get("notices", [])]


def mutating(proxy: Proxy) -> dict[str, int]:
    return proxy.mutating_counts()


def only_wan1_master(*nodes: Node) -> None:
    """lan@2 out of the way: BACKUP on these nodes, so nothing of it is touched."""
    for node in nodes:
        node.set_carp(2, state="BACKUP")


def max_filter_values(proxy: Proxy) -> tuple[int, str]:
    """The most filter values (and id-list members) one request carried, and its Action."""
    worst = max(proxy.log(), key=lambda e: e.get("filter_values", 0), default=None)
    return (worst.get("filter_values", 0), worst["action"]) if worst else (0, "")


def unfollowed_tokens(proxy: Proxy) -> list[tuple[str, int]]:
    """Pages that answered a NextToken the binary never presented: (Action, page index)."""
    log = proxy.log()
    presented = {e["params"].get("NextToken") for e in log if e["params"].get("NextToken")}
    return [(e["action"], e["page"]["index"]) for e in log
            if e.get("page") and e["page"]["next_token"]
            and e["page"]["next_token"] not in presented]


def pages_served(proxy: Proxy) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in proxy.log():
        if e.get("page"):
            out[e["action"]] = out.get(e["action"], 0) + 1
    return out


def add_route_tables(ec2: Any, scn: Scenario, n: int, holder: str = "B") -> list[str]:
    """`n` new route tables in our VPC, each with SCALE_CIDR → `holder`'s lan ENI (straight to
    moto, eight at a time)."""
    target = scn.eni[(holder, "lan")]

    def one(_: int) -> str:
        rtb = ec2.create_route_table(VpcId=scn.vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=SCALE_CIDR,
                         NetworkInterfaceId=target)
        return rtb

    with ThreadPoolExecutor(8) as pool:
        return sorted(pool.map(one, range(n)))


def route_rows(node: Node, tables: list[str], keep_default_routes: bool = True) -> None:
    """wan@1 gets one route row per table (SCALE_CIDR), after (or instead of) its two routes."""
    rows = [{"vhid": "wan@1", "routetable": t, "cidr": SCALE_CIDR, "interface": "lan",
             "xmlrpcsync": "on"} for t in tables]
    node.config.routes = (node.config.routes if keep_default_routes else []) + rows
    node.write_config()


def targets(ec2: Any, tables: list[str], cidr: str = SCALE_CIDR) -> dict[str, str | None]:
    """Where `cidr` points in each table (straight to moto, which has no filter limit)."""
    out: dict[str, str | None] = dict.fromkeys(tables)
    for t in ec2.describe_route_tables(RouteTableIds=tables)["RouteTables"]:
        for r in t.get("Routes", []):
            if r.get("DestinationCidrBlock") == cidr:
                out[t["RouteTableId"]] = r.get("NetworkInterfaceId")
    return out


def awsha_tags(cloud: Cloud, resource: str) -> dict[str, str]:
    return {k: v for k, v in cloud.tags(resource).items() if k.startswith("awsha:")}


def both_took_over(node_first: Node, node_last: Node) -> None:
    """A CARP split brain: both nodes MASTER of wan@1; `node_first` fails over, then
    `node_last` does (so node_last's tags are on everything, after node_first's takeover)."""
    only_wan1_master(node_first, node_last)
    for node in (node_first, node_last):
        node.set_carp(1, state="MASTER")
    failover_ok(node_first, "wan@1")
    failover_ok(node_last, "wan@1")


# ---- 1. pagination --------------------------------------------------------------------------------

PAGING = {
    # the writer's tags after an empty first page
    "tags-empty-first-page": {"page_size": 2, "empty_first_page": True,
                              "actions": ["DescribeTags"]},
    # short pages: the first one holds three tags of twenty
    "tags-short-pages": {"page_size": 3, "empty_first_page": False, "actions": ["DescribeTags"]},
    # the holder of the address only on a later page of DescribeNetworkInterfaces
    "enis-empty-first-page": {"page_size": 1, "empty_first_page": True,
                              "actions": ["DescribeNetworkInterfaces"]},
    "everything": {"page_size": 1, "empty_first_page": True},
}


@pytest.mark.parametrize("paging", list(PAGING))
def test_1_pagination_split_brain_is_still_deferred(paging: str, scenario: Scenario,
                                                    node_a: Node, node_b: Node, cloud: Cloud,
                                                    proxy: Proxy) -> None:
    # B (advskew 100) took over, then A (advskew 0) did: A's tags are on all four resources,
    # after B's takeover. B's reconcile must defer to A — also when A's tags (or the ENI that
    # holds the address) come only on a later page. Seed: DescribeTags' NextToken is ignored, so
    # the writer is "nobody" and B moves everything back from the higher-priority A.
    both_took_over(node_b, node_a)
    a_tags = {k: cloud.tags(r) for k, r in wan1_resources(scenario, "A").items()}
    proxy.reset()
    proxy.configure(paging=PAGING[paging])
    r, rep = run_report(node_b, "reconcile")
    assert statuses(rep) == dict.fromkeys(statuses(rep), "deferred") and len(statuses(rep)) == 4, (
        f"B must defer to the higher-priority A whose change came after B's takeover; "
        f"a tag or a holder on a later page was missed\n{r.describe()}")
    sb = rep["split_brain"]
    assert sorted(s["resource"] for s in sb) == sorted(by_resource(rep)), r.describe()
    for s in sb:
        assert (s["by_instance"], s["advbase"], s["advskew"], s["resolution"]) == (
            node_a.instance_id, 1, 0, "deferred"), s
    assert {s["at"] for s in sb} == {t["awsha:modified"] for t in a_tags.values()}, (sb, a_tags)
    assert mutating(proxy) == {}, f"nothing taken from A: {mutating(proxy)}"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    assert unfollowed_tokens(proxy) == [], (
        f"every NextToken is followed to the end: {unfollowed_tokens(proxy)}\n{r.describe()}")
    assert pages_served(proxy), "the paging was exercised"


def test_1_pagination_tagged_eni_search_follows_tokens(scenario: Scenario, node_a: Node,
                                                       node_b: Node, cloud: Cloud,
                                                       proxy: Proxy) -> None:
    # As above, without ec2:DescribeNetworkInterfaces: the holder of the address is found by the
    # tag search (DescribeTags on awsha:vhid), whose answer is paged too. A's wan ENI (A is a
    # member: its tags are on this config's route tables and EIP) holds it.
    both_took_over(node_b, node_a)
    proxy.reset()
    proxy.rules([{"action": "DescribeNetworkInterfaces", **DENIED}])
    proxy.configure(paging={"page_size": 2, "empty_first_page": True,
                            "actions": ["DescribeTags"]})
    r, rep = run_report(node_b, "reconcile")
    assert set(statuses(rep).values()) == {"deferred"}, (
        f"B must defer to A: A's tags (and the ENI the tag search finds) come on later pages: "
        f"{statuses(rep)}\n{r.describe()}")
    ip_sb = [s for s in rep["split_brain"] if s["resource"] == node_b.eni("wan")]
    assert [(s["by_instance"], s["resolution"]) for s in ip_sb] == [
        (node_a.instance_id, "deferred")], r.describe()
    assert mutating(proxy) == {}, mutating(proxy)
    assert unfollowed_tokens(proxy) == [], unfollowed_tokens(proxy)


def test_1_pagination_in_sync_reconcile_changes_nothing(scenario: Scenario, node_a: Node,
                                                        cloud: Cloud, proxy: Proxy) -> None:
    # The plain case under pages of one item and empty first pages: A holds everything and
    # wrote the tags; nothing to do, and every page is read.
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    proxy.reset()
    proxy.configure(paging={"page_size": 1, "empty_first_page": True})
    r, rep = run_report(node_a, "reconcile")
    failed = {a["resource"]: a["error"] for a in rep["actions"] if a["status"] == "failed"}
    assert not failed, f"every page is read, so nothing is missing: {failed}\n{r.describe()}"
    assert r.code == 0, r.describe()
    assert set(statuses(rep).values()) == {"unchanged"}, r.describe()
    assert rep["split_brain"] == [] and mutating(proxy) == {}, r.describe()
    assert unfollowed_tokens(proxy) == [], unfollowed_tokens(proxy)


# ---- 2. the 200-filter-value limit ----------------------------------------------------------------

def test_2_filter_limit_reconcile_with_250_route_tables(scenario: Scenario, node_a: Node,
                                                        cloud: Cloud, proxy: Proxy,
                                                        ec2: Any) -> None:
    # 252 route rows (250 tables + the scenario's two), an IP and an EIP: DescribeRouteTables
    # would carry 252 table ids, DescribeTags 254 resource ids + 5 keys. EC2 refuses more than
    # 200 values per request (FilterLimitExceeded, on in the proxy by default). Seed: both calls
    # fail, so every route action fails every minute.
    tables = add_route_tables(ec2, scenario, 250)
    only_wan1_master(node_a)
    route_rows(node_a, tables)
    r, rep = run_report(node_a, "failover", "wan@1", timeout=120)
    assert r.code == 0, r.describe()
    assert set(targets(ec2, tables).values()) == {node_a.eni("lan")}
    proxy.reset()
    r, rep = run_report(node_a, "reconcile", timeout=120)
    failed = [a for a in rep["actions"] if a["status"] == "failed"]
    assert not failed, (f"{len(failed)} failed actions, e.g. {failed[0]['error']!r}\n"
                        f"{r.describe()[:3000]}")
    assert r.code == 0, r.describe()[:3000]
    assert set(statuses(rep).values()) == {"unchanged"} and len(statuses(rep)) == 254, (
        r.describe()[:3000])
    assert mutating(proxy) == {}, mutating(proxy)
    worst, action = max_filter_values(proxy)
    assert worst <= 200, f"{action} carried {worst} filter values (EC2's limit: 200)"
    refused = [e["action"] for e in proxy.log() if e["fault"] == "filter_limit"]
    assert refused == [], f"refused for FilterLimitExceeded: {refused}"


# ---- 3. two pfSense pairs in one account ----------------------------------------------------------

@pytest.mark.parametrize("other", ["higher", "lower"])
def test_3_other_pair_never_causes_a_deferral_or_split_brain(other: str, scenario: Scenario,
                                                             node_a: Node, node_b: Node,
                                                             cloud: Cloud, proxy: Proxy,
                                                             ec2: Any, ami: str) -> None:
    # Our pair: A is gone, B (advskew 100) is MASTER and failed over wan@1. Then a second pair in
    # the same account (same CIDRs, same addresses, same VHID names) writes fresher tags — of
    # higher priority than B (advskew 0) or lower (200). Our address drifts (moved by hand to A's
    # ENI, untagged); the policy denies DescribeNetworkInterfaces, as the seed's does. Only this
    # pair's members count (docs/contracts.md §9.4): the other pair's ENI found by the
    # account-wide tag search is nobody, so B repairs, with no split-brain entry. Seed: "higher"
    # defers for ever (a false split brain every minute), "lower" reports a false reclaim.
    only_wan1_master(node_a, node_b)
    node_a.set_carp(1, state="INIT")
    node_b.set_carp(1, state="MASTER")
    failover_ok(node_b, "wan@1")
    pair = build_second_pair(ec2, ami, advskew=0 if other == "higher" else 200)
    ec2.assign_private_ip_addresses(NetworkInterfaceId=node_a.eni("wan"),
                                    PrivateIpAddresses=[WAN_VIP], AllowReassignment=True)
    assert cloud.ip_holders(WAN_VIP, vpc=scenario.vpc) == [node_a.eni("wan")]
    proxy.reset()
    proxy.rules([{"action": "DescribeNetworkInterfaces", **DENIED}])
    r, rep = run_report(node_b, "reconcile")
    acts = by_resource(rep)
    ip = acts[node_b.eni("wan")]
    assert ip["status"] == "changed", (
        f"our drifted address must be repaired, whatever another pair's tags say\n{r.describe()}")
    assert rep["split_brain"] == [], (
        f"another pair's ENI is not a member of this pair: no split brain\n{r.describe()}")
    assert not [k for k in notice_keys(rep) if k.startswith("split_brain:")], r.describe()
    assert r.code == 0, r.describe()
    assert cloud.ip_holders(WAN_VIP, vpc=scenario.vpc) == [node_b.eni("wan")]
    assert cloud.eip(scenario.allocation) == (node_b.eni("wan"), WAN_VIP)
    # The other pair is untouched.
    assert cloud.ip_holders(WAN_VIP, vpc=pair.vpc) == [pair.eni[("C", "wan")]]
    assert cloud.eip(pair.allocation) == (pair.eni[("C", "wan")], WAN_VIP)
    assert cloud.route_target(pair.rt1, DEFAULT_ROUTE) == pair.eni[("C", "lan")]
    assert cloud.tags(pair.eni[("C", "wan")])["awsha:instance"] == pair.instance["C"]


def test_3_other_pair_with_describe_network_interfaces_allowed(scenario: Scenario,
                                                               node_a: Node, node_b: Node,
                                                               cloud: Cloud, proxy: Proxy,
                                                               ec2: Any, ami: str) -> None:
    # The same drift with DescribeNetworkInterfaces permitted: the holder (A's ENI, in this
    # node's subnet, untagged) is named by EC2; the other pair's ENIs (same address, another
    # subnet) are not. Repair, no split brain (the seed gets this one right: a guard).
    only_wan1_master(node_a, node_b)
    node_a.set_carp(1, state="INIT")
    node_b.set_carp(1, state="MASTER")
    failover_ok(node_b, "wan@1")
    build_second_pair(ec2, ami)
    ec2.assign_private_ip_addresses(NetworkInterfaceId=node_a.eni("wan"),
                                    PrivateIpAddresses=[WAN_VIP], AllowReassignment=True)
    proxy.reset()
    r, rep = run_report(node_b, "reconcile")
    assert by_resource(rep)[node_b.eni("wan")]["status"] == "changed", r.describe()
    assert rep["split_brain"] == [], r.describe()
    assert cloud.ip_holders(WAN_VIP, vpc=scenario.vpc) == [node_b.eni("wan")]


def test_3_doctor_says_what_degrades_without_describe_network_interfaces(
        scenario: Scenario, node_a: Node, proxy: Proxy) -> None:
    # Seed: the check warns "denied" with a hint about finding a drifted address's holder, but
    # says nothing of the tag search that replaces it, nor of another pair in the account.
    for vhid in ("wan@1", "lan@2"):
        assert node_a.run("failover", vhid).code == 0
    proxy.reset()
    proxy.rules([{"action": "DescribeNetworkInterfaces", **DENIED}])
    r = node_a.run("doctor", "--json")
    rep = r.json
    assert isinstance(rep, dict) and isinstance(rep.get("checks"), list), r.describe()
    [c] = [c for c in rep["checks"] if c["name"] == "iam ec2:DescribeNetworkInterfaces"]
    assert c["status"] == "warn", c
    text = f"{c['detail']} {c['hint']}"
    assert re.search(r"(?i)\btag", text) and re.search(r"(?i)\bpair", text), (
        f"say plainly what degrades: the holder of a drifted address then comes from awsha "
        f"tags, and another pair's tags must not count: {c}")
    assert r.code == 0, r.describe()


# ---- 4. one CreateTags for everything ------------------------------------------------------------

@pytest.mark.parametrize("refusal", ["tag-limit", "denied-for-one"])
def test_4_one_refusing_resource_leaves_the_others_tagged(refusal: str, scenario: Scenario,
                                                         node_a: Node, cloud: Cloud,
                                                         proxy: Proxy, ec2: Any) -> None:
    # rt2 refuses tags: it already has 50 user tags (moto's TagLimitExceeded, as EC2), or a
    # narrowed IAM policy denies tagging it (the proxy refuses any CreateTags naming it). Either
    # way a batch that names rt2 fails whole. Everything else that moved must still carry all
    # five awsha tags — untagged, it looks like "nobody's" change to the peer (docs/contracts.md
    # §9.3, rule 4). Seed: one CreateTags for all four resources, so none is tagged.
    if refusal == "tag-limit":
        ec2.create_tags(Resources=[scenario.rt2],
                        Tags=[{"Key": f"team:{i}", "Value": "x"} for i in range(50)])
    else:
        proxy.rules([{"action": "CreateTags", "kind": "error", "status": 403,
                      "code": "UnauthorizedOperation",
                      "message": "You are not authorized to perform this operation on {match}.",
                      "list_contains": {"ResourceId": scenario.rt2}}])
    only_wan1_master(node_a)
    r, rep = run_report(node_a, "failover", "wan@1")
    assert set(statuses(rep).values()) == {"changed"}, r.describe()
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    for resource in (node_a.eni("wan"), scenario.rt1, scenario.allocation):
        tags = awsha_tags(cloud, resource)
        assert sorted(tags) == sorted(TAG_KEYS), (
            f"{resource} changed but lacks awsha tags: {tags}\n{r.describe()}")
        assert (tags["awsha:instance"], tags["awsha:vhid"], tags["awsha:advbase"],
                tags["awsha:advskew"]) == (node_a.instance_id, "wan@1", "1", "0"), tags
        parse_modified(tags["awsha:modified"])
    assert awsha_tags(cloud, scenario.rt2) == {}, "the refusing resource stays untagged"
    assert r.code == 1, f"a failed tagging call is a failed API call\n{r.describe()}"
    naming = [n for n in rep["notices"] if scenario.rt2 in n["message"]]
    assert naming, f"a notice names the resource that refused: {rep['notices']}"


# ---- 5. duplicate destinations ------------------------------------------------------------------

def test_5_propagated_route_beside_the_static_one_is_not_drift(scenario: Scenario,
                                                               node_a: Node, cloud: Cloud,
                                                               proxy: Proxy, ec2: Any) -> None:
    # After A's failover both tables also list a VGW-propagated route with the same destination,
    # after the static one (origin CreateRoute). The static route is the one awsha owns and it
    # points at A. Seed: a map keyed by CIDR keeps the propagated route, so every reconcile
    # "repairs" both routes (a ReplaceRoute and a notice a minute).
    only_wan1_master(node_a)
    failover_ok(node_a, "wan@1")
    proxy.reset()
    proxy.configure(propagated_routes=[
        {"route_table": scenario.rt1, "cidr": DEFAULT_ROUTE, "gateway": "vgw-0a1b2c3d4e5f60718"},
        {"route_table": scenario.rt2, "cidr": OTHER_ROUTE, "gateway": "vgw-0a1b2c3d4e5f60718"}])
    for round_ in range(2):
        r, rep = run_report(node_a, "reconcile")
        routes = {a["resource"]: a["status"] for a in actions_by(rep, "route")}
        assert routes == {scenario.rt1: "unchanged", scenario.rt2: "unchanged"}, (
            f"round {round_}: the static route points here; the propagated one is not awsha's"
            f"\n{r.describe()}")
        assert r.code == 0, r.describe()
    assert mutating(proxy) == {}, f"no mutating request: {mutating(proxy)}"
    # The static route is still judged: moved away, it is repaired (and the propagated one is
    # left alone).
    ec2.replace_route(RouteTableId=scenario.rt1, DestinationCidrBlock=DEFAULT_ROUTE,
                      NetworkInterfaceId=scenario.eni[("B", "lan")])
    proxy.reset()
    proxy.configure(propagated_routes=[
        {"route_table": scenario.rt1, "cidr": DEFAULT_ROUTE, "gateway": "vgw-0a1b2c3d4e5f60718"}])
    r, rep = run_report(node_a, "reconcile")
    assert statuses(rep)[scenario.rt1] == "changed", r.describe()
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == node_a.eni("lan")
    assert [c["params"].get("RouteTableId") for c in proxy.calls("ReplaceRoute")] == [
        scenario.rt1]


# ---- 6. retryable codes, and InvalidRoute.NotFound ------------------------------------------------

@pytest.mark.parametrize("code", ["RequestTimeout", "RequestTimeoutException"])
def test_6_request_timeout_400_is_retried(code: str, scenario: Scenario, node_a: Node,
                                          cloud: Cloud, proxy: Proxy) -> None:
    # The AWS SDKs treat RequestTimeout / RequestTimeoutException as transient although EC2
    # answers them with HTTP 400 (docs/contracts.md §8.3). Seed: a 400 is final, so rt1 fails.
    proxy.rules([{"action": "ReplaceRoute", "params": {"RouteTableId": scenario.rt1},
                  "kind": "error", "status": 400, "code": code, "times": 1,
                  "message": "Your socket connection to the server was not read from or written "
                             "to within the timeout period."}])
    only_wan1_master(node_a)
    r, rep = run_report(node_a, "failover", "wan@1", "--deadline", "10")
    assert statuses(rep)[scenario.rt1] == "changed", (
        f"{code} (HTTP 400) is transient and must be retried\n{r.describe()}")
    assert r.code == 0, r.describe()
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    tries = [c["status"] for c in proxy.calls("ReplaceRoute")
             if c["params"].get("RouteTableId") == scenario.rt1]
    assert tries == [400, 200], tries


@pytest.mark.parametrize("command", ["failover", "reconcile"])
def test_6_invalid_route_not_found_creates_the_route(command: str, scenario: Scenario,
                                                     node_a: Node, cloud: Cloud,
                                                     proxy: Proxy) -> None:
    # rt2's route was deleted; ReplaceRoute answers InvalidRoute.NotFound (what EC2 may answer
    # instead of "InvalidParameterValue … Use CreateRoute"). It must be created like the other.
    # Seed: only the InvalidParameterValue wording leads to CreateRoute; this one fails.
    only_wan1_master(node_a)
    cloud.delete_route(scenario.rt2, OTHER_ROUTE)
    proxy.configure(replace_route_missing="InvalidRoute.NotFound")
    args = ("wan@1",) if command == "failover" else ()
    r, rep = run_report(node_a, command, *args)
    assert statuses(rep)[scenario.rt2] == "changed", (
        f"a missing route answered InvalidRoute.NotFound is created\n{r.describe()}")
    assert r.code == 0, r.describe()
    assert cloud.route_target(scenario.rt2, OTHER_ROUTE) == node_a.eni("lan")
    created = [(c["params"].get("RouteTableId"), c["params"].get("DestinationCidrBlock"))
               for c in proxy.calls("CreateRoute")]
    assert created == [(scenario.rt2, OTHER_ROUTE)], created


# ---- 7. doctor's DryRun probes refused for state, not permission ----------------------------------

def test_7_doctor_create_route_probe_answered_route_already_exists(scenario: Scenario,
                                                                  node_a: Node,
                                                                  proxy: Proxy) -> None:
    # The CreateRoute probe targets a route that exists; EC2 may check that before permissions
    # and answer RouteAlreadyExists. That says nothing about ec2:CreateRoute. Seed: `fail`.
    for vhid in ("wan@1", "lan@2"):
        assert node_a.run("failover", vhid).code == 0
    proxy.reset()
    proxy.rules([{"action": "CreateRoute", "params": {"DryRun": "true"}, "kind": "error",
                  "status": 400, "code": "RouteAlreadyExists",
                  "message": f"The route identified by {DEFAULT_ROUTE} already exists."}])
    r = node_a.run("doctor", "--json")
    rep = r.json
    assert isinstance(rep, dict), r.describe()
    [c] = [c for c in rep["checks"] if c["name"].startswith("iam ec2:CreateRoute")]
    assert c["status"] == "warn", f"{c}\n{r.describe()}"
    assert re.search(r"(?i)permission not determined", c["detail"]), c
    assert not [x for x in rep["checks"] if x["status"] == "fail"], r.describe()
    assert r.code == 0, r.describe()


def test_7_doctor_standby_associate_probe_answered_not_mapped(scenario: Scenario,
                                                             node_a: Node, node_b: Node,
                                                             proxy: Proxy) -> None:
    # On the standby the EIP's private address is not on its ENI, so the AssociateAddress probe
    # may be answered "… is not mapped to the interface …" before permissions are looked at.
    # Seed: `fail` on a healthy standby.
    for vhid in ("wan@1", "lan@2"):
        assert node_a.run("failover", vhid).code == 0
    proxy.reset()
    proxy.rules([{"action": "AssociateAddress", "params": {"DryRun": "true"}, "kind": "error",
                  "status": 400, "code": "InvalidParameterValue",
                  "message": f"{WAN_VIP} is not mapped to the interface {node_b.eni('wan')}"}])
    r = node_b.run("doctor", "--json")
    rep = r.json
    assert isinstance(rep, dict), r.describe()
    [c] = [c for c in rep["checks"] if c["name"].startswith("iam ec2:AssociateAddress")]
    assert c["status"] == "warn", f"{c}\n{r.describe()}"
    assert re.search(r"(?i)permission not determined", c["detail"]), c
    assert not [x for x in rep["checks"] if x["status"] == "fail"], r.describe()
    assert r.code == 0, r.describe()


# ---- 8. validation: an EIP row on another VHID's address --------------------------------------------

EIP_ROW_2 = re.compile(r"(?i)(?<![\w-])(?:elastic ips|eips|awshaeips)\s+row\s+2\s+privateip\s*:")


def test_8_eip_row_on_another_vhids_ip_row_address(scenario: Scenario, node_a: Node,
                                                   cloud: Cloud, proxy: Proxy,
                                                   ec2: Any) -> None:
    # lan@2 gets an Elastic IP row whose private IP is wan@1's IP row address: moving wan@1's
    # address drags the EIP along, and lan@2's reconcile would then fail "not mapped" for ever.
    # Seed: accepted; `failover lan@2` acts.
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    node_a.config.eips.append({"vhid": "lan@2", "allocationid": alloc, "interface": "wan",
                               "privateip": WAN_VIP, "xmlrpcsync": "on"})
    node_a.write_config()
    r = node_a.run("validate")
    text = r.stdout + r.stderr
    assert r.code == 2, f"a configuration error\n{r.describe()}"
    lines = [ln for ln in text.splitlines() if EIP_ROW_2.search(ln)]
    assert lines, f"name awshaeips row 2 privateip\n{r.describe()}"
    assert WAN_VIP in lines[0] or re.search(r"(?i)ips\s+row\s+1", lines[0]), (
        f"say which address / which IP row: {lines}")
    r, rep = run_report(node_a, "failover", "lan@2")
    assert r.code == 2, r.describe()
    assert EIP_ROW_2.search(rep.get("error", "")) and "\n" not in rep["error"], r.describe()
    assert proxy.counts() == {}, f"no EC2 request at all: {proxy.counts()}"
    assert cloud.eip(alloc) == (None, None)


# ---- 9. throttling at scale ---------------------------------------------------------------------

BUCKET = {"ReplaceRoute": {"capacity": 40, "refill": 10}}


def scale_failover(node: Node, scn: Scenario, proxy: Proxy, ec2: Any, n: int
                   ) -> tuple[Timed, dict[str, Any], list[str]]:
    tables = add_route_tables(ec2, scn, n)
    only_wan1_master(node)
    route_rows(node, tables, keep_default_routes=False)
    proxy.reset()
    proxy.configure(buckets=BUCKET)
    r, rep = run_report(node, "failover", "wan@1", timeout=FAILOVER_DEADLINE_S + 30)
    ideal = 1.25 * (n - BUCKET["ReplaceRoute"]["capacity"]) / BUCKET["ReplaceRoute"]["refill"]
    print(f"\nfailover, {n} routes behind ReplaceRoute bucket 40/10 s: {r.elapsed:.1f} s "
          f"(bucket's limit × 1.25: {ideal:.1f} s), exit {r.code}, ReplaceRoute requests "
          f"{proxy.counts().get('ReplaceRoute', 0)}, throttled {proxy.throttled()}, "
          f"failed {sum(a['status'] == 'failed' for a in rep['actions'])}")
    return r, rep, tables


@pytest.mark.parametrize("n", [120, 200])
def test_9_throttled_failover_at_scale_fails_nothing(n: int, scenario: Scenario, node_a: Node,
                                                     cloud: Cloud, proxy: Proxy,
                                                     ec2: Any) -> None:
    # n route tables, one route row each, all wan@1, behind EC2's token bucket for ReplaceRoute
    # (capacity 40, refill 10/s here): the failover must wait for the bucket, not burn its
    # attempts. Seed: blind exponential backoff, 8 attempts (3.2–6.3 s of pauses): some routes
    # fail. (120, not 100: the bucket then needs 8 s, beyond the seed's longest backoff; at 100
    # routes — 6 s — the seed's jitter gets all through in most runs.)
    r, rep, tables = scale_failover(node_a, scenario, proxy, ec2, n)
    failed = [a for a in rep["actions"] if a["status"] == "failed"]
    assert not failed, (f"{len(failed)} of {len(rep['actions'])} actions failed, e.g. "
                        f"{failed[0]['resource']}: {failed[0]['error']!r}")
    assert r.code == 0, r.describe()[:3000]
    assert r.elapsed <= FAILOVER_DEADLINE_S + MARGIN_S, f"{r.elapsed:.1f} s"
    assert set(targets(ec2, tables).values()) == {node_a.eni("lan")}
    assert cloud.ip_holders(WAN_VIP) == [node_a.eni("wan")]
    assert proxy.throttled().get("ReplaceRoute", 0) > 0, "the bucket was exercised"
    if n <= 120:
        # This fits the default deadline even at EC2's default rate (50 + 5/s: 14 s for 120).
        assert not [k for k in notice_keys(rep) if k.startswith("budget:")], rep["notices"]


def test_9_work_that_cannot_fit_the_deadline_is_announced_before_starting(
        scenario: Scenario, node_a: Node, proxy: Proxy, ec2: Any) -> None:
    # 100 routes with --deadline 5: at EC2's documented rate for ReplaceRoute (burst 50, refill
    # 5/s) that is 10 s of work. The run says so before its first request is answered: a
    # `warning` notice with key budget:wan@1, and its line on stderr. The proxy holds every EC2
    # request unanswered until the test has read that line, so "before" is a fact, not a race
    # between the stderr reader and the proxy's clock. Seed: it only times out.
    tables = add_route_tables(ec2, scenario, 100)
    only_wan1_master(node_a)
    route_rows(node_a, tables, keep_default_routes=False)
    proxy.reset()
    proxy.configure(buckets=BUCKET)
    proxy.rules([{"action": "*", "kind": "hold", "seconds": 60}])
    argv = node_a._argv(("--deadline", "5", "failover", "wan@1", "--json"))
    proc = subprocess.Popen(argv, env=node_a.env(), cwd=str(node_a.dir), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    out_parts: list[str] = []
    warned = threading.Event()

    # One reader per pipe, each the only one: a report larger than a pipe's buffer must never wait
    # for a reader that is busy with the other pipe (communicate() beside a stderr thread can).
    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "wan@1" in line and re.search(r"(?i)deadline|budget|cannot fit|not fit", line):
                warned.set()

    def read_stdout() -> None:
        assert proc.stdout is not None
        out_parts.append(proc.stdout.read())

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stderr, read_stdout)]
    for t in readers:
        t.start()
    started = time.monotonic()
    try:
        # Until the release nothing can be answered (the log holds answered requests only). Wait
        # for the line, or for the run to end without it (bounded).
        until = time.monotonic() + 60
        while not warned.wait(0.05) and proc.poll() is None and time.monotonic() < until:
            pass
        if not warned.is_set():
            readers[0].join(timeout=5)  # a run that ended: its last lines
        said_first = warned.is_set()
        answered_before = [e for e in proxy.log() if e["status"]]
    finally:
        proxy.release()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("failover still running after 60 s")
    elapsed = time.monotonic() - started
    for t in readers:
        t.join(timeout=5)
    out = "".join(out_parts)
    stderr = "\n".join(lines)
    r = Timed(proc.returncode, out, stderr, None)
    try:
        rep = json.loads(out)
    except ValueError:
        pytest.fail(f"stdout is not one JSON object\n{r.describe()}")
    assert elapsed <= 5 + MARGIN_S, f"{elapsed:.1f} s"
    budget = [n for n in rep.get("notices", []) if n.get("key") == "budget:wan@1"]
    assert budget and budget[0]["level"] == "warning", (
        f"no `warning` notice with key budget:wan@1: {rep.get('notices')}\n{r.describe()[:3000]}")
    assert said_first, f"the budget warning is not on stderr before any EC2 answer\n{stderr}"
    assert answered_before == [], answered_before
    assert any(budget[0]["message"][:60] in line for line in lines), stderr
    assert [e for e in proxy.log() if e["status"]], "EC2 was called"


# ---- 10. resolutions and `instance` (docs/contracts.md §4.1, §4.4) ---------------------------------

def test_10_dry_run_split_brain_is_planned(scenario: Scenario, node_a: Node, node_b: Node,
                                           cloud: Cloud, proxy: Proxy) -> None:
    # A (preferred) took over, then B did: A's reconcile would reclaim everything. With
    # --dry-run nothing is reclaimed: the split brain is reported as `planned`. Seed: "reclaimed".
    both_took_over(node_a, node_b)
    proxy.reset()
    r, rep = run_report(node_a, "reconcile", "--dry-run")
    assert set(statuses(rep).values()) == {"planned"}, r.describe()
    sb = rep["split_brain"]
    assert len(sb) == 4, r.describe()
    assert {(s["by_instance"], s["resolution"]) for s in sb} == {
        (node_b.instance_id, "planned")}, f"nothing was reclaimed in a dry run\n{r.describe()}"
    assert mutating(proxy) == {}
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "B")


def test_10_failed_reclaim_is_reported_failed(scenario: Scenario, node_a: Node, node_b: Node,
                                              cloud: Cloud, proxy: Proxy) -> None:
    # As above, but rt1's ReplaceRoute is denied: that reclaim was attempted and failed. It is
    # still a split brain — reported with resolution `failed`, the action failed with EC2's
    # error. Seed: no split_brain entry at all for rt1.
    both_took_over(node_a, node_b)
    proxy.reset()
    proxy.rules([{"action": "ReplaceRoute", "params": {"RouteTableId": scenario.rt1}, **DENIED}])
    r, rep = run_report(node_a, "reconcile")
    assert r.code == 1, r.describe()
    acts = by_resource(rep)
    assert acts[scenario.rt1]["status"] == "failed", r.describe()
    assert "UnauthorizedOperation" in acts[scenario.rt1]["error"], acts[scenario.rt1]
    sb = {s["resource"]: s for s in rep["split_brain"]}
    assert scenario.rt1 in sb, f"a failed reclaim is still a split brain\n{r.describe()}"
    assert (sb[scenario.rt1]["by_instance"], sb[scenario.rt1]["resolution"]) == (
        node_b.instance_id, "failed"), sb[scenario.rt1]
    others = {k: v["resolution"] for k, v in sb.items() if k != scenario.rt1}
    assert others == dict.fromkeys(others, "reclaimed") and len(others) == 3, r.describe()
    assert cloud.route_target(scenario.rt1, DEFAULT_ROUTE) == node_b.eni("lan")


@pytest.mark.parametrize("command", ["failover", "reconcile"])
def test_10_instance_is_reported_whenever_imds_answered_it(command: str, scenario: Scenario,
                                                          node_a: Node, proxy: Proxy) -> None:
    # IMDS answers the instance id but has no placement/region (IMDS before 2020-08-24): the
    # run cannot reach EC2, yet it learnt `instance` from IMDS, so the report carries it
    # (docs/contracts.md §4.1). Seed: omitted whenever the run stops at discovery.
    node_a.imds.faults("no_region")
    args = ("wan@1",) if command == "failover" else ()
    r, rep = run_report(node_a, command, *args)
    assert node_a.imds.counts().get("GET /latest/meta-data/instance-id", 0) >= 1, (
        node_a.imds.counts())
    assert rep.get("instance") == node_a.instance_id, (
        f"IMDS named the instance: the report must carry it\n{r.describe()}")
    # And in an ordinary run, of course.
    node_a.imds.faults("ok")
    r, rep = run_report(node_a, command, *args)
    assert rep.get("instance") == node_a.instance_id, r.describe()
