"""Integration tests of `awsha doctor [--json]` (docs/contracts.md §2: "check IMDS, credentials,
region, endpoint, IAM (DryRun), config"; issue 5).

Owns: the doctor tests. They drive the real binary (AWSHA_BIN, default target/debug/awsha) against
moto through the fault proxy, with one IMDS emulator and one fake ifconfig per node (conftest.py,
awsha_scenario.py).

What is checked (the doctor report; src/doctor.rs):
  * `--json` prints one object whose `checks` is a list of {name, status ok|warn|fail, detail,
    hint}; `ok` is false exactly when the exit code is not 0;
  * exit 0 when no check fails (warnings allowed), 1 when any check fails, 2 only for a
    command-line error (a broken config.xml is a failed `config` check, not exit 2);
  * each problem below is one precise failing line: the check names the row, interface or
    permission, and its detail names the offending thing;
  * doctor never changes AWS: the EC2 state is identical before and after, and every mutating
    request it sends carries DryRun=true — except at most one AssignPrivateIpAddresses (that action
    has no DryRun) of addresses the ENI already holds.

Check names used here (the binary's, not in docs/contracts.md): `config`, `ifconfig`, `imds`,
`region`, `credentials`, `endpoint`, `interface <key>`, `<tab element> row <n> <field>`,
`iam ec2:<Action>[ (<row>)]`.

moto: the routes' DryRun comes from patch P5 (tests/harness/moto_launcher.py); AssociateAddress,
CreateTags and the Describe* calls honour DryRun in plain moto. Denials are injected by the fault
proxy (moto has no IAM enforcement here); an unreachable EC2 endpoint or IMDS is a closed
127.0.0.1 port.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from awsha_scenario import (
    MISSING_RTB, OTHER_ROUTE, READ_ONLY_PREFIXES, Cloud, Node, Proxy, Scenario, Timed,
)

STATUSES = ("ok", "warn", "fail")
# `<tab> row <n>` as in test_failover.py: the GUI tab title or the config.xml element.
TAB = {
    "ips": r"(?:ips|awshaips)",
    "routes": r"(?:routes|awsharoutes)",
    "eips": r"(?:elastic ips|eips|awshaeips)",
}
DENIED = {"status": 403, "code": "UnauthorizedOperation",
          "message": "You are not authorized to perform this operation."}


# ---- helpers ------------------------------------------------------------------------------------

def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then released: connect is refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def doctor(node: Node, *extra: str, env: dict[str, str] | None = None,
           timeout: float = 60) -> tuple[Timed, dict[str, Any], list[dict[str, Any]]]:
    """Run `awsha doctor --json`; check the report's shape; return (run, report, checks)."""
    r = node.run("doctor", "--json", *extra, env_extra=env, timeout=timeout)
    rep = r.json
    assert isinstance(rep, dict), f"stdout is not one JSON object\n{r.describe()}"
    assert rep.get("command") == "doctor", r.describe()
    assert rep.get("ok") is (r.code == 0), (
        f"ok must be false exactly when exit != 0\n{r.describe()}")
    checks = rep.get("checks")
    assert isinstance(checks, list) and checks, f"no `checks` list\n{r.describe()}"
    for c in checks:
        assert set(c) >= {"name", "status", "detail", "hint"}, c
        assert isinstance(c["name"], str) and c["name"], c
        assert c["status"] in STATUSES, c
        assert isinstance(c["detail"], str) and isinstance(c["hint"], str), c
        if c["status"] != "ok":
            assert c["detail"].strip(), f"a warn/fail needs a detail: {c}"
    fails = [c for c in checks if c["status"] == "fail"]
    if fails:
        assert r.code == 1, f"a failed check means exit 1\n{r.describe()}"
    else:
        assert r.code == 0, f"no failed check (warnings allowed) means exit 0\n{r.describe()}"
    return r, rep, checks


def named(checks: list[dict[str, Any]], name: str) -> dict[str, Any]:
    hits = [c for c in checks if c["name"] == name]
    assert len(hits) == 1, (
        f"expected exactly one check {name!r}; have {[c['name'] for c in checks]}")
    return hits[0]


