"""Self-tests of the test harness (no awsha binary needed).

Owns: proof that the pieces the awsha tests stand on behave as documented — the scenario, moto's
fidelity patches (tests/harness/moto_launcher.py P1–P5), the fault proxy's rules and bookkeeping
and its EC2-like settings (pagination, the 200-filter-value limit, token buckets, per-resource
CreateTags refusals, 400 RequestTimeout, InvalidRoute.NotFound, a propagated route beside the
static one), the second pfSense pair of the same account,
the IMDS emulator (token rules, live values, and a real SDK's IMDSv2 credential and region
fetchers), and the fake ifconfig's format; and for issue 14 the dual-stack world (the `dual`
fixture), moto's IPv6 patches P6–P9, the emulator's IPv6 paths and ifconfig's inet6 CARP lines. If one of these fails, fix the harness before reading
anything into a failing awsha test.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from botocore.parsers import ResponseParserError
import pytest
from botocore.config import Config

from awsha_scenario import (
    DEFAULT_ROUTE, LAN_VIP, OTHER_ROUTE, PREFIX_LIST_ENTRIES, REGION, V6_DEFAULT_ROUTE,
    V6_REMOTE_ROUTE, WAN_VIP, Cloud, DualStack, Node, Proxy, Scenario, build_second_pair,
    loose_ipv6, parse_modified, wan3_on, wan3_where,
)


def via(url: str, attempts: int = 1, read_timeout: float = 10) -> Any:
    return boto3.client("ec2", endpoint_url=url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": attempts, "mode": "standard"},
                                      connect_timeout=2, read_timeout=read_timeout))


def test_scenario_initial_state(scenario: Scenario, cloud: Cloud) -> None:
    s = scenario
    assert cloud.ip_holders(WAN_VIP) == [s.eni[("B", "wan")]]
    assert cloud.ip_holders(LAN_VIP) == [s.eni[("B", "lan")]]
    assert cloud.route_target(s.rt1, DEFAULT_ROUTE) == s.eni[("B", "lan")]
    assert cloud.route_target(s.rt2, OTHER_ROUTE) == s.eni[("B", "lan")]
    assert cloud.eip(s.allocation) == (s.eni[("B", "wan")], WAN_VIP)
    assert len(set(s.mac.values())) == 4


def test_moto_patch_assign_moves_ip_and_its_eip(scenario: Scenario, cloud: Cloud,
                                                proxy: Proxy) -> None:
    s, ec2 = scenario, via(proxy.url)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=s.eni[("A", "wan")],
                                        PrivateIpAddresses=[WAN_VIP])
    assert e.value.response["Error"]["Code"] == "InvalidIPAddress.InUse"
    assert cloud.ip_holders(WAN_VIP) == [s.eni[("B", "wan")]]
    with pytest.raises(botocore.exceptions.ClientError):  # outside the subnet
        ec2.assign_private_ip_addresses(NetworkInterfaceId=s.eni[("A", "wan")],
                                        PrivateIpAddresses=["10.0.2.99"], AllowReassignment=True)
    ec2.assign_private_ip_addresses(NetworkInterfaceId=s.eni[("A", "wan")],
                                    PrivateIpAddresses=[WAN_VIP], AllowReassignment=True)
    assert cloud.ip_holders(WAN_VIP) == [s.eni[("A", "wan")]]  # left B: moved, not copied
    assert cloud.eip(s.allocation) == (s.eni[("A", "wan")], WAN_VIP)  # the EIP rode along
    # P4: the ENI filter sees secondary addresses
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "addresses.private-ip-address", "Values": [WAN_VIP]}])
    assert [n["NetworkInterfaceId"] for n in found["NetworkInterfaces"]] == [s.eni[("A", "wan")]]
    # P2: unassigning the address disassociates its EIP
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=s.eni[("A", "wan")],
                                      PrivateIpAddresses=[WAN_VIP])
    assert cloud.eip(s.allocation) == (None, None)


def test_moto_patch_associate_address_private_ip(scenario: Scenario, cloud: Cloud,
                                                 proxy: Proxy) -> None:
    s, ec2 = scenario, via(proxy.url)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.associate_address(AllocationId=s.allocation, NetworkInterfaceId=s.eni[("A", "wan")],
                              PrivateIpAddress=WAN_VIP, AllowReassociation=True)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "is not mapped to the interface" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.associate_address(AllocationId=s.allocation, NetworkInterfaceId=s.eni[("A", "wan")],
                              PrivateIpAddress="10.0.1.11")
    assert e.value.response["Error"]["Code"] == "Resource.AlreadyAssociated"
    ec2.associate_address(AllocationId=s.allocation, NetworkInterfaceId=s.eni[("A", "wan")],
                          PrivateIpAddress="10.0.1.11", AllowReassociation=True)
    assert cloud.eip(s.allocation) == (s.eni[("A", "wan")], "10.0.1.11")
    got = ec2.describe_addresses(Filters=[{"Name": "private-ip-address", "Values": ["10.0.1.11"]}])
    assert [a["AllocationId"] for a in got["Addresses"]] == [s.allocation]


def test_moto_patch_routes_dryrun_and_duplicates(scenario: Scenario, cloud: Cloud,
                                                 proxy: Proxy) -> None:
    s, ec2 = scenario, via(proxy.url)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.replace_route(RouteTableId=s.rt1, DestinationCidrBlock=DEFAULT_ROUTE,
                          NetworkInterfaceId=s.eni[("A", "lan")], DryRun=True)
    assert e.value.response["Error"]["Code"] == "DryRunOperation"
    assert cloud.route_target(s.rt1, DEFAULT_ROUTE) == s.eni[("B", "lan")]  # not mutated
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_route(RouteTableId=s.rt1, DestinationCidrBlock=DEFAULT_ROUTE,
                         NetworkInterfaceId=s.eni[("A", "lan")])
    assert e.value.response["Error"]["Code"] == "RouteAlreadyExists"
    with pytest.raises(botocore.exceptions.ClientError) as e:  # moto matches AWS here unpatched
        ec2.replace_route(RouteTableId=s.rt1, DestinationCidrBlock="10.77.0.0/16",
                          NetworkInterfaceId=s.eni[("A", "lan")])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Use CreateRoute" in e.value.response["Error"]["Message"]


def test_proxy_forwards_counts_and_logs(scenario: Scenario, proxy: Proxy) -> None:
    ec2 = via(proxy.url)
    ec2.describe_route_tables(RouteTableIds=[scenario.rt1])
    ec2.create_tags(Resources=[scenario.rt1], Tags=[{"Key": "k", "Value": "v"}])
    assert proxy.counts() == {"DescribeRouteTables": 1, "CreateTags": 1}
    assert proxy.mutating_counts() == {"CreateTags": 1}
    entry = proxy.calls("CreateTags")[0]
    assert entry["status"] == 200 and entry["params"]["ResourceId.1"] == scenario.rt1
    proxy.reset()
    assert proxy.counts() == {} and proxy.log() == []


def test_proxy_faults(scenario: Scenario, proxy: Proxy) -> None:
    ec2 = via(proxy.url)
    # throttle twice, then pass: the SDK's own retries get through on the third attempt
    proxy.rules([{"action": "DescribeVpcs", "kind": "throttle", "times": 2}])
    resp = via(proxy.url, attempts=3).describe_vpcs()
    assert resp["ResponseMetadata"]["RetryAttempts"] == 2
    assert [e["status"] for e in proxy.calls("DescribeVpcs")] == [503, 503, 200]
    # error, always; only for the matching params
    proxy.rules([{"action": "DescribeRouteTables", "kind": "error", "status": 403,
                  "code": "UnauthorizedOperation", "message": "nope",
                  "params": {"RouteTableId.1": scenario.rt1}}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_route_tables(RouteTableIds=[scenario.rt1])
    assert e.value.response["Error"] == {"Code": "UnauthorizedOperation", "Message": "nope"}
    ec2.describe_route_tables(RouteTableIds=[scenario.rt2])  # other params pass
    # malformed body
    proxy.rules([{"action": "DescribeVpcs", "kind": "malformed"}])
    with pytest.raises(ResponseParserError):
        ec2.describe_vpcs()
    # reset: connection dropped without an answer
    proxy.rules([{"action": "DescribeVpcs", "kind": "reset"}])
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        ec2.describe_vpcs()
    # delay
    proxy.rules([{"action": "DescribeVpcs", "kind": "delay", "ms": 400}])
    t = time.monotonic()
    ec2.describe_vpcs()
    assert time.monotonic() - t >= 0.4
    # hang: the client's read timeout fires; the proxy holds the request, answers nothing
    proxy.rules([{"action": "DescribeVpcs", "kind": "hang", "seconds": 30}])
    t = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        via(proxy.url, read_timeout=1).describe_vpcs()
    assert time.monotonic() - t < 10
    # other actions keep flowing while one hangs (threaded)
    ec2.describe_subnets()


def test_proxy_logs_in_order_before_answering_and_holds_until_released(scenario: Scenario,
                                                                       proxy: Proxy) -> None:
    ec2 = via(proxy.url)
    # An answered request is in the log by the time its client has the answer, numbered at
    # arrival (seq) and at answer (done_seq) on one counter: the next call comes after it.
    ec2.describe_vpcs()
    first = proxy.calls("DescribeVpcs")
    assert len(first) == 1 and first[0]["status"] == 200, first
    ec2.describe_subnets()
    [later] = proxy.calls("DescribeSubnets")
    assert first[0]["seq"] < first[0]["done_seq"] < later["seq"] < later["done_seq"]
    # hold: kept unanswered (and unlogged) until the release, then forwarded as usual
    proxy.rules([{"action": "DescribeVpcs", "kind": "hold", "seconds": 60}])
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(ec2.describe_vpcs)
        deadline = time.monotonic() + 15
        while proxy.counts().get("DescribeVpcs", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proxy.counts().get("DescribeVpcs") == 2, proxy.counts()
        assert not held.done() and len(proxy.calls("DescribeVpcs")) == 1
        ec2.describe_subnets()  # other actions are not held
        proxy.release()
        assert held.result(timeout=15)["Vpcs"]
    entry = proxy.calls("DescribeVpcs")[-1]
    assert entry["status"] == 200 and entry["fault"] is None, entry  # held, then forwarded


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_imds_emulator_tokens_and_live_values(scenario: Scenario, node_a: Node,
                                              proxy: Proxy) -> None:
    s, base = scenario, node_a.imds.url
    assert _get(f"{base}/latest/meta-data/instance-id")[0] == 401
    assert _get(f"{base}/latest/api/token", method="PUT")[0] == 400  # TTL header required
    req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        token = resp.read().decode()
        assert resp.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "300"
    h = {"X-aws-ec2-metadata-token": token}
    md = f"{base}/latest/meta-data"
    assert _get(f"{md}/instance-id", h) == (200, s.instance["A"])
    assert _get(f"{md}/placement/region", h) == (200, REGION)
    assert _get(f"{md}/mac", h) == (200, s.mac[("A", "wan")])
    assert _get(f"{md}/network/interfaces/macs/", h)[1].split() == [
        f"{s.mac[('A', 'wan')]}/", f"{s.mac[('A', 'lan')]}/"]
    lan = f"{md}/network/interfaces/macs/{s.mac[('A', 'lan')]}"
    assert _get(f"{lan}/interface-id", h) == (200, s.eni[("A", "lan")])
    assert _get(f"{lan}/device-number", h) == (200, "1")
    assert _get(f"{lan}/subnet-ipv4-cidr-block", h) == (200, "10.0.2.0/24")
    assert _get(f"{lan}/vpc-ipv4-cidr-block", h) == (200, "10.0.0.0/16")
    assert _get(f"{lan}/local-ipv4s", h) == (200, "10.0.2.11")
    # live: move the lan VIP to A and IMDS shows it at once, primary first
    via(proxy.url).assign_private_ip_addresses(
        NetworkInterfaceId=s.eni[("A", "lan")], PrivateIpAddresses=[LAN_VIP],
        AllowReassignment=True)
    assert _get(f"{lan}/local-ipv4s", h) == (200, f"10.0.2.11\n{LAN_VIP}")
    assert _get(f"{md}/iam/security-credentials-extended/", h)[0] == 404
    node_a.imds.faults("no_interface_id", mac=s.mac[("A", "lan")])
    assert _get(f"{lan}/interface-id", h)[0] == 404
    node_a.imds.faults("401")
    assert _get(f"{md}/instance-id", h)[0] == 401
    node_a.imds.faults("ok")
    node_a.imds.faults("expire_tokens")
    assert _get(f"{md}/instance-id", h)[0] == 401
    assert node_a.imds.counts()["401"] >= 3


def test_imds_emulator_burst_shares_live_fetches(scenario: Scenario, node_a: Node,
                                                proxy: Proxy) -> None:
    """awsha asks for several ENI paths at once; the emulator answers them from shared fetches
    of moto (each started after the request arrived, so still live), not one fetch per request:
    16 at once once queued behind moto past awsha's 2 s IMDS deadline on a loaded CI machine."""
    s, base = scenario, node_a.imds.url
    node_a.imds.reset()  # counts from zero (tokens too, so ask for one after)
    node_a.imds.configure(s.instance["A"])
    req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        h = {"X-aws-ec2-metadata-token": resp.read().decode()}
    macs = f"{base}/latest/meta-data/network/interfaces/macs"
    paths = [(f"{macs}/{s.mac[('A', side)]}/{leaf}", want)
             for side, subnet in (("wan", s.subnet_wan), ("lan", s.subnet_lan))
             for leaf, want in (("interface-id", s.eni[("A", side)]), ("subnet-id", subnet))] * 4
    with ThreadPoolExecutor(len(paths)) as pool:
        answers = list(pool.map(lambda pw: _get(pw[0], h), paths))
    assert answers == [(200, want) for _, want in paths]
    rounds = node_a.imds.counts().get("moto rounds", 0)
    assert 1 <= rounds <= len(paths) // 2, f"{rounds} fetches of moto for {len(paths)} GETs"
    # Still live: a change made before a request is in its answer.
    via(proxy.url).assign_private_ip_addresses(
        NetworkInterfaceId=s.eni[("A", "lan")], PrivateIpAddresses=[LAN_VIP],
        AllowReassignment=True)
    assert _get(f"{macs}/{s.mac[('A', 'lan')]}/local-ipv4s", h) == (200, f"10.0.2.11\n{LAN_VIP}")


