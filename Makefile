# awsha — the two commands a new user runs on a fresh machine:
#   make demo   the main job end to end against local servers (moto EC2, IMDS emulator, fake ifconfig)
#   make test   every test: Rust unit tests, integration tests against the real servers, the PHP shim
# Everything listens on 127.0.0.1 only.

CARGO  ?= cargo
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := target/debug/awsha

.PHONY: all build test unit integration shim demo bench fmt clean-venv

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
	AWSHA_BIN=$(CURDIR)/$(BIN) $(PY) -m pytest tests/integration -q

shim:
	php-shim/run-tests.sh

test: build venv
	$(CARGO) test
	AWSHA_BIN=$(CURDIR)/$(BIN) $(PY) -m pytest tests/integration -q
	AWSHA_BIN=$(CURDIR)/$(BIN) AWSHA_PY=$(CURDIR)/$(PY) php-shim/run-tests.sh

demo: build venv
	AWSHA_BIN=$(CURDIR)/$(BIN) $(PY) tests/demo.py

fmt:
	$(CARGO) fmt --all

clean-venv:
	rm -rf $(VENV)
