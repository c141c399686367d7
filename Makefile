# aifactory — the two commands a new user needs:
#   make run    set up and start a facility here (SQLite, local executor)
#   make test   set up and pass the whole suite (lint, types, tests on SQLite and PostgreSQL)
#   make llm    add PyTorch for the recipes (aifactory submit --recipe …) to what make run set up

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
# Three set-ups share .venv, each one adding to the one before: `setup` what running a facility
# needs (make run; JupyterLab for interactive sessions included), `llm` PyTorch for the recipes
# (docs/recipes.md), `setup-dev` those and the
# tools the tests need (make test). Each leaves a stamp named after pyproject.toml's content and
# also the stamps of the set-ups it contains, so `make run` after `make test` installs nothing
# and `make test` after `make run` adds what is missing.
HASH   := $(shell sha1sum pyproject.toml | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
LLM_STAMP := $(VENV)/.installed-llm-$(HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(HASH)
# PyTorch (for the recipes) is installed first and pinned, so that pip takes the CPU wheel this
# machine keeps locally rather than the newest CUDA build from PyPI (several GB). Any pip
# requirement will do, e.g. make llm TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu'
TORCH  ?= torch==2.13.0

# The stamps of an older pyproject.toml go; then these stamps are made.
stamp = find $(VENV) -maxdepth 1 -name '.installed-*' ! -name '*-$(HASH)' -delete && touch $(1)

.PHONY: setup llm setup-dev run test lint typecheck pytest system-deps run-deps bench clean oidc-provider test-node-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sessions]'
	$(call stamp,$(RUN_STAMP))

$(LLM_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[llm,sessions]'
	$(call stamp,$(RUN_STAMP) $(LLM_STAMP))

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,llm]'
	$(call stamp,$(RUN_STAMP) $(LLM_STAMP) $(DEV_STAMP))

setup: $(RUN_STAMP)

llm: $(LLM_STAMP)

setup-dev: $(DEV_STAMP)

run: setup run-deps
	$(BIN)/aifactory up $(ARGS)

# bubblewrap: every job runs in its sandbox (docs/sandbox.md)
run-deps:
	bash scripts/install-system-deps.sh --run

system-deps:
	bash scripts/install-system-deps.sh

# A test OpenID provider (node-oidc-provider) for trying federated sign-in by hand, on
# http://127.0.0.1:9000 with oidc-provider/example.json's accounts and clients
# (oidc-provider/README.md). The tests start their own (tests/oidc_provider.py).
oidc-provider:
	cd oidc-provider && npm ci --no-audit --no-fund && node server.mjs example.json

lint: setup-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup-dev
	$(BIN)/mypy

# The tests' OpenID provider's npm packages (tests/oidc_provider.py): installed here, before
# the tests, not inside one test's time limit.
test-node-deps: setup-dev system-deps
	$(BIN)/python -c "from tests.oidc_provider import ensure_node_modules; ensure_node_modules()"

pytest: setup-dev system-deps test-node-deps
	$(BIN)/pytest

test: lint typecheck pytest

bench: setup-dev system-deps
	$(BIN)/python benchmarks/api_submit.py --duration 10
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/decision_cost.py
	$(BIN)/python benchmarks/portal_pages.py
	$(BIN)/python benchmarks/sandbox_start.py
	$(BIN)/python benchmarks/software_start.py
	$(BIN)/python benchmarks/gateway_overhead.py
	$(BIN)/python benchmarks/cli_startup.py

clean:
	rm -rf $(VENV) .aifactory .mypy_cache .ruff_cache .pytest_cache
