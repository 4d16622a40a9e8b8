# The whole set-up is two commands: `make sandbox` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAMP_TEST := $(VENV)/.installed-test

.PHONY: sandbox test bench lint format clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP) $@

sandbox: $(STAMP)
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy $(BIN)/chatops sandbox

test: $(STAMP_TEST)
	@scripts/ensure-redis-server
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy ALIBABA_CLOUD_ECS_METADATA_DISABLED=true \
		$(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	@scripts/ensure-redis-server
	env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy ALIBABA_CLOUD_ECS_METADATA_DISABLED=true \
		$(BIN)/chatops bench all --json

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP_TEST)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .chatops .pytest_cache .ruff_cache *.egg-info
