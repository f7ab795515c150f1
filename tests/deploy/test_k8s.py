"""k8s/: every overlay rendered by kustomize and validated strictly against the
Kubernetes OpenAPI schemas (kubernetes-validate --strict), plus the properties
the suite relies on (probes, resources, hardening, scaling, secrets).

kubernetes-validate bundles no schema for CRDs (ServiceMonitor, PrometheusRule
of the Prometheus Operator): those objects are validated here instead, against
the fields this repository uses (test_crd_objects_*), and the PrometheusRule's
rules by promtool itself."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

SECRET_NAME = "crm-secrets"


def validate(dt: Any, files: list[Path], version: str) -> None:
    result = dt.run([dt.tool("kubernetes-validate"), "--strict", "-k", version, *map(str, files)])
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith(("ERROR", "WARN")) or "Traceback" in line]
    assert result.returncode == 0 and not problems, "\n".join(problems) or result.stderr


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_overlay_validates_strictly(dt: Any, rendered: dict[str, Any], tmp_path: Path,
                                    overlay: str, version: str) -> None:
    # Every built-in object strictly; a WARN "couldn't find schema" for one of them fails too.
    builtin = [d for d in rendered[overlay].docs if not dt.is_crd(d)]
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    validate(dt, [path], version)


def test_examples_validate_strictly(dt: Any) -> None:
    examples = sorted((dt.ROOT / "k8s/examples").glob("*.yaml"))
    assert examples
    for version in dt.K8S_VERSIONS:
        validate(dt, examples, version)


# ------------------------------------------------------------------ CRDs

# The fields of monitoring.coreos.com/v1 this repository may use, with their types
# (from the Prometheus Operator API reference); anything else is a typo.
LABEL_SELECTOR = {"matchLabels": dict, "matchExpressions": list}
SERVICE_MONITOR_SPEC = {
    "selector": LABEL_SELECTOR,
    "namespaceSelector": {"any": bool, "matchNames": list},
    "jobLabel": str, "targetLabels": list, "podTargetLabels": list, "sampleLimit": int,
    "endpoints": [{
        "port": str, "targetPort": (int, str), "path": str, "scheme": str, "interval": str, "scrapeTimeout": str,
        "honorLabels": bool, "honorTimestamps": bool, "params": dict, "relabelings": list,
        "metricRelabelings": list, "followRedirects": bool, "enableHttp2": bool, "tlsConfig": dict,
    }],
}
PROMETHEUS_RULE_SPEC = {
    "groups": [{
        "name": str, "interval": str, "limit": int, "partial_response_strategy": str,
        "rules": [{"alert": str, "record": str, "expr": (str, int), "for": str, "keep_firing_for": str,
                   "labels": dict, "annotations": dict}],
    }],
}
DURATION = re.compile(r"^(0|(\d+(ms|s|m|h|d|w|y))+)$")


def check_shape(value: Any, shape: Any, where: str) -> list[str]:
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        problems = [f"{where}.{k}: unknown field" for k in value if k not in shape]
        for key, sub in shape.items():
            if key in value:
                problems += check_shape(value[key], sub, f"{where}.{key}")
        return problems
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [p for i, item in enumerate(value) for p in check_shape(item, shape[0], f"{where}[{i}]")]
    return [] if isinstance(value, shape) else [f"{where}: expected {shape}"]


def crd_objects(rendered: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(overlay, d) for overlay, r in rendered.items() for d in r.of_kind(kind)]


def test_crd_objects_service_monitor(rendered: dict[str, Any]) -> None:
    monitors = crd_objects(rendered, "ServiceMonitor")
    assert [o for o, _ in monitors] == ["production"], "production (only) includes the prometheus-operator component"
    for overlay, sm in monitors:
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(sm) == {"apiVersion", "kind", "metadata", "spec"}
        assert sm["metadata"]["namespace"] == "crm"
        assert not check_shape(sm["spec"], SERVICE_MONITOR_SPEC, "spec"), check_shape(sm["spec"], SERVICE_MONITOR_SPEC,
                                                                                     "spec")
        for ep in sm["spec"]["endpoints"]:
            for key in ("interval", "scrapeTimeout"):
                assert DURATION.match(ep.get(key, "0")), ep
        # it selects every CRM Service, and every selected Service has the named port
        selector = sm["spec"]["selector"]["matchLabels"]
        services = [s for s in rendered[overlay].of_kind("Service")
                    if selector.items() <= s["metadata"].get("labels", {}).items()]
        assert {s["metadata"]["name"] for s in services} == {d["metadata"]["name"]
                                                             for d in rendered[overlay].of_kind("Deployment")}
        port = sm["spec"]["endpoints"][0]["port"]
        for svc in services:
            assert port in [p["name"] for p in svc["spec"]["ports"]], svc["metadata"]["name"]


def test_crd_objects_prometheus_rule(dt: Any, rendered: dict[str, Any], tmp_path: Path) -> None:
    rules = crd_objects(rendered, "PrometheusRule")
    assert [o for o, _ in rules] == ["production"]
    for _, rule in rules:
        assert set(rule) == {"apiVersion", "kind", "metadata", "spec"}
        assert not check_shape(rule["spec"], PROMETHEUS_RULE_SPEC, "spec"), check_shape(rule["spec"],
                                                                                      PROMETHEUS_RULE_SPEC, "spec")
        # the rules themselves: promtool, and the same as the compose Prometheus loads
        path = tmp_path / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        result = dt.run([dt.promtool(), "check", "rules", str(path)])
        assert result.returncode == 0, result.stdout + result.stderr
        source = yaml.safe_load((dt.ROOT / "deploy/prometheus/alerts.yml").read_text())
        assert rule["spec"]["groups"] == source["groups"], \
            "run: python deploy/prometheus/render_prometheusrule.py"


# ------------------------------------------------------------------ workloads

def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_one_deployment_per_process(dt: Any, rendered: dict[str, Any], overlay: str) -> None:
    deployments = rendered[overlay].of_kind("Deployment")
    assert sorted(dt.process_of(d) for d in deployments) == sorted(dt.ALL)
    for d in deployments:
        name = d["metadata"]["name"]
        assert name == f"crm-{dt.process_of(d)}"
        app = d["spec"]["template"]["spec"]["containers"][0]
        assert app["name"] == "app" and app["args"] == [dt.process_of(d)], name
        assert "command" not in app, f"{name}: the image's ENTRYPOINT runs the process"
        images = {c["image"] for c in containers(d)}
        assert len(images) == 1 and images.pop().startswith("registry.example.com/crm/crm-platform:"), name
        # the init container must run the very image the app runs (a mutable tag is pulled by both)
        assert len({c.get("imagePullPolicy") for c in containers(d)}) == 1, name


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_deployments_are_hardened_and_probed(dt: Any, rendered: dict[str, Any], overlay: str) -> None:
    config = rendered[overlay].config_map()
    for d in rendered[overlay].of_kind("Deployment"):
        name, process = d["metadata"]["name"], dt.process_of(d)
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False, name
        grace = pod["terminationGracePeriodSeconds"]
        assert grace >= 30, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in containers(d):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc["runAsNonRoot"] is True and sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", (name, c["name"])
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), name
            assert {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/tmp"] in volumes, name
            assert "emptyDir" in volumes["tmp"], name
        app = pod["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in app["ports"]}
        # the named metrics port is the one the process is configured to listen on
        assert ports["metrics"] == int(config[dt.metrics_port_var(process)]), name
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == str(ports["metrics"]), name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert app[probe]["httpGet"]["port"] in ports, (name, probe)
        assert app["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert app["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        # the gateway's readiness must not depend on every service (metrics-port /readyz = broker only)
        assert app["readinessProbe"]["httpGet"]["port"] == "metrics", name
        if process == "gateway":
            assert ports["http"] == int(config["GATEWAY_PORT"])
            assert app["livenessProbe"]["httpGet"]["port"] == "http"
            assert "preStop" in app["lifecycle"]


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_migrations_run_before_each_service_starts(dt: Any, rendered: dict[str, Any], overlay: str) -> None:
    assert rendered[overlay].config_map()["MIGRATE_ON_START"] == "false"
    for d in rendered[overlay].of_kind("Deployment"):
        process = dt.process_of(d)
        init = d["spec"]["template"]["spec"].get("initContainers", [])
        if process == "gateway":
            assert not init
            continue
        assert [c["name"] for c in init] == ["migrate"], process
        assert init[0]["command"] == ["python", "-m", "crm_shared.migrations"] and init[0]["args"] == [process]


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_scaling_objects(dt: Any, rendered: dict[str, Any], overlay: str) -> None:
    r = rendered[overlay]
    deployments = {d["metadata"]["name"]: d for d in r.of_kind("Deployment")}
    pdbs = {p["metadata"]["name"]: p for p in r.of_kind("PodDisruptionBudget")}
    hpas = {h["metadata"]["name"]: h for h in r.of_kind("HorizontalPodAutoscaler")}
    assert set(pdbs) == set(deployments)
    # telephony's engine processes hold SIP registrations and ringing calls: scaled by hand (docs/operations.md)
    assert set(hpas) == set(deployments) - {"crm-telephony"}
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdbs[name]["spec"].get("maxUnavailable") == 1, "never blocks a node drain, even with one replica"
        if name in hpas:
            assert "replicas" not in d["spec"], f"{name}: the HPA owns replicas"
            target = hpas[name]["spec"]["scaleTargetRef"]
            assert (target["kind"], target["name"]) == ("Deployment", name)
            assert 1 <= hpas[name]["spec"]["minReplicas"] <= hpas[name]["spec"]["maxReplicas"]
            if overlay == "production":
                assert hpas[name]["spec"]["minReplicas"] >= 2, name
        else:
            # two: the SIP accounts of a pod that stops register on the other within a lease
            assert d["spec"]["replicas"] == 2, name


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_gateway_service_and_ingress(rendered: dict[str, Any], overlay: str) -> None:
    r = rendered[overlay]
    svc = r.one("Service", "crm-gateway")
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {"http": "http", "metrics": "metrics"}
    ingress = r.one("Ingress", "crm-gateway")
    paths = {p["path"]: p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert "/api" in paths and "/metrics" not in paths and "/readyz" not in paths
    for p in paths.values():
        assert p["backend"]["service"] == {"name": "crm-gateway", "port": {"name": "http"}}
    if overlay == "production":
        assert ingress["spec"]["tls"], "production terminates TLS"


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_no_secret_values_only_references(dt: Any, rendered: dict[str, Any], overlay: str) -> None:
    r = rendered[overlay]
    assert not r.of_kind("Secret"), "Secrets are created out of band, never rendered from the repository"
    example = yaml.safe_load((dt.ROOT / "k8s/examples/secret.example.yaml").read_text())
    assert example["metadata"]["name"] == SECRET_NAME
    assert all("CHANGE_ME" in str(v) for v in example["stringData"].values()), "the example holds placeholders only"
    referenced = set()
    for d in r.of_kind("Deployment"):
        for c in containers(d):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME and ref["key"] == env["name"], env
                    referenced.add(ref["key"])
            for src in c.get("envFrom", []):
                assert "secretRef" not in src, "name each secret key, so the coverage test can see it"
    assert referenced == set(example["stringData"]), "k8s/examples/secret.example.yaml lists every key used"


def test_raw_manifests_hold_no_secret_data(dt: Any) -> None:
    for path in (dt.ROOT / "k8s").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Secret":
                assert path.parent.name == "examples", path
        text = path.read_text()
        assert "secretGenerator" not in text, path
