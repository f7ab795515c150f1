"""Helpers shared by the benchmarks: a throwaway vhost and databases, and percentiles."""
from __future__ import annotations

import contextlib
import statistics
from typing import Any, Iterator

from crm_shared.testing import Databases, RabbitVhost


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000
    return {"p50_ms": round(pct(0.50), 3), "p90_ms": round(pct(0.90), 3), "p99_ms": round(pct(0.99), 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "samples": len(ordered)}


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[str, Databases]]:
    vhost = RabbitVhost()
    uri = vhost.create()
    dbs = Databases()
    try:
        yield uri, dbs
    finally:
        dbs.drop_all()
        vhost.delete()


def start(service_cls: Any, config: dict[str, Any]) -> Any:
    from nameko.containers import ServiceContainer

    container = ServiceContainer(service_cls, config)
    container.start()
    return container


class SuiteProcesses:
    """The whole suite as separate processes, started the way ``make run`` starts them
    (``python -m crm_shared.runner <name>``), on the given vhost and fresh databases."""

    def __init__(self, amqp_uri: str, dbs: Databases) -> None:
        import os

        from crm_shared.layout import SERVICES
        from crm_shared.testing import TEST_SECRET_KEYS, free_port
        from services.auth.tokens import generate_key_spec

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.operator_token = "bench-operator-token-0123456789"
        self.database_urls = {name: dbs.create(name) for name in SERVICES}
        self.env = {**os.environ, "AMQP_URI": amqp_uri, "GATEWAY_PORT": str(self.port),
                    "CRM_OPERATOR_TOKEN": self.operator_token, "CRM_SECRET_KEYS": TEST_SECRET_KEYS,
                    "AUTH_SIGNING_KEYS": generate_key_spec("bench"), "LOG_LEVEL": "WARNING",
                    "PYTHONUNBUFFERED": "1"}
        for name, url in self.database_urls.items():
            self.env[f"{name.upper()}_DATABASE_URL"] = url
        for name in (*SERVICES, "gateway"):
            self.env[f"{name.upper()}_METRICS_PORT"] = "0"
        self.procs: dict[str, Any] = {}

    def start(self, timeout: float = 120.0) -> None:
        import subprocess
        import sys

        from crm_shared.layout import ALL, ROOT

        logs = ROOT / ".run" / "bench-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in ALL:
            # a file, not a pipe: nobody reads a pipe during the run, and a full one blocks the process
            with open(logs / f"{name}.log", "wb") as log:
                self.procs[name] = subprocess.Popen([sys.executable, "-m", "crm_shared.runner", name], cwd=ROOT,
                                                    env=self.env, stdout=log, stderr=subprocess.STDOUT)
        def alive() -> None:
            dead = {n: p for n, p in self.procs.items() if p.poll() is not None}
            if dead:
                name = next(iter(dead))
                raise RuntimeError(f"{name} exited: {(logs / f'{name}.log').read_text(errors='replace')[-2000:]}")

        wait_ready(self.base, timeout, alive)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except Exception:
                proc.kill()


def wait_ready(base: str, timeout: float = 120.0, alive: Any = None) -> None:
    """Until ``GET {base}/readyz`` answers 200 (``alive()`` raises when a process died)."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            if requests.get(f"{base}/readyz", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{base} did not become ready")


def new_tenant_admin(base: str, operator_token: str, company: str, disk_quota_mb: int = 1000,
                     max_sessions: int = 100) -> tuple[Any, dict[str, Any]]:
    """A new tenant (``POST /tenants``) and a session logged in as its admin: (session, the creation's answer)."""
    import requests

    resp = requests.post(f"{base}/api/v1/tenants", timeout=60, headers={"Authorization": f"Bearer {operator_token}"},
                         json={"company_name": company, "owner_email": "bench@example.test",
                               "tariff": {"max_sessions": max_sessions, "disk_quota_mb": disk_quota_mb}})
    resp.raise_for_status()
    created = resp.json()
    login = requests.post(f"{base}/api/v1/auth/login", timeout=30, json={
        "product_code": created["product_code"], "login": "admin", "password": created["admin"]["password"]})
    login.raise_for_status()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return http, created
