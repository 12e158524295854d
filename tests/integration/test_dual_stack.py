"""Integration tests of dual stack and prefix lists (issue 14), written against docs/contracts.md
§5.5 (fixed schema) with §4 (report), §6 (validation), §7 (tags), §8 (execution, CreateRoute
fallback, --dry-run) and §9 (reconcile rules) as they apply to the new kinds.

Owns: the issue-14 tests of the binary. They run in the opt-in dual-stack world (the `dual`
fixture; awsha_scenario.py "dual stack"): the default IPv4 scenario plus the VPC's /56, a /64 per
subnet, IPv6 addresses on every ENI, CARP VIP wan@3 (vhid 3 on wan) whose address VIP6 =
<wan /64>::10 starts on B's wan ENI, and wan@3's routes, all to B's lan ENI: ::/0 in rt1, the /56
2600:1f18:abcd:ef00::/56 in rt2 and a customer-managed prefix list (pl-…) in rt3. Node A is MASTER
(advskew 0), B BACKUP (advskew 100), as in every other file.

The contract checked (docs/contracts.md §5.5 and §8.1):
  * an IP row's `ipaddr` may be IPv6, in any case or form, used in RFC 5952 form; failover moves it
    with UnassignIpv6Addresses at the ENI that holds it and AssignIpv6Addresses here — afterwards
    it is on this node's ENI and on no other; action kind `ip`, resource this node's ENI, target
    the RFC 5952 address;
  * a route row's `cidr` may be an IPv6 CIDR or a `pl-` id (8 or 17 hex digits, any case), sent as
    DestinationIpv6CidrBlock / DestinationPrefixListId to ReplaceRoute (CreateRoute when missing)
    and read back from the same fields; target `"<destination> -> eni-…"` with the destination in
    RFC 5952 form or the pl- id in lower case;
  * reconcile right after such a failover sends no mutating request; status shows it in sync;
  * split brain on an IPv6 address and on IPv6/prefix-list routes behaves as on IPv4, tags
    unchanged in schema;
  * failover --dry-run sends no mutating request and its plan names AssignIpv6Addresses and the
    ReplaceRoutes with DestinationIpv6CidrBlock= / DestinationPrefixListId=;
  * `interfaces --json` lists `ipv6s` and `subnet_ipv6_cidrs` per ENI; `map-ip` maps IPv6;
  * bad IPv6 input exits 2 with a `<tab> row <n> <element>:` line and sends nothing.

moto behaviour relied on (tests/harness/moto_launcher.py): P6 (AssignIpv6Addresses refuses an
address another ENI holds, as EC2 does — so a failover that skips the unassign fails here as on
EC2; UnassignIpv6Addresses refuses an address the ENI lacks), P7 (the ENI filter
ipv6-addresses.ipv6-address), P8 (canonical VPC/subnet blocks, read by the IMDS emulator), P9
(IPv6 route destinations keyed canonically, prefix-list routes via an ENI, RouteAlreadyExists);
P5 for DryRun; plain moto for CreateTags/DescribeTags and DescribeRouteTables' destination fields.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from awsha_scenario import (
    LAN_VIP, TAG_KEYS, V6_DEFAULT_ROUTE, V6_REMOTE_ROUTE, WAN_VIP, Cloud, DualStack, Node, Proxy,
    Scenario, Timed, actions_by, check_report, loose_ipv6, parse_modified, wan3_on, wan3_rows,
    wan3_where,
)

DEST_FIELDS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock", "DestinationPrefixListId")
WAN3_KINDS = ["ip", "route", "route", "route"]

# Tab names in error messages, as test_failover.py accepts them (docs/contracts.md §6.2 fixes the
# shape `<tab> row <n> <element>: …`, not whether <tab> is the GUI title or the config.xml
# element).
TABS = {"ips": r"(?:ips|awshaips)", "routes": r"(?:routes|awsharoutes)",
        "eips": r"(?:elastic ips|eips|awshaeips)"}
ANY_ROW = re.compile(r"(?i)(?<![\w-])(elastic ips|awshaips|awsharoutes|awshaeips|ips|routes|eips)"
                     r"\s+row\s+(\d+)\s+(\w+)\s*:")


def tab_key(name: str) -> str:
    n = name.lower()
    return "ips" if n in ("ips", "awshaips") else "routes" if n in ("routes", "awsharoutes") \
        else "eips"


def row_error(tab: str, row: int, element: str) -> re.Pattern[str]:
    return re.compile(rf"(?i)(?<![\w-]){TABS[tab]}\s+row\s+{row}\s+{element}\s*:")


# ---- helpers ------------------------------------------------------------------------------------

def only_wan3(*nodes: Node) -> None:
    """wan@1 and lan@2 out of the way: BACKUP on these nodes, so only wan@3 acts."""
    for node in nodes:
        node.set_carp(1, state="BACKUP")
        node.set_carp(2, state="BACKUP")


def use_rows(node: Node, ds: DualStack, form: str) -> None:
    """Rewrite wan@3's four rows (ips row 3, routes rows 3–5) in `form` (awsha_scenario.wan3_rows)."""
    ips, routes = wan3_rows(node.scn, ds, form)
    node.config.ips[2:3] = ips
    node.config.routes[2:5] = routes
    node.write_config()


