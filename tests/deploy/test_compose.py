"""docker-compose.yml, checked with the Compose v2 Go binary (`docker compose config`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

PINNED_TAG = re.compile(r"^[^:@]+(:[^:@]*\d[^:@]*)?(@sha256:[0-9a-f]{64})?$")


def test_compose_config_is_valid(dt: Any, compose_bin: str, empty_env_file: Path) -> None:
    result = dt.run([compose_bin, "-f", "docker-compose.yml", "--env-file", str(empty_env_file), "config", "--quiet"],
                    env=dt.compose_env(**dt.COMPOSE_DUMMY_SECRETS))
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_secrets(dt: Any, compose_bin: str, empty_env_file: Path) -> None:
    result = dt.run([compose_bin, "-f", "docker-compose.yml", "--env-file", str(empty_env_file), "config", "--quiet"],
                    env=dt.compose_env())
    assert result.returncode != 0
    assert "required variable" in result.stderr and "is missing a value" in result.stderr, result.stderr


def test_every_process_runs_from_the_one_image(dt: Any, compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    images = {services[name]["image"] for name in dt.ALL}
    assert len(images) == 1, images
    for name in dt.ALL:
        svc = services[name]
        assert svc["command"] == [name], (name, svc["command"])
        assert svc["build"]["dockerfile"] == "Dockerfile"
        # hardening, as in Kubernetes
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert svc["healthcheck"]["test"][:2] == ["CMD", "python"], name


def test_infrastructure_has_health_checks_and_volumes(compose_model: dict[str, Any]) -> None:
    services, volumes = compose_model["services"], compose_model["volumes"]
    for name in ("postgres", "rabbitmq"):
        svc = services[name]
        assert PINNED_TAG.match(svc["image"]) and ":" in svc["image"], svc["image"]
        assert svc["healthcheck"]["test"], name
        assert any(v["type"] == "volume" and v["source"] in volumes for v in svc["volumes"]), name
    assert services["rabbitmq"]["image"].endswith("-management")
    init = [v for v in services["postgres"]["volumes"] if v["target"].startswith("/docker-entrypoint-initdb.d/")]
    assert init and Path(init[0]["source"]).is_file(), init
    for name in ("prometheus", "grafana"):
        image = services[name]["image"]
        assert PINNED_TAG.match(image) and not image.endswith(":latest"), image


def test_start_order_waits_for_health(dt: Any, compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    for name in dt.SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["rabbitmq"]["condition"] == "service_healthy", name
    gateway_deps = services["gateway"]["depends_on"]
    for name in (*dt.SERVICES, "rabbitmq"):
        assert gateway_deps[name]["condition"] == "service_healthy", name


def test_each_service_gets_its_own_database(dt: Any, compose_model: dict[str, Any]) -> None:
    urls = {}
    for name in dt.SERVICES:
        url = compose_model["services"][name]["environment"][f"{name.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url, url
        urls[name] = url.rsplit("/", 1)[1]
    assert urls == {name: f"crm_{name}" for name in dt.SERVICES}
    init_script = (dt.ROOT / "deploy/compose/postgres-init.sh").read_text()
    for database in urls.values():
        assert f"'{database}'" in init_script, database


def test_prometheus_scrapes_every_metrics_port_and_loads_the_rules(dt: Any, compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    expected = {}
    for name in dt.ALL:
        port = services[name]["environment"][dt.metrics_port_var(name)]
        expected[f"crm-{name}"] = [f"{name}:{port}"]
    config = yaml.safe_load((dt.ROOT / "deploy/prometheus/prometheus.yml").read_text())
    # DNS discovery of the compose service name, so scaled replicas are each scraped
    jobs = {job["job_name"]: [f"{n}:{sd['port']}" for sd in job["dns_sd_configs"] for n in sd["names"]]
            for job in config["scrape_configs"] if job["job_name"].startswith("crm-")}
    assert jobs == expected
    mounts = {v["target"]: v["source"] for v in services["prometheus"]["volumes"] if v["type"] == "bind"}
    assert Path(mounts["/etc/prometheus/prometheus.yml"]).resolve() == (dt.ROOT / "deploy/prometheus/prometheus.yml")
    assert Path(mounts["/etc/prometheus/alerts.yml"]).resolve() == (dt.ROOT / "deploy/prometheus/alerts.yml")
    assert config["rule_files"] == ["alerts.yml"]


def test_compose_defaults_match_the_config_files(dt: Any, compose_model: dict[str, Any]) -> None:
    """A value compose sets without being told otherwise must be the process's own default,
    except the deliberate differences listed here (addresses of the compose network)."""
    deliberate = {"AMQP_URI", "MIGRATE_ON_START", *dt.COMPOSE_DUMMY_SECRETS}
    deliberate |= {f"{name.upper()}_DATABASE_URL" for name in dt.SERVICES}
    problems = []
    for name in dt.ALL:
        env = compose_model["services"][name]["environment"]
        for var, default in dt.config_defaults(name).items():
            if var in deliberate or var not in env:
                continue  # presence is test_settings_coverage's job
            if default is not None and str(env[var]) != default:
                problems.append(f"{name}: {var}={env[var]!r}, config.yaml default {default!r}")
    assert not problems, "\n".join(problems)
