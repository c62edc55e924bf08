# The two commands a fresh clone needs: `make demo` and `make test`.
# Both create .venv from requirements.lock (pinned versions) on first use.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
            command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
            && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "batchflow needs Python 3.11 or newer on PATH" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@# package-dir in pyproject.toml makes this a plain .pth path, not an import hook
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/python examples/demo.py

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) node_modules/.bin/azurite
	$(BIN)/pytest -q

# Azurite (Azure Storage emulator) for the storage tests, pinned by package-lock.json.
node_modules/.bin/azurite: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_graph.py
	$(BIN)/python benchmarks/bench_local.py
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_service.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
