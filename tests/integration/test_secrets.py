"""No secret in any output: the instance-profile credentials the IMDS emulator hands out
(AccessKeyId, SecretAccessKey, Token) and every IMDSv2 token it issued must never appear in
anything awsha writes — stdout, stderr (with -vv, the most verbose), the JSON report, the files it
leaves in its run directory — in successful and failing runs of every command.

Owns: the secrets test. The credentials come from GET /_emulator/credentials, the tokens from
GET /_emulator/tokens (every token issued since the emulator's reset, expired ones included). The
runs also set RUST_LOG=trace (in case a build ever installs a tracing subscriber, the SDK's
request logging must not leak either). Syslog is off in tests (AWSHA_NO_SYSLOG); what goes to
syslog is a subset of what -vv prints on stderr (src/log.rs).

moto: P1/P3 for the successful failover; the rest reads or fails.
"""

from __future__ import annotations

from pathlib import Path

from awsha_scenario import MISSING_RTB, Node, Proxy, Scenario, Timed, emulator_tokens

VERBOSE_ENV = {"RUST_LOG": "trace", "RUST_BACKTRACE": "1", "AWS_LOG_LEVEL": "trace"}


def needles(node: Node) -> dict[str, str]:
    creds = node.imds.credentials()
    out = {f"credentials {k}": creds[k] for k in ("AccessKeyId", "SecretAccessKey", "Token")}
    for i, t in enumerate(emulator_tokens(node.imds)):
        out[f"IMDSv2 token #{i + 1}"] = t
    return out


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = []
    for name, value in secrets.items():
        # The whole value, and a telling prefix of it (a truncated log line still leaks).
        if value in text or value[:16] in text:
            found.append(name)
    return found


def test_no_secret_in_any_output(scenario: Scenario, node_a: Node, node_b: Node,
                                 proxy: Proxy) -> None:
    runs: list[tuple[str, Timed]] = []

    def run(label: str, node: Node, *args: str, env: dict[str, str] | None = None) -> Timed:
        r = node.run("-vv", *args, env_extra={**VERBOSE_ENV, **(env or {})}, timeout=90)
        runs.append((label, r))
        return r

    # Successful runs of every command that talks to AWS, JSON and text.
    assert run("failover", node_a, "failover", "wan@1", "--json").code == 0
    run("failover text", node_a, "failover", "lan@2")
    run("reconcile", node_a, "reconcile", "--json")
    run("reconcile text", node_a, "reconcile")
    run("status", node_a, "status", "--json")
    run("status text", node_a, "status")
    run("doctor", node_a, "doctor", "--json")
    run("doctor text", node_a, "doctor")
    run("interfaces", node_a, "interfaces", "--json")
    run("map-ip", node_a, "map-ip", "--interface", "wan", "--from-subnet", "10.0.1.0/24",
        "10.0.1.10")
    run("failover B (peer)", node_b, "failover", "wan@1", "--force", "--json")

    # Failing runs: an EC2 error, a denied call, a hang into the deadline, throttling, garbage.
    node_a.config.routes[1]["routetable"] = MISSING_RTB
    node_a.write_config()
    assert run("failover missing rtb", node_a, "failover", "wan@1", "--json").code == 1
    proxy.rules([
        {"action": "AssignPrivateIpAddresses", "kind": "error", "status": 403,
         "code": "UnauthorizedOperation",
         "message": "You are not authorized to perform this operation. Encoded authorization "
                    "failure message: AbCdEf"},
        {"action": "ReplaceRoute", "kind": "hang", "seconds": 30},
        {"action": "AssociateAddress", "kind": "throttle", "times": None},
        {"action": "CreateTags", "kind": "malformed"},
        {"action": "DescribeRouteTables", "kind": "reset"},
    ])
    run("failover faults", node_a, "--deadline", "3", "failover", "wan@1", "--json")
    run("reconcile faults", node_a, "--deadline", "3", "reconcile", "--json")
    run("doctor faults", node_a, "--deadline", "3", "doctor", "--json")
    proxy.rules([])
    # IMDS failing: 401 on everything, then a token expiring mid-run.
    node_a.imds.faults("401")
    assert run("failover imds 401", node_a, "--deadline", "4", "failover", "wan@1",
               "--json").code == 2
    run("doctor imds 401", node_a, "--deadline", "4", "doctor", "--json")
    node_a.imds.faults("ok")
    node_a.imds.faults("expire_tokens")
    run("status after expiry", node_a, "status", "--json")
    # Bad command lines and a broken config with --json.
    run("usage error", node_a, "--json", "failover")
    node_a.write_raw_config("<pfsense><installedpackages>")
    run("broken config", node_a, "failover", "wan@1", "--json")

    secrets = needles(node_a)
    secrets.update({f"B {k}": v for k, v in needles(node_b).items()})
    assert any(k.startswith("IMDSv2 token") for k in secrets), "no token was issued at all?"
    assert len([k for k in secrets if "token #" in k]) >= 5
    counts = node_a.imds.counts()
    assert any("security-credentials/" in k for k in counts), (
        f"the credentials were never fetched from IMDS, so the test proves nothing: {counts}")

    problems = []
    for label, r in runs:
        for stream, text in (("stdout", r.stdout), ("stderr", r.stderr)):
            found = leaks(text, secrets)
            if found:
                problems.append(f"{label} {stream}: {found}")
    for node in (node_a, node_b):
        for f in sorted(Path(node.run_dir).rglob("*")) + sorted(Path(node.dir).glob("*")):
            if f.is_file():
                found = leaks(f.read_bytes().decode("utf-8", "replace"), secrets)
                if found:
                    problems.append(f"{f}: {found}")
    assert not problems, "secrets in awsha's output:\n" + "\n".join(problems)
    # The search itself works: a planted value and a planted prefix are found.
    some = next(v for k, v in secrets.items() if "token #" in k)
    assert leaks(f"x {some} y", secrets) and leaks(f"x {secrets['credentials Token'][:20]}", secrets)
    assert sum(len(r.stderr) for _, r in runs) > 2000, "-vv printed almost nothing to search"