MOTO_RESET_PROBE = """
import gc, sys, urllib.request
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import boto3, moto_launcher
from awsha_scenario import build_scenario
moto_launcher.apply_patches()
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
url = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
def worlds_alive(resets):
    for _ in range(resets):
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", data=b"",
                                                      method="POST"), timeout=30).read()
        build_scenario(ec2, ami)
    gc.collect()
    return sum(type(o).__name__ == "EC2Backend" for o in gc.get_objects())
plain = worlds_alive(3)
moto_launcher.free_old_worlds_on_reset()
print(plain, worlds_alive(3))
server.stop()
"""


def test_moto_reset_frees_the_old_world(tmp_path: Any) -> None:
    """R1 (moto_launcher.py): after `POST /moto-api/reset` only the new world stays alive. Plain
    moto 5.2.5 keeps every old one (caches keyed by subnet and backend), so over a whole session
    its heap grew until garbage collection paused it past awsha's IMDS deadline."""
    harness = Path(__file__).resolve().parent.parent / "harness"
    probe = subprocess.run(
        [sys.executable, "-c", MOTO_RESET_PROBE, str(harness), str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-3000:]
    plain, patched = map(int, probe.stdout.split()[-2:])
    assert plain > 1, f"plain moto keeps old worlds ({plain}): if moto fixed it, R1 can go"
    assert patched == 1, f"{patched} EC2 worlds alive after resets with R1: the leak is back"


def test_imds_emulator_serves_a_real_sdk(scenario: Scenario, node_a: Node) -> None:
    """botocore's IMDSv2 client (token, role, credentials; region) works against the emulator."""
    from botocore.utils import IMDSRegionProvider, InstanceMetadataFetcher

    fetcher = InstanceMetadataFetcher(timeout=2, num_attempts=1, base_url=node_a.imds.url)
    creds = fetcher.retrieve_iam_role_credentials()
    issued = node_a.imds.credentials()
    assert creds["access_key"] == issued["AccessKeyId"] and issued["AccessKeyId"].startswith(
        "ASIAEMU")
    assert creds["secret_key"] == issued["SecretAccessKey"]
    assert creds["token"] == issued["Token"]
    session = boto3.session.Session()._session  # a botocore session, only for its config chain
    session.set_config_variable("ec2_metadata_service_endpoint", node_a.imds.url)
    assert IMDSRegionProvider(session).provide() == REGION
    counts = node_a.imds.counts()
    assert counts.get("PUT /latest/api/token", 0) >= 2 and "401" not in counts


def test_fake_ifconfig_format(node_a: Node, node_b: Node) -> None:
    out = subprocess.run([str(node_a.ifconfig.path), "-a"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    carp = re.compile(r"^\s*carp: (INIT|BACKUP|MASTER) vhid (\d+) advbase (\d+) advskew (\d+)$",
                      re.M)
    assert carp.findall(out) == [("MASTER", "1", "1", "0"), ("MASTER", "2", "1", "0")]
    assert "\t      peer 10.0.1.12 peer6 ff02::12\n" in out
    assert f"\tether {node_a.scn.mac[('A', 'wan')]}\n" in out
    assert "\tinet 10.0.1.10 netmask 0xffffffff broadcast 10.0.1.10 vhid 1\n" in out
    for block in ("ena0:", "ena1:", "enc0:", "lo0:", "pflog0:", "pfsync0:"):
        assert re.search(rf"^{block} flags=", out, re.M), block
    assert node_a.ifconfig.calls() == ["-a"]
    node_a.set_carp(1, state="BACKUP", advskew=254)
    out = node_a.ifconfig.path.parent.joinpath("ifconfig.txt").read_text()
    assert carp.findall(out)[0] == ("BACKUP", "1", "1", "254")
    out_b = node_b.ifconfig.read()
    assert carp.findall(out_b) == [("BACKUP", "1", "1", "100"), ("BACKUP", "2", "1", "100")]


# ---- issue 11: the proxy as hard as EC2 ----------------------------------------------------------

def _tag_resources(ec2: Any, resources: list[str], n: int, prefix: str = "k") -> None:
    ec2.create_tags(Resources=resources, Tags=[{"Key": f"{prefix}{i}", "Value": str(i)}
                                               for i in range(n)])


def test_proxy_paging(scenario: Scenario, proxy: Proxy, ec2: Any) -> None:
    s = scenario
    _tag_resources(ec2, [s.rt1, s.rt2], 3)
    filters = [{"Name": "resource-id", "Values": [s.rt1, s.rt2]}]
    whole = ec2.describe_tags(Filters=filters)["Tags"]  # straight to moto: one answer
    assert len(whole) == 6
    proxy.configure(paging={"page_size": 4, "empty_first_page": True})
    c = via(proxy.url)
    # The first page: nothing at all, and a token.
    first = c.describe_tags(Filters=filters, MaxResults=1000)
    assert first["Tags"] == [] and first.get("NextToken"), first
    # Followed to the end, the pages hold exactly moto's list, in order.
    pages = list(c.get_paginator("describe_tags").paginate(Filters=filters))
    assert [len(p["Tags"]) for p in pages] == [0, 4, 2]
    assert [t for p in pages for t in p["Tags"]] == whole
    log = [e["page"] for e in proxy.calls("DescribeTags")]
    assert [(p["index"], p["items"], p["total"]) for p in log] == [
        (0, 0, 6), (0, 0, 6), (1, 4, 6), (2, 2, 6)], log
    assert log[-1]["next_token"] is None and all(p["next_token"] for p in log[:-1])
    # A smaller MaxResults is honoured; the same token may be presented again (a retry).
    page = c.describe_tags(Filters=filters, MaxResults=5, NextToken=first["NextToken"])
    again = c.describe_tags(Filters=filters, MaxResults=5, NextToken=first["NextToken"])
    assert len(page["Tags"]) == 4 and page["Tags"] == again["Tags"]  # page_size 4 < 5
    proxy.configure(paging={"page_size": 10})
    short = c.describe_tags(Filters=filters, MaxResults=5)
    assert len(short["Tags"]) == 5 and short["NextToken"], short
    # A token is valid only for the request it was given for.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_tags(Filters=[{"Name": "resource-id", "Values": [s.rt1]}],
                        NextToken=short["NextToken"])
    assert e.value.response["Error"]["Code"] == "InvalidPaginationToken"
    # Route tables and ENIs page the same way; DescribeAddresses is never paged (as in EC2).
    proxy.configure(paging={"page_size": 1, "empty_first_page": True})
    tables = [t for p in c.get_paginator("describe_route_tables").paginate() for t in
              p["RouteTables"]]
    assert sorted(t["RouteTableId"] for t in tables) == sorted(
        t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"])
    enis = [n for p in c.get_paginator("describe_network_interfaces").paginate(
        Filters=[{"Name": "vpc-id", "Values": [s.vpc]}]) for n in p["NetworkInterfaces"]]
    assert len(enis) == 4 and enis == ec2.describe_network_interfaces(
        Filters=[{"Name": "vpc-id", "Values": [s.vpc]}])["NetworkInterfaces"]
    assert c.describe_network_interfaces()["NetworkInterfaces"] == []  # the empty first page
    addresses = c.describe_addresses()
    assert len(addresses["Addresses"]) == 1 and "NextToken" not in addresses
    assert "page" not in proxy.calls("DescribeAddresses")[0]
    # DryRun (an error answer) is never paged.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_route_tables(DryRun=True, MaxResults=5)
    assert e.value.response["Error"]["Code"] == "DryRunOperation"
    proxy.configure(paging=None)
    assert "NextToken" not in c.describe_tags(Filters=filters, MaxResults=5)


def test_proxy_filter_limit(scenario: Scenario, proxy: Proxy) -> None:
    s, c = scenario, via(proxy.url)
    assert proxy.settings()["filter_limit"] == 200, "on by default: EC2 always enforces it"
    fake = [f"rtb-{i:017x}" for i in range(201)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_route_tables(Filters=[{"Name": "route-table-id", "Values": fake}])
    assert e.value.response["Error"]["Code"] == "FilterLimitExceeded"
    assert "200" in e.value.response["Error"]["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ok = c.describe_route_tables(Filters=[{"Name": "route-table-id", "Values": fake[:199]
                                           + [s.rt1]}])
    assert [t["RouteTableId"] for t in ok["RouteTables"]] == [s.rt1]
    # Values of all filters and the members of id lists count together.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_tags(Filters=[{"Name": "resource-id", "Values": fake[:196]},
                                 {"Name": "key", "Values": ["a", "b", "c", "d", "e"]}])
    assert e.value.response["Error"]["Code"] == "FilterLimitExceeded"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_addresses(AllocationIds=[f"eipalloc-{i:017x}" for i in range(150)],
                             Filters=[{"Name": "domain", "Values": ["vpc"] * 51}])
    assert e.value.response["Error"]["Code"] == "FilterLimitExceeded"
    assert [x["filter_values"] for x in proxy.log()] == [201, 200, 201, 201]
    assert [x["fault"] for x in proxy.log()] == ["filter_limit", None, "filter_limit",
                                                 "filter_limit"]
    # Mutating calls have no filters: CreateTags on 250 resources is not refused for it.
    c.create_tags(Resources=[s.rt1] * 250, Tags=[{"Key": "k", "Value": "v"}])
    proxy.configure(filter_limit=None)
    c.describe_route_tables(Filters=[{"Name": "route-table-id", "Values": fake}])
    proxy.reset()
    assert proxy.settings()["filter_limit"] == 200, "back on after a reset"


