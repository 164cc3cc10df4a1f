# One entry point for users, developers and CI. Every target sets up what it needs:
# the virtualenv (from pyproject.toml), the generated code, and Debian packages.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(shell find protos -name '*.proto')
STAMP := $(VENV)/.installed

.PHONY: all run test gen check-gen lint format system-deps bench screenshots clean

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

## gen: regenerate gen/ from protos/ (grpcio-tools; never edit gen/ by hand)
gen: $(STAMP)
	$(BIN)/python scripts/gen.py gen

## check-gen: fail when gen/ differs from what protos/ generate
check-gen: $(STAMP)
	$(BIN)/python scripts/gen.py --check gen

## system-deps: Debian packages the tests and `make run` use (Prometheus, PostgreSQL, Chromium; wrk for benchmarks)
system-deps:
	@scripts/system-deps.sh

## run: the whole stack on loopback (Prometheus, Loki stand-in, demo workload, server, edge); Ctrl-C stops it
run: $(STAMP) check-gen
	@scripts/system-deps.sh prometheus
	$(BIN)/python -m devstack

## test: lint, generated-code check, then the whole suite
test: $(STAMP) check-gen system-deps lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: every benchmark in bench/, figures printed side by side
bench: $(STAMP) check-gen system-deps
	@scripts/system-deps.sh nghttp2-client
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## screenshots: every console page at 1280×800 and 390×844, as PNGs in docs/screenshots/ (real stack, headless Chromium)
screenshots: $(STAMP) check-gen
	@scripts/system-deps.sh prometheus chromium
	$(BIN)/python -m testing.screenshots docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
