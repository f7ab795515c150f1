# The two commands: `make run` (the whole suite up) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: run test lint typecheck unit bench venv infra lock clean fuzz-tools

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	touch $@

venv: $(VENV)/.installed

infra:
	bash scripts/ensure-infra.sh

run: venv infra
	$(PY) scripts/run_suite.py

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

fuzz-tools:
	bash scripts/schemathesis-tool.sh

test: venv infra lint typecheck fuzz-tools
	$(VENV)/bin/pytest

bench: venv infra
	bash scripts/bench-tools.sh
	$(PY) -m bench

lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install -q -r requirements.in -r requirements-dev.in
	(echo "# Generated from requirements.in + requirements-dev.in by 'make lock'; install with pip install -r requirements.lock"; \
	 .lockvenv/bin/pip freeze --all | grep -v -E "^(pip|wheel)==") > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