def failover_wan3(node: Node, *flags: str) -> tuple[Timed, dict[str, Any]]:
    r = node.run("failover", "wan@3", "--json", *flags)
    assert r.code == 0, (f"failover wan@3 must exit 0: its IPv6 and prefix-list rows are valid "
                         f"(docs/contracts.md §5.5)\n{r.describe()}")
    return r, check_report(r, "failover")


def reconcile(node: Node, code: int = 0) -> dict[str, Any]:
    r = node.run("reconcile", "--json")
    assert r.code == code, r.describe()
    rep = check_report(r, "reconcile")
    rep["_run"] = r
    for s in rep.get("split_brain", []):
        for key in ("vhid", "resource", "by_instance", "advbase", "advskew", "at", "resolution"):
            assert key in s, f"split_brain entry lacks {key!r}: {s}\n{r.describe()}"
    return rep


def why(rep: dict[str, Any]) -> str:
    return rep["_run"].describe()


def wan3_by_key(rep: dict[str, Any], scn: Scenario, ds: DualStack,
                describe: str = "") -> dict[str, dict[str, Any]]:
    """wan@3's four actions keyed like wan3_where (ip, rt1, rt2, rt3)."""
    describe = describe or (why(rep) if "_run" in rep else json.dumps(rep)[:3000])
    acts = [a for a in rep["actions"] if a["vhid"] == "wan@3"]
    assert sorted(a["kind"] for a in acts) == WAN3_KINDS, (
        f"one action per wan@3 row (1 ip, 3 routes)\n{describe}")
    tables = {rtb: key for key, (rtb, _) in ds.destinations(scn).items()}
    out = {"ip": actions_by({"actions": acts}, "ip")[0]}
    for a in actions_by({"actions": acts}, "route"):
        out[tables.get(a["resource"], a["resource"])] = a
    assert set(out) == {"ip", "rt1", "rt2", "rt3"}, describe
    return out


def listed(call: dict[str, Any], name: str) -> list[str]:
    """The values of a list parameter (`Ipv6Addresses.1`, `Ipv6Addresses.2`, …) in a proxy log entry."""
    found = [(int(m.group(1)), v) for k, v in call["params"].items()
             if (m := re.fullmatch(rf"{name}\.(\d+)", k))]
    return [v for _, v in sorted(found)]


def destination_fields(call: dict[str, Any]) -> dict[str, str]:
    return {k: call["params"][k] for k in DEST_FIELDS if k in call["params"]}


def route_calls(proxy: Proxy, action: str, rtb: str) -> list[dict[str, Any]]:
    return [c for c in proxy.calls(action) if c["params"].get("RouteTableId") == rtb]


def expected_targets(scn: Scenario, ds: DualStack, node: str) -> dict[str, str]:
    lan = scn.eni[(node, "lan")]
    out = {"ip": ds.vip6}
    for key, (_, dest) in ds.destinations(scn).items():
        out[key] = f"{dest} -> {lan}"
    return out


def assert_wan3_tagged(cloud: Cloud, scn: Scenario, ds: DualStack, node: Node, advskew: int,
                       since: datetime, until: datetime) -> None:
    for resource in (node.eni("wan"), scn.rt1, scn.rt2, ds.rt3):
        tags = cloud.tags(resource)
        awsha = {k: v for k, v in tags.items() if k.startswith("awsha:")}
        assert set(awsha) == set(TAG_KEYS), (
            f"tags unchanged in schema (docs/contracts.md §7) on {resource}: {tags}")
        assert (awsha["awsha:vhid"], awsha["awsha:instance"], awsha["awsha:advbase"],
                awsha["awsha:advskew"]) == ("wan@3", node.instance_id, "1", str(advskew)), tags
        at = parse_modified(awsha["awsha:modified"])
        assert since - timedelta(seconds=1) <= at <= until + timedelta(seconds=1), (at, resource)


MOVE_ACTIONS = {"AssignIpv6Addresses", "UnassignIpv6Addresses", "ReplaceRoute", "CreateRoute",
                "CreateTags"}


