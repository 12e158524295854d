#!/usr/bin/env python3
"""pfSense-pkg-awsha as FreeBSD package files (.pkg), written and checked on Linux.

    pfsense_pkg.py build --binary BIN --out DIR [--abi 14 --abi 15 ...] [--epoch N]
    pfsense_pkg.py check --binary BIN PKG...        (needs bsdtar, file, readelf, php)

build reads the port in php-shim/ (Makefile, pkg-plist, pkg-descr, files/) and writes, for each
FreeBSD major version, DIR/pfSense-pkg-awsha-<version>-freebsd<N>-amd64.pkg with BIN as
/usr/local/sbin/awsha, plus DIR/SHA256SUMS. check reads each package back with libarchive's
bsdtar (not with this file's writer), validates it as pkg(8) would, runs its install and
deinstall scripts against the shim's pfSense stubs (php-shim/tests/stubs/rc.packages), and runs
`file` and `readelf` on the binary. Every error is one line naming the file and the field.

The format is modelled on freebsd/pkg, commit 13f9f986736ca80563f006a55ae075553feb57a1
(2026-08-21), read, not copied:
  - libpkg/pkg_create.c pkg_create_from_dir(): the archive holds +COMPACT_MANIFEST, then
    +MANIFEST (both UCL_EMIT_JSON_COMPACT), then every file, then every directory;
  - libpkg/packing.c: a pax-restricted tar, filtered by one compressor (zstd, xz, bzip2, gzip or
    none); owner/group/mode of each entry are what pkg add applies (libpkg/pkg_add.c
    do_extract_regfile(), do_extract_dir());
  - libpkg/pkg_manifest.c pkg_emit_object(): key order and types; desc and scripts are
    url-encoded (only '%' and non-ASCII bytes, which this writer refuses instead); files as
    "path": "<sum>" — the form pkg wrote up to 2.3 (tag 1.20.9, FreeBSD 14's pkg) and every pkg
    since reads (pkg_obj(), MANIFEST_FILES, UCL_STRING);
  - libpkg/pkg_checksum.c: a file sum "<type>$<digest>"; type 1 = PKG_HASH_TYPE_SHA256_HEX, so a
    file's sum is "1$" + its hex sha256 (pkg_checksum_validate_fileat());
  - libpkg/pkg.c pkg_is_valid(): origin, name, comment, version, desc, maintainer, www and prefix
    are required; libpkg/utils.c is_valid_abi(): the package's abi must equal (or, as a glob,
    match) the ABI the system's pkg uses — pfSense writes ABI=FreeBSD:<major>:amd64 into
    /usr/local/etc/pkg.conf (pfsense/FreeBSD-ports sysutils/pfSense-repo) — hence one package
    per FreeBSD major version. No FreeBSD_version annotation, so no OS-version check.
Compression: xz (pkg's TXZ; Python's standard library has no zstd), preset 6, CRC64, one
thread: the same input gives the same bytes. Members are sorted, owned by root:wheel (0:0) and
dated SOURCE_DATE_EPOCH, else the last commit's time.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SHIM = Path(__file__).resolve().parent
REPO = SHIM.parent
PREFIX = "/usr/local"
DEFAULT_ABIS = (14, 15, 16)
ARCH = "amd64"
LEGACY_ARCH = "x86:64"  # pkg_arch_to_legacy(): amd64 -> x86:64
SHA256_HEX = 1  # PKG_HASH_TYPE_SHA256_HEX in libpkg/pkg/checksum.h
REQUIRED_STRINGS = ("name", "origin", "version", "comment", "maintainer", "www", "abi", "arch",
                    "prefix", "desc")
BINARY_PATH = "/usr/local/sbin/awsha"
# FreeBSD libc symbol-version sets by release (lib/libc/Versions.def): FBSD_1.7 is 14.x.
FBSD_VERSION_RELEASE = {"1.0": 7, "1.1": 8, "1.2": 9, "1.3": 10, "1.4": 11, "1.5": 12, "1.6": 13,
                        "1.7": 14, "1.8": 15, "1.9": 16}
BASE_LIBS = {"libc.so.7", "libthr.so.3", "libm.so.5", "libgcc_s.so.1", "libutil.so.9",
             "libexecinfo.so.1", "libkvm.so.7", "libprocstat.so.1", "librt.so.1"}


class PkgError(Exception):
    """One line naming the file and the field."""


# ---------------------------------------------------------------------------------------------
# The port: what the package holds
# ---------------------------------------------------------------------------------------------

@dataclass
class Entry:
    path: str  # installed path, absolute
    data: bytes
    mode: int


@dataclass
class Port:
    name: str
    version: str
    origin: str
    comment: str
    maintainer: str
    www: str
    desc: str
    categories: list[str]
    licenses: list[str]
    files: list[Entry]
    dirs: list[str]
    scripts: dict[str, str]
    substituted: list[str] = field(default_factory=list)  # paths where %%PKGVERSION%% was filled


def _makefile_vars(text: str) -> dict[str, str]:
    """NAME= value lines of a port Makefile (continuations joined, comments dropped)."""
    out: dict[str, str] = {}
    for line in text.replace("\\\n", " ").splitlines():
        m = re.match(r"^([A-Z_]+)\s*[?]?=\s*(.*)$", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = re.sub(r"\s*#.*$", "", m.group(2)).strip()
    return out


def _target_lines(text: str, target: str) -> list[str]:
    """The recipe lines of one make target, continuations joined."""
    lines, inside = [], False
    for line in text.replace("\\\n", " ").splitlines():
        if re.match(rf"^{re.escape(target)}:", line):
            inside = True
            continue
        if inside:
            if line.startswith("\t"):
                lines.append(line.strip())
            elif line.strip() == "":
                continue
            else:
                break
    return lines


def read_port(binary: Path, shim: Path = SHIM) -> Port:
    mk_path = shim / "Makefile"
    mk = mk_path.read_text()
    var = _makefile_vars(mk)

    def need(name: str) -> str:
        if not var.get(name):
            raise PkgError(f"{mk_path}: {name}: missing")
        return var[name]

    portname, version = need("PORTNAME"), need("PORTVERSION")
    if var.get("PORTREVISION", "0") not in ("", "0"):
        version += "_" + var["PORTREVISION"]
    if var.get("PORTEPOCH", "0") not in ("", "0"):
        version += "," + var["PORTEPOCH"]
    categories = need("CATEGORIES").split()
    datadir = f"{PREFIX}/share/{portname}"
    macros = {"${PREFIX}": PREFIX, "${DATADIR}": datadir, "${STAGEDIR}": "", "${FILESDIR}": "",
              "${PORTNAME}": portname}

    def expand(s: str) -> str:
        for k, v in macros.items():
            s = s.replace(k, v)
        return s

    # pkg-plist (+ PLIST_FILES): the installed files and directories.
    plist_path = shim / "pkg-plist"
    wanted, dirs = [], []
    for n, line in enumerate(plist_path.read_text().splitlines(), 1):
        if not line or line.startswith("@comment "):
            continue
        kind, path = ("d", line[5:]) if line.startswith("@dir ") else ("f", line)
        if path.startswith("@"):
            raise PkgError(f"{plist_path}:{n}: unsupported keyword in {line!r}")
        path = path.replace("%%DATADIR%%", datadir[len(PREFIX) + 1:]).replace("%%PORTNAME%%", portname)
        if "%%" in path:
            raise PkgError(f"{plist_path}:{n}: unknown substitution in {line!r}")
        path = path if path.startswith("/") else f"{PREFIX}/{path}"
        (dirs if kind == "d" else wanted).append(path)
    wanted += [f"{PREFIX}/{p}" for p in var.get("PLIST_FILES", "").split()]

    # do-install: where each file comes from and the mode it gets (bsd.port.mk: INSTALL_DATA
    # 0444, INSTALL_SCRIPT and INSTALL_PROGRAM 0555, unless -m).
    sources: dict[str, tuple[Path, int]] = {}
    for line in _target_lines(mk, "do-install"):
        words = line.split()
        if not words or not re.fullmatch(r"\$\{INSTALL_(DATA|SCRIPT|PROGRAM)\}", words[0]):
            continue
        mode = 0o444 if words[0] == "${INSTALL_DATA}" else 0o555
        rest = words[1:]
        if len(rest) >= 2 and rest[0] == "-m":
            mode, rest = int(rest[1], 8), rest[2:]
        if len(rest) != 2:
            raise PkgError(f"{mk_path}: do-install: cannot read {line!r}")
        src, dest = rest
        if src == "${AWSHA_BIN}":
            sources[expand(dest)] = (binary, mode)
        elif src.startswith("${FILESDIR}"):
            installed = expand(src)
            sources[installed] = (shim / "files" / installed.lstrip("/"), mode)
        else:
            raise PkgError(f"{mk_path}: do-install: unknown source {src}")

    # %%PKGVERSION%%: the files the port's REINPLACE fills in.
    reinplaced = set()
    for line in _target_lines(mk, "do-install"):
        if "REINPLACE_CMD" in line and "%%PKGVERSION%%" in line:
            reinplaced |= {expand(w) for w in line.split() if w.startswith("${STAGEDIR}")}

    files, substituted = [], []
    for path in sorted(wanted):
        if path not in sources:
            raise PkgError(f"{mk_path}: do-install: pkg-plist entry {path} is not installed")
        src, mode = sources[path]
        if not src.is_file():
            raise PkgError(f"{src}: no such file (pkg-plist entry {path})")
        data = src.read_bytes()
        if path == BINARY_PATH:
            files.append(Entry(path, data, mode))
            continue
        if b"%%PKGVERSION%%" in data:
            if path not in reinplaced:
                raise PkgError(f"{mk_path}: do-install: {path} holds %%PKGVERSION%% but REINPLACE_CMD does not fill it in")
            data = data.replace(b"%%PKGVERSION%%", version.encode())
            substituted.append(path)
        left = re.search(rb"%%[A-Z_]+%%", data)
        if left:
            raise PkgError(f"{src}: placeholder {left.group().decode()} left")
        files.append(Entry(path, data, mode))
    extra = set(sources) - set(wanted)
    if extra:
        raise PkgError(f"{mk_path}: do-install installs {sorted(extra)[0]}, which pkg-plist does not list")

    # Scripts: SUB_FILES pkg-install / pkg-deinstall become the manifest's install / deinstall.
    sub = {"%%PORTNAME%%": portname, "%%PREFIX%%": PREFIX, "%%DATADIR%%": datadir}
    scripts = {}
    for name, script in (("pkg-install", "install"), ("pkg-deinstall", "deinstall")):
        p = shim / "files" / f"{name}.in"
        if name not in var.get("SUB_FILES", "").split():
            raise PkgError(f"{mk_path}: SUB_FILES: {name} missing")
        text = p.read_text()
        for k, v in sub.items():
            text = text.replace(k, v)
        left = re.search(r"%%[A-Z_]+%%", text)
        if left:
            raise PkgError(f"{p}: placeholder {left.group()} left")
        scripts[script] = _pkg_text(text, p)

    desc_path = shim / "pkg-descr"
    desc = _pkg_text(desc_path.read_text(), desc_path)
    m = re.search(r"^WWW:\s*(\S+)", desc, re.M)
    www = var.get("WWW") or (m.group(1) if m else "UNKNOWN")  # pkg_create.c: "UNKNOWN" if none
    licenses = var.get("LICENSE", "").split()
    return Port(name=portname, version=version, origin=f"{categories[0]}/{portname}",
                comment=_pkg_text(need("COMMENT"), mk_path), maintainer=need("MAINTAINER"), www=www,
                desc=desc, categories=categories, licenses=licenses, files=files, dirs=sorted(dirs),
                scripts=scripts, substituted=substituted)


def _pkg_text(text: str, where: Path) -> str:
    """pkg url-encodes '%' and non-ASCII in desc and scripts and trims them; keep to plain ASCII so
    the text is the same for a pkg that decodes and one that does not."""
    if "%" in text or not text.isascii():
        raise PkgError(f"{where}: '%' or non-ASCII text would be url-encoded by pkg")
    return text.strip()


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------

def file_sum(data: bytes) -> str:
    return f"{SHA256_HEX}${hashlib.sha256(data).hexdigest()}"


def manifests(port: Port, major: int) -> tuple[dict, dict]:
    """(+COMPACT_MANIFEST, +MANIFEST), keys in pkg_emit_object()'s order."""
    compact = {
        "name": port.name,
        "origin": port.origin,
        "version": port.version,
        "comment": port.comment,
        "maintainer": port.maintainer,
        "www": port.www,
        "abi": f"FreeBSD:{major}:{ARCH}",
        "arch": f"freebsd:{major}:{LEGACY_ARCH}",
        "prefix": PREFIX,
        "flatsize": sum(len(f.data) for f in port.files),
        "licenselogic": "single",
        "licenses": port.licenses,
        "desc": port.desc,
        "categories": port.categories,
    }
    if len(port.licenses) != 1:
        raise PkgError(f"{SHIM / 'Makefile'}: LICENSE: one license expected (licenselogic single)")
    full = dict(compact)
    full["files"] = {f.path: file_sum(f.data) for f in port.files}
    full["directories"] = {d: "y" for d in port.dirs}
    full["scripts"] = dict(port.scripts)
    return compact, full


