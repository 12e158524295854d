#!/usr/bin/env python3
"""A large pfSense-like config.xml for `make bench` (process cost: start + parse + validate).

Owns: generating a deterministic config.xml of a given size (default 5 MiB) that looks like the
config of a busy real pfSense firewall — what makes real configs big: thousands of firewall rules
(`<filter><rule>`, with `<created>`/`<updated>` blocks, CDATA descriptions, entity-encoded text),
hundreds of aliases with long address lists, NAT port forwards and outbound rules, DHCP static
mappings, VLANs, users, CA/certificate blobs (base64) and other packages' rows
— plus the awsha parts: interfaces wan/lan, CARP VIPs, and the awsha rows (default 4 IPs, 40
routes, 4 EIPs on wan@1, like the bench's largest failover). The awsha rows are valid, so
`awsha validate` on the file exits 0.

Usage:
    python tests/bench/gen_config.py OUT.xml [--bytes N] [--ips 4 --routes 40 --eips 4] [--seed 1]
Prints the size and what it contains. The same arguments always produce the same bytes.
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
from xml.sax.saxutils import escape

MIB = 1024 * 1024

PROTOCOLS = ["tcp", "udp", "tcp/udp", "icmp", "any"]
PORTS = ["22", "53", "80", "123", "443", "465", "587", "993", "1194", "3389", "5060", "8080",
         "8443", "10000:20000", "HTTP_PORTS", "MAIL_PORTS"]
IFACES = ["wan", "lan", "opt1", "opt2", "opt3", "opt4"]
USERS = ["admin@10.0.2.5 (Local Database)", "ops &amp; noc@10.0.2.9 (Local Database)",
         "NAT Port Forward", "Easy Rule: Passed from Firewall Log View"]
WORDS = ["allow", "block", "web", "mail", "dns", "ntp", "vpn", "backup", "monitoring", "printers",
         "guests", "servers", "lab", "legacy", "temporary", "partner", "office", "branch",
         "storage", "voip", "cameras", "admins", "api", "k8s", "db"]


def cdata(text: str) -> str:
    return f"<![CDATA[{text}]]>"


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(0, 256)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def stamp(rng: random.Random, t0: int, indent: str) -> str:
    return (f"{indent}\t<time>{t0 + rng.randrange(0, 10**7)}</time>\n"
            f"{indent}\t<username>{cdata(rng.choice(USERS))}</username>\n")


def rule(rng: random.Random, n: int) -> str:
    t = "\t\t\t"
    kind = rng.choice(["pass", "pass", "pass", "block", "reject"])
    iface = rng.choice(IFACES)
    proto = rng.choice(PROTOCOLS)
    src = (f"{t}\t<any></any>\n" if rng.random() < 0.4
           else f"{t}\t<address>{rng.choice(['LAN_NETS', 'ADMINS', ip(rng)])}</address>\n")
    dst_port = f"{t}\t<port>{rng.choice(PORTS)}</port>\n" if proto in ("tcp", "udp", "tcp/udp") else ""
    dst = (f"{t}\t<network>{rng.choice(IFACES)}ip</network>\n" if rng.random() < 0.3
           else f"{t}\t<address>{ip(rng)}/{rng.choice([24, 32, 16])}</address>\n")
    return (
        f"\t\t<rule>\n{t}<id></id>\n{t}<tracker>{1700000000 + n}</tracker>\n{t}<type>{kind}</type>\n"
        f"{t}<interface>{iface}</interface>\n{t}<ipprotocol>inet</ipprotocol>\n{t}<tag></tag>\n"
        f"{t}<tagged></tagged>\n{t}<max></max>\n{t}<max-src-nodes></max-src-nodes>\n"
        f"{t}<max-src-conn></max-src-conn>\n{t}<max-src-states></max-src-states>\n"
        f"{t}<statetimeout></statetimeout>\n{t}<statetype>{cdata('keep state')}</statetype>\n"
        f"{t}<os></os>\n" + (f"{t}<protocol>{proto}</protocol>\n" if proto != "any" else "")
        + f"{t}<source>\n{src}{t}</source>\n{t}<destination>\n{dst}{dst_port}{t}</destination>\n"
        + (f"{t}<log></log>\n" if rng.random() < 0.3 else "")
        + f"{t}<descr>{cdata(words(rng, rng.randrange(2, 7)) + f' #{n}')}</descr>\n"
        f"{t}<created>\n{stamp(rng, 1600000000, t)}{t}</created>\n"
        f"{t}<updated>\n{stamp(rng, 1650000000, t)}{t}</updated>\n\t\t</rule>\n"
    )


def alias(rng: random.Random, n: int) -> str:
    count = rng.randrange(5, 60)
    addrs = " ".join(f"{ip(rng)}/32" for _ in range(count))
    details = "||".join(escape(f"{words(rng, 2)} & host {i}") for i in range(count))
    return (f"\t\t<alias>\n\t\t\t<name>ALIAS_{n:05d}</name>\n\t\t\t<type>network</type>\n"
            f"\t\t\t<address>{addrs}</address>\n\t\t\t<descr>{cdata(words(rng, 4))}</descr>\n"
            f"\t\t\t<detail>{cdata(details)}</detail>\n\t\t</alias>\n")


def nat_rule(rng: random.Random, n: int) -> str:
    t = "\t\t\t"
    return (f"\t\t<rule>\n{t}<source>\n{t}\t<any></any>\n{t}</source>\n{t}<destination>\n"
            f"{t}\t<network>wanip</network>\n{t}\t<port>{10000 + n}</port>\n{t}</destination>\n"
            f"{t}<ipprotocol>inet</ipprotocol>\n{t}<protocol>tcp</protocol>\n"
            f"{t}<target>{ip(rng)}</target>\n{t}<local-port>{rng.choice(PORTS[:12])}</local-port>\n"
            f"{t}<interface>wan</interface>\n{t}<descr>{cdata('forward ' + words(rng, 3))}</descr>\n"
            f"{t}<associated-rule-id>nat_{n:08x}</associated-rule-id>\n"
            f"{t}<created>\n{stamp(rng, 1600000000, t)}{t}</created>\n\t\t</rule>\n")


def staticmap(rng: random.Random, n: int) -> str:
    mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
    return (f"\t\t\t<staticmap>\n\t\t\t\t<mac>{mac}</mac>\n\t\t\t\t<cid></cid>\n"
            f"\t\t\t\t<ipaddr>10.0.2.{n % 250 + 2}</ipaddr>\n\t\t\t\t<hostname>host-{n}</hostname>\n"
            f"\t\t\t\t<descr>{cdata(words(rng, 3))}</descr>\n\t\t\t\t<filename></filename>\n"
            f"\t\t\t\t<rootpath></rootpath>\n\t\t\t\t<defaultleasetime></defaultleasetime>\n"
            f"\t\t\t\t<maxleasetime></maxleasetime>\n\t\t\t\t<gateway></gateway>\n"
            f"\t\t\t\t<domain></domain>\n\t\t\t\t<domainsearchlist></domainsearchlist>\n"
            f"\t\t\t\t<ddnsdomain></ddnsdomain>\n\t\t\t</staticmap>\n")


def blob(rng: random.Random, size: int) -> str:
    return base64.b64encode(rng.randbytes(size)).decode()


def cert(rng: random.Random, n: int, tag: str) -> str:
    return (f"\t<{tag}>\n\t\t<refid>{rng.randbytes(6).hex()}</refid>\n"
            f"\t\t<descr>{cdata(f'{tag} {n} ' + words(rng, 2))}</descr>\n"
            f"\t\t<crt>{blob(rng, 1400)}</crt>\n\t\t<prv>{blob(rng, 1200)}</prv>\n\t</{tag}>\n")


def awsha_rows(ips: int, routes: int, eips: int) -> tuple[str, str, str]:
    """IP rows 10.0.1.10, .20, .21 …; routes 172.16.<k>.0/24 in tables of ten; one EIP per IP."""
    addrs = ["10.0.1.10"] + [f"10.0.1.{20 + i}" for i in range(ips - 1)]
    ip_rows = "".join(
        f"\t\t\t<config>\n\t\t\t\t<vhid>wan@1</vhid>\n\t\t\t\t<interface>wan</interface>\n"
        f"\t\t\t\t<ipaddr>{a}</ipaddr>\n\t\t\t\t<xmlrpcsync>on</xmlrpcsync>\n\t\t\t</config>\n"
        for a in addrs)
    route_rows = "".join(
        f"\t\t\t<config>\n\t\t\t\t<vhid>wan@1</vhid>\n"
        f"\t\t\t\t<routetable>rtb-{0x05ed6e7c46531c6c0 + k // 10:017x}</routetable>\n"
        f"\t\t\t\t<cidr>172.16.{k}.0/24</cidr>\n\t\t\t\t<interface>lan</interface>\n"
        f"\t\t\t\t<xmlrpcsync>on</xmlrpcsync>\n\t\t\t</config>\n" for k in range(routes))
    eip_rows = "".join(
        f"\t\t\t<config>\n\t\t\t\t<vhid>wan@1</vhid>\n"
        f"\t\t\t\t<allocationid>eipalloc-{0x0a1b2c3d4e5f67890 + k:017x}</allocationid>\n"
        f"\t\t\t\t<interface>wan</interface>\n\t\t\t\t<privateip>{addrs[k % len(addrs)]}"
        f"</privateip>\n\t\t\t\t<xmlrpcsync>on</xmlrpcsync>\n\t\t\t</config>\n" for k in range(eips))
    return ip_rows, route_rows, eip_rows


def generate(target: int, ips: int = 4, routes: int = 40, eips: int = 4, seed: int = 1) -> tuple[str, dict[str, int]]:
    rng = random.Random(seed)
    counts = {"filter rules": 0, "aliases": 0, "nat rules": 0, "dhcp static maps": 0,
              "vlans": 40, "users": 60, "certs": 0}
    head = ['<?xml version="1.0"?>\n<pfsense>\n\t<version>23.3</version>\n',
            "\t<lastchange></lastchange>\n\t<system>\n\t\t<optimization>normal</optimization>\n"
            "\t\t<hostname>fw-a</hostname>\n\t\t<domain>corp.example.internal</domain>\n"
            "\t\t<timezone>Etc/UTC</timezone>\n\t\t<webgui>\n\t\t\t<protocol>https</protocol>\n"
            "\t\t\t<ssl-certref>5f3c1a2b3c4d</ssl-certref>\n\t\t</webgui>\n"]
    for u in range(counts["users"]):
        head.append(f"\t\t<user>\n\t\t\t<name>user{u}</name>\n\t\t\t<descr>{cdata(words(rng, 2))}"
                    f"</descr>\n\t\t\t<scope>user</scope>\n\t\t\t<groupname>admins</groupname>\n"
                    f"\t\t\t<bcrypt-hash>$2y$10${blob(rng, 40)[:53]}</bcrypt-hash>\n"
                    f"\t\t\t<uid>{2000 + u}</uid>\n\t\t\t<priv>page-all</priv>\n"
                    f"\t\t\t<authorizedkeys>{blob(rng, 300)}</authorizedkeys>\n\t\t</user>\n")
    head.append("\t</system>\n\t<interfaces>\n")
    for key, dev, descr in (("wan", "ena0", "WAN"), ("lan", "ena1", "LAN"), ("opt1", "ena2", "DMZ"),
                            ("opt2", "ena1.100", "VOICE"), ("opt3", "ena1.200", "GUESTS"),
                            ("opt4", "ena1.300", "LAB &amp; TEST")):
        head.append(f"\t\t<{key}>\n\t\t\t<enable></enable>\n\t\t\t<if>{dev}</if>\n"
                    f"\t\t\t<descr>{cdata(descr)}</descr>\n\t\t\t<ipaddr>dhcp</ipaddr>\n"
                    f"\t\t\t<spoofmac></spoofmac>\n\t\t</{key}>\n")
    head.append("\t</interfaces>\n\t<vlans>\n")
    for v in range(counts["vlans"]):
        head.append(f"\t\t<vlan>\n\t\t\t<if>ena1</if>\n\t\t\t<tag>{100 + v}</tag>\n\t\t\t<pcp></pcp>\n"
                    f"\t\t\t<descr>{cdata(words(rng, 2))}</descr>\n\t\t\t<vlanif>ena1.{100 + v}"
                    f"</vlanif>\n\t\t</vlan>\n")
    head.append("\t</vlans>\n")
    vips = []
    for iface, vhid, subnet, uniqid, peer in (("wan", 1, "10.0.1.10", "65de65ceb0447", "10.0.1.12"),
                                              ("lan", 2, "10.0.2.10", "65de65ceb0448", "10.0.2.12")):
        vips.append(f"\t\t<vip>\n\t\t\t<mode>carp</mode>\n\t\t\t<interface>{iface}</interface>\n"
                    f"\t\t\t<vhid>{vhid}</vhid>\n\t\t\t<advskew>0</advskew>\n\t\t\t<advbase>1</advbase>\n"
                    f"\t\t\t<password>{cdata('s3cret&carp')}</password>\n\t\t\t<uniqid>{uniqid}</uniqid>\n"
                    f"\t\t\t<descr>{cdata(iface.upper() + ' CARP VIP')}</descr>\n\t\t\t<type>single</type>\n"
                    f"\t\t\t<subnet_bits>32</subnet_bits>\n\t\t\t<subnet>{subnet}</subnet>\n"
                    f"\t\t\t<carp_mode>ucast</carp_mode>\n\t\t\t<carp_peer>{peer}</carp_peer>\n\t\t</vip>\n")
    for k in range(20):  # IP aliases, as real configs have next to the CARP VIPs
        vips.append(f"\t\t<vip>\n\t\t\t<mode>ipalias</mode>\n\t\t\t<interface>_vip65de65ceb0447</interface>\n"
                    f"\t\t\t<uniqid>65de65ceb{k + 0x500:04x}</uniqid>\n\t\t\t<descr>{cdata(words(rng, 2))}"
                    f"</descr>\n\t\t\t<type>single</type>\n\t\t\t<subnet_bits>32</subnet_bits>\n"
                    f"\t\t\t<subnet>10.0.1.{100 + k}</subnet>\n\t\t</vip>\n")
    ip_rows, route_rows, eip_rows = awsha_rows(ips, routes, eips)
    tail = ["\t<virtualip>\n", *vips, "\t</virtualip>\n",
            "\t<installedpackages>\n\t\t<package>\n\t\t\t<name>awsha</name>\n\t\t\t<version>0.1.0</version>\n"
            "\t\t</package>\n\t\t<package>\n\t\t\t<name>Backup</name>\n\t\t</package>\n"
            "\t\t<awsha>\n\t\t\t<config>\n\t\t\t\t<enable>on</enable>\n\t\t\t\t<endpoint></endpoint>\n"
            "\t\t\t\t<region></region>\n\t\t\t</config>\n\t\t</awsha>\n",
            f"\t\t<awshaips>\n{ip_rows}\t\t</awshaips>\n",
            f"\t\t<awsharoutes>\n{route_rows}\t\t</awsharoutes>\n",
            f"\t\t<awshaeips>\n{eip_rows}\t\t</awshaeips>\n",
            "\t\t<backup>\n\t\t\t<config>\n\t\t\t\t<name>nightly</name>\n\t\t\t\t<path>/cf/conf</path>\n"
            "\t\t\t\t<enabled>on</enabled>\n\t\t\t</config>\n\t\t</backup>\n",
            "\t</installedpackages>\n</pfsense>\n"]

    counts.update({"awsha ip rows": ips, "awsha route rows": routes, "awsha eip rows": eips})
    fixed = sum(len(s) for s in head + tail)
    body, bulk_counts = bulk(rng, target - fixed)
    counts.update(bulk_counts)
    return "".join(head) + body + "".join(tail), counts


def bulk(rng: random.Random, size: int) -> tuple[str, dict[str, int]]:
    """Top-level <filter>, <aliases>, <nat>, <dhcpd>, <ca>/<cert> elements of exactly `size`
    characters (ASCII), in the proportions of a busy real config: aliases ~15 %, NAT ~8 %, DHCP
    ~7 %, certificates ~8 %, firewall rules the rest."""
    counts = {"filter rules": 0, "aliases": 0, "nat rules": 0, "dhcp static maps": 0, "certs": 0}
    sections: dict[str, list[str]] = {"aliases": [], "nat": [], "dhcp": [], "certs": [], "filter": []}
    shares = [("aliases", 0.15), ("nat", 0.08), ("dhcp", 0.07), ("certs", 0.08)]
    wrappers = {"aliases": ("\t<aliases>\n", "\t</aliases>\n"),
                "nat": ("\t<nat>\n\t\t<outbound>\n\t\t\t<mode>hybrid</mode>\n\t\t</outbound>\n", "\t</nat>\n"),
                "dhcp": ("\t<dhcpd>\n\t\t<lan>\n\t\t\t<enable></enable>\n\t\t\t<range>\n\t\t\t\t<from>10.0.2.100"
                         "</from>\n\t\t\t\t<to>10.0.2.199</to>\n\t\t\t</range>\n", "\t\t</lan>\n\t</dhcpd>\n"),
                "certs": ("", ""),
                "filter": ("\t<filter>\n", "\t</filter>\n")}
    budget = max(0, size - sum(len(a) + len(b) for a, b in wrappers.values()))
    used = 0
    makers = {"aliases": (alias, "aliases"), "nat": (nat_rule, "nat rules"),
              "dhcp": (staticmap, "dhcp static maps")}
    for name, share in shares:
        goal = used + int(budget * share)
        n = 0
        while used < goal:
            if name == "certs":
                item = cert(rng, n, "ca" if n % 5 == 0 else "cert")
                counts["certs"] += 1
            else:
                fn, label = makers[name]
                item = fn(rng, n)
                counts[label] += 1
            sections[name].append(item)
            used += len(item)
            n += 1
    n = 0
    while True:
        item = rule(rng, n)
        if used + len(item) > budget and n > 0:
            break
        sections["filter"].append(item)
        counts["filter rules"] += 1
        used += len(item)
        n += 1
    # A comment at the end of <filter> makes up the exact size.
    pad = budget - used
    if pad >= 10:
        sections["filter"].append("\t\t<!--" + "x" * (pad - 10) + "-->\n")
    out = []
    for name in ("filter", "aliases", "nat", "dhcp", "certs"):
        a, b = wrappers[name]
        out += [a, *sections[name], b]
    return "".join(out), counts


def pad_config(text: str, target: int, seed: int = 1) -> str:
    """`text` (a config.xml without those elements, e.g. the integration tests' ConfigSpec) grown
    to `target` bytes with bulk() inserted before <installedpackages>: same awsha parts, the size
    of a busy firewall's config."""
    cut = text.index("\t<installedpackages>")
    filler, _ = bulk(random.Random(seed), target - len(text.encode()))
    return text[:cut] + filler + text[cut:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--bytes", type=int, default=5 * MIB, help="target size (default 5 MiB)")
    ap.add_argument("--ips", type=int, default=4)
    ap.add_argument("--routes", type=int, default=40)
    ap.add_argument("--eips", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    text, counts = generate(args.bytes, args.ips, args.routes, args.eips, args.seed)
    data = text.encode()
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"{args.out}: {len(data)} bytes; " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
