"""How fast ended sessions stop working, with two gateway processes.

The suite runs as separate processes (as ``make run`` starts them) plus a
second gateway process on the same broker. For each trial a fresh user signs
in, both gateways accept the token, then the session is ended through
gateway A in one of three ways: ``PATCH /users/{id} {"active": false}``,
``PATCH`` with a new password, or reusing a spent refresh token. Measured
from the moment A's answer arrives:

- ``same_replica``: A's very next ``GET /auth/me`` with the token (it must
  already be 401; the figure is that request's own latency);
- ``other_replica``: how long until B answers 401 (B is polled every ~1 ms).

``outbox_commit_to_delivery``: a consumer bound to the users service's event
exchange takes every ``user_deactivated`` / ``user_password_changed`` and
records its arrival minus the event's ``occurred_at`` (written in the
committing transaction): the outbox relay's wake-up plus the broker hop."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

import eventlet
import requests
from kombu import Connection, Exchange, Queue, binding

from bench.common import SuiteProcesses, infrastructure, percentiles, wait_ready
from crm_shared.testing import GatewayProcess

TRIALS = 20  # per way of ending a session
PASSWORD = "Bench-pass-2026x"


def _listen(amqp_uri: str, arrivals: list[float]) -> None:
    exchange = Exchange("users.events", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        queue = Queue("bench-revocation-latency", auto_delete=True, bindings=[
            binding(exchange, routing_key=key) for key in ("user_deactivated", "user_password_changed")])

        def on_message(body: Any, message: Any) -> None:
            at = dt.datetime.fromisoformat(body["occurred_at"]).timestamp()
            arrivals.append(time.time() - at)
            message.ack()

        with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
            while True:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass


def run() -> dict[str, Any]:
    with infrastructure() as (uri, dbs):
        suite = SuiteProcesses(uri, dbs)
        second = None
        try:
            suite.start()
            second = GatewayProcess(uri, CRM_OPERATOR_TOKEN=suite.operator_token)
            wait_ready(second.url, 60)
            return measure(uri, suite.base, second.url, suite.operator_token)
        finally:
            if second is not None:
                second.stop()
            suite.stop()


def measure(amqp_uri: str, url_a: str, url_b: str, operator_token: str) -> dict[str, Any]:
    arrivals: list[float] = []
    listener = eventlet.spawn(_listen, amqp_uri, arrivals)
    eventlet.sleep(0.5)
    created = requests.post(f"{url_a}/api/v1/tenants", headers={"Authorization": f"Bearer {operator_token}"},
                            json={"company_name": "Отзыв", "owner_email": "r@example.test",
                                  "tariff": {"max_sessions": 500, "disk_quota_mb": 10}}, timeout=60).json()
    code = created["product_code"]
    a, b = requests.Session(), requests.Session()

    def login(name: str, password: str = PASSWORD) -> dict[str, Any]:
        resp = a.post(f"{url_a}/api/v1/auth/login", json={"product_code": code, "login": name,
                                                          "password": password}, timeout=30)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    admin = {"Authorization": f"Bearer {login('admin', created['admin']['password'])['access_token']}"}

    def me(http: requests.Session, url: str, token: str) -> int:
        return http.get(f"{url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code

    results: dict[str, dict[str, list[float]]] = {}
    refused_at_once = 0
    for way in ("deactivate", "password_change", "refresh_reuse"):
        same, other = [], []
        for n in range(TRIALS):
            name = f"{way[:4]}{n}"
            user = a.post(f"{url_a}/api/v1/users", headers=admin, timeout=30, json={
                "full_name": name, "login": name, "password": PASSWORD, "password_confirm": PASSWORD}).json()
            tokens = login(name)
            token = tokens["access_token"]
            if way == "refresh_reuse":
                spent = tokens["refresh_token"]
                token = a.post(f"{url_a}/api/v1/auth/refresh", json={"refresh_token": spent},
                               timeout=30).json()["access_token"]
            assert me(a, url_a, token) == 200 and me(b, url_b, token) == 200
            if way == "deactivate":
                resp = a.patch(f"{url_a}/api/v1/users/{user['id']}", headers=admin, json={"active": False}, timeout=30)
                assert resp.status_code == 200
            elif way == "password_change":
                new = PASSWORD + "N"
                resp = a.patch(f"{url_a}/api/v1/users/{user['id']}", headers=admin, timeout=30,
                               json={"password": new, "password_confirm": new})
                assert resp.status_code == 200
            else:
                resp = a.post(f"{url_a}/api/v1/auth/refresh", json={"refresh_token": spent}, timeout=30)
                assert resp.status_code == 401
            answered = time.perf_counter()
            status = me(a, url_a, token)
            same.append(time.perf_counter() - answered)
            refused_at_once += status == 401
            while me(b, url_b, token) != 401:
                if time.perf_counter() - answered > 10:
                    raise RuntimeError(f"replica B still accepts the token after 10 s ({way})")
                eventlet.sleep(0.001)
            other.append(time.perf_counter() - answered)
        results[way] = {"same_replica": same, "other_replica": other}
    eventlet.sleep(0.5)
    listener.kill()
    trials = 3 * TRIALS
    return {
        "trials_per_way": TRIALS,
        "refused_by_the_answering_replica_at_once": f"{refused_at_once}/{trials}",
        "same_replica_ms": {w: percentiles(r["same_replica"]) for w, r in results.items()},
        "other_replica_ms": {w: percentiles(r["other_replica"]) for w, r in results.items()},
        "other_replica_all_ms": percentiles([x for r in results.values() for x in r["other_replica"]]),
        "outbox_commit_to_delivery_ms": percentiles(arrivals) if arrivals else None,
        "notes": "two gateway processes; same_replica = latency of A's next request (401 expected); "
                 "other_replica = from A's answer until B answers 401, polled every ~1 ms; outbox figure = "
                 "arrival at a consumer of users.events minus occurred_at of user_deactivated/user_password_changed",
    }


