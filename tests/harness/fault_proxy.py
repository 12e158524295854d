#!/usr/bin/env python3
"""Fault-injecting HTTP proxy in front of moto, for the awsha integration tests.

Owns: everything between the awsha binary and moto. The binary is pointed at it with
`AWS_ENDPOINT_URL_EC2=http://127.0.0.1:<proxyport>`; every request is forwarded verbatim (method,
path, headers incl. Authorization, body) to moto unless a fault rule matches. It parses the EC2
query `Action` from the form-encoded POST body (or the query string), counts requests per Action,
logs them, and applies per-Action fault rules.

Usage:
    python tests/harness/fault_proxy.py --upstream http://127.0.0.1:<motoport> [--port 0]
                                        [--delay-ms N] [--filter-limit 200] [--tcp-nodelay]
                                        [--no-parent-watch] [--max-seconds N]
Prints `READY <port>`.

--tcp-nodelay (benchmarks): TCP_NODELAY on the connections to the binary. Without it an answer's
body (written after its headers) waits for the client's delayed ACK on a reused keep-alive
connection: about 40 ms per request on Linux, which is the harness's time, not EC2's.

Control API (same port, paths under /_proxy/, never forwarded):
    POST /_proxy/rules   JSON list of rules; replaces the rule set (counters kept)
    POST /_proxy/release lets every request a `hold` rule holds go on (see the rules)
    POST /_proxy/reset   clears rules, counts, log, pagination tokens and throttle counts; every
                         setting of /_proxy/config back to its default (delay --delay-ms, no
                         paging, filter limit --filter-limit, no buckets, no propagated routes,
                         EC2's answer for a missing route); releases every connection held by a
                         `hang` rule
    POST /_proxy/config  any of the settings below (the others are kept); answers them all
    GET  /_proxy/config  the current settings
    GET  /_proxy/counts  {"Action": n, ...}: requests received per Action (faulted ones included)
    GET  /_proxy/throttled  {"Action": n, ...}: requests answered RequestLimitExceeded by a token
                         bucket (not those of `throttle` rules)
    GET  /_proxy/log     [{"action", "params" (form dict, first value per key), "status"
                          (0 = no answer: hang/reset), "fault" (rule kind, "bucket",
                          "filter_limit", "bad_token" or null), "t" (unix time at arrival), "ms"
                          (time to answer), "filter_values" (the request's filter values and
                          ids, see below), "page" (paged answers only: {"index" (0 = first
                          page), "items", "total", "token" (the NextToken sent, or null),
                          "next_token" (the one answered, or null)}), "seq" (arrival order),
                          "done_seq" (answer order)}]
    GET  /_proxy/rules   the current rules with their remaining counts

The log is ordered, not only timed: one counter numbers every request when it arrives ("seq")
and again when its answer is about to be written ("done_seq"; for a request that gets no answer,
when the proxy lets go of it). A request's entry is in the log *before* its answer's first byte
leaves, so once a client has an answer, the log already holds that request: no test needs to wait
for the log to catch up, and "B was sent after A was answered" is `B.seq > A.done_seq`, whatever
the machine's load.

Settings (POST /_proxy/config), each modelling what EC2 does and moto does not (docs/references.md
§1.3, §1.5, §4):
    "delay_ms": N          fixed delay added to every EC2 request (forwarded or answered here)
    "paging": {"page_size": 2, "empty_first_page": true, "actions": [...]} | null
                           Describe actions whose result is a list (default actions:
                           DescribeTags → tagSet, DescribeRouteTables → routeTableSet,
                           DescribeNetworkInterfaces → networkInterfaceSet; DescribeAddresses is
                           not paginated by EC2) are answered page by page: the proxy forwards the
                           request to moto without MaxResults/NextToken (moto pages nothing),
                           keeps the whole list, and answers at most page_size items (fewer when
                           the request's MaxResults is smaller) with a <nextToken> while items
                           remain. empty_first_page: the first page carries no item at all, only
                           a token (as EC2 may for a filtered call). A token is valid only for
                           the same request (same parameters apart from NextToken/MaxResults;
                           anything else → 400 InvalidPaginationToken) and may be presented
                           again (a retried page). Later pages come from the list fetched for the
                           first one. Error answers (DryRun included) are never paged.
    "filter_limit": 200 | null   on by default (EC2 always enforces it): a Describe request
                           carrying more than this many values in all — every Filter.N.Value.M
                           plus id lists such as RouteTableId.N, AllocationId.N,
                           NetworkInterfaceId.N — is answered 400 FilterLimitExceeded.
    "buckets": {"ReplaceRoute": {"capacity": 40, "refill": 10}, "*": {...}} | {}
                           EC2's per-action token buckets: each Action has its own bucket
                           ("*": the settings for every Action not named), full when set, refilled
                           continuously at `refill` tokens per second up to `capacity`. A request
                           that finds its bucket empty is answered HTTP 503 RequestLimitExceeded
                           and consumes nothing; one that finds a token takes it (then rules and
                           forwarding apply as usual).
    "propagated_routes": [{"route_table": "rtb-…", "cidr": "0.0.0.0/0", "gateway": "vgw-…"}]
                           DescribeRouteTables answers list, for that table, a VGW-propagated
                           route (origin EnableVgwRoutePropagation, gatewayId vgw-…) with that
                           destination right after the static route of the same destination (or
                           last): EC2 lists both. An IPv6 `cidr` (issue 14) is listed as
                           destinationIpv6CidrBlock, as EC2 lists a propagated IPv6 route. Injected here because moto keys a table's routes
                           by destination and so cannot hold two for one CIDR.
    "replace_route_missing": "InvalidRoute.NotFound" | null
                           ReplaceRoute on a destination missing from its table: moto (like EC2
                           today) answers InvalidParameterValue "… Use CreateRoute instead."; with
                           this set, the proxy answers InvalidRoute.NotFound instead (what EC2 may
                           answer once the reported defect is fixed, docs/references.md §1.3),
                           naming whichever destination field the request carried (IPv4, IPv6 or
                           prefix list).

Rule (JSON object):
    {"action": "ReplaceRoute" | "*",        which EC2 Action (default "*")
     "params": {"RouteTableId": "rtb-…"},   optional: every listed form field must match exactly
     "list_contains": {"ResourceId": "rtb-…" | ["rtb-…", …]}
                                            optional: some member of the list parameter
                                            (ResourceId.1, ResourceId.2, …) is one of these ids —
                                            e.g. a CreateTags refused for one resource fails the
                                            whole batch, and a call without it passes
     "kind": "throttle" | "error" | "delay" | "hold" | "hang" | "reset" | "malformed",
     "times": N | null,                     how many matching requests it affects (null = always;
                                            default 1 for throttle, null for the others)
     "status": 400, "code": "X", "message": "Y"      (error; `{match}` in the message becomes the
                                                      id list_contains matched)
     "ms": 500                                       (delay)
     "seconds": 30                                   (hold, hang; capped at 300)
     "body": "..."                                   (malformed; default a fixed garbage string)}
Rules are tried in order. A `delay` rule adds its delay and the search goes on; so does a `hold`
rule, which keeps the request, unanswered, until POST /_proxy/release (or `seconds`) and then lets
it go on as if the rule were not there — a test can then know that nothing was answered before it
released (a reset drops held requests). The first other matching rule with uses left is applied
and ends the search; with none, the request is forwarded.
throttle = HTTP 503 with EC2 code RequestLimitExceeded (the EC2/older-SDK status for it,
docs/references.md §3). error bodies use EC2's XML error shape; an error rule with status 400 and
code RequestTimeout gives the answer the AWS SDKs retry as transient although it is a 400.
Token buckets and the filter limit are checked first, in that order, before any rule.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import add_lifetime_args, make_http_server, serve_http  # noqa: E402

MAX_HANG_SECONDS = 300.0
MAX_BODY = 64 * 1024 * 1024
UPSTREAM_TIMEOUT = 120.0
GARBAGE = "\x00\x01this is not XML <Response><Errors <<<&&& \xff"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "proxy-connection"}
KINDS = {"throttle", "error", "delay", "hold", "hang", "reset", "malformed"}

# EC2's limit on filter values per request (docs/references.md §1.5).
DEFAULT_FILTER_LIMIT = 200
# Paginated Describe actions and the element that holds their list (DescribeAddresses has no
# pagination in EC2).
PAGED_SETS = {"DescribeTags": "tagSet", "DescribeRouteTables": "routeTableSet",
              "DescribeNetworkInterfaces": "networkInterfaceSet"}
# What counts towards the filter limit: every filter value, and every member of an id list.
FILTER_VALUE = re.compile(r"^(?:Filter\.\d+\.Value\.\d+|[A-Za-z]*Ids?\.\d+|PublicIp\.\d+)$")
# Not part of what a pagination token is bound to.
PAGING_PARAMS = {"NextToken", "MaxResults"}


def ec2_error_xml(code: str, message: str) -> bytes:
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}"
        f"</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


def filter_values(action: str, pairs: list[tuple[str, str]]) -> int:
    """How many filter values (and id-list members) a request carries, as EC2 counts them for
    its 200-value limit. Only Describe actions have filters."""
    if not action.startswith("Describe"):
        return 0
    return sum(1 for k, _ in pairs if FILTER_VALUE.match(k))


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}" if ns else name


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _serialize(root: ET.Element) -> bytes:
    ns = _ns(root.tag)
    # default_namespace: the EC2 namespace declared once on the root, children unprefixed, as
    # EC2 (and moto) write it.
    if ns:
        return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=ns)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def inject_propagated_routes(data: bytes, routes: list[dict[str, str]]) -> bytes:
    """Add the configured VGW-propagated routes to a DescribeRouteTables answer, each right after
    the static route with the same destination (EC2 lists both), else last."""
    root = ET.fromstring(data)
    ns = _ns(root.tag)
    tables = root.find(_q(ns, "routeTableSet"))
    if tables is None:
        return data
    for table in tables:
        rtb = table.findtext(_q(ns, "routeTableId"))
        mine = [r for r in routes if r.get("route_table") == rtb]
        if not mine:
            continue
        route_set = table.find(_q(ns, "routeSet"))
        if route_set is None:
            route_set = ET.SubElement(table, _q(ns, "routeSet"))
        for r in mine:
            item = ET.Element(_q(ns, "item"))
            # A VGW propagates IPv4 and IPv6 routes (never prefix lists): an IPv6 CIDR goes in
            # destinationIpv6CidrBlock, as EC2 lists it.
            dest_el = "destinationIpv6CidrBlock" if ":" in r["cidr"] else "destinationCidrBlock"
            for name, value in ((dest_el, r["cidr"]), ("gatewayId", r["gateway"]),
                                ("origin", "EnableVgwRoutePropagation"), ("state", "active")):
                ET.SubElement(item, _q(ns, name)).text = value
            existing = list(route_set)
            at = len(existing)
            for i, old in enumerate(existing):
                if old.findtext(_q(ns, dest_el)) == r["cidr"]:
                    at = i + 1
            route_set.insert(at, item)
            vgws = table.find(_q(ns, "propagatingVgwSet"))
            if vgws is None:
                vgws = ET.SubElement(table, _q(ns, "propagatingVgwSet"))
            if r["gateway"] not in [v.findtext(_q(ns, "gatewayId")) for v in vgws]:
                ET.SubElement(ET.SubElement(vgws, _q(ns, "item")), _q(ns, "gatewayId")).text = (
                    r["gateway"])
    return _serialize(root)


class Paged:
    """One paginated answer: moto's whole answer split into its envelope and its list items."""

    def __init__(self, data: bytes, set_name: str):
        root = ET.fromstring(data)
        self.ns = _ns(root.tag)
        holder = root.find(_q(self.ns, set_name))
        if holder is None:
            raise ValueError(f"no <{set_name}> in the answer")
        self.items = list(holder)
        for child in self.items:
            holder.remove(child)
        for old in root.findall(_q(self.ns, "nextToken")):
            root.remove(old)
        self.envelope = root
        self.set_name = set_name

    def page(self, start: int, end: int, next_token: str | None) -> bytes:
        root = copy.deepcopy(self.envelope)
        holder = root.find(_q(self.ns, self.set_name))
        assert holder is not None
        holder.extend(copy.deepcopy(self.items[start:end]))
        if next_token is not None:
            ET.SubElement(root, _q(self.ns, "nextToken")).text = next_token
        return _serialize(root)


