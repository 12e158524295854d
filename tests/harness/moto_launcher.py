#!/usr/bin/env python3
"""moto EC2 server with fidelity patches, for the awsha integration tests.

Owns: starting moto's ThreadedMotoServer on 127.0.0.1 and, *before* it serves, monkeypatching moto's
EC2 backend where moto differs from EC2 in ways that awsha depends on (docs/references.md §7, moto
5.2.5 pinned in tests/requirements.txt). Every patch below says what moto does, what EC2 does, and
which awsha behaviour needs it. The patches change only moto's in-process classes, so they survive
`POST /moto-api/reset` (which rebuilds backends, not classes).

Usage:
    python tests/harness/moto_launcher.py [--port 0] [--no-parent-watch] [--max-seconds N]
Prints `READY <port>` on stdout (flushed) once the server accepts connections, then serves until
SIGTERM/SIGINT, until its parent process dies (so a killed pytest never orphans it), or until
--max-seconds pass.

Patches (names are the functions below):
  P1 assign_private_ip_addresses  AssignPrivateIpAddresses *moves* an address: it leaves every other
     ENI *of the same subnet* when AllowReassignment=true (moto ignored the flag and left the
     address on both ENIs), fails with InvalidIPAddress.InUse without it, refuses an address
     outside the ENI's subnet or another ENI's primary address, and an EIP associated with the
     moved address follows it to the new ENI ("any Elastic IP address that is associated with
     the IP address is also moved", AWS docs). The same address in another subnet (another VPC
     with the same CIDRs: a second pfSense pair, issue 11) is another address and never moves.
  P2 unassign_private_ip_addresses  an EIP on an unassigned address is disassociated (EC2), instead
     of staying associated to an address the ENI no longer has.
  P3 associate_address  AssociateAddress honours PrivateIpAddress (moto always used the ENI's primary
     address), fails with InvalidParameterValue "<ip> is not mapped to the interface <eni>" when the
     ENI lacks it, reassociates when AllowReassociation=true (Resource.AlreadyAssociated otherwise,
     as moto and pre-2014 accounts do), clears the public IP of the ENI it leaves, and displaces
     another EIP already on the same (ENI, private IP).
  P4 ElasticAddress.private_ip_address / filters  DescribeAddresses reports the associated private
     IP (not always the ENI's primary), also for the `private-ip-address` filter; and the ENI
     filter `addresses.private-ip-address` matches secondary addresses too (EC2; moto matched only
     the primary).
  P5 route DryRun and duplicates  ReplaceRoute / CreateRoute / DescribeRouteTables honour DryRun
     (moto mutated anyway: dangerous for a `doctor` that probes with DryRun), and CreateRoute on an
     existing destination with an ENI target fails with RouteAlreadyExists (moto overwrote) —
     IPv6 and prefix-list destinations included (P9).

Dual stack (issue 14; awsha moves IPv6 addresses and routes to IPv6 CIDRs and prefix lists). moto
5.2.5 has the calls but not EC2's rules; each patch below says what EC2 does and its source:
  P6 assign_ipv6_addresses / unassign_ipv6_addresses  AssignIpv6Addresses *refuses* an address that
     another ENI holds (moto added it to a second ENI): EC2 has no reassignment for IPv6 — "An IPv6
     address cannot be reassigned to another network interface; you must first unassign the IPv6
     address from the existing network interface" (EC2 User Guide, "Multiple IP addresses",
     https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/MultipleIP.html; docs/references.md
     §1.6). The refusal's code and wording are UNVERIFIED (no public capture
     found): InvalidIPAddress.InUse "Address <ip> is in use." — EC2's documented "IP address
     already in use" code (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
     with the wording EC2 uses for it on RunInstances (aws/aws-cli discussion #7176). awsha needs
     it: its IPv6 move must unassign from the holder first (docs/contracts.md §8.1), and a harness
     that let two ENIs hold one address could never show a move that skipped the unassign. Also: the
     address must lie in the ENI's subnet /64 (EC2: "You must choose IPv6 addresses from the IPv6
     CIDR block range of the subnet"; moto took any text), is parsed and kept in RFC 5952 form (a
     request in another form is the same address), the request is applied wholly or not at all,
     and the answer lists only the addresses the request added (EC2's AssignedIpv6Addresses; moto
     listed all). UnassignIpv6Addresses of an address the ENI does not hold fails with
     InvalidParameterValue "Some of the specified addresses are not assigned to interface
     <eni>" (EC2's answer for the IPv4 call; UNVERIFIED for IPv6 — moto skipped it silently, which
     would hide an unassign sent to the wrong ENI). DescribeNetworkInterfaces lists each address
     with IsPrimaryIpv6 false, as EC2 does.
  P7 ENI filter ipv6-addresses.ipv6-address  documented by EC2 for DescribeNetworkInterfaces (how
     reconcile/status find the holder of an IPv6 address); moto answered HTTP 500
     (FilterNotImplementedError). Matched as text against the RFC 5952 form.
  P8 VPC and subnet IPv6 blocks  moto printed a random Amazon-provided /56 as
     "2400:6500:<4 hex>:<2 hex>00::/56", not RFC 5952 form when a group has leading zeros (EC2
     answers canonical text); a subnet /64 is kept in canonical form; DescribeSubnets'
     Ipv6CidrBlockState.State was "{'State': 'associated'}" (nested twice) instead of
     "associated". The IMDS emulator's subnet-ipv6-cidr-blocks come from here.
  P9 routes to IPv6 CIDRs and prefix lists  Create/Replace/DeleteRoute parse
     DestinationIpv6CidrBlock and key the route by its canonical form (moto keyed by the text
     sent, so "2600:1F18::/56" and "2600:1f18::/56" were two routes and ReplaceRoute missed one);
     CreateRoute with DestinationPrefixListId and an ENI target keeps the prefix list (moto looked
     it up only for other targets: the route lost its destination, keyed "rtb-…~None"); an unknown
     prefix list fails with InvalidPrefixListId.NotFound (EC2's code; wording unverified; moto made
     a route to None); CreateRoute on an existing IPv6 or prefix-list destination fails with
     RouteAlreadyExists; DescribeRouteTables filters route.destination-ipv6-cidr-block and
     route.destination-prefix-list-id (EC2 filters; moto: HTTP 500). DescribeRouteTables already
     reports DestinationIpv6CidrBlock / DestinationPrefixListId per route (plain moto).

Not fidelity, but the harness's own health: R1 free_old_worlds_on_reset. moto 5.2.5 keeps every
world it ever built: `Subnet._base_avail_ip_iterator` is an unbounded functools.cache keyed by the
subnet, and `AccountSpecificBackend._generate_regions` an lru_cache keyed by the backend, so each
`POST /moto-api/reset` leaves the old backend (its ~1300 AMIs, snapshots, volumes, every VPC) alive.
Over a 300-test session the heap grew to millions of objects and Python's full collections paused
moto for over 2 s (measured: 330-670 ms after only 47 tests), so the IMDS emulator (which asks
moto) missed awsha's 2 s IMDS deadline in CI. The reset now clears both caches.

Left to the fault proxy (tests/harness/fault_proxy.py), switchable per test: pagination
(moto pages no Describe), EC2's 200-filter-value limit, per-action token buckets, a propagated
route beside a static one (moto keys routes by destination), InvalidRoute.NotFound for ReplaceRoute.
moto itself already refuses a CreateTags batch whole when one resource would pass 50 user tags
(TagLimitExceeded), as EC2 does, and reports `origin` CreateRoute / CreateRouteTable for routes.

Known differences left unpatched (tests must not depend on them):
  * every change is visible at once (EC2's address remap is asynchronous, docs/references.md
    §1.1, §5);
  * DescribeNetworkInterfaces shows an EIP only as the ENI's Association, not per secondary
    private address; DescribeTags reports an EIP's resource type as `vpc-elastic-ip`;
  * AllowReassociation defaults to false (modern EC2 reassociates by default; awsha always sends
    true, and a missing flag then fails loudly here, which is what we want);
  * the error code chosen for "address in use without AllowReassignment" is unverified;
  * IAM denials (opt-in in moto) use AccessDenied, not UnauthorizedOperation;
  * IPv6: AssignIpv6Addresses of an address the ENI already holds succeeds and adds nothing (EC2's
    answer is unverified); a subnet /64 is not checked to lie inside the VPC's /56, nor a route's
    IPv6 destination for host bits; an IPv6 address is never unassigned by EC2 on its own.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import add_lifetime_args, serve_until_stopped  # noqa: E402


def _truthy(value: Any) -> bool:
    # moto's EC2 responses parse parameters with the botocore model (bool), but a hand-made query
    # string may still arrive as "true"/"false": accept both.
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def apply_patches() -> None:
    """Monkeypatch moto's EC2 backend. Idempotent; must run before the server handles requests."""
    from moto.ec2 import exceptions as exc
    from moto.ec2.models import elastic_ip_addresses as eip_models
    from moto.ec2.models import elastic_network_interfaces as eni_models
    from moto.ec2.models import route_tables as rt_models
    from moto.ec2.models import subnets as subnet_models
    from moto.ec2.models import vpcs as vpc_models
    from moto.ec2.responses import elastic_ip_addresses as eip_responses
    from moto.ec2.responses import elastic_network_interfaces as eni_responses
    from moto.ec2.responses import route_tables as rt_responses
    from moto.ec2.utils import generate_route_id

    if getattr(eni_models.NetworkInterfaceBackend, "_awsha_patched", False):
        return

    EC2ClientError = exc.EC2ClientError
    ElasticAddress = eip_models.ElasticAddress
    NetworkInterface = eni_models.NetworkInterface
    NIBackend = eni_models.NetworkInterfaceBackend
    EABackend = eip_models.ElasticAddressBackend

    def eni_ips(eni: Any) -> list[str]:
        return [item.get("PrivateIpAddress") for item in eni.private_ip_addresses]

    def refresh_eni_public_ip(backend: Any, eni: Any) -> None:
        # moto keeps one `public_ip` per ENI (shown as the ENI's Association). Keep it equal to an
        # EIP still associated with the ENI, or None, so a departed EIP does not linger there.
        if eni is None:
            return
        remaining = [a for a in backend.addresses if a.eni is not None and a.eni.id == eni.id]
        if remaining:
            eni.public_ip = remaining[0].public_ip
        elif any(a.public_ip == eni.public_ip for a in backend.addresses):
            eni.public_ip = None

    # ---- P1: AssignPrivateIpAddresses moves the address (and its EIP) -------------------------
    original_assign = NIBackend.assign_private_ip_addresses

    def awsha_assign_private_ip_addresses(
        self: Any,
        eni_id: str,
        private_ip_addresses: list[str] | None = None,
        secondary_ips_count: int | None = None,
        allow_reassignment: bool = False,
    ) -> Any:
        if not private_ip_addresses:
            # SecondaryPrivateIpAddressCount: moto's own random allocation is fine for us.
            return original_assign(self, eni_id, private_ip_addresses, secondary_ips_count)
        eni = self.get_network_interface(eni_id)
        subnet_net = ipaddress.ip_network(eni.subnet.cidr_block, strict=False)
        # Validate everything first: EC2 applies a request wholly or not at all.
        moves: list[tuple[str, Any]] = []
        for ip in private_ip_addresses:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                raise EC2ClientError(
                    "InvalidParameterValue", f"Invalid value '{ip}' for PrivateIpAddress"
                ) from None
            if addr not in subnet_net:
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Address {ip} does not fall within the subnet's address range",
                )
            for other in list(self.enis.values()):
                if other.id == eni.id or ip not in eni_ips(other):
                    continue
                if other.subnet.id != eni.subnet.id:
                    # Another subnet's address (another VPC with the same CIDRs, e.g. a second
                    # pfSense pair): a different address as far as EC2 is concerned.
                    continue
                if other.private_ip_address == ip:
                    # A primary address can never move (EC2 refuses even with AllowReassignment).
                    raise EC2ClientError(
                        "InvalidIPAddress.InUse",
                        f"Address {ip} is in use as the primary address of {other.id}.",
                    )
                if not allow_reassignment:
                    # Chosen code: EC2's documented "address already in use" error. Real EC2's
                    # exact wording for this action is unverified; what matters is that a call
                    # without AllowReassignment=true does not move the address.
                    raise EC2ClientError("InvalidIPAddress.InUse", f"Address {ip} is in use.")
                moves.append((ip, other))
        for ip, other in moves:
            other.private_ip_addresses[:] = [
                item for item in other.private_ip_addresses if item.get("PrivateIpAddress") != ip
            ]
            # The EIP rides along with the secondary address (EC2 behaviour).
            for address in self.addresses:
                if address.eni is not None and address.eni.id == other.id and (
                    getattr(address, "_awsha_private_ip", None) == ip
                ):
                    address.eni = eni
                    address.instance = eni.instance
                    refresh_eni_public_ip(self, other)
                    eni.public_ip = address.public_ip
        assigned = eni_ips(eni)
        eni.private_ip_addresses.extend(
            {"Primary": False, "PrivateIpAddress": ip}
            for ip in private_ip_addresses
            if ip not in assigned
        )
        return eni

    NIBackend.assign_private_ip_addresses = awsha_assign_private_ip_addresses

    def assign_private_ip_addresses_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        eni_id = self._get_param("NetworkInterfaceId")
        secondary_ips_count = self._get_int_param("SecondaryPrivateIpAddressCount", 0)
        private_ip_addresses = self._get_param("PrivateIpAddresses", [])
        allow = _truthy(self._get_param("AllowReassignment", False))
        eni = self.ec2_backend.assign_private_ip_addresses(
            eni_id, private_ip_addresses, secondary_ips_count, allow_reassignment=allow
        )
        return ActionResult(
            {"NetworkInterfaceId": eni.id, "AssignedPrivateIpAddresses": eni.private_ip_addresses}
        )

    eni_responses.ElasticNetworkInterfaces.assign_private_ip_addresses = (
        assign_private_ip_addresses_response
    )

    # ---- P2: UnassignPrivateIpAddresses disassociates the address's EIP -----------------------
    original_unassign = NIBackend.unassign_private_ip_addresses

    def awsha_unassign_private_ip_addresses(
        self: Any, eni_id: str, private_ip_address: list[str] | None = None
    ) -> Any:
        eni = original_unassign(self, eni_id, private_ip_address)
        for address in list(self.addresses):
            if address.eni is not None and address.eni.id == eni.id and (
                getattr(address, "_awsha_private_ip", None) in (private_ip_address or [])
            ):
                self.disassociate_address(association_id=address.association_id)
        return eni

    NIBackend.unassign_private_ip_addresses = awsha_unassign_private_ip_addresses

    # ---- P3: AssociateAddress honours PrivateIpAddress and AllowReassociation ------------------
    def awsha_associate_address(
        self: Any,
        instance: Any = None,
        eni: Any = None,
        address: str | None = None,
        allocation_id: str | None = None,
        reassociate: bool = False,
        private_ip_address: str | None = None,
    ) -> Any:
        if address:
            eip = self.address_by_ip([address])[0]
        else:
            eip = self.address_by_allocation([allocation_id])[0]
        if eni is None and instance is not None:
            eni = instance.nics[0]  # EC2: the instance's primary network interface
        if eni is None:
            raise EC2ClientError("MissingParameter", "Invalid request, expect either instance or ENI.")
        private_ip = private_ip_address or eni.private_ip_address
        if private_ip not in eni_ips(eni):
            # Wording as reported from real EC2 (hashicorp/terraform#6436).
            raise EC2ClientError(
                "InvalidParameterValue", f"{private_ip} is not mapped to the interface {eni.id}"
            )
        already_here = (
            eip.eni is not None
            and eip.eni.id == eni.id
            and getattr(eip, "_awsha_private_ip", eip.eni.private_ip_address) == private_ip
        )
        if eip.eni is not None and not already_here and not reassociate:
            raise exc.ResourceAlreadyAssociatedError(eip.public_ip)
        old_eni = eip.eni
        # One EIP per private address: another EIP on the same (ENI, address) is displaced.
        for other in self.addresses:
            if other is not eip and other.eni is not None and other.eni.id == eni.id and (
                getattr(other, "_awsha_private_ip", other.eni.private_ip_address) == private_ip
            ):
                other.eni = None
                other.instance = None
                other.association_id = None
                other._awsha_private_ip = None
        eip.eni = eni
        eip.instance = eni.instance
        eip._awsha_private_ip = private_ip
        eni.public_ip = eip.public_ip
        if old_eni is not None and old_eni.id != eni.id:
            refresh_eni_public_ip(self, old_eni)
        if eip.domain == "vpc":
            eip.association_id = eip_models.random_eip_association_id()
        return eip

    EABackend.associate_address = awsha_associate_address

    original_disassociate = EABackend.disassociate_address

    def awsha_disassociate_address(
        self: Any, address: str | None = None, association_id: str | None = None
    ) -> None:
        eips = self.address_by_ip([address]) if address else self.address_by_association(
            [association_id]
        )
        old_eni = eips[0].eni
        original_disassociate(self, address=address, association_id=association_id)
        eips[0]._awsha_private_ip = None
        refresh_eni_public_ip(self, old_eni)

    EABackend.disassociate_address = awsha_disassociate_address

    def associate_address_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        params = self._get_params()
        instance = eni = None
        if "InstanceId" in params:
            instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        elif "NetworkInterfaceId" in params:
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        else:
            self.ec2_backend.raise_error(
                "MissingParameter", "Invalid request, expect InstanceId/NetworkId parameter."
            )
        reassociate = _truthy(self._get_param("AllowReassociation", False))
        private_ip = self._get_param("PrivateIpAddress")
        self.error_on_dryrun()
        if "PublicIp" in params:
            eip = self.ec2_backend.associate_address(
                instance=instance, eni=eni, address=self._get_param("PublicIp"),
                reassociate=reassociate, private_ip_address=private_ip,
            )
        elif "AllocationId" in params:
            eip = self.ec2_backend.associate_address(
                instance=instance, eni=eni, allocation_id=self._get_param("AllocationId"),
                reassociate=reassociate, private_ip_address=private_ip,
            )
        else:
            self.ec2_backend.raise_error(
                "MissingParameter", "Invalid request, expect PublicIp/AllocationId parameter."
            )
        return ActionResult({"AssociationId": eip.association_id})

    eip_responses.ElasticIPAddresses.associate_address = associate_address_response

    # ---- P4: what DescribeAddresses / DescribeNetworkInterfaces report and filter --------------
    def eip_private_ip(self: Any) -> str | None:
        if not self.eni:
            return None
        chosen = getattr(self, "_awsha_private_ip", None)
        if chosen and chosen in eni_ips(self.eni):
            return chosen
        return self.eni.private_ip_address

    ElasticAddress.private_ip_address = property(eip_private_ip)

    original_eip_filter = ElasticAddress.get_filter_value

    def eip_filter(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "private-ip-address":
            return self.private_ip_address
        return original_eip_filter(self, filter_name, method_name)

    ElasticAddress.get_filter_value = eip_filter

    original_eni_filter = NetworkInterface.get_filter_value

    def eni_filter(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name in ("addresses.private-ip-address", "private-ip-address"):
            # A list: moto's generic_filter matches a list value against any filter value.
            return eni_ips(self)
        return original_eni_filter(self, filter_name, method_name)

    NetworkInterface.get_filter_value = eni_filter

    # ---- P5: routes honour DryRun; CreateRoute refuses an existing destination -----------------
    # (CreateRoute/ReplaceRoute/DeleteRoute themselves are wrapped once, below with P9, which also
    # makes the duplicate check cover IPv6 and prefix-list destinations.)
    for name in ("create_route", "replace_route", "describe_route_tables"):
        original = getattr(rt_responses.RouteTables, name)

        def with_dryrun(self: Any, _original: Any = original) -> Any:
            self.error_on_dryrun()
            return _original(self)

        setattr(rt_responses.RouteTables, name, with_dryrun)

    # ---- shared by P6-P9: EC2 parses IPv6 values and answers them in RFC 5952 form --------------
    def canonical_ipv6(value: Any, param: str) -> str:
        """An IPv6 address in RFC 5952 form (Python's str() of IPv6Address is exactly that: lower
        case, leading zeros dropped, the first longest run of two or more zero fields as `::`)."""
        try:
            return str(ipaddress.IPv6Address(str(value).strip()))
        except ValueError:
            raise EC2ClientError(
                "InvalidParameterValue", f"Invalid value '{value}' for {param}"
            ) from None

    def canonical_ipv6_net(value: Any, param: str) -> str:
        try:
            return str(ipaddress.IPv6Network(str(value).strip(), strict=False))
        except ValueError:
            raise EC2ClientError(
                "InvalidParameterValue",
                f"Value ({value}) for parameter {param} is invalid. This is not a valid IPv6 "
                "CIDR block.",
            ) from None

    def same_ipv6(a: str, b: str) -> bool:
        try:
            return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)
        except ValueError:
            return a == b

    def subnet_ipv6_nets(subnet: Any) -> list[ipaddress.IPv6Network]:
        return [
            ipaddress.IPv6Network(a["ipv6CidrBlock"], strict=False)
            for a in subnet.ipv6_cidr_block_associations.values()
            if (a.get("ipv6CidrBlockState") or {}).get("State") == "associated"
        ]

    # ---- P6: AssignIpv6Addresses assigns, it never reassigns; Unassign removes what is there ----
    original_assign_ipv6 = NIBackend.assign_ipv6_addresses

    def awsha_assign_ipv6_addresses(
        self: Any,
        eni_id: str,
        ipv6_addresses: list[str] | None = None,
        ipv6_count: int | None = None,
    ) -> Any:
        eni = self.get_network_interface(eni_id)
        if not ipv6_addresses:
            # Ipv6AddressCount: moto's own random choice from the subnet's /64 is fine for us.
            eni._awsha_new_ipv6 = None
            return original_assign_ipv6(self, eni_id, ipv6_addresses, ipv6_count)
        nets = subnet_ipv6_nets(eni.subnet)
        # Validate everything first: "the entire operation fails if one of the IP addresses
        # can't be assigned" (EC2 User Guide, Multiple IP addresses).
        wanted: list[str] = []
        for raw in ipv6_addresses:
            ip = canonical_ipv6(raw, "Ipv6Addresses")
            if not any(ipaddress.IPv6Address(ip) in net for net in nets):
                # Wording unverified; EC2 only accepts addresses of the subnet's IPv6 CIDR block
                # ("You must choose IPv6 addresses from the IPv6 CIDR block range of the subnet").
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Address {ip} does not fall within the subnet's IPv6 address range",
                )
            for other in self.enis.values():
                if other.id != eni.id and any(same_ipv6(ip, x) for x in other.ipv6_addresses):
                    # EC2: "An IPv6 address cannot be reassigned to another network interface;
                    # you must first unassign the IPv6 address from the existing network
                    # interface." The code and wording are unverified for this action: EC2's
                    # documented "address already in use" code (errors-overview) with the wording
                    # EC2 uses for it elsewhere ("Address 10.x.x.x is in use.", aws/aws-cli
                    # discussion #7176, RunInstances).
                    raise EC2ClientError("InvalidIPAddress.InUse", f"Address {ip} is in use.")
            if ip not in wanted:
                wanted.append(ip)
        new = [ip for ip in wanted if not any(same_ipv6(ip, x) for x in eni.ipv6_addresses)]
        eni.ipv6_addresses.extend(new)
        eni._awsha_new_ipv6 = new
        return eni

    NIBackend.assign_ipv6_addresses = awsha_assign_ipv6_addresses

    def assign_ipv6_addresses_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        eni_id = self._get_param("NetworkInterfaceId")
        ipv6_count = self._get_int_param("Ipv6AddressCount", 0)
        ipv6_addresses = self._get_param("Ipv6Addresses", [])
        before = None
        if not ipv6_addresses:
            before = list(self.ec2_backend.get_network_interface(eni_id).ipv6_addresses)
        eni = self.ec2_backend.assign_ipv6_addresses(eni_id, ipv6_addresses, ipv6_count)
        new = eni._awsha_new_ipv6
        if new is None:
            new = [ip for ip in eni.ipv6_addresses if ip not in (before or [])]
        # EC2 answers only the addresses this request added ("Existing IPv6 addresses that were
        # assigned to the network interface before the request are not included"); moto
        # answered all of the ENI's addresses.
        return ActionResult({"AssignedIpv6Addresses": new, "NetworkInterfaceId": eni.id})

    eni_responses.ElasticNetworkInterfaces.assign_ipv6_addresses = assign_ipv6_addresses_response

    def awsha_unassign_ipv6_addresses(
        self: Any, eni_id: str, ips: list[str] | None = None
    ) -> list[str]:
        eni = self.get_network_interface(eni_id)
        wanted = [canonical_ipv6(ip, "Ipv6Addresses") for ip in ips or []]
        held = {canonical_ipv6(x, "Ipv6Addresses"): x for x in eni.ipv6_addresses}
        missing = [ip for ip in wanted if ip not in held]
        if missing:
            # moto silently skipped them. Wording as EC2 answers UnassignPrivateIpAddresses for an
            # address the ENI does not have; unverified for the IPv6 action.
            raise EC2ClientError(
                "InvalidParameterValue",
                f"Some of the specified addresses are not assigned to interface {eni.id}",
            )
        for ip in dict.fromkeys(wanted):
            eni.ipv6_addresses.remove(held[ip])
        return list(dict.fromkeys(wanted))

    NIBackend.unassign_ipv6_addresses = awsha_unassign_ipv6_addresses

    def eni_ipv6_list(self: Any) -> list[dict[str, Any]]:
        # EC2 lists each address with IsPrimaryIpv6 (false unless made primary); RFC 5952 form.
        return [{"Ipv6Address": canonical_ipv6(ip, "Ipv6Address"), "IsPrimaryIpv6": False}
                for ip in self.ipv6_addresses if ip]

    NetworkInterface.network_interface_ipv6_addresses_list = property(eni_ipv6_list)

    # ---- P7: DescribeNetworkInterfaces filter ipv6-addresses.ipv6-address -----------------------
    eni_filter_v4 = NetworkInterface.get_filter_value

    def eni_filter_v6(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "ipv6-addresses.ipv6-address":
            # EC2 documents this filter; moto raised FilterNotImplementedError (HTTP 500).
            # Matched as text against the RFC 5952 form EC2 reports.
            return [canonical_ipv6(ip, "Ipv6Address") for ip in self.ipv6_addresses if ip]
        return eni_filter_v4(self, filter_name, method_name)

    NetworkInterface.get_filter_value = eni_filter_v6

    # ---- P8: Amazon-provided VPC blocks and subnet /64s as EC2 writes them ----------------------
    original_random_ipv6_cidr = vpc_models.random_ipv6_cidr

    def awsha_random_ipv6_cidr() -> str:
        # moto formats a random /56 as "2400:6500:<4 hex>:<2 hex>00::/56", which is not RFC 5952
        # form when a group has leading zeros ("0a1b", "0000"); EC2 answers the canonical form.
        return str(ipaddress.IPv6Network(original_random_ipv6_cidr(), strict=False))

    vpc_models.random_ipv6_cidr = awsha_random_ipv6_cidr

    original_attach_subnet_ipv6 = subnet_models.Subnet.attach_ipv6_cidr_block_associations

    def awsha_attach_subnet_ipv6(self: Any, ipv6_cidr_block: str) -> Any:
        block = canonical_ipv6_net(ipv6_cidr_block, "Ipv6CidrBlock")
        return original_attach_subnet_ipv6(self, block)

    subnet_models.Subnet.attach_ipv6_cidr_block_associations = awsha_attach_subnet_ipv6

    def subnet_ipv6_association_set(self: Any) -> list[dict[str, Any]]:
        # moto nested the state twice (Ipv6CidrBlockState.State = "{'State': 'associated'}");
        # EC2: Ipv6CidrBlockState.State = "associated".
        return [
            {
                "ipv6CidrBlock": a["ipv6CidrBlock"],
                "associationId": a["associationId"],
                "ipv6CidrBlockState": {"state": a["ipv6CidrBlockState"]["State"]},
            }
            for a in self.ipv6_cidr_block_associations.values()
            if a["ipv6CidrBlockState"]["State"] == "associated"
        ]

    subnet_models.Subnet.ipv6_cidr_block_association_set = property(subnet_ipv6_association_set)

    # ---- P9: routes to IPv6 CIDRs and to managed prefix lists -----------------------------------
    original_create_route = rt_models.RouteBackend.create_route
    original_replace_route = rt_models.RouteBackend.replace_route
    original_delete_route = rt_models.RouteBackend.delete_route

    def prefix_list_or_fail(backend: Any, pl_id: str) -> Any:
        found = backend.managed_prefix_lists.get(pl_id)
        if found is None:
            # moto created a route to "None". Code from EC2's error-code list
            # (InvalidPrefixListId.NotFound); wording unverified.
            raise EC2ClientError(
                "InvalidPrefixListId.NotFound", f"The prefix list ID '{pl_id}' does not exist"
            )
        return found

    def awsha_create_route(
        self: Any,
        route_table_id: str,
        destination_cidr_block: str | None,
        destination_ipv6_cidr_block: str | None = None,
        destination_prefix_list_id: str | None = None,
        local: bool = False,
        **kwargs: Any,
    ) -> Any:
        if destination_ipv6_cidr_block:
            destination_ipv6_cidr_block = canonical_ipv6_net(
                destination_ipv6_cidr_block, "destinationIpv6CidrBlock")
        prefix_list = None
        if destination_prefix_list_id:
            prefix_list = prefix_list_or_fail(self, destination_prefix_list_id)
        dest = destination_cidr_block or destination_ipv6_cidr_block or destination_prefix_list_id
        table = self.get_route_table(route_table_id)
        if not local and dest:
            route_id = generate_route_id(table.id, destination_cidr_block,
                                         destination_ipv6_cidr_block, destination_prefix_list_id)
            if route_id in table._routes:
                raise exc.RouteAlreadyExistsError(dest)
        route = original_create_route(
            self, route_table_id, destination_cidr_block, destination_ipv6_cidr_block,
            destination_prefix_list_id, local=local, **kwargs)
        if prefix_list is not None and route.destination_prefix_list is None:
            # moto looks the prefix list up only for non-ENI targets, so a route to a prefix list
            # via an ENI lost its destination and was keyed "rtb-…~None".
            table._routes.pop(route.id, None)
            route.destination_prefix_list = prefix_list
            route.id = generate_route_id(table.id, None, None, prefix_list.id)
            table._routes[route.id] = route
        return route

    rt_models.RouteBackend.create_route = awsha_create_route

    def awsha_replace_route(
        self: Any,
        route_table_id: str,
        destination_cidr_block: str | None,
        destination_ipv6_cidr_block: str | None = None,
        destination_prefix_list_id: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if destination_ipv6_cidr_block:
            # moto keyed the route by the text sent: "2600:1F18::/56" missed "2600:1f18::/56".
            destination_ipv6_cidr_block = canonical_ipv6_net(
                destination_ipv6_cidr_block, "destinationIpv6CidrBlock")
        return original_replace_route(self, route_table_id, destination_cidr_block,
                                      destination_ipv6_cidr_block, destination_prefix_list_id,
                                      *args, **kwargs)

    rt_models.RouteBackend.replace_route = awsha_replace_route

    def awsha_delete_route(
        self: Any,
        route_table_id: str,
        destination_cidr_block: str | None,
        destination_ipv6_cidr_block: str | None = None,
        destination_prefix_list_id: str | None = None,
    ) -> Any:
        if destination_ipv6_cidr_block:
            destination_ipv6_cidr_block = canonical_ipv6_net(
                destination_ipv6_cidr_block, "destinationIpv6CidrBlock")
        return original_delete_route(self, route_table_id, destination_cidr_block,
                                     destination_ipv6_cidr_block, destination_prefix_list_id)

    rt_models.RouteBackend.delete_route = awsha_delete_route

    original_rt_filter = rt_models.RouteTable.get_filter_value

    def rt_filter(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        # Documented EC2 filters; moto raised FilterNotImplementedError (HTTP 500).
        if filter_name == "route.destination-ipv6-cidr-block":
            return [r.destination_ipv6_cidr_block for r in self._routes.values()
                    if r.destination_ipv6_cidr_block]
        if filter_name == "route.destination-prefix-list-id":
            return [r.destination_prefix_list.id for r in self._routes.values()
                    if r.destination_prefix_list is not None]
        return original_rt_filter(self, filter_name, method_name)

    rt_models.RouteTable.get_filter_value = rt_filter

    NIBackend._awsha_patched = True


def free_old_worlds_on_reset() -> None:
    """R1: `POST /moto-api/reset` also drops the caches that kept every old backend alive."""
    from moto.core.base_backend import AccountSpecificBackend
    from moto.ec2.models.subnets import Subnet
    from moto.moto_api._internal.models import MotoAPIBackend

    if getattr(MotoAPIBackend, "_awsha_frees_old_worlds", False):
        return
    original_reset = MotoAPIBackend.reset

    def reset(self: Any) -> None:
        original_reset(self)
        # Safe right after the reset: the new backends (and their default subnets) are built
        # lazily by the next request, so no live subnet loses its address iterator.
        Subnet._base_avail_ip_iterator.cache_clear()
        AccountSpecificBackend._generate_regions.cache_clear()

    MotoAPIBackend.reset = reset
    MotoAPIBackend._awsha_frees_old_worlds = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    add_lifetime_args(ap)
    args = ap.parse_args(argv)

    apply_patches()
    free_old_worlds_on_reset()
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    print(f"READY {port}", flush=True)
    stop = threading.Event()
    try:
        serve_until_stopped(stop, args.max_seconds, not args.no_parent_watch)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
