# awsha — the two commands a new user runs on a fresh machine:
#   make demo   the main job end to end against local servers (moto EC2, IMDS emulator, fake ifconfig)
#   make test   every test: Rust unit tests, integration tests against the real servers, the pfSense
#               package writer (on a fake binary), the PHP shim
# Everything listens on 127.0.0.1 only.

CARGO  ?= cargo
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := target/debug/awsha

.PHONY: all build test lint unit integration shim demo bench fmt venv clean-venv screenshot

all: build

build:
	$(CARGO) build

# The pinned moto server and pytest; recreated when tests/requirements.txt changes.
$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

venv: $(VENV)/.installed

unit:
	$(CARGO) test

integration: build venv
	AWSHA_BIN=$(CURDIR)/$(BIN) $(PY) -m pytest tests/integration -q --timeout=300

shim:
	php-shim/run-tests.sh

# Style and lints first: they fail in seconds, before the long suites.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

test: build venv lint
	$(CARGO) test
	AWSHA_BIN=$(CURDIR)/$(BIN) $(PY) -m pytest tests/integration -q --timeout=300
	$(PY) -m pytest tests/packaging -q
	AWSHA_BIN=$(CURDIR)/$(BIN) AWSHA_PY=$(CURDIR)/$(PY) php-shim/run-tests.sh

demo: build venv
	AWSHA_BIN=$(CURDIR)/$(BIN) $(PY) tests/demo.py

# ---- pictures for docs/behaviour.md (not part of `make test`) -------------------------------------
# `make screenshot` runs a real failover scene against the demo's local servers with the real binary,
# renders Status > AWS High Availability and the dashboard widget with php-cgi (pfSense stubbed) and
# photographs them with headless Chromium from a file, with no network: docs/images/status-page.png,
# docs/images/widget.png, and `awsha history` / `awsha status` of the same run in docs/behaviour.md
# (tests/screenshot/status_page.py says what the scene is; HTML and text also in target/screenshot/).
# Installs with apt-get when missing (as root): the Debian packages php-cgi and chromium, and
# fonts-dejavu-core (the font the pictures are drawn with). About half a minute once installed.
SCREENSHOT_DEBS := php-cgi chromium fonts-dejavu-core

screenshot: build venv
	@missing=""; \
	command -v php-cgi >/dev/null || missing="$$missing php-cgi"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "screenshot: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "screenshot: missing:$$missing (apt-get install $(SCREENSHOT_DEBS))" >&2; exit 1; \
	  fi; \
	fi
	AWSHA_BIN=$(CURDIR)/$(BIN) $(PY) tests/screenshot/status_page.py

fmt:
	$(CARGO) fmt --all

clean-venv:
	rm -rf $(VENV)

# ---- pfSense release: FreeBSD 14 x86-64 binary and the pfSense packages (.pkg) ------------------
# Not part of `make test` (from a clean clone about 15 minutes on 2 cores, 13 of them the cross-build). A release manager
# runs `make release-check`. Every tool is pinned and installed on first use:
#   - rustup target x86_64-unknown-freebsd (the Rust standard library for FreeBSD)
#   - cargo-zigbuild, `cargo install --locked` into target/freebsd-tools (this checkout only)
#   - zig from PyPI (`ziglang`) in .venv-zig: aws-lc-sys compiles C, and the Linux gcc has no
#     FreeBSD headers; zig cross-compiles that C and links against FreeBSD's libc.
# The FreeBSD build has its own directory, target/x86_64-unknown-freebsd/; it never touches
# target/debug or target/release.
FREEBSD_TARGET   := x86_64-unknown-freebsd
FREEBSD_BIN      := target/$(FREEBSD_TARGET)/release/awsha
ZIGBUILD_VERSION := 0.24.1
ZIGLANG_VERSION  := 0.17.1
ZIG_VENV         := .venv-zig
FREEBSD_TOOLS    := target/freebsd-tools
PACKAGE_OUT      := target/pfsense-package
# One package per FreeBSD major version that a current pfSense runs on (docs/install.md §2):
# CE 2.7.2 = 14, CE 2.8.x and Plus 24.x-25.07 = 15, Plus 25.11 and later = 16.
PACKAGE_ABIS     := 14 15 16

.PHONY: freebsd freebsd-tools package package-tools release-check

