# Quick start targets: each does its own set-up (a .venv with secpath installed).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
TEST := $(VENV)/.installed-test

.PHONY: lab test system-deps bench clean

# secpath itself; Kerberos (the gssapi extra) when it builds here
$(BASE): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q -e '.[kerberos]' 2>/dev/null || \
	    echo "note: the Kerberos extra did not build (needs gcc, python3-dev, libkrb5-dev): Kerberos paths use certificates"
	touch $(BASE)

$(TEST): $(BASE)
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q -e '.[kerberos]' 2>/dev/null || \
	    echo "note: the Kerberos extra did not build: its tests are skipped outside CI"
	touch $(TEST)

# The main job: the reference deployment secured on this machine (no root).
lab: $(BASE)
	$(BIN)/secpath lab

# The Debian packages of the interop tests (as root; otherwise those tests skip).
system-deps:
	bash scripts/system-deps.sh

# The whole test suite, with the linters and the type checker.
test: system-deps $(TEST)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(TEST)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
