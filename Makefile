# Every target creates the environment it needs: a fresh clone runs `make demo` or `make test` directly.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13, the Lambda runtime's minor: from PATH, else from pyenv.
# (A pyenv shim on PATH answers only with PYENV_VERSION set; sys.executable gives the real interpreter.)
PYTHON313 := $(shell PYENV_VERSION=3.13.0 python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null)
PY313_BIN := $(dir $(PYTHON313))
VENV := .venv
SAM_VENV := .venv-sam
IAMCHECK_VENV := .venv-iamcheck
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
ASL := $(wildcard statemachine/*.asl.json)
export PYTHONDONTWRITEBYTECODE := 1
# No telemetry from SAM CLI: the machines reach no endpoint but the package registries.
export SAM_CLI_TELEMETRY := 0

.PHONY: help env demo test lint format schema typecheck validate statelint iamcheck build deploy pytest unit integration e2e bench bench-fleet local-up clean

help:
	@echo "make demo   - bring up the local stack and reconcile the sample workspace"
	@echo "make test   - lint, type-check, validate and build the template, run every test"
	@echo "make bench  - benchmarks on the local stack (figures in bench/RESULTS.md)"
	@echo "make bench-fleet - 10, 25 and 50 workspaces at once with AWS's rate limits on (bench/RESULTS.md)"
	@echo "make deploy - build and deploy the stack to AWS with sam deploy (guided until samconfig.toml has parameters)"

$(VENV)/.installed: pyproject.toml requirements/dev.lock
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found on PATH nor through pyenv (PYENV_VERSION=3.13.0)"; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements/dev.lock -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed: requirements/sam.lock
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found on PATH nor through pyenv (PYENV_VERSION=3.13.0)"; exit 1; }
	$(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/sam.lock
	touch $@

$(IAMCHECK_VENV)/.installed: requirements/iamcheck.lock
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found on PATH nor through pyenv (PYENV_VERSION=3.13.0)"; exit 1; }
	$(PYTHON313) -m venv $(IAMCHECK_VENV)
	$(IAMCHECK_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/iamcheck.lock
	touch $@

env: $(VENV)/.installed $(SAM_VENV)/.installed $(IAMCHECK_VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/dbx-privatelink demo

local-up: $(VENV)/.installed
	$(VENV)/bin/dbx-privatelink local up

test: lint typecheck validate statelint iamcheck build pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The spec's JSON Schema for editors, generated from the model (a unit test fails until it is regenerated).
schema: $(VENV)/.installed
	$(VENV)/bin/dbx-privatelink schema --output schema/workspace-spec.schema.json

typecheck: $(VENV)/.installed
	cd layers/core && ../../$(VENV)/bin/mypy dbx_privatelink
	MYPYPATH=layers/core $(VENV)/bin/mypy cli/dbx_privatelink_cli
	MYPYPATH=layers/core $(VENV)/bin/mypy local/dbx_privatelink_local

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --template template.yaml

statelint: $(VENV)/.installed
	$(VENV)/bin/statelint --ignore=URI $(ASL)

# The IAM policies as AWS will evaluate them: the SAM transform of the template (the roles SAM makes for the
# functions), checked by checkov's IAM checks, offline (--skip-download, no update check), and every condition
# key checked against the actions it is used with (tools/iamcheck.py). A suppression goes in the template as
# Metadata: checkov: skip: [{id, comment}] on the resource (on a function: for its role), with the reason.
IAM_CHECKS := CKV_AWS_40,CKV_AWS_60,CKV_AWS_61,CKV_AWS_62,CKV_AWS_63,CKV_AWS_107,CKV_AWS_108,CKV_AWS_109,CKV_AWS_110,CKV_AWS_111,CKV_AWS_364
IAMCHECK_TEMPLATE := .aws-sam/iamcheck/template.json
iamcheck: $(VENV)/.installed $(IAMCHECK_VENV)/.installed
	$(PY) tools/iamcheck.py transform template.yaml $(IAMCHECK_TEMPLATE)
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(IAMCHECK_VENV)/bin/checkov --skip-download --framework cloudformation \
		--file $(IAMCHECK_TEMPLATE) --check $(IAM_CHECKS) --compact --quiet
	$(IAMCHECK_VENV)/bin/python tools/iamcheck.py keys $(IAMCHECK_TEMPLATE)

# The artefact users deploy must build: python3.13 on PATH for the python3.13 builder.
build: $(SAM_VENV)/.installed
	PATH="$(PY313_BIN):$$PATH" $(SAM) build --template template.yaml --parallel --cached

# Deploy what `make build` built, with the AWS credentials of the shell. Guided (asks for every parameter and
# offers to save them in samconfig.toml) until samconfig.toml has parameter_overrides or DEPLOY_ARGS passes
# them; DEPLOY_ARGS goes to sam deploy as is (--stack-name, --region, --parameter-overrides, --no-confirm-changeset).
SAM_GUIDED = $(if $(DEPLOY_ARGS)$(shell grep -s '^parameter_overrides' samconfig.toml),,--guided)
deploy: build
	$(SAM) deploy $(SAM_GUIDED) $(DEPLOY_ARGS)

# Two workers, a test file each at a time (an e2e worker keeps one local stack for the files it runs).
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.installed
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests

unit: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/unit

integration: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/integration

e2e: $(VENV)/.installed
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/e2e

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/run.py

bench-fleet: $(VENV)/.installed
	$(VENV)/bin/python bench/fleet.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(IAMCHECK_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
