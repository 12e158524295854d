"""Self-tests of the test harness (no awsha binary needed).

Owns: proof that the pieces the awsha tests stand on behave as documented — the scenario, moto's
fidelity patches (tests/harness/moto_launcher.py P1–P5), the fault proxy's rules and bookkeeping,
the IMDS emulator (token rules, live values, and a real SDK's IMDSv2 credential and region
fetchers), and the fake ifconfig's format. If one of these fails, fix the harness before reading
anything into a failing awsha test.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import boto3
import botocore.exceptions
from botocore.parsers import ResponseParserError
import pytest
from botocore.config import Config

from awsha_scenario import (
    DEFAULT_ROUTE, LAN_VIP, OTHER_ROUTE, REGION, WAN_VIP, Cloud, Node, Proxy, Scenario,
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
