#!/usr/bin/env bash
# The pfSense release tarball: the package tree as it lands on the firewall, plus the port.
#
#   php-shim/package.sh stage  BINARY OUTDIR     (make package)
#   php-shim/package.sh verify TARBALL BINARY    (make release-check)
#
# stage: checks that BINARY is a FreeBSD x86-64 ELF and that every pkg-plist entry exists under
# files/, then writes OUTDIR/<PORTNAME>-<PKGVERSION>-freebsd-amd64.tar.gz (+ .sha256, and the
# tarball's path in OUTDIR/latest) holding one directory <PORTNAME>-<PKGVERSION>/ with
#   stage/     the installed tree: BINARY as /usr/local/sbin/awsha (mode 0555, what the awsha port
#              installs) and every pkg-plist entry at its path, with the mode the port's do-install
#              gives it and %%PKGVERSION%% filled in as do-install does (what `make stage` makes)
#   port/      the port (Makefile, pkg-descr, pkg-plist, files/): on FreeBSD,
#              `cd port && make package` builds the pfSense-pkg-awsha package from it
#   MANIFEST   one line per file and directory of the two: type, mode, sha256, size, path
# Owners are 0:0 and times the last commit's (SOURCE_DATE_EPOCH overrides), so the same tree
# gives the same tarball.
#
# verify: unpacks the tarball and checks it from the outside: every file against MANIFEST (mode,
# sha256, size) and nothing unlisted; every pkg-plist entry staged with the port's mode; the
# staged binary is BINARY and a FreeBSD x86-64 ELF; port/ is this checkout's port; info.xml filled in;
# Cargo.toml's version is the port's; php -l on the staged PHP (when php is installed).
set -euo pipefail
umask 022

shim=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$shim/.." && pwd)
prefix=/usr/local

die() {
	echo "package: $*" >&2
	exit 1
}

# A variable of the port's Makefile (`NAME=<tab>value`).
port_var() {
	sed -n "s/^$1=[[:space:]]*//p" "$2/Makefile" | head -n 1 | sed 's/[[:space:]]*#.*//; s/[[:space:]]*$//'
}

# Sets portname, pkgversion (bsd.port.mk: PORTVERSION[_PORTREVISION][,PORTEPOCH]) and datadir.
read_port() {
	local dir=$1 revision epoch
	portname=$(port_var PORTNAME "$dir")
	pkgversion=$(port_var PORTVERSION "$dir")
	revision=$(port_var PORTREVISION "$dir")
	epoch=$(port_var PORTEPOCH "$dir")
	if [ -z "$portname" ] || [ -z "$pkgversion" ]; then die "$dir/Makefile: no PORTNAME or PORTVERSION"; fi
	[ -z "$revision" ] || [ "$revision" = 0 ] || pkgversion="${pkgversion}_$revision"
	[ -z "$epoch" ] || [ "$epoch" = 0 ] || pkgversion="$pkgversion,$epoch"
	datadir=$prefix/share/$portname
}

