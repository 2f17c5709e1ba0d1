# Two commands on a fresh machine with only Python 3: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip -q --disable-pip-version-check

.PHONY: run test lint format pytest docs docs-serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 'setuptools>=77' wheel

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test,docs]'
	touch $@ $(VENV)/.run-installed

## run: serve the demo application on http://127.0.0.1:8000
run: $(VENV)/.run-installed
	$(BIN)/python -m tremolo examples.demo:app --host 127.0.0.1 --port 8000

## test: lint, run the whole test suite, build the documentation strictly
test: lint pytest docs

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

format: $(VENV)/.test-installed
	$(BIN)/ruff check --fix .

pytest: $(VENV)/.test-installed
	$(BIN)/python -m pytest

# mkdocstrings reads the installed package (tremolo.middleware and tremolo.extensions only
# exist once installed), staged here without touching the virtual environment.
docs: $(VENV)/.test-installed
	rm -rf build/docpkg
	$(PIP) install --no-deps --no-build-isolation --target build/docpkg . >/dev/null
	rm -rf build/lib
	$(BIN)/mkdocs build --strict --site-dir build/site

docs-serve: docs
	$(BIN)/mkdocs serve

bench:
	$(MAKE) -C bench all

clean:
	rm -rf $(VENV) build site .pytest_cache .ruff_cache *.egg-info