def test_proxy_token_bucket_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    import fault_proxy

    now = [100.0]
    monkeypatch.setattr(fault_proxy.time, "monotonic", lambda: now[0])
    b = fault_proxy.Bucket(capacity=3, refill=2)
    assert [b.take() for _ in range(4)] == [True, True, True, False]  # full at the start
    for _ in range(5):
        assert not b.take(), "a refused request consumes nothing (and earns nothing)"
    now[0] += 0.5  # one token back at 2/s
    assert [b.take(), b.take()] == [True, False]
    now[0] += 60  # never more than the capacity
    assert [b.take() for _ in range(4)] == [True, True, True, False]


def test_proxy_token_buckets(scenario: Scenario, proxy: Proxy) -> None:
    # One try per call (botocore's `max_attempts` counts retries; `total_max_attempts` all tries).
    c = boto3.client("ec2", endpoint_url=proxy.url, region_name=REGION,
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                   connect_timeout=2, read_timeout=10))
    # refill 0.2/s: no token comes back during this test's few hundred milliseconds.
    proxy.configure(buckets={"DescribeVpcs": {"capacity": 3, "refill": 0.2}})
    for _ in range(3):
        c.describe_vpcs()
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.describe_vpcs()
        assert e.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    c.describe_subnets()  # another Action has its own bucket (none here)
    assert proxy.throttled() == {"DescribeVpcs": 2}
    assert [x["fault"] for x in proxy.calls("DescribeVpcs")] == [None, None, None, "bucket",
                                                                 "bucket"]
    assert proxy.counts()["DescribeVpcs"] == 5
    # "*": every Action gets its own bucket with these settings.
    proxy.configure(buckets={"*": {"capacity": 1, "refill": 0.1}})
    c.describe_vpcs()
    c.describe_subnets()
    for call in (c.describe_vpcs, c.describe_subnets):
        with pytest.raises(botocore.exceptions.ClientError):
            call()
    assert proxy.throttled() == {"DescribeVpcs": 3, "DescribeSubnets": 1}
    proxy.reset()
    assert proxy.settings()["buckets"] == {} and proxy.throttled() == {}
    c.describe_vpcs()


