#!/usr/bin/env python3
"""IMDSv2 emulator for one pretend EC2 instance, for the awsha integration tests.

Owns: the instance metadata service as the awsha binary (aws-config's credential and region
providers, and awsha's own IMDS client) sees it. moto's IMDS cannot stand in: it serves static
values unrelated to the EC2 state, has no network/interfaces/macs/ paths, does not validate tokens,
and its token answer lacks the TTL header aws-config requires (docs/references.md §7 and §14).
Two emulators (one per node) act as the two pfSense
instances.

Values are derived live from moto's EC2 state for the configured instance (boto3 with dummy
credentials against moto directly, not through the fault proxy, so the proxy's counts only show the
binary's EC2 calls): each request is answered from a fetch that started after it arrived, shared by
the requests of a burst (`EmulatorState.view`). An address moved by AssignPrivateIpAddresses therefore
shows up in `local-ipv4s` at once (real EC2 is asynchronous; tests that need the lag can use the
`slow` fault).

Usage:
    python tests/harness/imds_emulator.py --ec2 http://127.0.0.1:<motoport> --instance-id i-…
        [--region us-east-1] [--port 0] [--role awsha-role] [--tcp-nodelay] [--no-parent-watch]
        [--max-seconds N]
Prints `READY <port>`.

--tcp-nodelay (benchmarks): TCP_NODELAY on the connections to the binary. Without it an answer's
body (written after its headers) waits for the client's delayed ACK on a reused keep-alive
connection: about 40 ms per request on Linux, which is the harness's time, not IMDS's.

Protocol (IMDSv2 only, as with HttpTokens=required):
  PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds: 1..21600 → a random token; the
  answer echoes that header (aws-config fails with NoTtl without it). Missing/invalid TTL → 400.
  Every GET needs a valid unexpired X-aws-ec2-metadata-token, else 401. Unknown paths → 404 (the
  SDK tries iam/security-credentials-extended/ first and must fall back on 404).

Paths (under /latest/): meta-data/ (listing), meta-data/instance-id, meta-data/ami-id,
  meta-data/local-ipv4, meta-data/placement/{region,availability-zone,availability-zone-id},
  meta-data/mac (device-index 0), meta-data/network/interfaces/macs/ (one `<mac>/` per line),
  meta-data/network/interfaces/macs/<mac>/{interface-id,device-number,local-ipv4s (primary first),
  subnet-id,subnet-ipv4-cidr-block,vpc-id,vpc-ipv4-cidr-block,vpc-ipv4-cidr-blocks,
  network-card-index,owner-id,mac} and, when the ENI has IPv6 addresses / its subnet and VPC have
  IPv6 blocks (else 404, as IMDS leaves them out), ipv6s (one address a line, EC2's order, RFC 5952
  form), subnet-ipv6-cidr-blocks and vpc-ipv6-cidr-blocks (one block a line), meta-data/iam/info, meta-data/iam/security-credentials/ (role
  name), meta-data/iam/security-credentials/<role> (JSON credentials), and
  dynamic/instance-identity/document.

Credentials: one random set per emulator process (AccessKeyId `ASIAEMU…`, random secret and token,
Expiration now + 6 h), so tests can grep logs for them (a secret must never be logged).

Control API (no token; under /_emulator/):
  POST /_emulator/faults  {"mode": "ok"}                       normal service (clears faults)
                          {"mode": "401"}                      every GET 401, even with a token
                          {"mode": "slow", "delay_ms": N}      delay every request by N ms
                          {"mode": "no_interface_id", "mac": M} macs/M/interface-id → 404
                          {"mode": "expire_tokens"}            one-off: every token issued so far
                                                               becomes invalid (mode unchanged)
                          {"mode": "expire_tokens_on_get"}     one-off, armed now, fired by the next
                                                               metadata GET as it is served (after
                                                               any `slow` delay): every token issued
                                                               so far becomes invalid, that GET's
                                                               included (mode unchanged; "ok" and
                                                               reset disarm it)
                          {"mode": "refuse_tokens"}            PUT /latest/api/token → 403, as IMDS
                                                               answers when it is disabled (GETs
                                                               then have no valid token: 401)
                          {"mode": "no_region"}                meta-data/placement/region → 404
                                                               (IMDS before 2020-08-24 had no
                                                               such path); everything else served
  POST /_emulator/config  {"instance_id": "i-…", "region": "…"} re-target (tests reuse emulators)
                          {"cache": true}  answer from a snapshot of the instance's EC2 state
                          taken now (sending it again takes a new one), instead of asking moto on
                          every request (~50 ms per ENI path, where real IMDS answers in well under
                          a millisecond): for benchmarks, which re-snapshot before each timed run.
                          {"cache": false} back to live values (the default)
  POST /_emulator/reset   faults ok, tokens, counts and log cleared, cache off
  GET  /_emulator/credentials  the issued credentials (same JSON as the IMDS answer + RoleName)
  GET  /_emulator/counts  {"PUT /latest/api/token": n, "GET <path>": n, ..., "401": n, "404": n,
                          "moto rounds": n (live fetches of the instance from moto; concurrent
                          GETs share one that started after they arrived, so values stay live)}
  GET  /_emulator/tokens  every IMDSv2 token handed out since the last reset, expired ones included
                          (tests grep awsha's output for them: a token must never be logged)
  GET  /_emulator/log     every metadata request since the last reset: [{"method", "path",
                          "status", "t" (unix time at arrival), "ms" (time to answer)}]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import string
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import add_lifetime_args, make_http_server, serve_http  # noqa: E402

TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_DELAY_S = 120.0


def _rand(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class NotFound(Exception):
    pass


class EmulatorState:
    def __init__(self, ec2_url: str, instance_id: str, region: str, role: str):
        self.ec2_url = ec2_url
        self.instance_id = instance_id
        self.region = region
        self.role = role
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token → expiry (monotonic)
        self.issued: list[str] = []  # every token handed out since the last reset
        self.mode = "ok"
        self.expire_on_get = False  # expire_tokens_on_get: armed until the next metadata GET
        self.delay_ms = 0
        self.missing_iid_mac: str | None = None
        self.counts: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        # (instance, interfaces) while {"cache": true} is on, else None (live values).
        self.snapshot: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
        now = datetime.now(timezone.utc)
        self.credentials = {
            "Code": "Success",
            "LastUpdated": _iso(now),
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAEMU" + _rand(string.ascii_uppercase + string.digits, 13),
            "SecretAccessKey": "emuSecret" + _rand(string.ascii_letters + string.digits, 31),
            "Token": "emuToken" + _rand(string.ascii_letters + string.digits, 56),
            "Expiration": _iso(now + timedelta(hours=6)),
        }
        self._clients: dict[str, Any] = {}
        self._client_lock = threading.Lock()
        # Single flight for live values: (monotonic time its fetch started, (instance, interfaces)).
        # A request may reuse a fetch that started after it arrived (that answer is at least as
        # new as the request), so a burst of N concurrent metadata GETs costs at most two rounds
        # of moto calls instead of N (each round is 4 moto calls, ~50-100 ms; N of them at once
        # queued behind moto's GIL for over 2 s on a loaded CI machine, past awsha's IMDS
        # deadline). Answers stay live: nothing older than the request is ever served.
        self.fetch_lock = threading.Lock()
        self._fresh: tuple[float, tuple[dict[str, Any], list[dict[str, Any]]]] | None = None

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def client(self) -> Any:
        # One boto3 client per region, created lazily (boto3 clients are thread-safe, creating
        # them is not). Built under its own lock, not self.lock: creating one takes ~0.3 s, and
        # every request, token PUTs included, takes self.lock for its counts.
        with self._client_lock:
            region = self.region
            if region not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[region] = boto3.client(
                    "ec2", endpoint_url=self.ec2_url, region_name=region,
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                  connect_timeout=5, read_timeout=30),
                )
            return self._clients[region]

    def take_snapshot(self) -> None:
        """Cache the instance and its interfaces as they are in moto now ({"cache": true})."""
        with self.lock:
            self.snapshot = None
        snap = self.view()
        with self.lock:
            self.snapshot = snap

    # -- live view of the instance in moto ---------------------------------------------------
    def view(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(instance, interfaces): the snapshot while caching, else as moto has them now."""
        snap = self.snapshot
        if snap is not None:
            return snap
        arrived = time.monotonic()
        with self.fetch_lock:
            fresh = self._fresh
            if fresh is not None and fresh[0] >= arrived:
                return fresh[1]
            started = time.monotonic()
            inst = self._instance_live()
            out = (inst, self._interfaces_live(inst))
            self._fresh = (started, out)
            self.count("moto rounds")
            return out

    def forget(self) -> None:
        """Drop the last live fetch (re-targeted or reset: it may be another instance's)."""
        with self.fetch_lock:
            self._fresh = None

    def instance(self) -> dict[str, Any]:
        return self.view()[0]

    def interfaces(self) -> list[dict[str, Any]]:
        """The instance's ENIs, each {mac, eni, device, ips (primary first), subnet, vpc, cidrs}."""
        return self.view()[1]

    def _instance_live(self) -> dict[str, Any]:
        ec2 = self.client()
        try:
            res = ec2.describe_instances(InstanceIds=[self.instance_id])
        except Exception as e:  # unknown instance (e.g. after a moto reset)
            raise NotFound(f"instance {self.instance_id}: {e}") from None
        for r in res.get("Reservations", []):
            for inst in r.get("Instances", []):
                return inst
        raise NotFound(f"instance {self.instance_id} not found")

    def _interfaces_live(self, inst: dict[str, Any]) -> list[dict[str, Any]]:
        ec2 = self.client()
        enis = ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}]
        )["NetworkInterfaces"]
        subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(
            SubnetIds=sorted({e["SubnetId"] for e in enis}))["Subnets"]} if enis else {}
        vpcs = {v["VpcId"]: v for v in ec2.describe_vpcs(
            VpcIds=sorted({e["VpcId"] for e in enis}))["Vpcs"]} if enis else {}
        out = []
        for e in enis:
            addrs = e.get("PrivateIpAddresses", [])
            primary = [a["PrivateIpAddress"] for a in addrs if a.get("Primary")]
            others = [a["PrivateIpAddress"] for a in addrs if not a.get("Primary")]
            vpc = vpcs.get(e["VpcId"], {})
            vpc_cidrs = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])] or (
                [vpc["CidrBlock"]] if vpc.get("CidrBlock") else [])
            subnet = subnets.get(e["SubnetId"], {})
            out.append({
                "mac": e["MacAddress"].lower(),
                "eni": e["NetworkInterfaceId"],
                "device": int(e.get("Attachment", {}).get("DeviceIndex", 0)),
                "ips": primary + others,
                "subnet": e["SubnetId"],
                "subnet_cidr": subnets.get(e["SubnetId"], {}).get("CidrBlock", ""),
                "vpc": e["VpcId"],
                "vpc_cidr": vpc.get("CidrBlock", ""),
                "vpc_cidrs": vpc_cidrs,
                "owner": e.get("OwnerId", ""),
                # IPv6 (issue 14): the ENI's addresses in EC2's order, the subnet's and the VPC's
                # associated blocks (DescribeSubnets/DescribeVpcs; moto P8 keeps them canonical).
                "ipv6s": [a["Ipv6Address"] for a in e.get("Ipv6Addresses", [])
                          if a.get("Ipv6Address")],
                "subnet_ipv6_cidrs": [
                    a["Ipv6CidrBlock"] for a in subnet.get("Ipv6CidrBlockAssociationSet", [])
                    if (a.get("Ipv6CidrBlockState") or {}).get("State") == "associated"],
                "vpc_ipv6_cidrs": [
                    a["Ipv6CidrBlock"] for a in vpc.get("Ipv6CidrBlockAssociationSet", [])
                    if (a.get("Ipv6CidrBlockState") or {}).get("State") == "associated"],
            })
        out.sort(key=lambda i: i["device"])
        return out

    def resolve(self, path: str) -> tuple[str, str]:
        """Answer one GET below /latest/: (content-type, body) or raise NotFound."""
        text = "text/plain"
        p = path
        if p in ("meta-data", "meta-data/"):
            return text, "\n".join(["ami-id", "iam/", "instance-id", "local-ipv4", "mac",
                                    "network/", "placement/"])
        if p == "meta-data/instance-id":
            return text, self.instance_id
        if p == "meta-data/placement/region":
            with self.lock:
                if self.mode == "no_region":
                    raise NotFound(p)
            return text, self.region
        if p in ("meta-data/placement", "meta-data/placement/"):
            return text, "availability-zone\navailability-zone-id\nregion"
        if p == "meta-data/placement/availability-zone":
            return text, self.instance()["Placement"]["AvailabilityZone"]
        if p == "meta-data/placement/availability-zone-id":
            az = self.instance()["Placement"]["AvailabilityZone"]
            return text, f"use1-az{ord(az[-1]) - ord('a') + 1}"
        if p == "meta-data/ami-id":
            return text, self.instance().get("ImageId", "")
        if p == "meta-data/local-ipv4":
            return text, self.instance().get("PrivateIpAddress", "")
        if p == "meta-data/mac":
            for i in self.interfaces():
                if i["device"] == 0:
                    return text, i["mac"]
            raise NotFound("no device-index 0 interface")
        if p in ("meta-data/network", "meta-data/network/"):
            return text, "interfaces/"
        if p in ("meta-data/network/interfaces", "meta-data/network/interfaces/"):
            return text, "macs/"
        prefix = "meta-data/network/interfaces/macs"
        if p in (prefix, prefix + "/"):
            return text, "\n".join(f"{i['mac']}/" for i in self.interfaces())
        if p.startswith(prefix + "/"):
            rest = p[len(prefix) + 1:].rstrip("/")
            mac, _, leaf = rest.partition("/")
            iface = next((i for i in self.interfaces() if i["mac"] == mac.lower()), None)
            if iface is None:
                raise NotFound(f"no interface with mac {mac}")
            with self.lock:
                hide_iid = self.mode == "no_interface_id" and self.missing_iid_mac == mac.lower()
            leaves = {
                "device-number": str(iface["device"]),
                "interface-id": iface["eni"],
                "local-ipv4s": "\n".join(iface["ips"]),
                "mac": iface["mac"],
                "network-card-index": "0",
                "owner-id": iface["owner"],
                "subnet-id": iface["subnet"],
                "subnet-ipv4-cidr-block": iface["subnet_cidr"],
                "vpc-id": iface["vpc"],
                "vpc-ipv4-cidr-block": iface["vpc_cidr"],
                "vpc-ipv4-cidr-blocks": "\n".join(iface["vpc_cidrs"]),
            }
            # IPv6 leaves exist only when there is something to list: IMDS answers 404 for
            # ipv6s on an ENI without IPv6 addresses, as it does for local-ipv4s on an IPv6-only
            # one (docs/references.md §6).
            for leaf_name, values in (("ipv6s", iface["ipv6s"]),
                                      ("subnet-ipv6-cidr-blocks", iface["subnet_ipv6_cidrs"]),
                                      ("vpc-ipv6-cidr-blocks", iface["vpc_ipv6_cidrs"])):
                if values:
                    leaves[leaf_name] = "\n".join(values)
            if hide_iid:
                del leaves["interface-id"]
            if leaf == "":
                return text, "\n".join(sorted(leaves))
            if leaf in leaves:
                return text, leaves[leaf]
            raise NotFound(p)
        if p in ("meta-data/iam", "meta-data/iam/"):
            return text, "info\nsecurity-credentials/"
        if p == "meta-data/iam/info":
            return "application/json", json.dumps({
                "Code": "Success", "LastUpdated": self.credentials["LastUpdated"],
                "InstanceProfileArn": f"arn:aws:iam::123456789012:instance-profile/{self.role}",
                "InstanceProfileId": "AIPAEMULATOR0000000000"})
        if p == "meta-data/iam/security-credentials/":
            return text, self.role
        if p in ("meta-data/iam/security-credentials",):
            return text, self.role
        if p == f"meta-data/iam/security-credentials/{self.role}":
            return "application/json", json.dumps(self.credentials, indent=2)
        if p == "dynamic/instance-identity/document":
            inst = self.instance()
            return "application/json", json.dumps({
                "accountId": "123456789012", "architecture": "x86_64",
                "availabilityZone": inst["Placement"]["AvailabilityZone"],
                "imageId": inst.get("ImageId", ""), "instanceId": self.instance_id,
                "instanceType": inst.get("InstanceType", "t3.small"),
                "privateIp": inst.get("PrivateIpAddress", ""), "region": self.region,
                "version": "2017-09-30"}, indent=2)
        # Everything else, notably meta-data/iam/security-credentials-extended/, is unknown.
        raise NotFound(p)


