# The two commands of the README: `make run` and `make test`. Everything they need is set up here,
# so that both work on a fresh clone of a fresh Debian machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The branch coverage floor of the test suite; it only ever rises.
COVERAGE_FLOOR := 92
export CHROMIUM ?= /usr/bin/chromium

.PHONY: fuzz run test lint typecheck pytest docs bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,flask,redis,bench,docs]'
	touch $(STAMP)

# Debian's Chromium (browser tests) and redis-server (RedisStore tests), only when missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/python -W error::ResourceWarning -m pytest --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR) $(PYTEST_ARGS)

test: lint typecheck pytest docs

run: $(STAMP)
	$(BIN)/gunicorn --config sample_app/gunicorn.conf.py sample_app.app:app

# The documentation, warnings as errors; the doctest builder runs every code sample in it.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html
	$(BIN)/sphinx-build -W --keep-going -n -q -b doctest docs docs/_build/doctest

bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python -m bench

# Flask's own test suite (and --suite all: Flask-Login's, Flask-WTF's) run with ActionKit on
# every app and without; any unexpected difference fails. Not part of `make test`.
.PHONY: flask-suite
flask-suite: $(STAMP)
	$(BIN)/python scripts/flask_suite.py $(FLASK_SUITE_ARGS)

# Django's own test suite (the test apps of APPS in the script, through the test client and
# the middleware) run with ActionKitMiddleware on every middleware chain and without; any
# unexpected difference fails. Not part of `make test`.
.PHONY: django-suite
django-suite: $(STAMP)
	$(BIN)/python scripts/django_suite.py $(DJANGO_SUITE_ARGS)

# Mutation testing (mutmut) of the request checks, the answers and the storage policy: the
# modules and the tests of [tool.mutmut] in pyproject.toml, each mutant against the tests that
# reach it; about four minutes on 2 cores. Results: `$(BIN)/mutmut results`, bench/mutation.md.
# Not part of `make test`.
.PHONY: mutate
mutate: $(STAMP) system-deps
	$(BIN)/mutmut run --max-children $(or $(MUTATE_JOBS),2)
	$(BIN)/mutmut results

# The decoder under generated malformed requests, far longer than `make test` runs it.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -W error::ResourceWarning -m pytest -p no:randomly -p no:logging tests/test_fuzz.py

clean:
	rm -rf $(VENV) mutants .coverage htmlcov .pytest_cache .mypy_cache .ruff_cache test-artifacts
