"""Fake FreeBSD 14 `ifconfig -a` for the awsha integration tests.

Owns: (1) `render_ifconfig`, which prints what a pfSense 2.7/Plus node on FreeBSD 14 shows for
`ifconfig -a` (format: docs/references.md §11, from sbin/ifconfig ifcarp.c and af_inet.c):
lo0, enc0, pflog0 and pfsync0 blocks around the ENA devices, `ether <mac>`, one `inet` line per
address with ` vhid N` on CARP addresses, the EUI-64 link-local `inet6` line, then one `inet6` line
per global IPv6 address in FreeBSD 14's af_inet6.c format (`\tinet6 2600:1f18:…::10 prefixlen 64
vhid 3` for an IPv6 CARP VIP, RFC 5952 text, no scope id), and per vhid the two CARP lines
    \tcarp: MASTER vhid 1 advbase 1 advskew 0
    \t      peer 10.0.1.12 peer6 ff02::12
and (2) `FakeIfconfig`, a node's ifconfig *program*: a tiny executable /bin/sh script in the
node's directory that `cat`s a text file next to it. The awsha binary runs `$AWSHA_IFCONFIG -a`;
tests switch CARP state by rewriting that file (atomically, so a concurrent run never reads half a
file). The script also appends its arguments to `ifconfig.calls` so tests can see it was run.

Note: a CARP address is configured on both members; only the `carp:` state line differs (BACKUP
members keep the address, pf and CARP decide who answers), so both nodes list it with its vhid.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Carp:
    vhid: int
    state: str = "MASTER"  # INIT | BACKUP | MASTER
    advbase: int = 1
    advskew: int = 0
    peer: str = "224.0.0.18"  # multicast default; unicast CARP shows the peer's address
    peer6: str = "ff02::12"


@dataclass
class Inet:
    address: str
    prefix: int
    vhid: int | None = None


@dataclass
class Inet6:
    """A global IPv6 address line (the link-local one is always printed, from the MAC)."""

    address: str
    prefixlen: int = 64
    vhid: int | None = None


@dataclass
class Iface:
    name: str  # ena0, ena1, ...
    mac: str
    inets: list[Inet] = field(default_factory=list)
    carps: list[Carp] = field(default_factory=list)
    description: str | None = None  # pfSense sets the interface description (e.g. WAN)
    mtu: int = 9001
    index: int = 1  # interface index, used in the link-local scope id
    inet6s: list[Inet6] = field(default_factory=list)  # global addresses, after the link-local


def _inet_line(inet: Inet) -> str:
    net = ipaddress.ip_network(f"{inet.address}/{inet.prefix}", strict=False)
    mask = f"0x{int(net.netmask):08x}"
    line = f"\tinet {inet.address} netmask {mask} broadcast {net.broadcast_address}"
    if inet.vhid:
        line += f" vhid {inet.vhid}"
    return line


def _inet6_line(inet6: Inet6) -> str:
    # af_inet6.c in6_status(): "\tinet6 %s" (inet_ntop/getnameinfo: RFC 5952 text), " prefixlen
    # %d", address flags (none here: a CARP address skips DAD), " scopeid 0x%x" only for a scoped
    # (link-local) address, then print_vhid() " vhid %d".
    addr = ipaddress.IPv6Address(inet6.address)
    line = f"\tinet6 {addr} prefixlen {inet6.prefixlen}"
    if inet6.vhid:
        line += f" vhid {inet6.vhid}"
    return line


def _link_local(mac: str, index: int, name: str) -> str:
    # EUI-64 link-local from the MAC, as FreeBSD configures it.
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    eui = b[:3] + [0xFF, 0xFE] + b[3:]
    addr = ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui))  # compressed, as printed
    return f"\tinet6 {addr}%{name} prefixlen 64 scopeid 0x{index:x}"


def render_iface(iface: Iface) -> str:
    lines = [
        f"{iface.name}: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> "
        f"metric 0 mtu {iface.mtu}",
    ]
    if iface.description:
        lines.append(f"\tdescription: {iface.description}")
    lines += [
        "\toptions=422<JUMBO_MTU,LRO,NOMAP>",
        f"\tether {iface.mac}",
    ]
    lines += [_inet_line(i) for i in iface.inets]
    lines.append(_link_local(iface.mac, iface.index, iface.name))
    lines += [_inet6_line(i) for i in iface.inet6s]
    for c in sorted(iface.carps, key=lambda c: c.vhid):
        lines.append(f"\tcarp: {c.state} vhid {c.vhid} advbase {c.advbase} advskew {c.advskew}")
        lines.append(f"\t      peer {c.peer} peer6 {c.peer6}")
    lines += [
        "\tmedia: Ethernet autoselect (autoselect <full-duplex>)",
        "\tstatus: active",
        "\tnd6 options=23<PERFORMNUD,ACCEPT_RTADV,AUTO_LINKLOCAL>",
    ]
    return "\n".join(lines) + "\n"


def render_ifconfig(ifaces: list[Iface]) -> str:
    """The whole `ifconfig -a` output: ENA devices first (as the kernel attaches them), then the
    pseudo-interfaces pfSense always has."""
    n = len(ifaces)
    out = "".join(render_iface(i) for i in ifaces)
    out += (
        "enc0: flags=0 metric 0 mtu 1536\n"
        "\toptions=0\n"
        "\tgroups: enc\n"
        "\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>\n"
        "lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384\n"
        "\toptions=680003<RXCSUM,TXCSUM,LINKSTATE,RXCSUM_IPV6,TXCSUM_IPV6>\n"
        "\tinet 127.0.0.1 netmask 0xff000000\n"
        "\tinet6 ::1 prefixlen 128\n"
        f"\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x{n + 2:x}\n"
        "\tgroups: lo\n"
        "\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>\n"
        "pflog0: flags=1000141<UP,RUNNING,PROMISC,LOWER_UP> metric 0 mtu 33152\n"
        "\toptions=0\n"
        "\tgroups: pflog\n"
        "pfsync0: flags=1000041<UP,RUNNING,LOWER_UP> metric 0 mtu 1500\n"
        "\toptions=0\n"
        "\tmaxupd: 128 defer: off version: 1400\n"
        "\tsyncok: 1\n"
        "\tgroups: pfsync\n"
    )
    return out


SCRIPT = """#!/bin/sh
# Fake ifconfig for the awsha integration tests (tests/harness/fake_ifconfig.py).
# Prints the text file next to it, whatever the arguments; records the arguments.
here=$(dirname "$0")
echo "$*" >> "$here/ifconfig.calls"
exec cat "$here/ifconfig.txt"
"""


class FakeIfconfig:
    """An executable ifconfig in `directory` that prints `directory/ifconfig.txt`."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "ifconfig"
        self.text_path = self.dir / "ifconfig.txt"
        self.calls_path = self.dir / "ifconfig.calls"
        self.path.write_text(SCRIPT)
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.write("")

    def write(self, text: str) -> None:
        tmp = self.text_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.text_path)

    def read(self) -> str:
        return self.text_path.read_text()

    def calls(self) -> list[str]:
        if not self.calls_path.exists():
            return []
        return self.calls_path.read_text().splitlines()
