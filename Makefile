# Two commands on a fresh machine: `make run` (set up and serve on 0.0.0.0:8000) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run demo test lint typecheck contracts unit bench bench-parsing lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Exact versions with hashes; the project itself is installed without resolving anything further.
$(VENV)/.main: requirements/main.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes -r requirements/main.lock
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.main

install: $(VENV)/.main

run: $(VENV)/.main
	$(BIN)/kimi-free-api serve

# The emulator's chats and tokens stay in $(DATA_DIR)/demo (default data/demo), apart from `make run`'s.
demo: $(VENV)/.main
	$(BIN)/kimi-free-api serve --emulator

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

contracts: $(VENV)/.dev
	$(BIN)/lint-imports

unit: $(VENV)/.dev
	$(BIN)/python -m pytest -q

test: lint typecheck contracts unit

bench: $(VENV)/.dev
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/accounts.py
	@echo "The cost per KB of every parser, matcher and counter, and /ping meanwhile: make bench-parsing"

# Half a minute: hostile inputs of 1 KB, 100 KB and 1 MB; fails if a cost per KB grows or a /ping takes 50 ms.
bench-parsing: $(VENV)/.dev
	$(BIN)/python bench/parsing.py

# Regenerates the lock files from pyproject.toml (needs network access to the package index).
lock:
	$(PYTHON) -m pip install -q uv
	$(PYTHON) -m uv pip compile pyproject.toml requirements/build.in --python-version 3.11 --generate-hashes -o requirements/main.lock
	$(PYTHON) -m uv pip compile pyproject.toml requirements/build.in --extra dev --python-version 3.11 --generate-hashes -o requirements/dev.lock

clean:
	rm -rf $(VENV) build src/*.egg-info .mypy_cache .ruff_cache
