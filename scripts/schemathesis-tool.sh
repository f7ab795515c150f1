#!/usr/bin/env bash
# Installs the schemathesis CLI (API fuzzing against /openapi.json, tests/gateway/test_openapi_fuzz.py)
# into its own virtualenv .tools/schemathesis/ (gitignored), apart from .venv so its dependencies
# cannot clash with nameko's pins. Idempotent: skipped when the pinned version is already there.
# Needs only PyPI.
#
# Env: TOOLS_DIR (default <repo>/.tools), PYTHON (default python3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
PYTHON=${PYTHON:-python3}

SCHEMATHESIS_VERSION=4.32.5

V=$TOOLS/schemathesis
have_schemathesis() {
  [ -x "$V/bin/schemathesis" ] || return 1
  local out; out=$("$V/bin/schemathesis" --version 2>/dev/null) || return 1
  [[ "$out" == *"$SCHEMATHESIS_VERSION"* ]]
}
if have_schemathesis; then
  exit 0
fi
if [ ! -x "$V/bin/python" ]; then
  "$PYTHON" -m venv "$V"
fi
echo "schemathesis-tool: installing schemathesis==$SCHEMATHESIS_VERSION into $V"
"$V/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
have_schemathesis || { echo "schemathesis-tool: $V/bin/schemathesis does not report $SCHEMATHESIS_VERSION" >&2; exit 1; }