$(ZIG_VENV)/.ziglang-$(ZIGLANG_VERSION):
	rm -rf $(ZIG_VENV)
	$(PYTHON) -m venv $(ZIG_VENV)
	$(ZIG_VENV)/bin/pip install --quiet --disable-pip-version-check ziglang==$(ZIGLANG_VERSION)
	touch $@

$(FREEBSD_TOOLS)/.cargo-zigbuild-$(ZIGBUILD_VERSION):
	$(CARGO) install --locked --root $(FREEBSD_TOOLS) cargo-zigbuild --version $(ZIGBUILD_VERSION)
	touch $@

freebsd-tools: $(ZIG_VENV)/.ziglang-$(ZIGLANG_VERSION) $(FREEBSD_TOOLS)/.cargo-zigbuild-$(ZIGBUILD_VERSION)
	@rustup target list --installed | grep -qx $(FREEBSD_TARGET) || rustup target add $(FREEBSD_TARGET)

# Cross-builds the release binary, fails on any warning in awsha's own code, checks with `file`
# that it is a FreeBSD x86-64 ELF, and prints its size and the shared libraries it needs.
freebsd: freebsd-tools
	CARGO="$(CARGO)" FREEBSD_TARGET=$(FREEBSD_TARGET) \
	CARGO_ZIGBUILD="$(CURDIR)/$(FREEBSD_TOOLS)/bin/cargo-zigbuild" \
	CARGO_ZIGBUILD_ZIG_PATH="$$($(ZIG_VENV)/bin/python -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')" \
		php-shim/build-freebsd.sh

# The pfSense packages: $(PACKAGE_OUT)/pfSense-pkg-awsha-<version>-freebsd<N>-amd64.pkg for each N
# in PACKAGE_ABIS (+ SHA256SUMS), FreeBSD's package format, written by php-shim/pfsense_pkg.py
# (Python standard library only) from the port in php-shim/ and the FreeBSD binary, which it
# carries as /usr/local/sbin/awsha. Builds nothing: run `make freebsd` first (`make
# release-check` does both). Older .pkg files in $(PACKAGE_OUT) are removed.
package:
	$(PYTHON) php-shim/pfsense_pkg.py build --binary $(FREEBSD_BIN) --out $(PACKAGE_OUT) \
		$(foreach n,$(PACKAGE_ABIS),--abi $(n))

# The checker reads the packages with libarchive's bsdtar (Debian package libarchive-tools), runs
# their scripts' PHP with php-cli, and the binary through file and readelf (binutils).
package-tools:
	@if ! command -v bsdtar >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "release-check: bsdtar missing, installing libarchive-tools"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libarchive-tools >/dev/null; \
	  else \
	    echo "release-check: bsdtar missing: install libarchive-tools (apt-get install libarchive-tools)" >&2; exit 1; \
	  fi; \
	fi
	@for t in php file readelf; do command -v $$t >/dev/null || { \
	  echo "release-check: $$t missing (Debian: apt-get install php-cli php-xml file binutils)" >&2; exit 1; }; done

