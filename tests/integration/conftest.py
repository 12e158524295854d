"""pytest fixtures for the awsha integration tests: real servers on 127.0.0.1, fresh state per test.

Owns the lifecycle of the harness servers:
  * session: moto with the fidelity patches (tests/harness/moto_launcher.py), the fault proxy in
    front of it (fault_proxy.py) and one IMDS emulator per node (imds_emulator.py), each a child
    process killed at the end of the session — also when tests fail or pytest is interrupted
    (fixture finalizers), and even when pytest is SIGKILLed (the servers exit when their parent
    dies, see harness/procs.py);
  * per test: `POST /moto-api/reset` on moto, proxy and emulators reset, the two-node scenario
    rebuilt (awsha_scenario.build_scenario), the emulators pointed at instance A and B, and a fresh
    directory per node.

Fixtures: `servers`, `ec2` (boto3 client straight to moto), `cloud` (state read-back), `proxy`,
`scenario`, `node_a`, `node_b`, and the opt-in `dual` (issue 14: the scenario's IPv6 half and CARP
VIP wan@3 on both nodes; awsha_scenario.py "dual stack"). Server logs are kept in the session's temporary directory
(printed path on failure via the `servers` fixture's `logs` attribute).

Run: .venv/bin/python -m pytest tests/integration -q   (AWSHA_BIN overrides the binary path)
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from awsha_scenario import (  # noqa: E402
    ec2_client,
    REGION, Cloud, DualStack, Emulator, Node, Proxy, Scenario, add_dual_stack, build_dual_stack,
    build_scenario,
)
from procs import ServerProcess  # noqa: E402  (path set up by awsha_scenario)


@dataclass
class Servers:
    moto: ServerProcess
    proxy_proc: ServerProcess
    imds_procs: dict[str, ServerProcess]
    logs: Path

    @property
    def moto_url(self) -> str:
        return self.moto.url

    @property
    def proxy(self) -> Proxy:
        return Proxy(self.proxy_proc.url)

    def imds(self, node: str) -> Emulator:
        return Emulator(self.imds_procs[node].url)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    logs = tmp_path_factory.mktemp("server-logs")
    started: list[ServerProcess] = []
    try:
        moto = ServerProcess("moto_launcher.py", [], name="moto", log_path=logs / "moto.log")
        started.append(moto.start())
        proxy = ServerProcess("fault_proxy.py", ["--upstream", moto.url], name="fault_proxy",
                              log_path=logs / "proxy.log")
        started.append(proxy.start())
        imds = {}
        for node in ("A", "B"):
            p = ServerProcess("imds_emulator.py", ["--ec2", moto.url, "--region", REGION],
                              name=f"imds_{node}", log_path=logs / f"imds_{node}.log")
            started.append(p.start())
            imds[node] = p
        # moto answers its first request slowly (about 1.4 s, docs/references.md §14): warm it up here,
        # not inside a timed test.
        ec2_client(moto.url).describe_regions()
        yield Servers(moto, proxy, imds, logs)
    finally:
        # SIGTERM all at once, then wait for each (bounded; SIGKILL after 5 s).
        for p in started:
            p.terminate()
        for p in reversed(started):
            p.stop()




@pytest.fixture(scope="session")
def ec2(servers: Servers) -> Any:
    """boto3 EC2 client straight to moto (set-up and read-back never show in the proxy counts)."""
    return ec2_client(servers.moto_url)


@pytest.fixture(scope="session")
def ami(ec2: Any) -> str:
    # moto ships AMIs with the backend (they survive resets); any one will do.
    return ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


@pytest.fixture
def cloud(ec2: Any) -> Cloud:
    return Cloud(ec2)


@pytest.fixture
def scenario(servers: Servers, ec2: Any, ami: str) -> Scenario:
    req = urllib.request.Request(f"{servers.moto_url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    scn = build_scenario(ec2, ami)
    # Reset the proxy after building, so counts/log hold only the binary's requests (set-up goes
    # straight to moto anyway) and no rule from a previous test survives.
    servers.proxy.reset()
    for node in ("A", "B"):
        emu = servers.imds(node)
        emu.reset()
        emu.configure(scn.instance[node], REGION)
    return scn


@pytest.fixture
def proxy(servers: Servers, scenario: Scenario) -> Iterator[Proxy]:
    p = servers.proxy
    yield p
    # Release any connection a `hang` rule still holds, so nothing lingers into the next test.
    p.reset()


@pytest.fixture
def node_a(servers: Servers, scenario: Scenario, tmp_path: Path) -> Node:
    return Node("A", tmp_path / "node-a", scenario, servers.imds("A"), servers.proxy.url)


@pytest.fixture
def node_b(servers: Servers, scenario: Scenario, tmp_path: Path) -> Node:
    return Node("B", tmp_path / "node-b", scenario, servers.imds("B"), servers.proxy.url)


@pytest.fixture
def dual(servers: Servers, ec2: Any, scenario: Scenario, node_a: Node, node_b: Node) -> DualStack:
    """The dual-stack world on top of `scenario`, with wan@3 on both nodes (canonical rows)."""
    ds = build_dual_stack(ec2, scenario)
    for node in (node_a, node_b):
        add_dual_stack(node, ds)
    servers.proxy.reset()  # set-up went straight to moto; start the test with empty counts anyway
    return ds