# ---- failover -----------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["canonical", "loose"])
def test_failover_moves_ipv6_address_and_routes(form: str, dual: DualStack, scenario: Scenario,
                                                node_a: Node, cloud: Cloud, proxy: Proxy) -> None:
    # moto: P6 (the address can only reach A after B let it go), P7–P9. form "loose": every IPv6
    # value in config.xml upper case with all leading zeros, the pl- id upper case — the requests
    # and the report must still carry RFC 5952 text and the lower-case id.
    s, ds = scenario, dual
    use_rows(node_a, ds, form)
    since = datetime.now(timezone.utc)
    r, rep = failover_wan3(node_a)
    until = datetime.now(timezone.utc)
    assert rep["instance"] == node_a.instance_id, r.describe()
    acts = wan3_by_key(rep, s, ds, r.describe())
    assert {k: a["status"] for k, a in acts.items()} == dict.fromkeys(acts, "changed"), r.describe()
    assert acts["ip"]["resource"] == node_a.eni("wan"), r.describe()
    assert {k: a["target"] for k, a in acts.items()} == expected_targets(s, ds, "A"), (
        f"targets: the RFC 5952 address, '<destination> -> eni-…' (RFC 5952 / lower-case pl-)\n"
        f"{r.describe()}")
    assert {a["resource"] for k, a in acts.items() if k != "ip"} == {s.rt1, s.rt2, ds.rt3}

    # Where things are now: VIP6 on A's wan ENI and on no other ENI; the three routes on A's lan.
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")
    assert cloud.ip_holders(WAN_VIP) == [s.eni[("B", "wan")]], "wan@1 was not asked for"
    assert cloud.route_target(s.rt1, "0.0.0.0/0") == s.eni[("B", "lan")], "wan@1's IPv4 route"
    assert_wan3_tagged(cloud, s, ds, node_a, 0, since, until)
    assert node_a.marker("wan_3").exists(), "the takeover marker of wan@3"

    # How: UnassignIpv6Addresses at B's ENI, then AssignIpv6Addresses here, both in RFC 5952 form.
    m = proxy.mutating_counts()
    assert set(m) <= MOVE_ACTIONS, f"only the IPv6 move, the routes and the tags: {m}"
    unassigned = [c for c in proxy.calls("UnassignIpv6Addresses") if c["status"] == 200]
    assigned = [c for c in proxy.calls("AssignIpv6Addresses") if c["status"] == 200]
    assert [(c["params"].get("NetworkInterfaceId"), listed(c, "Ipv6Addresses"))
            for c in unassigned] == [(s.eni[("B", "wan")], [ds.vip6])], proxy.log()
    assert [(c["params"].get("NetworkInterfaceId"), listed(c, "Ipv6Addresses"))
            for c in assigned] == [(node_a.eni("wan"), [ds.vip6])], proxy.log()
    assert assigned[0]["t"] >= unassigned[0]["t"], "EC2 assigns only after the holder let go"
    assert not any(ds.vip6 in listed(c, "PrivateIpAddresses") + listed(c, "PrivateIpAddress")
                   for c in proxy.calls("AssignPrivateIpAddresses")), "IPv6 is not an IPv4 call"
    # Each route in its own destination field, never DestinationCidrBlock.
    for key, (rtb, dest) in ds.destinations(s).items():
        calls = route_calls(proxy, "ReplaceRoute", rtb)
        assert calls, f"no ReplaceRoute for {key}"
        field = "DestinationPrefixListId" if dest.startswith("pl-") else "DestinationIpv6CidrBlock"
        for c in calls:
            assert destination_fields(c) == {field: dest}, (key, c["params"])
            assert c["params"].get("NetworkInterfaceId") == node_a.eni("lan"), c["params"]
        assert calls[-1]["status"] == 200, (key, calls)


@pytest.mark.parametrize("missing", ["InvalidParameterValue", "InvalidRoute.NotFound"])
def test_missing_ipv6_and_prefix_list_routes_are_created(missing: str, dual: DualStack,
                                                         scenario: Scenario, node_a: Node,
                                                         cloud: Cloud, proxy: Proxy,
                                                         ec2: Any) -> None:
    # moto: ReplaceRoute on a missing IPv6 / prefix-list destination answers InvalidParameterValue
    # "… Use CreateRoute instead." as for IPv4 (EC2's answer, moto PR #6425); with
    # "InvalidRoute.NotFound" the proxy answers what EC2 may answer once that defect is fixed
    # (test_real_ec2.py point 6). P9 keeps the prefix list of a CreateRoute via an ENI.
    s, ds = scenario, dual
    if missing != "InvalidParameterValue":
        proxy.configure(replace_route_missing=missing)
    ec2.delete_route(RouteTableId=s.rt1, DestinationIpv6CidrBlock=V6_DEFAULT_ROUTE)
    ec2.delete_route(RouteTableId=ds.rt3, DestinationPrefixListId=ds.prefix_list)
    assert cloud.route_target(s.rt1, V6_DEFAULT_ROUTE) is None
    assert cloud.route_target(ds.rt3, ds.prefix_list) is None
    r, rep = failover_wan3(node_a)
    acts = wan3_by_key(rep, s, ds, r.describe())
    assert {k: a["status"] for k, a in acts.items()} == dict.fromkeys(acts, "changed"), r.describe()
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")
    for rtb, field, dest in ((s.rt1, "DestinationIpv6CidrBlock", V6_DEFAULT_ROUTE),
                             (ds.rt3, "DestinationPrefixListId", ds.prefix_list)):
        replaced = route_calls(proxy, "ReplaceRoute", rtb)
        created = route_calls(proxy, "CreateRoute", rtb)
        assert replaced and replaced[0]["status"] == 400, f"ReplaceRoute first, refused: {replaced}"
        assert destination_fields(replaced[0]) == {field: dest}, replaced[0]["params"]
        assert len(created) == 1 and created[0]["status"] == 200, created
        assert destination_fields(created[0]) == {field: dest}, (
            f"CreateRoute must carry the destination in {field}: {created[0]['params']}")
        assert created[0]["params"].get("NetworkInterfaceId") == node_a.eni("lan")
        assert created[0]["t"] >= replaced[0]["t"]
    assert route_calls(proxy, "CreateRoute", s.rt2) == [], "rt2's /56 existed: no CreateRoute"


