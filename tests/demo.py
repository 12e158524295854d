#!/usr/bin/env python3
"""`make demo`: awsha's main job, end to end, on this machine — no AWS account, no pfSense.

Owns: the story told to a new user. It starts the integration tests' servers on 127.0.0.1 — moto
(EC2, with the harness's fidelity patches), the fault proxy in front of it (here only to count
the binary's requests) and one IMDSv2 emulator per pfSense node — builds the tests' two-node VPC
(tests/integration/awsha_scenario.py), lets the primary (node A, advskew 0) take the resources,
then kills it and watches the secondary (node B) take over with the real awsha binary:

    1. the setup            servers, the two nodes, config.xml's awsha rows, `awsha validate`
    2. the primary dies     B's (fake) ifconfig turns CARP MASTER
    3. failover on B        `awsha failover wan@1` (human output, then --json), then lan@2
    4. what moved in AWS    before/after: the VIP address, each route, the EIP; the awsha:* tags
    5. status on B          `awsha status`
    6. reconcile on B       `awsha reconcile`: nothing to repair, zero mutating requests
    7. history on B         `awsha history`: when each failover ran, what it changed, how long

Run from the repository root:  AWSHA_BIN=target/debug/awsha .venv/bin/python tests/demo.py
Exit status 0 when every step behaved as described, 1 when one did not (it says which), 130 on
Ctrl-C. Every server is stopped on the way out, whatever happens. Only 127.0.0.1 is used; the
10.0.x.x addresses printed are the simulated VPC's, inside moto.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for sub in ("tests/harness", "tests/integration"):
    path = str(REPO / sub)
    if path not in sys.path:
        sys.path.insert(0, path)

from awsha_scenario import (  # noqa: E402
    ec2_client,
    DEFAULT_ROUTE, LAN_VIP, OTHER_ROUTE, READ_ONLY_PREFIXES, REGION, TAG_KEYS, WAN_VIP, Cloud,
    Emulator, Node, Proxy, Scenario, awsha_bin, build_scenario,
)
from procs import ServerProcess  # noqa: E402

import pytest  # noqa: E402  (the harness helpers report a hung run with pytest.fail)

BOLD = "\033[1m" if sys.stdout.isatty() else ""
DIM = "\033[2m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""
STEP_TIMEOUT = 60  # seconds for any single awsha run


class DemoError(Exception):
    """A step did not behave as the story says."""


def expect(condition: bool, what: str, details: str = "") -> None:
    if not condition:
        raise DemoError(what + (f"\n{details}" if details else ""))


# ---- printing ---------------------------------------------------------------------------------

def heading(number: int | str, title: str) -> None:
    bar = "=" * 78
    print(f"\n{BOLD}{bar}\n {number}. {title}\n{bar}{RESET}")


def say(text: str) -> None:
    print("\n" + textwrap.fill(textwrap.dedent(text).strip(), width=96))


def block(text: str, indent: str = "    ") -> None:
    print(textwrap.indent(text.rstrip("\n"), indent) if text.strip() else f"{indent}(no output)")


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    def line(cells: list[str]) -> str:
        return "    " + "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))

    print(BOLD + line(header).rstrip() + RESET)
    print("    " + "  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r).rstrip())


def readable_json(obj: dict[str, Any]) -> str:
    """One key per line; list items (actions, notices, …) one per line."""
    one = lambda v: json.dumps(v, separators=(", ", ": "))  # noqa: E731
    lines = []
    for i, (k, v) in enumerate(obj.items()):
        comma = "," if i < len(obj) - 1 else ""
        if isinstance(v, list) and v:
            items = [f"    {one(x)}" + ("," if j < len(v) - 1 else "") for j, x in enumerate(v)]
            lines += [f"  {json.dumps(k)}: ["] + items + [f"  ]{comma}"]
        else:
            lines.append(f"  {json.dumps(k)}: {one(v)}{comma}")
    return "{\n" + "\n".join(lines) + "\n}"


class Names:
    """Readable names for the scenario's EC2 ids."""

    def __init__(self, scn: Scenario):
        self.scn = scn
        self.labels = {eni: f"{eni} (node {node} {side})" for (node, side), eni in scn.eni.items()}
        self.labels[scn.rt1] = f"{scn.rt1} (lan's table)"
        self.labels[scn.rt2] = f"{scn.rt2} (wan's table)"
        self.labels[scn.allocation] = f"{scn.allocation} (EIP {scn.public_ip})"
        for node, inst in scn.instance.items():
            self.labels[inst] = f"{inst} (node {node})"

    def __call__(self, rid: str | None) -> str:
        if not rid:
            return "-"
        return self.labels.get(rid, rid)

    def node_of(self, eni: str | None) -> str:
        for (node, side), e in self.scn.eni.items():
            if e == eni:
                return f"node {node} {side}"
        return "-" if eni is None else eni


