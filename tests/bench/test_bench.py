"""Self-checks of the benchmark's own pieces (not part of `make test`; about 15 s):

    .venv/bin/python -m pytest tests/bench -q

The config generator (exact size, well-formed, the awsha rows it promises), the request-log
arithmetic that splits a run's wall time (critical-path depth, busy time), and the harness options
the bench adds: the IMDS emulator's snapshot cache and request log, TCP_NODELAY on the emulator and
the proxy.
"""

from __future__ import annotations

import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for sub in ("tests/harness", "tests/integration", "tests/bench"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

import bench  # noqa: E402
import gen_config  # noqa: E402
from awsha_scenario import REGION, Emulator, build_scenario, http_json  # noqa: E402
from procs import ServerProcess  # noqa: E402


def test_generated_config_is_exact_wellformed_and_has_the_rows() -> None:
    text, counts = gen_config.generate(1024 * 1024, ips=2, routes=5, eips=1)
    assert len(text.encode()) == 1024 * 1024
    root = ET.fromstring(text)
    pkgs = root.find("installedpackages")
    assert pkgs is not None
    assert len(pkgs.findall("awshaips/config")) == 2
    assert len(pkgs.findall("awsharoutes/config")) == 5
    assert len(pkgs.findall("awshaeips/config")) == 1
    assert len(root.findall("filter/rule")) == counts["filter rules"] > 500
    assert gen_config.generate(200_000)[0] == gen_config.generate(200_000)[0]  # deterministic


def test_depth_and_busy() -> None:
    # assign [0,1], routes [0,1.2] → associate [1,2] → tags [2.5,3]: three round trips in sequence
    iv = [(0.0, 1.0), (0.0, 1.2), (0.0, 1.1), (1.0, 2.0), (2.5, 3.0)]
    assert bench.depth(iv) == 3
    assert abs(bench.busy(iv) - 2.5) < 1e-9
    assert bench.depth([]) == 0 and bench.busy([]) == 0


def test_phases_add_up() -> None:
    m = bench.Measured(["x"], 0, "", "", 500.0, 100.0, 100.5, 1000)
    imds = [{"t": 100.010, "ms": 1.0}, {"t": 100.020, "ms": 1.0}]
    ec2 = [{"t": 100.050, "ms": 100}, {"t": 100.160, "ms": 100}, {"t": 100.300, "ms": 150}]
    p = bench.phases(m, ec2, imds, 50)
    assert round(p.to_imds) == 10 and round(p.imds_phase) == 11
    assert round(p.imds_to_ec2) == 29 and round(p.ec2_phase) == 400
    assert p.ec2_depth == 3 and round(p.ec2_busy) == 350 and round(p.ec2_beyond_delay) == 200
    assert round(p.ec2_gaps) == 50 and round(p.after_ec2) == 50
    total = p.to_imds + p.imds_phase + p.imds_to_ec2 + p.ec2_phase + p.after_ec2
    assert abs(total - p.wall) < 1e-6


def test_emulator_cache_log_and_nodelay(tmp_path: Path) -> None:
    moto = ServerProcess("moto_launcher.py", [], name="moto", log_path=tmp_path / "moto.log")
    started = [moto]
    try:
        moto.start()
        emu_proc = ServerProcess("imds_emulator.py", ["--ec2", moto.url, "--tcp-nodelay"],
                                 name="imds", log_path=tmp_path / "imds.log")
        started.append(emu_proc)
        emu_proc.start()
        proxy_proc = ServerProcess("fault_proxy.py", ["--upstream", moto.url, "--tcp-nodelay"],
                                   name="proxy", log_path=tmp_path / "proxy.log")
        started.append(proxy_proc)
        proxy_proc.start()
        ec2 = bench.ec2_client(moto.url)
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        scn = build_scenario(ec2, ami)
        emu = Emulator(emu_proc.url)
        emu.configure(scn.instance["A"], REGION)

        def get(path: str) -> str:
            put = urllib.request.Request(f"{emu.url}/latest/api/token", method="PUT",
                                         headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
            token = urllib.request.urlopen(put, timeout=10).read().decode()
            req = urllib.request.Request(f"{emu.url}/latest/{path}",
                                         headers={"X-aws-ec2-metadata-token": token})
            return urllib.request.urlopen(req, timeout=10).read().decode()

        ipv4s = f"meta-data/network/interfaces/macs/{scn.mac[('A', 'wan')]}/local-ipv4s"
        assert get(ipv4s) == "10.0.1.11"
        http_json(f"{emu.url}/_emulator/config", {"cache": True})
        ec2.assign_private_ip_addresses(NetworkInterfaceId=scn.eni[("A", "wan")],
                                        PrivateIpAddresses=["10.0.1.10"], AllowReassignment=True)
        assert get(ipv4s) == "10.0.1.11"  # the snapshot, not moto's new state
        http_json(f"{emu.url}/_emulator/config", {"cache": True})  # a new snapshot
        assert get(ipv4s) == "10.0.1.11\n10.0.1.10"
        http_json(f"{emu.url}/_emulator/config", {"cache": False})
        assert get(ipv4s) == "10.0.1.11\n10.0.1.10"
        log = http_json(f"{emu.url}/_emulator/log")
        assert [e["path"] for e in log][-2:] == ["/latest/api/token", "/latest/" + ipv4s]
        assert all(e["status"] == 200 and e["t"] > time.time() - 600 for e in log)
        emu.reset()
        assert http_json(f"{emu.url}/_emulator/log") == []
        # the proxy with --tcp-nodelay still forwards
        body = b"Action=DescribeRegions&Version=2016-11-15"
        req = urllib.request.Request(proxy_proc.url, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
    finally:
        for p in reversed(started):
            p.stop()


def test_scale_helpers() -> None:
    # issue 11's bound: 1.25 × (routes − capacity) ÷ refill (round trips added by the caller)
    assert bench.bucket_limit_s(100) == 7.5 and bench.bucket_limit_s(200) == 20.0
    assert bench.bucket_limit_s(30) == 0.0
    assert bench.bucket_limit_s(500, capacity=50, refill=5) == 112.5
    # fewest reconcile requests under the 200-filter-value limit (tag keys take 5 values) and
    # DescribeRouteTables' pages of at most 100 tables
    assert bench.min_reconcile_requests(8, 10) == 3
    assert bench.min_reconcile_requests(100, 102) == 1 + 1 + 1
    assert bench.min_reconcile_requests(198, 200) == 2 + 2 + 1
    assert bench.min_reconcile_requests(498, 500) == 5 + 3 + 1
    assert bench.min_reconcile_requests(0, 1, 0) == 1
    assert [bench.route_cidr(k) for k in (0, 39, 255, 256, 4095)] == [
        "172.16.0.0/24", "172.16.39.0/24", "172.16.255.0/24", "172.17.0.0/24", "172.31.255.0/24"]
    size = bench.Size(1, 498, 1, per_table=1, name="500 resources")
    assert (size.label, size.tables, size.resources, size.actions) == ("500 resources", 498, 500,
                                                                       500)
    old = bench.Size(4, 40, 4)
    assert (old.label, old.tables, old.resources) == ("4+40+4", 4, 9)


def test_summary_rows_with_the_scale_results() -> None:
    res = {"failover": {}, "cli": {}, "process": {}, "rss": {},
           "reconcile": {"500 resources": {"actions": 500, "max_requests": 7, "median_ms": 120.0,
                                           "target_requests": 7,
                                           "requests": [{"DescribeTags": 3}]},
                         "4+40+4": {"actions": 48, "max_requests": 4, "median_ms": 90.0,
                                    "requests": [{"DescribeTags": 1}]}},
           "scale": {"200 route tables": {
               "bucket": {"capacity": 40, "refill": 10}, "limit_ms": 20150.0,
               "median_ms": 17000.0, "max_ms": 17500.0, "ec2_requests": 260, "throttled": 55,
               "failed": 0, "runs": [{"requests": {"ReplaceRoute": 257}, "throttled": 57}]}}}
    rows = {r[0]: r for r in bench.summary_rows(res, 50)}
    assert rows["reconcile in sync, 500 resources"][2:] == ("≤ 7 EC2 req", "met")
    assert rows["reconcile in sync, 48 actions (4+40+4)"][2:] == ("≤ 4 EC2 req", "met")
    wall = next(r for k, r in rows.items() if k.startswith("failover, 200 route tables"))
    assert wall[1].startswith("17.0 s") and wall[3] == "met" and "20.1 s" in wall[2]
    assert rows["  failed actions (200 route tables)"][1:] == ("0", "0", "met")
    res["scale"]["200 route tables"]["failed"] = 3
    rows = {r[0]: r for r in bench.summary_rows(res, 50)}
    assert rows["  failed actions (200 route tables)"][3] == "NOT MET"
    assert any("throttled" in r[1] for r in bench.request_rows(res))


def test_timeline_round_trips() -> None:
    def tl(*events: str) -> list[dict[str, object]]:
        return [{"at_ms": i, "event": e} for i, e in enumerate(events)]

    # the IPv6 move when the peer holds the address (docs/performance.md "The IPv6 move"):
    # Assign ∥ Describe ∥ routes → Unassign → Assign → CreateTags = 4 in sequence
    held = tl("config read", "IMDS done", "AssignIpv6Addresses sent",
              "DescribeNetworkInterfaces sent", "ReplaceRoute sent", "ReplaceRoute sent",
              "AssignIpv6Addresses answered InvalidIPAddress.InUse", "ReplaceRoute answered",
              "DescribeNetworkInterfaces answered", "UnassignIpv6Addresses sent",
              "ReplaceRoute answered", "UnassignIpv6Addresses answered",
              "AssignIpv6Addresses sent", "AssignIpv6Addresses answered", "CreateTags sent",
              "CreateTags answered", "report written")
    assert bench.timeline_round_trips(held) == 4
    assert bench.timeline_ec2_ms(held) == 15 - 2
    # nobody holds it: Assign ∥ Describe → CreateTags
    unheld = tl("AssignIpv6Addresses sent", "DescribeNetworkInterfaces sent",
                "AssignIpv6Addresses answered", "DescribeNetworkInterfaces answered",
                "CreateTags sent", "CreateTags answered")
    assert bench.timeline_round_trips(unheld) == 2
    # a request sent while others are outstanding is not deeper than what was answered before it
    overlap = tl("ReplaceRoute sent", "AssignPrivateIpAddresses sent",
                 "AssignPrivateIpAddresses answered", "AssociateAddress sent",
                 "ReplaceRoute answered", "AssociateAddress answered", "CreateTags sent",
                 "CreateTags answered")
    assert bench.timeline_round_trips(overlap) == 3
    # a throttled request retried: each attempt is a round trip; answers match the oldest
    # outstanding request of their action
    retried = tl("ReplaceRoute sent", "ReplaceRoute sent",
                 "ReplaceRoute answered RequestLimitExceeded", "ReplaceRoute sent",
                 "ReplaceRoute answered", "ReplaceRoute answered", "CreateTags sent",
                 "CreateTags answered")
    assert bench.timeline_round_trips(retried) == 3
    assert bench.timeline_round_trips([]) == 0 and bench.timeline_ec2_ms([]) == 0


def test_summary_rows_with_the_ipv6_results() -> None:
    def case(wall: float, rt: int, expect: int, req: dict[str, int]) -> dict[str, object]:
        return {"runs": 10, "median_ms": wall, "adjusted_ms": wall - 20, "rt_timeline": [rt],
                "rt_proxy": [rt], "expect_rt": expect, "requests": req}

    res = {"failover": {}, "cli": {}, "process": {}, "rss": {}, "reconcile": {}, "ipv6": {
        "IPv4 1 address + 3 routes, peer holds it": case(
            150, 2, 2, {"AssignPrivateIpAddresses": 1, "ReplaceRoute": 3, "CreateTags": 1}),
        "IPv6 1 address + 3 routes, peer holds it": case(
            260, 4, 4, {"AssignIpv6Addresses": 2, "DescribeNetworkInterfaces": 1,
                        "UnassignIpv6Addresses": 1, "ReplaceRoute": 3, "CreateTags": 1}),
        "IPv6 1 address + 3 routes, nobody holds it": case(
            160, 3, 2, {"AssignIpv6Addresses": 1, "DescribeNetworkInterfaces": 1,
                        "ReplaceRoute": 3, "CreateTags": 1})}}
    rows = {r[0]: r for r in bench.summary_rows(res, 50)}
    ref = rows["failover IPv4 1 address + 3 routes, peer holds it: wall (median of 10)"]
    assert ref[1].startswith("150 ms (2 RT, 5 EC2 req") and ref[3] == "–"
    held = rows["failover IPv6 1 address + 3 routes, peer holds it: wall (median of 10)"]
    assert held[1].startswith("260 ms (4 RT, 8 EC2 req") and held[3] == "met"
    unheld = rows["failover IPv6 1 address + 3 routes, nobody holds it: wall (median of 10)"]
    assert unheld[3] == "NOT MET"  # 3 round trips where EC2 allows 2
    assert rows["  IPv6 (peer holds it) − IPv4, same size"][1] == "+110 ms, +2 RT, +3 EC2 req"
    assert any(r[1].startswith("AssignIpv6Addresses 2, CreateTags 1, DescribeNetworkInterfaces 1")
               for r in bench.request_rows(res))
