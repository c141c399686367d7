# aifactory — the two commands a new user needs:
#   make run    set up and start a facility here (SQLite, local executor)
#   make test   set up and pass the whole suite (lint, types, tests on SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
ARGS   ?=
# PyTorch (for the recipes) is installed first and pinned, so that pip takes the CPU wheel this
# machine keeps locally rather than the newest CUDA build from PyPI (several GB). Any pip
# requirement will do, e.g. make setup TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu'
TORCH  ?= torch==2.13.0

.PHONY: setup run test lint typecheck pytest system-deps run-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

run: setup run-deps
	$(BIN)/aifactory up $(ARGS)

# bubblewrap: every job runs in its sandbox (docs/sandbox.md)
run-deps:
	bash scripts/install-system-deps.sh --run

system-deps:
	bash scripts/install-system-deps.sh

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

pytest: setup system-deps
	$(BIN)/pytest

test: lint typecheck pytest

bench: setup system-deps
	$(BIN)/python benchmarks/api_submit.py --duration 10
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/decision_cost.py
	$(BIN)/python benchmarks/portal_pages.py
	$(BIN)/python benchmarks/sandbox_start.py
	$(BIN)/python benchmarks/cli_startup.py

clean:
	rm -rf $(VENV) .aifactory .mypy_cache .ruff_cache .pytest_cache