# ---- the servers ------------------------------------------------------------------------------

class Servers:
    def __init__(self, logs: Path):
        self.logs = logs
        self.started: list[ServerProcess] = []

    def start(self) -> None:
        self.moto = self._start(ServerProcess("moto_launcher.py", [], name="moto",
                                              log_path=self.logs / "moto.log"))
        self.proxy_proc = ServerProcess("fault_proxy.py", ["--upstream", self.moto.url],
                                        name="fault_proxy", log_path=self.logs / "proxy.log")
        self.imds_procs = {n: ServerProcess("imds_emulator.py",
                                            ["--ec2", self.moto.url, "--region", REGION],
                                            name=f"imds_{n}", log_path=self.logs / f"imds_{n}.log")
                           for n in ("A", "B")}
        # The three need only moto: start them together (each takes a second to import boto3).
        for p in [self.proxy_proc, *self.imds_procs.values()]:
            self._spawn(p)
        for p in [self.proxy_proc, *self.imds_procs.values()]:
            self._wait_ready(p)

    def _start(self, p: ServerProcess) -> ServerProcess:
        self.started.append(p)
        return p.start()

    def _spawn(self, p: ServerProcess) -> None:
        # ServerProcess.start() blocks until READY; run each in a thread so they start in parallel.
        self.started.append(p)
        p._demo_error = None  # type: ignore[attr-defined]

        def run() -> None:
            try:
                p.start()
            except Exception as e:  # reported by _wait_ready
                p._demo_error = e  # type: ignore[attr-defined]

        t = threading.Thread(target=run, daemon=True)
        t.start()
        p._demo_thread = t  # type: ignore[attr-defined]

    @staticmethod
    def _wait_ready(p: ServerProcess) -> None:
        p._demo_thread.join(timeout=90)  # type: ignore[attr-defined]
        if p._demo_error is not None or p.port is None:  # type: ignore[attr-defined]
            error = p._demo_error  # type: ignore[attr-defined]
            raise DemoError(f"{p.name} did not start: {error}")

    def stop(self) -> None:
        for p in self.started:
            p.terminate()
        for p in reversed(self.started):
            p.stop()




# ---- running awsha ----------------------------------------------------------------------------

def awsha(node: Node, *args: str, show: bool = True, expect_code: int = 0) -> Any:
    """Run the binary as `node`; print the command and its output; check the exit code."""
    shown = " ".join(args)
    if show:
        print(f"\n  {BOLD}[node {node.name}] $ awsha {shown}{RESET}")
    r = node.run(*args, timeout=STEP_TIMEOUT)
    if show and isinstance(r.json, dict):
        block(readable_json(r.json))  # the binary prints one line; laid out here to read
    elif show:
        block(r.stdout)
    if show:
        print(f"    {DIM}(exit {r.code}, {r.elapsed:.2f} s){RESET}")
    expect(r.code == expect_code, f"`awsha {shown}` on node {node.name} exited {r.code}, "
           f"expected {expect_code}", r.describe())
    if "--json" in args:
        # `history --json` prints one array; every other command one object.
        want = list if args[0] == "history" else dict
        expect(isinstance(r.json, want), f"`awsha {shown}` did not print one JSON {want.__name__}",
               r.describe())
    return r


def where(cloud: Cloud, scn: Scenario) -> dict[str, Any]:
    """Where every resource points now (straight from moto)."""
    return {
        "wan_vip": cloud.ip_holders(WAN_VIP),
        "lan_vip": cloud.ip_holders(LAN_VIP),
        "rt1": cloud.route_target(scn.rt1, DEFAULT_ROUTE),
        "rt2": cloud.route_target(scn.rt2, OTHER_ROUTE),
        "eip": cloud.eip(scn.allocation),
    }