def _json(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()


def write_pkg(port: Port, major: int, epoch: int) -> bytes:
    compact, full = manifests(port, major)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, data: bytes | None, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, int(epoch)
            info.uid = info.gid = 0
            info.uname, info.gname = "root", "wheel"
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        add("+COMPACT_MANIFEST", _json(compact), 0o644)
        add("+MANIFEST", _json(full), 0o644)
        for f in sorted(port.files, key=lambda e: e.path):
            add(f.path, f.data, f.mode)
        for d in port.dirs:
            add(d, None, 0o755)
    return lzma.compress(raw.getvalue(), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)


def pkg_filename(port: Port, major: int) -> str:
    return f"{port.name}-{port.version}-freebsd{major}-{ARCH}.pkg"


def source_epoch() -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True,
                             text=True, check=True).stdout.strip()
        return int(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 0


def build(binary: Path, out: Path, abis: list[int], epoch: int, shim: Path = SHIM) -> list[Path]:
    port = read_port(binary, shim)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.pkg")) + list(out.glob("*.pkg.tmp")):
        old.unlink()  # another version's packages would be taken for this one's
    written, sums = [], []
    for major in abis:
        path = out / pkg_filename(port, major)
        data = write_pkg(port, major, epoch)
        tmp = path.with_suffix(".pkg.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
        written.append(path)
        print(f"package: {path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")
    (out / "SHA256SUMS").write_text("".join(sums))
    return written


# ---------------------------------------------------------------------------------------------
# Checker: reads the package with bsdtar, as pkg add would
# ---------------------------------------------------------------------------------------------

def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if not found:
        raise PkgError(f"{name}: not installed ({hint})")
    return found


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, check=False, **kw)


def _mtree(pkg: Path, bsdtar: str) -> dict[str, dict[str, str]]:
    """Every archive entry as libarchive reads it: type, mode, owner, size, sha256, time."""
    res = _run([bsdtar, "-cf", "-", "--format=mtree",
                "--options=!all,type,mode,uname,gname,uid,gid,size,sha256,time", f"@{pkg}"])
    if res.returncode != 0:
        raise PkgError(f"{pkg}: bsdtar cannot read it: {res.stderr.decode().strip()}")
    entries: dict[str, dict[str, str]] = {}
    for line in res.stdout.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name, *attrs = line.split()
        name = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), name)
        name = "/" + name[2:] if name.startswith("./") else name
        entries[name] = dict(a.split("=", 1) for a in attrs)
    return entries