class Bucket:
    """EC2's token bucket for one Action: `capacity` tokens, refilled at `refill` per second."""

    def __init__(self, capacity: float, refill: float):
        if capacity < 1 or refill < 0:
            raise ValueError("a bucket needs capacity >= 1 and refill >= 0")
        self.capacity = float(capacity)
        self.refill = float(refill)
        self.tokens = float(capacity)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class ProxyState:
    """Rules, settings, counters and log, shared by all handler threads (guarded by one lock)."""

    def __init__(self, upstream: str, delay_ms: int, filter_limit: int | None = DEFAULT_FILTER_LIMIT):
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.default_delay_ms = delay_ms
        self.default_filter_limit = filter_limit
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.throttled: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        # Numbers arrivals and answers in one order (never reset: orders stay comparable).
        self.seq = 0
        # Set on reset/shutdown: every `hang` waiting on it lets go at once.
        self.release = threading.Event()
        # Set by POST /_proxy/release (and on reset): every request a `hold` rule keeps goes on.
        self.gate = threading.Event()
        self._defaults()

    def _defaults(self) -> None:
        self.delay_ms = self.default_delay_ms
        self.filter_limit = self.default_filter_limit
        self.paging: dict[str, Any] | None = None
        self.bucket_settings: dict[str, dict[str, float]] = {}
        self.buckets: dict[str, Bucket] = {}
        self.propagated: list[dict[str, str]] = []
        self.replace_route_missing: str | None = None
        # token → {"key", "paged" (Paged), "offset", "index"}
        self.tokens: dict[str, dict[str, Any]] = {}

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        checked = []
        for raw in rules:
            rule = dict(raw)
            kind = rule.get("kind")
            if kind not in KINDS:
                raise ValueError(f"unknown rule kind {kind!r}")
            rule.setdefault("action", "*")
            rule.setdefault("times", 1 if kind == "throttle" else None)
            if kind in ("hang", "hold"):
                rule["seconds"] = min(float(rule.get("seconds", 30)), MAX_HANG_SECONDS)
            if kind == "error":
                rule.setdefault("status", 400)
                rule.setdefault("code", "InternalError")
                rule.setdefault("message", "injected by fault_proxy")
            contains = rule.get("list_contains") or {}
            if not isinstance(contains, dict):
                raise ValueError("list_contains must be an object {ParamName: id or [ids]}")
            rule["list_contains"] = {k: [v] if isinstance(v, str) else list(v)
                                     for k, v in contains.items()}
            checked.append(rule)
        with self.lock:
            self.rules = checked

    def configure(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """Apply POST /_proxy/config (only the keys given); return every setting."""
        unknown = set(cfg) - {"delay_ms", "paging", "filter_limit", "buckets",
                              "propagated_routes", "replace_route_missing"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        with self.lock:
            if "delay_ms" in cfg:
                self.delay_ms = int(cfg["delay_ms"])
            if "filter_limit" in cfg:
                self.filter_limit = None if cfg["filter_limit"] in (None, 0) else int(
                    cfg["filter_limit"])
            if "paging" in cfg:
                p = cfg["paging"]
                if p is None:
                    self.paging = None
                else:
                    size = int(p.get("page_size", 2))
                    if size < 1:
                        raise ValueError("page_size must be at least 1")
                    actions = list(p.get("actions") or PAGED_SETS)
                    bad = [a for a in actions if a not in PAGED_SETS]
                    if bad:
                        raise ValueError(f"cannot page {bad}: only {sorted(PAGED_SETS)}")
                    self.paging = {"page_size": size,
                                   "empty_first_page": bool(p.get("empty_first_page", False)),
                                   "actions": actions}
            if "buckets" in cfg:
                settings = {a: {"capacity": float(b["capacity"]), "refill": float(b["refill"])}
                            for a, b in (cfg["buckets"] or {}).items()}
                for b in settings.values():
                    Bucket(b["capacity"], b["refill"])  # validate
                self.bucket_settings = settings
                self.buckets = {}  # full again
            if "propagated_routes" in cfg:
                routes = []
                for r in cfg["propagated_routes"] or []:
                    if not {"route_table", "cidr", "gateway"} <= set(r):
                        raise ValueError("a propagated route needs route_table, cidr and gateway")
                    routes.append({k: str(r[k]) for k in ("route_table", "cidr", "gateway")})
                self.propagated = routes
            if "replace_route_missing" in cfg:
                self.replace_route_missing = cfg["replace_route_missing"] or None
            return self.settings()

    def settings(self) -> dict[str, Any]:
        return {"delay_ms": self.delay_ms, "filter_limit": self.filter_limit,
                "paging": copy.deepcopy(self.paging), "buckets": copy.deepcopy(self.bucket_settings),
                "propagated_routes": copy.deepcopy(self.propagated),
                "replace_route_missing": self.replace_route_missing}

    def reset(self) -> None:
        with self.lock:
            self.rules = []
            self.counts = {}
            self.throttled = {}
            self.log = []
            self._defaults()
            old = self.release
            self.release = threading.Event()
            held = self.gate
            self.gate = threading.Event()
        old.set()
        held.set()

    def release_held(self) -> None:
        """Let every request held by a `hold` rule go on; later ones are held again."""
        with self.lock:
            held = self.gate
            self.gate = threading.Event()
        held.set()

    def admit(self, action: str, ec2_call: bool, n_filter_values: int,
              entry: dict[str, Any]) -> str | None:
        """Count the request and give `entry` its arrival number; None if it may go on, else what
        answers it here: "bucket" (the Action's token bucket is empty) or "filter_limit"."""
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.counts[action] = self.counts.get(action, 0) + 1
            if not ec2_call:
                return None
            settings = self.bucket_settings.get(action) or self.bucket_settings.get("*")
            if settings is not None:
                bucket = self.buckets.get(action)
                if bucket is None:
                    bucket = self.buckets[action] = Bucket(settings["capacity"],
                                                           settings["refill"])
                if not bucket.take():
                    self.throttled[action] = self.throttled.get(action, 0) + 1
                    return "bucket"
            if self.filter_limit is not None and n_filter_values > self.filter_limit:
                return "filter_limit"
        return None

    def match(self, action: str, params: dict[str, str]) -> tuple[float, dict[str, Any] | None, float]:
        """Pick what to do: (extra delay in s, terminal rule or None, seconds to hold or 0)."""
        delay = self.delay_ms / 1000.0
        hold = 0.0
        with self.lock:
            for rule in self.rules:
                if rule["action"] not in ("*", action):
                    continue
                if any(params.get(k) != str(v) for k, v in (rule.get("params") or {}).items()):
                    continue
                found = None
                for name, ids in rule["list_contains"].items():
                    member = re.compile(rf"^{re.escape(name)}\.\d+$")
                    found = next((v for k, v in params.items() if member.match(k) and v in ids),
                                 None)
                    if found is None:
                        break
                if rule["list_contains"] and found is None:
                    continue
                if rule["times"] is not None:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                if rule["kind"] == "delay":
                    delay += float(rule.get("ms", 0)) / 1000.0
                    continue
                if rule["kind"] == "hold":
                    hold = max(hold, rule["seconds"])
                    continue
                chosen = copy.deepcopy(rule)
                if found is not None and "message" in chosen:
                    chosen["message"] = str(chosen["message"]).replace("{match}", found)
                return delay, chosen, hold
        return delay, None, hold

    def record(self, entry: dict[str, Any], arrived: float) -> None:
        """Log `entry` once: just before its answer is written, or when the proxy lets go of a
        request it does not answer."""
        with self.lock:
            if "done_seq" in entry:
                return
            self.seq += 1
            entry["done_seq"] = self.seq
            entry["ms"] = int((time.time() - arrived) * 1000)
            self.log.append(entry)

    # -- pagination ----------------------------------------------------------------------------
    def paging_for(self, action: str) -> dict[str, Any] | None:
        with self.lock:
            if self.paging is not None and action in self.paging["actions"]:
                return dict(self.paging)
        return None

    def new_token(self, key: tuple, paged: Paged, offset: int, index: int) -> str:
        token = "awshaproxy" + secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = {"key": key, "paged": paged, "offset": offset, "index": index}
        return token

    def token(self, token: str) -> dict[str, Any] | None:
        with self.lock:
            return self.tokens.get(token)


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
        entry = getattr(self, "_entry", None)
        if entry is not None and "done_seq" not in entry:
            # Logged before a byte of the answer leaves (see the module docstring).
            entry["status"] = status
            self.state.record(entry, self._arrived)
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
            if self.command == "POST" and path == "/_proxy/release":
                st.release_held()
                return self._json(200, {"ok": True})
            if self.command == "POST" and path == "/_proxy/config":
                cfg = json.loads(body or b"{}")
                if not isinstance(cfg, dict):
                    raise ValueError("config must be a JSON object")
                return self._json(200, {"ok": True, **st.configure(cfg)})
            if self.command == "GET" and path == "/_proxy/config":
                with st.lock:
                    return self._json(200, st.settings())
            if self.command == "GET" and path == "/_proxy/counts":
                with st.lock:
                    return self._json(200, dict(st.counts))
            if self.command == "GET" and path == "/_proxy/throttled":
                with st.lock:
                    return self._json(200, dict(st.throttled))
            if self.command == "GET" and path == "/_proxy/log":
                with st.lock:
                    return self._json(200, list(st.log))
            if self.command == "GET" and path == "/_proxy/rules":
                with st.lock:
                    return self._json(200, copy.deepcopy(st.rules))
        except (ValueError, TypeError, KeyError) as e:
            return self._json(400, {"ok": False, "error": str(e)})
        return self._json(404, {"ok": False, "error": f"no control endpoint {self.command} {path}"})

    # -- proxying --------------------------------------------------------------------------------
    def _handle(self) -> None:
        arrived = time.time()
        self._entry = None  # set once this is a proxied request; control answers are not logged
        self._arrived = arrived
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True
            return self._json(400, {"error": str(e)})
        if urlsplit(self.path).path.startswith("/_proxy/"):
            return self._control(body)

        pairs: list[tuple[str, str]] = []
        ctype = (self.headers.get("Content-Type") or "").lower()
        form_body = bool(body) and ("x-www-form-urlencoded" in ctype or not ctype)
        if form_body:
            pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        query = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
        form: dict[str, list[str]] = {}
        for k, v in pairs:
            form.setdefault(k, []).append(v)
        for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items():
            form.setdefault(k, v)
        params = {k: v[0] for k, v in form.items()}
        action = params.get("Action", "")
        ec2_call = bool(action)
        if not action:
            # Not an EC2 query call (e.g. /moto-api/...): count under the method and path.
            action = f"{self.command} {urlsplit(self.path).path}"

        st = self.state
        release, gate = st.release, st.gate
        n_values = filter_values(action, pairs + query) if ec2_call else 0
        entry: dict[str, Any] = {"action": action, "params": params, "status": 0,
                                 "fault": None, "t": arrived, "filter_values": n_values}
        refused = st.admit(action, ec2_call, n_values, entry)
        hold = 0.0
        if refused is None:
            delay, rule, hold = st.match(action, params)
        else:
            delay, rule = st.delay_ms / 1000.0, None
        entry["fault"] = refused or (rule["kind"] if rule else None)
        self._entry = entry
        try:
            if hold > 0:
                gate.wait(hold)
                if release.is_set():
                    self.close_connection = True
                    return  # a reset while holding: drop the request
            if delay > 0 and release.wait(min(delay, MAX_HANG_SECONDS)):
                self.close_connection = True
                return  # released by a reset while delaying: drop the request
            if refused == "bucket":
                self._send(503, ec2_error_xml("RequestLimitExceeded", "Request limit exceeded."))
            elif refused == "filter_limit":
                self._send(400, ec2_error_xml(
                    "FilterLimitExceeded",
                    f"The maximum number of filter values specified on a single call is "
                    f"{st.filter_limit}"))
            elif rule is None:
                self._forward_ec2(body, action, pairs, form_body, entry)
            elif rule["kind"] == "throttle":
                self._send(503, ec2_error_xml("RequestLimitExceeded", "Request limit exceeded."))
            elif rule["kind"] == "error":
                self._send(int(rule["status"]), ec2_error_xml(rule["code"], rule["message"]))
            elif rule["kind"] == "malformed":
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
            st.record(entry, arrived)  # no-op when the answer already logged it
            self._entry = None

    def _forward_ec2(self, body: bytes, action: str, pairs: list[tuple[str, str]],
                     form_body: bool, entry: dict[str, Any]) -> None:
        """Forward to moto, then answer as EC2 would (routes, pagination); `_send` logs it."""
        st = self.state
        paging = st.paging_for(action) if form_body else None
        if paging is None:
            status, headers, data = self._upstream(body)
            self._answer(action, pairs, status, headers, data)
            return

        sent = dict(pairs)
        key = tuple(sorted((k, v) for k, v in pairs if k not in PAGING_PARAMS))
        size = paging["page_size"]
        try:
            asked = int(sent.get("MaxResults", "0") or 0)
        except ValueError:
            asked = 0
        if asked > 0:
            size = min(size, asked)
        token_in = sent.get("NextToken") or None
        if token_in is not None:
            held = st.token(token_in)
            if held is None or held["key"] != key:
                entry["fault"] = "bad_token"
                self._send(400, ec2_error_xml(
                    "InvalidPaginationToken",
                    f"The pagination token {token_in} is not valid for this request."))
                return
            paged, start, index = held["paged"], held["offset"], held["index"]
            end = min(start + size, len(paged.items))
        else:
            # The whole list from moto: the request without MaxResults/NextToken.
            trimmed = urlencode([(k, v) for k, v in pairs if k not in PAGING_PARAMS]).encode()
            status, headers, data = self._upstream(trimmed)
            if status != 200:
                self._answer(action, pairs, status, headers, data)
                return
            data = self._rewrite(action, pairs, status, data)
            try:
                paged = Paged(data, PAGED_SETS[action])
            except (ET.ParseError, ValueError):
                # Not a list answer moto would give: pass it on untouched.
                self._answer(action, pairs, status, headers, data, rewritten=True)
                return
            start, index = 0, 0
            end = 0 if paging["empty_first_page"] else min(size, len(paged.items))
        more = end < len(paged.items) or (token_in is None and paging["empty_first_page"])
        token_out = st.new_token(key, paged, end, index + 1) if more else None
        entry["page"] = {"index": index, "items": end - start, "total": len(paged.items),
                         "token": token_in, "next_token": token_out}
        self._send(200, paged.page(start, end, token_out))

    def _rewrite(self, action: str, pairs: list[tuple[str, str]], status: int,
                 data: bytes) -> bytes:
        """moto's answer → EC2's, where the settings say EC2 differs."""
        st = self.state
        with st.lock:
            propagated = list(st.propagated)
            missing = st.replace_route_missing
        if action == "DescribeRouteTables" and status == 200 and propagated:
            try:
                return inject_propagated_routes(data, propagated)
            except ET.ParseError:
                return data
        if (action == "ReplaceRoute" and status == 400 and missing
                and b"InvalidParameterValue" in data and b"CreateRoute" in data):
            sent = dict(pairs)
            field, dest = next(((f, sent[k]) for k, f in (
                ("DestinationCidrBlock", "destination-cidr-block"),
                ("DestinationIpv6CidrBlock", "destination-ipv6-cidr-block"),
                ("DestinationPrefixListId", "destination-prefix-list-id")) if sent.get(k)),
                ("destination-cidr-block", "?"))
            return ec2_error_xml(missing, (
                f"no route with {field} {dest} in route table {sent.get('RouteTableId', '?')}"))
        return data

    def _answer(self, action: str, pairs: list[tuple[str, str]], status: int,
                headers: list[tuple[str, str]], data: bytes, rewritten: bool = False) -> None:
        if not rewritten:
            new = self._rewrite(action, pairs, status, data)
            if new is not data:
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
                headers.append(("Content-Type", "text/xml"))
                data = new
        self._send(status, data, headers=headers)

    def _upstream(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request to moto: (status, headers to pass on, body); 502 when moto is gone."""
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
            return resp.status, out, data
        except (OSError, http.client.HTTPException) as e:
            return 502, [], ec2_error_xml("ProxyUpstreamError", f"moto unreachable: {e}")
        finally:
            conn.close()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET


def make_server(upstream: str, port: int = 0, delay_ms: int = 0, tcp_nodelay: bool = False,
                filter_limit: int | None = DEFAULT_FILTER_LIMIT,
                ) -> tuple[ThreadingHTTPServer, ProxyState]:
    state = ProxyState(upstream, delay_ms, filter_limit)
    return make_http_server(Handler, state, port, tcp_nodelay), state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="moto's URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="fixed delay added to every forwarded request (benchmarks)")
    ap.add_argument("--filter-limit", type=int, default=DEFAULT_FILTER_LIMIT,
                    help="EC2's filter values per Describe request (0 = no limit); the default "
                         "after every reset")
    ap.add_argument("--tcp-nodelay", action="store_true",
                    help="TCP_NODELAY towards the client: no delayed-ACK stall (benchmarks)")
    add_lifetime_args(ap)
    args = ap.parse_args(argv)
    if urlsplit(args.upstream).hostname not in ("127.0.0.1", "localhost"):
        ap.error("only a loopback upstream is allowed")

    server, state = make_server(args.upstream, args.port, args.delay_ms, args.tcp_nodelay,
                                args.filter_limit or None)
    # Release connections held by `hang` rules first, or shutdown would wait for them.
    return serve_http(server, args, on_stop=lambda: state.release.set())


if __name__ == "__main__":
    sys.exit(main())