def test_proxy_refuses_createtags_for_one_resource(scenario: Scenario, proxy: Proxy,
                                                   cloud: Cloud, ec2: Any) -> None:
    s, c = scenario, via(proxy.url)
    tags = [{"Key": "awsha:vhid", "Value": "wan@1"}]
    proxy.rules([{"action": "CreateTags", "kind": "error", "status": 400,
                  "code": "TagLimitExceeded", "message": "too many tags on {match}",
                  "list_contains": {"ResourceId": s.rt2}}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_tags(Resources=[s.rt1, s.rt2, s.allocation], Tags=tags)
    assert e.value.response["Error"] == {"Code": "TagLimitExceeded",
                                         "Message": f"too many tags on {s.rt2}"}
    assert cloud.tags(s.rt1) == {}, "the batch fails whole"
    c.create_tags(Resources=[s.rt1, s.allocation], Tags=tags)  # without rt2: passes
    assert cloud.tags(s.rt1) == {"awsha:vhid": "wan@1"}
    # moto itself refuses a batch whole when one resource would pass 50 user tags, as EC2 does.
    proxy.rules([])
    _tag_resources(ec2, [s.rt2], 50)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_tags(Resources=[s.rt1, s.rt2], Tags=[{"Key": "new", "Value": "v"}])
    assert e.value.response["Error"]["Code"] == "TagLimitExceeded"
    assert "new" not in cloud.tags(s.rt1)


def test_proxy_request_timeout_and_missing_route(scenario: Scenario, proxy: Proxy,
                                                 cloud: Cloud) -> None:
    s = scenario
    # A 400 RequestTimeout (an error rule): transient for the AWS SDKs, retried by botocore too.
    proxy.rules([{"action": "DescribeVpcs", "kind": "error", "status": 400,
                  "code": "RequestTimeout", "message": "Your socket connection to the server "
                  "was not read from or written to within the timeout period.", "times": 1}])
    resp = via(proxy.url, attempts=2).describe_vpcs()
    assert resp["ResponseMetadata"]["RetryAttempts"] == 1
    assert [e["status"] for e in proxy.calls("DescribeVpcs")] == [400, 200]
    # ReplaceRoute on a destination missing from its table: EC2's answer today, then the one it
    # may give tomorrow.
    c = via(proxy.url)
    lan_a = s.eni[("A", "lan")]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.replace_route(RouteTableId=s.rt1, DestinationCidrBlock="10.77.0.0/16",
                        NetworkInterfaceId=lan_a)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    proxy.configure(replace_route_missing="InvalidRoute.NotFound")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.replace_route(RouteTableId=s.rt1, DestinationCidrBlock="10.77.0.0/16",
                        NetworkInterfaceId=lan_a)
    assert e.value.response["Error"]["Code"] == "InvalidRoute.NotFound"
    assert "10.77.0.0/16" in e.value.response["Error"]["Message"]
    assert "CreateRoute" not in e.value.response["Error"]["Message"]
    c.replace_route(RouteTableId=s.rt1, DestinationCidrBlock=DEFAULT_ROUTE,
                    NetworkInterfaceId=lan_a)  # an existing route is still replaced
    assert cloud.route_target(s.rt1, DEFAULT_ROUTE) == lan_a


def test_proxy_propagated_route_beside_the_static_one(scenario: Scenario, proxy: Proxy,
                                                      ec2: Any) -> None:
    s = scenario
    # moto reports the origin of the static route as EC2 does.
    plain = ec2.describe_route_tables(RouteTableIds=[s.rt1])["RouteTables"][0]["Routes"]
    assert [(r["DestinationCidrBlock"], r["Origin"]) for r in plain] == [
        ("10.0.0.0/16", "CreateRouteTable"), (DEFAULT_ROUTE, "CreateRoute")]
    proxy.configure(propagated_routes=[{"route_table": s.rt1, "cidr": DEFAULT_ROUTE,
                                        "gateway": "vgw-0123456789abcdef0"}],
                    paging={"page_size": 1})
    c = via(proxy.url)
    tables = [t for p in c.get_paginator("describe_route_tables").paginate() for t in
              p["RouteTables"]]
    rt1 = next(t for t in tables if t["RouteTableId"] == s.rt1)
    assert [(r["DestinationCidrBlock"], r["Origin"], r.get("NetworkInterfaceId"),
             r.get("GatewayId")) for r in rt1["Routes"]] == [
        ("10.0.0.0/16", "CreateRouteTable", None, "local"),
        (DEFAULT_ROUTE, "CreateRoute", s.eni[("B", "lan")], None),
        (DEFAULT_ROUTE, "EnableVgwRoutePropagation", None, "vgw-0123456789abcdef0")]
    assert rt1["PropagatingVgws"] == [{"GatewayId": "vgw-0123456789abcdef0"}]
    rt2 = next(t for t in tables if t["RouteTableId"] == s.rt2)
    assert len(rt2["Routes"]) == 2, "other tables untouched"


def test_second_pair_in_the_same_account(scenario: Scenario, ec2: Any, ami: str,
                                         cloud: Cloud) -> None:
    s = scenario
    before = cloud.tags(s.rt1)
    other = build_second_pair(ec2, ami)
    # Ours is untouched: the same addresses in another VPC are other addresses (moto P1).
    assert cloud.ip_holders(WAN_VIP, vpc=s.vpc) == [s.eni[("B", "wan")]]
    assert cloud.ip_holders(LAN_VIP, vpc=s.vpc) == [s.eni[("B", "lan")]]
    assert cloud.eip(s.allocation) == (s.eni[("B", "wan")], WAN_VIP)
    assert cloud.tags(s.rt1) == before
    # Theirs: same CIDRs and addresses, its MASTER C holds the VIPs, routes and EIP.
    assert cloud.ip_holders(WAN_VIP, vpc=other.vpc) == [other.eni[("C", "wan")]]
    assert cloud.ip_holders(LAN_VIP, vpc=other.vpc) == [other.eni[("C", "lan")]]
    assert sorted(cloud.ip_holders(WAN_VIP)) == sorted([s.eni[("B", "wan")],
                                                        other.eni[("C", "wan")]])
    assert cloud.route_target(other.rt1, DEFAULT_ROUTE) == other.eni[("C", "lan")]
    assert cloud.eip(other.allocation) == (other.eni[("C", "wan")], WAN_VIP)
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [other.vpc]}])["Subnets"]
    assert sorted(x["CidrBlock"] for x in subnets) == ["10.0.1.0/24", "10.0.2.0/24"]
    for resource, vhid in ((other.eni[("C", "wan")], "wan@1"), (other.rt1, "wan@1"),
                           (other.allocation, "wan@1"), (other.eni[("C", "lan")], "lan@2")):
        tags = cloud.tags(resource)
        assert {k: tags[k] for k in ("awsha:vhid", "awsha:instance", "awsha:advbase",
                                     "awsha:advskew")} == {
            "awsha:vhid": vhid, "awsha:instance": other.instance["C"], "awsha:advbase": "1",
            "awsha:advskew": "0"}, (resource, tags)
        assert parse_modified(tags["awsha:modified"]) <= datetime.now(timezone.utc)
    # The account-wide tag search for wan@1 finds their ENI (what a node without
    # DescribeNetworkInterfaces falls back on).
    found = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["network-interface"]},
                                       {"Name": "key", "Values": ["awsha:vhid"]},
                                       {"Name": "value", "Values": ["wan@1"]}])["Tags"]
    assert [t["ResourceId"] for t in found] == [other.eni[("C", "wan")]]
    low = build_second_pair(ec2, ami, advskew=200)
    assert cloud.tags(low.rt2)["awsha:advskew"] == "200"


