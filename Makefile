# Every target installs what it needs on a fresh clone. The verbs are the ones in the README and docs/development.md.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: the demo needs the runtime and the local AWS only; tests need the developer toolchain too.
DEMO_STAMP := $(VENV)/.demo-installed
DEV_STAMP := $(VENV)/.dev-installed
# `sam build` needs the Lambda runtime's interpreter (python3.13) on PATH; pyenv keeps it out of the way.
PY313_DIR := $(shell dirname "$$(PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13 || echo /nonexistent/python3.13)")
# The venv runs on that same Python 3.13: the one version the locks, the tests and the package are made for.
PYTHON ?= $(PY313_DIR)/python3.13
export PATH := $(CURDIR)/$(BIN):$(PY313_DIR):$(PATH)
export SAM_CLI_TELEMETRY := 0
# Never let a developer's real AWS profile leak into local runs.
LOCAL_ENV := env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE AWS_EC2_METADATA_DISABLED=true

.PHONY: lock demo test lint typecheck build validate bench deploy serve docs clean

# uv installs what pip would, in a fraction of the time (it is what brings `make demo` on a fresh clone
# under a minute), and compiles the locks. It is bootstrapped with pip, pinned by hash, into the venv.
# Every install is from a lock: exact versions with hashes (requirements/, src/requirements.txt).
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python

$(BIN)/uv: requirements/bootstrap.txt
	@test -x "$(PYTHON)" || { echo "make: Python 3.13 is needed (the Lambda runtime's, which the locks and tests are for): install it (pyenv install 3.13, or your system's python3.13 package), or give its path: make PYTHON=/path/to/python3.13" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/bootstrap.txt

$(DEMO_STAMP): requirements/demo.txt | $(BIN)/uv
	$(UV) --require-hashes -r requirements/demo.txt
	$(UV) --no-deps -e .
	touch $@

$(DEV_STAMP): requirements/dev.txt | $(BIN)/uv
	$(UV) --require-hashes -r requirements/dev.txt
	$(UV) --no-deps -e .
	touch $@ $(DEMO_STAMP)

# Compile the locks again after changing pyproject.toml or src/requirements.in (needs the package index).
# The developer toolchain is locked first; the demo and the Lambda package take its versions, so the tests
# run on exactly what ships.
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.13 --no-header --annotation-style line
lock: | $(BIN)/uv
	$(LOCK) pyproject.toml --extra dev --python-platform x86_64-manylinux2014 -o requirements/dev.txt
	$(LOCK) pyproject.toml --extra demo -c requirements/dev.txt --python-platform x86_64-manylinux2014 -o requirements/demo.txt
	$(LOCK) src/requirements.in -c requirements/dev.txt --python-platform aarch64-manylinux2014 -o src/requirements.txt

demo: $(DEMO_STAMP)
	$(LOCAL_ENV) $(BIN)/access-auditor demo

serve: $(DEMO_STAMP)
	$(LOCAL_ENV) $(BIN)/access-auditor demo --serve

test: lint typecheck
	$(LOCAL_ENV) $(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks setup.py docs/hooks.py
	$(BIN)/ruff format --check src tests benchmarks setup.py docs/hooks.py

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# Every function package: the single-account stack's (.aws-sam/build) and the organization hub's
# (.aws-sam/hub). The member template has no code. Offline once the locked wheels are cached (src/Makefile).
build: $(DEV_STAMP)
	$(BIN)/sam build
	$(BIN)/sam build --template organization/hub.yaml --build-dir .aws-sam/hub

# Every template: cfn-lint on all three, and SAM's own validation on the two SAM templates.
validate: $(DEV_STAMP)
	$(BIN)/cfn-lint template.yaml organization/hub.yaml organization/member.yaml
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/sam validate --lint --template organization/hub.yaml

# The documentation site (docs/, mkdocs.yml) into site/, strictly: a broken link or anchor fails it.
docs: $(DEV_STAMP)
	$(BIN)/mkdocs build --strict

bench: $(DEV_STAMP)
	$(LOCAL_ENV) $(BIN)/python -m pytest benchmarks -o testpaths=benchmarks

deploy: build
	$(BIN)/sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache site
