"""Reads against the architecture's ceiling (issue "API layer, second cut").

The whole suite runs as separate processes, exactly as ``make run`` starts
them (``python -m crm_shared.runner <name>``), on a throwaway vhost and
databases; beside it runs a bare nameko pair (``bench._bare_pair``: an
``@http`` entrypoint making one RPC to a service that returns a constant).
The same client (``hey``, 10 connections, keep-alive) loads each target in
turn:

- the bare ping (first and last, so drift on this shared machine shows);
- ``GET /api/v1/auth/me``;
- ``GET /api/v1/contacts?limit=20`` as the admin (scope all);
- ``GET /api/v1/contacts?limit=50`` as a department manager (scope
  department) over 100,000 contacts of the tenant.

The targets take turns for ``ROUNDS`` rounds; in each round every target's
req/s is divided by that round's bare ping, and the median of those ratios
is what the goals are stated in (latencies: every request of every round)."""
from __future__ import annotations

import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

import requests

from bench.common import SuiteProcesses, infrastructure
from bench.crm_scoped_queries import analyze, bulk_load
from crm_shared.testing import free_port

CONNECTIONS = 10
CONTACTS = 100_000
PASSWORD = "Bench-pass-2026x"
REQUESTS = {"bare_ping": 3000, "auth_me": 3000, "contacts_page_20_admin": 2500,
            "contacts_page_50_department_scope": 2000}
ROUNDS = 3  # the targets take turns, so drift on this shared machine hits them alike
GOALS = {"auth_me": 0.95, "contacts_page_20_admin": 0.8}
P99_GOAL_MS = 100.0