def by_status(checks: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [c for c in checks if c["status"] == status]


def show(checks: list[dict[str, Any]]) -> str:
    return "\n".join(f"{c['status']:<4}  {c['name']}: {c['detail']}" for c in checks)


def ec2_state(ec2: Any) -> str:
    """Everything awsha could change, straight from moto, in a comparable form."""
    def tags(items: list[dict[str, str]] | None) -> list[list[str]]:
        return sorted([t["Key"], t["Value"]] for t in items or [])

    enis = {
        e["NetworkInterfaceId"]: {
            "ips": sorted(a["PrivateIpAddress"] for a in e.get("PrivateIpAddresses", [])),
            "instance": e.get("Attachment", {}).get("InstanceId"),
            "source_dest_check": e.get("SourceDestCheck"),
            "tags": tags(e.get("TagSet")),
        }
        for e in ec2.describe_network_interfaces()["NetworkInterfaces"]
    }
    tables = {
        t["RouteTableId"]: {
            "routes": sorted(json.dumps(r, sort_keys=True, default=str)
                             for r in t.get("Routes", [])),
            "associations": sorted(a.get("SubnetId") or "main" for a in t.get("Associations", [])),
            "tags": tags(t.get("Tags")),
        }
        for t in ec2.describe_route_tables()["RouteTables"]
    }
    addresses = sorted(
        json.dumps({k: a.get(k) for k in ("AllocationId", "PublicIp", "NetworkInterfaceId",
                                          "PrivateIpAddress", "AssociationId", "InstanceId")},
                   sort_keys=True)
        for a in ec2.describe_addresses()["Addresses"]
    )
    all_tags = sorted([t["ResourceId"], t["Key"], t["Value"]]
                      for t in ec2.describe_tags(MaxResults=1000)["Tags"])
    return json.dumps({"enis": enis, "tables": tables, "addresses": addresses, "tags": all_tags},
                      sort_keys=True, indent=1)


def a_is_master_holding_everything(node_a: Node) -> None:
    """The good setup: A (CARP MASTER, advskew 0) has failed over both VHIDs."""
    for vhid in ("wan@1", "lan@2"):
        r = node_a.run("failover", vhid)
        assert r.code == 0, r.describe()


# ---- the good setup -----------------------------------------------------------------------------

def test_good_setup_has_no_failed_check(scenario: Scenario, node_a: Node, proxy: Proxy) -> None:
    # moto: P1/P3 for the set-up failover; DryRun answers (DryRunOperation) for every probe.
    a_is_master_holding_everything(node_a)
    r, rep, checks = doctor(node_a)
    assert r.code == 0 and rep["ok"] is True, f"{r.describe()}\n{show(checks)}"
    assert not by_status(checks, "fail"), show(checks)
    assert rep.get("instance") == node_a.instance_id, r.describe()
    # The named checks of docs/contracts.md §2 are all there and all ok on this node.
    for name in ("config", "ifconfig", "imds", "region", "credentials", "endpoint",
                 "interface wan", "interface lan"):
        assert named(checks, name)["status"] == "ok", show(checks)
    assert named(checks, "region")["detail"].startswith("us-east-1"), show(checks)
    iam = [c for c in checks if c["name"].startswith("iam ")]
    for action in ("ReplaceRoute", "AssociateAddress", "CreateTags", "AssignPrivateIpAddresses"):
        assert any(f"ec2:{action}" in c["name"] for c in iam), (
            f"no iam check for {action}\n{show(checks)}")
    # Two route rows → one ReplaceRoute probe per row; every permission is granted here.
    assert sum("ec2:ReplaceRoute" in c["name"] for c in iam) == 2, show(checks)
    assert all(c["status"] == "ok" for c in iam), show(checks)
    # Every row's address is inside its ENI's subnet, every route table has its destination.
    for pattern in (rf"{TAB['ips']} row 1 ipaddr", rf"{TAB['ips']} row 2 ipaddr",
                    rf"{TAB['eips']} row 1 privateip", rf"{TAB['routes']} row 1 routetable",
                    rf"{TAB['routes']} row 2 routetable"):
        hits = [c for c in checks if re.fullmatch(pattern, c["name"], re.I)]
        assert len(hits) == 1 and hits[0]["status"] == "ok", f"{pattern}\n{show(checks)}"


def test_human_output_lists_each_check_with_its_status(scenario: Scenario, node_a: Node,
                                                       proxy: Proxy) -> None:
    # moto: as above. One denied required permission (fail) and one denied optional one (warn),
    # so the text shows all three statuses.
    a_is_master_holding_everything(node_a)
    proxy.rules([{"action": "ReplaceRoute", "kind": "error", **DENIED},
                 {"action": "DescribeNetworkInterfaces", "kind": "error", **DENIED}])
    _r, _rep, checks = doctor(node_a)
    r = node_a.run("doctor")
    assert r.code == 1, r.describe()
    lines = r.stdout.splitlines()
    for c in checks:
        pattern = re.compile(rf"^\s*{c['status']}\b\W*\s+{re.escape(c['name'])}\s")
        hits = [ln for ln in lines if pattern.search(ln)]
        assert hits, f"no line '{c['status']}  {c['name']} …' in the text output\n{r.stdout}"
        assert c["detail"][:20] in hits[0], f"the detail of {c['name']!r} is not shown\n{r.stdout}"
    seen = {m.group(1) for ln in lines if (m := re.match(r"^\s*(ok|warn|fail)\b", ln))}
    assert seen == {"ok", "warn", "fail"}, r.stdout
    for c in by_status(checks, "fail") + by_status(checks, "warn"):
        if c["hint"]:
            assert c["hint"] in r.stdout, f"hint of {c['name']!r} missing\n{r.stdout}"
    assert r.stdout.strip(), "human output on stdout"
    with pytest.raises(ValueError):
        json.loads(r.stdout)  # without --json: text, not JSON


# ---- doctor changes nothing -------------------------------------------------------------------

@pytest.mark.parametrize("who", ["A-master", "B-backup"])
def test_doctor_changes_nothing(who: str, scenario: Scenario, node_a: Node, node_b: Node,
                                proxy: Proxy, ec2: Any) -> None:
    # moto: DryRun honoured by ReplaceRoute/CreateRoute (P5), AssociateAddress, CreateTags;
    # AssignPrivateIpAddresses of an address already on the ENI changes nothing (P1).
    a_is_master_holding_everything(node_a)
    node = node_a if who == "A-master" else node_b
    proxy.reset()
    before = ec2_state(ec2)
    ips_before = {e["NetworkInterfaceId"]: {a["PrivateIpAddress"] for a in e["PrivateIpAddresses"]}
                  for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    r, _rep, checks = doctor(node)
    assert r.code == 0, f"{r.describe()}\n{show(checks)}"
    r_text = node.run("doctor")
    assert r_text.code == 0, r_text.describe()
    after = ec2_state(ec2)
    assert after == before, "doctor changed the EC2 state"

    log = proxy.log()
    assert log, "doctor sent no EC2 request at all"
    mutating = [e for e in log if not e["action"].startswith(READ_ONLY_PREFIXES)]
    real = [e for e in mutating if e["params"].get("DryRun") != "true"]
    assert {e["action"] for e in mutating} >= {"ReplaceRoute", "AssociateAddress", "CreateTags"}, (
        f"the IAM probes should include the mutating actions: {proxy.counts()}")
    # Besides DryRuns, only AssignPrivateIpAddresses (no DryRun exists), at most once per run,
    # and only of addresses the ENI already held.
    assert all(e["action"] == "AssignPrivateIpAddresses" for e in real), real
    assert len(real) <= 2, f"at most one real AssignPrivateIpAddresses per doctor run: {real}"
    for e in real:
        eni = e["params"]["NetworkInterfaceId"]
        addrs = {v for k, v in e["params"].items() if k.startswith("PrivateIpAddress")}
        assert addrs and addrs <= ips_before[eni], (
            f"AssignPrivateIpAddresses of {addrs} to {eni}, which held {ips_before[eni]}")
    if who == "B-backup":
        assert not real, f"B holds none of the addresses: no real call at all ({real})"
        c = named(checks, "iam ec2:AssignPrivateIpAddresses")
        assert c["status"] == "warn", show(checks)
    else:
        assert named(checks, "iam ec2:AssignPrivateIpAddresses")["status"] == "ok", show(checks)


# ---- configuration problems that only AWS can reveal -------------------------------------------

def test_missing_route_table_is_one_precise_failure(scenario: Scenario, node_a: Node,
                                                    proxy: Proxy) -> None:
    # moto: DescribeRouteTables with an unknown id answers InvalidRouteTableID.NotFound (plain
    # moto, as EC2 does for the whole call); ReplaceRoute DryRun answers DryRunOperation before
    # looking the table up (P5), so the IAM probe itself may pass.
    a_is_master_holding_everything(node_a)
    node_a.config.routes[1]["routetable"] = MISSING_RTB  # Routes row 2: well-formed, not in EC2
    node_a.write_config()
    assert node_a.run("validate").code == 0, "well-formed: only AWS can tell it is missing"
    r, _rep, checks = doctor(node_a)
    assert r.code == 1, r.describe()
    fails = by_status(checks, "fail")
    row2 = re.compile(rf"(?i)(?<![\w-]){TAB['routes']}\s+row\s+2\b")
    precise = [c for c in fails if MISSING_RTB in c["detail"]
               and row2.search(c["name"] + " " + c["detail"])
               and re.search(r"(?i)does not exist|not ?found", c["detail"])]
    assert precise, ("expected a failed check naming Routes row 2 and saying "
                     f"{MISSING_RTB} does not exist\n{show(checks)}")
    # The existing table of row 1 is not blamed.
    assert not [c for c in fails if scenario.rt1 in c["detail"]], show(checks)


def test_route_missing_from_its_table_is_a_warning(scenario: Scenario, node_a: Node,
                                                   cloud: Cloud) -> None:
    # moto: DeleteRoute (plain). Failover creates a missing route (docs/contracts.md §8.1), so
    # doctor only warns about it.
    a_is_master_holding_everything(node_a)
    cloud.delete_route(scenario.rt2, OTHER_ROUTE)
    r, _rep, checks = doctor(node_a)
    assert r.code == 0, f"{r.describe()}\n{show(checks)}"
    hits = [c for c in checks if re.fullmatch(rf"(?i){TAB['routes']} row 2 routetable", c["name"])]
    assert len(hits) == 1 and hits[0]["status"] == "warn", show(checks)
    assert scenario.rt2 in hits[0]["detail"] and OTHER_ROUTE in hits[0]["detail"], show(checks)


@pytest.mark.parametrize("tab,field", [("ips", "ipaddr"), ("eips", "privateip")])
def test_address_outside_its_subnet(tab: str, field: str, scenario: Scenario,
                                    node_a: Node) -> None:
    # moto: none beyond the set-up. The wan ENI's subnet is 10.0.1.0/24; 10.0.2.50 is in the
    # VPC but in the lan subnet, so EC2 would refuse to assign it to the wan ENI.
    a_is_master_holding_everything(node_a)
    rows = node_a.config.ips if tab == "ips" else node_a.config.eips
    rows[0][field] = "10.0.2.50"
    node_a.write_config()
    r, _rep, checks = doctor(node_a)
    assert r.code == 1, r.describe()
    fails = by_status(checks, "fail")
    hits = [c for c in fails if re.search(rf"(?i){TAB[tab]}\s+row\s+1\b", c["name"] + c["detail"])
            and "10.0.2.50" in c["detail"]]
    assert hits, f"no failed check for {tab} row 1 {field} 10.0.2.50\n{show(checks)}"
    assert "10.0.1.0/24" in hits[0]["detail"], f"say which subnet it must be in\n{show(checks)}"
    assert scenario.eni[("A", "wan")] in hits[0]["detail"] or "wan" in hits[0]["name"] + hits[0][
        "detail"], show(checks)
    assert len(fails) == 1, f"only that row is wrong\n{show(checks)}"


OVPN_IFCONFIG = (
    "ovpns1: flags=1008051<UP,POINTOPOINT,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 1500\n"
    "\toptions=80000<LINKSTATE>\n"
    "\tinet 10.8.0.1 --> 10.8.0.2 netmask 0xffffff00\n"
    "\tgroups: tun openvpn\n"
    "\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>\n"
    "\tOpened by PID 4242\n"
)


@pytest.mark.parametrize("how", ["device-without-mac", "mac-without-eni"])
def test_interface_that_is_not_an_eni(how: str, scenario: Scenario, node_a: Node) -> None:
    # moto: none beyond the set-up. Two ways a row's interface is not an ENI of this instance:
    #   device-without-mac: a third pfSense interface, opt1 = ovpns1 (an OpenVPN tun device:
    #     in ifconfig, but without an `ether` line), named by Routes row 2;
    #   mac-without-eni: lan's MAC has no interface-id in IMDS (emulator mode no_interface_id).
    a_is_master_holding_everything(node_a)
    if how == "device-without-mac":
        node_a.config.interfaces["opt1"] = {"enable": "", "if": "ovpns1", "descr": "VPN",
                                            "ipaddr": ""}
        node_a.config.routes[1]["interface"] = "opt1"
        node_a.write_config()
        node_a.ifconfig.write(node_a.ifconfig.read() + OVPN_IFCONFIG)
        key, device = "opt1", "ovpns1"
    else:
        node_a.imds.faults("no_interface_id", mac=scenario.mac[("A", "lan")])
        key, device = "lan", "ena1"
    assert node_a.run("validate").code == 0, "config.xml is fine; only the run time can tell"
    r, _rep, checks = doctor(node_a)
    assert r.code == 1, r.describe()
    c = named(checks, f"interface {key}")
    assert c["status"] == "fail", show(checks)
    assert device in c["detail"], f"name the device\n{show(checks)}"
    if how == "device-without-mac":
        assert re.search(r"(?i)no MAC", c["detail"]), show(checks)
        assert named(checks, "interface lan")["status"] == "ok", show(checks)
    else:
        assert scenario.mac[("A", "lan")] in c["detail"].lower(), show(checks)
        assert named(checks, "interface wan")["status"] == "ok", show(checks)


# ---- IMDS ---------------------------------------------------------------------------------------

def test_imds_down(scenario: Scenario, node_a: Node, proxy: Proxy) -> None:
    # moto: none (without IMDS there is no region, so no EC2 request either).
    url = f"http://127.0.0.1:{closed_port()}"
    r, rep, checks = doctor(node_a, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": url})
    assert r.code == 1, r.describe()
    imds = named(checks, "imds")
    assert imds["status"] == "fail" and imds["hint"], show(checks)
    assert re.search(r"(?i)reach|connect|refused", imds["detail"]), show(checks)
    # Whatever needs no IMDS is still checked and reported.
    for name in ("config", "ifconfig"):
        assert named(checks, name)["status"] == "ok", show(checks)
    assert named(checks, "region")["status"] == "fail", "no region from anywhere"
    assert "instance" not in rep or rep["instance"] in (None, ""), r.describe()
    assert r.elapsed < 10, f"took {r.elapsed:.1f}s"
    t = node_a.run("doctor", env_extra={"AWS_EC2_METADATA_SERVICE_ENDPOINT": url})
    assert t.code == 1 and re.search(r"(?m)^\s*fail\b.*\bimds\b", t.stdout), t.describe()


def test_imds_down_with_a_configured_region_still_checks_the_rest(
        scenario: Scenario, node_a: Node, proxy: Proxy) -> None:
    # moto: none needed. IMDS is down, but the region is configured (AWS_REGION): the
    # credentials (from the instance profile, via IMDS) must fail. The EC2 endpoint itself is up;
    # docs/troubleshooting.md allows the `endpoint` line to fail too when credentials fail, but
    # then it must name the real cause (credentials), not blame the network.
    url = f"http://127.0.0.1:{closed_port()}"
    r, _rep, checks = doctor(node_a, env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": url,
                                          "AWS_REGION": "us-east-1"})
    assert r.code == 1, r.describe()
    assert named(checks, "imds")["status"] == "fail", show(checks)
    assert named(checks, "region")["status"] == "ok", show(checks)
    assert named(checks, "config")["status"] == "ok", show(checks)
    assert named(checks, "credentials")["status"] == "fail", show(checks)
    endpoint = named(checks, "endpoint")
    assert endpoint["status"] != "fail" or re.search(r"(?i)credential", endpoint["detail"]), (
        "the EC2 endpoint is reachable; a missing credential is not an unreachable endpoint\n"
        + show(checks))


@pytest.mark.parametrize("mode", ["401", "refuse_tokens"])
def test_imds_refusing(mode: str, scenario: Scenario, node_a: Node) -> None:
    # moto: none. "401": tokens are issued but every GET answers 401 Unauthorized;
    # "refuse_tokens": PUT /latest/api/token answers 403 (IMDS disabled for the instance).
    node_a.imds.faults(mode)
    r, _rep, checks = doctor(node_a)
    assert r.code == 1, r.describe()
    imds = named(checks, "imds")
    assert imds["status"] == "fail" and imds["hint"], show(checks)
    needle = r"401|unauthori[sz]ed" if mode == "401" else r"(?i)token"
    assert re.search(needle, imds["detail"], re.I), show(checks)
    assert named(checks, "config")["status"] == "ok", show(checks)
    assert r.elapsed < 15, f"took {r.elapsed:.1f}s"


def test_emulator_refuse_tokens_mode(node_a: Node) -> None:
    # Harness self-check for the fault mode used above (added for these tests).
    node_a.imds.faults("refuse_tokens")
    req = urllib.request.Request(f"{node_a.imds.url}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 403
    node_a.imds.faults("ok")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


# ---- the EC2 endpoint -------------------------------------------------------------------------

def test_ec2_endpoint_down_is_reported_quickly(scenario: Scenario, node_a: Node) -> None:
    # moto: none (nothing listens on the port). IMDS is fine, so the failure is the endpoint's.
    url = f"http://127.0.0.1:{closed_port()}"
    r, _rep, checks = doctor(node_a, env={"AWS_ENDPOINT_URL_EC2": url})
    assert r.elapsed < 10, f"an unreachable endpoint must be reported in seconds: {r.elapsed:.1f}s"
    assert r.code == 1, r.describe()
    ep = named(checks, "endpoint")
    assert ep["status"] == "fail" and url in ep["detail"] and ep["hint"], show(checks)
    for name in ("config", "imds", "region"):
        assert named(checks, name)["status"] == "ok", show(checks)
    t = node_a.run("doctor", env_extra={"AWS_ENDPOINT_URL_EC2": url})
    assert t.elapsed < 10 and t.code == 1, t.describe()
    assert re.search(r"(?m)^\s*fail\b.*\bendpoint\b", t.stdout), t.describe()


def test_ec2_endpoint_dropping_connections_is_reported_quickly(scenario: Scenario,
                                                               node_a: Node) -> None:
    # moto: none. A firewall that drops packets: the port's accept queue is full, so new SYNs go
    # unanswered and the connection attempt times out (the connect timeout, not a minute).
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(c)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel accepted a connection beyond the backlog; no blackhole")
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            probe.close()
        url = f"http://127.0.0.1:{port}"
        r, _rep, checks = doctor(node_a, env={"AWS_ENDPOINT_URL_EC2": url})
        assert r.elapsed < 10, f"took {r.elapsed:.1f}s\n{show(checks)}"
        ep = named(checks, "endpoint")
        assert r.code == 1 and ep["status"] == "fail" and url in ep["detail"], show(checks)
    finally:
        for c in fillers:
            c.close()
        server.close()


# ---- IAM ----------------------------------------------------------------------------------------

# (denied Action, expected status of its iam check, pattern of the check's name)
DENIALS = [
    ("ReplaceRoute", "fail", r"iam ec2:ReplaceRoute\b.*"),
    ("AssociateAddress", "fail", r"iam ec2:AssociateAddress\b.*"),
    ("CreateTags", "fail", r"iam ec2:CreateTags\b.*"),
    ("AssignPrivateIpAddresses", "fail", r"iam ec2:AssignPrivateIpAddresses\b.*"),
    ("DescribeRouteTables", "fail", r"iam ec2:DescribeRouteTables\b.*"),
    ("DescribeAddresses", "warn", r"iam ec2:DescribeAddresses\b.*"),
    ("DescribeNetworkInterfaces", "warn", r"iam ec2:DescribeNetworkInterfaces\b.*"),
    ("CreateRoute", "warn", r"iam ec2:CreateRoute\b.*"),
]


@pytest.mark.parametrize("action,status,pattern", DENIALS, ids=[d[0] for d in DENIALS])
def test_denied_permission_is_reported_as_denied(action: str, status: str, pattern: str,
                                                 scenario: Scenario, node_a: Node,
                                                 proxy: Proxy) -> None:
    # moto: none for the denial (the proxy answers UnauthorizedOperation, HTTP 403, as EC2 does
    # for a denied DryRun or call); DryRun answers for the others. Required permissions fail,
    # optional ones (CreateRoute, DescribeAddresses, DescribeNetworkInterfaces) only warn.
    a_is_master_holding_everything(node_a)
    proxy.rules([{"action": action, "kind": "error", **DENIED}])
    r, _rep, checks = doctor(node_a)
    hits = [c for c in checks if re.fullmatch(pattern, c["name"])]
    assert hits, f"no iam check for {action}\n{show(checks)}"
    for c in hits:
        assert c["status"] == status, show(checks)
        assert re.search(r"(?i)\bdenied\b", c["detail"]), f"say it is denied\n{show(checks)}"
        assert "UnauthorizedOperation" in c["detail"], show(checks)
        assert action in c["hint"], f"the hint should name ec2:{action}\n{show(checks)}"
    others = [c for c in checks if c["name"].startswith("iam ") and c not in hits]
    assert all(c["status"] == "ok" for c in others), f"only {action} is denied\n{show(checks)}"
    if status == "fail":
        assert r.code == 1, r.describe()
    else:
        assert r.code == 0 and not by_status(checks, "fail"), f"{r.describe()}\n{show(checks)}"
    if action in ("ReplaceRoute", "AssociateAddress", "CreateTags", "CreateRoute"):
        denied = [e for e in proxy.calls(action) if e["fault"] == "error"]
        assert denied and all(e["params"].get("DryRun") == "true" for e in denied), denied


# ---- exit codes ---------------------------------------------------------------------------------

def test_broken_config_is_a_failed_check_not_exit_2(scenario: Scenario, node_a: Node) -> None:
    # moto: none needed. Exit 2 is reserved for command-line errors; doctor reports a config.xml
    # it cannot read as its `config` check and goes on with the checks that need no config.
    node_a.write_raw_config(node_a.config.render()[:-60] + "<awshaips><config><vhid>wan@1")
    r, _rep, checks = doctor(node_a)
    assert r.code == 1, r.describe()
    assert named(checks, "config")["status"] == "fail", show(checks)
    assert named(checks, "imds")["status"] == "ok", show(checks)


def test_command_line_error_exits_2(node_a: Node, proxy: Proxy) -> None:
    # moto: none — nothing may be sent.
    r = node_a.run("doctor", "--no-such-flag")
    assert r.code == 2, r.describe()
    assert r.stderr.strip(), r.describe()
    rj = node_a.run("doctor", "--no-such-flag", "--json")
    assert rj.code == 2, rj.describe()
    rep = rj.json
    assert isinstance(rep, dict) and rep.get("ok") is False, rj.describe()
    assert rep.get("command") == "doctor", rj.describe()
    assert isinstance(rep.get("error"), str) and rep["error"].strip(), rj.describe()
    assert proxy.counts() == {}, proxy.counts()