class Handler(BaseHTTPRequestHandler):
    # IMDS speaks HTTP/1.1; every answer carries Content-Length so keep-alive works.
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    state: EmulatorState

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: str, ctype: str = "text/plain",
              extra: dict[str, str] | None = None) -> None:
        self._status = status
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(n, 1 << 20)) if n else b""

    def _control(self, path: str) -> None:
        st = self.state
        body = self._body()
        try:
            data = json.loads(body or b"{}") if self.command == "POST" else {}
        except ValueError as e:
            return self._send(400, json.dumps({"error": str(e)}), "application/json")
        if self.command == "POST" and path == "/_emulator/faults":
            mode = data.get("mode", "ok")
            with st.lock:
                if mode == "expire_tokens":
                    st.tokens.clear()
                elif mode == "expire_tokens_on_get":
                    st.expire_on_get = True
                elif mode in ("ok", "401", "slow", "no_interface_id", "refuse_tokens", "no_region"):
                    if mode == "ok":
                        st.expire_on_get = False
                    st.mode = mode
                    st.delay_ms = int(data.get("delay_ms", 0)) if mode == "slow" else 0
                    st.missing_iid_mac = (data.get("mac") or "").lower() or None
                else:
                    return self._send(400, json.dumps({"error": f"unknown mode {mode!r}"}),
                                      "application/json")
            return self._send(200, json.dumps({"ok": True, "mode": st.mode}), "application/json")
        if self.command == "POST" and path == "/_emulator/config":
            with st.lock:
                st.instance_id = data.get("instance_id", st.instance_id)
                st.region = data.get("region", st.region)
                if "instance_id" in data or "region" in data or data.get("cache") is False:
                    st.snapshot = None
            st.forget()
            if data.get("cache") is True:
                try:
                    st.take_snapshot()
                except NotFound as e:
                    return self._send(400, json.dumps({"error": str(e)}), "application/json")
            return self._send(200, json.dumps({"ok": True}), "application/json")
        if self.command == "POST" and path == "/_emulator/reset":
            with st.lock:
                st.tokens.clear()
                st.issued = []
                st.counts = {}
                st.log = []
                st.snapshot = None
                st.mode, st.delay_ms, st.missing_iid_mac = "ok", 0, None
                st.expire_on_get = False
            st.forget()
            return self._send(200, json.dumps({"ok": True}), "application/json")
        if self.command == "GET" and path == "/_emulator/credentials":
            return self._send(200, json.dumps({**st.credentials, "RoleName": st.role}),
                              "application/json")
        if self.command == "GET" and path == "/_emulator/tokens":
            with st.lock:
                return self._send(200, json.dumps(list(st.issued)), "application/json")
        if self.command == "GET" and path == "/_emulator/counts":
            with st.lock:
                return self._send(200, json.dumps(st.counts), "application/json")
        if self.command == "GET" and path == "/_emulator/log":
            with st.lock:
                return self._send(200, json.dumps(st.log), "application/json")
        return self._send(404, json.dumps({"error": "unknown control path"}), "application/json")

    def _handle(self) -> None:
        st = self.state
        path = urlsplit(self.path).path
        if path.startswith("/_emulator/"):
            return self._control(path)
        arrived = time.time()
        self._status = 0
        try:
            self._serve(st, path)
        finally:
            with st.lock:
                st.log.append({"method": self.command, "path": path, "status": self._status,
                               "t": arrived, "ms": round((time.time() - arrived) * 1000, 2)})

    def _serve(self, st: EmulatorState, path: str) -> None:
        self._body()  # drain, so keep-alive stays in sync
        st.count(f"{self.command} {path}")
        with st.lock:
            mode, delay_ms = st.mode, st.delay_ms
        if mode == "slow" and delay_ms > 0:
            time.sleep(min(delay_ms / 1000.0, MAX_DELAY_S))

        if path == "/latest/api/token":
            if self.command != "PUT":
                st.count("405")
                return self._send(405, "Method Not Allowed")
            ttl_raw = self.headers.get(TTL_HEADER)
            try:
                ttl = int(ttl_raw) if ttl_raw is not None else None
            except ValueError:
                ttl = None
            if ttl is None or not 1 <= ttl <= 21600:
                st.count("400")
                return self._send(400, "Bad Request")
            if mode == "refuse_tokens":
                st.count("403")
                return self._send(403, "Forbidden")
            token = "AQAEA" + _rand(string.ascii_letters + string.digits + "-_", 51) + "=="
            with st.lock:
                st.tokens[token] = time.monotonic() + ttl
                st.issued.append(token)
            return self._send(200, token, extra={TTL_HEADER: str(ttl)})

        if self.command not in ("GET", "HEAD"):
            st.count("405")
            return self._send(405, "Method Not Allowed")
        token = self.headers.get(TOKEN_HEADER)
        with st.lock:
            if st.expire_on_get:
                st.tokens.clear()
                st.expire_on_get = False
            expiry = st.tokens.get(token or "")
            valid = expiry is not None and expiry > time.monotonic()
        if mode == "401" or not valid:
            st.count("401")
            return self._send(401, "Unauthorized")
        if not path.startswith("/latest/"):
            st.count("404")
            return self._send(404, "Not Found")
        rel = path[len("/latest/"):]
        try:
            try:
                ctype, body = st.resolve(rel)
            except NotFound:
                # Real IMDS also answers a leaf asked for with a trailing slash (botocore's region
                # fetcher asks for placement/availability-zone/).
                if not rel.endswith("/"):
                    raise
                ctype, body = st.resolve(rel.rstrip("/"))
        except NotFound:
            st.count("404")
            return self._send(404, "Not Found")
        except Exception as e:  # moto unreachable etc.: say so, loudly
            st.count("500")
            return self._send(500, f"imds_emulator: {type(e).__name__}: {e}")
        return self._send(200, body, ctype)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle  # type: ignore[assignment]


def make_server(ec2_url: str, instance_id: str, region: str, role: str = "awsha-role",
                port: int = 0, tcp_nodelay: bool = False) -> tuple[ThreadingHTTPServer,
                                                                  EmulatorState]:
    state = EmulatorState(ec2_url, instance_id, region, role)
    state.client()  # before READY: the first metadata answer should not pay for boto3's start
    return make_http_server(Handler, state, port, tcp_nodelay), state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ec2", required=True, help="moto's URL (direct, not the fault proxy)")
    ap.add_argument("--instance-id", default="i-unset")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--role", default="awsha-role")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tcp-nodelay", action="store_true",
                    help="TCP_NODELAY towards the client: no delayed-ACK stall (benchmarks)")
    add_lifetime_args(ap)
    args = ap.parse_args(argv)
    if urlsplit(args.ec2).hostname not in ("127.0.0.1", "localhost"):
        ap.error("only a loopback EC2 endpoint is allowed")
    server, _state = make_server(args.ec2, args.instance_id, args.region, args.role, args.port,
                                 args.tcp_nodelay)
    return serve_http(server, args)


if __name__ == "__main__":
    sys.exit(main())
