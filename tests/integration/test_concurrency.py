"""Concurrency: several awsha processes at the same moment, and processes that die (design.md §7:
a flock(2) lock per VHID in AWSHA_RUN_DIR; different VHIDs in parallel, the same VHID serialised,
reconcile skips a locked VHID, a dead process's lock is released by the kernel).

Owns: the concurrency tests. The eight-VHID member comes from awsha_scenario.eight_vhid_node (wan@1,
3, 5, 7 and lan@2, 4, 6, 8 as /32 CARP VIPs on the two ENIs, one IP row each, wan@1 with its routes
and EIP). The mutating requests that reach moto are counted per Action and per address in the
fault proxy's log.

moto: P1 (an address moved by AssignPrivateIpAddresses leaves the peer's ENI) and P3; moto's
server handles concurrent requests in threads — the end state is read back after all processes
are done.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from typing import Any

from awsha_scenario import (
    EIGHT_VIPS, LAN_VIP, Cloud, Node, Proxy, Scenario, check_report, eight_vhid_node,
    forwarded_mutations, wan1_on, wan1_where,
)

MUTATING = ("AssignPrivateIpAddresses", "ReplaceRoute", "AssociateAddress", "CreateTags")


def assigned_addresses(proxy: Proxy) -> dict[str, int]:
    """Address → how many AssignPrivateIpAddresses that reached moto carried it."""
    out: dict[str, int] = {}
    for e in proxy.log():
        if e["action"] == "AssignPrivateIpAddresses" and e["fault"] is None and e["status"] == 200:
            for k, v in e["params"].items():
                if k.startswith("PrivateIpAddress."):
                    out[v] = out.get(v, 0) + 1
    return out


def lock_is_held(path: str) -> bool:
    """Whether some process holds the flock on `path` (tried without blocking, then released)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we got it
    return False