def hey(url: str, n: int, token: str | None = None) -> dict[str, Any]:
    """``n`` GETs over ``CONNECTIONS`` keep-alive connections; per-request figures from hey's CSV."""
    cmd = ["hey", "-n", str(n), "-c", str(CONNECTIONS), "-o", "csv"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    started = time.perf_counter()
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True, timeout=600).stdout
    wall = time.perf_counter() - started
    rows = list(csv.DictReader(io.StringIO(out)))
    latencies = sorted(float(r["response-time"]) for r in rows)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status-code"]] = statuses.get(r["status-code"], 0) + 1
    # hey's own span (first request sent to last answer), not its start-up
    span = max(float(r["offset"]) + float(r["response-time"]) for r in rows)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {"requests": len(rows), "statuses": statuses, "req_per_s": round(len(rows) / span, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "wall_seconds": round(wall, 2)}


def seed(base: str, operator_token: str, crm_database_url: str) -> dict[str, Any]:
    """A tenant with 5 departments of 6 users each (manager + 5 employees), then 100,000 contacts
    spread over them and the admin, bulk-loaded in the shape the crm service writes."""
    created = requests.post(f"{base}/api/v1/tenants", timeout=60,
                            headers={"Authorization": f"Bearer {operator_token}"},
                            json={"company_name": "ООО Потолок", "owner_email": "bench@example.test",
                                  "tariff": {"max_sessions": 100, "disk_quota_mb": 1000}})
    created.raise_for_status()
    product_code = created.json()["product_code"]
    admin = login(base, product_code, "admin", created.json()["admin"]["password"])
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {admin}"

    def post(path: str, body: dict[str, Any]) -> Any:
        resp = http.post(f"{base}/api/v1{path}", json=body, timeout=60)
        assert resp.status_code == 201, resp.text
        return resp.json()

    roles = {r["builtin"]: r["id"] for r in http.get(f"{base}/api/v1/roles", timeout=30).json()["items"]}
    owners = [http.get(f"{base}/api/v1/auth/me", timeout=30).json()["user"]["id"]]
    manager_login = ""
    for d in range(5):
        dept = post("/departments", {"name": f"Отдел продаж {d + 1}"})["id"]
        manager = post("/positions", {"title": "Руководитель", "department_id": dept, "role_id": roles["manager"]})
        employee = post("/positions", {"title": "Менеджер", "department_id": dept, "role_id": roles["employee"]})
        for n in range(6):
            login_name = f"d{d}u{n}"
            user = post("/users", {"full_name": f"Сотрудник {login_name}", "login": login_name,
                                   "password": PASSWORD, "password_confirm": PASSWORD,
                                   "position_ids": [(manager if n == 0 else employee)["id"]]})
            owners.append(user["id"])
            if d == 0 and n == 0:
                manager_login = login_name
    tenant_id = http.get(f"{base}/api/v1/auth/me", timeout=30).json()["tenant_id"]
    bulk_load(crm_database_url, tenant_id, owners, CONTACTS, 1000)
    analyze(crm_database_url)
    return {"product_code": product_code, "admin_token": admin,
            "manager_token": login(base, product_code, manager_login, PASSWORD), "users": len(owners)}


def login(base: str, product_code: str, login_name: str, password: str) -> str:
    resp = requests.post(f"{base}/api/v1/auth/login", timeout=30,
                         json={"product_code": product_code, "login": login_name, "password": password})
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def run() -> dict[str, Any]:
    if shutil.which("hey") is None:
        raise RuntimeError("hey is not installed (scripts/bench-tools.sh installs it)")
    with infrastructure() as (uri, dbs):
        bare_port = free_port()
        env = {**os.environ, "AMQP_URI": uri, "BARE_PORT": str(bare_port), "PYTHONUNBUFFERED": "1"}
        bare = [subprocess.Popen([sys.executable, "-m", "bench._bare_pair", side], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for side in ("service", "gateway")]
        suite = SuiteProcesses(uri, dbs)
        try:
            suite.start()
            data = seed(suite.base, suite.operator_token, suite.database_urls["crm"])
            ping_url = f"http://127.0.0.1:{bare_port}/ping"
            targets = [
                ("bare_ping", ping_url, None),
                ("auth_me", f"{suite.base}/api/v1/auth/me", data["admin_token"]),
                ("contacts_page_20_admin", f"{suite.base}/api/v1/contacts?limit=20", data["admin_token"]),
                ("contacts_page_50_department_scope", f"{suite.base}/api/v1/contacts?limit=50",
                 data["manager_token"]),
            ]
            for _, url, token in targets:  # warm every path (principal caches, connection pools)
                hey(url, 300, token)
            rounds: list[dict[str, Any]] = []
            for _ in range(ROUNDS):
                this: dict[str, Any] = {}
                for name, url, token in targets:
                    this[name] = hey(url, REQUESTS[name], token)
                    assert set(this[name]["statuses"]) == {"200"}, (name, this[name]["statuses"])
                rounds.append(this)
        finally:
            suite.stop()
            for proc in bare:
                proc.terminate()
            for proc in bare:
                proc.wait(10)
    names = [name for name, _, _ in targets]
    ratios = {name: round(statistics.median(r[name]["req_per_s"] / r["bare_ping"]["req_per_s"] for r in rounds), 3)
              for name in names}
    results = {name: {"req_per_s_per_round": [r[name]["req_per_s"] for r in rounds],
                      "req_per_s": round(statistics.median(r[name]["req_per_s"] for r in rounds), 1),
                      "requests": sum(r[name]["requests"] for r in rounds),
                      "p50_ms": round(statistics.median(r[name]["p50_ms"] for r in rounds), 2),
                      "p99_ms": max(r[name]["p99_ms"] for r in rounds)} for name in names}
    goals = {name: {"ratio": ratios[name], "goal": goal, "p99_ms": results[name]["p99_ms"],
                    "met": ratios[name] >= goal and results[name]["p99_ms"] <= P99_GOAL_MS}
             for name, goal in GOALS.items()}
    return {"connections": CONNECTIONS, "contacts": CONTACTS, "users": data["users"], "rounds": ROUNDS,
            "results": results, "ratio_to_bare_ping": ratios, "goals": goals, "per_round": rounds,
            "notes": "hey -c 10 keep-alive; suite processes as make run starts them; the bare pair is "
                     "bench/_bare_pair.py; ratio = median over rounds of target req/s / that round's bare ping; "
                     "p50 = median of the rounds' p50, p99 = the worst round's p99"}