def test_propagated_ipv6_route_beside_the_static_one_is_not_drift(dual: DualStack,
                                                                  scenario: Scenario,
                                                                  node_a: Node, cloud: Cloud,
                                                                  proxy: Proxy) -> None:
    # moto: P9; the proxy lists a VGW-propagated ::/0 after the static one in rt1 (moto keys
    # routes by destination, so it cannot hold both; EC2 lists both — test_real_ec2.py point 5,
    # for IPv6). The static route is awsha's and points here: nothing to repair.
    s, ds = scenario, dual
    only_wan3(node_a)
    failover_wan3(node_a)
    proxy.reset()
    proxy.configure(propagated_routes=[{"route_table": s.rt1, "cidr": V6_DEFAULT_ROUTE,
                                        "gateway": "vgw-0a1b2c3d4e5f60718"}])
    for round_ in range(2):
        rep = reconcile(node_a)
        acts = wan3_by_key(rep, s, ds)
        assert acts["rt1"]["status"] == "unchanged", (
            f"round {round_}: the static ::/0 points here; the propagated one is not awsha's\n"
            f"{why(rep)}")
    assert proxy.mutating_counts() == {}, proxy.mutating_counts()
    assert cloud.route_target(s.rt1, V6_DEFAULT_ROUTE) == node_a.eni("lan")


def test_ipv6_failover_is_idempotent_and_takes_an_unheld_address(dual: DualStack,
                                                                 scenario: Scenario,
                                                                 node_a: Node, cloud: Cloud,
                                                                 proxy: Proxy, ec2: Any) -> None:
    # moto: P6. The address held by nobody (B released it before dying): assigned here, and no
    # UnassignIpv6Addresses succeeds anywhere. Then a repeated failover (rc.carpmaster fires again)
    # keeps it here and never unassigns it from this node's own ENI (that would drop traffic).
    s, ds = scenario, dual
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=s.eni[("B", "wan")], Ipv6Addresses=[ds.vip6])
    assert cloud.ipv6_holders(ds.vip6) == []
    r, rep = failover_wan3(node_a)
    assert wan3_by_key(rep, s, ds, r.describe())["ip"]["status"] == "changed", r.describe()
    assert cloud.ipv6_holders(ds.vip6) == [node_a.eni("wan")]
    assert [c for c in proxy.calls("UnassignIpv6Addresses") if c["status"] == 200] == []

    proxy.reset()
    r, rep = failover_wan3(node_a)
    acts = wan3_by_key(rep, s, ds, r.describe())
    assert acts["ip"]["status"] in ("changed", "unchanged"), r.describe()
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")
    own = [c for c in proxy.calls("UnassignIpv6Addresses")
           if c["params"].get("NetworkInterfaceId") == node_a.eni("wan")]
    assert own == [], f"never unassign the address from this node's own ENI: {own}"


# ---- reconcile and status -----------------------------------------------------------------------

def test_reconcile_after_ipv6_failover_sends_nothing_and_status_is_in_sync(
        dual: DualStack, scenario: Scenario, node_a: Node, cloud: Cloud, proxy: Proxy) -> None:
    # moto: P6, P7 (where is the address), P9 (routes read back from their own fields).
    s, ds = scenario, dual
    only_wan3(node_a)
    failover_wan3(node_a)
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")
    tags_before = {res: cloud.tags(res) for res in (node_a.eni("wan"), s.rt1, s.rt2, ds.rt3)}

    proxy.reset()
    rep = reconcile(node_a)
    assert {v["vhid"]: v["state"] for v in rep["vhids"]} == {
        "wan@1": "BACKUP", "lan@2": "BACKUP", "wan@3": "MASTER"}, why(rep)
    acts = wan3_by_key(rep, s, ds)
    assert {k: a["status"] for k, a in acts.items()} == dict.fromkeys(acts, "unchanged"), (
        f"in sync right after the failover: every wan@3 action unchanged\n{why(rep)}")
    assert rep["split_brain"] == [], why(rep)
    assert proxy.mutating_counts() == {}, f"no mutating request: {proxy.mutating_counts()}"
    assert {res: cloud.tags(res) for res in tags_before} == tags_before, "nothing re-tagged"

    proxy.reset()
    r = node_a.run("status", "--json")
    assert r.code == 0, r.describe()
    st = check_report(r, "status")
    acts = wan3_by_key(st, s, ds, r.describe())
    for key, a in acts.items():
        assert (a.get("state"), a.get("points_here"), a.get("in_sync")) == (
            "MASTER", True, True), f"{key} must show in sync\n{r.describe()}"
    assert proxy.mutating_counts() == {}, "status only reads"


