# Tarcza: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n auto
PACKAGES := $(wildcard core audit identity policies vault contacts gdpr api bench)

.PHONY: run test lint typecheck pytest system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . --config-settings editable_mode=compat
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $@ $(VENV)/.run-installed

## run: install, initialise on first run, serve the API and console on 127.0.0.1:8000
run: $(VENV)/.run-installed
	$(BIN)/tarcza serve

## test: install with the dev extra, then lint, type check and the whole suite (SQLite and PostgreSQL)
test: $(VENV)/.dev-installed system-deps lint typecheck pytest

system-deps:
	@bash scripts/ensure-system.sh

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy $(PACKAGES)

pytest: $(VENV)/.dev-installed
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

bench: $(VENV)/.run-installed
	$(BIN)/tarcza bench audit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
