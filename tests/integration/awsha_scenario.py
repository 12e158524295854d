"""Scenario and helpers for the awsha integration tests (used by conftest.py and test_*.py).

Owns:
  * clients for the harness servers' control APIs (`Proxy`, `Emulator`);
  * `build_scenario`: the two-node VPC in moto (region us-east-1) that every test starts from;
  * `build_second_pair`: another pfSense pair in a second VPC of the same account, with the same
    CIDRs, addresses and VHID names as ours and its own awsha tags (issue 11);
  * `Node`: one pretend pfSense member — its directory with config.xml (rendered from an editable
    `ConfigSpec`), its fake ifconfig (CARP state), its run dir, its IMDS emulator — and `Node.run`,
    which runs the real awsha binary against all of that;
  * `Cloud`: read-back of the EC2 state from moto (where is an address, where does a route point,
    where is the EIP, tags), straight to moto so the fault proxy's counts only show the binary;
  * the opt-in dual-stack world of issue 14 (`build_dual_stack`, `add_dual_stack`, the `dual`
    fixture): an IPv6 CARP VIP wan@3, IPv6 routes and a route to a managed prefix list (see
    "dual stack" below).

The scenario (identical package rows on both nodes; see docs/contracts.md §5):
    VPC 10.0.0.0/16; subnet wan 10.0.1.0/24, subnet lan 10.0.2.0/24 (both us-east-1a)
    instance A: ena0 = wan ENI 10.0.1.11 (device 0), ena1 = lan ENI 10.0.2.11 (device 1)
    instance B: ena0 = wan ENI 10.0.1.12,             ena1 = lan ENI 10.0.2.12
    CARP wan@1 (vhid 1, uniqid 65de65ceb0447) VIP 10.0.1.10 → initially on B's wan ENI,
         with an EIP associated to (B wan ENI, 10.0.1.10)
    CARP lan@2 (vhid 2, uniqid 65de65ceb0448) VIP 10.0.2.10 → initially on B's lan ENI
    route table rt1 (associated with lan): 0.0.0.0/0     → B's lan ENI
    route table rt2 (associated with wan): 10.99.0.0/16  → B's lan ENI
    CARP: A MASTER of vhid 1 and 2 (advskew 0), B BACKUP (advskew 100).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "harness"
if str(HARNESS) not in sys.path:
    sys.path.insert(0, str(HARNESS))

from fake_ifconfig import Carp, FakeIfconfig, Iface, Inet, Inet6, render_ifconfig  # noqa: E402

REGION = "us-east-1"
AZ = "us-east-1a"
WAN_VIP = "10.0.1.10"
LAN_VIP = "10.0.2.10"
WAN_UNIQID = "65de65ceb0447"
LAN_UNIQID = "65de65ceb0448"
DEFAULT_ROUTE = "0.0.0.0/0"
OTHER_ROUTE = "10.99.0.0/16"
MISSING_RTB = "rtb-0123456789abcdef0"  # well-formed (17 hex digits) but not in moto
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TAG_KEYS = ("awsha:modified", "awsha:advbase", "awsha:advskew", "awsha:instance", "awsha:vhid")

# EC2 actions that only read. Everything else the proxy sees counts as mutating (docs/contracts.md
# §2.4, §8.4: exit 2
# and --dry-run must send none, not even with DryRun=true).
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Search")


def awsha_bin() -> Path:
    return Path(os.environ.get("AWSHA_BIN") or REPO / "target" / "debug" / "awsha")


def http_json(url: str, body: Any = None, method: str | None = None, timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("GET" if data is None else "POST"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


# ---- control-API clients ----------------------------------------------------------------------

class Proxy:
    """The fault proxy (tests/harness/fault_proxy.py) as seen by a test."""

    def __init__(self, url: str):
        self.url = url

    def rules(self, rules: list[dict[str, Any]]) -> None:
        http_json(f"{self.url}/_proxy/rules", rules)

    def reset(self) -> None:
        http_json(f"{self.url}/_proxy/reset", {})

    def release(self) -> None:
        """Let the requests a `hold` rule holds go on (fault_proxy.py's docstring)."""
        http_json(f"{self.url}/_proxy/release", {})

    def set_delay(self, ms: int) -> None:
        http_json(f"{self.url}/_proxy/config", {"delay_ms": ms})

    def configure(self, **settings: Any) -> dict[str, Any]:
        """POST /_proxy/config: paging, filter_limit, buckets, propagated_routes,
        replace_route_missing, delay_ms (fault_proxy.py's docstring); returns every setting."""
        return http_json(f"{self.url}/_proxy/config", settings)

    def settings(self) -> dict[str, Any]:
        return http_json(f"{self.url}/_proxy/config")

    def throttled(self) -> dict[str, int]:
        """Requests per Action answered RequestLimitExceeded by a token bucket."""
        return http_json(f"{self.url}/_proxy/throttled")

    def counts(self) -> dict[str, int]:
        return http_json(f"{self.url}/_proxy/counts")

    def log(self) -> list[dict[str, Any]]:
        return http_json(f"{self.url}/_proxy/log")

    def mutating_counts(self) -> dict[str, int]:
        return {a: n for a, n in self.counts().items()
                if not a.startswith(READ_ONLY_PREFIXES) and " " not in a}

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [e for e in self.log() if e["action"] == action]


class Emulator:
    """One IMDS emulator (tests/harness/imds_emulator.py) as seen by a test."""

    def __init__(self, url: str):
        self.url = url

    def configure(self, instance_id: str, region: str = REGION) -> None:
        http_json(f"{self.url}/_emulator/config", {"instance_id": instance_id, "region": region})

    def reset(self) -> None:
        http_json(f"{self.url}/_emulator/reset", {})

    def faults(self, mode: str, **kw: Any) -> None:
        http_json(f"{self.url}/_emulator/faults", {"mode": mode, **kw})

    def credentials(self) -> dict[str, str]:
        return http_json(f"{self.url}/_emulator/credentials")

    def counts(self) -> dict[str, int]:
        return http_json(f"{self.url}/_emulator/counts")


# ---- the EC2 scenario ---------------------------------------------------------------------------

@dataclass
class Scenario:
    vpc: str
    subnet_wan: str
    subnet_lan: str
    instance: dict[str, str]                 # "A"/"B" → instance id
    eni: dict[tuple[str, str], str]          # ("A", "wan") → eni id
    mac: dict[tuple[str, str], str]          # ("A", "wan") → mac
    primary: dict[tuple[str, str], str]      # ("A", "wan") → 10.0.1.11
    rt1: str                                 # 0.0.0.0/0
    rt2: str                                 # 10.99.0.0/16
    allocation: str
    public_ip: str


@dataclass
class _Pair:
    """What `_build_pair` made: one pfSense pair's VPC, instances, ENIs, route tables and EIP."""

    vpc: str
    subnets: dict[str, str]                  # "wan"/"lan" → subnet id
    instance: dict[str, str]
    eni: dict[tuple[str, str], str]
    mac: dict[tuple[str, str], str]
    primary: dict[tuple[str, str], str]
    rt1: str
    rt2: str
    allocation: str
    public_ip: str


def _build_pair(ec2: Any, ami: str, nodes: tuple[str, str], holder: str, name: str) -> _Pair:
    """A pfSense pair in a new VPC (10.0.0.0/16; wan 10.0.1.0/24, lan 10.0.2.0/24): instances
    `nodes` at .11 and .12 named `<name>-<node>`, each with a wan ENI (its primary) and a lan ENI,
    source/destination check off; `holder` holds the CARP VIPs 10.0.1.10 / 10.0.2.10, the EIP (on
    its wan ENI and 10.0.1.10) and both routes (0.0.0.0/0 in rt1 on lan, 10.99.0.0/16 in rt2 on
    wan), each pointed at its lan ENI."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        "wan": ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24",
                                 AvailabilityZone=AZ)["Subnet"]["SubnetId"],
        "lan": ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24",
                                 AvailabilityZone=AZ)["Subnet"]["SubnetId"],
    }
    instance: dict[str, str] = {}
    eni: dict[tuple[str, str], str] = {}
    mac: dict[tuple[str, str], str] = {}
    primary: dict[tuple[str, str], str] = {}
    for node, host in zip(nodes, (11, 12)):
        inst = ec2.run_instances(
            ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.small",
            SubnetId=subnets["wan"], PrivateIpAddress=f"10.0.1.{host}",
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": f"{name}-{node.lower()}"}]}],
        )["Instances"][0]
        instance[node] = inst["InstanceId"]
        nic0 = inst["NetworkInterfaces"][0]
        eni[(node, "wan")] = nic0["NetworkInterfaceId"]
        lan = ec2.create_network_interface(
            SubnetId=subnets["lan"], PrivateIpAddress=f"10.0.2.{host}",
            Description=f"{name}-{node.lower()} lan")["NetworkInterface"]
        ec2.attach_network_interface(NetworkInterfaceId=lan["NetworkInterfaceId"],
                                     InstanceId=inst["InstanceId"], DeviceIndex=1)
        eni[(node, "lan")] = lan["NetworkInterfaceId"]
        primary[(node, "wan")] = f"10.0.1.{host}"
        primary[(node, "lan")] = f"10.0.2.{host}"
        for side in ("wan", "lan"):
            # A firewall forwards: source/destination check off, as on a real pfSense ENI.
            ec2.modify_network_interface_attribute(NetworkInterfaceId=eni[(node, side)],
                                                   SourceDestCheck={"Value": False})
    for e in ec2.describe_network_interfaces(NetworkInterfaceIds=list(eni.values()))[
            "NetworkInterfaces"]:
        key = next(k for k, v in eni.items() if v == e["NetworkInterfaceId"])
        mac[key] = e["MacAddress"].lower()

    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni[(holder, "wan")],
                                    PrivateIpAddresses=[WAN_VIP], AllowReassignment=True)
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni[(holder, "lan")],
                                    PrivateIpAddresses=[LAN_VIP], AllowReassignment=True)
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eni[(holder, "wan")],
                          PrivateIpAddress=WAN_VIP, AllowReassociation=True)
    rt1 = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rt1, SubnetId=subnets["lan"])
    ec2.create_route(RouteTableId=rt1, DestinationCidrBlock=DEFAULT_ROUTE,
                     NetworkInterfaceId=eni[(holder, "lan")])
    rt2 = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rt2, SubnetId=subnets["wan"])
    ec2.create_route(RouteTableId=rt2, DestinationCidrBlock=OTHER_ROUTE,
                     NetworkInterfaceId=eni[(holder, "lan")])
    return _Pair(vpc=vpc, subnets=subnets, instance=instance, eni=eni, mac=mac, primary=primary,
                 rt1=rt1, rt2=rt2, allocation=alloc["AllocationId"], public_ip=alloc["PublicIp"])


def build_scenario(ec2: Any, ami: str) -> Scenario:
    """Create the two-node VPC in a freshly reset moto (see the module docstring)."""
    # B holds everything at the start (B was MASTER before A took over).
    p = _build_pair(ec2, ami, ("A", "B"), holder="B", name="pfsense")
    return Scenario(vpc=p.vpc, subnet_wan=p.subnets["wan"], subnet_lan=p.subnets["lan"],
                    instance=p.instance, eni=p.eni, mac=p.mac, primary=p.primary, rt1=p.rt1,
                    rt2=p.rt2, allocation=p.allocation, public_ip=p.public_ip)



def rfc3339_ms(when: datetime) -> str:
    """`awsha:modified`'s format (docs/contracts.md §7): RFC 3339 UTC with milliseconds."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class SecondPair:
    """Another pfSense pair in the same account and region (build_second_pair)."""

    vpc: str
    subnet_wan: str
    subnet_lan: str
    instance: dict[str, str]                 # "C"/"D" → instance id
    eni: dict[tuple[str, str], str]          # ("C", "wan") → eni id
    rt1: str                                 # 0.0.0.0/0 → C's lan ENI
    rt2: str                                 # 10.99.0.0/16 → C's lan ENI
    allocation: str                          # associated with (C's wan ENI, 10.0.1.10)
    public_ip: str
    tags: dict[str, dict[str, str]]          # resource id → the awsha tags written on it


def build_second_pair(ec2: Any, ami: str, advbase: int = 1, advskew: int = 0,
                      modified: datetime | None = None) -> SecondPair:
    """A second pfSense pair (instances C and D) in a second VPC of the same account, built the
    way `build_scenario` builds ours: the same CIDRs (10.0.0.0/16, 10.0.1.0/24, 10.0.2.0/24), ENIs
    at the same addresses (C .11, D .12), the same CARP VIP addresses 10.0.1.10 / 10.0.2.10 — on
    C, its MASTER —, its own two route tables (same destinations) and EIP, and awsha tags written
    by C on its wan ENI, rt1, rt2 and the EIP (`awsha:vhid` wan@1) and its lan ENI (lan@2): the
    same VHID names as ours. By default its tags are fresher than anything of ours (written now)
    and of higher priority than either of our nodes except A's tie (advbase 1, advskew 0); pass
    advskew=200 for a pair below both of ours. moto: the address assignments rely on patch P1
    keeping addresses of different subnets apart."""
    p = _build_pair(ec2, ami, ("C", "D"), holder="C", name="other-pfsense")
    instance, eni, rt1, rt2 = p.instance, p.eni, p.rt1, p.rt2
    stamp = rfc3339_ms(modified or datetime.now(timezone.utc))
    tags: dict[str, dict[str, str]] = {}
    for resources, vhid in (([eni[("C", "wan")], rt1, rt2, p.allocation], "wan@1"),
                            ([eni[("C", "lan")]], "lan@2")):
        values = {"awsha:modified": stamp, "awsha:advbase": str(advbase),
                  "awsha:advskew": str(advskew), "awsha:instance": instance["C"],
                  "awsha:vhid": vhid}
        ec2.create_tags(Resources=resources,
                        Tags=[{"Key": k, "Value": v} for k, v in values.items()])
        tags.update({r: values for r in resources})
    return SecondPair(vpc=p.vpc, subnet_wan=p.subnets["wan"], subnet_lan=p.subnets["lan"],
                      instance=instance, eni=eni, rt1=rt1, rt2=rt2,
                      allocation=p.allocation, public_ip=p.public_ip, tags=tags)


class Cloud:
    """Read back moto's EC2 state (directly, not through the proxy)."""

    def __init__(self, ec2: Any):
        self.ec2 = ec2

    def ip_holders(self, ip: str, vpc: str | None = None) -> list[str]:
        """ENI ids that hold `ip` (primary or secondary), in `vpc` only if given (a second pair
        in another VPC holds the same addresses)."""
        out = []
        for e in self.ec2.describe_network_interfaces()["NetworkInterfaces"]:
            if vpc is not None and e.get("VpcId") != vpc:
                continue
            if any(a["PrivateIpAddress"] == ip for a in e.get("PrivateIpAddresses", [])):
                out.append(e["NetworkInterfaceId"])
        return sorted(out)

    def route_target(self, rtb: str, cidr: str) -> str | None:
        """The ENI a route points at; None when the route is absent or not an ENI route. `cidr` is
        an IPv4 CIDR (DestinationCidrBlock), an IPv6 CIDR in any form (DestinationIpv6CidrBlock,
        compared as networks) or a `pl-` id (DestinationPrefixListId, any case)."""
        table = self.ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]
        for r in table.get("Routes", []):
            if route_destination(r) == destination_key(cidr):
                return r.get("NetworkInterfaceId")
        return None

    def ipv6_holders(self, ip: str) -> list[str]:
        """ENI ids that hold the IPv6 address `ip` (any textual form)."""
        want = ipaddress.IPv6Address(ip)
        out = []
        for e in self.ec2.describe_network_interfaces()["NetworkInterfaces"]:
            if any(ipaddress.IPv6Address(a["Ipv6Address"]) == want
                   for a in e.get("Ipv6Addresses", [])):
                out.append(e["NetworkInterfaceId"])
        return sorted(out)

    def eip(self, allocation: str) -> tuple[str | None, str | None]:
        """(ENI id, private IP) the allocation is associated with."""
        a = self.ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        # moto renders "no ENI" as an empty string; normalise to None
        return a.get("NetworkInterfaceId") or None, a.get("PrivateIpAddress") or None

    def tags(self, resource: str) -> dict[str, str]:
        res = self.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])
        return {t["Key"]: t["Value"] for t in res["Tags"]}

    def delete_route(self, rtb: str, cidr: str) -> None:
        self.ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock=cidr)