def test_imds_emulator_no_region_mode(scenario: Scenario, node_a: Node) -> None:
    base = node_a.imds.url
    req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        h = {"X-aws-ec2-metadata-token": resp.read().decode()}
    node_a.imds.faults("no_region")
    assert _get(f"{base}/latest/meta-data/placement/region", h)[0] == 404
    assert _get(f"{base}/latest/meta-data/instance-id", h) == (200, scenario.instance["A"])
    node_a.imds.faults("ok")
    assert _get(f"{base}/latest/meta-data/placement/region", h) == (200, REGION)


# ---- issue 14: dual stack ------------------------------------------------------------------------

def _imds_headers(base: str) -> dict[str, str]:
    req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return {"X-aws-ec2-metadata-token": resp.read().decode()}


def test_dual_stack_initial_state(dual: DualStack, scenario: Scenario, cloud: Cloud,
                                  ec2: Any) -> None:
    s, ds = scenario, dual
    block = ipaddress.IPv6Network(ds.vpc_block)
    assert block.prefixlen == 56 and str(block) == ds.vpc_block, "canonical /56 (P8)"
    vpc = ec2.describe_vpcs(VpcIds=[s.vpc])["Vpcs"][0]
    assert [(a["Ipv6CidrBlock"], a["Ipv6CidrBlockState"]["State"])
            for a in vpc["Ipv6CidrBlockAssociationSet"]] == [(ds.vpc_block, "associated")]
    subnets = {x["SubnetId"]: x for x in ec2.describe_subnets(
        SubnetIds=[s.subnet_wan, s.subnet_lan])["Subnets"]}
    for side, subnet in (("wan", s.subnet_wan), ("lan", s.subnet_lan)):
        assoc = subnets[subnet]["Ipv6CidrBlockAssociationSet"]
        assert [(a["Ipv6CidrBlock"], a["Ipv6CidrBlockState"]["State"]) for a in assoc] == [
            (ds.subnet6[side], "associated")], "EC2's state shape (P8)"
        assert ipaddress.IPv6Network(ds.subnet6[side]).subnet_of(block)
    for (node, side), addr in ds.ipv6.items():
        assert cloud.ipv6_holders(addr) == [s.eni[(node, side)]]
        assert addr.endswith("::11" if node == "A" else "::12")
    assert cloud.ipv6_holders(ds.vip6) == [s.eni[("B", "wan")]]
    assert ds.vip6 == str(ipaddress.IPv6Network(ds.subnet6["wan"])[0x10])
    assert wan3_where(cloud, s, ds) == wan3_on(s, "B")
    # IPv4 untouched, and the IPv6 routes sit beside the IPv4 ones in the same tables.
    assert cloud.ip_holders(WAN_VIP) == [s.eni[("B", "wan")]]
    assert cloud.route_target(s.rt1, DEFAULT_ROUTE) == s.eni[("B", "lan")]
    rt1 = ec2.describe_route_tables(RouteTableIds=[s.rt1])["RouteTables"][0]["Routes"]
    assert [(r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock"),
             r.get("GatewayId") or r.get("NetworkInterfaceId")) for r in rt1] == [
        ("10.0.0.0/16", "local"), (DEFAULT_ROUTE, s.eni[("B", "lan")]),
        (ds.vpc_block, "local"), (V6_DEFAULT_ROUTE, s.eni[("B", "lan")])]
    rt3 = ec2.describe_route_tables(RouteTableIds=[ds.rt3])["RouteTables"][0]["Routes"]
    assert [r for r in rt3 if "DestinationPrefixListId" in r] == [
        {"DestinationPrefixListId": ds.prefix_list, "NetworkInterfaceId": s.eni[("B", "lan")],
         "Origin": "CreateRoute", "State": "active"}]
    assert re.fullmatch(r"pl-[0-9a-f]{17}", ds.prefix_list)
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=ds.prefix_list)["Entries"]
    assert sorted(e["Cidr"] for e in entries) == sorted(PREFIX_LIST_ENTRIES)