class Checker:
    def __init__(self, pkg: Path, binary: Path | None):
        self.pkg, self.binary = pkg, binary
        self.lines: list[str] = []

    def fail(self, msg: str) -> None:
        raise PkgError(f"{self.pkg.name}: {msg}")

    def run(self) -> list[str]:
        bsdtar = _tool("bsdtar", "Debian: apt-get install libarchive-tools")
        pkg = self.pkg
        if not pkg.is_file():
            raise PkgError(f"{pkg}: no such file (run make package first)")
        raw = pkg.read_bytes()
        self.lines.append(f"{pkg.name}: {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}")

        # 1. The archive: order and metadata of every member, as libarchive reads them.
        filt = "xz" if raw.startswith(b"\xfd7zXZ\x00") else "zstd" if raw.startswith(b"\x28\xb5\x2f\xfd") else None
        if filt is None:
            self.fail("archive: neither xz nor zstd compressed")
        res = _run([bsdtar, "-tf", str(pkg)])
        if res.returncode != 0:
            self.fail(f"archive: bsdtar -t: {res.stderr.decode().strip()}")
        order = [n.rstrip("/") for n in res.stdout.decode().splitlines()]
        if order[:2] != ["+COMPACT_MANIFEST", "+MANIFEST"]:
            self.fail(f"archive: first members are {order[:2]}, not +COMPACT_MANIFEST, +MANIFEST")
        if len(set(order)) != len(order):
            self.fail("archive: a member appears twice")
        meta = _mtree(pkg, bsdtar)
        for name, m in meta.items():
            if (m.get("uname"), m.get("gname"), m.get("uid"), m.get("gid")) != ("root", "wheel", "0", "0"):
                self.fail(f"archive: {name}: owner {m.get('uname')}:{m.get('gname')} ({m.get('uid')}:{m.get('gid')}), not root:wheel (0:0)")
        times = {m.get("time") for m in meta.values()}
        if len(times) != 1:
            self.fail(f"archive: members carry {len(times)} different times, not one fixed time")
        bsdtar_version = _run([bsdtar, "--version"]).stdout.decode().split(" - ")[0].strip()
        self.lines.append(f"  archive   {filt}-compressed tar read by {bsdtar_version}: {len(order)} members, "
                          "+COMPACT_MANIFEST and +MANIFEST first, all root:wheel (0:0), one mtime")

        # 2. The manifests.
        def member(name: str) -> bytes:
            r = _run([bsdtar, "-xOf", str(pkg), name])
            if r.returncode != 0:
                self.fail(f"{name}: cannot extract: {r.stderr.decode().strip()}")
            return r.stdout

        try:
            compact = json.loads(member("+COMPACT_MANIFEST"))
            full = json.loads(member("+MANIFEST"))
        except json.JSONDecodeError as e:
            self.fail(f"+MANIFEST: not JSON: {e}")
        for key in REQUIRED_STRINGS:
            if not isinstance(full.get(key), str) or not full[key]:
                self.fail(f"+MANIFEST: {key}: missing or not a string")
        if not isinstance(full.get("flatsize"), int):
            self.fail("+MANIFEST: flatsize: missing or not an integer")
        for key in ("licenses", "categories"):
            if not isinstance(full.get(key), list) or not all(isinstance(x, str) for x in full[key]):
                self.fail(f"+MANIFEST: {key}: not a list of strings")
        for key in ("files", "directories", "scripts"):
            if not isinstance(full.get(key), dict):
                self.fail(f"+MANIFEST: {key}: missing or not an object")
        if full["origin"] != f"{full['categories'][0]}/{full['name']}":
            self.fail(f"+MANIFEST: origin {full['origin']} is not <first category>/<name>")
        m = re.fullmatch(r"FreeBSD:(\d+):amd64", full["abi"])
        if not m:
            self.fail(f"+MANIFEST: abi {full['abi']!r} is not FreeBSD:<major>:amd64")
        major = int(m.group(1))
        if full["arch"] != f"freebsd:{major}:x86:64":
            self.fail(f"+MANIFEST: arch {full['arch']!r} does not match abi {full['abi']}")
        if not pkg.name.endswith(f"-freebsd{major}-amd64.pkg") or not pkg.name.startswith(f"{full['name']}-{full['version']}-"):
            self.fail(f"file name does not say {full['name']}-{full['version']} for FreeBSD {major}")
        if full["prefix"] != PREFIX:
            self.fail(f"+MANIFEST: prefix {full['prefix']}, not {PREFIX}")
        want_compact = {k: v for k, v in full.items() if k not in ("files", "directories", "scripts")}
        if compact != want_compact:
            self.fail("+COMPACT_MANIFEST: differs from +MANIFEST without files, directories and scripts")
        self.lines.append(f"  manifest  {full['name']} {full['version']} ({full['origin']}), abi {full['abi']} "
                          f"(arch {full['arch']}), prefix {full['prefix']}, maintainer {full['maintainer']}, "
                          f"www {full['www']}, licenses {','.join(full['licenses'])}; every field pkg_is_valid() "
                          "requires, with its type; +COMPACT_MANIFEST = +MANIFEST less files/directories/scripts")

        # 3. Files: every manifest file in the archive with its sum; nothing unlisted.
        files, dirs = full["files"], full["directories"]
        flat = 0
        for path, want in files.items():
            e = meta.get(path)
            if e is None or e.get("type") != "file":
                self.fail(f"+MANIFEST: files: {path} is not a regular file in the archive")
            if not isinstance(want, str) or not re.fullmatch(r"1\$[0-9a-f]{64}", want):
                self.fail(f"+MANIFEST: files: {path}: sum {want!r} is not 1$<sha256 hex>")
            if want[2:] != e.get("sha256digest"):
                self.fail(f"{path}: sha256 {e.get('sha256digest')} in the archive, {want[2:]} in +MANIFEST")
            flat += int(e["size"])
        for path in dirs:
            if meta.get(path, {}).get("type") != "dir":
                self.fail(f"+MANIFEST: directories: {path} is not a directory in the archive")
        unlisted = [n for n in order[2:] if n not in files and n not in dirs]
        if unlisted:
            self.fail(f"archive: {unlisted[0]} is not in +MANIFEST (pkg add: not specified in the manifest)")
        if flat != full["flatsize"]:
            self.fail(f"+MANIFEST: flatsize {full['flatsize']}, the files add up to {flat}")
        if order[2:] != sorted(files) + sorted(dirs):
            self.fail("archive: files then directories, each sorted, expected after the manifests")

        # 4. Files against the port: each one and its mode is what php-shim/'s port installs.
        port = read_port(self.binary) if self.binary else None
        modes = {}
        if port:
            want_files = {f.path: f for f in port.files}
            if set(want_files) != set(files):
                self.fail(f"files differ from the port's: {sorted(set(want_files) ^ set(files))}")
            if sorted(dirs) != port.dirs:
                self.fail(f"directories {sorted(dirs)} differ from the port's {port.dirs}")
            for path, f in want_files.items():
                got = int(meta[path]["mode"], 8)
                if got != f.mode:
                    self.fail(f"{path}: mode {got:04o} in the archive, the port installs it {f.mode:04o}")
                if files[path] != file_sum(f.data):
                    self.fail(f"{path}: not the port's file (%%PKGVERSION%% = {port.version} filled in)")
                modes[path] = got
            for d in dirs:
                if int(meta[d]["mode"], 8) != 0o755:
                    self.fail(f"{d}: directory mode {meta[d]['mode']}, not 0755")
        mode_list = ", ".join(f"{int(meta[p]['mode'], 8):04o} {p}" for p in sorted(files))
        self.lines.append(f"  files     {len(files)} files + {len(dirs)} directory: each in +MANIFEST with sha256 "
                          f"(1$<hex>) = libarchive's digest of the member; flatsize {flat} = their sizes; nothing "
                          f"unlisted{'; contents and modes are the port' + chr(39) + 's' if port else ''}: {mode_list}")

        work = Path(tempfile.mkdtemp(prefix="pfsense-pkg-check-"))
        try:
            root = work / "root"
            root.mkdir()
            res = _run([bsdtar, "-xf", str(pkg), "-C", str(root), "--exclude", "+*"])
            if res.returncode != 0:
                self.fail(f"archive: bsdtar -x: {res.stderr.decode().strip()}")
            self._check_text(root, full)
            self._check_binary(root)
            self._check_scripts(full)
            self._check_php(root, work, full)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self.lines

    def _check_text(self, root: Path, full: dict) -> None:
        filled = []
        for path in sorted(full["files"]):
            if path == BINARY_PATH:
                continue
            data = (root / path.lstrip("/")).read_bytes()
            left = re.search(rb"%%[A-Z_]+%%", data)
            if left:
                self.fail(f"{path}: placeholder {left.group().decode()} left")
            if re.search(rb"<version>" + re.escape(full["version"].encode()) + rb"</version>", data):
                filled.append(path.rsplit("/", 1)[1])
        info = f"/usr/local/share/{full['name']}/info.xml"
        if info not in full["files"]:
            self.fail(f"{info}: missing")
        m = re.search(rb"<version>([^<]*)</version>", (root / info.lstrip("/")).read_bytes())
        if not m or m.group(1).decode() != full["version"]:
            self.fail(f"{info}: <version> {m.group(1).decode() if m else 'missing'}, package version {full['version']}")
        self.lines.append(f"  version   no %%...%% placeholder in any file; <version>{full['version']}</version> in "
                          f"{', '.join(filled)}")

    def _check_binary(self, root: Path) -> None:
        bin_path = root / BINARY_PATH.lstrip("/")
        if not bin_path.is_file():
            self.fail(f"{BINARY_PATH}: missing")
        if self.binary is not None and bin_path.read_bytes() != self.binary.read_bytes():
            self.fail(f"{BINARY_PATH}: not {self.binary}")
        described = _run([_tool("file", "Debian: apt-get install file"), "-b", str(bin_path)]).stdout.decode().strip()
        if not re.search(r"ELF 64-bit.*x86-64.*FreeBSD", described) or "GNU/Linux" in described:
            self.fail(f"{BINARY_PATH}: not a FreeBSD x86-64 ELF: {described}")
        line = f"  binary    {BINARY_PATH}"
        if self.binary is not None:
            line += f" = {self.binary}"
        line += f"; file: {described}"
        readelf = shutil.which("readelf")
        if readelf:
            dyn = _run([readelf, "-d", str(bin_path)]).stdout.decode()
            needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", dyn)
            foreign = [lib for lib in needed if lib not in BASE_LIBS]
            if foreign:
                self.fail(f"{BINARY_PATH}: needs {foreign[0]}, which is not in FreeBSD's base system")
            ver = _run([readelf, "-V", "-W", str(bin_path)]).stdout.decode()
            tags = sorted(set(re.findall(r"Name: FBSD_(1\.\d+)", ver)), key=lambda v: int(v.split(".")[1]))
            if needed:
                line += f"; needs {' '.join(needed)}"
            if tags:
                newest = tags[-1]
                release = FBSD_VERSION_RELEASE.get(newest)
                if release is None or release > 14:
                    self.fail(f"{BINARY_PATH}: needs libc symbol version FBSD_{newest}, newer than FreeBSD 14")
                syms = _run([readelf, "--dyn-syms", "-W", str(bin_path)]).stdout.decode()
                newest_syms = sorted(set(re.findall(rf"\s(\S+)@FBSD_{re.escape(newest)}\b", syms)))
                line += (f"; newest libc symbol version FBSD_{newest} (FreeBSD {release}: "
                         f"{', '.join(newest_syms) or '-'})")
        self.lines.append(line)

    def _check_scripts(self, full: dict) -> None:
        scripts = full["scripts"]
        name = full["name"]
        for key in ("install", "deinstall"):
            if not isinstance(scripts.get(key), str):
                self.fail(f"+MANIFEST: scripts: {key} missing")
        if f"/etc/rc.packages {name} ${{2}}" not in scripts["install"] or '"POST-INSTALL"' not in scripts["install"]:
            self.fail(f"+MANIFEST: scripts: install does not run /etc/rc.packages {name} on POST-INSTALL")
        if f"/etc/rc.packages {name} ${{2}}" not in scripts["deinstall"]:
            self.fail(f"+MANIFEST: scripts: deinstall does not run /etc/rc.packages {name}")
        unknown = set(scripts) - {"pre-install", "install", "post-install", "pre-deinstall", "deinstall", "post-deinstall"}
        if unknown:
            self.fail(f"+MANIFEST: scripts: unknown script type {sorted(unknown)[0]}")

    # -- the scripts' PHP part, against the shim's pfSense stubs --------------------------------

    def _script(self, root: Path, work: Path, full: dict, key: str, arg: str, config: Path, log: Path) -> None:
        """Runs a manifest script as libpkg/scripts.c pkg_script_run() does: /bin/sh -c with
        `set -- <name>-<version> <ARG>` first, PKG_ROOTDIR set (here: the unpacked package, whose
        usr/local/bin/php runs this machine's PHP with the stubs on its include path)."""
        body = f"set -- {full['name']}-{full['version']} {arg}\n{full['scripts'][key]}"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PKG_ROOTDIR": str(root), "PKG_NAME": full["name"],
               "PKG_PREFIX": full["prefix"], "AWSHA_STUB_ROOT": str(root), "AWSHA_STUB_CONFIG": str(config),
               "AWSHA_STUB_LOG": str(log), "HOME": str(work)}
        res = subprocess.run(["/bin/sh", "-c", body], env=env, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            self.fail(f"scripts: {key} {arg}: exit {res.returncode}: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")

    def _check_php(self, root: Path, work: Path, full: dict) -> None:
        php = _tool("php", "Debian: apt-get install php-cli php-xml")
        stubs = SHIM / "tests" / "stubs"
        (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        wrapper = root / "usr/local/bin/php"
        include = ":".join([".", str(stubs), str(root / "etc/inc"), str(root / "usr/local/pkg")])
        wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(php)} -d {shlex.quote('include_path=' + include)} "
                           "-d display_errors=stderr \"$@\"\n")
        wrapper.chmod(0o755)
        shutil.copy(stubs / "rc.packages", root / "etc/rc.packages")
        config, log = work / "config.json", work / "calls.jsonl"
        settings = {
            "awsha": {"config": [{"enable": "on", "endpoint": "", "region": "eu-west-1"}]},
            "awshaips": {"config": [{"vhid": "wan@1", "interface": "wan", "ipaddr": "10.0.1.10", "xmlrpcsync": "on"}]},
            "awsharoutes": {"config": [{"vhid": "wan@1", "routetable": "rtb-05ed6e7c46531c6c3", "cidr": "0.0.0.0/0",
                                        "interface": "lan", "xmlrpcsync": "on"}]},
            "awshaeips": {"config": [{"vhid": "wan@1", "allocationid": "eipalloc-0a1b2c3d4e5f67890",
                                      "interface": "wan", "privateip": "10.0.1.10", "xmlrpcsync": "on"}]},
        }
        config.write_text(json.dumps({"installedpackages": json.loads(json.dumps(settings))}))
        short = full["name"].removeprefix("pfSense-pkg-")

        def state() -> dict:
            return json.loads(config.read_text())

        def calls() -> list[dict]:
            return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

        def kept(cfg: dict, when: str) -> None:
            for section, value in settings.items():
                if cfg.get("installedpackages", {}).get(section) != value:
                    self.fail(f"php: {when}: installedpackages/{section} changed or lost")

        # PRE-INSTALL does nothing; POST-INSTALL registers the package.
        self._script(root, work, full, "install", "PRE-INSTALL", config, log)
        if calls():
            self.fail("php: install PRE-INSTALL ran pfSense code")
        self._script(root, work, full, "install", "POST-INSTALL", config, log)
        cfg = state()
        pkgs = [p for p in cfg.get("installedpackages", {}).get("package", []) if p.get("name") == short]
        if len(pkgs) != 1:
            self.fail(f"php: POST-INSTALL: {len(pkgs)} installedpackages/package entries named {short}")
        entry = pkgs[0]
        if entry.get("version") != full["version"]:
            self.fail(f"php: POST-INSTALL: registered version {entry.get('version')!r}, package {full['version']}")
        if entry.get("include_file") != f"/usr/local/pkg/{short}.inc":
            self.fail(f"php: POST-INSTALL: include_file {entry.get('include_file')!r}")
        hooks = [i.get("type") for i in (entry.get("plugins") or {}).get("item", [])]
        if "plugin_carp" not in hooks:
            self.fail(f"php: POST-INSTALL: plugins {hooks} lack plugin_carp")
        menus = [m for m in cfg["installedpackages"].get("menu", []) if m.get("url", "").find(f"xml={short}") >= 0]
        services = [s for s in cfg["installedpackages"].get("service", []) if s.get("name") == short]
        if not menus or not services:
            self.fail("php: POST-INSTALL: no menu entry or no service registered")
        if not (entry.get("logging") or {}).get("facilityname"):
            self.fail("php: POST-INSTALL: no logging facility registered")
        kept(cfg, "POST-INSTALL")
        started = [c for c in calls() if c["fn"] in ("mwexec", "mwexec_bg") and "minicron" in c["args"][0]]
        if len(started) != 1:
            self.fail(f"php: POST-INSTALL: the resync command started the reconcile job {len(started)} times, not once")
        self.lines.append(
            f"  php       install POST-INSTALL (sh -c, PKG_ROOTDIR = the unpacked package, /etc/rc.packages "
            f"{full['name']} POST-INSTALL against php-shim/tests/stubs): registered {short} {entry['version']} with "
            f"include_file {entry['include_file']}, hooks {','.join(hooks)}, log facility "
            f"{entry['logging']['facilityname']}, menu {menus[0].get('section')} > {menus[0].get('name')}, service "
            f"{services[0]['name']}; resync started the reconcile job ({' '.join(shlex.split(started[0]['args'][0])[:3])} …)")

        # pkg delete (libpkg/pkg_delete.c): deinstall DEINSTALL, the files removed, deinstall
        # POST-DEINSTALL.
        n = len(calls())
        self._script(root, work, full, "deinstall", "DEINSTALL", config, log)
        for path in full["files"]:
            (root / path.lstrip("/")).unlink()
        self._script(root, work, full, "deinstall", "POST-DEINSTALL", config, log)
        cfg = state()
        ip = cfg.get("installedpackages", {})
        if any(p.get("name") == short for p in ip.get("package", [])):
            self.fail("php: POST-DEINSTALL: the installedpackages/package entry is still there")
        if any(m.get("url", "").find(f"xml={short}") >= 0 for m in ip.get("menu", [])) or \
                any(s.get("name") == short for s in ip.get("service", [])):
            self.fail("php: DEINSTALL: the menu entry or the service is still there")
        kept(cfg, "pkg delete")
        deinstall_calls = [c["fn"] for c in calls()[n:]]
        if "is_pid_running" not in deinstall_calls:
            self.fail("php: DEINSTALL: the deinstall command did not look for the reconcile job")
        self.lines.append(
            f"  php       deinstall DEINSTALL, files removed, deinstall POST-DEINSTALL (pkg delete): package entry, menu "
            f"and service removed, "
            f"custom_php_deinstall_command ran ({', '.join(sorted(set(deinstall_calls) & {'is_pid_running', 'killbypid'}))}); "
            f"installedpackages/{', '.join(settings)} kept as they were")

        # pkg add again (or pkg add -f over an installed package: POST-INSTALL only).
        res = _run([shutil.which("bsdtar") or "bsdtar", "-xf", str(self.pkg), "-C", str(root), "--exclude", "+*"])
        if res.returncode != 0:
            self.fail(f"archive: bsdtar -x: {res.stderr.decode().strip()}")
        self._script(root, work, full, "install", "POST-INSTALL", config, log)
        self._script(root, work, full, "install", "POST-INSTALL", config, log)
        cfg = state()
        if len([p for p in cfg["installedpackages"].get("package", []) if p.get("name") == short]) != 1:
            self.fail("php: reinstall: not exactly one installedpackages/package entry")
        if len([m for m in cfg["installedpackages"].get("menu", []) if m.get("url", "").find(f"xml={short}") >= 0]) != 1:
            self.fail("php: reinstall: the menu entry is not there exactly once")
        kept(cfg, "reinstall")
        self.lines.append("  php       install POST-INSTALL after the removal, then once more over the installed "
                          "package (pkg add -f): one package entry, one menu entry, settings unchanged")


# ---------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--binary", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--abi", type=int, action="append", help="FreeBSD major version (repeatable; default 14 15 16)")
    b.add_argument("--epoch", type=int, help="member time (default: SOURCE_DATE_EPOCH, else the last commit's)")
    c = sub.add_parser("check")
    c.add_argument("--binary", type=Path, help="the binary the package must hold")
    c.add_argument("pkgs", type=Path, nargs="+")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build":
            if not args.binary.is_file():
                raise PkgError(f"{args.binary}: no such file (run make freebsd first)")
            build(args.binary, args.out, args.abi or list(DEFAULT_ABIS),
                  args.epoch if args.epoch is not None else source_epoch())
        else:
            for pkg in args.pkgs:
                for line in Checker(pkg, args.binary).run():
                    print(line)
                print(f"  OK        {pkg}")
    except PkgError as e:
        print(f"pfsense_pkg: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"pfsense_pkg: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