def destination_key(dest: str) -> tuple[str, str]:
    """(field, canonical value) of a route destination as config.xml may write it."""
    d = dest.strip()
    if d.lower().startswith("pl-"):
        return ("DestinationPrefixListId", d.lower())
    if ":" in d:
        return ("DestinationIpv6CidrBlock", str(ipaddress.IPv6Network(d, strict=False)))
    return ("DestinationCidrBlock", d)


def route_destination(route: dict[str, Any]) -> tuple[str, str] | None:
    """(field, canonical value) of a DescribeRouteTables route, as destination_key() gives it."""
    for key in ("DestinationCidrBlock", "DestinationIpv6CidrBlock", "DestinationPrefixListId"):
        if route.get(key):
            return destination_key(route[key])
    return None


# ---- dual stack (issue 14): opt-in, on top of the default scenario -------------------------------
#
# The default scenario stays IPv4-only, so no existing test changes behaviour (the dual-stack world
# adds a CARP VIP, three routes and IMDS paths that every IPv4 test would otherwise meet). Tests
# opt in with the `dual` fixture (conftest.py), which calls build_dual_stack() and add_dual_stack()
# on both nodes:
#     VPC gets an Amazon-provided /56 (random, as EC2 gives; P8 keeps it canonical); subnet wan
#         gets <block>:…1::/64 (the /56's second /64), lan the third — like 10.0.1.0/24, 10.0.2.0/24
#     every ENI gets ::11 (A) or ::12 (B) in its subnet's /64
#     CARP wan@3 (vhid 3 on wan, uniqid 65de65ceb0449) VIP6 = <wan /64>::10, initially on B's wan
#         ENI (no EIP: Elastic IPs are IPv4)
#     rt1 (lan's table, beside 0.0.0.0/0):       ::/0                     → B's lan ENI
#     rt2 (wan's table, beside 10.99.0.0/16):    2600:1f18:abcd:ef00::/56 → B's lan ENI
#     rt3 (a third table, no subnet association): pl-… (customer-managed prefix list, IPv4
#         entries 192.0.2.0/24 and 198.51.100.0/24: branch offices) → B's lan ENI
#     config.xml (both nodes): VIP wan@3, an IP row for VIP6 (ips row 3) and three route rows for
#         wan@3 (routes rows 3, 4, 5: rt1 ::/0, rt2 the /56, rt3 the pl- id), interface lan.
#     CARP: vhid 3 with the same state and advskew as vhid 1 (A MASTER advskew 0, B BACKUP 100);
#         ifconfig shows ena0's own IPv6 address and `inet6 <VIP6> prefixlen 64 vhid 3`.