def test_reconcile_repairs_ipv6_and_prefix_list_route_drift(dual: DualStack, scenario: Scenario,
                                                            node_a: Node, cloud: Cloud,
                                                            proxy: Proxy, ec2: Any) -> None:
    # moto: P9. A manual change after A's takeover (the tables still carry A's tags, so the last
    # writer is this node: repair, no split brain — docs/contracts.md §9.3 rule 4): ::/0 pointed
    # back at B, the prefix-list route deleted. reconcile must see both through the IPv6 /
    # prefix-list fields and repair exactly those two.
    s, ds = scenario, dual
    only_wan3(node_a)
    failover_wan3(node_a)
    ec2.replace_route(RouteTableId=s.rt1, DestinationIpv6CidrBlock=V6_DEFAULT_ROUTE,
                      NetworkInterfaceId=s.eni[("B", "lan")])
    ec2.delete_route(RouteTableId=ds.rt3, DestinationPrefixListId=ds.prefix_list)

    proxy.reset()
    rep = reconcile(node_a)
    acts = wan3_by_key(rep, s, ds)
    assert {k: a["status"] for k, a in acts.items()} == {
        "ip": "unchanged", "rt1": "changed", "rt2": "unchanged", "rt3": "changed"}, why(rep)
    assert rep["split_brain"] == [], why(rep)
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")
    m = proxy.mutating_counts()
    assert set(m) <= {"ReplaceRoute", "CreateRoute", "CreateTags"}, m
    ok = [c for a in ("ReplaceRoute", "CreateRoute") for c in proxy.calls(a) if c["status"] == 200]
    assert sorted((c["params"]["RouteTableId"], json.dumps(destination_fields(c))) for c in ok) == \
        sorted([(s.rt1, json.dumps({"DestinationIpv6CidrBlock": V6_DEFAULT_ROUTE})),
                (ds.rt3, json.dumps({"DestinationPrefixListId": ds.prefix_list}))]), ok
    assert all(c["params"].get("NetworkInterfaceId") == node_a.eni("lan") for c in ok), ok

    proxy.reset()
    rep = reconcile(node_a)
    assert [a["status"] for a in wan3_by_key(rep, s, ds).values()] == ["unchanged"] * 4, why(rep)
    assert proxy.mutating_counts() == {}


