# SecureBase Portal: developer and CI entry points.
#
#   make run        migrate, seed demo data, serve on http://127.0.0.1:8000/ (+ Celery worker/beat)
#   make test       import contracts, then the pytest suite (ARGS="-k foo" passes extra pytest args)
#   make lint       ruff
#   make clean-var  stop the embedded PostgreSQL/Redis and delete var/ (dev database included)
#
# PostgreSQL and Redis are embedded (scripts/devstack.py, data in var/) unless
# DATABASE_URL and REDIS_URL are set, see docs/devstack.md.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/.installed
NODE_STAMP  := node_modules/.installed
DEVSTACK    := $(PY) scripts/devstack.py
ARGS        ?=
PYTHON      ?=

.PHONY: help deps venv node chromium run test lint clean-var

help:
	@echo "make run        start the portal on http://127.0.0.1:$${PORT:-8000}/ with embedded PostgreSQL + Redis"
	@echo "make test       lint-imports, then pytest (make test ARGS='-k foo')"
	@echo "make lint       ruff check ."
	@echo "make clean-var  stop the embedded servers and delete var/"

# --- dependencies ----------------------------------------------------------

# Python 3.11 virtualenv, made with the first of $(PYTHON), the distribution's /usr/bin/python3.11,
# python3.11 and python3 on PATH that is a CPython 3.11 with venv. The distribution's build (PGO +
# LTO) comes before a PATH one because a default pyenv build is neither: the same pages cost 20-30 %
# less CPU on it (docs/adr/0022). The venv is made again when that choice changes; requirements are
# re-installed when requirements.txt or this file is newer than the stamp.
$(VENV_STAMP): requirements.txt Makefile
	@set -e; \
	py=""; \
	for c in $(PYTHON) /usr/bin/python3.11 python3.11 python3; do \
	  c=$$(command -v "$$c" || true); \
	  if [ -n "$$c" ] && "$$c" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
	    py=$$c; break; \
	  fi; \
	done; \
	if [ -z "$$py" ]; then \
	  echo "Python 3.11 with venv is required (python3.11 on PATH, or make PYTHON=/path/to/python3.11)"; exit 1; \
	fi; \
	want=$$("$$py" -c 'import sys; print(sys.base_prefix)'); \
	have=$$($(PY) -c 'import sys; print(sys.base_prefix)' 2>/dev/null || true); \
	if [ "$$want" != "$$have" ]; then \
	  echo "Creating $(VENV) with $$py ($$want)"; \
	  rm -rf $(VENV); \
	  "$$py" -m venv $(VENV); \
	fi
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

# Front-end vendor files (htmx, htmx-ext-ws) served from node_modules by Django.
$(NODE_STAMP): package-lock.json
	@command -v npm >/dev/null || { echo "npm is required: run: sudo apt-get install -y nodejs npm"; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

venv: $(VENV_STAMP)
node: $(NODE_STAMP)
deps: $(VENV_STAMP) $(NODE_STAMP)

# Debian's Chromium for the Playwright browser tests (Playwright cannot download its own here).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; \
	  else \
	    echo "Chromium is required for the browser tests: run: sudo apt-get install -y chromium"; exit 1; \
	  fi; \
	fi

# --- entry points ----------------------------------------------------------

run: deps
	DEBUG=$${DEBUG:-1} $(DEVSTACK) exec -- $(PY) scripts/run.py

test: deps chromium
	$(VENV)/bin/lint-imports
	$(DEVSTACK) --fast exec -- $(PY) -m pytest -n 2 -p no:cacheprovider $(ARGS)

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .

clean-var:
	@if [ -x $(PY) ] && [ -d var ]; then $(DEVSTACK) down; fi
	rm -rf var
