"""The pfSense package (php-shim/) run as pfSense runs it, for the integration tests that drive it
with the real binary: PHP programs with pfSense's functions stubbed (php-shim/tests/stubs), the
package's files from the work tree, one node's environment (awsha_scenario.Node).

Owns `Shim`: `php(code)` runs PHP code in the package's context (as a page or rc.carpmaster would),
`wrapper(*args)` runs /usr/local/sbin/awsha-run; every PHP process, the ones they start in the
background included, gets the same settings through an ini directory (PHP_INI_SCAN_DIR):
pfSense's include path (stubs first, then the package's /usr/local/pkg) and PHP's syslog
functions disabled so that the stubs capture them. What the stubs saw is read back from their log,
call by call; pfSense's notice queue is a JSON file.

With `background=True`, the stub of mwexec_bg() starts its command as pfSense does (nohup, detached,
output discarded): the package then runs on its own, as after an rc.carpmaster event.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from awsha_scenario import Node, awsha_bin

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "php-shim"
PKG = SHIM / "files" / "usr" / "local" / "pkg"
WWW = SHIM / "files" / "usr" / "local" / "www"
STUBS = SHIM / "tests" / "stubs"
WRAPPER = SHIM / "files" / "usr" / "local" / "sbin" / "awsha-run"


class Shim:
    """The package on `node`, with pfSense stubbed."""

    def __init__(self, node: Node, background: bool = False, env: dict[str, str] | None = None):
        php = shutil.which("php")
        if php is None:
            pytest.fail("php is not installed (Debian package php-cli; .ci/run installs it)")
        self.php = php
        self.node = node
        self.stub_log = node.dir / "stubs.log"
        self.queue = node.dir / "notices.serial.json"
        ini = node.dir / "php-ini"
        ini.mkdir(exist_ok=True)
        (ini / "awsha-tests.ini").write_text(
            f'include_path = ".:{STUBS}:{PKG}"\n'
            "disable_functions = openlog,syslog,closelog\n")
        self.env = node.env({
            "AWSHA_BIN": str(awsha_bin()),
            "AWSHA_RUN": str(WRAPPER),
            "AWSHA_PHP": php,
            "AWSHA_STUB_LOG": str(self.stub_log),
            "AWSHA_STUB_NOTICES": str(self.queue),
            "PHP_INI_SCAN_DIR": f":{ini}",
            **({"AWSHA_STUB_EXEC_BG": "1"} if background else {}),
            **(env or {}),
        })

    def use_config(self) -> None:
        """pfSense's PHP sees the node's config.xml (as `php_config`), through the stubs."""
        cfg = self.node.dir / "php-config.json"
        cfg.write_text(json.dumps(php_config(self.node)))
        self.env["AWSHA_STUB_CONFIG"] = str(cfg)

    def php_json(self, code: str, timeout: float = 60) -> Any:
        """Runs `code` (php_code) and decodes what it echoed as JSON."""
        p = self.php_code(code, timeout)
        assert p.returncode == 0, describe(p)
        try:
            return json.loads(p.stdout)
        except ValueError:
            pytest.fail(f"the PHP code printed no JSON\n{describe(p)}")

    def php_code(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """PHP `code` after the includes a pfSense page or rc.carpmaster has (config, util, the
        package's awsha.inc)."""
        prelude = ('require_once("config.inc"); require_once("util.inc"); require_once("notices.inc"); '
                   'require_once("service-utils.inc"); require_once("awsha.inc"); ')
        return subprocess.run([self.php, "-r", prelude + code], env=self.env, cwd=str(self.node.dir),
                              capture_output=True, text=True, timeout=timeout)

    def wrapper(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.php, str(WRAPPER), *args], env=self.env, cwd=str(self.node.dir),
                              capture_output=True, text=True, timeout=timeout)

    def calls(self, fn: str) -> list[list[Any]]:
        if not self.stub_log.exists():
            return []
        out = []
        for line in self.stub_log.read_text().splitlines():
            call = json.loads(line)
            if call["fn"] == fn:
                out.append(call["args"])
        return out

    def syslog(self) -> list[tuple[str, int, str]]:
        return [(c[0], c[1], c[2]) for c in self.calls("syslog") if "New alert found" not in c[2]]

    def forget_calls(self) -> None:
        self.stub_log.unlink(missing_ok=True)

    def followup_pid(self) -> int | None:
        f = self.node.run_dir / "awsha.followup.pid"
        try:
            return int(f.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop_followups(self) -> None:
        """Ends the follow-up loop this test started, if it still runs (by its pid only)."""
        pid = self.followup_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def php_config(node: Node) -> dict[str, Any]:
    """config.xml as pfSense's PHP holds it ($config): what the stubs' config_get_path() reads."""
    c = node.config
    return {
        "interfaces": c.interfaces,
        "virtualip": {"vip": c.vips},
        "installedpackages": {
            "awsha": {"config": [c.settings]},
            "awshaips": {"config": c.ips},
            "awsharoutes": {"config": c.routes},
            "awshaeips": {"config": c.eips},
        },
    }


def describe(p: subprocess.CompletedProcess[str]) -> str:
    return f"exit {p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr[-4000:]}"
