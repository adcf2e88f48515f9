# Two entry points for newcomers: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast lint fmt

$(BIN)/deploy-monitor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/deploy-monitor

demo: install
	$(BIN)/deploy-monitor demo

test: install
	$(BIN)/pytest -q

# The unit tests only (no real processes): the loop to run while working.
test-fast: install
	$(BIN)/pytest -q -m 'not e2e'

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
