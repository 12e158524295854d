#!/usr/bin/env python3
"""Fault-injecting HTTP proxy in front of moto, for the awsha integration tests.

Owns: everything between the awsha binary and moto. The binary is pointed at it with
`AWS_ENDPOINT_URL_EC2=http://127.0.0.1:<proxyport>`; every request is forwarded verbatim (method,
path, headers incl. Authorization, body) to moto unless a fault rule matches. It parses the EC2
query `Action` from the form-encoded POST body (or the query string), counts requests per Action,
logs them, and applies per-Action fault rules.

Usage:
    python tests/harness/fault_proxy.py --upstream http://127.0.0.1:<motoport> [--port 0]
                                        [--delay-ms N] [--tcp-nodelay] [--no-parent-watch]
                                        [--max-seconds N]
Prints `READY <port>`.

--tcp-nodelay (benchmarks): TCP_NODELAY on the connections to the binary. Without it an answer's
body (written after its headers) waits for the client's delayed ACK on a reused keep-alive
connection: about 40 ms per request on Linux, which is the harness's time, not EC2's.

Control API (same port, paths under /_proxy/, never forwarded):
    POST /_proxy/rules   JSON list of rules; replaces the rule set (counters kept)
    POST /_proxy/reset   clears rules, counts and log; global delay back to --delay-ms; releases
                         every connection currently held by a `hang` rule
    POST /_proxy/config  {"delay_ms": N}: fixed delay added to every forwarded EC2 request
    GET  /_proxy/counts  {"Action": n, ...}: requests received per Action (faulted ones included)
    GET  /_proxy/log     [{"action", "params" (form dict, first value per key), "status"
                          (0 = no answer: hang/reset), "fault" (rule kind or null), "t" (unix
                          time at arrival), "ms" (time to answer)}]
    GET  /_proxy/rules   the current rules with their remaining counts

Rule (JSON object):
    {"action": "ReplaceRoute" | "*",        which EC2 Action (default "*")
     "params": {"RouteTableId": "rtb-…"},   optional: every listed form field must match exactly
     "kind": "throttle" | "error" | "delay" | "hang" | "reset" | "malformed",
     "times": N | null,                     how many matching requests it affects (null = always;
                                            default 1 for throttle, null for the others)
     "status": 400, "code": "X", "message": "Y"      (error)
     "ms": 500                                       (delay)
     "seconds": 30                                   (hang; capped at 300)
     "body": "..."                                   (malformed; default a fixed garbage string)}
Rules are tried in order. A `delay` rule adds its delay and the search goes on; the first other
matching rule with uses left is applied and ends the search; with none, the request is forwarded.
throttle = HTTP 503 with EC2 code RequestLimitExceeded (the EC2/older-SDK status for it,
reference/ec2.md §4). error bodies use EC2's XML error shape.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import add_lifetime_args, make_http_server, serve_http  # noqa: E402

MAX_HANG_SECONDS = 300.0
MAX_BODY = 64 * 1024 * 1024
UPSTREAM_TIMEOUT = 120.0
GARBAGE = "\x00\x01this is not XML <Response><Errors <<<&&& \xff"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "proxy-connection"}
KINDS = {"throttle", "error", "delay", "hang", "reset", "malformed"}


def ec2_error_xml(code: str, message: str) -> bytes:
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}"
        f"</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


class ProxyState:
    """Rules, counters and log, shared by all handler threads (guarded by one lock)."""

    def __init__(self, upstream: str, delay_ms: int):
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.default_delay_ms = delay_ms
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        self.delay_ms = delay_ms
        # Set on reset/shutdown: every `hang` waiting on it lets go at once.
        self.release = threading.Event()

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        checked = []
        for raw in rules:
            rule = dict(raw)
            kind = rule.get("kind")
            if kind not in KINDS:
                raise ValueError(f"unknown rule kind {kind!r}")
            rule.setdefault("action", "*")
            rule.setdefault("times", 1 if kind == "throttle" else None)
            if kind == "hang":
                rule["seconds"] = min(float(rule.get("seconds", 30)), MAX_HANG_SECONDS)
            if kind == "error":
                rule.setdefault("status", 400)
                rule.setdefault("code", "InternalError")
                rule.setdefault("message", "injected by fault_proxy")
            checked.append(rule)
        with self.lock:
            self.rules = checked

    def reset(self) -> None:
        with self.lock:
            self.rules = []
            self.counts = {}
            self.log = []
            self.delay_ms = self.default_delay_ms
            old = self.release
            self.release = threading.Event()
        old.set()

    def match(self, action: str, params: dict[str, str]) -> tuple[float, dict[str, Any] | None]:
        """Count the request and pick what to do: (extra delay in s, terminal rule or None)."""
        delay = self.delay_ms / 1000.0
        with self.lock:
            self.counts[action] = self.counts.get(action, 0) + 1
            for rule in self.rules:
                if rule["action"] not in ("*", action):
                    continue
                if any(params.get(k) != str(v) for k, v in (rule.get("params") or {}).items()):
                    continue
                if rule["times"] is not None:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                if rule["kind"] == "delay":
                    delay += float(rule.get("ms", 0)) / 1000.0
                    continue
                return delay, copy.deepcopy(rule)
        return delay, None

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with keep-alive, like EC2: the SDK pools connections. Every answer therefore carries
    # Content-Length (or the connection is closed).
    protocol_version = "HTTP/1.1"
    server_version = "awsha-fault-proxy"
    state: ProxyState  # set on the class by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the /_proxy/log endpoint is the log; keep stderr quiet

    # -- plumbing --------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str = "text/xml",
              headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        sent = set()
        for k, v in headers or []:
            self.send_header(k, v)
            sent.add(k.lower())
        if "content-type" not in sent:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    # -- control API -----------------------------------------------------------------------------
    def _control(self, body: bytes) -> None:
        path = urlsplit(self.path).path
        st = self.state
        try:
            if self.command == "POST" and path == "/_proxy/rules":
                rules = json.loads(body or b"[]")
                if isinstance(rules, dict):
                    rules = [rules]
                st.set_rules(rules)
                return self._json(200, {"ok": True, "rules": len(rules)})
            if self.command == "POST" and path == "/_proxy/reset":
                st.reset()
                return self._json(200, {"ok": True})
            if self.command == "POST" and path == "/_proxy/config":
                cfg = json.loads(body or b"{}")
                with st.lock:
                    if "delay_ms" in cfg:
                        st.delay_ms = int(cfg["delay_ms"])
                return self._json(200, {"ok": True, "delay_ms": st.delay_ms})
            if self.command == "GET" and path == "/_proxy/counts":
                with st.lock:
                    return self._json(200, dict(st.counts))
            if self.command == "GET" and path == "/_proxy/log":
                with st.lock:
                    return self._json(200, list(st.log))
            if self.command == "GET" and path == "/_proxy/rules":
                with st.lock:
                    return self._json(200, copy.deepcopy(st.rules))
        except (ValueError, TypeError) as e:
            return self._json(400, {"ok": False, "error": str(e)})
        return self._json(404, {"ok": False, "error": f"no control endpoint {self.command} {path}"})

    # -- proxying --------------------------------------------------------------------------------
    def _handle(self) -> None:
        arrived = time.time()
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True
            return self._json(400, {"error": str(e)})
        if urlsplit(self.path).path.startswith("/_proxy/"):
            return self._control(body)

        form: dict[str, list[str]] = {}
        ctype = (self.headers.get("Content-Type") or "").lower()
        if body and ("x-www-form-urlencoded" in ctype or not ctype):
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items():
            form.setdefault(k, v)
        params = {k: v[0] for k, v in form.items()}
        action = params.get("Action", "")
        if not action:
            # Not an EC2 query call (e.g. /moto-api/...): count under the method and path.
            action = f"{self.command} {urlsplit(self.path).path}"

        st = self.state
        release = st.release
        delay, rule = st.match(action, params)
        entry: dict[str, Any] = {"action": action, "params": params, "status": 0,
                                 "fault": rule["kind"] if rule else None, "t": arrived}
        try:
            if delay > 0 and release.wait(min(delay, MAX_HANG_SECONDS)):
                self.close_connection = True
                return  # released by a reset while delaying: drop the request
            if rule is None:
                entry["status"] = self._forward(body)
            elif rule["kind"] == "throttle":
                entry["status"] = 503
                self._send(503, ec2_error_xml("RequestLimitExceeded", "Request limit exceeded."))
            elif rule["kind"] == "error":
                entry["status"] = int(rule["status"])
                self._send(int(rule["status"]), ec2_error_xml(rule["code"], rule["message"]))
            elif rule["kind"] == "malformed":
                entry["status"] = 200
                self._send(200, str(rule.get("body", GARBAGE)).encode("utf-8", "replace"))
            elif rule["kind"] == "hang":
                # Hold the connection without a byte of answer, bounded, then close it.
                release.wait(rule["seconds"])
                self.close_connection = True
            elif rule["kind"] == "reset":
                # SO_LINGER 0 turns close() into a TCP RST: "connection reset by peer".
                # Close every reference now, so socketserver's shutdown(SHUT_WR) cannot send a
                # polite FIN first.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                self.rfile.close()
                self.wfile.close()
                self.connection.close()
        finally:
            entry["ms"] = int((time.time() - arrived) * 1000)
            st.record(entry)

    def _forward(self, body: bytes) -> int:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.state.upstream_host, self.state.upstream_port,
                                          timeout=UPSTREAM_TIMEOUT)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            out = [(k, v) for k, v in resp.getheaders()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            self._send(resp.status, data, headers=out)
            return resp.status
        except (OSError, http.client.HTTPException) as e:
            self._send(502, ec2_error_xml("ProxyUpstreamError", f"moto unreachable: {e}"))
            return 502
        finally:
            conn.close()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET


def make_server(upstream: str, port: int = 0, delay_ms: int = 0,
                tcp_nodelay: bool = False) -> tuple[ThreadingHTTPServer, ProxyState]:
    state = ProxyState(upstream, delay_ms)
    return make_http_server(Handler, state, port, tcp_nodelay), state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="moto's URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="fixed delay added to every forwarded request (benchmarks)")
    ap.add_argument("--tcp-nodelay", action="store_true",
                    help="TCP_NODELAY towards the client: no delayed-ACK stall (benchmarks)")
    add_lifetime_args(ap)
    args = ap.parse_args(argv)
    if urlsplit(args.upstream).hostname not in ("127.0.0.1", "localhost"):
        ap.error("only a loopback upstream is allowed")

    server, state = make_server(args.upstream, args.port, args.delay_ms, args.tcp_nodelay)
    # Release connections held by `hang` rules first, or shutdown would wait for them.
    return serve_http(server, args, on_stop=lambda: state.release.set())


if __name__ == "__main__":
    sys.exit(main())