# What a release manager runs before publishing: build the binary, write the packages, write them
# again elsewhere and compare the bytes (reproducible), then check each package from the outside.
release-check: freebsd package-tools
	$(MAKE) --no-print-directory package
	@rm -rf $(PACKAGE_OUT)/.rebuild
	@$(PYTHON) php-shim/pfsense_pkg.py build --binary $(FREEBSD_BIN) --out $(PACKAGE_OUT)/.rebuild \
		$(foreach n,$(PACKAGE_ABIS),--abi $(n)) >/dev/null
	@for f in $(PACKAGE_OUT)/*.pkg; do \
	  cmp -s "$$f" "$(PACKAGE_OUT)/.rebuild/$${f##*/}" || { echo "release-check: $$f: a second build gives other bytes" >&2; exit 1; }; \
	  echo "reproducible: $${f##*/}: $$(sha256sum <"$$f" | cut -c1-64) (build 1) = $$(sha256sum <"$(PACKAGE_OUT)/.rebuild/$${f##*/}" | cut -c1-64) (build 2)"; \
	done
	@rm -rf $(PACKAGE_OUT)/.rebuild
	$(PYTHON) php-shim/pfsense_pkg.py check --binary $(FREEBSD_BIN) $(PACKAGE_OUT)/*.pkg

# ---- fuzzing the parsers (not part of `make test` nor CI) ---------------------------------------
# `make fuzz` runs each target of tests/fuzz (config.xml, ifconfig -a, VHID names, CIDRs/times)
# one after the other for FUZZ_SECONDS in all (default 600 s, split evenly), with cargo-fuzz and
# libFuzzer. The fuzz crate includes only the pure parser modules of src/ by path, so the AWS SDK
# is never rebuilt with coverage instrumentation. cargo-fuzz needs nightly compiler flags: on the
# stable toolchain RUSTC_BOOTSTRAP=1 unlocks them (set here; nothing else is built that way).
# Sanitizer `none` by default (safe Rust; FUZZ_SANITIZER=address works too, slower). New corpus
# entries go to tests/fuzz/corpus/<target> (ignored by git), crashes to tests/fuzz/artifacts/<target>,
# each target's libFuzzer log to tests/fuzz/artifacts/<target>.log. Keep a crash as a regression
# input in tests/fuzz/regressions/<target>/ (tests/integration/test_hostile_config.py replays them
# through the binary). Details and figures: docs/reliability.md.
FUZZ_SECONDS   ?= 600
FUZZ_TARGETS   ?= config ifconfig vhid net_time
FUZZ_SANITIZER ?= none
FUZZ_MAX_LEN   ?= 16384
FUZZ_DIR       := $(CURDIR)/tests/fuzz
CARGO_FUZZ     := RUSTC_BOOTSTRAP=1 $(CARGO) fuzz

.PHONY: fuzz fuzz-build

fuzz-build:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz --version 0.13.2
	$(CARGO_FUZZ) build --fuzz-dir $(FUZZ_DIR) -s $(FUZZ_SANITIZER) -O

fuzz: fuzz-build
	@per=$$(( $(FUZZ_SECONDS) / $(words $(FUZZ_TARGETS)) )); [ $$per -ge 1 ] || per=1; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts; \
	  echo "== fuzz $$t for $$per s (log: tests/fuzz/artifacts/$$t.log)"; \
	  $(CARGO_FUZZ) run --fuzz-dir $(FUZZ_DIR) -s $(FUZZ_SANITIZER) -O $$t \
	    $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t -- \
	    -max_total_time=$$per -timeout=10 -rss_limit_mb=2048 -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
	    $$( [ -f $(FUZZ_DIR)/dicts/$$t.dict ] && echo -dict=$(FUZZ_DIR)/dicts/$$t.dict ) \
	    > $(FUZZ_DIR)/artifacts/$$t.log 2>&1 || failed="$$failed $$t"; \
	  grep -E '^Done|stat::number_of_executed_units|stat::new_units_added|SUMMARY|panicked' $(FUZZ_DIR)/artifacts/$$t.log; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (inputs in tests/fuzz/artifacts/)"; exit 1; fi; \
	echo "fuzz: no crash in $(FUZZ_TARGETS)"

# ---- benchmark: failover at the speed limit of the EC2 API (not part of `make test`) ------------
# `make bench` builds the release binary (a clean build takes about 11 minutes on 2 cores), installs
# the pinned aws CLI into .venv-bench (tests/bench-requirements.txt; the test venv stays small) and
# runs tests/bench/bench.py against local moto + the IMDS emulators, with a fixed delay on every EC2
# request: failover wall time and EC2 requests (1+1+1, 1+8+1, 4+40+4 actions), the same moves with
# one `aws` CLI call after another, reconcile in sync (also at 10, 200 and 500 resources), failover of
# 100 and 200 route tables behind a ReplaceRoute token bucket (capacity 40, refill 10/s), the IPv6
# move (wan@3, held by the peer or by nobody), start + parse of a 5 MiB config.xml, peak RSS, binary
# size — a summary table with issues 7, 11 and 14's targets. Knobs (environment): BENCH_DELAY_MS
# (default 50), BENCH_RUNS (timed failover runs per node and size, default 5), BENCH_CLI_RUNS
# (default 3), BENCH_PARSE_RUNS (default 21), BENCH_UPDATE_DOC=1 (rewrite the figures block of
# docs/performance.md). Output also in target/bench/. Takes about 10 minutes once built.
BENCH_VENV := .venv-bench
BENCH_BIN  := target/release/awsha

$(BENCH_VENV)/.installed: tests/bench-requirements.txt
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/bench-requirements.txt
	touch $@

.PHONY: bench

bench: venv $(BENCH_VENV)/.installed
	$(CARGO) build --release
	AWSHA_BIN=$(CURDIR)/$(BENCH_BIN) BENCH_AWS=$(CURDIR)/$(BENCH_VENV)/bin/aws $(PY) tests/bench/bench.py
