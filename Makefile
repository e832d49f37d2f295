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

.PHONY: help install run dev test lint typecheck pytest stack-up stack-down stack-status

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(RECS_CACHE_DIR)/uv-$(UV_VERSION)
	$(RECS_CACHE_DIR)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced ## create the virtualenv and install the locked dependencies

lint: install ## ruff (lint and format check)
	$(BIN)/ruff check app tests scripts loadtests
	$(BIN)/ruff format --check app tests scripts loadtests

typecheck: install ## mypy, strict on app/
	$(BIN)/mypy

stack-up: install ## start Cassandra, DynamoDB Local and the catalog service (idempotent)
	$(STACK) up

stack-down: install ## stop the local stack (by recorded pid)
	$(STACK) down

stack-status: install ## show what of the local stack runs
	$(STACK) status
