"""The pfSense pages and the XMLRPC sync with dual stack and prefix lists (issue 14 point 5), with
the real binary: the package's PHP (pfSense stubbed, php-shim/tests/stubs) on node A of the
dual-stack world (the `dual` fixture: the VPC's /56, a /64 per subnet, IPv6 addresses on every
ENI, CARP VIP wan@3 = VIP6 with its IP row and three route rows ::/0, a /56 and a pl- id), with
`awsha validate`, `awsha interfaces` and `awsha map-ip` run by the real binary against node A's
IMDS emulator.

What runs the binary's IPv6 side fails with a binary without it (docs/contracts.md §5.5; all four
pass with the binary built from main at 16f09ab, which has it):
  * test_the_routes_and_ips_tabs_take_ipv6_and_prefix_lists — `validate` accepting IPv6 CIDRs,
    pl- ids and IPv6 addresses;
  * test_the_ips_tab_suggests_the_enis_ipv6_addresses — `interfaces --json` with `ipv6s`;
  * test_the_sync_maps_ipv6_addresses_with_map_ip — `interfaces` with `subnet_ipv6_cidrs`,
    `map-ip` for IPv6.
test_a_save_is_refused_with_the_rows_own_problem passes with an IPv4-only binary (the binary
names the config file before each problem; the package now matches that).

moto: P8 (the subnets' IPv6 blocks, through the IMDS emulator).
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from awsha_scenario import DualStack, Node, Scenario, loose_ipv6
from shim_php import Shim

NEW_RTB = "rtb-0123456789abcdef0"  # well-formed, in no row yet


@pytest.fixture
def shim(dual: DualStack, node_a: Node) -> Shim:
    s = Shim(node_a)
    s.use_config()
    return s


def save(shim: Shim, section: str, post: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """A new row of `section` saved on its tab: pkg_edit.php's custom_php_validation_command, then
    what it would store (the post after validation) and the input errors."""
    code = ('$post = json_decode(getenv("AWSHA_TEST_POST"), true); $errors = array(); '
            f'awsha_validate_input({json.dumps(section)}, $post, null, $errors); '
            'echo json_encode(array("post" => $post, "errors" => $errors));')
    shim.env["AWSHA_TEST_POST"] = json.dumps(post)
    out = shim.php_json(code)
    return out["post"], out["errors"]


def route(cidr: str, vhid: str = "wan@3", rtb: str = NEW_RTB) -> dict[str, str]:
    return {"vhid": vhid, "routetable": rtb, "cidr": cidr, "interface": "lan", "xmlrpcsync": "on"}


def test_a_save_is_refused_with_the_rows_own_problem(shim: Shim) -> None:
    post, errors = save(shim, "awsharoutes", route("10.0.0.1/8", vhid="wan@1"))
    assert errors == ['awsharoutes row 6 cidr: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?'], (
        "the row's own problem, without the temporary file's name")
    post, errors = save(shim, "awsharoutes", route("10.0.0.0/8", vhid="wan@1"))
    assert errors == [] and post["cidr"] == "10.0.0.0/8"


def test_the_routes_and_ips_tabs_take_ipv6_and_prefix_lists(shim: Shim, dual: DualStack) -> None:
    ds = dual
    remote = "2600:1f18:abcd:ee00::/56"
    for typed, stored in ((loose_ipv6(remote), remote), ("PL-0123456789ABCDEF0", "pl-0123456789abcdef0"),
                          ("pl-12ab34CD", "pl-12ab34cd"), ("::/0", "::/0")):
        post, errors = save(shim, "awsharoutes", route(typed))
        assert errors == [], f"{typed}: {errors}"
        assert post["cidr"] == stored, "stored as the binary uses it: RFC 5952, pl- in lower case"

    host_bits = "2600:1f18:abcd:ee00::1/56"
    for bad, needle in ((host_bits, "host bits"), ("2600:1f18::/129", None), ("pl-123", "pl-"),
                        ("fe80::1%ena0/64", None)):
        _, errors = save(shim, "awsharoutes", route(bad))
        assert len(errors) == 1 and errors[0].startswith("awsharoutes row 6 cidr: "), f"{bad}: {errors}"
        if needle:
            assert needle in errors[0], errors

    wan64 = ipaddress.IPv6Network(ds.subnet6["wan"])
    extra = str(wan64[0x77])
    post, errors = save(shim, "awshaips", {"vhid": "wan@3", "interface": "wan", "ipaddr": loose_ipv6(extra),
                                           "xmlrpcsync": "on"})
    assert errors == [] and post["ipaddr"] == extra, errors
    _, errors = save(shim, "awshaeips", {"vhid": "wan@3", "allocationid": "eipalloc-0a1b2c3d4e5f67890",
                                         "interface": "wan", "privateip": "", "xmlrpcsync": "on"})
    assert len(errors) == 1 and errors[0].startswith("awshaeips row 2 privateip: "), (
        f"the VIP's address is IPv6 here: an Elastic IP cannot take it\n{errors}")


def test_the_ips_tab_suggests_the_enis_ipv6_addresses(shim: Shim, dual: DualStack, node_a: Node) -> None:
    ds = dual
    out = shim.php_json('$vhids = array(); foreach (awsha_vhid_options() as $o) { $vhids[$o["value"]] = $o["name"]; } '
                        'echo json_encode(array("vhids" => $vhids, "ips" => awsha_ip_choices(), '
                        '"eips" => awsha_privateip_choices(), "error" => $GLOBALS["awsha_gui_error"]));')
    assert out["vhids"]["wan@3"] == f"wan@3 - {ds.vip6} (WAN IPv6 CARP VIP)", "the IPv6 CARP VIP is a VHID choice"
    assert out["error"] is None, out
    wan = out["ips"]["wan"]
    assert wan.get(ds.vip6) == f"{ds.vip6} (CARP VIP wan@3)", wan
    assert wan.get(ds.ipv6[("A", "wan")]) == f"{ds.ipv6[('A', 'wan')]} (WAN ENI)", (
        f"the ENI's IPv6 address, from awsha interfaces --json \"ipv6s\"\n{wan}")
    assert out["ips"]["lan"].get(ds.ipv6[("A", "lan")]) == f"{ds.ipv6[('A', 'lan')]} (LAN ENI)", out["ips"]["lan"]
    for side, choices in out["eips"].items():
        assert all(ipaddress.ip_address(ip).version == 4 for ip in choices), f"{side}: {choices}"


def test_the_sync_maps_ipv6_addresses_with_map_ip(shim: Shim, dual: DualStack) -> None:
    ds = dual
    # The sender (this node) sends its IPv6 row with its wan /64.
    payload = shim.php_json("echo json_encode(awsha_sync_payload());")
    row = next(r for r in payload["sections"]["awshaips"] if r["ipaddr"] == ds.vip6)
    assert row.get("subnet_cidr") == ds.subnet6["wan"], (
        f"the sender's IPv6 /64 for an IPv6 address (awsha interfaces \"subnet_ipv6_cidrs\")\n{row}")

    # The receiver (this node) maps a row from a peer in another AZ: the /56's fourth /64.
    peer64 = list(ipaddress.IPv6Network(ds.vpc_block).subnets(new_prefix=64))[3]
    peer_vip = str(peer64[0x10])
    sent = {"version": 1, "settings": {}, "sections": {"awshaips": [
        {"vhid": "wan@3", "interface": "wan", "ipaddr": peer_vip, "xmlrpcsync": "on", "subnet_cidr": str(peer64)},
    ]}}
    shim.env["AWSHA_TEST_PAYLOAD"] = json.dumps(sent)
    merged = shim.php_json('echo json_encode(awsha_sync_merge(json_decode(getenv("AWSHA_TEST_PAYLOAD"), true)));')
    rows = merged["installedpackages/awshaips/config"]
    assert rows[0]["ipaddr"] == ds.vip6, f"mapped into this node's /64 by awsha map-ip\n{rows}"
    assert "subnet_cidr" not in rows[0]
    lines = [c[2] for c in shim.calls("syslog")]
    assert not any("map-ip failed" in line for line in lines), lines
