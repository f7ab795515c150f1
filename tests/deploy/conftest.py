"""Fixtures of the deployment tests: where the validators are, rendered overlays,
the resolved compose model, and the settings every process reads.

The validators are installed by scripts/deploy-tools.sh (called by
scripts/ci-install.sh) into .tools/. A missing tool fails the test under CI
(CI=true) and skips it elsewhere, saying how to install it."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from crm_shared.config import referenced_variables
from crm_shared.layout import ALL, SERVICES

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("TOOLS_DIR", ROOT / ".tools"))
OVERLAYS = ("dev", "production")
# oldest Kubernetes we support, and the newest kubernetes-validate knows
K8S_VERSIONS = ("1.30.0", "1.37.0")
CRD_GROUPS = ("monitoring.coreos.com/",)

# Dummy values that make `docker compose config` resolve (never used for anything else).
COMPOSE_DUMMY_SECRETS = {
    "CRM_SECRET_KEYS": "test:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "CRM_OPERATOR_TOKEN": "test-operator-token-0123456789",
    "AUTH_SIGNING_KEYS": "test:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
}

INSTALL_HINT = "install the deployment validators with: bash scripts/deploy-tools.sh"


def missing_tool(what: str) -> None:
    """Fail under CI (a green run must have checked everything), skip elsewhere."""
    message = f"{what} is not installed; {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def tool(name: str) -> str:
    path = TOOLS / "bin" / name
    if not (path.exists() and os.access(path, os.X_OK)):
        missing_tool(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
    return str(path)


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        message = "promtool is not installed (Debian package 'prometheus'; bash scripts/ci-install.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def run(args: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def tools_python() -> str:
    """The tools venv's interpreter (has the `dockerfile` parser)."""
    path = TOOLS / "venv" / "bin" / "python"
    if not path.exists():
        missing_tool(str(path))
    return str(path)


# ---------------------------------------------------------------- settings

def config_path(process: str) -> Path:
    return ROOT / ("gateway" if process == "gateway" else f"services/{process}") / "config.yaml"


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


def config_defaults(process: str) -> dict[str, str | None]:
    """VAR -> default text as written in config.yaml (None: no default, required)."""
    code = "\n".join(line for line in config_path(process).read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    return {m.group("name"): m.group("default") for m in _VAR.finditer(code)}


def read_variables(process: str) -> set[str]:
    """referenced_variables() of the process's config.yaml, less names that appear only in
    whole-line comments (the files' header explains the syntax with a literal ``${VAR:default}``)."""
    path = config_path(process)
    code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    in_code = {m.group("name") for m in _VAR.finditer(code)}
    return referenced_variables(path) & in_code


@pytest.fixture(scope="session")
def settings_by_process() -> dict[str, set[str]]:
    """Every environment variable each process reads, from its config.yaml (the single source of truth)."""
    result = {name: read_variables(name) for name in ALL}
    assert all(result.values()), result
    return result


# ---------------------------------------------------------------- compose

def compose_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_DUMMY_SECRETS}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def compose_bin() -> str:
    return tool("docker-compose")


@pytest.fixture(scope="session")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """So a developer's own .env never changes what the tests see."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def compose_model(compose_bin: str, empty_env_file: Path) -> dict[str, Any]:
    """docker-compose.yml as the Compose v2 binary resolves it (interpolated, merged, defaults filled)."""
    result = run([compose_bin, "-f", "docker-compose.yml", "--env-file", str(empty_env_file),
                  "config", "--format", "json"], env=compose_env(**COMPOSE_DUMMY_SECRETS))
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


# ---------------------------------------------------------------- kubernetes

@dataclass
class Rendered:
    overlay: str
    text: str
    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def config_map(self) -> dict[str, str]:
        maps = [d for d in self.of_kind("ConfigMap") if d["metadata"]["name"].startswith("crm-config")]
        assert len(maps) == 1, [m["metadata"]["name"] for m in maps]
        return dict(maps[0].get("data") or {})


def is_crd(doc: dict[str, Any]) -> bool:
    return str(doc.get("apiVersion", "")).startswith(CRD_GROUPS)


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    """Every overlay rendered once by kustomize (kubectl's built-in)."""
    kubectl = tool("kubectl")
    out = {}
    for overlay in OVERLAYS:
        result = run([kubectl, "kustomize", f"k8s/overlays/{overlay}"])
        assert result.returncode == 0, f"kustomize build k8s/overlays/{overlay} failed:\n{result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        out[overlay] = Rendered(overlay, result.stdout, docs)
    return out


def process_of(deployment: dict[str, Any]) -> str:
    return deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def metrics_port_var(process: str) -> str:
    return "GATEWAY_METRICS_PORT" if process == "gateway" else f"{process.upper()}_METRICS_PORT"


@pytest.fixture(scope="session")
def dt() -> SimpleNamespace:
    """This module's helpers for the test modules (conftest is not importable by name)."""
    return SimpleNamespace(
        ROOT=ROOT, TOOLS=TOOLS, ALL=ALL, SERVICES=SERVICES, OVERLAYS=OVERLAYS, K8S_VERSIONS=K8S_VERSIONS,
        COMPOSE_DUMMY_SECRETS=COMPOSE_DUMMY_SECRETS, run=run, tool=tool, promtool=promtool,
        tools_python=tools_python, missing_tool=missing_tool, config_path=config_path,
        config_defaults=config_defaults, compose_env=compose_env, is_crd=is_crd, process_of=process_of,
        metrics_port_var=metrics_port_var,
    )
