# Sonora — `make run` serves with demo data, `make test` runs the whole suite. `make help` lists all.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
EXT_SRC := streamcore/_cstream.pyx
PYTEST_ARGS ?=

PACKAGES_FOR ?= test

.PHONY: help install build packages services env run serve migrate test lint typecheck check compose-check clean bench

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip==26.3 setuptools==80.9.0 wheel==0.45.1
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) build ## Create .venv with the pinned dependencies and build the native core

build: $(STAMP) ## Build the Cython core in place (STREAMCORE_NO_EXTENSIONS=1 skips it, STREAMCORE_REQUIRE_EXTENSIONS=1 makes a failure fatal)
	@if [ -f $(EXT_SRC) ] && [ -z "$$STREAMCORE_NO_EXTENSIONS" ]; then \
	  mkdir -p build; \
	  if $(PY) setup.py -q build_ext --inplace >/dev/null 2>build/ext.log; then :; else \
	    cat build/ext.log; \
	    if [ -n "$$STREAMCORE_REQUIRE_EXTENSIONS" ]; then echo "native core not built and STREAMCORE_REQUIRE_EXTENSIONS is set: failing" >&2; exit 1; fi; \
	    echo "native core not built: the pure-Python twin will be used"; \
	  fi; \
	  if [ -n "$$STREAMCORE_REQUIRE_EXTENSIONS" ]; then \
	    $(PY) -c 'import streamcore; assert streamcore.IMPLEMENTATION == "cython", streamcore.IMPLEMENTATION' || { echo "the built native core does not import: failing" >&2; exit 1; }; \
	  fi; \
	fi

packages: ## Install the Debian programs when missing (ffmpeg, make, gcc; for tests also chromium and mpv)
	@bash scripts/packages.sh $(PACKAGES_FOR)

services: ## Start MariaDB, Redis and RabbitMQ when stopped (install them from Debian when missing)
	@bash scripts/services.sh

env: $(STAMP) services ## Write .env from the local services (never overwrites an edited one), migrate, first admin
	@$(PY) -m app bootstrap

run: PACKAGES_FOR = run
run: packages install env ## Install, set up, demo data on first start, worker and server on http://127.0.0.1:8080
	@$(PY) -m app run

serve: ## Serve without the set-up steps
	@$(PY) -m app serve

migrate: $(STAMP) ## Apply the SQL migrations
	@$(PY) -m app migrate

test: packages install services ## Run the whole test suite against the local MariaDB, Redis and RabbitMQ
	@timeout 1800 $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP) ## ruff
	@$(VENV)/bin/ruff check .

typecheck: $(STAMP) ## mypy
	@$(VENV)/bin/mypy

check: lint typecheck test ## lint, typecheck and test

bench: install services ## Run the benchmarks (writes docs/benchmarks.md)
	@$(PY) -m bench

compose-check: ## Validate docker-compose.yml (needs the docker compose plugin)
	@docker compose config -q && echo "docker-compose.yml is valid"

clean: ## Remove build products (keeps .venv and data/)
	@rm -rf build streamcore/*.so streamcore/_cstream.c .mypy_cache .ruff_cache
