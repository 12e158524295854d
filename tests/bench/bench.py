#!/usr/bin/env python3
"""`make bench`: how fast awsha moves a VHID, measured against the usual way (one `aws` CLI call
after another), against local servers with a fixed delay on every EC2 request.

Owns: the benchmark of issue 7 (docs/contracts.md §8, execution order). It starts the
integration tests' servers on 127.0.0.1 — moto (tests/harness/moto_launcher.py), the fault proxy in
front of it with a fixed delay on every EC2 request (fault_proxy.py --delay-ms, default 50 ms,
`BENCH_DELAY_MS`), one IMDSv2 emulator per node (imds_emulator.py, answering from a snapshot taken
before each timed run, as real IMDS answers in well under a millisecond) — and the two-node
scenario of tests/integration/awsha_scenario.py, grown to the sizes measured. Then, with the
release binary:

  1. `awsha failover wan@1` for a VHID with 1 IP + 1 route + 1 EIP, 1 + 8 + 1 and 4 + 40 + 4
     actions: wall time (median of BENCH_RUNS runs, default 5, alternating node A and node B so
     that every run really moves every resource; checked in moto after each run), EC2 requests,
     and where the time goes (from the proxy's and the emulators' request logs, and one extra
     `-vv` run per size whose stderr lines are time-stamped as they arrive);
  2. the same moves the usual way, in the same run: one `aws ec2 …` CLI call after another through
     the same proxy (assign-private-ip-addresses per address, replace-route per route,
     associate-address per EIP, one create-tags), and the ratio;
  3. `awsha reconcile` with nothing to repair, 3 and 40 actions (and the failover sizes): EC2
     requests (reads; no mutating one) and wall time;
  4. process cost: `awsha validate` on a 5 MiB pfSense-like config.xml (tests/bench/gen_config.py)
     and on the small one, median of BENCH_PARSE_RUNS (default 21); peak RSS of every command
     measured (GNU time's %M, in runs kept out of the medians); the stripped release binary's
     size;
  5. scale (issue 11): `awsha failover wan@1` with 100 and 200 route tables (BENCH_SCALE_ROUTES),
     one route row each, behind a token bucket for ReplaceRoute in the proxy (capacity 40, refill
     10/s, as EC2 throttles each action): wall time against the bucket's limit, 1.25 × (routes −
     capacity) ÷ refill + 3 round trips, failed actions (must be 0), EC2 requests and throttled
     answers, BENCH_SCALE_RUNS runs each (default 2); and `awsha reconcile` in sync at 10, 200 and
     500 resources (BENCH_RECONCILE_SCALE; a route table per route, plus the address's ENI and
     the EIP): EC2 requests against the fewest that EC2's 200-filter-value limit and
     DescribeRouteTables' 100-table pages allow;
  6. IPv6 (issue 14): `awsha failover wan@3` in the integration tests' dual-stack world
     (awsha_scenario.build_dual_stack: 1 IPv6 address + ::/0, a /56 and a prefix-list route), with
     the peer holding the address (the usual failover: refused, unassigned there, assigned here)
     and with nobody holding it; wall time, EC2 round trips on the critical path (from the
     binary's own `timeline` in its JSON report, and from the proxy's log), requests per action;
     against the IPv4 failover of the same size (1 address + 3 routes in 3 tables).

Prints a summary table with the targets of issue 7 next to the figures, and writes
target/bench/summary.md (the same, as Markdown, with the machine it ran on), target/bench/
results.json (every run) and target/bench/timeline-*.txt. With --update-doc (BENCH_UPDATE_DOC=1
in `make bench`) it also replaces the generated block of docs/performance.md.

Run from the repository root (what `make bench` does):
    .venv/bin/python tests/bench/bench.py [--bin target/release/awsha] [--aws .venv-bench/bin/aws]
        [--runs 5] [--delay-ms 50] [--update-doc] [--only failover|reconcile|process|scale|ipv6]
Exit status: 0 when every run behaved (whether or not the targets are met: the table says),
1 when a run failed or did not move what it should. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for sub in ("tests/harness", "tests/integration", "tests/bench"):
    path = str(REPO / sub)
    if path not in sys.path:
        sys.path.insert(0, path)

from awsha_scenario import (  # noqa: E402
    ec2_client,
    READ_ONLY_PREFIXES, REGION, WAN_VIP, Cloud, DualStack, Emulator, Node, Proxy, Scenario,
    add_dual_stack, build_dual_stack, build_scenario, http_json, wan3_on, wan3_where,
)
from procs import ServerProcess  # noqa: E402

import gen_config  # noqa: E402

OUT_DIR = REPO / "target" / "bench"
DOC = REPO / "docs" / "performance.md"
DOC_BEGIN = "<!-- bench:begin (generated by tests/bench/bench.py --update-doc; do not edit) -->"
DOC_END = "<!-- bench:end -->"
VHID = "wan@1"
VHID6 = "wan@3"  # the dual-stack world's IPv6 CARP VIP (awsha_scenario.py "dual stack")
MIB = 1024 * 1024
# The scale case's token bucket for ReplaceRoute (issue 11): EC2's default is 50 + 5/s
# (docs/references.md §4); the issue measures against 40 + 10/s.
SCALE_BUCKET = {"capacity": 40, "refill": 10}
# EC2's filter values per request, and the awsha tag keys DescribeTags may filter on as well.
FILTER_LIMIT = 200
TAG_KEY_FILTERS = 5
# DescribeRouteTables answers at most 100 tables a page (MaxResults 5–100, EC2 API Reference):
# 101–200 table ids are two requests whether they go in one request (two pages, one after the
# other) or in two chunks sent at once (one round trip, what awsha does).
ROUTE_TABLES_PER_PAGE = 100


class BenchError(Exception):
    """A run failed or did not do what it should: the figures would mean nothing."""


# ---- running a process and measuring it ---------------------------------------------------------

@dataclass
class Measured:
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    wall_ms: float      # spawn to reaped, measured here
    t_start: float      # unix time just before the spawn (same clock as the servers' logs)
    t_end: float        # unix time when reaped
    maxrss_kb: int | None  # peak resident set (KiB) when measured with GNU time, else None
    stderr_lines: list[tuple[float, str]] = field(default_factory=list)  # (unix time, line)

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            return None

    def describe(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.code}\n--- stdout ---\n{self.stdout[-3000:]}"
                f"\n--- stderr ---\n{self.stderr[-3000:]}")


GNU_TIME = shutil.which("time", path="/usr/bin:/bin") or ""


def run_measured(argv: list[str], env: dict[str, str], cwd: Path | None = None,
                 stamp_stderr: bool = False, rss: bool = False, timeout: float = 120) -> Measured:
    """Run one process; wall time from spawn to reaped. With stamp_stderr, every stderr line is
    time-stamped as it arrives (for the -vv timelines). With rss, the peak RSS is measured by
    running it under GNU time (`/usr/bin/time -f %M`, about 1 ms more wall time, so such runs are
    kept out of the medians): ru_maxrss of a child forked from this Python process would start
    at Python's own ~90 MB (Linux carries the pre-exec high-water mark across execve)."""
    rss_file = None
    if rss and GNU_TIME:
        rss_file = tempfile.NamedTemporaryFile(prefix="bench-rss-", delete=False)
        rss_file.close()
        argv = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err_file:
        t_start = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=str(cwd) if cwd else None,
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.PIPE if stamp_stderr else err_file)
        lines: list[tuple[float, str]] = []
        reader = None
        if stamp_stderr:
            def read() -> None:
                assert proc.stderr is not None
                for raw in proc.stderr:
                    lines.append((time.time(), raw.decode("utf-8", "replace").rstrip("\n")))
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, _usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = (time.perf_counter() - t0) * 1000
        t_end = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if reader is not None:
            reader.join(timeout=5)
            assert proc.stderr is not None
            proc.stderr.close()
        out.seek(0)
        err_file.seek(0)
        stderr = "\n".join(l for _, l in lines) if stamp_stderr else err_file.read().decode(
            "utf-8", "replace")
        maxrss = None
        if rss_file is not None:
            # GNU time writes "Command exited with non-zero status N" first when it did.
            text = Path(rss_file.name).read_text().split()
            os.unlink(rss_file.name)
            maxrss = int(text[-1]) if text and text[-1].isdigit() else None
        return Measured(argv, proc.returncode, out.read().decode("utf-8", "replace"), stderr, wall,
                        t_start, t_end, maxrss, lines)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# ---- servers ------------------------------------------------------------------------------------

