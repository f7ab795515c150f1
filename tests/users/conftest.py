"""Fixtures of the users tests: a real users service on the test vhost and
database, called over RPC like the gateway and auth call it, and a tap on
its events exchange."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kombu import Connection, Consumer, Queue
from nameko.containers import ServiceContainer
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.testing import start_service, wait_for

STRONG = "Uvarov-2024pass"


class EventTap:
    """Collects the events a service publishes (a private queue bound to ``<service>.events``)."""

    def __init__(self, amqp_uri: str, service: str) -> None:
        self.conn = Connection(amqp_uri)
        self.channel = self.conn.channel()
        exchange = get_event_exchange(service, {})
        self.queue = Queue(f"tap-{uuid.uuid4().hex[:8]}", exchange, routing_key="#", exclusive=True,
                           auto_delete=True)
        self.events: list[dict[str, Any]] = []
        self.consumer = Consumer(self.channel, [self.queue], callbacks=[self._on], accept=["json"])
        self.consumer.consume()

    def _on(self, body: Any, message: Any) -> None:
        self.events.append(body if isinstance(body, dict) else json.loads(body))
        message.ack()

    def drain(self) -> None:
        while True:
            try:
                self.conn.drain_events(timeout=0.05)
            except TimeoutError:
                return

    def wait(self, event_type: str, timeout: float = 10.0, **data: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            self.drain()
            for event in self.events:
                if event.get("event_type") == event_type and all(
                        event.get("data", {}).get(k) == v for k, v in data.items()):
                    return event
            return None
        return wait_for(found, timeout, message=f"event {event_type} {data}")

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        self.drain()
        return [e for e in self.events if e.get("event_type") == event_type]

    def close(self) -> None:
        try:
            self.consumer.cancel()
        finally:
            self.conn.release()


class UsersHarness:
    """A users container plus an RPC proxy, and helpers that build tenants."""

    def __init__(self, amqp_uri: str, database_url: str, container: ServiceContainer, proxy: Any) -> None:
        self.amqp_uri = amqp_uri
        self.database_url = database_url
        self.container = container
        self.rpc = proxy.users

    def tenant(self, password: str = "Admin-pass-0001") -> "Tenant":
        tenant_id = f"t-{uuid.uuid4().hex[:12]}"
        answer = self.rpc.bootstrap_tenant(tenant_id, "ООО Тест", password)
        return Tenant(self, tenant_id, answer["admin_user_id"], password)

    def cache(self) -> Any:
        from services.users.dependencies import Principals

        return next(d for d in self.container.dependencies if isinstance(d, Principals)).cache


class Tenant:
    def __init__(self, harness: UsersHarness, tenant_id: str, admin_id: str, admin_password: str) -> None:
        self.h = harness
        self.rpc = harness.rpc
        self.id = tenant_id
        self.admin_id = admin_id
        self.admin_password = admin_password
        self.admin = {"tenant_id": tenant_id, "user_id": admin_id}

    def caller(self, user_id: str) -> dict[str, str]:
        return {"tenant_id": self.id, "user_id": user_id}

    def role(self, kind: str) -> dict[str, Any]:
        roles = self.rpc.list_roles(self.admin, {})["items"]
        return next(r for r in roles if r["builtin"] == kind)

    def root(self) -> dict[str, Any]:
        return next(d for d in self.rpc.list_departments(self.admin, {})["items"] if d["is_root"])

    def department(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        data = {"name": name} if parent_id is None else {"name": name, "parent_id": parent_id}
        return self.rpc.create_department(self.admin, data)

    def position(self, title: str, department_id: str, role_id: str | None = None) -> dict[str, Any]:
        return self.rpc.create_position(self.admin, {"title": title, "department_id": department_id,
                                                     "role_id": role_id or self.role("employee")["id"]})

    def user(self, login: str, position_ids: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        data = {"full_name": f"Тестовый {login}", "login": login, "password": STRONG, "password_confirm": STRONG,
                "position_ids": position_ids or [], **extra}
        return self.rpc.create_user(self.admin, data)


def start_users(amqp_uri: str, databases: Any, **overrides: Any) -> tuple[ServiceContainer, str]:
    container, url = start_service("users", amqp_uri, databases, **overrides)
    assert url is not None
    return container, url


@pytest.fixture(scope="module")
def users(amqp_uri: str, databases: Any) -> Any:
    """The users service alone, once per test module."""
    container, url = start_users(amqp_uri, databases)
    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=20) as proxy:
            yield UsersHarness(amqp_uri, url, container, proxy)
    finally:
        container.stop()


@pytest.fixture
def tenant(users: UsersHarness) -> Tenant:
    return users.tenant()


@pytest.fixture
def events(users: UsersHarness) -> Any:
    tap = EventTap(users.amqp_uri, "users")
    yield tap
    tap.close()