def on_node(scn: Scenario, node: str) -> dict[str, Any]:
    wan, lan = scn.eni[(node, "wan")], scn.eni[(node, "lan")]
    return {"wan_vip": [wan], "lan_vip": [lan], "rt1": lan, "rt2": lan, "eip": (wan, WAN_VIP)}


# ---- the story --------------------------------------------------------------------------------

def main() -> int:
    binary = awsha_bin()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        print(f"awsha binary not found at {binary}: run `cargo build` or set AWSHA_BIN",
              file=sys.stderr)
        return 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="awsha-demo-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        servers = Servers(work / "logs")
        try:
            servers.start()
            story(servers, work, binary)
        except DemoError as e:
            print(f"\n{BOLD}DEMO FAILED:{RESET} {e}", file=sys.stderr)
            print(f"(server logs were in {work / 'logs'})", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted; stopping the servers", file=sys.stderr)
            return 130
        except (Exception, pytest.fail.Exception) as e:  # a harness helper failed (e.g. a timeout)
            import traceback

            traceback.print_exc()
            print(f"\n{BOLD}DEMO FAILED:{RESET} {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        finally:
            servers.stop()
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s; all servers stopped.")
    return 0


def story(servers: Servers, work: Path, binary: Path) -> None:
    # ---------------------------------------------------------------------------------------------
    heading(1, "The setup: two pfSense nodes in a pretend VPC")
    proxy = Proxy(servers.proxy_proc.url)
    say(f"""
        Local servers, all on 127.0.0.1: moto (EC2) at {servers.moto.url}, a request-counting
        proxy in front of it at {proxy.url} (awsha talks to this one, as AWS_ENDPOINT_URL_EC2),
        and one instance metadata service (IMDSv2) per node: node A at
        {servers.imds_procs['A'].url}, node B at {servers.imds_procs['B'].url}.
        Binary: {binary}.
    """)
    ec2 = ec2_client(servers.moto.url)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    scn = build_scenario(ec2, ami)
    cloud = Cloud(ec2)
    names = Names(scn)
    emus = {n: Emulator(servers.imds_procs[n].url) for n in ("A", "B")}
    for n, emu in emus.items():
        emu.reset()
        emu.configure(scn.instance[n], REGION)
    node_a = Node("A", work / "node-a", scn, emus["A"], proxy.url)
    node_b = Node("B", work / "node-b", scn, emus["B"], proxy.url)
    print()
    table([
        ["A", names(scn.instance["A"]).split()[0], "primary: advskew 0", "MASTER",
         f"ena0 wan {scn.eni[('A', 'wan')]}, ena1 lan {scn.eni[('A', 'lan')]}"],
        ["B", names(scn.instance["B"]).split()[0], "secondary: advskew 100", "BACKUP",
         f"ena0 wan {scn.eni[('B', 'wan')]}, ena1 lan {scn.eni[('B', 'lan')]}"],
    ], ["node", "instance", "CARP priority", "CARP state", "ENIs"])
    print()
    say(f"""
        The VPC (10.0.0.0/16, simulated inside moto): subnet wan 10.0.1.0/24, subnet lan
        10.0.2.0/24. CARP VIPs: wan@1 = {WAN_VIP}, lan@2 = {LAN_VIP}. Route tables
        {scn.rt1} ({DEFAULT_ROUTE}) and {scn.rt2} ({OTHER_ROUTE}) send traffic through the
        firewall's lan ENI; the Elastic IP {scn.public_ip} ({scn.allocation}) is the public face
        of wan@1.
    """)

    say("Both nodes carry the same awsha rows in /conf/config.xml (here node B's copy):")
    text = node_b.config_path.read_text()
    start = text.rfind("\n", 0, text.index("<installedpackages>")) + 1
    end = text.index("</installedpackages>") + len("</installedpackages>")
    block(textwrap.dedent(text[start:end].replace("\t", "  ")))

    awsha(node_b, "validate")

    say("The primary (node A, CARP MASTER) took everything when it came up "
        "(rc.carpmaster ran `awsha failover` once per VHID):")
    for vhid in ("wan@1", "lan@2"):
        r = awsha(node_a, "failover", vhid, "--json", show=False)
        rep = r.json
        expect(rep.get("ok") is True and all(a["status"] == "changed" for a in rep["actions"]),
               f"setup: failover {vhid} on A did not change everything", r.describe())
        print(f"    [node A] awsha failover {vhid}: "
              + ", ".join(f"{a['kind']} {a['status']}" for a in rep["actions"]))
    before = where(cloud, scn)
    expect(before == on_node(scn, "A"), "setup: not everything is on node A", json.dumps(before))

    # ---------------------------------------------------------------------------------------------
    heading(2, "The primary dies")
    say("""
        Node A stops answering. After three missed CARP advertisements node B promotes itself:
        its ifconfig now says MASTER for both VHIDs (the demo rewrites B's fake ifconfig output).
        AWS does not know yet: the address, the routes and the EIP still point at node A.
    """)
    node_b.set_carp(1, state="MASTER")
    node_b.set_carp(2, state="MASTER")
    carp_lines = [ln.strip() for ln in node_b.ifconfig.read().splitlines() if "carp:" in ln]
    block("\n".join(f"[node B] ifconfig: {ln}" for ln in carp_lines))

    # ---------------------------------------------------------------------------------------------
    heading(3, "Failover on node B")
    say("""
        pfSense runs rc.carpmaster for each VHID that became MASTER; the awsha package turns that
        into `awsha failover <vhid>`. What an operator would see running it by hand:
    """)
    proxy.reset()
    r = awsha(node_b, "failover", "wan@1")
    counts = proxy.mutating_counts()
    expect(set(counts) <= {"AssignPrivateIpAddresses", "ReplaceRoute", "AssociateAddress",
                           "CreateTags"} and counts.get("ReplaceRoute") == 2,
           "failover sent unexpected requests", json.dumps(proxy.counts()))
    say(f"""
        EC2 requests it made: {', '.join(f'{a} x{n}' for a, n in sorted(counts.items()))} — one
        AssignPrivateIpAddresses per ENI, the routes at the same time, the EIP right after the
        address, then one CreateTags: two round trips before traffic flows.
    """)
    say("""
        The package itself runs it with --json and files a pfSense notice for anything that
        failed. Running it again is harmless (failover never reads first; it just re-asserts the
        same state):
    """)
    r = awsha(node_b, "failover", "wan@1", "--json")
    rep = r.json
    expect(rep.get("ok") is True and rep.get("instance") == scn.instance["B"],
           "failover --json: ok/instance wrong", r.describe())
    expect(len(rep["actions"]) == 4 and all(a["status"] == "changed" for a in rep["actions"]),
           "failover --json: expected 4 changed actions (1 ip, 2 routes, 1 eip)", r.describe())
    say("And the second VHID, as rc.carpmaster passes it (vhid@device):")
    r = awsha(node_b, "failover", "2@ena1", "--json", show=False)
    expect(r.json.get("ok") is True, "failover 2@ena1 on B failed", r.describe())
    print("    [node B] awsha failover 2@ena1: " + ", ".join(
        f"{a['vhid']} {a['kind']} {a['status']}" for a in r.json["actions"]))

    # ---------------------------------------------------------------------------------------------
    heading(4, "What moved in AWS")
    after = where(cloud, scn)
    expect(after == on_node(scn, "B"), "after failover not everything is on node B",
           json.dumps(after))

    def ip_cell(holders: list[str]) -> str:
        return ", ".join(names.node_of(h) for h in holders) or "-"

    def eip_cell(e: tuple[str | None, str | None]) -> str:
        return f"{names.node_of(e[0])}, {e[1]}" if e[0] else "-"

    table([
        [f"address {WAN_VIP} (wan@1)", ip_cell(before["wan_vip"]), ip_cell(after["wan_vip"])],
        [f"route {DEFAULT_ROUTE} in {scn.rt1}", names.node_of(before["rt1"]),
         names.node_of(after["rt1"])],
        [f"route {OTHER_ROUTE} in {scn.rt2}", names.node_of(before["rt2"]),
         names.node_of(after["rt2"])],
        [f"EIP {scn.public_ip} ({scn.allocation})", eip_cell(before["eip"]),
         eip_cell(after["eip"])],
        [f"address {LAN_VIP} (lan@2)", ip_cell(before["lan_vip"]), ip_cell(after["lan_vip"])],
    ], ["resource", "before (A was MASTER)", "after (B took over)"])
    print()
    say("""
        Every resource awsha changed carries awsha:* tags naming the last writer and its CARP
        priority — the shared memory that lets `reconcile` on either node tell a takeover from a
        split brain:
    """)
    print()
    rows = []
    for rid in (scn.eni[("B", "wan")], scn.rt1, scn.rt2, scn.allocation, scn.eni[("B", "lan")]):
        tags = cloud.tags(rid)
        missing = [k for k in TAG_KEYS if k not in tags]
        expect(not missing, f"{rid} lacks tags {missing}", json.dumps(tags))
        expect(tags["awsha:instance"] == scn.instance["B"] and tags["awsha:advskew"] == "100",
               f"{rid} is not tagged as written by node B (advskew 100)", json.dumps(tags))
        rows.append([names(rid), tags["awsha:vhid"], names(tags["awsha:instance"]),
                     tags["awsha:advbase"], tags["awsha:advskew"], tags["awsha:modified"]])
    table(rows, ["resource", "awsha:vhid", "awsha:instance", "advbase", "advskew",
                 "awsha:modified"])
    old = cloud.tags(scn.eni[("A", "wan")])
    expect(old.get("awsha:instance") == scn.instance["A"], "node A's wan ENI lost A's tags",
           json.dumps(old))
    say(f"Node A's old wan ENI ({scn.eni[('A', 'wan')]}) keeps the tags A wrote; the address "
        "is simply no longer on it.")

    # ---------------------------------------------------------------------------------------------
    heading(5, "Status on node B")
    say("`awsha status` reads (never writes): per VHID, the CARP state and where AWS points now.")
    proxy.reset()
    awsha(node_b, "status")
    expect(proxy.mutating_counts() == {}, "status sent a mutating request",
           json.dumps(proxy.counts()))
    r = awsha(node_b, "status", "--json", show=False)
    states = {v["vhid"]: v["state"] for v in r.json.get("vhids", [])}
    expect(states == {"wan@1": "MASTER", "lan@2": "MASTER"}, "status: B should be MASTER of both",
           r.describe())

    # ---------------------------------------------------------------------------------------------
    heading(6, "Reconcile on node B")
    say("""
        Every 60 s the package runs `awsha reconcile`: it observes first and repairs only drift
        (a half-finished takeover, a manual change, a split brain). Right after a clean failover
        there is nothing to do, so it must not send a single mutating request:
    """)
    proxy.reset()
    awsha(node_b, "reconcile")
    mutating = proxy.mutating_counts()
    reads = {a: n for a, n in proxy.counts().items() if a.startswith(READ_ONLY_PREFIXES)}
    print(f"\n    EC2 requests: reads {json.dumps(reads, sort_keys=True)}; mutating "
          f"{json.dumps(mutating) if mutating else 'none'}")
    expect(mutating == {}, "reconcile with nothing to repair sent mutating requests",
           json.dumps(proxy.counts()))
    expect(where(cloud, scn) == on_node(scn, "B"), "reconcile moved something")

    # ---------------------------------------------------------------------------------------------
    heading(7, "History on node B")
    say("""
        Every failover or reconcile that changed or failed something leaves a line in the run
        directory's history (the status page reads it too): the three failovers above (wan@1
        twice, once for each output). The reconcile changed nothing, so it is not there:
    """)
    awsha(node_b, "history")
    r = awsha(node_b, "history", "--json", show=False)
    runs = r.json if isinstance(r.json, list) else []
    ran = [(e.get("command"), e["actions"][0]["vhid"]) for e in runs if e.get("actions")]
    expect(ran == [("failover", "wan@1"), ("failover", "wan@1"), ("failover", "lan@2")],
           "history should hold B's three failovers (wan@1 twice: text, then --json)", r.describe())
    expect(all(isinstance(e.get("ms"), int) and e.get("started") for e in runs),
           "each run has its start and duration", r.describe())

    print(f"\n{BOLD}Node B serves the VPC now: address, routes and Elastic IP followed CARP."
          f"{RESET}")


def _sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    sys.exit(main())