class Servers:
    def __init__(self, logs: Path, delay_ms: int, nodelay: bool = True):
        self.logs = logs
        self.delay_ms = delay_ms
        self.nodelay = ["--tcp-nodelay"] if nodelay else []
        self.started: list[ServerProcess] = []

    def start(self) -> None:
        self.moto = self._start(ServerProcess("moto_launcher.py", [], name="moto",
                                              log_path=self.logs / "moto.log"))
        self.proxy_proc = self._start(ServerProcess(
            "fault_proxy.py", ["--upstream", self.moto.url, "--delay-ms", str(self.delay_ms),
                               *self.nodelay],
            name="fault_proxy", log_path=self.logs / "proxy.log"))
        self.imds_procs = {n: self._start(ServerProcess(
            "imds_emulator.py", ["--ec2", self.moto.url, "--region", REGION, *self.nodelay],
            name=f"imds_{n}",
            log_path=self.logs / f"imds_{n}.log")) for n in ("A", "B")}
        self.proxy = Proxy(self.proxy_proc.url)
        self.imds = {n: Emulator(p.url) for n, p in self.imds_procs.items()}

    def _start(self, p: ServerProcess) -> ServerProcess:
        self.started.append(p)
        return p.start(timeout=90)

    def stop(self) -> None:
        for p in self.started:
            p.terminate()
        for p in reversed(self.started):
            p.stop()




# ---- the scenario, grown to a size --------------------------------------------------------------

@dataclass
class Size:
    ips: int
    routes: int
    eips: int
    failover: bool = True      # measure failover (and the CLI way) at this size
    reconcile: bool = True     # measure reconcile in sync at this size
    big_config: bool = False   # also failover with the rows inside a 5 MiB config.xml
    per_table: int = 10        # routes per route table
    name: str = ""             # the label, when not ips+routes+eips

    @property
    def label(self) -> str:
        return self.name or f"{self.ips}+{self.routes}+{self.eips}"

    @property
    def tables(self) -> int:
        return math.ceil(self.routes / self.per_table)

    @property
    def resources(self) -> int:
        """What reconcile reads tags of: the ENI (the addresses'), the route tables, the EIPs."""
        return (1 if self.ips else 0) + self.tables + self.eips

    @property
    def actions(self) -> int:
        return self.ips + self.routes + self.eips


@dataclass
class Layout:
    """The scenario plus the resources of one size: every row of wan@1."""
    scn: Scenario
    addrs: list[str]
    routes: list[tuple[str, str]]        # (route table, cidr)
    eips: list[tuple[str, str]]          # (allocation, private ip)


def route_cidr(k: int) -> str:
    """The k-th route's destination: 172.16.<k>.0/24 for the first 256, then 172.17.… (4096 in
    all, within 172.16.0.0/12)."""
    if not 0 <= k < 16 * 256:
        raise BenchError(f"no destination for route {k}")
    return f"172.{16 + k // 256}.{k % 256}.0/24"


