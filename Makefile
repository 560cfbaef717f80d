# The two commands of the README, and what they need. Everything is installed by these rules:
# the virtual environment (.venv), the Python packages (pyproject.toml; torch pinned to the
# CPU build, extra `cpu`), and Debian's packages the tests use (stilts: taplint and tapquery;
# python3-gavo: DaCHS's ADQL translator, run under /usr/bin/python3 by tests/test_dachs.py;
# chromium + chromium-driver: the browser tests of the web page, tests/test_web_browser.py).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := stilts python3-gavo chromium chromium-driver

.PHONY: demo test lint system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[cpu]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-demo
	$(BIN)/pip install -q -e '.[cpu,dev]'
	touch $@

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## make demo: create the environment, start the embedded database and run the main job
demo: $(VENV)/.installed-demo
	$(BIN)/caomai demo

## make test: install what the tests need and run the whole suite (lint and the import
## contracts of pyproject.toml included)
test: $(VENV)/.installed-test system-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info build dist