def test_moto_patch_ipv6_addresses_are_not_reassigned(dual: DualStack, scenario: Scenario,
                                                      cloud: Cloud, proxy: Proxy) -> None:
    s, ds, ec2 = scenario, dual, via(proxy.url)
    a_wan, b_wan = s.eni[("A", "wan")], s.eni[("B", "wan")]
    # P6: another ENI holds it → refused, in any textual form; nothing changes.
    for form in (ds.vip6, loose_ipv6(ds.vip6)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.assign_ipv6_addresses(NetworkInterfaceId=a_wan, Ipv6Addresses=[form])
        assert e.value.response["Error"] == {"Code": "InvalidIPAddress.InUse",
                                             "Message": f"Address {ds.vip6} is in use."}
    assert cloud.ipv6_holders(ds.vip6) == [b_wan]
    # All or nothing: a free address beside a held one is not assigned either.
    free = str(ipaddress.IPv6Network(ds.subnet6["wan"])[0x20])
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.assign_ipv6_addresses(NetworkInterfaceId=a_wan, Ipv6Addresses=[free, ds.vip6])
    assert cloud.ipv6_holders(free) == []
    # Outside the ENI's subnet /64 (the lan /64, and a non-VPC address).
    for other in (str(ipaddress.IPv6Network(ds.subnet6["lan"])[0x10]), "2001:db8::10"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.assign_ipv6_addresses(NetworkInterfaceId=a_wan, Ipv6Addresses=[other])
        assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    # Unassign from an ENI that does not hold it → refused (not silently ignored).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.unassign_ipv6_addresses(NetworkInterfaceId=a_wan, Ipv6Addresses=[ds.vip6])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert a_wan in e.value.response["Error"]["Message"]
    # P7: the ENI filter finds the holder (RFC 5952 text).
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "ipv6-addresses.ipv6-address", "Values": [ds.vip6]}])
    assert [n["NetworkInterfaceId"] for n in found["NetworkInterfaces"]] == [b_wan]
    # The move EC2 allows: unassign at the holder (any form), then assign here.
    out = ec2.unassign_ipv6_addresses(NetworkInterfaceId=b_wan,
                                      Ipv6Addresses=[loose_ipv6(ds.vip6)])
    assert out["UnassignedIpv6Addresses"] == [ds.vip6]
    assert cloud.ipv6_holders(ds.vip6) == []
    out = ec2.assign_ipv6_addresses(NetworkInterfaceId=a_wan, Ipv6Addresses=[ds.vip6])
    assert out["AssignedIpv6Addresses"] == [ds.vip6], "only what this request added"
    assert cloud.ipv6_holders(ds.vip6) == [a_wan]
    again = ec2.assign_ipv6_addresses(NetworkInterfaceId=a_wan, Ipv6Addresses=[ds.vip6])
    assert again["AssignedIpv6Addresses"] == [] and cloud.ipv6_holders(ds.vip6) == [a_wan]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[a_wan])["NetworkInterfaces"][0]
    assert eni["Ipv6Addresses"] == [{"Ipv6Address": ds.ipv6[("A", "wan")], "IsPrimaryIpv6": False},
                                    {"Ipv6Address": ds.vip6, "IsPrimaryIpv6": False}]
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "ipv6-addresses.ipv6-address", "Values": [ds.vip6]}])
    assert [n["NetworkInterfaceId"] for n in found["NetworkInterfaces"]] == [a_wan]


