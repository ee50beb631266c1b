# Two commands from a fresh clone: `make demo` (the whole lifecycle against an AWS emulator on
# loopback) and `make test`. Each builds .venv from requirements.lock when it is missing.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint env

demo: $(STAMP)
	$(VENV)/bin/mlops demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2

lint: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests/tooling

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -r requirements.lock
	$(VENV)/bin/pip install --no-deps -e .
	touch $(STAMP)
