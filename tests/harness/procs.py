"""Process plumbing shared by the harness servers and the tests that start them.

Owns two things:
  * the server side: `add_lifetime_args` / `serve_until_stopped` give every harness server
    (moto_launcher, fault_proxy, imds_emulator) the same bounded life: it stops on SIGTERM/SIGINT,
    when its parent process dies (so a pytest killed with SIGKILL never leaves servers behind), or
    after --max-seconds;
  * the client side: `ServerProcess` starts one of those scripts, waits (bounded) for its
    `READY <port>` line and kills it on `stop()` (terminate, bounded wait, then kill).
Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

HARNESS_DIR = Path(__file__).resolve().parent


# ---- server side ---------------------------------------------------------------------------------

def add_lifetime_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--no-parent-watch", action="store_true",
                    help="keep running when the parent process exits")
    ap.add_argument("--max-seconds", type=float, default=4 * 3600,
                    help="stop after this long whatever happens (bounded lifetime)")


def _watch_parent(parent: int, stop: threading.Event) -> None:
    # Wakes once a second for at most the process lifetime. Being re-parented means the process
    # that started us (pytest) is gone: stop so no server outlives its test session.
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()
            # Belt and braces: a wedged serve thread must not keep the process alive.
            threading.Timer(5.0, lambda: os._exit(0)).start()
            return


def serve_until_stopped(stop: threading.Event, max_seconds: float, parent_watch: bool) -> None:
    """Block the main thread until a signal, the parent's death, or max_seconds."""
    if parent_watch:
        threading.Thread(target=_watch_parent, args=(os.getppid(), stop), daemon=True).start()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait(timeout=max_seconds)


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: with several awsha processes starting at once
    # (tests/integration/test_concurrency.py) connections beyond it wait for a SYN retransmit
    # (1 s), longer than awsha's IMDS connect timeout. Real IMDS and EC2 have no such limit.
    request_queue_size = 128
    daemon_threads = True


def make_http_server(handler: type, state: Any, port: int, tcp_nodelay: bool) -> ThreadingHTTPServer:
    """A threaded HTTP server on 127.0.0.1 whose handler class sees `state` as `self.state`."""
    bound = type("BoundHandler", (handler,), {"state": state, "disable_nagle_algorithm": tcp_nodelay})
    return _Server(("127.0.0.1", port), bound)


def serve_http(server: ThreadingHTTPServer, args: argparse.Namespace, on_stop: Any = None) -> int:
    """Serve in a thread, print `READY <port>`, and stop as `serve_until_stopped` says."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        serve_until_stopped(threading.Event(), args.max_seconds, not args.no_parent_watch)
    finally:
        if on_stop is not None:
            on_stop()
        server.shutdown()
        server.server_close()
    return 0


# ---- client side ---------------------------------------------------------------------------------

class ServerProcess:
    """A harness server running as a child process (`python <script> --port 0 ...`)."""

    def __init__(self, script: str, args: list[str], name: str | None = None,
                 log_path: Path | None = None, python: str | None = None):
        self.script = str(HARNESS_DIR / script)
        self.args = list(args)
        self.name = name or script
        self.log_path = log_path
        self.python = python or sys.executable
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None
        self._log_file: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        # stderr goes to a log file (never a pipe nobody reads, which could fill and block it).
        self._log_file = open(self.log_path, "a") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [self.python, self.script, "--port", "0", *self.args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log_file,
            text=True, cwd=str(HARNESS_DIR),
        )
        lines: queue.Queue[str] = queue.Queue()

        def reader() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:  # ends at EOF, i.e. when the child exits
                lines.put(line)

        threading.Thread(target=reader, daemon=True, name=f"{self.name}-stdout").start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                return self
        self.stop()
        raise RuntimeError(f"{self.name} did not print READY within {timeout}s"
                           f" (see {self.log_path})")

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting; `stop()` then waits and cleans up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