def test_moto_patch_ipv6_and_prefix_list_routes(dual: DualStack, scenario: Scenario,
                                                cloud: Cloud, proxy: Proxy, ec2: Any) -> None:
    s, ds, c = scenario, dual, via(proxy.url)
    a_lan, b_lan = s.eni[("A", "lan")], s.eni[("B", "lan")]
    # P9: ReplaceRoute finds the route whatever the textual form (moto keyed by the text).
    c.replace_route(RouteTableId=s.rt2, DestinationIpv6CidrBlock=loose_ipv6(V6_REMOTE_ROUTE),
                    NetworkInterfaceId=a_lan)
    assert cloud.route_target(s.rt2, V6_REMOTE_ROUTE) == a_lan
    routes = ec2.describe_route_tables(RouteTableIds=[s.rt2])["RouteTables"][0]["Routes"]
    assert [r["DestinationIpv6CidrBlock"] for r in routes if "DestinationIpv6CidrBlock" in r
            and "NetworkInterfaceId" in r] == [V6_REMOTE_ROUTE], "replaced, not added"
    c.replace_route(RouteTableId=ds.rt3, DestinationPrefixListId=ds.prefix_list,
                    NetworkInterfaceId=a_lan)
    assert cloud.route_target(ds.rt3, ds.prefix_list) == a_lan
    # DryRun (P5) for IPv6 destinations too.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.replace_route(RouteTableId=s.rt1, DestinationIpv6CidrBlock=V6_DEFAULT_ROUTE,
                        NetworkInterfaceId=a_lan, DryRun=True)
    assert e.value.response["Error"]["Code"] == "DryRunOperation"
    assert cloud.route_target(s.rt1, V6_DEFAULT_ROUTE) == b_lan
    # CreateRoute on an existing destination (any form) → RouteAlreadyExists.
    for kw in ({"DestinationIpv6CidrBlock": "0:0:0:0:0:0:0:0/0"},
               {"DestinationPrefixListId": ds.prefix_list}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.create_route(RouteTableId=s.rt1 if "DestinationIpv6CidrBlock" in kw else ds.rt3,
                           NetworkInterfaceId=a_lan, **kw)
        assert e.value.response["Error"]["Code"] == "RouteAlreadyExists"
    # Missing → ReplaceRoute answers "Use CreateRoute"; CreateRoute to a prefix list via an ENI
    # keeps its destination.
    ec2.delete_route(RouteTableId=ds.rt3, DestinationPrefixListId=ds.prefix_list)
    ec2.delete_route(RouteTableId=s.rt1, DestinationIpv6CidrBlock=V6_DEFAULT_ROUTE)
    assert cloud.route_target(ds.rt3, ds.prefix_list) is None
    for rtb, kw in ((ds.rt3, {"DestinationPrefixListId": ds.prefix_list}),
                    (s.rt1, {"DestinationIpv6CidrBlock": V6_DEFAULT_ROUTE})):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.replace_route(RouteTableId=rtb, NetworkInterfaceId=a_lan, **kw)
        assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert "Use CreateRoute" in e.value.response["Error"]["Message"]
        c.create_route(RouteTableId=rtb, NetworkInterfaceId=a_lan, **kw)
    assert cloud.route_target(ds.rt3, ds.prefix_list) == a_lan
    assert cloud.route_target(s.rt1, V6_DEFAULT_ROUTE) == a_lan
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_route(RouteTableId=ds.rt3, DestinationPrefixListId="pl-0123456789abcdef0",
                       NetworkInterfaceId=a_lan)
    assert e.value.response["Error"]["Code"] == "InvalidPrefixListId.NotFound"
    # The documented route filters (moto: HTTP 500 before P9).
    got = c.describe_route_tables(Filters=[{"Name": "route.destination-ipv6-cidr-block",
                                            "Values": [V6_DEFAULT_ROUTE]}])["RouteTables"]
    assert [t["RouteTableId"] for t in got] == [s.rt1]
    got = c.describe_route_tables(Filters=[{"Name": "route.destination-prefix-list-id",
                                            "Values": [ds.prefix_list]}])["RouteTables"]
    assert [t["RouteTableId"] for t in got] == [ds.rt3]


def test_imds_emulator_serves_ipv6_paths(dual: DualStack, scenario: Scenario, node_a: Node,
                                         ec2: Any) -> None:
    s, ds, base = scenario, dual, node_a.imds.url
    h = _imds_headers(base)
    macs = f"{base}/latest/meta-data/network/interfaces/macs"
    wan, lan = f"{macs}/{s.mac[('A', 'wan')]}", f"{macs}/{s.mac[('A', 'lan')]}"
    assert _get(f"{wan}/ipv6s", h) == (200, ds.ipv6[("A", "wan")])
    assert _get(f"{wan}/subnet-ipv6-cidr-blocks", h) == (200, ds.subnet6["wan"])
    assert _get(f"{lan}/subnet-ipv6-cidr-blocks", h) == (200, ds.subnet6["lan"])
    assert _get(f"{wan}/vpc-ipv6-cidr-blocks", h) == (200, ds.vpc_block)
    listing = _get(f"{wan}/", h)[1].split()
    assert {"ipv6s", "subnet-ipv6-cidr-blocks", "local-ipv4s"} <= set(listing)
    # Live: the VIP6 moved to A shows at once, one address a line, EC2's order.
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=s.eni[("B", "wan")], Ipv6Addresses=[ds.vip6])
    ec2.assign_ipv6_addresses(NetworkInterfaceId=s.eni[("A", "wan")], Ipv6Addresses=[ds.vip6])
    assert _get(f"{wan}/ipv6s", h) == (200, f"{ds.ipv6[('A', 'wan')]}\n{ds.vip6}")
    # The IPv4 paths are as before.
    assert _get(f"{wan}/local-ipv4s", h) == (200, "10.0.1.11")
    assert _get(f"{wan}/subnet-ipv4-cidr-block", h) == (200, "10.0.1.0/24")


