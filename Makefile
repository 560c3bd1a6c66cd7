# Thin wrappers over the `timebank` command. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/timebank

.PHONY: demo test test-sqlite test-postgres lint messages bench clean serve install browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/timebank demo

serve: $(STAMP)
	$(BIN)/timebank serve

# The whole suite on SQLite, and on PostgreSQL when it answers; then lint and types.
test: $(STAMP)
	$(BIN)/python -m timebank.cli.testrun --postgres-url "$(PG_URL)"

# What the browser tests (tests/browser) need besides Python packages, on Debian as root: Chromium, a CJK
# font and axe-core from npm. `make test` runs `npm ci` by itself when axe-core is missing.
browser-deps:
	apt-get install -y chromium fonts-noto-cjk
	npm ci --no-audit --no-fund

test-sqlite: $(STAMP)
	$(BIN)/python -m timebank.cli.testrun --only sqlite

test-postgres: $(STAMP)
	$(BIN)/python -m timebank.cli.testrun --only postgres --postgres-url "$(PG_URL)"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src tests bench

# Benchmarks on PostgreSQL against references measured in the same run (see BENCHMARKS.md).
bench: $(STAMP)
	$(BIN)/python bench/ledger_bench.py
	$(BIN)/pip install --quiet -e ".[dev,production]" && $(BIN)/python bench/sensing_ingest_bench.py
	$(BIN)/python bench/sensing_derive_bench.py

messages: $(STAMP)
	$(BIN)/python -m timebank.cli.messages

clean:
	rm -rf $(VENV) var build *.egg-info
