"""Gateway ops routes and the error format, against the real suite."""
import json
import subprocess
import time

import pytest
import requests

from crm_shared.layout import SERVICES


def test_healthz_and_readyz_report_every_service(suite):
    assert requests.get(f"{suite.url}/healthz", timeout=5).json() == {"status": "ok"}
    resp = requests.get(f"{suite.url}/readyz", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["checks"] == {"broker": "ok", **dict.fromkeys(SERVICES, "ok")}
    assert resp.headers["X-Request-ID"]


def test_openapi_documents_every_route(suite):
    doc = requests.get(f"{suite.url}/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json"} <= set(doc["paths"])
    assert "ErrorBody" in doc["components"]["schemas"]


def test_unknown_route_is_a_404(suite):
    resp = requests.get(f"{suite.url}/api/v1/nothing-here", timeout=5)
    assert resp.status_code == 404


def test_gateway_metrics_page_passes_promtool(suite):
    requests.get(f"{suite.url}/healthz", timeout=5)
    page = requests.get(f"{suite.url}/metrics", timeout=5)
    assert page.status_code == 200
    assert 'crm_http_requests_total{method="GET",route="/healthz",status="200"}' in page.text
    check = subprocess.run(["promtool", "check", "metrics"], input=page.content, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_service_metrics_pages_pass_promtool(suite):
    for name in SERVICES:
        port = _ops_port(suite.by_name[name])
        # one RPC so the entrypoint histogram has samples
        requests.get(f"{suite.url}/readyz", timeout=10)
        page = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert page.status_code == 200
        assert "crm_entrypoint_duration_seconds_bucket" in page.text
        assert 'crm_readiness_check_up{check="database"} 1.0' in page.text
        assert "process_resident_memory_bytes" in page.text
        check = subprocess.run(["promtool", "check", "metrics"], input=page.content, capture_output=True, timeout=30)
        assert check.returncode == 0, (name, check.stdout + check.stderr)
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"] == {"broker": "ok", "database": "ok"}


def _ops_port(container):
    from crm_shared.service import OpsEndpoint

    for dep in container.dependencies:
        if isinstance(dep, OpsEndpoint):
            return dep.port
    raise AssertionError("no ops endpoint")


def test_readyz_names_a_stopped_service_within_its_timeout(private_containers):
    containers = private_containers
    # a private suite: stopping one of its services must not disturb the shared one
    for name in SERVICES:
        containers.start_named(name)
    gateway = containers.start_named("gateway", READYZ_TIMEOUT_SECONDS="1")
    url = f"http://{gateway.config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', '127.0.0.1')}"
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
    mail = next(c for c in containers.started if c.service_name == "mail")
    mail.stop()
    started = time.monotonic()
    resp = requests.get(f"{url}/readyz", timeout=10)
    elapsed = time.monotonic() - started
    assert resp.status_code == 503
    body = resp.json()
    assert body["error"]["code"] == "not_ready"
    assert "mail" in body["error"]["message"]
    assert body["error"]["checks"]["mail"].startswith("down:")
    assert body["error"]["checks"]["auth"] == "ok"
    assert elapsed < 3, elapsed


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]"])
def test_malformed_json_is_a_400_not_a_500(suite, raw):
    resp = requests.post(f"{suite.url}/api/v1/tenants", data=raw, timeout=5,
                         headers={"Authorization": f"Bearer {suite.operator_token}",
                                  "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "malformed_json"
    json.dumps(resp.json())


def test_validation_errors_name_each_field_plainly(suite):
    resp = requests.post(f"{suite.url}/api/v1/tenants", timeout=10,
                         headers={"Authorization": f"Bearer {suite.operator_token}"},
                         json={"company_name": "", "owner_email": "not-an-address",
                               "tariff": {"max_sessions": 0, "disk_quota_mb": 100}})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_failed"
    assert {"owner_email", "tariff.max_sessions"} <= set(error["fields"])
    assert not any(reason.startswith("Value error") for reason in error["fields"].values()), error
