# The two commands: `make run` (the whole suite up) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: run test lint typecheck unit bench venv infra lock clean fuzz-tools console console-test console-e2e

# The web console (console/): npm packages from its lockfile, built into console/dist
# when a source is newer than the build.
CONSOLE_SOURCES := $(shell find console/src console/public -type f 2>/dev/null) console/index.html \
	console/tsconfig.json console/vite.config.ts console/package-lock.json

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	touch $@

venv: $(VENV)/.installed

infra:
	bash scripts/ensure-infra.sh

console/node_modules/.installed: console/package-lock.json
	cd console && npm ci --no-audit --no-fund --loglevel=error
	touch $@

console/dist/index.html: console/node_modules/.installed $(CONSOLE_SOURCES)
	cd console && npm run --silent build

console: console/dist/index.html

# the client's own logic (vitest) and its types
console-test: console/node_modules/.installed
	cd console && npx tsc --noEmit && npx vitest run

# the screens in Debian's Chromium against the real suite (own pytest process: no eventlet)
console-e2e: venv infra console
	$(VENV)/bin/pytest -p no:pytest_nameko console/e2e

run: venv infra console
	$(PY) scripts/run_suite.py

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

fuzz-tools:
	bash scripts/schemathesis-tool.sh

test: venv infra lint typecheck fuzz-tools console console-test
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory console-e2e

bench: venv infra console
	bash scripts/bench-tools.sh
	$(PY) -m bench

lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install -q -r requirements.in -r requirements-dev.in
	(echo "# Generated from requirements.in + requirements-dev.in by 'make lock'; install with pip install -r requirements.lock"; \
	 .lockvenv/bin/pip freeze --all | grep -v -E "^(pip|wheel)==") > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache console/node_modules console/dist console/e2e/artifacts
