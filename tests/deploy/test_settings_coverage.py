"""Every setting a process reads (each ${VAR} of its config.yaml, the single source
of truth) is set in docker-compose.yml, provided to its Kubernetes Deployment by
the ConfigMap or a Secret reference, and documented in docs/operations.md.
A new setting in a config.yaml fails here until all three know it."""
from __future__ import annotations

import re
from typing import Any

import pytest

DOCS = "docs/operations.md"
ROW = re.compile(r"^\|\s*`(?P<var>[A-Z][A-Z0-9_]*)`\s*\|(?P<procs>[^|]*)\|(?P<default>[^|]*)\|(?P<secret>[^|]*)\|"
                 r"(?P<meaning>[^|]*)\|\s*$")
# Values the Kubernetes ConfigMap sets on purpose to something else than config.yaml's default.
K8S_OVERRIDES = {
    "MIGRATE_ON_START": "false",  # the "migrate" init container migrates before the process starts
    "GATEWAY_TRUSTED_PROXY_HOPS": "1",  # the ingress controller appends the client to X-Forwarded-For
}
K8S_OVERLAY_OVERRIDES = {"dev": {"LOG_LEVEL": "DEBUG"}}


def documented(dt: Any) -> dict[str, dict[str, str]]:
    """Rows of the settings table (the one under '## Configuration')."""
    text = (dt.ROOT / DOCS).read_text()
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n### ", 1)[0]  # the first table: settings read by the processes
    rows = {}
    for line in table.splitlines():
        m = ROW.match(line)
        if m:
            assert m["var"] not in rows, f"{m['var']} documented twice"
            rows[m["var"]] = {k: m[k].strip() for k in ("procs", "default", "secret", "meaning")}
    return rows


def processes_in(cell: str, dt: Any) -> set[str]:
    cell = cell.replace("*", "").strip()
    if cell == "all":
        return set(dt.ALL)
    if cell == "all services":
        return set(dt.SERVICES)
    return {p.strip() for p in cell.split(",")}


def readers(settings_by_process: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for process, variables in settings_by_process.items():
        for var in variables:
            out.setdefault(var, set()).add(process)
    return out


def test_compose_sets_every_setting(compose_model: dict[str, Any], settings_by_process: dict[str, set[str]]) -> None:
    missing = [f"{process}: {var}" for process, variables in sorted(settings_by_process.items())
               for var in sorted(variables) if var not in compose_model["services"][process]["environment"]]
    assert not missing, "docker-compose.yml does not set:\n" + "\n".join(missing)


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_kubernetes_provides_every_setting(dt: Any, rendered: dict[str, Any], overlay: str,
                                           settings_by_process: dict[str, set[str]]) -> None:
    r = rendered[overlay]
    config_keys = set(r.config_map())
    missing = []
    for d in r.of_kind("Deployment"):
        process = dt.process_of(d)
        spec = d["spec"]["template"]["spec"]
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            provided = {e["name"] for e in c.get("env", [])}
            for src in c.get("envFrom", []):
                if src.get("configMapRef", {}).get("name", "").startswith("crm-config"):
                    provided |= config_keys
            missing += [f"{process}/{c['name']}: {v}" for v in sorted(settings_by_process[process] - provided)]
    assert not missing, f"{overlay}: neither crm-config nor a secretKeyRef provides:\n" + "\n".join(missing)


def test_docs_document_every_setting(dt: Any, settings_by_process: dict[str, set[str]]) -> None:
    rows = documented(dt)
    who = readers(settings_by_process)
    missing = sorted(set(who) - set(rows))
    assert not missing, f"{DOCS}, Configuration table lacks: {missing}"
    stale = sorted(set(rows) - set(who))
    assert not stale, f"{DOCS} documents settings no config.yaml reads (move them to another table): {stale}"
    problems = []
    for var, processes in sorted(who.items()):
        row = rows[var]
        if not processes <= processes_in(row["procs"], dt):
            problems.append(f"{var}: read by {sorted(processes)}, documented for {row['procs']!r}")
        if row["secret"] not in ("yes", "no"):
            problems.append(f"{var}: secret column must be yes or no")
        if not row["meaning"]:
            problems.append(f"{var}: no meaning")
        defaults = {dt.config_defaults(p)[var] for p in processes}
        for default in defaults:
            if default is None:
                ok = "required" in row["default"]
            elif default == "":
                ok = "(empty)" in row["default"]
            else:
                ok = f"`{default}`" in row["default"]
            if not ok:
                problems.append(f"{var}: default {default!r} not in {row['default']!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_secret_settings_come_from_the_secret(dt: Any, rendered: dict[str, Any], overlay: str,
                                              settings_by_process: dict[str, set[str]]) -> None:
    rows = documented(dt)
    secret = {v for v, row in rows.items() if row["secret"] == "yes"}
    r = rendered[overlay]
    config = r.config_map()
    assert not secret & set(config), f"secret settings in the ConfigMap: {sorted(secret & set(config))}"
    for d in r.of_kind("Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            for env in c.get("env", []):
                from_secret = "secretKeyRef" in env.get("valueFrom", {})
                assert from_secret == (env["name"] in secret), (d["metadata"]["name"], env["name"])
                assert "value" not in env, f"{env['name']}: literal values belong in crm-config"


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_configmap_values_are_the_defaults(dt: Any, rendered: dict[str, Any], overlay: str,
                                           settings_by_process: dict[str, set[str]]) -> None:
    """Unless overridden on purpose, Kubernetes runs with the config.yaml defaults, so
    changing a default in code is not silently undone by a stale ConfigMap."""
    overrides = {**K8S_OVERRIDES, **K8S_OVERLAY_OVERRIDES.get(overlay, {})}
    defaults: dict[str, set[str | None]] = {}
    for process in dt.ALL:
        for var, default in dt.config_defaults(process).items():
            defaults.setdefault(var, set()).add(default)
    problems = []
    for key, value in rendered[overlay].config_map().items():
        if key in overrides:
            if value != overrides[key]:
                problems.append(f"{key}={value!r}, expected the deliberate {overrides[key]!r}")
        elif key not in defaults:
            problems.append(f"{key}: no process reads it")
        elif defaults[key] != {value}:
            problems.append(f"{key}={value!r}, config.yaml default {sorted(map(str, defaults[key]))}")
    assert not problems, "\n".join(problems)