# pkg-plist → lines "f /abs/path" and "d /abs/dir". Only the keywords this port uses are known;
# anything else stops the run rather than being staged wrongly.
plist_entries() {
	local line kind path
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		'' | '@comment '*) continue ;;
		'@dir '*) kind=d path=${line#@dir } ;;
		@*) die "pkg-plist: unsupported keyword in '$line'" ;;
		*) kind=f path=$line ;;
		esac
		path=${path//%%DATADIR%%/${datadir#"$prefix"/}}
		path=${path//%%PORTNAME%%/$portname}
		case "$path" in *%%*) die "pkg-plist: unknown substitution in '$line'" ;; esac
		case "$path" in /*) ;; *) path=$prefix/$path ;; esac
		echo "$kind $path"
	done <"$1/pkg-plist"
}

# The port's do-install → lines "/abs/path mode": the mode each file is installed with
# (-m, else bsd.port.mk's default for the macro: INSTALL_DATA 0444, SCRIPT/PROGRAM 0555).
install_modes() {
	awk -v prefix="$prefix" -v datadir="$datadir" '
		/\\$/ { sub(/\\$/, ""); buf = buf $0 " "; next }
		{
			line = buf $0; buf = ""
			n = split(line, w, /[ \t]+/)
			macro = ""; mode = ""; src = ""
			for (i = 1; i <= n; i++) {
				if (macro == "" && w[i] ~ /^\$\{INSTALL_(DATA|SCRIPT|PROGRAM)\}$/) macro = w[i]
				else if (macro != "" && w[i] == "-m" && i < n) mode = w[++i]
				else if (macro != "" && src == "" && index(w[i], "${FILESDIR}") == 1) src = substr(w[i], 12)
			}
			if (macro == "" || src == "") next
			if (mode == "") mode = (macro == "${INSTALL_DATA}") ? "444" : "555"
			sub(/^\$\{DATADIR\}/, datadir, src)
			sub(/^\$\{PREFIX\}/, prefix, src)
			print src, mode
		}' "$1/Makefile" | while read -r src mode; do
		case "$mode" in *[!0-7]* | '') die "port Makefile: mode '$mode' of $src is not octal" ;; esac
		printf '%s %04d\n' "$src" "$((10#$mode))"
	done
}

is_freebsd_x86_64() {
	case "$(file -b "$1")" in
	*GNU/Linux*) return 1 ;;
	*ELF\ 64-bit*x86-64*FreeBSD*) return 0 ;;
	esac
	return 1
}

check_binary() {
	[ -f "$1" ] || die "$1: no such file (run make freebsd first)"
	is_freebsd_x86_64 "$1" || die "$1 is not a FreeBSD x86-64 ELF: $(file -b "$1")"
}

# The port's files as shipped in port/, relative to the port directory.
port_files() {
	(cd "$1" && { printf '%s\n' Makefile pkg-descr pkg-plist; find files -type f; } | LC_ALL=C sort)
}

manifest() {
	local top=$1 path
	(
		cd "$top"
		find stage port -mindepth 0 | LC_ALL=C sort | while IFS= read -r path; do
			if [ -d "$path" ]; then
				printf 'd %s - - %s/\n' "$(stat -c %04a "$path")" "$path"
			else
				printf 'f %s %s %s %s\n' "$(stat -c %04a "$path")" "$(sha256sum <"$path" | cut -c1-64)" \
					"$(stat -c %s "$path")" "$path"
			fi
		done
	)
}

stage() {
	local bin=$1 out=$2 kind path mode missing=0 top work name tarball epoch commit entries mode_lines
	read_port "$shim"
	check_binary "$bin"
	# Read into variables first: a `die` inside a command substitution stops this script.
	entries=$(plist_entries "$shim")
	mode_lines=$(install_modes "$shim")
	declare -A modes=()
	while read -r path mode; do modes[$path]=$mode; done <<<"$mode_lines"

	while read -r kind path; do
		[ "$kind" = f ] || continue
		if [ ! -f "$shim/files$path" ]; then
			echo "package: pkg-plist entry $path: no file php-shim/files$path" >&2
			missing=1
		elif [ -z "${modes[$path]:-}" ]; then
			echo "package: pkg-plist entry $path: the port's do-install does not install it" >&2
			missing=1
		fi
	done <<<"$entries"
	[ "$missing" = 0 ] || die "pkg-plist and the port's files disagree (above)"

	name=$portname-$pkgversion
	mkdir -p "$out"
	work=$(cd "$out" && pwd)/work
	rm -rf "$work"
	top=$work/$name
	mkdir -p "$top/stage" "$top/port"

	install -D -m 0555 "$bin" "$top/stage$prefix/sbin/awsha"
	while read -r kind path; do
		case "$kind" in
		d) mkdir -p "$top/stage$path" ;;
		f) install -D -m "${modes[$path]}" "$shim/files$path" "$top/stage$path" ;;
		esac
	done <<<"$entries"
	# As the port's do-install: REINPLACE %%PKGVERSION%% in ${DATADIR}/info.xml.
	if [ -f "$top/stage$datadir/info.xml" ]; then
		sed -i "s|%%PKGVERSION%%|$pkgversion|" "$top/stage$datadir/info.xml"
	fi
	# (The pages' <version>%%PKGVERSION%%</version> stays, as in pfSense's own ports: pfSense takes
	# the version from info.xml and the package database.)
	if grep -nE '%%[A-Z_]+%%' "$top/stage$datadir/info.xml" >&2; then
		die "placeholders left in $datadir/info.xml"
	fi

	while IFS= read -r path; do
		install -D -m "$(stat -c %a "$shim/$path")" "$shim/$path" "$top/port/$path"
	done < <(port_files "$shim")
	find "$top" -type d -exec chmod 0755 {} +

	epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}
	commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
	if [ "$commit" != unknown ] && [ -n "$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock php-shim 2>/dev/null)" ]; then
		commit="$commit (with uncommitted changes)"
	fi
	{
		echo "# $name for pfSense (FreeBSD 14, amd64), made by php-shim/package.sh stage"
		echo "# awsha $(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1), commit $commit"
		echo "# stage/ is installed at /; port/ is the port (cd port && make package)."
		echo "# type mode sha256 size path"
		manifest "$top"
	} >"$top/MANIFEST"
	chmod 0644 "$top/MANIFEST"

	tarball=$(cd "$out" && pwd)/$name-freebsd-amd64.tar.gz
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$work" -cf - "$name" |
		gzip -n -9 >"$tarball"
	(cd "$out" && sha256sum "$(basename "$tarball")" >"$(basename "$tarball").sha256")
	rm -rf "$work"
	echo "$tarball" >"$out/latest"

	echo "package: $tarball ($(stat -c %s "$tarball") bytes)"
	echo "package: sha256 $(cut -d' ' -f1 "$tarball.sha256")"
}

verify() {
	local tarball=$1 bin=$2 top name staged_bin entries mode_lines kind mode sum size path errors=0 count=0 want
	[ -f "$tarball" ] || die "$tarball: no such file (run make package first)"
	check_binary "$bin"
	tmp=$(mktemp -d) # global: the EXIT trap runs after verify has returned
	trap 'rm -rf "$tmp"' EXIT
	fail() {
		echo "verify: $*" >&2
		errors=$((errors + 1))
	}

	if tar -tvzf "$tarball" | awk '$2 != "0/0" { bad = 1 } END { exit !bad }'; then
		fail "entries not owned by 0:0"
	fi
	tar -xpzf "$tarball" -C "$tmp"
	[ "$(find "$tmp" -mindepth 1 -maxdepth 1 | wc -l)" = 1 ] || die "the tarball must hold exactly one directory"
	top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d)
	name=$(basename "$top")
	[ "$(basename "$tarball")" = "$name-freebsd-amd64.tar.gz" ] || fail "directory $name does not match the tarball's name"
	[ -f "$top/MANIFEST" ] || die "no MANIFEST"

	# 1. MANIFEST ⇔ contents.
	declare -A listed=()
	while read -r kind mode sum size path; do
		count=$((count + 1))
		listed[$path]=1
		if [ "$kind" = d ]; then
			[ -d "$top/$path" ] || { fail "$path: listed, missing"; continue; }
		else
			[ -f "$top/$path" ] || { fail "$path: listed, missing"; continue; }
			[ "$(sha256sum <"$top/$path" | cut -c1-64)" = "$sum" ] || fail "$path: sha256 differs from MANIFEST"
			[ "$(stat -c %s "$top/$path")" = "$size" ] || fail "$path: size differs from MANIFEST"
		fi
		[ "$(stat -c %04a "$top/$path")" = "$mode" ] || fail "$path: mode $(stat -c %04a "$top/$path"), MANIFEST $mode"
	done < <(grep -v '^#' "$top/MANIFEST")
	while IFS= read -r path; do
		[ -d "$top/$path" ] && path=$path/
		[ -n "${listed[$path]:-}" ] || fail "$path: in the tarball, not in MANIFEST"
	done < <(cd "$top" && find stage port -mindepth 0)

	# 2. port/ is this checkout's port.
	read_port "$shim"
	[ "$name" = "$portname-$pkgversion" ] || fail "tarball is $name, the port is $portname-$pkgversion"
	want=$(port_files "$shim")
	[ "$want" = "$(port_files "$top/port")" ] || fail "port/ holds other files than php-shim/'s port"
	while IFS= read -r path; do
		cmp -s "$shim/$path" "$top/port/$path" || fail "port/$path differs from php-shim/$path"
	done <<<"$want"

	# 3. Every pkg-plist entry is staged, as the port installs it.
	entries=$(plist_entries "$top/port")
	mode_lines=$(install_modes "$top/port")
	declare -A modes=()
	while read -r path mode; do modes[$path]=$mode; done <<<"$mode_lines"
	while read -r kind path; do
		if [ "$kind" = d ]; then
			[ -d "$top/stage$path" ] || fail "pkg-plist @dir $path: not staged"
			continue
		fi
		[ -f "$top/stage$path" ] || { fail "pkg-plist $path: not staged"; continue; }
		[ "$(stat -c %04a "$top/stage$path")" = "${modes[$path]:-none}" ] ||
			fail "$path: mode $(stat -c %04a "$top/stage$path"), the port installs it ${modes[$path]:-(not at all)}"
		if [ "$path" = "$datadir/info.xml" ]; then
			sed "s|%%PKGVERSION%%|$pkgversion|" "$top/port/files$path" | cmp -s - "$top/stage$path" ||
				fail "$path: not the port's file with %%PKGVERSION%% = $pkgversion"
		else
			cmp -s "$top/port/files$path" "$top/stage$path" || fail "$path: differs from port/files$path"
		fi
	done <<<"$entries"
	if grep -nE '%%[A-Z_]+%%' "$top/stage$datadir/info.xml" >&2; then
		fail "placeholders left in $datadir/info.xml"
	fi

	# 4. The binary.
	staged_bin=$top/stage$prefix/sbin/awsha
	if [ ! -f "$staged_bin" ]; then
		fail "$prefix/sbin/awsha: not staged"
	else
		cmp -s "$staged_bin" "$bin" || fail "$prefix/sbin/awsha is not $bin"
		is_freebsd_x86_64 "$staged_bin" || fail "$prefix/sbin/awsha is not a FreeBSD x86-64 ELF"
		[ "$(stat -c %04a "$staged_bin")" = 0555 ] ||
			fail "$prefix/sbin/awsha: mode $(stat -c %04a "$staged_bin"), want 0555"
	fi

	# 5. One version for the binary and the package.
	want=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
	[ "$want" = "$(port_var PORTVERSION "$top/port")" ] ||
		fail "Cargo.toml version $want, port PORTVERSION $(port_var PORTVERSION "$top/port")"

	# 6. The staged PHP parses (pfSense runs PHP 8.x).
	if command -v php >/dev/null; then
		while IFS= read -r path; do
			php -l "$path" >/dev/null 2>&1 || fail "php -l: ${path#"$top"/}: $(php -l "$path" 2>&1 | head -n 1)"
		done < <(find "$top/stage" -type f \( -name '*.inc' -o -path '*/sbin/awsha-run' \))
	else
		echo "verify: php not installed, php -l skipped"
	fi

	[ "$errors" = 0 ] || die "$errors problem(s) in $tarball"
	echo "verify: $tarball: OK"
	echo "verify: $count MANIFEST entries match; $(wc -l <<<"$entries") pkg-plist entries staged; $prefix/sbin/awsha = $bin"
	echo "verify: $prefix/sbin/awsha: $(file -b "$staged_bin")"
	echo "verify: sha256 $(sha256sum <"$tarball" | cut -c1-64), $(stat -c %s "$tarball") bytes"
}

case "${1:-}" in
stage) [ $# = 3 ] || die "usage: $0 stage BINARY OUTDIR"; stage "$2" "$3" ;;
verify) [ $# = 3 ] || die "usage: $0 verify TARBALL BINARY"; verify "$2" "$3" ;;
*) die "usage: $0 stage BINARY OUTDIR | verify TARBALL BINARY" ;;
esac