def test_split_brain_on_ipv6_address_and_routes_reclaimed_then_deferred(
        dual: DualStack, scenario: Scenario, node_a: Node, node_b: Node, cloud: Cloud,
        proxy: Proxy) -> None:
    # moto: P6 (B's failover has to take the address off A's ENI, and A's reclaim off B's), P7,
    # P9; tags overwritten by CreateTags. The IPv4 test of the same name in test_reconcile.py,
    # for wan@3.
    s, ds = scenario, dual
    only_wan3(node_a, node_b)
    failover_wan3(node_a)
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")
    t_a = parse_modified(node_a.marker("wan_3").read_text().strip())

    node_b.set_carp(3, state="MASTER")  # CARP split brain: B also claims wan@3, after A
    failover_wan3(node_b)
    assert wan3_where(cloud, s, ds) == wan3_on(s, "B")
    b_res = {"ip": node_b.eni("wan"), "rt1": s.rt1, "rt2": s.rt2, "rt3": ds.rt3}
    b_tags = {k: cloud.tags(res) for k, res in b_res.items()}
    for k, tags in b_tags.items():
        assert tags.get("awsha:instance") == node_b.instance_id, (k, tags)
        assert parse_modified(tags["awsha:modified"]) >= t_a, (k, tags, t_a)

    # A (higher priority, still MASTER) reclaims all four, one split_brain entry each.
    proxy.reset()
    rep = reconcile(node_a)
    acts = wan3_by_key(rep, s, ds)
    assert {k: a["status"] for k, a in acts.items()} == dict.fromkeys(acts, "changed"), why(rep)
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")
    sb = rep["split_brain"]
    assert len(sb) == 4 and {x["resource"] for x in sb} == {a["resource"] for a in acts.values()}, (
        f"one split_brain entry per resource B changed\n{why(rep)}")
    for x in sb:
        assert (x["vhid"], x["by_instance"], x["advbase"], x["advskew"], x["resolution"]) == (
            "wan@3", node_b.instance_id, 1, 100, "reclaimed"), x
    at = {x["resource"]: x["at"] for x in sb}
    for k, a in acts.items():
        assert at[a["resource"]] == b_tags[k]["awsha:modified"], (k, sb, b_tags)
    assert any("split brain" in n["message"].lower() for n in rep["notices"]), why(rep)
    m = proxy.mutating_counts()
    assert set(m) <= MOVE_ACTIONS and m.get("CreateTags", 0) >= 1, m
    assert [(c["params"].get("NetworkInterfaceId"), listed(c, "Ipv6Addresses"))
            for c in proxy.calls("UnassignIpv6Addresses") if c["status"] == 200] == [
        (node_b.eni("wan"), [ds.vip6])], "the address is taken back from B's ENI"
    a_tags = {k: cloud.tags(res) for k, res in
              {"ip": node_a.eni("wan"), "rt1": s.rt1, "rt2": s.rt2, "rt3": ds.rt3}.items()}
    for k, tags in a_tags.items():
        awsha = {t: v for t, v in tags.items() if t.startswith("awsha:")}
        assert set(awsha) == set(TAG_KEYS), f"tags unchanged in schema: {k} {tags}"
        assert (awsha["awsha:vhid"], awsha["awsha:instance"], awsha["awsha:advskew"]) == (
            "wan@3", node_a.instance_id, "0"), (k, tags)

    # B (lower priority, still claiming MASTER): A changed it after B's takeover → defer.
    proxy.reset()
    rep = reconcile(node_b)
    acts_b = wan3_by_key(rep, s, ds)
    assert [a["status"] for a in acts_b.values()] == ["deferred"] * 4, why(rep)
    assert len(rep["split_brain"]) == 4, why(rep)
    for x in rep["split_brain"]:
        assert (x["vhid"], x["by_instance"], x["advbase"], x["advskew"], x["resolution"]) == (
            "wan@3", node_a.instance_id, 1, 0, "deferred"), x
    assert proxy.mutating_counts() == {}, proxy.mutating_counts()
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")

    # No ping-pong.
    proxy.reset()
    for i in range(4):
        node = node_a if i % 2 == 0 else node_b
        rep = reconcile(node)
        want = "unchanged" if node is node_a else "deferred"
        assert [a["status"] for a in wan3_by_key(rep, s, ds).values()] == [want] * 4, (
            f"round {i}\n{why(rep)}")
    assert proxy.mutating_counts() == {}, f"no ping-pong: {proxy.mutating_counts()}"
    assert wan3_where(cloud, s, ds) == wan3_on(s, "A")


# ---- --dry-run ----------------------------------------------------------------------------------

def test_dry_run_plans_ipv6_moves_and_sends_nothing(dual: DualStack, scenario: Scenario,
                                                    node_a: Node, cloud: Cloud,
                                                    proxy: Proxy) -> None:
    # moto: none — no mutating request may reach it (docs/contracts.md §8.4: --dry-run sends no
    # request for a mutating action, not even with DryRun=true). Rows in loose form: the plan says
    # what would really be sent, in RFC 5952 text and a lower-case pl- id.
    s, ds = scenario, dual
    use_rows(node_a, ds, "loose")
    wanted = ["AssignIpv6Addresses", ds.vip6,
              f"DestinationIpv6CidrBlock={V6_DEFAULT_ROUTE}",
              f"DestinationIpv6CidrBlock={V6_REMOTE_ROUTE}",
              f"DestinationPrefixListId={ds.prefix_list}"]

    r = node_a.run("failover", "wan@3", "--dry-run", "--json")
    assert r.code == 0, r.describe()
    rep = check_report(r, "failover")
    acts = wan3_by_key(rep, s, ds, r.describe())
    assert [a["status"] for a in acts.values()] == ["planned"] * 4, r.describe()
    assert {k: a["target"] for k, a in acts.items()} == expected_targets(s, ds, "A"), r.describe()
    assert "plan" in rep, f"the report's plan\n{r.describe()}"
    plan = json.dumps(rep["plan"])
    missing = [w for w in wanted if w not in plan]
    assert not missing, f"the plan must name {missing}\n{r.describe()}"
    assert "DestinationCidrBlock=::/0" not in plan and "DestinationCidrBlock=pl-" not in plan, plan
    assert "AssignPrivateIpAddresses" not in plan, "wan@3 has no IPv4 row"

    text = node_a.run("failover", "wan@3", "--dry-run")
    assert text.code == 0, text.describe()
    missing = [w for w in wanted if w not in text.stdout]
    assert not missing, f"the text plan must name {missing}\n{text.describe()}"

    assert proxy.mutating_counts() == {}, f"--dry-run sent {proxy.mutating_counts()}"
    assert wan3_where(cloud, s, ds) == wan3_on(s, "B")
    assert not node_a.marker("wan_3").exists(), "--dry-run writes no takeover marker"


