# Every target installs what it needs on a fresh clone. The verbs are the ones in the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `sam build` needs the Lambda runtime's interpreter (python3.13) on PATH; pyenv keeps it out of the way.
PY313_DIR := $(shell dirname "$$(PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13 || echo /nonexistent/python3.13)")
export PATH := $(CURDIR)/$(BIN):$(PY313_DIR):$(PATH)
export SAM_CLI_TELEMETRY := 0
# Never let a developer's real AWS profile leak into local runs.
LOCAL_ENV := env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE AWS_EC2_METADATA_DISABLED=true

.PHONY: demo test lint typecheck build validate bench deploy serve clean

$(STAMP): pyproject.toml src/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(LOCAL_ENV) $(BIN)/access-auditor demo

serve: $(STAMP)
	$(LOCAL_ENV) $(BIN)/access-auditor demo --serve

test: lint typecheck
	$(LOCAL_ENV) $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src local_aws tests benchmarks
	$(BIN)/ruff format --check src local_aws tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

build: $(STAMP)
	$(BIN)/sam build

validate: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint

bench: $(STAMP)
	$(LOCAL_ENV) $(BIN)/python -m pytest benchmarks -o testpaths=benchmarks

deploy: build
	$(BIN)/sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
