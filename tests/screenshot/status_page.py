#!/usr/bin/env python3
"""`make screenshot`: what an operator sees after a failover, as pictures, from a real run.

Owns: docs/images/status-page.png, docs/images/widget.png and the block of docs/behaviour.md
between `<!-- make screenshot: begin -->` and `<!-- make screenshot: end -->` (`awsha history`
and `awsha status` of the same run). Nothing else in the repository is written; the HTML, the
text outputs and the server logs of the run stay in target/screenshot/.

The run (the servers and the two-node dual-stack VPC of tests/demo.py, the real binary):
    1. node A (primary) takes wan@1, lan@2 and the IPv6 VHID wan@3: `awsha failover` each;
    2. node A dies, node B is CARP MASTER of all three and fails over wan@1 while EC2 refuses
       rt1's ReplaceRoute once (403 UnauthorizedOperation, injected by the fault proxy): 3
       changed, 1 failed, exit 1; then lan@2 (as rc.carpmaster passes it, `2@ena1`) and wan@3;
    3. `awsha reconcile` on B every 5 s, with pfSense's grace of 15 s, as the package's follow-up
       reconciles run after a failover, until one repairs rt1 (the first does);
    4. someone points wan@3's prefix-list route (rt3) back at node A by hand, in EC2 directly:
       B is MASTER of wan@3 but AWS disagrees for one resource until the next reconcile — the
       page shows wan@3 drifted, wan@1 and lan@2 in sync.
Then, on node B: `awsha history` and `awsha status` (text), and the pfSense pages rendered by
php-cgi (the package's files from the work tree, pfSense stubbed by php-shim/tests/stubs) with
the node's environment (AWSHA_BIN, AWSHA_CONFIG, AWSHA_IFCONFIG, AWSHA_RUN_DIR, the IMDS and EC2
endpoints): Status > AWS High Availability (GET status_awsha.php) and the dashboard widget (its
GET inside a dashboard panel, with the answer of its AJAX refresh, POST ajax=ajax&awsha=status,
where index.php's script puts it). pfSense's head.inc and foot.inc are not in the repository:
the stand-in written here draws a navigation bar, the breadcrumb and a footer with plain inline
CSS modelled on pfSense's theme (Bootstrap 3 panels and tables; Font Awesome's icons as Unicode
characters). Nothing is fetched: the HTML is read from a file by headless Chromium, run in a
network namespace of its own (`unshare -n`) when this machine allows it.

Checks, each fatal: every run behaves as described, the page and the widget show every VHID with
the expected colour (wan@1 and lan@2 green, wan@3 red), the last failover per VHID, every
resource of `awsha status --json` and the runs of `awsha history --json`; the VIP description
with `<`, `&` and quotes reaches the HTML escaped only; php-cgi prints no warning; each PNG is at
most MAX_PNG_BYTES.

Run from the repository root: AWSHA_BIN=target/debug/awsha .venv/bin/python
tests/screenshot/status_page.py (builds target/debug/awsha with `cargo build` when it is
missing). Needs php-cgi and chromium (Debian packages; `make screenshot` installs them). Only
127.0.0.1 is used. Exit 0 when everything held, 1 otherwise.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for sub in ("tests", "tests/harness", "tests/integration"):
    path = str(REPO / sub)
    if path not in sys.path:
        sys.path.insert(0, path)

from awsha_scenario import (  # noqa: E402
    REGION, Emulator, Node, Proxy, add_dual_stack, awsha_bin, build_dual_stack, build_scenario,
    ec2_client,
)
from demo import Servers  # noqa: E402  (the demo's servers: moto, the fault proxy, two IMDS)
from shim_php import PKG, STUBS, WRAPPER, WWW, php_config  # noqa: E402

import pytest  # noqa: E402  (the harness helpers report a hung run with pytest.fail)

OUT = REPO / "target" / "screenshot"
IMAGES = REPO / "docs" / "images"
DOC = REPO / "docs" / "behaviour.md"
BEGIN, END = "<!-- make screenshot: begin -->", "<!-- make screenshot: end -->"
PAGE_WIDTH = 1280
WIDGET_WIDTH = 620  # one column of pfSense's two-column dashboard at this width
MAX_HEIGHT = 4000
MAX_PNG_BYTES = 400 * 1024
# A VIP description as an operator may write one: each character that HTML treats specially.
WAN_DESCR = 'WAN VIP <web & "VPN">'
CSRF_TOKEN = "sid:0123456789abcdef0123456789abcdef01234567,1764633600"  # stubs/guiconfig.inc
STEP_TIMEOUT = 60
# The package's follow-up reconciles after a failover (awsha.inc) and the binary's default grace.
FOLLOWUP_INTERVAL, FOLLOWUP_TRIES, PFSENSE_GRACE = 5, 24, "15"


class ShotError(Exception):
    """Something did not behave as described."""


def expect(condition: bool, what: str, details: str = "") -> None:
    if not condition:
        raise ShotError(what + (f"\n{details}" if details else ""))


def log(text: str) -> None:
    print(f"screenshot: {text}", flush=True)


# ---- the run -------------------------------------------------------------------------------------

def awsha(node: Node, *args: str, code: int = 0) -> Any:
    r = node.run(*args, timeout=STEP_TIMEOUT)
    expect(r.code == code, f"`awsha {' '.join(args)}` on node {node.name} exited {r.code}, "
           f"expected {code}", r.describe())
    return r


def statuses(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["vhid"], a["resource"], a["status"]) for a in report.get("actions", [])]


def scene(servers: Servers, work: Path) -> tuple[Node, Any]:
    """Steps 1-4 of the module docstring; returns node B and the dual-stack half of the VPC."""
    proxy = Proxy(servers.proxy_proc.url)
    ec2 = ec2_client(servers.moto.url)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    scn = build_scenario(ec2, ami)
    emus = {n: Emulator(servers.imds_procs[n].url) for n in ("A", "B")}
    for n, emu in emus.items():
        emu.reset()
        emu.configure(scn.instance[n], REGION)
    node_a = Node("A", work / "node-a", scn, emus["A"], proxy.url)
    node_b = Node("B", work / "node-b", scn, emus["B"], proxy.url)
    ds = build_dual_stack(ec2, scn)
    for node in (node_a, node_b):
        add_dual_stack(node, ds)
        node.config.vips[0]["descr"] = WAN_DESCR
        node.write_config()

    log("node A (primary) takes wan@1, lan@2, wan@3")
    for vhid in ("wan@1", "lan@2", "wan@3"):
        rep = awsha(node_a, "failover", vhid, "--json").json
        expect(all(s == "changed" for _, _, s in statuses(rep)), f"A: failover {vhid}", str(rep))

    log("node A dies; node B, CARP MASTER, fails over wan@1 while EC2 refuses rt1's route once")
    for vhid in (1, 2, 3):
        node_b.set_carp(vhid, state="MASTER")
    proxy.reset()
    proxy.rules([{"action": "ReplaceRoute", "params": {"RouteTableId": scn.rt1}, "kind": "error",
                  "status": 403, "code": "UnauthorizedOperation",
                  "message": "You are not authorized to perform this operation.", "times": 1}])
    rep = awsha(node_b, "failover", "wan@1", "--json", code=1).json
    failed = [(v, r) for v, r, s in statuses(rep) if s == "failed"]
    expect(failed == [("wan@1", scn.rt1)] and len(rep["actions"]) == 4,
           "B: failover wan@1 should fail rt1's route only", json.dumps(rep))
    proxy.rules([])
    for vhid in ("2@ena1", "wan@3"):
        rep = awsha(node_b, "failover", vhid, "--json").json
        expect(all(s == "changed" for _, _, s in statuses(rep)), f"B: failover {vhid}", str(rep))

    log("node B: the follow-up reconciles (every 5 s, pfSense's grace of 15 s) repair rt1")
    began = time.monotonic()
    for attempt in range(FOLLOWUP_TRIES):
        time.sleep(FOLLOWUP_INTERVAL)  # the first one too: 5 s after the failover ended
        r = node_b.run("reconcile", "--json", env_extra={"AWSHA_GRACE": PFSENSE_GRACE},
                       timeout=STEP_TIMEOUT)
        expect(r.code == 0 and isinstance(r.json, dict), "B: reconcile failed", r.describe())
        changed = [(v, res) for v, res, st in statuses(r.json) if st == "changed"]
        if changed:
            break
    expect(changed == [("wan@1", scn.rt1)], "B: the follow-ups should repair rt1 only",
           json.dumps(r.json))
    log(f"rt1 repaired by follow-up reconcile {attempt + 1}, {time.monotonic() - began:.1f} s "
        "after the last failover")

    log("someone points wan@3's prefix-list route at node A by hand")
    ec2.replace_route(RouteTableId=ds.rt3, DestinationPrefixListId=ds.prefix_list,
                      NetworkInterfaceId=scn.eni[("A", "lan")])
    return node_b, ds


# ---- the pages (php-cgi) -------------------------------------------------------------------------

# Font Awesome's icons as the page uses them (`fa fa-solid fa-…`), drawn with characters that
# DejaVu Sans (Debian's default font) has.
STANDIN_CSS = """
* { box-sizing: border-box; }
html { font-size: 10px; }
body { margin: 0; font-family: "DejaVu Sans", sans-serif;
  font-size: 14px; line-height: 1.43; color: #333; background: #fff; }
a { color: #1e5f8f; text-decoration: none; }
.navbar { background: #212121; border-bottom: 3px solid #b31e1e; height: 52px; }
.navbar .inner { width: 1170px; margin: 0 auto; padding: 0 15px; display: flex; align-items: center;
  height: 49px; }
.navbar .brand { font-size: 23px; font-weight: bold; color: #fff; margin-right: 28px;
  letter-spacing: -0.5px; }
.navbar .brand span { color: #e03c31; }
.navbar .menu { color: #ccc; font-size: 14px; }
.navbar .menu b { font-weight: normal; margin-right: 22px; }
.navbar .menu b.active { color: #fff; }
.container { width: 1170px; margin: 0 auto; padding: 0 15px; }
.narrow .container, .narrow .navbar .inner { width: auto; }
h1.breadcrumb { font-size: 22px; font-weight: normal; margin: 18px 0 16px; padding: 8px 15px;
  background: #f5f5f5; border-radius: 4px; color: #777; }
h1.breadcrumb a { color: #1e5f8f; }
.panel { margin-bottom: 20px; background: #fff; border: 1px solid #ddd; border-radius: 4px;
  box-shadow: 0 1px 1px rgba(0,0,0,.05); }
.panel-heading { background: #424242; color: #fff; padding: 8px 15px;
  border-radius: 3px 3px 0 0; display: flex; justify-content: space-between; }
.panel-title { margin: 0; font-size: 16px; font-weight: normal; color: #fff; }
.panel-title a { color: #fff; }
.panel-heading .tools { color: #bbb; font-size: 13px; letter-spacing: 6px; }
.panel-body { padding: 10px 15px; }
.table-responsive { overflow-x: auto; }
table.table { width: 100%; border-collapse: collapse; margin-bottom: 4px; }
.table > thead > tr > th { text-align: left; border-bottom: 2px solid #ddd; padding: 5px;
  vertical-align: bottom; white-space: nowrap; }
.table > tbody > tr > td { border-top: 1px solid #ddd; padding: 5px; vertical-align: top; }
.table-striped > tbody > tr:nth-of-type(odd) { background: #f9f9f9; }
.table > tbody > tr.danger > td { background: #f2dede; }
small { font-size: 85%; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 90%;
  color: #c7254e; background: #f9f2f4; padding: 2px 4px; border-radius: 4px; }
.text-success { color: #3c763d; } .text-danger { color: #a94442; }
.text-warning { color: #c87f0a; } .text-muted { color: #777; }
.alert { padding: 10px 15px; margin-bottom: 20px; border: 1px solid transparent;
  border-radius: 4px; }
.alert-danger { color: #a94442; background: #f2dede; border-color: #ebccd1; }
.alert-warning { color: #8a6d3b; background: #fcf8e3; border-color: #faebcc; }
.alert-success { color: #3c763d; background: #dff0d8; border-color: #d6e9c6; }
.alert-info { color: #31708f; background: #d9edf7; border-color: #bce8f1; }
.btn { display: inline-block; padding: 6px 12px; font-size: 14px; border-radius: 4px;
  border: 1px solid transparent; cursor: pointer; font-family: inherit; }
.btn-primary { color: #fff; background: #1e5f8f; border-color: #1a5178; }
.icon-embed-btn { margin-right: 6px; }
.help-block { display: block; margin: 6px 0 4px; color: #737373; }
.list-unstyled { list-style: none; padding-left: 0; margin: 4px 0 0; }
details summary { cursor: pointer; color: #1e5f8f; }
.text-right { text-align: right; }
.text-nowrap { white-space: nowrap; }
i.fa { font-style: normal; display: inline-block; text-align: center; }
.fa-circle::before { content: "\\25CF"; font-size: 16px; line-height: 1; }
.fa-play-circle, .fa-pause-circle, .fa-question-circle, .fa-times-circle {
  width: 16px; height: 16px; border-radius: 50%; background: currentColor;
  vertical-align: -2px; position: relative; }
.fa-play-circle::before, .fa-pause-circle::before, .fa-question-circle::before,
.fa-times-circle::before { color: #fff; font-size: 9px; line-height: 16px; position: absolute;
  left: 0; right: 0; top: 0; }
.fa-play-circle::before { content: "\\25B6"; padding-left: 1px; }
.fa-pause-circle::before { content: "\\275A\\275A"; font-size: 7px; }
.fa-question-circle::before { content: "?"; font-weight: bold; font-size: 11px; }
.fa-times-circle::before { content: "\\00D7"; font-weight: bold; font-size: 13px; }
.fa-check::before { content: "\\2714"; }
.fa-times::before { content: "\\2718"; }
.fa-refresh::before { content: "\\21BB"; }
.fa-cog::before { content: "\\2699"; }
.standin { color: #999; font-size: 12px; border-top: 1px solid #e5e5e5; margin-top: 10px;
  padding: 8px 0 14px; }
"""

STANDIN_HEAD = """<?php
/*
 * Stand-in for pfSense's head.inc, written by tests/screenshot/status_page.py (pfSense's own is not
 * in the repository): the document's start with inline CSS modelled on pfSense's theme, a
 * navigation bar, the breadcrumb from $pgtitle, and the "events" array of pfSense's pages.
 */
header('Content-Type: text/html; charset=utf-8');
$pagetitle = strip_tags(gentitle($pgtitle));
$crumbs = (array)$pgtitle;
?>
<!DOCTYPE html>
<html lang="en">
<head>
\t<meta charset="utf-8">
\t<title><?=htmlspecialchars($pagetitle)?></title>
\t<style><?php readfile(__DIR__ . '/standin.css'); ?></style>
\t<script type="text/javascript">var events = events || [];</script>
</head>
<body>
<nav class="navbar"><div class="inner">
<div class="brand"><span>pf</span>Sense</div>
<div class="menu"><b>System</b><b>Interfaces</b><b>Firewall</b><b>Services</b><b>VPN</b>
<b class="active">Status</b><b>Diagnostics</b><b>Help</b></div>
</div></nav>
<div class="container">
<h1 class="breadcrumb"><?php
foreach ($crumbs as $i => $crumb) {
\t$text = htmlspecialchars($crumb);
\techo ($i > 0 ? ' / ' : '') . ($i === count($crumbs) - 1 ? "<a href=\\"#\\">{$text}</a>" : $text);
}
?></h1>
"""

STANDIN_FOOT = """<?php
/* Stand-in for pfSense's foot.inc, written by tests/screenshot/status_page.py: runs the
 * pushed events. */
?>
<div class="standin">Page frame: a stand-in for pfSense's head.inc and foot.inc (plain inline CSS
modelled on pfSense's theme). Content: the package's status_awsha.php, rendered by php-cgi with
awsha's real output.</div>
</div>
<script type="text/javascript">
//<![CDATA[
for (var i = 0; i < events.length; i++) { try { events[i](); } catch (e) {} }
//]]>
</script>
</body>
</html>
"""

WIDGET_FRAME = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Status: Dashboard</title><style>{css}</style></head>
<body class="narrow">
<div class="container" style="padding-top: 15px">
<div class="panel" id="widget-awsha-0">
<div class="panel-heading"><h2 class="panel-title"><a href="/{link}">{title}</a></h2>
<span class="tools">&#x2699; &#x2013; &#x00D7;</span></div>
<div class="panel-body" style="padding: 0 15px 8px">
{body}
</div>
</div>
<div class="standin">Dashboard frame: a stand-in for pfSense's index.php (plain inline CSS).
Content: the package's awsha.widget.php, rendered by php-cgi; its table is the answer of the
widget's AJAX refresh, put where the widget's script puts it.</div>
</div>
</body>
</html>
"""


class Php:
    """php-cgi running the package's pages for one request each, with pfSense stubbed."""

    def __init__(self, node: Node, work: Path):
        self.cgi = shutil.which("php-cgi")
        expect(self.cgi is not None, "php-cgi is not installed (Debian package php-cgi; "
               "`make screenshot` installs it)")
        self.node = node
        standin = work / "standin"
        standin.mkdir()
        (standin / "head.inc").write_text(STANDIN_HEAD)
        (standin / "foot.inc").write_text(STANDIN_FOOT)
        (standin / "standin.css").write_text(STANDIN_CSS)
        config = work / "php-config.json"
        config.write_text(json.dumps(php_config(node)))
        # The stand-in's head.inc and foot.inc first, then the stubs (as /etc/inc), then the
        # package's /usr/local/pkg.
        self.ini = ["-d", f"include_path=.:{standin}:{STUBS}:{PKG}",
                    "-d", "disable_functions=openlog,syslog,closelog",
                    "-d", "display_errors=stderr", "-d", "error_reporting=32767",
                    "-d", "log_errors=0", "-d", "date.timezone=UTC"]
        self.env = node.env({
            "AWSHA_BIN": str(awsha_bin()),
            "AWSHA_RUN": str(WRAPPER),
            "AWSHA_PHP": shutil.which("php") or "php",
            "AWSHA_STUB_CONFIG": str(config),
            "AWSHA_STUB_NOTICES": str(work / "notices.serial.json"),
        })

    def request(self, page: str, method: str = "GET", post: dict[str, str] | None = None
                ) -> tuple[dict[str, str], str]:
        """One CGI request for /<page>: (headers, body). Fails on any PHP message."""
        script = WWW / page
        body = urllib.parse.urlencode(post or {}).encode()
        env = dict(self.env, GATEWAY_INTERFACE="CGI/1.1", SERVER_PROTOCOL="HTTP/1.1",
                   SERVER_NAME="127.0.0.1", SERVER_PORT="443", HTTPS="on", REDIRECT_STATUS="200",
                   REQUEST_METHOD=method, SCRIPT_FILENAME=str(script), SCRIPT_NAME=f"/{page}",
                   REQUEST_URI=f"/{page}", QUERY_STRING="", DOCUMENT_ROOT=str(WWW))
        if method == "POST":
            env.update(CONTENT_TYPE="application/x-www-form-urlencoded",
                       CONTENT_LENGTH=str(len(body)))
        p = subprocess.run([self.cgi, *self.ini], input=body, env=env, cwd=str(script.parent),
                           capture_output=True, timeout=60)
        out, err = p.stdout.decode(), p.stderr.decode()
        expect(p.returncode == 0 and not err.strip(),
               f"php-cgi {method} /{page}: exit {p.returncode}", err[-4000:])
        head, sep, text = out.partition("\r\n\r\n")
        expect(bool(sep), f"php-cgi {method} /{page}: no CGI headers", out[:2000])
        headers = {}
        for line in head.split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expect(headers.get("status", "200").startswith("200"),
               f"php-cgi {method} /{page}: {headers.get('status')}", out[:2000])
        return headers, text


def render_page(php: Php) -> str:
    headers, page = php.request("status_awsha.php")
    expect(headers.get("content-type", "").startswith("text/html"), "status_awsha.php: not HTML",
           json.dumps(headers))
    return page


def render_widget(php: Php) -> str:
    """The widget as the dashboard shows it once its AJAX refresh has answered."""
    _, shell = php.request("widgets/widgets/awsha.widget.php")
    _, table = php.request("widgets/widgets/awsha.widget.php", "POST",
                           {"ajax": "ajax", "awsha": "status", "__csrf_magic": CSRF_TOKEN})
    slot = re.compile(r'(<div id="awsha_widget_status">).*?(</div>)', re.S)
    expect(slot.search(shell) is not None, "the widget has no awsha_widget_status", shell)
    body = slot.sub(lambda m: m.group(1) + "\n" + table + m.group(2), shell, count=1)
    title_php = (WWW / "widgets" / "include" / "widget-awsha.inc").read_text()
    title = re.search(r'\$awsha_title = gettext\("([^"]+)"\)', title_php).group(1)
    link = re.search(r'\$awsha_title_link = "([^"]+)"', title_php).group(1)
    return WIDGET_FRAME.format(css=STANDIN_CSS, title=html.escape(title),
                               link=html.escape(link), body=body)


# ---- checks --------------------------------------------------------------------------------------

def table_rows(page: str, table_id: str) -> list[str]:
    m = re.search(r'<table[^>]*id="' + re.escape(table_id) + r'"[^>]*>(.*?)</table>', page, re.S)
    expect(m is not None, f"the page has no table {table_id}")
    return re.findall(r"<tr[^>]*>.*?</tr>", m.group(1), re.S)[1:]


def php_escape(text: str) -> str:
    """htmlspecialchars(ENT_QUOTES), as awsha_h() escapes."""
    return html.escape(text, quote=True).replace("&#x27;", "&#039;")


COLOURS = {"wan@1": "green", "lan@2": "green", "wan@3": "red"}


def check_page(page: str, status: dict[str, Any], history: list[dict[str, Any]]) -> None:
    expect("awsha status failed" not in page and "cannot be read" not in page,
           "the page says awsha failed", page)
    expect(WAN_DESCR not in page and "<web" not in page, "the VIP description is not escaped")
    expect(php_escape(WAN_DESCR) in page, "the VIP description is not on the page")
    vhids = table_rows(page, "awsha-vhids")
    seen = {}
    for row in vhids:
        m = re.search(r'data-vhid="([^"]+)" class="awsha-(\w+)"', row)
        expect(m is not None, "a VHID row without its colour", row)
        seen[m.group(1)] = m.group(2)
        expect(re.search(r"\d+ ms, \d+ (failed, \d+ )?changed</td>", row) is not None,
               f"{m.group(1)}: no last failover", row)
    expect(seen == COLOURS, f"VHID colours {seen}, expected {COLOURS}", page)
    expect("1 failed, 3 changed" in vhids[[*seen].index("wan@1")],
           "wan@1's last failover is the one that failed once")
    actions = table_rows(page, "awsha-actions")
    expect(len(actions) == len(status["actions"]), "one row per resource of awsha status",
           f"{len(actions)} rows, {len(status['actions'])} actions")
    for a in status["actions"]:
        expect(f"<code>{php_escape(a['resource'])}</code>" in page, f"{a['resource']} not shown")
    runs = table_rows(page, "awsha-history")
    expect(len(runs) == min(10, len(history)), "one row per recent run",
           f"{len(runs)} rows, {len(history)} runs")
    expect(sum('class="danger"' in r for r in runs) == 1, "one run in red: the failed failover")


def open_failed_timeline(page: str) -> str:
    """The page as it looks once the operator has clicked the failed run's "N steps" (the one
    row in red): its <details> opened. Nothing else changes."""
    rows = list(re.finditer(r'<tr class="danger">.*?</tr>', page, re.S))
    expect(len(rows) == 1 and "<details>" in rows[0].group(0), "no failed run with a timeline")
    row = rows[0].group(0)
    return page.replace(row, row.replace("<details>", "<details open>", 1), 1)


def check_widget(widget: str) -> None:
    expect("awsha status failed" not in widget, "the widget says awsha failed", widget)
    expect(WAN_DESCR not in widget, "the VIP description is not escaped in the widget")
    lines = dict((v, c) for c, v in re.findall(r'<tr class="awsha-(\w+)" data-vhid="([^"]+)">',
                                                widget))
    expect(lines == COLOURS, f"widget lines {lines}, expected {COLOURS}", widget)


# ---- Chromium ------------------------------------------------------------------------------------

def chromium_argv() -> list[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    expect(exe is not None, "chromium is not installed (Debian package chromium; "
           "`make screenshot` installs it)")
    # No network at all when the kernel lets us: a network namespace with only a loopback (down).
    isolated = subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0 \
        if shutil.which("unshare") else False
    return (["unshare", "-n"] if isolated else []) + [exe]


def chromium(argv0: list[str], url: str, width: int, height: int, profile: Path,
             extra: list[str]) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(profile, ignore_errors=True)
    profile.mkdir(parents=True)
    argv = [*argv0, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--no-default-browser-check",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
            "--force-device-scale-factor=1", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", *extra, url]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(profile)))
    expect(p.returncode == 0, f"chromium exited {p.returncode}", p.stderr[-3000:])
    return p


def page_height(argv0: list[str], html_file: Path, width: int, profile: Path) -> int:
    """The document's height at `width`, measured by Chromium itself (--dump-dom after a script
    that writes it into the DOM)."""
    probe = html_file.with_suffix(".measure.html")
    probe.write_text(html_file.read_text().replace(
        "</body>", "<script>document.body.setAttribute('data-shot-height', "
        "Math.ceil(document.documentElement.scrollHeight));</script></body>"))
    p = chromium(argv0, probe.as_uri(), width, 100, profile, ["--dump-dom"])
    m = re.search(r'data-shot-height="(\d+)"', p.stdout)
    expect(m is not None, "chromium did not measure the page", p.stdout[-2000:])
    return min(int(m.group(1)), MAX_HEIGHT)


def recompress_png(png: Path) -> None:
    """The same pixels, smaller: Chromium's PNG encoder favours speed; the image data is
    compressed again at zlib's level 9 (one IDAT chunk; every other chunk kept as it was)."""
    data = png.read_bytes()
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            if idat == b"":
                chunks.append((b"IDAT", b""))  # where the image data goes
            idat += body
        else:
            chunks.append((kind, body))
    packed = zlib.compress(zlib.decompress(idat), 9)
    out = bytearray(data[:8])
    for kind, body in chunks:
        body = packed if kind == b"IDAT" else body
        out += struct.pack(">I", len(body)) + kind + body
        out += struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    if len(out) < len(data):
        png.write_bytes(bytes(out))


def png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()[:24]
    expect(data[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG")
    return struct.unpack(">II", data[16:24])


def screenshot(argv0: list[str], html_file: Path, png: Path, width: int, work: Path) -> None:
    height = page_height(argv0, html_file, width, work / "chromium-profile")
    tmp_png = work / png.name
    chromium(argv0, html_file.as_uri(), width, height, work / "chromium-profile",
             [f"--screenshot={tmp_png}"])
    expect(tmp_png.is_file(), f"chromium wrote no {tmp_png}")
    recompress_png(tmp_png)
    size = png_size(tmp_png)
    expect(size == (width, height), f"{png.name} is {size}, expected {(width, height)}")
    n = tmp_png.stat().st_size
    expect(n <= MAX_PNG_BYTES, f"{png.name} is {n} bytes, more than {MAX_PNG_BYTES}")
    png.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_png, png)
    log(f"{png.relative_to(REPO)}: {width}x{height}, {n // 1024} KiB")


# ---- docs/behaviour.md ---------------------------------------------------------------------------

def update_doc(history_text: str, status_text: str) -> None:
    doc = DOC.read_text()
    expect(BEGIN in doc and END in doc, f"{DOC} lacks the markers {BEGIN} … {END}")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = (f"{BEGIN}\n```\n$ awsha history\n{history_text.rstrip()}\n```\n\n"
             f"```\n$ awsha status\n{status_text.rstrip()}\n```\n{END}")
    DOC.write_text(head + block + tail)
    log(f"{DOC.relative_to(REPO)}: awsha history and awsha status of this run")


# ---- main ----------------------------------------------------------------------------------------

def main() -> int:
    binary = awsha_bin()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        if binary == REPO / "target" / "debug" / "awsha":
            log("target/debug/awsha missing: cargo build")
            subprocess.run(["cargo", "build"], cwd=REPO, check=True)
        else:
            print(f"awsha binary not found at {binary}", file=sys.stderr)
            return 1
    started = time.monotonic()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="awsha-screenshot-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        servers = Servers(work / "logs")
        try:
            argv0 = chromium_argv()
            servers.start()
            node_b, _ = scene(servers, work)

            history_text = awsha(node_b, "history").stdout
            status_text = awsha(node_b, "status").stdout
            status = awsha(node_b, "status", "--json").json
            history = awsha(node_b, "history", "--json").json
            expect(isinstance(status, dict) and isinstance(history, list),
                   "awsha status/history --json", f"{status}\n{history}")
            (OUT / "history.txt").write_text(history_text)
            (OUT / "status.txt").write_text(status_text)

            php = Php(node_b, work)
            page = render_page(php)
            check_page(page, status, history)
            widget = render_widget(php)
            check_widget(widget)
            (OUT / "status-page.html").write_text(page)
            (OUT / "status-page.shot.html").write_text(open_failed_timeline(page))
            (OUT / "widget.html").write_text(widget)
            log("page and widget rendered by php-cgi; checks passed")

            screenshot(argv0, OUT / "status-page.shot.html", IMAGES / "status-page.png", PAGE_WIDTH,
                       work)
            screenshot(argv0, OUT / "widget.html", IMAGES / "widget.png", WIDGET_WIDTH, work)
            update_doc(history_text, status_text)
        except ShotError as e:
            print(f"screenshot FAILED: {e}", file=sys.stderr)
            shutil.copytree(work / "logs", OUT / "logs", dirs_exist_ok=True)
            print(f"(server logs in {OUT / 'logs'})", file=sys.stderr)
            return 1
        except (Exception, pytest.fail.Exception) as e:
            import traceback

            traceback.print_exc()
            print(f"screenshot FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        finally:
            servers.stop()
    log(f"done in {time.monotonic() - started:.1f} s (HTML and text in "
        f"{OUT.relative_to(REPO)}/)")
    return 0


def _sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    sys.exit(main())
