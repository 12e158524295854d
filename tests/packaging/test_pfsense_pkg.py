"""The pfSense package writer and checker (php-shim/pfsense_pkg.py) on a small fake binary.

Run by `make test` (no cross-build needed; about 10 s). Needs bsdtar (libarchive-tools), file and
php-cli, as `make release-check` does. Each broken package below is the writer's output with one
thing changed, repacked with Python's tarfile; the checker, which reads with bsdtar, must name it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "php-shim"
TOOL = SHIM / "pfsense_pkg.py"

spec = importlib.util.spec_from_file_location("pfsense_pkg", TOOL)
pp = importlib.util.module_from_spec(spec)
sys.modules["pfsense_pkg"] = pp  # dataclasses look their module up there
spec.loader.exec_module(pp)

EPOCH = 1767225600  # 2026-01-01



@pytest.fixture(autouse=True, scope="module")
def tools() -> None:
    """Missing tools fail the run (CI must catch regressions here), naming the Debian package."""
    for tool, package in (("bsdtar", "libarchive-tools"), ("php", "php-cli"), ("file", "file")):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed: apt-get install {package}", pytrace=False)


def fake_binary(path: Path) -> Path:
    """64 bytes of ELF header saying x86-64 and FreeBSD (EI_OSABI 9): what `file` checks."""
    header = b"\x7fELF" + bytes([2, 1, 1, 9, 0]) + b"\0" * 7
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 0, 0, 0, 64, 0, 0, 64, 0, 0)
    path.write_bytes(header + b"not really awsha\n")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    tmp = tmp_path_factory.mktemp("pkg")
    binary = fake_binary(tmp / "awsha")
    pkgs = pp.build(binary, tmp / "out", [14, 15], EPOCH)
    return binary, pkgs


def check(pkg: Path, binary: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "check", "--binary", str(binary), str(pkg)],
                          capture_output=True, text=True, env=env, timeout=120)


def repack(src: Path, dst: Path, mutate: Callable[[list[list]], None], resum: bool = True) -> Path:
    """Rewrites a package: mutate() edits [[TarInfo, data], ...] (manifests as parsed JSON under
    their names); with resum, the manifest's file sums and flatsize follow the edited files."""
    members = []
    with tarfile.open(src) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else None
            if info.name in ("+MANIFEST", "+COMPACT_MANIFEST"):
                data = json.loads(data)
            members.append([info, data])
    mutate(members)
    manifest = next(m[1] for m in members if m[0].name == "+MANIFEST")
    if resum:
        files = {m[0].name: m[1] for m in members if m[0].isfile() and not m[0].name.startswith("+")}
        manifest["files"] = {p: pp.file_sum(files[p]) for p in manifest["files"] if p in files}
        manifest["flatsize"] = sum(len(files[p]) for p in manifest["files"])
        for m in members:
            if m[0].name == "+COMPACT_MANIFEST":
                m[1] = {k: v for k, v in manifest.items() if k not in ("files", "directories", "scripts")}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if isinstance(data, dict):
                data = json.dumps(data).encode()
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    dst.write_bytes(lzma.compress(raw.getvalue(), format=lzma.FORMAT_XZ))
    return dst


def member(members: list[list], name: str) -> list:
    return next(m for m in members if m[0].name == name)