V6_DEFAULT_ROUTE = "::/0"
V6_REMOTE_ROUTE = "2600:1f18:abcd:ef00::/56"
WAN6_UNIQID = "65de65ceb0449"
PREFIX_LIST_ENTRIES = ("192.0.2.0/24", "198.51.100.0/24")


@dataclass
class DualStack:
    vpc_block: str                           # the VPC's Amazon-provided /56
    subnet6: dict[str, str]                  # "wan"/"lan" → the subnet's /64
    ipv6: dict[tuple[str, str], str]         # ("A", "wan") → that ENI's own address (::11/::12)
    vip6: str                                # wan@3's VIP, RFC 5952 form
    rt3: str                                 # the table with the prefix-list route
    prefix_list: str                         # pl-… (17 hex digits, as EC2 makes them)

    def destinations(self, scn: Scenario) -> dict[str, tuple[str, str]]:
        """wan@3's routes: key → (route table, destination as EC2 writes it)."""
        return {"rt1": (scn.rt1, V6_DEFAULT_ROUTE), "rt2": (scn.rt2, V6_REMOTE_ROUTE),
                "rt3": (self.rt3, self.prefix_list)}


def build_dual_stack(ec2: Any, scn: Scenario) -> DualStack:
    """Give the default scenario's VPC its IPv6 half (see the comment above); straight to moto."""
    assoc = ec2.associate_vpc_cidr_block(VpcId=scn.vpc, AmazonProvidedIpv6CidrBlock=True)[
        "Ipv6CidrBlockAssociation"]
    block = ipaddress.IPv6Network(assoc["Ipv6CidrBlock"])
    halves = list(block.subnets(new_prefix=64))
    subnet6 = {"wan": str(halves[1]), "lan": str(halves[2])}
    for side, subnet in (("wan", scn.subnet_wan), ("lan", scn.subnet_lan)):
        ec2.associate_subnet_cidr_block(SubnetId=subnet, Ipv6CidrBlock=subnet6[side])
    ipv6: dict[tuple[str, str], str] = {}
    for node, host in (("A", 0x11), ("B", 0x12)):
        for side in ("wan", "lan"):
            addr = str(ipaddress.IPv6Network(subnet6[side])[host])
            ec2.assign_ipv6_addresses(NetworkInterfaceId=scn.eni[(node, side)],
                                      Ipv6Addresses=[addr])
            ipv6[(node, side)] = addr
    vip6 = str(ipaddress.IPv6Network(subnet6["wan"])[0x10])
    ec2.assign_ipv6_addresses(NetworkInterfaceId=scn.eni[("B", "wan")], Ipv6Addresses=[vip6])
    pl = ec2.create_managed_prefix_list(
        PrefixListName="branch-offices", AddressFamily="IPv4", MaxEntries=10,
        Entries=[{"Cidr": c, "Description": "branch office"} for c in PREFIX_LIST_ENTRIES],
    )["PrefixList"]["PrefixListId"]
    rt3 = ec2.create_route_table(VpcId=scn.vpc)["RouteTable"]["RouteTableId"]
    b_lan = scn.eni[("B", "lan")]
    ec2.create_route(RouteTableId=scn.rt1, DestinationIpv6CidrBlock=V6_DEFAULT_ROUTE,
                     NetworkInterfaceId=b_lan)
    ec2.create_route(RouteTableId=scn.rt2, DestinationIpv6CidrBlock=V6_REMOTE_ROUTE,
                     NetworkInterfaceId=b_lan)
    ec2.create_route(RouteTableId=rt3, DestinationPrefixListId=pl, NetworkInterfaceId=b_lan)
    return DualStack(vpc_block=str(block), subnet6=subnet6, ipv6=ipv6, vip6=vip6, rt3=rt3,
                     prefix_list=pl)