# ---- interfaces and map-ip ----------------------------------------------------------------------

def test_interfaces_lists_both_families(dual: DualStack, scenario: Scenario, node_a: Node,
                                        proxy: Proxy, ec2: Any) -> None:
    # moto: P6, P8 (through the IMDS emulator's ipv6s / subnet-ipv6-cidr-blocks).
    s, ds = scenario, dual
    r = node_a.run("interfaces", "--json")
    assert r.code == 0, r.describe()
    rep = check_report(r, "interfaces")
    by_key = {i["interface"]: i for i in rep["interfaces"]}
    assert set(by_key) == {"wan", "lan"}, r.describe()
    for side in ("wan", "lan"):
        i = by_key[side]
        assert "ipv6s" in i and "subnet_ipv6_cidrs" in i, (
            f"each ENI entry carries ipv6s and subnet_ipv6_cidrs (docs/contracts.md §4.7)\n"
            f"{r.describe()}")
        assert i["ipv6s"] == [ds.ipv6[("A", side)]], r.describe()
        assert i["subnet_ipv6_cidrs"] == [ds.subnet6[side]], r.describe()
        assert i["ipv4s"][0] == s.primary[("A", side)] and i["eni"] == node_a.eni(side)
    assert by_key["wan"]["subnet_cidr"] == "10.0.1.0/24", "the IPv4 fields stay"
    assert proxy.counts() == {}, "interfaces asks IMDS only, never EC2"

    # Live: with VIP6 on A's wan ENI it is listed too.
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=s.eni[("B", "wan")], Ipv6Addresses=[ds.vip6])
    ec2.assign_ipv6_addresses(NetworkInterfaceId=node_a.eni("wan"), Ipv6Addresses=[ds.vip6])
    r = node_a.run("interfaces", "--json")
    rep = check_report(r, "interfaces")
    wan = next(i for i in rep["interfaces"] if i["interface"] == "wan")
    assert sorted(wan.get("ipv6s", [])) == sorted([ds.ipv6[("A", "wan")], ds.vip6]), r.describe()


def test_map_ip_maps_ipv6_into_this_nodes_subnet(dual: DualStack, node_a: Node) -> None:
    # moto: none beyond the emulator's subnet-ipv6-cidr-blocks (P8). The peer's wan /64 (another
    # AZ: the /56's fourth /64) and its VIP there → the same host bits in this node's wan /64.
    ds = dual
    peer64 = list(ipaddress.IPv6Network(ds.vpc_block).subnets(new_prefix=64))[3]
    peer_vip = str(peer64[0x10])
    r = node_a.run("map-ip", "--interface", "wan", "--from-subnet", str(peer64), peer_vip)
    assert r.code == 0, r.describe()
    assert r.stdout.strip() == ds.vip6, r.describe()
    j = node_a.run("map-ip", "--interface", "WAN", "--from-subnet", loose_ipv6(str(peer64)),
                   loose_ipv6(peer_vip), "--json")
    assert j.code == 0, j.describe()
    rep = check_report(j, "map-ip")
    assert (rep["ip"], rep["subnet"]) == (ds.vip6, ds.subnet6["wan"]), (
        f"RFC 5952 text out, whatever the form in\n{j.describe()}")
    host = str(peer64[0xABCD_0000_0001])
    r = node_a.run("map-ip", "--interface", "wan", "--from-subnet", str(peer64), host)
    assert r.stdout.strip() == str(ipaddress.IPv6Network(ds.subnet6["wan"])[0xABCD_0000_0001]), \
        r.describe()
    # Refusals, as for IPv4 (test_interfaces.py), and no mixing of families.
    p80 = ipaddress.IPv6Network(f"{peer64.network_address}/80")
    cases = [
        (("--from-subnet", str(p80), peer_vip), "prefix lengths differ"),
        (("--from-subnet", str(peer64), str(ds.vip6)), "not inside"),
        (("--from-subnet", f"{peer64[1]}/64", peer_vip), "host bits"),
        (("--from-subnet", "10.0.3.0/24", peer_vip), None),
        (("--from-subnet", str(peer64), "10.0.3.10"), None),
    ]
    for args, needle in cases:
        r = node_a.run("map-ip", "--interface", "wan", *args, "--json")
        assert r.code == 2, r.describe()
        rep = check_report(r, "map-ip")
        if needle:
            assert needle in rep["error"], r.describe()


# ---- bad input ----------------------------------------------------------------------------------

def _set_route(row: int, cidr: str) -> Callable[[Node, DualStack], None]:
    def breaker(node: Node, ds: DualStack) -> None:
        node.config.routes[row - 1]["cidr"] = cidr
    return breaker


