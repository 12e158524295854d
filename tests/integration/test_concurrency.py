"""Concurrency: several awsha processes at the same moment, and processes that die
(docs/contracts.md §10: a flock(2) lock per VHID in AWSHA_RUN_DIR; different VHIDs in parallel, the
same VHID serialised, reconcile skips a locked VHID, a dead process's lock is released by the
kernel).

Owns: the concurrency tests. The eight-VHID member comes from awsha_scenario.eight_vhid_node (wan@1,
3, 5, 7 and lan@2, 4, 6, 8 as /32 CARP VIPs on the two ENIs, one IP row each, wan@1 with its routes
and EIP). The mutating requests that reach moto are counted per Action and per address in the
fault proxy's log.

moto: P1 (an address moved by AssignPrivateIpAddresses leaves the peer's ENI) and P3; moto's
server handles concurrent requests in threads — the end state is read back after all processes
are done.

No outcome here depends on timing. Where a test needs a process to be waiting for a lock, the test
holds the lock itself and learns from the kernel that the process tried it and was refused
(`CloseWatch`: the binary opens the lock file, tries flock(2) without blocking and closes the file
when refused, so a close while the test holds the lock is a refused attempt); it moves on only
then. Whether a run waited is read back from facts, not from its duration: a failover that had to
wait reads CARP state again once it has the lock, so it runs the (fake) ifconfig twice. The order
of requests comes from the fault proxy's sequence numbers (`seq`, `done_seq`), and its log is
complete as soon as the binaries have their answers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import select
import signal
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from awsha_scenario import (
    EIGHT_VIPS, LAN_VIP, Cloud, Node, Proxy, Running, Scenario, check_report, eight_vhid_node,
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


class LockHolder:
    """The test holding a VHID's lock file as a running failover would (flock(2), exclusive).
    Taken without blocking: nothing else may hold it when a test starts. `release()` (or leaving
    the `with` block) drops it."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise AssertionError(f"{path} is already locked when the test starts") from None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "LockHolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class CloseWatch:
    """Counts the closes of one file, from the kernel (inotify(7), Linux; ctypes, no package).

    awsha opens the VHID's lock file, tries flock(2) without blocking and closes the file only when
    it was refused (a lock it gets stays open until the run is done). So while the test holds the
    lock (LockHolder, whose own descriptor stays open), every close is a refused attempt: proof
    that a failover has read CARP state (it does so before it tries the lock) and is now waiting.
    Do not open the file in the test (lock_is_held) while a watch is counting."""

    IN_CLOSE_WRITE, IN_CLOSE_NOWRITE = 0x08, 0x10
    EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)

    def __init__(self, path: Path):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = self.IN_CLOSE_WRITE | self.IN_CLOSE_NOWRITE
        if libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            err = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(err, f"inotify_add_watch {path}")
        self.closes = 0

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            off = 0
            while off < len(data):
                _wd, mask, _cookie, length = self.EVENT.unpack_from(data, off)
                off += self.EVENT.size + length
                if mask & (self.IN_CLOSE_WRITE | self.IN_CLOSE_NOWRITE):
                    self.closes += 1

    def forget(self) -> None:
        """Count from zero again (events so far are dropped)."""
        self._drain()
        self.closes = 0

    def wait_refused(self, run: Running, n: int = 1, timeout: float = 60.0) -> None:
        """Wait until `n` closes were seen. `run` is the awsha process expected to make them: if it
        exits first, the test fails with its output. The timeout only bounds a broken run."""
        end = time.monotonic() + timeout
        while True:
            self._drain()
            if self.closes >= n:
                return
            if run.proc.poll() is not None:
                pytest.fail(f"awsha {' '.join(run.args)} ended before trying the lock\n"
                            f"{run.wait().describe()}")
            left = end - time.monotonic()
            if left <= 0:
                pytest.fail(f"no refused lock attempt within {timeout:.0f}s")
            select.select([self.fd], [], [], min(left, 0.5))

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> "CloseWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop(run: Running) -> None:
    """SIGSTOP `run` and wait (bounded) until the kernel shows every thread of it stopped, so it
    cannot open or close anything until `cont`."""
    run.proc.send_signal(signal.SIGSTOP)

    def stopped() -> bool:
        tasks = Path(f"/proc/{run.proc.pid}/task")
        states = []
        for t in tasks.iterdir():
            # /proc/<pid>/task/<tid>/stat: "tid (comm) S ..."; comm may hold spaces or ")".
            stat = (t / "stat").read_text()
            states.append(stat[stat.rindex(")") + 2])
        return all(st in "tT" for st in states)

    assert wait_for(stopped, timeout=30), f"awsha pid {run.proc.pid} did not stop"


def cont(run: Running) -> None:
    run.proc.send_signal(signal.SIGCONT)


