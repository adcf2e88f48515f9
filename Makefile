# Two entry points for newcomers: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast lint fmt compose-config alerts lock

# Exact versions and hashes from the lock files (`make lock` writes them), then the project itself.
$(BIN)/deploy-monitor: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/deploy-monitor

demo: install
	$(BIN)/deploy-monitor demo

test: install
	$(BIN)/pytest -q

# The unit tests only (no real processes), on both cores: the loop to run while working.
test-fast: install
	$(BIN)/pytest -q -n 2 -m 'not e2e'

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# compose.yaml as docker compose reads it, with the template for .env, in each profile.
compose-config:
	for profile in live simulated dashboard; do \
	  docker-compose --env-file .env.example --profile $$profile config -q || exit 1; \
	done

# The alerting rules: syntax (through the example scrape config) and their unit tests.
alerts:
	promtool check config ops/prometheus.yml
	promtool test rules ops/alerts.test.yml

# Refresh the lock files: the newest versions pyproject.toml allows, for Python 3.11 on Linux.
# requirements.lock is what runs (the image); requirements-dev.lock adds the tools, same pins.
LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --upgrade --generate-hashes \
	--python-version 3.11 --python-platform linux --custom-compile-command 'make lock'
lock: install
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -c requirements.lock -o requirements-dev.lock