def root_owned(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uname, info.gname, info.mtime = "root", "wheel", EPOCH
    return info


# ---- the writer --------------------------------------------------------------------------------

def test_one_package_per_abi_and_the_same_bytes_twice(built, tmp_path):
    binary, pkgs = built
    assert [p.name for p in pkgs] == ["pfSense-pkg-awsha-0.1.0-freebsd14-amd64.pkg",
                                      "pfSense-pkg-awsha-0.1.0-freebsd15-amd64.pkg"]
    again = pp.build(binary, tmp_path / "again", [14, 15], EPOCH)
    for a, b in zip(pkgs, again):
        assert a.read_bytes() == b.read_bytes(), f"{a.name}: two builds differ"
    later = pp.build(binary, tmp_path / "later", [14], EPOCH + 1)
    assert later[0].read_bytes() != pkgs[0].read_bytes(), "the member time must reach the bytes"
    sums = (pkgs[0].parent / "SHA256SUMS").read_text().splitlines()
    assert sums[0] == f"{hashlib.sha256(pkgs[0].read_bytes()).hexdigest()}  {pkgs[0].name}"


def test_the_archive_is_what_pkg_reads(built):
    binary, pkgs = built
    listing = subprocess.run(["bsdtar", "-tvf", str(pkgs[0])], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in listing.splitlines()]
    assert names[:2] == ["+COMPACT_MANIFEST", "+MANIFEST"]
    assert "/usr/local/sbin/awsha" in names and names[-1] == "/etc/inc/priv/"
    binary_line = next(line for line in listing.splitlines() if line.endswith(" /usr/local/sbin/awsha"))
    assert binary_line.split()[:4] == ["-r-xr-xr-x", "0", "root", "wheel"]
    manifest = json.loads(subprocess.run(["bsdtar", "-xOf", str(pkgs[0]), "+MANIFEST"], capture_output=True,
                                         check=True).stdout)
    assert list(manifest)[:4] == ["name", "origin", "version", "comment"]
    assert manifest["abi"] == "FreeBSD:14:amd64" and manifest["arch"] == "freebsd:14:x86:64"
    assert manifest["files"]["/usr/local/sbin/awsha"] == "1$" + hashlib.sha256(binary.read_bytes()).hexdigest()
    assert manifest["directories"] == {"/etc/inc/priv": "y"}
    assert set(manifest["scripts"]) == {"install", "deinstall"}
    assert "/etc/rc.packages pfSense-pkg-awsha ${2}" in manifest["scripts"]["install"]
    info = subprocess.run(["bsdtar", "-xOf", str(pkgs[0]), "/usr/local/share/pfSense-pkg-awsha/info.xml"],
                          capture_output=True, text=True, check=True).stdout
    assert "<version>0.1.0</version>" in info
    page = subprocess.run(["bsdtar", "-xOf", str(pkgs[0]), "/usr/local/pkg/awsha_ips.xml"],
                          capture_output=True, text=True, check=True).stdout
    assert "%%PKGVERSION%%" not in page and "<version>0.1.0</version>" in page


def test_the_port_needs_no_awsha_port_and_installs_the_binary():
    makefile = (SHIM / "Makefile").read_text()
    assert "RUN_DEPENDS" not in makefile
    assert "${INSTALL_PROGRAM} ${AWSHA_BIN} ${STAGEDIR}${PREFIX}/sbin/awsha" in makefile
    assert "PLIST_FILES=\tsbin/awsha" in makefile


def test_a_placeholder_the_port_does_not_fill_in_stops_the_build(tmp_path):
    shim = tmp_path / "php-shim"
    shutil.copytree(SHIM, shim, ignore=shutil.ignore_patterns("tests"))
    mk = shim / "Makefile"
    mk.write_text(mk.read_text().replace(" \\\n\t\t${STAGEDIR}${PREFIX}/pkg/awsha_eips.xml", ""))
    with pytest.raises(pp.PkgError, match=r"awsha_eips.xml holds %%PKGVERSION%% but REINPLACE_CMD"):
        pp.read_port(fake_binary(tmp_path / "awsha"), shim)


# ---- the checker ---------------------------------------------------------------------------------

def test_the_checker_passes_both_packages(built):
    binary, pkgs = built
    for pkg in pkgs:
        res = check(pkg, binary)
        assert res.returncode == 0, res.stderr
        assert f"OK        {pkg}" in res.stdout
        assert "kept as they were" in res.stdout and "registered awsha 0.1.0" in res.stdout


BROKEN = {
    "manifest not first": (lambda ms: ms.insert(0, ms.pop(1)), True,
                           "first members are ['+MANIFEST', '+COMPACT_MANIFEST']"),
    "file changed, sum not": (lambda ms: member(ms, "/usr/local/pkg/awsha.inc").__setitem__(1, b"<?php\n"), False,
                              "/usr/local/pkg/awsha.inc: sha256"),
    "binary mode": (lambda ms: setattr(member(ms, "/usr/local/sbin/awsha")[0], "mode", 0o755), True,
                    "/usr/local/sbin/awsha: mode 0755 in the archive, the port installs it 0555"),
    "unlisted file": (lambda ms: ms.append([root_owned("/usr/local/etc/extra"), b"x"]), False,
                      "/usr/local/etc/extra is not in +MANIFEST"),
    "no desc": (lambda ms: member(ms, "+MANIFEST")[1].pop("desc"), True, "+MANIFEST: desc: missing or not a string"),
    "flatsize as string": (lambda ms: member(ms, "+MANIFEST")[1].__setitem__("flatsize", "1"), False,
                           "+MANIFEST: flatsize: missing or not an integer"),
    "no install script": (lambda ms: member(ms, "+MANIFEST")[1]["scripts"].pop("install"), True,
                          "+MANIFEST: scripts: install missing"),
    "abi of another arch": (lambda ms: member(ms, "+MANIFEST")[1].__setitem__("abi", "FreeBSD:14:aarch64"), True,
                            "abi 'FreeBSD:14:aarch64' is not FreeBSD:<major>:amd64"),
    "placeholder left": (lambda ms: member(ms, "/usr/local/pkg/awsha_ips.xml").__setitem__(
        1, member(ms, "/usr/local/pkg/awsha_ips.xml")[1].replace(b"<version>0.1.0<", b"<version>%%PKGVERSION%%<")),
        True, "/usr/local/pkg/awsha_ips.xml: placeholder %%PKGVERSION%% left"),
    "owner": (lambda ms: setattr(member(ms, "/usr/local/pkg/awsha.xml")[0], "uname", "awsha"), True,
              "/usr/local/pkg/awsha.xml: owner awsha:wheel"),
}


# Checked without --binary (so without comparing with the port, which would stop at the changed
# file first): the checks that do not need the port must catch these on their own.
WITHOUT_PORT = {"placeholder left"}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_checker_names_what_is_broken(built, tmp_path, case):
    binary, pkgs = built
    mutate, resum, message = BROKEN[case]
    bad = repack(pkgs[0], tmp_path / pkgs[0].name, mutate, resum)
    if case in WITHOUT_PORT:
        res = subprocess.run([sys.executable, str(TOOL), "check", str(bad)], capture_output=True, text=True, timeout=120)
    else:
        res = check(bad, binary)
    assert res.returncode == 1
    assert message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("pfsense_pkg: "), res.stderr


def test_a_deinstall_that_wipes_the_settings_is_caught(built, tmp_path):
    """The checker runs the packaged deinstall command; one that deletes installedpackages/awsha
    (what pfSense packages must not do) fails the check."""
    binary, pkgs = built

    def wipe(ms):
        page = member(ms, "/usr/local/pkg/awsha.xml")
        page[1] = page[1].replace(b"awsha_deinstall();", b"awsha_deinstall(); config_del_path('installedpackages/awshaips'); write_config('wiped');")
        assert b"config_del_path" in page[1]

    bad = repack(pkgs[0], tmp_path / pkgs[0].name, wipe)
    # The port comparison would stop at the changed page first; check without the port.
    res = subprocess.run([sys.executable, str(TOOL), "check", str(bad)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "pkg delete: installedpackages/awshaips changed or lost" in res.stderr, res.stderr


def test_a_missing_bsdtar_is_named_with_its_package(built):
    binary, pkgs = built
    res = check(pkgs[0], binary, env={"PATH": "/nonexistent"})
    assert res.returncode == 1
    assert res.stderr.strip() == "pfsense_pkg: bsdtar: not installed (Debian: apt-get install libarchive-tools)"