def loose_ipv6(text: str) -> str:
    """The same IPv6 address or CIDR written the way no RFC 5952 writer would: upper case, every
    group in full with its leading zeros (`2400:6500:01A2:8501:0000:0000:0000:0010`)."""
    if "/" in text:
        net = ipaddress.IPv6Network(text, strict=False)
        return f"{net.network_address.exploded.upper()}/{net.prefixlen}"
    return ipaddress.IPv6Address(text).exploded.upper()


def wan3_rows(scn: Scenario, ds: DualStack, form: str = "canonical"
              ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """wan@3's IP row and three route rows. form "loose": addresses and CIDRs in loose_ipv6()
    form and the pl- id in upper case (valid: docs/contracts.md §5.5 takes any case or form)."""
    def t(v: str) -> str:
        if form != "loose":
            return v
        return v.upper() if v.startswith("pl-") else loose_ipv6(v)

    ips = [{"vhid": "wan@3", "interface": "wan", "ipaddr": t(ds.vip6), "xmlrpcsync": "on"}]
    routes = [{"vhid": "wan@3", "routetable": rtb, "cidr": t(dest), "interface": "lan",
               "xmlrpcsync": "on"} for rtb, dest in ds.destinations(scn).values()]
    return ips, routes


def add_dual_stack(node: Node, ds: DualStack, form: str = "canonical") -> None:
    """Make `node` a dual-stack member: CARP VIP wan@3 in config.xml with its four rows (ips row 3,
    routes rows 3–5), vhid 3 in the fake ifconfig (same state and advskew as vhid 1) with the ENIs'
    IPv6 addresses."""
    scn, peer = node.scn, node.peer
    vip = dict(node.config.vips[0])
    vip.update({"interface": "wan", "vhid": "3", "subnet": ds.vip6, "subnet_bits": "64",
                "uniqid": WAN6_UNIQID, "descr": "WAN IPv6 CARP VIP",
                "carp_peer": ds.ipv6[(peer, "wan")]})
    node.config.vips.append(vip)
    ips, routes = wan3_rows(scn, ds, form)
    node.config.ips += ips
    node.config.routes += routes
    node.write_config()
    c1 = node.carp[1]
    # Unicast CARP to an IPv6 peer: ifconfig shows the IPv4 peer at its multicast default and the
    # peer's address as peer6.
    node.carp[3] = Carp(3, c1.state, c1.advbase, c1.advskew, peer="224.0.0.18",
                        peer6=ds.ipv6[(peer, "wan")])
    node.vhid_side[3] = "wan"
    node.inet6 = {"wan": [Inet6(ds.ipv6[(node.name, "wan")], 64), Inet6(ds.vip6, 64, 3)],
                  "lan": [Inet6(ds.ipv6[(node.name, "lan")], 64)]}
    node.render_ifconfig()


def wan3_where(cloud: Cloud, scn: Scenario, ds: DualStack) -> dict[str, Any]:
    """Where wan@3's four resources point now: the VIP6's holders and its three routes."""
    out: dict[str, Any] = {"ip": cloud.ipv6_holders(ds.vip6)}
    for key, (rtb, dest) in ds.destinations(scn).items():
        out[key] = cloud.route_target(rtb, dest)
    return out


def wan3_on(scn: Scenario, node: str) -> dict[str, Any]:
    """What wan3_where shows when everything of wan@3 is on `node` ("A"/"B")."""
    lan = scn.eni[(node, "lan")]
    return {"ip": [scn.eni[(node, "wan")]], "rt1": lan, "rt2": lan, "rt3": lan}


# ---- config.xml ---------------------------------------------------------------------------------

@dataclass
class ConfigSpec:
    """The parts of config.xml awsha reads; tests edit the rows, then `Node.write_config()`."""

    interfaces: dict[str, dict[str, str]]
    vips: list[dict[str, str]]
    ips: list[dict[str, str]]
    routes: list[dict[str, str]]
    eips: list[dict[str, str]]
    settings: dict[str, str] = field(default_factory=lambda: {"enable": "on", "endpoint": "",
                                                              "region": ""})
    hostname: str = "pfsense"

    def render(self) -> str:
        def elements(d: dict[str, str], indent: str) -> str:
            out = []
            for k, v in d.items():
                # pfSense writes descr/password as CDATA (xmlparse.inc is_cdata_entity)
                if k.startswith(("descr", "password")):
                    out.append(f"{indent}<{k}><![CDATA[{v}]]></{k}>")
                else:
                    out.append(f"{indent}<{k}>{escape(v)}</{k}>")
            return "\n".join(out)

        def rows(tag: str, rows: list[dict[str, str]]) -> str:
            if not rows:
                return ""
            body = "\n".join(f"\t\t\t<config>\n{elements(r, chr(9) * 4)}\n\t\t\t</config>"
                             for r in rows)
            return f"\t\t<{tag}>\n{body}\n\t\t</{tag}>\n"

        ifaces = "\n".join(f"\t\t<{key}>\n{elements(v, chr(9) * 3)}\n\t\t</{key}>"
                           for key, v in self.interfaces.items())
        vips = "\n".join(f"\t\t<vip>\n{elements(v, chr(9) * 3)}\n\t\t</vip>" for v in self.vips)
        return (
            '<?xml version="1.0"?>\n<pfsense>\n\t<version>23.3</version>\n'
            "\t<lastchange></lastchange>\n"
            f"\t<system>\n\t\t<hostname>{self.hostname}</hostname>\n"
            "\t\t<domain>ha.example.internal</domain>\n\t</system>\n"
            f"\t<interfaces>\n{ifaces}\n\t</interfaces>\n"
            f"\t<virtualip>\n{vips}\n\t</virtualip>\n"
            "\t<installedpackages>\n"
            f"\t\t<awsha>\n\t\t\t<config>\n{elements(self.settings, chr(9) * 4)}\n"
            "\t\t\t</config>\n\t\t</awsha>\n"
            + rows("awshaips", self.ips) + rows("awsharoutes", self.routes)
            + rows("awshaeips", self.eips)
            + "\t</installedpackages>\n</pfsense>\n"
        )


def default_config(scn: Scenario, node: str) -> ConfigSpec:
    advskew = "0" if node == "A" else "100"
    peer_host = "12" if node == "A" else "11"
    vip = lambda iface, vhid, subnet, uniqid, descr: {  # noqa: E731
        "mode": "carp", "interface": iface, "vhid": vhid, "advskew": advskew, "advbase": "1",
        "password": "s3cret&carp", "uniqid": uniqid, "descr": descr, "type": "single",
        "subnet_bits": "32", "subnet": subnet,
        # pfSense Plus unicast CARP (docs/references.md §9.2; optional, CE lacks them)
        "carp_mode": "ucast", "carp_peer": f"{subnet.rsplit('.', 1)[0]}.{peer_host}",
    }
    return ConfigSpec(
        hostname=f"pfsense-{node.lower()}",
        interfaces={
            "wan": {"enable": "", "if": "ena0", "descr": "WAN", "ipaddr": "dhcp"},
            "lan": {"enable": "", "if": "ena1", "descr": "LAN", "ipaddr": "dhcp"},
        },
        vips=[vip("wan", "1", WAN_VIP, WAN_UNIQID, "WAN CARP VIP"),
              vip("lan", "2", LAN_VIP, LAN_UNIQID, "LAN CARP VIP")],
        ips=[{"vhid": "wan@1", "interface": "wan", "ipaddr": WAN_VIP, "xmlrpcsync": "on"},
             {"vhid": "lan@2", "interface": "lan", "ipaddr": LAN_VIP, "xmlrpcsync": "on"}],
        routes=[{"vhid": "wan@1", "routetable": scn.rt1, "cidr": DEFAULT_ROUTE,
                 "interface": "lan", "xmlrpcsync": "on"},
                {"vhid": "wan@1", "routetable": scn.rt2, "cidr": OTHER_ROUTE,
                 "interface": "lan", "xmlrpcsync": "on"}],
        eips=[{"vhid": "wan@1", "allocationid": scn.allocation, "interface": "wan",
               "privateip": WAN_VIP, "xmlrpcsync": "on"}],
    )


# ---- running the binary -------------------------------------------------------------------------

class RunResult(NamedTuple):
    code: int
    stdout: str
    stderr: str
    json: Any  # the parsed stdout when --json was given and it parsed, else None

    def describe(self) -> str:
        """Everything needed to understand a failed assertion."""
        return (f"exit {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n"
                f"{self.stderr[-6000:]}")


class Timed(RunResult):
    """RunResult plus `elapsed` (s) and `args`; still unpacks as the 4-tuple."""

    elapsed: float
    args: tuple[str, ...]


def _finish(args: tuple[str, ...], code: int, out: str, err: str, elapsed: float) -> Timed:
    parsed = None
    if "--json" in args:
        try:
            parsed = json.loads(out)
        except ValueError:
            parsed = None
    r = Timed(code, out, err, parsed)
    r.elapsed = elapsed
    r.args = args
    return r


class Running:
    """A binary started with `Node.start`, for tests that need several at once."""

    def __init__(self, proc: subprocess.Popen[str], args: tuple[str, ...], started: float):
        self.proc, self.args, self.started = proc, args, started

    def wait(self, timeout: float = 60) -> Timed:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            pytest.fail(f"awsha {' '.join(self.args)} still running after {timeout}s; killed\n"
                        f"stdout:\n{out}\nstderr:\n{err[-4000:]}")
        return _finish(self.args, self.proc.returncode, out, err, time.monotonic() - self.started)


class Node:
    """One pfSense member: node dir, config.xml, fake ifconfig, run dir, IMDS emulator."""

    def __init__(self, name: str, directory: Path, scn: Scenario, imds: Emulator, proxy_url: str):
        self.name = name
        self.peer = "B" if name == "A" else "A"
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.scn = scn
        self.imds = imds
        self.proxy_url = proxy_url
        self.instance_id = scn.instance[name]
        self.config_path = self.dir / "config.xml"
        self.run_dir = self.dir / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.ifconfig = FakeIfconfig(self.dir / "bin")
        self.config = default_config(scn, name)
        self.write_config()
        skew = 0 if name == "A" else 100
        state = "MASTER" if name == "A" else "BACKUP"
        # CARP state per vhid, as ifconfig shows it; edit with set_carp().
        self.carp: dict[int, Carp] = {
            1: Carp(1, state, 1, skew, peer=scn.primary[(self.peer, "wan")]),
            2: Carp(2, state, 1, skew, peer=scn.primary[(self.peer, "lan")]),
        }
        # Which ENI (pfSense interface key) each vhid's CARP lines are printed under, and the
        # global IPv6 addresses per interface (empty unless add_dual_stack() was called).
        self.vhid_side: dict[int, str] = {1: "wan", 2: "lan"}
        self.inet6: dict[str, list[Inet6]] = {"wan": [], "lan": []}
        self.render_ifconfig()

    # -- node state ------------------------------------------------------------------------------
    def eni(self, side: str) -> str:
        return self.scn.eni[(self.name, side)]

    def write_config(self) -> None:
        self.config_path.write_text(self.config.render())

    def write_raw_config(self, text: str) -> None:
        self.config_path.write_text(text)

    def render_ifconfig(self) -> None:
        def iface(dev: str, side: str, vip: str, vhid: int, index: int, descr: str) -> Iface:
            carps = [c for v, c in sorted(self.carp.items()) if self.vhid_side.get(v) == side]
            return Iface(dev, self.scn.mac[(self.name, side)],
                         [Inet(self.scn.primary[(self.name, side)], 24), Inet(vip, 32, vhid)],
                         carps, descr, index=index, inet6s=list(self.inet6[side]))

        self.ifconfig.write(render_ifconfig([
            iface("ena0", "wan", WAN_VIP, 1, 1, "WAN"),
            iface("ena1", "lan", LAN_VIP, 2, 2, "LAN"),
        ]))

    def set_carp(self, vhid: int, state: str | None = None, advskew: int | None = None,
                 advbase: int | None = None) -> None:
        c = self.carp[vhid]
        if state is not None:
            c.state = state
        if advskew is not None:
            c.advskew = advskew
        if advbase is not None:
            c.advbase = advbase
        self.render_ifconfig()

    def marker(self, key: str = "wan_1") -> Path:
        return self.run_dir / f"awsha.{key}.takeover"

    # -- running the binary ----------------------------------------------------------------------
    def env(self, env_extra: dict[str, str] | None = None) -> dict[str, str]:
        # No AWS_* credentials, region or profile: credentials must come from the emulator's
        # instance profile and the region from IMDS, as on pfSense. HOME = node dir, so no
        # ~/.aws files of the machine are found.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AWSHA_"))}
        env.update({
            "AWSHA_CONFIG": str(self.config_path),
            "AWSHA_IFCONFIG": str(self.ifconfig.path),
            "AWSHA_RUN_DIR": str(self.run_dir),
            "AWSHA_GRACE": "0",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds.url,
            "AWS_ENDPOINT_URL_EC2": self.proxy_url,
            "HOME": str(self.dir),
            # The binary's own switch (docs/contracts.md §3): keep test runs out of the
            # machine's syslog. Harmless if a later build drops it.
            "AWSHA_NO_SYSLOG": "1",
        })
        env.update(env_extra or {})
        return env

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        binary = awsha_bin()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            # Fail, never skip: a missing binary must turn the suite red.
            pytest.fail(f"awsha binary not found or not executable at {binary}; build it "
                        f"(cargo build) or point AWSHA_BIN at it", pytrace=False)
        return [str(binary), *args]

    def start(self, *args: str, env_extra: dict[str, str] | None = None) -> Running:
        argv = self._argv(args)
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=self.env(env_extra), cwd=str(self.dir),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        return Running(proc, args, started)

    def run(self, *args: str, env_extra: dict[str, str] | None = None,
            timeout: float = 60) -> Timed:
        """Run awsha with this node's environment; (code, stdout, stderr, json) + .elapsed."""
        return self.start(*args, env_extra=env_extra).wait(timeout=timeout)


# ---- assertions shared by the tests --------------------------------------------------------------

ACTION_STATUSES = {"changed", "unchanged", "planned", "skipped", "deferred", "failed"}


def check_report(r: Timed, command: str) -> dict[str, Any]:
    """The report shape of docs/contracts.md §4; returns the report."""
    rep = r.json
    assert isinstance(rep, dict), f"stdout is not one JSON object\n{r.describe()}"
    assert rep.get("command") == command, r.describe()
    assert isinstance(rep.get("ok"), bool), r.describe()
    assert rep["ok"] == (r.code == 0), f"ok must be false exactly when exit != 0\n{r.describe()}"
    if "actions" in rep:
        assert isinstance(rep["actions"], list), r.describe()
        for a in rep["actions"]:
            for key in ("vhid", "kind", "resource", "target", "status", "ms"):
                assert key in a, f"action lacks {key!r}: {a}\n{r.describe()}"
            assert a["kind"] in ("ip", "route", "eip"), a
            assert a["status"] in ACTION_STATUSES, a
            assert isinstance(a["ms"], int) and not isinstance(a["ms"], bool) and a["ms"] >= 0, a
            if a["status"] == "failed":
                assert isinstance(a.get("error"), str) and a["error"], a
    return rep


def actions_by(rep: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in rep.get("actions", []) if a["kind"] == kind]


def parse_modified(value: str) -> datetime:
    assert RFC3339_MS.match(value), f"awsha:modified {value!r} is not RFC 3339 UTC with ms"
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


# ---- helpers for test_reconcile.py / test_status.py (appended) ----------------------------------

def ec2_request_total(proxy: Proxy) -> int:
    """Every EC2 query request the binary sent through the proxy (reads and writes)."""
    return sum(n for a, n in proxy.counts().items() if " " not in a)


def failover_ok(node: Node, vhid: str, *flags: str) -> dict[str, Any]:
    """Run `awsha failover <vhid> --json` on `node`, require exit 0 and return the report."""
    r = node.run("failover", vhid, "--json", *flags)
    assert r.code == 0, r.describe()
    return check_report(r, "failover")


def wan1_where(cloud: Cloud, scn: Scenario) -> dict[str, Any]:
    """Where wan@1's four resources point now: address holders, both routes, the EIP."""
    return {"ip": cloud.ip_holders(WAN_VIP),
            "rt1": cloud.route_target(scn.rt1, DEFAULT_ROUTE),
            "rt2": cloud.route_target(scn.rt2, OTHER_ROUTE),
            "eip": cloud.eip(scn.allocation)}


def wan1_on(scn: Scenario, node: str) -> dict[str, Any]:
    """What `wan1_where` shows when everything of wan@1 is on `node` ("A"/"B")."""
    wan, lan = scn.eni[(node, "wan")], scn.eni[(node, "lan")]
    return {"ip": [wan], "rt1": lan, "rt2": lan, "eip": (wan, WAN_VIP)}


def wan1_resources(scn: Scenario, node: str) -> dict[str, str]:
    """wan@1's taggable resources as seen from `node`: its wan ENI (the ip action), rt1, rt2, the
    allocation — keyed like `wan1_where`."""
    return {"ip": scn.eni[(node, "wan")], "rt1": scn.rt1, "rt2": scn.rt2, "eip": scn.allocation}


# ---- helpers for test_faults.py / test_concurrency.py / test_hostile_config.py / test_secrets.py
# (appended) --------------------------------------------------------------------------------------

# src/ec2.rs: how often one EC2 call is tried in all (throttling, 5xx, connection errors).
EC2_MAX_ATTEMPTS = 8


def forwarded_mutations(proxy: Proxy) -> dict[str, int]:
    """Mutating requests per Action that reached moto (answered by moto, not by a fault rule).
    Requests still held by the proxy (delay, hang) are not in its log yet, so not counted."""
    out: dict[str, int] = {}
    for e in proxy.log():
        a = e["action"]
        if e["fault"] is None and e["status"] and " " not in a and not a.startswith(
                READ_ONLY_PREFIXES):
            out[a] = out.get(a, 0) + 1
    return out


def emulator_tokens(emu: Emulator) -> list[str]:
    """Every IMDSv2 token the emulator handed out since its last reset (GET /_emulator/tokens)."""
    return http_json(f"{emu.url}/_emulator/tokens")


# Eight CARP VIPs for concurrency tests: (interface, vhid, address, uniqid). The first two are the
# default scenario's wan@1 and lan@2; the other six are extra /32 VIPs on the same ENIs.
EIGHT_VIPS = [
    ("wan", 1, WAN_VIP, WAN_UNIQID), ("lan", 2, LAN_VIP, LAN_UNIQID),
    ("wan", 3, "10.0.1.13", "65de65ceb0453"), ("lan", 4, "10.0.2.14", "65de65ceb0454"),
    ("wan", 5, "10.0.1.15", "65de65ceb0455"), ("lan", 6, "10.0.2.16", "65de65ceb0456"),
    ("wan", 7, "10.0.1.17", "65de65ceb0457"), ("lan", 8, "10.0.2.18", "65de65ceb0458"),
]


def eight_vhid_node(node: Node, state: str = "MASTER", ec2: Any = None) -> list[str]:
    """Make `node` a member with the eight CARP VIPs of EIGHT_VIPS, one IP row each (wan@1 keeps
    its two routes and its EIP), every VHID in `state` with the node's advskew. With `ec2` (boto3
    straight to moto), the six extra addresses are first assigned to the *peer's* ENIs, so a
    failover has something to move. Returns the canonical VHIDs. Rewrites config.xml and the fake
    ifconfig output directly (Node.set_carp would go back to two VIPs)."""
    scn = node.scn
    if ec2 is not None:
        for side in ("wan", "lan"):
            extra = [ip for iface, vhid, ip, _ in EIGHT_VIPS[2:] if iface == side]
            ec2.assign_private_ip_addresses(NetworkInterfaceId=scn.eni[(node.peer, side)],
                                            PrivateIpAddresses=extra, AllowReassignment=True)
    template = node.config.vips[0]
    vips, ips = [], []
    for iface, vhid, ip, uniqid in EIGHT_VIPS:
        v = dict(template)
        v.update({"interface": iface, "vhid": str(vhid), "subnet": ip, "uniqid": uniqid,
                  "descr": f"{iface.upper()} CARP VIP {vhid}",
                  "carp_peer": scn.primary[(node.peer, iface)]})
        vips.append(v)
        ips.append({"vhid": f"{iface}@{vhid}", "interface": iface, "ipaddr": ip,
                    "xmlrpcsync": "on"})
    node.config.vips = vips
    node.config.ips = ips
    node.write_config()
    skew = node.carp[1].advskew
    ifaces = []
    for index, (dev, side, descr) in enumerate((("ena0", "wan", "WAN"), ("ena1", "lan", "LAN")),
                                               start=1):
        mine = [(vhid, ip) for iface, vhid, ip, _ in EIGHT_VIPS if iface == side]
        ifaces.append(Iface(
            dev, scn.mac[(node.name, side)],
            [Inet(scn.primary[(node.name, side)], 24)] + [Inet(ip, 32, vhid) for vhid, ip in mine],
            [Carp(vhid, state, 1, skew, peer=scn.primary[(node.peer, side)]) for vhid, _ in mine],
            descr, index=index))
    node.ifconfig.write(render_ifconfig(ifaces))
    return [f"{iface}@{vhid}" for iface, vhid, _, _ in EIGHT_VIPS]


def ec2_client(url: str, read_timeout: float = 30) -> Any:
    """A boto3 EC2 client for moto or the proxy at `url` (dummy credentials, bounded retries)."""
    import boto3
    from botocore.config import Config

    return boto3.client("ec2", endpoint_url=url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                      connect_timeout=5, read_timeout=read_timeout))
