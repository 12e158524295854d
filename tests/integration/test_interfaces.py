"""`awsha interfaces` and `awsha map-ip` (docs/contracts.md §2, §4.7; issue 4: the GUI's interface
and address choices, and XMLRPC sync's address mapping). Real binary, node A's IMDS emulator and
fake ifconfig; values come from moto's ENIs through the emulator.
"""

from __future__ import annotations

from awsha_scenario import WAN_VIP, Node, Proxy, Scenario, check_report


def test_interfaces_lists_every_eni_backed_interface(scenario: Scenario, node_a: Node,
                                                      proxy: Proxy) -> None:
    r = node_a.run("interfaces", "--json")
    assert r.code == 0, r.describe()
    rep = check_report(r, "interfaces")
    assert rep["instance"] == node_a.instance_id
    by_key = {i["interface"]: i for i in rep["interfaces"]}
    assert set(by_key) == {"wan", "lan"}, r.describe()
    wan = by_key["wan"]
    assert (wan["device"], wan["eni"], wan["subnet_cidr"]) == ("ena0", node_a.eni("wan"), "10.0.1.0/24")
    assert wan["mac"] == scenario.mac[("A", "wan")].lower()
    assert wan["ipv4s"][0] == scenario.primary[("A", "wan")], "primary address first"
    assert by_key["lan"]["subnet_cidr"] == "10.0.2.0/24"
    assert proxy.counts() == {}, "interfaces asks IMDS only, never EC2"
    # Human output: one line per interface with its ENI.
    text = node_a.run("interfaces")
    assert text.code == 0 and node_a.eni("wan") in text.stdout and node_a.eni("lan") in text.stdout


def test_interfaces_reports_a_non_eni_interface_apart(scenario: Scenario, node_a: Node) -> None:
    node_a.config.interfaces["opt1"] = {"if": "ovpns1", "descr": "VPN", "enable": ""}
    node_a.write_config()
    r = node_a.run("interfaces", "--json")
    rep = check_report(r, "interfaces")
    assert {i["interface"] for i in rep["interfaces"]} == {"wan", "lan"}
    not_eni = {i["interface"]: i for i in rep["not_eni"]}
    assert "opt1" in not_eni and "ovpns1" in not_eni["opt1"]["reason"], r.describe()


def test_map_ip_moves_an_address_into_the_local_subnet(node_a: Node) -> None:
    # The peer's WAN VIP 10.0.1.10 from a /24 in another AZ (10.0.3.0/24) → the same host part
    # in this node's wan subnet.
    r = node_a.run("map-ip", "--interface", "wan", "--from-subnet", "10.0.3.0/24", "10.0.3.10")
    assert r.code == 0, r.describe()
    assert r.stdout.strip() == WAN_VIP
    j = node_a.run("map-ip", "--interface", "WAN", "--from-subnet", "10.0.3.0/24", "10.0.3.10", "--json")
    rep = check_report(j, "map-ip")
    assert (rep["ip"], rep["subnet"]) == (WAN_VIP, "10.0.1.0/24")


def test_map_ip_refuses_what_it_cannot_map(node_a: Node) -> None:
    cases = [
        (("--interface", "wan", "--from-subnet", "10.0.3.0/25", "10.0.3.10"), "prefix lengths differ"),
        (("--interface", "wan", "--from-subnet", "10.0.3.0/24", "10.0.4.10"), "not inside"),
        (("--interface", "wan", "--from-subnet", "10.0.3.1/24", "10.0.3.10"), "host bits"),
        (("--interface", "wan", "--from-subnet", "10.0.3.0/24", "10.0.3.300"), "IPv4"),
        (("--interface", "dmz", "--from-subnet", "10.0.3.0/24", "10.0.3.10"), "not an interface"),
        (("--interface", "wan; reboot", "--from-subnet", "10.0.3.0/24", "10.0.3.10"), "not an interface"),
    ]
    for args, needle in cases:
        r = node_a.run("map-ip", *args, "--json")
        assert r.code == 2, r.describe()
        rep = check_report(r, "map-ip")
        assert needle in rep["error"], r.describe()
        assert r.stdout.count("\n") == 1, "one JSON object, nothing else on stdout"
