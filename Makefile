# Tarcza: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n auto
PACKAGES := $(wildcard core audit identity policies vault contacts gdpr api bench tarcza_client witness verifier/tarcza_verify)

PIP_AUDIT_UNREACHABLE ?= fail
SECURITY_EXCEPTIONS := docs/security/dependency-exceptions.txt

.PHONY: run test lint typecheck security pip-audit bandit pytest system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The standalone verifier (verifier/, distribution tarcza-verify) is installed editable beside the project:
# a compat-mode editable install only puts the repository root on the path, not verifier/.
$(VENV)/.run-installed: pyproject.toml verifier/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . --config-settings editable_mode=compat
	$(BIN)/python -m pip install --quiet --no-deps -e ./verifier --config-settings editable_mode=compat
	touch $@

$(VENV)/.dev-installed: pyproject.toml verifier/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	$(BIN)/python -m pip install --quiet --no-deps -e ./verifier --config-settings editable_mode=compat
	touch $@ $(VENV)/.run-installed

## run: install, create the installation in ./var on first run (`tarcza init`; later runs apply new
## migrations), then serve the API and console on 127.0.0.1:8000. `tarcza serve` alone never creates one.
run: $(VENV)/.run-installed
	$(BIN)/tarcza init
	$(BIN)/tarcza serve

## test: install with the dev extra, then lint, type check, security checks and the whole suite (SQLite and PostgreSQL)
test: $(VENV)/.dev-installed system-deps lint typecheck security pytest

system-deps:
	@bash scripts/ensure-system.sh

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy $(PACKAGES)

## security: known vulnerabilities of the installed distributions (pip-audit) and high-severity bandit findings
security: pip-audit bandit

# pip-audit checks every installed distribution (the editable project itself aside) against PyPI's
# vulnerability data. It fails on a known vulnerability unless docs/security/dependency-exceptions.txt
# documents it with a review date not yet past, and it fails loudly when it cannot get the data for
# every distribution (no network, PyPI unreachable or answering "not found"): an audit that audited
# nothing must not pass. PIP_AUDIT_UNREACHABLE=warn turns only that last failure into a warning.
pip-audit: $(VENV)/.dev-installed
	@rm -f $(VENV)/pip-audit.json
	@$(BIN)/pip-audit --skip-editable --progress-spinner off --desc on --timeout 30 -f json \
	    -o $(VENV)/pip-audit.json >/dev/null 2>$(VENV)/pip-audit.log || true
	@$(BIN)/python scripts/pip_audit_check.py $(VENV)/pip-audit.json $(VENV)/pip-audit.log \
	    $(SECURITY_EXCEPTIONS) $(PIP_AUDIT_UNREACHABLE)

bandit: $(VENV)/.dev-installed
	$(BIN)/bandit -q -r $(PACKAGES) --severity-level high


pytest: $(VENV)/.dev-installed
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

bench: $(VENV)/.run-installed
	$(BIN)/tarcza bench audit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
