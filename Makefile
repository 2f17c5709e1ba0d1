# Two commands on a fresh machine with only Python 3: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip -q --disable-pip-version-check
# `make test-pypy`: the test suite again on PyPy, in a virtual environment of its own.
PYPY ?= pypy3
PYPY_VENV ?= .venv-pypy
PYPY_BIN := $(PYPY_VENV)/bin
PYPY_PIP := $(PYPY_BIN)/python -m pip -q --disable-pip-version-check

.PHONY: run test test-pypy pypy nginx redis lint format pytest docs docs-serve bench bench-files \
	bench-bandwidth bench-scaling fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 'setuptools>=77' wheel

# The editable install is "strict": a tree of links to the sources (under build/), which type
# checkers follow like any installed package (the default one hides tremolo.middleware and
# tremolo.extensions behind an import hook). Edits show at once; a module added or removed
# needs the tree made again, hence the folders (whose times change then) as prerequisites.
EDITABLE := --config-settings editable_mode=strict
PACKAGE_DIRS := tremolo $(filter-out %/__pycache__/,$(wildcard tremolo/*/)) middleware extensions

$(VENV)/.run-installed: pyproject.toml $(PACKAGE_DIRS) | $(BIN)/python
	$(PIP) install -e . $(EDITABLE)
	touch $@

$(VENV)/.test-installed: pyproject.toml $(PACKAGE_DIRS) | $(BIN)/python
	$(PIP) install -e '.[test,docs]' $(EDITABLE)
	touch $@ $(VENV)/.run-installed

# PyPy itself: Debian's pypy3 when it is missing and we are root, else a clear error.
pypy:
	@if ! command -v $(PYPY) >/dev/null 2>&1; then \
	    if [ "$(PYPY)" = pypy3 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo 'pypy3 not found: apt-get install -y pypy3'; \
	        export DEBIAN_FRONTEND=noninteractive; \
	        apt-get install -y -q pypy3 || { apt-get update -q && apt-get install -y -q pypy3; }; \
	    fi; \
	    command -v $(PYPY) >/dev/null 2>&1 || { \
	        echo "make test-pypy needs PyPy 3.9+: '$(PYPY)' was not found. Install it" \
	             "(Debian/Ubuntu: sudo apt-get install pypy3) or name it: make test-pypy" \
	             "PYPY=/path/to/pypy3" >&2; \
	        exit 1; }; \
	fi

$(PYPY_BIN)/python:
	$(MAKE) --no-print-directory pypy
	$(PYPY) -m venv $(PYPY_VENV)
	echo '*' > $(PYPY_VENV)/.gitignore
	$(PYPY_PIP) install --upgrade pip 'setuptools>=77' wheel

# uvloop is left out on PyPy by its marker in the test extras.
$(PYPY_VENV)/.test-installed: pyproject.toml $(PACKAGE_DIRS) | $(PYPY_BIN)/python
	$(PYPY_PIP) install -e '.[test]' $(EDITABLE)
	touch $@

## run: serve the demo application on http://127.0.0.1:8000
run: $(VENV)/.run-installed
	$(BIN)/python -m tremolo examples.demo:app --host 127.0.0.1 --port 8000

## test: lint, run the whole test suite, build the documentation strictly
test: lint pytest docs

## test-pypy: run the whole test suite on PyPy (PYPY=pypy3, installed with apt-get if missing)
test-pypy: $(PYPY_VENV)/.test-installed nginx redis
	$(PYPY_BIN)/python -m pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(VENV)/.test-installed
	$(BIN)/ruff check --fix .

pytest: $(VENV)/.test-installed nginx redis
	$(BIN)/python -m pytest

# nginx (and its stream module) for the deployment tests, tests/test_nginx.py: Debian's,
# installed when missing and we are root; elsewhere those tests are skipped with the reason.
NGINX_PACKAGES := nginx libnginx-mod-stream
nginx:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { ! PATH="$$PATH:/usr/sbin" command -v nginx >/dev/null 2>&1 || \
	      [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; }; then \
	    echo 'nginx for the deployment tests: apt-get install -y $(NGINX_PACKAGES)'; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q $(NGINX_PACKAGES) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && \
	      apt-get install -y -q $(NGINX_PACKAGES) >/dev/null 2>&1; } || \
	    echo 'nginx could not be installed: tests/test_nginx.py will be skipped'; \
	fi

# redis-server for the tests of the Redis store (tests start their own instances on UNIX
# sockets): Debian's, installed when missing and we are root; elsewhere those tests are skipped.
redis:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    ! PATH="$$PATH:/usr/sbin:/usr/bin" command -v redis-server >/dev/null 2>&1; then \
	    echo 'redis-server for the store tests: apt-get install -y redis-server'; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q redis-server >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && \
	      apt-get install -y -q redis-server >/dev/null 2>&1; } || \
	    echo 'redis-server could not be installed: the Redis tests will be skipped'; \
	fi

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

## bench-files: file download throughput, Response.sendfile against nginx
bench-files:
	$(MAKE) -C bench files

## bench-bandwidth: accuracy, fairness and memory of the speed limiters (about a minute)
bench-bandwidth: $(VENV)/.test-installed
	$(BIN)/python bench/bandwidth/run.py

## bench-scaling: one budget over 2 processes (shared memory, Redis), request-rate checks in
## Redis and in memory, broadcast fan-out to 1,000 WebSocket subscribers (a few minutes)
bench-scaling: $(VENV)/.test-installed redis
	$(BIN)/python bench/scaling/run.py

## fuzz: a million mutated requests through the parser, then the h11 property tests at length
FUZZ_INPUTS ?= 1000000
fuzz: $(VENV)/.test-installed
	$(BIN)/python tests/fuzz/fuzz_parser.py --inputs $(FUZZ_INPUTS)
	TREMOLO_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q --timeout=0 \
	    tests/http/test_h11_differential.py

clean:
	rm -rf $(VENV) $(PYPY_VENV) build site .pytest_cache .ruff_cache *.egg-info