def grow(ec2: Any, scn: Scenario, size: Size) -> Layout:
    """Add the size's addresses, routes and EIPs to the scenario, all on node B (the scenario's
    starting point): 10.0.1.10 (the CARP VIP) and 10.0.1.20… on B's wan ENI, routes route_cidr(k)
    in new route tables of `per_table` (ten by default), one EIP per address (the scenario's
    first)."""
    if size.eips > size.ips:
        raise BenchError("one EIP per address at most")
    addrs = [WAN_VIP] + [f"10.0.1.{20 + i}" for i in range(size.ips - 1)]
    if len(addrs) > 1:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=scn.eni[("B", "wan")],
                                        PrivateIpAddresses=addrs[1:], AllowReassignment=True)
    eips = [(scn.allocation, WAN_VIP)]
    for k in range(1, size.eips):
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=scn.eni[("B", "wan")],
                              PrivateIpAddress=addrs[k], AllowReassociation=True)
        eips.append((alloc, addrs[k]))
    eips = eips[:size.eips]
    # Hundreds of tables for the scale sizes: eight requests at a time, in a fixed order.
    with ThreadPoolExecutor(8) as pool:
        tables = list(pool.map(
            lambda _: ec2.create_route_table(VpcId=scn.vpc)["RouteTable"]["RouteTableId"],
            range(size.tables)))
        routes = [(tables[k // size.per_table], route_cidr(k)) for k in range(size.routes)]
        list(pool.map(lambda tc: ec2.create_route(RouteTableId=tc[0], DestinationCidrBlock=tc[1],
                                                  NetworkInterfaceId=scn.eni[("B", "lan")]),
                      routes))
    return Layout(scn, addrs, routes, eips)


def configure(node: Node, lay: Layout) -> None:
    """wan@1's rows of this size, and nothing else (lan@2 has none), in the node's config.xml."""
    node.config.ips = [{"vhid": VHID, "interface": "wan", "ipaddr": a, "xmlrpcsync": "on"}
                       for a in lay.addrs]
    node.config.routes = [{"vhid": VHID, "routetable": t, "cidr": c, "interface": "lan",
                           "xmlrpcsync": "on"} for t, c in lay.routes]
    node.config.eips = [{"vhid": VHID, "allocationid": a, "interface": "wan", "privateip": ip,
                         "xmlrpcsync": "on"} for a, ip in lay.eips]
    node.write_config()


def where(ec2: Any, lay: Layout) -> dict[str, Any]:
    """Where every resource of the layout points now, straight from moto."""
    holders: dict[str, list[str]] = {}
    for e in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        for a in e.get("PrivateIpAddresses", []):
            holders.setdefault(a["PrivateIpAddress"], []).append(e["NetworkInterfaceId"])
    tables = sorted({t for t, _ in lay.routes})
    targets: dict[tuple[str, str], str | None] = {}
    if tables:
        for rt in ec2.describe_route_tables(RouteTableIds=tables)["RouteTables"]:
            for r in rt.get("Routes", []):
                targets[(rt["RouteTableId"], r.get("DestinationCidrBlock", ""))] = r.get(
                    "NetworkInterfaceId")
    assoc = {a["AllocationId"]: (a.get("NetworkInterfaceId") or None,
                                 a.get("PrivateIpAddress") or None)
             for a in ec2.describe_addresses(AllocationIds=[a for a, _ in lay.eips])["Addresses"]}
    return {"ips": {ip: sorted(holders.get(ip, [])) for ip in lay.addrs},
            "routes": {f"{t} {c}": targets.get((t, c)) for t, c in lay.routes},
            "eips": {a: list(assoc.get(a, (None, None))) for a, _ in lay.eips}}


def expected(lay: Layout, node: str) -> dict[str, Any]:
    wan, lan = lay.scn.eni[(node, "wan")], lay.scn.eni[(node, "lan")]
    return {"ips": {ip: [wan] for ip in lay.addrs},
            "routes": {f"{t} {c}": lan for t, c in lay.routes},
            "eips": {a: [wan, ip] for a, ip in lay.eips}}


def check_on(ec2: Any, lay: Layout, node: str, what: str) -> None:
    now, want = where(ec2, lay), expected(lay, node)
    if now != want:
        wrong = {k: {r: v for r, v in now[k].items() if want[k][r] != v} for k in now}
        raise BenchError(f"{what}: not everything points at node {node}: "
                         f"{json.dumps({k: v for k, v in wrong.items() if v})[:2000]}")


def bucket_limit_s(routes: int, capacity: float = SCALE_BUCKET["capacity"],
                   refill: float = SCALE_BUCKET["refill"]) -> float:
    """Issue 11's bound for `routes` ReplaceRoutes through a token bucket: 1.25 × the time the
    bucket needs to let them all through (the burst goes at once, the rest at the refill rate);
    round trips are added by the caller."""
    return 1.25 * max(0.0, routes - capacity) / refill


def min_reconcile_requests(tables: int, resources: int, allocations: int = 1) -> int:
    """The fewest EC2 requests a reconcile in sync can make with at most FILTER_LIMIT values per
    request: DescribeRouteTables by table id (and at most ROUTE_TABLES_PER_PAGE tables a page),
    DescribeTags by resource id (plus the awsha tag keys), DescribeAddresses by allocation id."""
    per = lambda n, room: math.ceil(n / room) if n else 0  # noqa: E731
    return (per(tables, min(FILTER_LIMIT, ROUTE_TABLES_PER_PAGE))
            + per(resources, FILTER_LIMIT - TAG_KEY_FILTERS) + per(allocations, FILTER_LIMIT))


# ---- request logs -> where the time goes ---------------------------------------------------------

def ec2_entries(proxy: Proxy) -> list[dict[str, Any]]:
    return [e for e in proxy.log() if " " not in e["action"]]


def imds_entries(emu: Emulator) -> list[dict[str, Any]]:
    return http_json(f"{emu.url}/_emulator/log")


def depth(intervals: list[tuple[float, float]]) -> int:
    """Round trips on the critical path: the longest chain of requests each sent after the
    previous one was answered."""
    ordered = sorted(intervals)
    chain: list[int] = []
    for i, (start, _) in enumerate(ordered):
        before = [chain[j] for j in range(i) if ordered[j][1] <= start]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


def timeline_round_trips(events: list[dict[str, Any]]) -> int:
    """EC2 round trips in sequence from the binary's own `timeline` (docs/contracts.md §13:
    `{"at_ms", "event"}` in the order they happened, "<Action> sent", "<Action> answered[ <code>]"): a request
    is one round trip deeper than the deepest request answered before it was sent (the same rule
    as depth(), from the process's side; a request's answer is matched to the oldest outstanding
    request of its action). The list's order is used, not `at_ms`, whose resolution is 1 ms."""
    outstanding: dict[str, list[int]] = {}
    answered_depth = deepest = 0
    for e in events:
        event = str(e.get("event", ""))
        if event.endswith(" sent"):
            d = answered_depth + 1
            outstanding.setdefault(event[:-len(" sent")], []).append(d)
            deepest = max(deepest, d)
        elif " answered" in event:
            queue = outstanding.get(event.split(" answered", 1)[0])
            if queue:
                answered_depth = max(answered_depth, queue.pop(0))
    return deepest


def timeline_ec2_ms(events: list[dict[str, Any]]) -> float:
    """First EC2 request sent → last EC2 answer, from the binary's timeline (ms)."""
    at = [float(e["at_ms"]) for e in events
          if str(e.get("event", "")).endswith(" sent") or " answered" in str(e.get("event", ""))]
    return max(at) - min(at) if at else 0.0


def busy(intervals: list[tuple[float, float]]) -> float:
    """Time (s) during which at least one request was outstanding."""
    total, end = 0.0, -math.inf
    for s, e in sorted(intervals):
        if s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


@dataclass
class Phases:
    """Where one run's wall time went (ms), from the servers' request logs. The waterfall:
    wall = to_imds + imds_phase + imds_to_ec2 + ec2_phase + after_ec2 (a run without IMDS or EC2
    requests puts its time in the first phase it lacks)."""
    wall: float
    to_imds: float           # spawn → first IMDS request: process start, config.xml, ifconfig
    imds_phase: float        # first IMDS request → last IMDS answer before any EC2 request
    imds_requests: int
    imds_busy: float         # time with an IMDS request outstanding
    imds_to_ec2: float       # last IMDS answer → first EC2 request: SDK set-up, signing
    ec2_phase: float         # first EC2 request → last EC2 answer
    ec2_requests: int
    ec2_depth: int           # EC2 round trips in sequence (critical path)
    ec2_busy: float          # time with an EC2 request outstanding (delay + moto + proxy)
    ec2_beyond_delay: float  # ec2_busy − ec2_depth × delay: moto and the proxy, on the path
    ec2_gaps: float          # inside the EC2 phase, time with no EC2 request outstanding
    after_ec2: float         # last EC2 answer → process reaped: report, exit
    own: float               # wall − ec2_busy − imds_busy: awsha's own time (and the spawn)

    def row(self) -> dict[str, float]:
        return self.__dict__


def phases(m: Measured, ec2_log: list[dict[str, Any]], imds_log: list[dict[str, Any]],
           delay_ms: int) -> Phases:
    ms = lambda a, b: max(0.0, (b - a) * 1000)  # noqa: E731
    ec2_iv = sorted((e["t"], e["t"] + e["ms"] / 1000) for e in ec2_log)
    imds_all = sorted((e["t"], e["t"] + e["ms"] / 1000) for e in imds_log
                      if m.t_start <= e["t"] <= m.t_end)
    first_ec2 = ec2_iv[0][0] if ec2_iv else m.t_end
    last_ec2 = max((e for _, e in ec2_iv), default=m.t_end)
    imds_iv = [iv for iv in imds_all if iv[0] < first_ec2]
    first_imds = imds_iv[0][0] if imds_iv else first_ec2
    last_imds = max((e for _, e in imds_iv), default=first_imds)
    eb = busy(ec2_iv) * 1000
    ib = busy(imds_all) * 1000
    d = depth(ec2_iv)
    return Phases(
        wall=m.wall_ms, to_imds=ms(m.t_start, first_imds), imds_phase=ms(first_imds, last_imds),
        imds_requests=len(imds_all), imds_busy=ib, imds_to_ec2=ms(last_imds, first_ec2),
        ec2_phase=ms(first_ec2, last_ec2), ec2_requests=len(ec2_iv), ec2_depth=d, ec2_busy=eb,
        ec2_beyond_delay=eb - d * delay_ms,
        ec2_gaps=max(0.0, ms(first_ec2, last_ec2) - eb) if ec2_iv else 0.0,
        after_ec2=ms(last_ec2, m.t_end) if ec2_iv else 0.0, own=m.wall_ms - eb - ib)


def timeline(m: Measured, ec2_log: list[dict[str, Any]], imds_log: list[dict[str, Any]]) -> str:
    """Every event of one run, in order, in ms since the spawn: stderr lines (-vv), IMDS and EC2
    requests (sent → answered)."""
    events: list[tuple[float, str]] = [(m.t_start, "spawn")]
    for t, line in m.stderr_lines:
        events.append((t, f"stderr  {line[:150]}"))
    for e in imds_log:
        if m.t_start <= e["t"] <= m.t_end:
            events.append((e["t"], f"IMDS →  {e['method']} {e['path']}"))
            events.append((e["t"] + e["ms"] / 1000, f"IMDS ←  {e['status']} {e['path']} "
                                                    f"({e['ms']:.1f} ms)"))
    for e in ec2_log:
        extra = e["params"].get("RouteTableId") or e["params"].get("AllocationId") or ""
        events.append((e["t"], f"EC2  →  {e['action']} {extra}"))
        events.append((e["t"] + e["ms"] / 1000, f"EC2  ←  {e['status']} {e['action']} {extra} "
                                                f"({e['ms']} ms)"))
    events.append((m.t_end, f"reaped (exit {m.code})"))
    events.sort(key=lambda x: x[0])
    return "\n".join(f"{(t - m.t_start) * 1000:8.1f} ms  {what}" for t, what in events) + "\n"


# ---- the bench ----------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, servers: Servers, work: Path):
        self.args = args
        self.servers = servers
        self.work = work
        self.proxy = servers.proxy
        self.ec2 = ec2_client(servers.moto.url, read_timeout=60)
        self.delay = args.delay_ms
        self.results: dict[str, Any] = {"failover": {}, "cli": {}, "reconcile": {}, "process": {},
                                        "rss": {}, "scale": {}, "ipv6": {}}

    def say(self, text: str) -> None:
        print(text, flush=True)

    # -- one awsha run ---------------------------------------------------------------------------
    def awsha(self, node: Node, *args: str, stamp: bool = False, rss: bool = False,
              proxy_settings: dict[str, Any] | None = None,
              ) -> tuple[Measured, Phases, list, list]:
        """Run the binary as `node` with a fresh IMDS snapshot and clean request logs (and the
        proxy settings given, e.g. a token bucket, applied after the proxy's reset)."""
        self.proxy.reset()  # counts and log cleared; the delay stays --delay-ms
        if proxy_settings:
            self.proxy.configure(**proxy_settings)
        # The emulator's reset clears its log and turns the cache off: reset, re-target, snapshot.
        node.imds.reset()
        node.imds.configure(node.instance_id, REGION)
        http_json(f"{node.imds.url}/_emulator/config", {"cache": True})
        m = run_measured([str(self.args.bin), *args], node.env(), cwd=node.dir, stamp_stderr=stamp,
                         rss=rss, timeout=180)
        ec2_log = ec2_entries(self.proxy)
        imds_log = imds_entries(node.imds)
        return m, phases(m, ec2_log, imds_log, self.delay), ec2_log, imds_log

    def rss(self, what: str, m: Measured) -> None:
        if m.maxrss_kb is not None:
            self.results["rss"][what] = max(self.results["rss"].get(what, 0), m.maxrss_kb)

    def set_master(self, nodes: dict[str, Node], master: str) -> None:
        for name, node in nodes.items():
            node.set_carp(1, state="MASTER" if name == master else "BACKUP")

    # -- a size: scenario, failover, CLI, reconcile ----------------------------------------------
    def setup(self, size: Size, ami: str) -> tuple[Layout, dict[str, Node]]:
        """A fresh moto with the scenario grown to `size`, both nodes configured for it."""
        req = urllib.request.Request(f"{self.servers.moto.url}/moto-api/reset", data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=60):
            pass
        scn = build_scenario(self.ec2, ami)
        lay = grow(self.ec2, scn, size)
        nodes: dict[str, Node] = {}
        slug = "".join(c if c.isalnum() or c in "+-" else "_" for c in size.label)
        for name in ("A", "B"):
            emu = self.servers.imds[name]
            emu.reset()
            emu.configure(scn.instance[name], REGION)
            nodes[name] = Node(name, self.work / slug / f"node-{name.lower()}", scn, emu,
                               self.proxy.url)
            configure(nodes[name], lay)
        check_on(self.ec2, lay, "B", "set-up")
        return lay, nodes

    def size(self, size: Size, ami: str) -> None:
        self.say(f"\n== {size.label} ({size.actions} actions)")
        lay, nodes = self.setup(size, ami)

        if size.failover:
            self.failover_and_cli(size, lay, nodes)
        if size.reconcile:
            self.reconcile(size, lay, nodes)

    def failover_once(self, size: Size, lay: Layout, nodes: dict[str, Node], to: str,
                      stamp: bool = False) -> tuple[Measured, Phases, list, list]:
        self.set_master(nodes, to)
        # The -vv run (the timeline, not in the medians) also measures the peak RSS.
        m, ph, ec2_log, imds_log = self.awsha(nodes[to], "failover", VHID, "--json",
                                              *(["-vv"] if stamp else []), stamp=stamp, rss=stamp)
        rep = m.json()
        if m.code != 0 or not isinstance(rep, dict):
            raise BenchError(f"failover {size.label} on {to} failed\n{m.describe()}")
        statuses = [a["status"] for a in rep.get("actions", [])]
        if len(statuses) != size.actions or any(s != "changed" for s in statuses):
            raise BenchError(f"failover {size.label} on {to}: expected {size.actions} changed "
                             f"actions, got {statuses}\n{m.describe()}")
        check_on(self.ec2, lay, to, f"failover {size.label} on {to}")
        self.rss(f"failover {size.label}", m)
        return m, ph, ec2_log, imds_log

    def failover_and_cli(self, size: Size, lay: Layout, nodes: dict[str, Node]) -> None:
        runs, cli_runs = self.args.runs, self.args.cli_runs
        # Untimed warm-up (page cache, moto's first requests): everything to A.
        self.failover_once(size, lay, nodes, "A")
        # One -vv run with time-stamped stderr, for the timeline (not in the medians): back to B.
        m, vv, ec2_log, imds_log = self.failover_once(size, lay, nodes, "B", stamp=True)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUT_DIR / f"timeline-failover-{size.label}.txt").write_text(
            f"awsha failover {VHID} -vv, {size.label}, EC2 delay {self.delay} ms, "
            f"wall {m.wall_ms:.1f} ms\n" + timeline(m, ec2_log, imds_log))
        awsha_runs: list[Phases] = []
        counts: list[dict[str, int]] = []
        cli_walls: list[float] = []
        cli_counts: list[int] = []
        # State is on B. Each round: awsha → A, awsha → B, then the CLI → A, → B (as many CLI
        # rounds as asked): every run moves everything.
        for r in range(runs):
            for to in ("A", "B"):
                m, ph, ec2_log, _ = self.failover_once(size, lay, nodes, to)
                awsha_runs.append(ph)
                c: dict[str, int] = {}
                for e in ec2_log:
                    c[e["action"]] = c.get(e["action"], 0) + 1
                counts.append(c)
                self.say(f"   failover → {to}: {m.wall_ms:7.1f} ms, {ph.ec2_requests} EC2 requests, "
                         f"{ph.ec2_depth} round trips")
            if r < cli_runs:
                for to in ("A", "B"):
                    wall, n = self.cli_move(size, lay, to)
                    cli_walls.append(wall)
                    cli_counts.append(n)
                    self.say(f"   aws CLI  → {to}: {wall:7.1f} ms, {n} EC2 requests")
        self.record_failover(size, size.label, awsha_runs, counts, vv)
        if size.big_config:
            self.failover_big_config(size, lay, nodes)
        if cli_walls:
            self.results["cli"][size.label] = {
                "runs": len(cli_walls), "wall_ms": cli_walls, "median_ms": median(cli_walls),
                "requests": cli_counts, "calls": cli_counts[0]}

    def record_failover(self, size: Size, label: str, runs: list[Phases],
                        counts: list[dict[str, int]], vv: Phases | None) -> None:
        walls = [p.wall for p in runs]
        self.results["failover"][label] = {
            "actions": size.actions, "runs": len(walls), "wall_ms": walls,
            "beyond_delay_ms": [p.ec2_beyond_delay for p in runs],
            "median_ms": median(walls), "min_ms": min(walls), "max_ms": max(walls),
            "requests": counts,
            "median_phases": {k: median([p.row()[k] for p in runs]) for k in runs[0].row()},
            "vv_run": vv.row() if vv else None}

    def failover_big_config(self, size: Size, lay: Layout, nodes: dict[str, Node]) -> None:
        """The same failover with the same rows inside a 5 MiB config.xml (the size of a busy
        firewall's): what parsing it costs on the critical path."""
        label = f"{size.label}, 5 MiB config.xml"
        for node in nodes.values():
            node.write_raw_config(gen_config.pad_config(node.config.render(), 5 * MIB))
        self.failover_once(size, lay, nodes, "A")  # warm-up (page cache)
        runs: list[Phases] = []
        counts: list[dict[str, int]] = []
        for _ in range(self.args.runs):
            for to in ("B", "A"):
                m, ph, ec2_log, _ = self.failover_once(size, lay, nodes, to)
                runs.append(ph)
                c: dict[str, int] = {}
                for e in ec2_log:
                    c[e["action"]] = c.get(e["action"], 0) + 1
                counts.append(c)
                self.say(f"   failover → {to} (5 MiB config.xml): {m.wall_ms:7.1f} ms")
        # The RSS of a failover that parses 5 MiB (one more run, under GNU time), then back to B.
        self.set_master(nodes, "B")
        m, _, _, _ = self.awsha(nodes["B"], "failover", VHID, "--json", rss=True)
        if m.code != 0:
            raise BenchError(f"failover {label} failed\n{m.describe()}")
        check_on(self.ec2, lay, "B", f"failover {label}")
        self.rss(f"failover {label}", m)
        self.record_failover(size, label, runs, counts, None)
        for node in nodes.values():
            node.write_config()

    # -- the usual way ---------------------------------------------------------------------------
    def cli_move(self, size: Size, lay: Layout, to: str) -> tuple[float, int]:
        """One `aws ec2` call after another, as a shell script would do it."""
        scn = lay.scn
        wan, lan = scn.eni[(to, "wan")], scn.eni[(to, "lan")]
        calls: list[list[str]] = []
        for ip in lay.addrs:
            calls.append(["assign-private-ip-addresses", "--network-interface-id", wan,
                          "--private-ip-addresses", ip, "--allow-reassignment"])
        for table, cidr in lay.routes:
            calls.append(["replace-route", "--route-table-id", table, "--destination-cidr-block",
                          cidr, "--network-interface-id", lan])
        for alloc, ip in lay.eips:
            calls.append(["associate-address", "--allocation-id", alloc, "--network-interface-id",
                          wan, "--private-ip-address", ip, "--allow-reassociation"])
        resources = [wan] + sorted({t for t, _ in lay.routes}) + [a for a, _ in lay.eips]
        modified = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        calls.append(["create-tags", "--resources", *resources, "--tags",
                      f"Key=awsha:modified,Value={modified}", "Key=awsha:advbase,Value=1",
                      f"Key=awsha:advskew,Value={0 if to == 'A' else 100}",
                      f"Key=awsha:instance,Value={scn.instance[to]}", f"Key=awsha:vhid,Value={VHID}"])
        home = self.work / "cli-home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": str(home / "config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "HOME": str(home)})
        self.proxy.reset()
        t0 = time.perf_counter()
        for call in calls:
            argv = [str(self.args.aws), "--endpoint-url", self.proxy.url, "--output", "json",
                    "ec2", *call]
            p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=120)
            if p.returncode != 0:
                raise BenchError(f"aws CLI failed: {' '.join(argv)}\n{p.stdout}\n{p.stderr}")
        wall = (time.perf_counter() - t0) * 1000
        n = len(ec2_entries(self.proxy))
        check_on(self.ec2, lay, to, f"aws CLI {size.label} to {to}")
        return wall, n

    # -- reconcile in sync -----------------------------------------------------------------------
    def reconcile(self, size: Size, lay: Layout, nodes: dict[str, Node]) -> None:
        # A clean failover to B first (untimed), so B's tags are on everything and nothing drifted.
        self.failover_once(size, lay, nodes, "B")
        node = nodes["B"]
        runs: list[Phases] = []
        reads: list[dict[str, int]] = []
        m = None
        for i in range(self.args.runs + 1):
            m, ph, ec2_log, imds_log = self.awsha(node, "reconcile", "--json", stamp=(i == 0),
                                                  rss=(i == 0))
            rep = m.json()
            if m.code != 0 or not isinstance(rep, dict):
                raise BenchError(f"reconcile {size.label} failed\n{m.describe()}")
            changed = [a for a in rep.get("actions", []) if a["status"] != "unchanged"]
            mutating = [e["action"] for e in ec2_log if not e["action"].startswith(
                READ_ONLY_PREFIXES)]
            if changed or mutating:
                raise BenchError(f"reconcile {size.label} in sync changed something: "
                                 f"{changed[:3]} {mutating}\n{m.describe()}")
            self.rss(f"reconcile {size.label}", m)
            c: dict[str, int] = {}
            for e in ec2_log:
                c[e["action"]] = c.get(e["action"], 0) + 1
            if i == 0:  # the first one is the warm-up, the timeline and the RSS run
                (OUT_DIR / f"timeline-reconcile-{size.label}.txt").write_text(
                    f"awsha reconcile, {size.label} in sync, EC2 delay {self.delay} ms, "
                    f"wall {m.wall_ms:.1f} ms\n" + timeline(m, ec2_log, imds_log))
                continue
            runs.append(ph)
            reads.append(c)
            self.say(f"   reconcile: {m.wall_ms:7.1f} ms, {ph.ec2_requests} EC2 requests "
                     f"({', '.join(f'{k} {v}' for k, v in sorted(c.items()))}), "
                     f"{ph.ec2_depth} round trips")
        walls = [p.wall for p in runs]
        self.results["reconcile"][size.label] = {
            "actions": size.actions, "runs": len(walls), "wall_ms": walls,
            "median_ms": median(walls), "requests": reads,
            "max_requests": max(sum(c.values()) for c in reads),
            "resources": size.resources,
            # issue 7: ≤ 4 requests; beyond, the fewest EC2's filter and page limits allow
            "target_requests": max(4, min_reconcile_requests(size.tables, size.resources,
                                                             size.eips)),
            "median_phases": {k: median([p.row()[k] for p in runs]) for k in runs[0].row()}}

    # -- scale: failover behind a token bucket --------------------------------------------------
    def scale(self, routes: int, ami: str) -> None:
        """Failover of `routes` route tables (one route each, plus wan@1's address and EIP) with
        ReplaceRoute behind SCALE_BUCKET. Failed actions are a finding, not a broken bench: they
        are recorded (and the table says NOT MET), the state is checked only when none failed."""
        size = Size(1, routes, 1, per_table=1, name=f"{routes} route tables")
        self.say(f"\n== scale: {size.label} behind a ReplaceRoute bucket "
                 f"({SCALE_BUCKET['capacity']}, {SCALE_BUCKET['refill']}/s)")
        lay, nodes = self.setup(size, ami)
        limit_ms = (bucket_limit_s(routes) * 1000) + 3 * self.delay
        settings = {"buckets": {"ReplaceRoute": dict(SCALE_BUCKET)}}
        # Enough deadline for the bucket (the default 30 s covers 200 routes at this rate).
        deadline = max(30, math.ceil(bucket_limit_s(routes) * 1.5 + 10))
        runs: list[dict[str, Any]] = []
        to = "A"
        for _ in range(self.args.scale_runs):
            self.set_master(nodes, to)
            m, ph, ec2_log, _ = self.awsha(nodes[to], "--deadline", str(deadline), "failover",
                                           VHID, "--json", proxy_settings=settings)
            rep = m.json()
            if not isinstance(rep, dict) or m.code not in (0, 1):
                raise BenchError(f"scale failover {size.label} on {to} broke\n{m.describe()}")
            acts = rep.get("actions", [])
            failed = [a for a in acts if a["status"] == "failed"]
            if len(acts) != size.actions:
                raise BenchError(f"scale failover {size.label}: {len(acts)} actions, expected "
                                 f"{size.actions}\n{m.describe()}")
            if not failed:
                check_on(self.ec2, lay, to, f"scale failover {size.label} on {to}")
            counts: dict[str, int] = {}
            for e in ec2_log:
                counts[e["action"]] = counts.get(e["action"], 0) + 1
            throttled = http_json(f"{self.proxy.url}/_proxy/throttled")
            run = {"node": to, "wall_ms": m.wall_ms, "exit": m.code, "failed": len(failed),
                   "failed_example": failed[0].get("error", "") if failed else "",
                   "requests": counts, "ec2_requests": ph.ec2_requests,
                   "throttled": throttled.get("ReplaceRoute", 0),
                   "budget_notice": any(str(n.get("key", "")).startswith("budget:")
                                        for n in rep.get("notices", []))}
            runs.append(run)
            self.say(f"   failover → {to}: {m.wall_ms / 1000:6.1f} s (limit "
                     f"{limit_ms / 1000:.1f} s), {len(failed)} failed, {ph.ec2_requests} EC2 "
                     f"requests, {run['throttled']} throttled")
            if failed:
                # What did move is now split between A and B: start the next run from a clean
                # state (everything to B without the bucket) so each run moves everything.
                self.set_master(nodes, "B")
                m, _, _, _ = self.awsha(nodes["B"], "--deadline", str(deadline), "failover",
                                        VHID, "--json")
                if m.code != 0:
                    raise BenchError(f"scale: reset to B failed\n{m.describe()}")
                to = "A"
            else:
                to = "B" if to == "A" else "A"
        walls = [r["wall_ms"] for r in runs]
        self.results["scale"][size.label] = {
            "routes": routes, "bucket": dict(SCALE_BUCKET), "limit_ms": limit_ms,
            "deadline_s": deadline, "runs": runs, "median_ms": median(walls),
            "max_ms": max(walls), "failed": max(r["failed"] for r in runs),
            "ec2_requests": median([r["ec2_requests"] for r in runs]),
            "throttled": median([r["throttled"] for r in runs])}

    # -- IPv6: the move EC2 makes without reassignment (issue 14) --------------------------------
    def move_run(self, m: Measured, ph: Phases, ec2_log: list[dict[str, Any]]) -> dict[str, Any]:
        """One timed failover: wall, round trips (binary's timeline and proxy log), requests."""
        rep = m.json() or {}
        events = rep.get("timeline") or []
        counts: dict[str, int] = {}
        for e in ec2_log:
            counts[e["action"]] = counts.get(e["action"], 0) + 1
        return {"wall_ms": m.wall_ms, "rt_timeline": timeline_round_trips(events),
                "rt_proxy": ph.ec2_depth, "ec2_ms_timeline": timeline_ec2_ms(events),
                "beyond_delay_ms": ph.ec2_beyond_delay, "requests": counts,
                "phases": ph.row(), "timeline": events}

    def record_moves(self, label: str, runs: list[dict[str, Any]], expect_rt: int,
                     what: str) -> None:
        walls = [r["wall_ms"] for r in runs]
        self.results["ipv6"][label] = {
            "what": what, "runs": len(runs), "wall_ms": walls, "median_ms": median(walls),
            "min_ms": min(walls), "max_ms": max(walls),
            "adjusted_ms": median([r["wall_ms"] - r["beyond_delay_ms"] for r in runs]),
            "rt_timeline": sorted({r["rt_timeline"] for r in runs}),
            "rt_proxy": sorted({r["rt_proxy"] for r in runs}), "expect_rt": expect_rt,
            "ec2_ms_timeline": median([r["ec2_ms_timeline"] for r in runs]),
            "requests": runs[0]["requests"],
            "requests_vary": any(r["requests"] != runs[0]["requests"] for r in runs),
            "median_phases": {k: median([r["phases"][k] for r in runs])
                              for k in runs[0]["phases"]},
            "example_timeline": runs[0]["timeline"]}
        rts = self.results["ipv6"][label]
        self.say(f"   {label}: median {median(walls):6.1f} ms, round trips {rts['rt_timeline']} "
                 f"(timeline) / {rts['rt_proxy']} (proxy), "
                 f"{', '.join(f'{k} {v}' for k, v in sorted(runs[0]['requests'].items()))}")

    def write_move_timeline(self, name: str, m: Measured, ec2_log: list[dict[str, Any]],
                            imds_log: list[dict[str, Any]], title: str) -> None:
        events = (m.json() or {}).get("timeline") or []
        binary = "".join(f"{e['at_ms']:8} ms  {e['event']}\n" for e in events)
        (OUT_DIR / f"timeline-{name}.txt").write_text(
            f"{title}, EC2 delay {self.delay} ms, wall {m.wall_ms:.1f} ms\n"
            f"-- the proxy's and the IMDS emulator's logs (ms since spawn) --\n"
            + timeline(m, ec2_log, imds_log)
            + "-- the binary's report `timeline` (ms since its start) --\n" + binary)

    def ipv6(self, ami: str) -> None:
        """issue 14 point 1: `awsha failover wan@3` (1 IPv6 address + ::/0, a /56 and a prefix-list
        route) with the peer holding the address and with nobody holding it, and the IPv4 failover
        of the same size (1 address + 3 routes in 3 tables) for comparison; BENCH_RUNS rounds of
        A then B each, checked in moto after every run."""
        runs_n = self.args.runs
        OUT_DIR.mkdir(parents=True, exist_ok=True)

        self.say("\n== IPv4 reference: 1 address + 3 routes (3 tables), wan@1")
        ref = Size(1, 3, 0, per_table=1, name="IPv4 1+3")
        lay, nodes = self.setup(ref, ami)
        self.failover_once(ref, lay, nodes, "A")  # warm-up
        runs = []
        for r in range(runs_n):
            for to in ("B", "A"):
                m, ph, ec2_log, imds_log = self.failover_once(ref, lay, nodes, to)
                runs.append(self.move_run(m, ph, ec2_log))
                if r == 0 and to == "B":
                    self.write_move_timeline("failover-ipv4-1+3", m, ec2_log, imds_log,
                                             "awsha failover wan@1, 1 IPv4 address + 3 routes")
        self.record_moves("IPv4 1 address + 3 routes, peer holds it", runs, 2,
                          "AssignPrivateIpAddresses (reassignment) with the 3 ReplaceRoutes → "
                          "CreateTags")

        self.say("\n== IPv6: wan@3 in the dual-stack world (1 IPv6 address + 3 routes)")
        req = urllib.request.Request(f"{self.servers.moto.url}/moto-api/reset", data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=60):
            pass
        scn = build_scenario(self.ec2, ami)
        ds = build_dual_stack(self.ec2, scn)
        cloud = Cloud(self.ec2)
        nodes = {}
        for name in ("A", "B"):
            emu = self.servers.imds[name]
            emu.reset()
            emu.configure(scn.instance[name], REGION)
            nodes[name] = Node(name, self.work / "ipv6" / f"node-{name.lower()}", scn, emu,
                               self.proxy.url)
            add_dual_stack(nodes[name], ds)
        if wan3_where(cloud, scn, ds) != wan3_on(scn, "B"):
            raise BenchError(f"dual-stack set-up: {wan3_where(cloud, scn, ds)}")

        Logs = list[dict[str, Any]]

        def move(to: str) -> tuple[Measured, Phases, Logs, Logs]:
            for name, node in nodes.items():
                state = "MASTER" if name == to else "BACKUP"
                node.set_carp(3, state=state)
                node.set_carp(1, state=state)
            m, ph, ec2_log, imds_log = self.awsha(nodes[to], "failover", VHID6, "--json")
            rep = m.json()
            if m.code != 0 or not isinstance(rep, dict):
                raise BenchError(f"failover {VHID6} on {to} failed\n{m.describe()}")
            statuses = [a["status"] for a in rep.get("actions", []) if a["vhid"] == VHID6]
            if statuses != ["changed"] * 4:
                raise BenchError(f"failover {VHID6} on {to}: expected 4 changed actions, got "
                                 f"{statuses}\n{m.describe()}")
            now = wan3_where(cloud, scn, ds)
            if now != wan3_on(scn, to):
                raise BenchError(f"failover {VHID6} on {to}: {now} after\n{m.describe()}")
            return m, ph, ec2_log, imds_log

        move("A")  # warm-up (and the state is on A)
        held, unheld = [], []
        for r in range(runs_n):
            for to in ("B", "A"):
                m, ph, ec2_log, imds_log = move(to)  # the peer holds the address
                held.append(self.move_run(m, ph, ec2_log))
                if r == 0 and to == "B":
                    self.write_move_timeline("failover-ipv6-held", m, ec2_log, imds_log,
                                             f"awsha failover {VHID6}, the peer holds the address")
        # Nobody holds it: taken off the holder straight in moto (not through the proxy) before
        # each run; the routes still point at the peer, so they move too.
        for r in range(runs_n):
            for to in ("B", "A"):
                peer = "A" if to == "B" else "B"
                self.ec2.unassign_ipv6_addresses(NetworkInterfaceId=scn.eni[(peer, "wan")],
                                                 Ipv6Addresses=[ds.vip6])
                if cloud.ipv6_holders(ds.vip6):
                    raise BenchError(f"{ds.vip6} still held: {cloud.ipv6_holders(ds.vip6)}")
                m, ph, ec2_log, imds_log = move(to)
                unheld.append(self.move_run(m, ph, ec2_log))
                if r == 0 and to == "B":
                    self.write_move_timeline("failover-ipv6-unheld", m, ec2_log, imds_log,
                                             f"awsha failover {VHID6}, nobody holds the address")
        self.record_moves("IPv6 1 address + 3 routes, peer holds it", held, 4,
                          "AssignIpv6Addresses ∥ DescribeNetworkInterfaces (∥ the 3 "
                          "ReplaceRoutes) → UnassignIpv6Addresses at the peer → "
                          "AssignIpv6Addresses → CreateTags")
        self.record_moves("IPv6 1 address + 3 routes, nobody holds it", unheld, 2,
                          "AssignIpv6Addresses ∥ DescribeNetworkInterfaces (∥ the 3 "
                          "ReplaceRoutes) → CreateTags")

    # -- process cost ----------------------------------------------------------------------------
    def process(self) -> None:
        self.say("\n== process cost (no network)")
        big = self.work / "config-5MiB.xml"
        text, contents = gen_config.generate(5 * MIB)
        big.write_bytes(text.encode())
        small_dir = self.work / "1+1+1" / "node-a"
        small = small_dir / "config.xml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AWSHA_"))}
        env["AWSHA_NO_SYSLOG"] = "1"
        out: dict[str, Any] = {"config_bytes": len(text.encode()), "config_contents": contents}
        cases = [("version", ["--version"]), ("validate small", ["--config", str(small), "validate"]),
                 ("validate 5 MiB", ["--config", str(big), "validate"])]
        for label, args in cases:
            walls, rss = [], []
            for i in range(self.args.parse_runs + 4):
                # run 0: warm-up (page cache); then the timed runs; the last 3 under GNU time
                measure_rss = i > self.args.parse_runs
                m = run_measured([str(self.args.bin), *args], env, rss=measure_rss)
                if m.code != 0:
                    raise BenchError(f"{label} failed\n{m.describe()}")
                if measure_rss:
                    if m.maxrss_kb is not None:
                        rss.append(m.maxrss_kb)
                elif i > 0:
                    walls.append(m.wall_ms)
            out[label] = {"median_ms": median(walls), "min_ms": min(walls), "max_ms": max(walls),
                          "maxrss_kb": max(rss, default=None), "runs": len(walls)}
            if rss:
                self.results["rss"][label] = max(rss)
            shown = f"{max(rss) * 1024 / 1e6:.1f} MB" if rss else "n/a (no GNU time)"
            self.say(f"   {label:15s} median {median(walls):6.1f} ms (min {min(walls):.1f}), "
                     f"peak RSS {shown}")
        size = self.args.bin.stat().st_size
        file_out = ""
        if shutil.which("file"):
            file_out = subprocess.run(["file", "-b", str(self.args.bin)], capture_output=True,
                                      text=True).stdout.strip()
        out["binary_bytes"] = size
        out["binary_file"] = file_out
        self.results["process"] = out
        self.say(f"   binary {self.args.bin}: {size / MIB:.2f} MiB ({file_out})")


