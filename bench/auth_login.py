"""Logins per second through the gateway (gateway -> auth -> users: one
argon2id verification each), refreshes per second, and the argon2id
parameters the stored password hashes actually carry.

The auth, users and gateway containers run in this process on a throwaway
vhost and databases, as do the HTTP clients, so the figures are a floor for
what separate processes on the same two cores achieve."""
from __future__ import annotations

import re
import time
import uuid
from typing import Any

import eventlet
import requests
import sqlalchemy as sa

from bench.common import infrastructure, percentiles, start
from crm_shared.db import make_engine
from crm_shared.layout import ROOT
from crm_shared.migrations import migrate
from crm_shared.testing import service_config

SEQUENTIAL = 40
CONCURRENT = 200
CLIENTS = 8


def _start(name: str, uri: str, dbs: Any, **overrides: Any) -> Any:
    import importlib

    url = dbs.create(name) if name != "gateway" else None
    _, config = service_config(name, uri, url, **overrides)
    if url:
        migrate(url, ROOT / "services" / name / "migrations", name)
    module = importlib.import_module(f"services.{name}.service" if name != "gateway" else "gateway.service")
    return start(module.SERVICE, config)


def run() -> dict[str, Any]:
    from services.auth.tokens import generate_key_spec

    with infrastructure() as (uri, dbs):
        keys = generate_key_spec("bench")
        containers = [_start("users", uri, dbs), _start("auth", uri, dbs, AUTH_SIGNING_KEYS=keys),
                      _start("gateway", uri, dbs)]
        gateway = containers[-1]
        base = f"http://{gateway.config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', '127.0.0.1')}"
        operator = {"Authorization": f"Bearer {gateway.config['CRM_OPERATOR_TOKEN']}"}
        try:
            created = requests.post(f"{base}/api/v1/tenants", headers={**operator, "Idempotency-Key": uuid.uuid4().hex},
                                    json={"company_name": "Bench", "owner_email": "bench@example.test",
                                          "tariff": {"max_sessions": 10, "disk_quota_mb": 10}}, timeout=30).json()
            body = {"product_code": created["product_code"], "login": "admin",
                    "password": created["admin"]["password"]}
            session = requests.Session()

            def login(s: requests.Session) -> dict[str, Any]:
                resp = s.post(f"{base}/api/v1/auth/login", json=body, timeout=30)
                assert resp.status_code == 200, resp.text
                return dict(resp.json())

            for _ in range(5):
                login(session)  # warm up
            samples = []
            for _ in range(SEQUENTIAL):
                t = time.perf_counter()
                login(session)
                samples.append(time.perf_counter() - t)

            def worker(n: int) -> None:
                s = requests.Session()
                for _ in range(n):
                    login(s)

            pool = eventlet.GreenPool(CLIENTS)
            started = time.perf_counter()
            for _ in range(CLIENTS):
                pool.spawn(worker, CONCURRENT // CLIENTS)
            pool.waitall()
            concurrent_rate = CONCURRENT / (time.perf_counter() - started)

            refresh_token = login(session)["refresh_token"]
            refresh_samples = []
            for _ in range(200):
                t = time.perf_counter()
                resp = session.post(f"{base}/api/v1/auth/refresh", json={"refresh_token": refresh_token}, timeout=30)
                refresh_samples.append(time.perf_counter() - t)
                refresh_token = resp.json()["refresh_token"]

            engine = make_engine(containers[0].config["DATABASE_URL"])
            with engine.connect() as conn:
                stored = conn.scalar(sa.text("SELECT password_hash FROM users LIMIT 1"))
            engine.dispose()
        finally:
            for c in reversed(containers):
                c.stop()
        m = re.match(r"^\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$", stored or "")
        assert m, "stored hashes are argon2id"
        memory_kib, time_cost, parallelism = int(m[1]), int(m[2]), int(m[3])
        assert memory_kib >= 19456 and time_cost >= 2 and parallelism >= 1, "below the OWASP minimum"
        argon2 = {"variant": "argon2id", "memory_kib": memory_kib, "time_cost": time_cost, "parallelism": parallelism,
                  "owasp_minimum": {"memory_kib": 19456, "time_cost": 2, "parallelism": 1}}
        return {
            "login_sequential": {**percentiles(samples),
                                 "logins_per_second": round(SEQUENTIAL / sum(samples), 1)},
            "login_concurrent": {"clients": CLIENTS, "logins": CONCURRENT,
                                 "logins_per_second": round(concurrent_rate, 1)},
            "refresh_sequential": {**percentiles(refresh_samples),
                                   "refreshes_per_second": round(len(refresh_samples) / sum(refresh_samples), 1)},
            "argon2": argon2,
        }