def test_imds_emulator_ipv6_paths_absent_without_ipv6(scenario: Scenario, node_a: Node) -> None:
    base = node_a.imds.url
    h = _imds_headers(base)
    wan = f"{base}/latest/meta-data/network/interfaces/macs/{scenario.mac[('A', 'wan')]}"
    for leaf in ("ipv6s", "subnet-ipv6-cidr-blocks", "vpc-ipv6-cidr-blocks"):
        assert _get(f"{wan}/{leaf}", h)[0] == 404, leaf
    assert "ipv6s" not in _get(f"{wan}/", h)[1].split()


def test_fake_ifconfig_inet6_carp_vip(dual: DualStack, node_a: Node, node_b: Node) -> None:
    ds = dual
    out = subprocess.run([str(node_a.ifconfig.path), "-a"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    ena0 = out.split("ena1:")[0]
    # FreeBSD 14 af_inet6.c: "\tinet6 %s prefixlen %d" then print_vhid() " vhid %d".
    assert f"\tinet6 {ds.vip6} prefixlen 64 vhid 3\n" in ena0
    assert f"\tinet6 {ds.ipv6[('A', 'wan')]} prefixlen 64\n" in ena0
    assert re.search(r"^\tinet6 fe80::[0-9a-f:]+%ena0 prefixlen 64 scopeid 0x1$", ena0, re.M)
    lines = ena0.splitlines()
    assert [ln for ln in lines if ln.startswith("\tinet6")][0].startswith("\tinet6 fe80::"), \
        "link-local first"
    carp = re.compile(r"^\s*carp: (INIT|BACKUP|MASTER) vhid (\d+) advbase (\d+) advskew (\d+)$",
                      re.M)
    assert carp.findall(out) == [("MASTER", "1", "1", "0"), ("MASTER", "3", "1", "0"),
                                 ("MASTER", "2", "1", "0")]
    assert f"\t      peer 224.0.0.18 peer6 {ds.ipv6[('B', 'wan')]}\n" in ena0
    assert "\tinet 10.0.1.10 netmask 0xffffffff broadcast 10.0.1.10 vhid 1\n" in ena0
    assert "vhid 3" not in out.split("ena1:")[1], "vhid 3 lives on ena0 only"
    node_a.set_carp(3, state="BACKUP", advskew=254)
    assert carp.findall(node_a.ifconfig.read())[1] == ("BACKUP", "3", "1", "254")
    assert carp.findall(node_b.ifconfig.read()) == [
        ("BACKUP", "1", "1", "100"), ("BACKUP", "3", "1", "100"), ("BACKUP", "2", "1", "100")]



def test_proxy_route_settings_for_ipv6_and_prefix_lists(dual: DualStack, scenario: Scenario,
                                                        proxy: Proxy, ec2: Any) -> None:
    s, ds, c = scenario, dual, via(proxy.url)
    lan_a = s.eni[("A", "lan")]
    # replace_route_missing names the destination field the request carried.
    ec2.delete_route(RouteTableId=ds.rt3, DestinationPrefixListId=ds.prefix_list)
    proxy.configure(replace_route_missing="InvalidRoute.NotFound")
    for kw, text in (({"RouteTableId": s.rt1, "DestinationIpv6CidrBlock": "2001:db8::/32"},
                      "destination-ipv6-cidr-block 2001:db8::/32"),
                     ({"RouteTableId": ds.rt3, "DestinationPrefixListId": ds.prefix_list},
                      f"destination-prefix-list-id {ds.prefix_list}")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.replace_route(NetworkInterfaceId=lan_a, **kw)
        assert e.value.response["Error"]["Code"] == "InvalidRoute.NotFound"
        assert text in e.value.response["Error"]["Message"], e.value.response["Error"]
    # A propagated IPv6 route is listed in destinationIpv6CidrBlock, after the static one.
    proxy.configure(replace_route_missing=None, propagated_routes=[
        {"route_table": s.rt1, "cidr": V6_DEFAULT_ROUTE, "gateway": "vgw-0123456789abcdef0"}])
    routes = c.describe_route_tables(RouteTableIds=[s.rt1])["RouteTables"][0]["Routes"]
    v6 = [(r.get("Origin"), r.get("NetworkInterfaceId"), r.get("GatewayId")) for r in routes
          if r.get("DestinationIpv6CidrBlock") == V6_DEFAULT_ROUTE]
    assert v6 == [("CreateRoute", s.eni[("B", "lan")], None),
                  ("EnableVgwRoutePropagation", None, "vgw-0123456789abcdef0")]
    assert not any(r.get("DestinationCidrBlock") == V6_DEFAULT_ROUTE for r in routes)