# ---- machine, summary, doc ----------------------------------------------------------------------

def machine() -> dict[str, str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = next((l.split(":", 1)[1].strip() for l in read("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), platform.processor() or "?")
    mem_kb = next((int(l.split()[1]) for l in read("/proc/meminfo").splitlines()
                   if l.startswith("MemTotal:")), 0)

    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                  cwd=REPO).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    return {"nproc": str(os.cpu_count()), "cpu": cpu, "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "kernel": platform.release(), "rustc": cmd("rustc", "--version"),
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "git": source_state(),
            "loadavg": " ".join(read("/proc/loadavg").split()[:3])}


def source_state() -> str:
    """HEAD's short hash, and whether src/ differs from it (the binary may then be neither)."""
    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], capture_output=True, text=True, timeout=30,
                                  cwd=REPO).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    dirty = git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock")
    return git("rev-parse", "--short", "HEAD") + (" (src/ modified)" if dirty else "")


def fmt_ms(x: float) -> str:
    return f"{x:.0f} ms" if x >= 100 else f"{x:.1f} ms"


def summary_rows(res: dict[str, Any], delay: int) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, verdict) for every target of issue 7."""
    rows: list[tuple[str, str, str, str]] = []
    fo, cli, rec, proc = res["failover"], res["cli"], res["reconcile"], res["process"]

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("met" if ok else "NOT MET")

    for label, rt, extra in (("1+1+1", None, None), ("1+8+1", 3, 60),
                             ("1+8+1, 5 MiB config.xml", 3, 60), ("4+40+4", 4, 100)):
        if label not in fo:
            continue
        f = fo[label]
        n = median([sum(c.values()) for c in f["requests"]])
        target = f"≤ {rt} RT + {extra} ms = {rt * delay + extra} ms" if rt else "–"
        ok = f["median_ms"] <= rt * delay + extra if rt else None
        adjusted = median([w - p for w, p in zip(f["wall_ms"], f["beyond_delay_ms"])])
        rows.append((f"failover {label}: wall (median of {f['runs']})",
                     f"{fmt_ms(f['median_ms'])} ({f['median_phases']['ec2_depth']:.0f} RT, "
                     f"{n:.0f} EC2 req; {fmt_ms(adjusted)} without moto's time)", target,
                     verdict(ok)))
        if label in cli:
            c = cli[label]
            ratio = c["median_ms"] / f["median_ms"]
            rows.append((f"vs aws CLI, one call after another ({c['calls']} calls)",
                         f"{fmt_ms(c['median_ms'])}: awsha {ratio:.1f}× faster",
                         "≥ 5× faster" if label == "1+8+1" else "–",
                         verdict(ratio >= 5 if label == "1+8+1" else None)))
    for label, r in rec.items():
        target = r.get("target_requests", 4)
        what = (f"reconcile in sync, {r['actions']} actions ({label})" if "resources" not in label
                else f"reconcile in sync, {label}")
        rows.append((what, f"{r['max_requests']} EC2 req, {fmt_ms(r['median_ms'])}",
                     f"≤ {target} EC2 req", verdict(r["max_requests"] <= target)))
    for label, sc in res.get("scale", {}).items():
        b = sc["bucket"]
        rows.append((f"failover, {label} behind a ReplaceRoute bucket ({b['capacity']:.0f}, "
                     f"{b['refill']:.0f}/s): wall (median of {len(sc['runs'])})",
                     f"{sc['median_ms'] / 1000:.1f} s (max {sc['max_ms'] / 1000:.1f} s), "
                     f"{sc['ec2_requests']:.0f} EC2 req, {sc['throttled']:.0f} throttled",
                     f"≤ 1.25 × bucket + 3 RT = {sc['limit_ms'] / 1000:.1f} s",
                     verdict(sc["max_ms"] <= sc["limit_ms"])))
        rows.append((f"  failed actions ({label})", str(sc["failed"]), "0",
                     verdict(sc["failed"] == 0)))
    ipv6 = res.get("ipv6", {})
    for label, r in ipv6.items():
        rt = r["rt_timeline"]
        rt_text = "/".join(str(x) for x in rt)
        n = sum(r["requests"].values())
        ipv4 = label.startswith("IPv4")
        rows.append((f"failover {label}: wall (median of {r['runs']})",
                     f"{fmt_ms(r['median_ms'])} ({rt_text} RT, {n} EC2 req; "
                     f"{fmt_ms(r['adjusted_ms'])} without moto's time)",
                     f"{r['expect_rt']} RT" + (" (reference)" if ipv4 else
                                               " (as few as EC2 allows, issue 14)"),
                     verdict(None if ipv4 else (rt == [r["expect_rt"]]
                                                and r["rt_proxy"] == rt))))
    ref = next((r for k, r in ipv6.items() if k.startswith("IPv4")), None)
    held = next((r for k, r in ipv6.items() if k.startswith("IPv6") and "peer" in k), None)
    if ref and held:
        rows.append(("  IPv6 (peer holds it) − IPv4, same size",
                     f"+{held['median_ms'] - ref['median_ms']:.0f} ms, "
                     f"+{held['rt_timeline'][-1] - ref['rt_timeline'][-1]} RT, "
                     f"+{sum(held['requests'].values()) - sum(ref['requests'].values())} EC2 req",
                     "–", "–"))
    if "validate 5 MiB" in proc:
        v = proc["validate 5 MiB"]
        rows.append(("start + parse + validate, 5 MiB config.xml",
                     f"{fmt_ms(v['median_ms'])} (small config: "
                     f"{fmt_ms(proc['validate small']['median_ms'])})", "≤ 30 ms",
                     verdict(v["median_ms"] <= 30)))
    if not res["rss"]:
        rows.append(("peak RSS", "not measured: install GNU time (apt-get install time)",
                     "≤ 30 MB", "–"))
    else:
        worst = max(res["rss"], key=lambda k: res["rss"][k])
        kb = res["rss"][worst]
        rows.append(("peak RSS (worst command)", f"{kb * 1024 / 1e6:.1f} MB ({worst})",
                     "≤ 30 MB", verdict(kb * 1024 <= 30e6)))
    if "binary_bytes" in proc:
        b = proc["binary_bytes"]
        stripped = "stripped" in proc.get("binary_file", "") and "not stripped" not in proc.get(
            "binary_file", "")
        rows.append(("release binary size" + (" (stripped)" if stripped else ""),
                     f"{b / 1e6:.2f} MB ({b / MIB:.2f} MiB)", "≤ 15 MB",
                     verdict(b <= 15 * 1000 * 1000)))
    return rows


def text_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def md_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


PHASE_HEADER = ("run", "wall", "spawn → IMDS", "IMDS phase (req)", "IMDS → EC2",
                "EC2 phase (req, RT)", "of which moto+proxy beyond delay", "of which gaps",
                "after last EC2", "awsha's own")


def phase_rows(res: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    groups = [("failover", res["failover"]), ("reconcile", res["reconcile"]),
              ("failover", res.get("ipv6", {}))]
    for kind, group in groups:
        for label, r in group.items():
            p = r["median_phases"]
            rows.append((f"{kind} {label}", fmt_ms(p["wall"]), fmt_ms(p["to_imds"]),
                         f"{fmt_ms(p['imds_phase'])} ({p['imds_requests']:.0f})",
                         fmt_ms(p["imds_to_ec2"]),
                         f"{fmt_ms(p['ec2_phase'])} ({p['ec2_requests']:.0f}, {p['ec2_depth']:.0f})",
                         fmt_ms(p["ec2_beyond_delay"]), fmt_ms(p["ec2_gaps"]),
                         fmt_ms(p["after_ec2"]), fmt_ms(p["own"])))
    return rows


def rss_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    return [(what, f"{kb * 1024 / 1e6:.1f} MB") for what, kb in res["rss"].items()]


def request_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for kind in ("failover", "reconcile"):
        for label, r in res[kind].items():
            c = r["requests"][0]
            rows.append((f"{kind} {label}", ", ".join(f"{k} {v}" for k, v in sorted(c.items()))))
    for label, r in res.get("ipv6", {}).items():
        rows.append((f"failover {label}", ", ".join(f"{k} {v}" for k, v in
                                                    sorted(r["requests"].items()))
                     + (" (varied between runs: results.json)" if r.get("requests_vary")
                        else "")))
    for label, r in res["cli"].items():
        rows.append((f"aws CLI {label}", f"{r['calls']} calls, one process each"))
    for label, sc in res.get("scale", {}).items():
        c = sc["runs"][0]["requests"]
        rows.append((f"failover {label} (bucket)", ", ".join(f"{k} {v}" for k, v in
                                                            sorted(c.items()))
                     + f"; {sc['runs'][0]['throttled']} throttled"))
    return rows


def render_md(res: dict[str, Any], mach: dict[str, str], args: argparse.Namespace,
              command: str) -> str:
    delay = args.delay_ms
    lines = [
        f"Measured {mach['date']} with `{command}` (EC2 delay {delay} ms on every request, "
        f"{'TCP_NODELAY' if args.nodelay else 'Nagle on'} in the proxy and the IMDS emulators, "
        f"{args.runs} rounds of failover to node A and to node B per size, i.e. "
        f"{args.runs * 2} timed runs, {args.cli_runs} rounds ({args.cli_runs * 2} runs) of the CLI "
        f"way, {args.parse_runs} process-cost runs; medians).",
        "",
        f"Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['memory']} memory, Linux "
        f"{mach['kernel']}, {mach['rustc']}, Python {mach['python']}; awsha at {mach['git']}"
        + (f" (at the start of the run: {res['git_start']})"
           if res.get("git_start", mach["git"]) != mach["git"] else "") + "; "
        f"load average at the start {res.get('load_start', '?')}, at the end {mach['loadavg']}.",
        "",
        md_table(summary_rows(res, delay),
                 ("what", "measured", "target (issues 7, 11, 14)", "")),
        "",
        "\"Without moto's time\": the wall time less the time moto and the proxy took beyond "
        "the fixed delay on the critical path, i.e. what the run would take if every EC2 request "
        "took exactly the delay (as with a real EC2 that answers in parallel).",
        "",
        "Where the time goes (medians of each column, so they need not add up exactly): spawn → "
        "first IMDS request; IMDS phase (requests); last IMDS answer → first EC2 request; EC2 "
        "phase (requests, round trips in sequence), of which moto + proxy beyond the fixed "
        "delay, and gaps with no EC2 request outstanding (awsha between round trips); last EC2 "
        "answer → exit. \"awsha's own\" = wall − time with an EC2 or IMDS request outstanding "
        "(process start, config.xml, ifconfig, planning, the SDK's own work).",
        "",
        md_table(phase_rows(res), PHASE_HEADER),
        "",
        "EC2 requests per run (the first run of each case; the tables above give medians, so a throttled case may differ by a few):",
        "",
        md_table(request_rows(res), ("run", "requests")),
        "",
        "Peak RSS per command (GNU time, `%M`):",
        "",
        md_table(rss_rows(res), ("command", "peak RSS")),
    ]
    return "\n".join(lines) + "\n"


def update_doc(block: str) -> None:
    text = DOC.read_text() if DOC.exists() else ""
    new = f"{DOC_BEGIN}\n{block}{DOC_END}"
    if DOC_BEGIN in text and DOC_END in text:
        start = text.index(DOC_BEGIN)
        end = text.index(DOC_END) + len(DOC_END)
        text = text[:start] + new + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    DOC.write_text(text)


# ---- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", type=Path, default=Path(os.environ.get("AWSHA_BIN") or
                                                     REPO / "target" / "release" / "awsha"))
    ap.add_argument("--aws", type=Path, default=Path(os.environ.get("BENCH_AWS") or
                                                     REPO / ".venv-bench" / "bin" / "aws"))
    ap.add_argument("--delay-ms", type=int, default=int(os.environ.get("BENCH_DELAY_MS") or 50))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS") or 5),
                    help="timed runs per node (A and B) and size for failover; reconcile runs")
    ap.add_argument("--cli-runs", type=int, default=None,
                    help="rounds of the CLI way per size (each moves to A and to B; default "
                         "BENCH_CLI_RUNS or 3)")
    ap.add_argument("--parse-runs", type=int,
                    default=int(os.environ.get("BENCH_PARSE_RUNS") or 21))
    ap.add_argument("--only",
                    choices=["failover", "reconcile", "process", "scale", "ipv6"],
                    action="append", help="run only these parts (repeatable)")
    ap.add_argument("--scale-routes", default=os.environ.get("BENCH_SCALE_ROUTES") or "100,200",
                    help="route tables of the throttled failover scale case (comma-separated)")
    ap.add_argument("--scale-runs", type=int,
                    default=int(os.environ.get("BENCH_SCALE_RUNS") or 2),
                    help="throttled failover runs per scale size")
    ap.add_argument("--reconcile-scale",
                    default=os.environ.get("BENCH_RECONCILE_SCALE") or "10,200,500",
                    help="resources of the reconcile-in-sync scale sizes (comma-separated)")
    ap.add_argument("--no-tcp-nodelay", dest="nodelay", action="store_false",
                    default=os.environ.get("BENCH_TCP_NODELAY", "1") != "0",
                    help="leave Nagle on in the proxy and the emulators (the test-suite default; "
                         "costs ~40 ms per answer on a reused connection)")
    ap.add_argument("--update-doc", action="store_true",
                    default=os.environ.get("BENCH_UPDATE_DOC") == "1",
                    help="replace the generated block of docs/performance.md")
    args = ap.parse_args(argv)
    if args.cli_runs is None:
        args.cli_runs = int(os.environ.get("BENCH_CLI_RUNS") or 3)
    args.cli_runs = min(args.cli_runs, args.runs)
    args.bin = args.bin.resolve()
    if not (args.bin.is_file() and os.access(args.bin, os.X_OK)):
        print(f"bench: no awsha binary at {args.bin} (cargo build --release)", file=sys.stderr)
        return 1
    only = set(args.only or ["failover", "reconcile", "process", "scale", "ipv6"])
    if "failover" in only and args.cli_runs > 0 and not os.access(args.aws, os.X_OK):
        print(f"bench: no aws CLI at {args.aws} (make bench installs it in .venv-bench)",
              file=sys.stderr)
        return 1
    command = "make bench" if os.environ.get("MAKELEVEL") else "tests/bench/bench.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    if args.runs < 5:
        print(f"bench: note: {args.runs} runs per size (issue 7 asks for at least 5)")
    sizes = [Size(1, 1, 1), Size(1, 8, 1, big_config=True), Size(4, 32, 4, failover=False),
             Size(4, 40, 4)]
    if "failover" not in only:
        sizes = [s for s in sizes if s.reconcile]
        for s in sizes:
            s.failover = False
    if "reconcile" not in only:
        sizes = [s for s in sizes if s.failover]
        for s in sizes:
            s.reconcile = False

    scale_routes = [int(x) for x in args.scale_routes.split(",") if x.strip()]
    # reconcile in sync at N resources: the ENI, the EIP and N − 2 route tables of one route each
    scale_sizes = [Size(1, n - 2, 1, failover=False, per_table=1, name=f"{n} resources")
                   for n in (int(x) for x in args.reconcile_scale.split(",") if x.strip())]

    started = time.monotonic()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="awsha-bench-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        servers = Servers(work / "logs", args.delay_ms, args.nodelay)
        try:
            print(f"bench: binary {args.bin}; EC2 delay {args.delay_ms} ms; starting servers",
                  flush=True)
            servers.start()
            bench = Bench(args, servers, work)
            bench.results["load_start"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            bench.results["git_start"] = source_state()
            ami = bench.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
            bench.ec2.describe_regions()  # moto's slow first request, untimed
            for size in sizes:
                if size.failover or size.reconcile:
                    bench.size(size, ami)
            if "scale" in only:
                for routes in scale_routes:
                    bench.scale(routes, ami)
                for size in scale_sizes:
                    bench.size(size, ami)
            if "ipv6" in only:
                bench.ipv6(ami)
            if "process" in only:
                if not (work / "1+1+1" / "node-a" / "config.xml").exists():
                    # the small config comes from the 1+1+1 scenario; make one without moto
                    bench.size(Size(1, 1, 1, failover=False, reconcile=False), ami)
                bench.process()
        except BenchError as e:
            print(f"\nbench FAILED: {e}", file=sys.stderr)
            print(f"(server logs in {work / 'logs'}, kept: copying to {OUT_DIR / 'logs'})",
                  file=sys.stderr)
            shutil.copytree(work / "logs", OUT_DIR / "logs", dirs_exist_ok=True)
            return 1
        finally:
            servers.stop()
    res = bench.results
    mach = machine()
    res["machine"] = mach
    res["delay_ms"] = args.delay_ms
    res["command"] = command
    (OUT_DIR / "results.json").write_text(json.dumps(res, indent=1, default=str))
    md = render_md(res, mach, args, command)
    (OUT_DIR / "summary.md").write_text(md)
    print("\n" + text_table(summary_rows(res, args.delay_ms),
                            ("what", "measured", "target (issues 7, 11, 14)", "")))
    print("\nWhere the time goes (medians):\n" + text_table(phase_rows(res), PHASE_HEADER))
    print("\nPeak RSS:\n" + text_table(rss_rows(res), ("command", "peak RSS")))
    print(f"\nMachine: {mach['nproc']} × {mach['cpu']}, {mach['memory']}, {mach['rustc']}, "
          f"load {res['load_start']} → {mach['loadavg']}; {mach['date']}")
    print(f"Details: {OUT_DIR / 'summary.md'}, results.json, timeline-*.txt "
          f"({time.monotonic() - started:.0f} s)")
    if args.update_doc:
        update_doc(md)
        print(f"Updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