def kill_all(*runs: Running | None) -> None:
    """On a failed set-up, leave no awsha behind to act after the test (the lock it waits for is
    released when the test ends)."""
    for run in runs:
        if run is not None and run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(timeout=10)


def ifconfig_runs(node: Node) -> int:
    """How often the node's fake ifconfig has run (every awsha run reads CARP state with it)."""
    return len(node.ifconfig.calls())


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
    # Two failovers of wan@1 at once (named two ways): each must find the lock taken and wait, and
    # then they run one after the other. The test holds the lock until both are provably waiting:
    # the first's refused attempt is seen, the first is stopped (so every later close is the
    # second's), the second's refused attempt is seen; then the lock is released and the first
    # resumed. 600 ms on every AssignPrivateIpAddresses keeps each run inside the lock long
    # enough that, were there no lock, the two would overlap.
    proxy.rules([{"action": "AssignPrivateIpAddresses", "kind": "delay", "ms": 600}])
    runs_before = ifconfig_runs(node_a)
    first = second = None
    try:
        with LockHolder(node_a.run_dir / "awsha.wan_1.lock") as lock, \
                CloseWatch(lock.path) as watch:
            first = node_a.start("--deadline", "60", "failover", "wan@1", "--json")
            watch.wait_refused(first)
            stop(first)
            try:
                watch.forget()
                second = node_a.start("--deadline", "60", "failover", "1@ena0", "--json")
                watch.wait_refused(second)
                lock.release()
            finally:
                cont(first)
    except BaseException:
        kill_all(first, second)
        raise
    r1, r2 = first.wait(), second.wait()
    for r in (r1, r2):
        assert r.code == 0, r.describe()
        assert all(a["status"] == "changed" for a in check_report(r, "failover")["actions"])
    # Each waited, so each read CARP state twice: before the lock and again after the wait.
    assert ifconfig_runs(node_a) - runs_before == 4, node_a.ifconfig.calls()
    assert wan1_where(cloud, scenario) == wan1_on(scenario, "A")

    log = [e for e in proxy.log() if e["action"] in MUTATING]
    fwd = forwarded_mutations(proxy)
    assert fwd == {"AssignPrivateIpAddresses": 2, "ReplaceRoute": 4, "AssociateAddress": 2,
                   "CreateTags": 2}, f"each mutation exactly twice: {fwd}"
    # Serialised: the later run's first mutating request reached the proxy after the earlier
    # run's last one (its CreateTags) was answered — by the proxy's order, not its clock.
    log.sort(key=lambda e: e["seq"])
    first_tags = next(e for e in log if e["action"] == "CreateTags")
    second_assign = [e for e in log if e["action"] == "AssignPrivateIpAddresses"][1]
    assert second_assign["seq"] > first_tags["done_seq"], "the two failovers of wan@1 overlapped"


def test_waiting_failover_rereads_carp_state_after_the_lock(scenario: Scenario, node_a: Node,
                                                            proxy: Proxy) -> None:
    # While a failover waits for its VHID's lock, CARP moves to BACKUP: once it has the lock it
    # must read the state again and skip (a stale event must not steal the resources back). The
    # test holds the lock, as a running failover would; it moves CARP only after the failover's
    # refused attempt is seen (so it has read MASTER and is waiting), and releases the lock only
    # after the move.
    runs_before = ifconfig_runs(node_a)
    waiting = None
    try:
        with LockHolder(node_a.run_dir / "awsha.wan_1.lock") as lock, \
                CloseWatch(lock.path) as watch:
            waiting = node_a.start("--deadline", "60", "failover", "wan@1", "--json")
            watch.wait_refused(waiting)
            node_a.set_carp(1, state="BACKUP")
            lock.release()
    except BaseException:
        kill_all(waiting)
        raise
    r = waiting.wait()
    assert r.code == 0, r.describe()
    rep = check_report(r, "failover")
    assert rep["actions"], r.describe()
    for a in rep["actions"]:
        reason = a.get("reason") or ""
        assert a["status"] == "skipped", r.describe()
        assert "BACKUP" in reason and "after waiting for the lock" in reason, r.describe()
    assert ifconfig_runs(node_a) - runs_before == 2, "CARP state read before the lock and after"
    assert proxy.counts() == {}, f"a skipped failover sends nothing to EC2: {proxy.counts()}"


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
    runs_before = ifconfig_runs(node_a)
    r = node_a.run("--deadline", "10", "failover", "wan@1", "--json")
    assert r.code == 0, r.describe()
    # It read CARP state once: it got the lock at its first attempt (a failover that has to wait
    # for the lock reads the state again after the wait).
    assert ifconfig_runs(node_a) - runs_before == 1, "a new failover must not wait on a stale lock"
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
