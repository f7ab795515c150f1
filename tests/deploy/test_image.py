"""The Dockerfile (parsed by the `dockerfile` package, Docker's own Go parser) and
the container health check. No Docker engine here: the image is not built; its
runtime layout was exercised by hand (docs/operations.md, "Container image")."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

PARSE = ("import dockerfile, json, sys; print(json.dumps([c._asdict() for c in dockerfile.parse_file(sys.argv[1])]))")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|libpq-dev|python3-dev|apt-get|apk)\b")


@pytest.fixture(scope="module")
def instructions(dt: Any) -> list[dict[str, Any]]:
    result = dt.run([dt.tools_python(), "-c", PARSE, "Dockerfile"])
    if "No module named 'dockerfile'" in result.stderr:
        dt.missing_tool("the 'dockerfile' parser in .tools/venv")
    assert result.returncode == 0, result.stderr
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed


def stages(instructions: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for ins in instructions:
        if ins["cmd"] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def test_base_image_is_pinned(instructions: list[dict[str, Any]]) -> None:
    args = {ins["value"][0].split("=", 1)[0]: ins["value"][0].split("=", 1)[1]
            for ins in instructions if ins["cmd"] == "ARG" and "=" in ins["value"][0]}
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    node = args["NODE_IMAGE"]
    assert re.fullmatch(r"node:20\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?", node), node
    froms = [ins["value"][0] for ins in instructions if ins["cmd"] == "FROM"]
    assert froms == ["${NODE_IMAGE}", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], \
        "the console's Node stage, then build and runtime stages from the same pinned base"


def test_runtime_stage_is_minimal_and_non_root(instructions: list[dict[str, Any]]) -> None:
    console, build, runtime = stages(instructions)
    assert [ins["value"][-1] for ins in console if ins["cmd"] == "FROM"] == ["console"]
    assert [ins["value"][-1] for ins in build if ins["cmd"] == "FROM"] == ["build"]
    # only the console's built files leave the Node stage
    from_console = [ins["value"] for ins in build if "--from=console" in ins["flags"]]
    assert from_console == [["/console/dist/", "/app/console/dist/"]], from_console
    for ins in runtime:
        if ins["cmd"] == "RUN":
            assert not BUILD_TOOLS.search(ins["value"][0]), f"build tooling in the runtime stage: {ins['original']}"
        if ins["cmd"] in ("COPY", "ADD"):
            assert ins["cmd"] == "COPY" and "--from=build" in ins["flags"], ins["original"]
    users = [ins["value"][0] for ins in runtime if ins["cmd"] == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), "numeric non-root USER (runAsNonRoot checks it)"
    health = [ins for ins in runtime if ins["cmd"] == "HEALTHCHECK"]
    assert health and health[0]["value"][0] == "CMD", health
    entry = [ins for ins in runtime if ins["cmd"] == "ENTRYPOINT"]
    assert entry and entry[0]["json"] and list(entry[0]["value"]) == ["python", "-m", "crm_shared.runner"]


def test_dependencies_come_from_the_lock(instructions: list[dict[str, Any]]) -> None:
    console, build, _ = stages(instructions)
    assert any("npm ci" in ins["value"][0] for ins in console if ins["cmd"] == "RUN"), "the console from its lockfile"
    runs = " ".join(ins["value"][0] for ins in build if ins["cmd"] == "RUN")
    assert "-c requirements.lock" in runs and "-r requirements.in" in runs


def test_copied_sources_exist_and_are_not_dockerignored(dt: Any, instructions: list[dict[str, Any]]) -> None:
    ignored = [line.strip() for line in (dt.ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for entry in (".git", ".venv", ".tools", ".env", "tests"):
        assert entry in ignored, entry
    for ins in instructions:
        if ins["cmd"] == "COPY" and not any(f.startswith("--from") for f in ins["flags"]):
            for src in ins["value"][:-1]:
                assert (dt.ROOT / src).exists(), src
                top = src.rstrip("/").split("/")[0]
                assert top not in ignored and src.rstrip("/") not in ignored, f"{src} is excluded by .dockerignore"


def load_healthcheck(dt: Any) -> Any:
    spec = importlib.util.spec_from_file_location("crm_healthcheck", dt.ROOT / "deploy/docker/healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_finds_the_process_and_its_port(dt: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hc = load_healthcheck(dt)
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/sbin/docker-init\0--\0python\0-m\0crm_shared.runner\0mail\0")
    assert hc.process_name([], cmdline) == "mail"
    cmdline.write_bytes(b"python\0-m\0crm_shared.runner\0gateway\0")
    assert hc.process_name([], cmdline) == "gateway"
    assert hc.process_name(["auth"], cmdline) == "auth"
    monkeypatch.setenv("CRM_OPERATOR_TOKEN", "x" * 20)
    monkeypatch.setenv("AUTH_SIGNING_KEYS", "k:x")
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    assert hc.health_url("gateway") == "http://127.0.0.1:8000/healthz"
    monkeypatch.setenv("GATEWAY_PORT", "8080")
    assert hc.health_url("gateway") == "http://127.0.0.1:8080/healthz"
    for i, name in enumerate(dt.SERVICES, start=1):
        monkeypatch.delenv(f"{name.upper()}_METRICS_PORT", raising=False)
        assert hc.health_url(name) == f"http://127.0.0.1:{9100 + i}/healthz"
    monkeypatch.setenv("ONEC_METRICS_PORT", "19106")
    assert hc.health_url("onec") == "http://127.0.0.1:19106/healthz"


def test_healthcheck_reports_unhealthy_when_nothing_listens(dt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hc = load_healthcheck(dt)
    monkeypatch.setenv("USERS_METRICS_PORT", "1")  # nothing listens on port 1
    assert hc.main(["users"]) == 1


def test_every_python_package_of_the_suite_is_copied(instructions: list[dict[str, Any]]) -> None:
    """A new top-level package (like contracts/) must reach the image, or every process fails to import."""
    root = Path(__file__).resolve().parents[2]
    # console/ is Python only for its browser tests; the image gets its built files (the Node stage)
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()} - {"tests", "bench", "console"}
    copied = {ins["value"][0].rstrip("/") for ins in instructions if ins["cmd"] == "COPY" and not ins["flags"]}
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
