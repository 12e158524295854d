#!/usr/bin/env bash
# Cross-builds the awsha release binary for pfSense (FreeBSD 14, x86-64) and checks the result.
# Run through `make freebsd`, which installs the pinned tools first and sets:
#   CARGO_ZIGBUILD           the pinned cargo-zigbuild program (called directly, so a different
#                            cargo-zigbuild in ~/.cargo/bin is never picked up by cargo instead)
#   CARGO_ZIGBUILD_ZIG_PATH  the pinned zig (from the ziglang wheel in .venv-zig)
#   FREEBSD_TARGET           x86_64-unknown-freebsd;  CARGO  cargo
# Fails when the build fails, when awsha's own code has any compiler warning for FreeBSD, or when
# the result is not a FreeBSD x86-64 ELF. Prints the `file` line, the size and the libraries it
# needs (all of which must be in FreeBSD's base system).
set -euo pipefail

cd "$(dirname "$0")/.."
: "${CARGO_ZIGBUILD:?run through make freebsd}" "${CARGO_ZIGBUILD_ZIG_PATH:?run through make freebsd}"
target=${FREEBSD_TARGET:-x86_64-unknown-freebsd}
export CARGO=${CARGO:-cargo}
export CARGO_ZIGBUILD_ZIG_PATH
bin=target/$target/release/awsha
log=target/$target/build.log

[ -x "$CARGO_ZIGBUILD_ZIG_PATH" ] || { echo "build-freebsd: no zig at $CARGO_ZIGBUILD_ZIG_PATH" >&2; exit 1; }
mkdir -p "target/$target"
echo "build-freebsd: $("$CARGO_ZIGBUILD" --version), zig $("$CARGO_ZIGBUILD_ZIG_PATH" version), $(rustc --version)"
echo "build-freebsd: cargo zigbuild --locked --release --target $target (10 to 16 min from scratch on 2 cores, about 75 s after a change in src/)"
start=$(date +%s)
# cargo replays the cached warnings of a crate that is already built, so the check below also
# holds for a build that had nothing to do.
"$CARGO_ZIGBUILD" zigbuild --locked --release --target "$target" 2>&1 | tee "$log"
echo "build-freebsd: cargo zigbuild took $(( $(date +%s) - start )) s"

# Dependencies' warnings are capped by cargo; what is left is awsha's own (and build scripts'
# `cargo:warning` lines, which name their crate and are not ours).
# shellcheck disable=SC2016 # the backquotes are cargo's, not the shell's
if grep -E '^warning: `awsha` |^ *--> src/' "$log" >/dev/null; then
	echo "build-freebsd: awsha has compiler warnings for $target (see above, or $log)" >&2
	exit 1
fi

described=$(file -b "$bin")
echo "build-freebsd: file: $described"
case "$described" in
*GNU/Linux*) ok=no ;;
*ELF\ 64-bit*x86-64*FreeBSD*) ok=yes ;;
*) ok=no ;;
esac
[ "$ok" = yes ] || { echo "build-freebsd: $bin is not a FreeBSD x86-64 ELF" >&2; exit 1; }
# pfSense CE 2.7 and 2.8 run FreeBSD 14: a binary stamped for a later FreeBSD may not run there.
osrel=$(sed -n 's/.*for FreeBSD \([0-9]*\)\..*/\1/p' <<<"$described")
if [ -n "$osrel" ] && [ "$osrel" -gt 14 ]; then
	echo "build-freebsd: $bin is for FreeBSD $osrel; pfSense needs 14" >&2
	exit 1
fi

# A pfSense box has FreeBSD's base libraries and nothing else a package did not bring.
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "build-freebsd: needs: $needed"
for lib in $needed; do
	case "$lib" in
	libc.so.7 | libthr.so.3 | libm.so.5 | libgcc_s.so.1 | libutil.so.9 | libexecinfo.so.1 | libkvm.so.7 | libprocstat.so.1 | librt.so.1) ;;
	*)
		echo "build-freebsd: $bin needs $lib, which is not in FreeBSD's base system" >&2
		exit 1
		;;
	esac
done

size=$(stat -c %s "$bin")
echo "build-freebsd: $bin: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }'))"