def _eip_private_ipv6(node: Node, ds: DualStack) -> None:
    node.config.eips[0]["privateip"] = ds.vip6


def _address_in_two_vhids(node: Node, ds: DualStack) -> None:
    # ips row 4: wan@1 claims wan@3's VIP6, written another way.
    node.config.ips.append({"vhid": "wan@1", "interface": "wan", "ipaddr": loose_ipv6(ds.vip6),
                            "xmlrpcsync": "on"})


def _destination_in_two_vhids(node: Node, ds: DualStack) -> None:
    # routes row 6: wan@1 claims rt1's ::/0 (wan@3's routes row 3), written another way.
    node.config.routes.append({"vhid": "wan@1", "routetable": node.scn.rt1,
                               "cidr": "0:0:0:0:0:0:0:0/0", "interface": "lan",
                               "xmlrpcsync": "on"})


# (id, breaker, VHID to fail over, rows that must be reported (tab, row, element regex), needle
# that the reported line must contain or None)
BAD_INPUTS = [
    ("ipv6-prefix-over-128", _set_route(4, "2600:1f18:abcd:ef00::/129"), "wan@3",
     [("routes", 4, "cidr")], "128"),
    ("ipv6-host-bits", _set_route(4, "2600:1f18:abcd:ef01::/56"), "wan@3",
     [("routes", 4, "cidr")], V6_REMOTE_ROUTE),
    ("malformed-prefix-list-id", _set_route(5, "pl-0123abc"), "wan@3",
     [("routes", 5, "cidr")], "17"),
    ("eip-private-ip-ipv6", _eip_private_ipv6, "wan@1",
     [("eips", 1, "privateip")], "IPv4"),
    ("ipv6-address-two-vhids", _address_in_two_vhids, "wan@3",
     [("ips", 3, "ipaddr"), ("ips", 4, "ipaddr")], None),
    ("ipv6-destination-two-vhids", _destination_in_two_vhids, "wan@3",
     [("routes", 3, r"(?:cidr|routetable)"), ("routes", 6, r"(?:cidr|routetable)")], None),
]


@pytest.mark.parametrize("case,breaker,vhid,rows,needle", BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_dual_stack_input_exits_2_and_sends_nothing(case: str, breaker: Any, vhid: str,
                                                        rows: list[tuple[str, int, str]],
                                                        needle: str | None, dual: DualStack,
                                                        scenario: Scenario, node_a: Node,
                                                        cloud: Cloud, proxy: Proxy) -> None:
    # moto: none — nothing may reach EC2, not even a read. A is MASTER of every VHID, so anything
    # that got through would act. The rest of the dual-stack config is valid: only the broken rows
    # may be reported (the valid IPv6 and prefix-list rows are not problems).
    s, ds = scenario, dual
    breaker(node_a, ds)
    node_a.write_config()

    r = node_a.run("failover", vhid)
    assert r.code == 2, r.describe()
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    mine = [(tab, row, el) for tab, row, el in rows
            if any(row_error(tab, row, el).search(ln) for ln in lines)]
    assert mine, f"no one-line error like '{rows[0][0]} row {rows[0][1]} …: …'\n{r.describe()}"
    if needle:
        hit = [ln for ln in lines if row_error(*rows[0]).search(ln)]
        assert any(needle in ln for ln in hit), f"the error should mention {needle!r}\n{r.describe()}"

    rj = node_a.run("failover", vhid, "--json")
    assert rj.code == 2, rj.describe()
    rep = rj.json
    assert isinstance(rep, dict) and rep.get("ok") is False, rj.describe()
    assert isinstance(rep.get("error"), str) and rep["error"].strip(), rj.describe()
    assert "\n" not in rep["error"] and not rep.get("actions"), rj.describe()

    rv = node_a.run("validate")
    assert rv.code == 2, rv.describe()
    text = rv.stdout + "\n" + rv.stderr
    for tab, row, el in rows:
        assert row_error(tab, row, el).search(text), (
            f"validate must report {tab} row {row}\n{rv.describe()}")
    reported = {(tab_key(m.group(1)), int(m.group(2))) for m in ANY_ROW.finditer(text)}
    expected = {(tab, row) for tab, row, _ in rows}
    assert reported == expected, (
        f"only the broken rows may be reported: got {sorted(reported)}, want {sorted(expected)} "
        f"(valid IPv6 addresses, IPv6 CIDRs and pl- ids are not problems)\n{rv.describe()}")

    assert proxy.counts() == {}, f"exit 2 sends no EC2 request at all: {proxy.counts()}"
    assert wan3_where(cloud, s, ds) == wan3_on(s, "B")
    assert cloud.ip_holders(WAN_VIP) == [s.eni[("B", "wan")]]
    assert cloud.ip_holders(LAN_VIP) == [s.eni[("B", "lan")]]
    assert not node_a.marker("wan_3").exists() and not node_a.marker("wan_1").exists()