def wait_for(pred: Any, timeout: float = 15.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


# ---- many VHIDs at once ---------------------------------------------------------------------------

def test_eight_failovers_and_a_reconcile_at_the_same_moment(scenario: Scenario, node_a: Node,
                                                           ec2: Any, cloud: Cloud,
                                                           proxy: Proxy) -> None:
    # rc.carpmaster fires once per VHID when a node becomes MASTER of everything, and the minicron
    # reconcile may tick at the same moment: 9 processes, one lock per VHID.
    vhids = eight_vhid_node(node_a, "MASTER", ec2=ec2)
    proxy.reset()
    started = time.monotonic()
    procs = {v: node_a.start("failover", v, "--json") for v in vhids}
    rec = node_a.start("reconcile", "--json")
    results = {v: p.wait(timeout=90) for v, p in procs.items()}
    r_rec = rec.wait(timeout=90)
    wall = time.monotonic() - started

    for v, r in results.items():
        assert r.code == 0, f"{v}\n{r.describe()}"
        rep = check_report(r, "failover")
        assert rep["actions"] and all(a["status"] == "changed" for a in rep["actions"]), (
            f"{v}\n{r.describe()}")
        assert all(a["vhid"] == v for a in rep["actions"])
    assert r_rec.code == 0, r_rec.describe()
    rep = check_report(r_rec, "reconcile")
    assert {a["status"] for a in rep["actions"]} <= {"changed", "unchanged", "skipped"}, (
        r_rec.describe())

    # End state: every address on A's ENI only, wan@1's routes and EIP on A; tags by A.
    for iface, vhid, ip, _ in EIGHT_VIPS:
        assert cloud.ip_holders(ip) == [node_a.eni(iface)], f"{iface}@{vhid} {ip}"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
    for resource in (node_a.eni("wan"), node_a.eni("lan"), scenario.rt1, scenario.rt2,
                     scenario.allocation):
        assert cloud.tags(resource).get("awsha:instance") == node_a.instance_id, resource
    for v in vhids:
        assert node_a.marker(v.replace("@", "_")).exists(), v

    # Mutations at most twice per thing (the failover, and a reconcile that judged before it).
    time.sleep(0.2)
    per_address = assigned_addresses(proxy)
    assert set(per_address) == {ip for _, _, ip, _ in EIGHT_VIPS}, per_address
    assert max(per_address.values()) <= 2, per_address
    fwd = forwarded_mutations(proxy)
    assert fwd.get("ReplaceRoute", 0) <= 4 and fwd.get("AssociateAddress", 0) <= 2, fwd
    print(f"9 processes in {wall:.2f}s; mutations {fwd}; per address {per_address}")

    # And a reconcile afterwards finds nothing to do.
    proxy.reset()
    r = node_a.run("reconcile", "--json")
    assert r.code == 0, r.describe()
    rep = check_report(r, "reconcile")
    assert len(rep["actions"]) == 11 and all(a["status"] == "unchanged" for a in rep["actions"])
    assert proxy.mutating_counts() == {}, proxy.counts()


# ---- the same VHID twice ----------------------------------------------------------------------------

def test_same_vhid_twice_is_serialised(scenario: Scenario, node_a: Node, cloud: Cloud,
                                       proxy: Proxy) -> None:
    # 600 ms on every AssignPrivateIpAddresses keeps the first failover inside its lock long
    # enough for the second to find the lock taken and wait for it.
    proxy.rules([{"action": "AssignPrivateIpAddresses", "kind": "delay", "ms": 600}])
    first = node_a.start("failover", "wan@1", "--json")
    assert wait_for(lambda: proxy.counts().get("AssignPrivateIpAddresses", 0) >= 1)
    second = node_a.start("--deadline", "15", "failover", "1@ena0", "--json")
    r1, r2 = first.wait(), second.wait()
    for r in (r1, r2):
        assert r.code == 0, r.describe()
        assert all(a["status"] == "changed" for a in check_report(r, "failover")["actions"])
    assert r2.elapsed >= 0.6, "the second run must have waited for the first"
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")

    time.sleep(0.2)
    log = [e for e in proxy.log() if e["action"] in MUTATING]
    fwd = forwarded_mutations(proxy)
    assert fwd == {"AssignPrivateIpAddresses": 2, "ReplaceRoute": 4, "AssociateAddress": 2,
                   "CreateTags": 2}, f"each mutation at most twice: {fwd}"
    # Serialised: the second run's first mutating request comes after the first run's last one
    # (its CreateTags) was answered.
    log.sort(key=lambda e: e["t"])
    first_tags = next(e for e in log if e["action"] == "CreateTags")
    second_assign = [e for e in log if e["action"] == "AssignPrivateIpAddresses"][1]
    assert second_assign["t"] >= first_tags["t"] + first_tags["ms"] / 1000 - 0.01, (
        "the two failovers of wan@1 overlapped")


def test_waiting_failover_rereads_carp_state_after_the_lock(scenario: Scenario, node_a: Node,
                                                            cloud: Cloud, proxy: Proxy) -> None:
    # While the second failover waits for the lock, CARP moves to BACKUP: after the wait it must
    # re-read the state and skip (a stale event must not steal the resources back).
    proxy.rules([{"action": "AssignPrivateIpAddresses", "kind": "delay", "ms": 1000}])
    first = node_a.start("failover", "wan@1", "--json")
    assert wait_for(lambda: proxy.counts().get("AssignPrivateIpAddresses", 0) >= 1)
    second = node_a.start("failover", "wan@1", "--json")
    time.sleep(0.3)  # the second has read MASTER and is waiting for the lock
    node_a.set_carp(1, state="BACKUP")
    r1, r2 = first.wait(), second.wait()
    assert r1.code == 0, r1.describe()
    assert r2.code == 0, r2.describe()
    rep = check_report(r2, "failover")
    assert all(a["status"] == "skipped" for a in rep["actions"]), r2.describe()
    assert any("after waiting" in (a.get("reason") or "") or "BACKUP" in (a.get("reason") or "")
               for a in rep["actions"]), r2.describe()
    assert forwarded_mutations(proxy).get("AssignPrivateIpAddresses") == 1


def test_lock_held_past_the_deadline_fails_without_touching_aws(scenario: Scenario, node_a: Node,
                                                                proxy: Proxy) -> None:
    # Another process (here: this test) holds wan@1's lock for longer than the run's deadline.
    path = node_a.run_dir / "awsha.wan_1.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = node_a.run("--deadline", "2", "failover", "wan@1", "--json")
        assert r.code == 1, r.describe()
        assert 1.8 <= r.elapsed <= 2 + 2.5, r.elapsed
        rep = check_report(r, "failover")
        assert all(a["status"] == "failed" and "lock" in a["error"] for a in rep["actions"]), (
            r.describe())
        assert proxy.mutating_counts() == {}, proxy.counts()

        # reconcile does not wait: wan@1's repairs are skipped; lan@2 (its own lock) is repaired.
        r = node_a.run("reconcile", "--json")
        assert r.code == 0, r.describe()
        rep = check_report(r, "reconcile")
        wan = [a for a in rep["actions"] if a["vhid"] == "wan@1"]
        assert wan and all(a["status"] == "skipped" for a in wan), r.describe()
        assert all("failover" in (a.get("reason") or "") for a in wan), r.describe()
        [lan] = [a for a in rep["actions"] if a["vhid"] == "lan@2"]
        assert lan["status"] == "changed", r.describe()
        assert not [c for c in proxy.calls("ReplaceRoute")], "wan@1 untouched"
    finally:
        os.close(fd)


# ---- a process killed while it holds the lock ---------------------------------------------------------

def test_killed_failover_leaves_no_stale_lock(scenario: Scenario, node_a: Node, cloud: Cloud,
                                              proxy: Proxy) -> None:
    # A failover hangs on EC2 (every ReplaceRoute held without an answer) while holding wan@1's
    # lock, and is SIGKILLed. flock(2) locks die with their process: a new failover must start
    # at once, not wait for a stale lock file.
    proxy.rules([{"action": "ReplaceRoute", "kind": "hang", "seconds": 120}])
    victim = node_a.start("--deadline", "60", "failover", "wan@1", "--json")
    lock = str(node_a.run_dir / "awsha.wan_1.lock")
    assert wait_for(lambda: proxy.counts().get("ReplaceRoute", 0) >= 2), proxy.counts()
    assert lock_is_held(lock), "the running failover holds the VHID's lock"
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    assert victim.proc.returncode == -signal.SIGKILL
    assert os.path.exists(lock), "the lock file stays behind (that is fine: flock, not O_EXCL)"
    assert not lock_is_held(lock), "the kernel released the dead process's lock"

    proxy.rules([])
    r = node_a.run("--deadline", "10", "failover", "wan@1", "--json")
    assert r.code == 0, r.describe()
    assert r.elapsed < 4, f"a new failover must not wait on a stale lock ({r.elapsed:.1f}s)"
    assert all(a["status"] == "changed" for a in check_report(r, "failover")["actions"])
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")

    # reconcile is not put off by the file either.
    r = node_a.run("reconcile", "--json")
    assert r.code == 0, r.describe()
    rep = check_report(r, "reconcile")
    assert not [a for a in rep["actions"] if a["status"] == "skipped"], r.describe()
    assert cloud.ip_holders(LAN_VIP) == [node_a.eni("lan")]


def test_killed_failover_then_reconcile_finishes_the_job(scenario: Scenario, node_a: Node,
                                                         cloud: Cloud, proxy: Proxy) -> None:
    # The victim had moved the address (and the EIP with it) but never got its routes through:
    # the next reconcile — not a new failover — completes the takeover.
    proxy.rules([{"action": "ReplaceRoute", "kind": "hang", "seconds": 120}])
    victim = node_a.start("--deadline", "60", "failover", "wan@1", "--json")
    assert wait_for(lambda: len(proxy.calls("AssociateAddress")) >= 1), proxy.counts()
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    assert cloud.ip_holders("10.0.1.10") == [node_a.eni("wan")]
    proxy.rules([])
    r = node_a.run("reconcile", "--json")
    assert r.code == 0, r.describe()
    rep = check_report(r, "reconcile")
    assert sorted(a["status"] for a in rep["actions"] if a["kind"] == "route") == [
        "changed", "changed"], r.describe()
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")
