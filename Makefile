# Every target installs what it needs on a fresh clone. The verbs are the ones in the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: the demo needs the runtime and the local AWS only; tests need the developer toolchain too.
DEMO_STAMP := $(VENV)/.demo-installed
DEV_STAMP := $(VENV)/.dev-installed
# `sam build` needs the Lambda runtime's interpreter (python3.13) on PATH; pyenv keeps it out of the way.
PY313_DIR := $(shell dirname "$$(PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13 || echo /nonexistent/python3.13)")
export PATH := $(CURDIR)/$(BIN):$(PY313_DIR):$(PATH)
export SAM_CLI_TELEMETRY := 0
# Never let a developer's real AWS profile leak into local runs.
LOCAL_ENV := env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE AWS_EC2_METADATA_DISABLED=true

.PHONY: demo test lint typecheck build validate bench deploy serve clean

# uv installs what pip would, in a fraction of the time: it is what brings `make demo` on a fresh clone
# under a minute. It is bootstrapped with pip into the venv itself, so nothing outside the clone changes.
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv

$(DEMO_STAMP): pyproject.toml src/requirements.txt | $(BIN)/uv
	$(UV) -e '.[demo]'
	touch $@

$(DEV_STAMP): pyproject.toml src/requirements.txt | $(BIN)/uv
	$(UV) -e '.[dev]'
	touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(LOCAL_ENV) $(BIN)/access-auditor demo

serve: $(DEMO_STAMP)
	$(LOCAL_ENV) $(BIN)/access-auditor demo --serve

test: lint typecheck
	$(LOCAL_ENV) $(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check src local_aws tests benchmarks
	$(BIN)/ruff format --check src local_aws tests benchmarks

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

build: $(DEV_STAMP)
	$(BIN)/sam build

validate: $(DEV_STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint

bench: $(DEV_STAMP)
	$(LOCAL_ENV) $(BIN)/python -m pytest benchmarks -o testpaths=benchmarks

deploy: build
	$(BIN)/sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
