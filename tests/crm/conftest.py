"""Fixtures of the crm tests: the crm service on a vhost and database of its
own, with a small ``users`` service of the test's making beside it (it
serves ``get_principal`` from a dict the test controls and announces
``principal_changed`` as the real one does), so the crm service's rights
can be tested without depending on the users service's progress. The real
users service and the gateway are exercised in test_crm_gateway.py."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from nameko.containers import ServiceContainer
from nameko.events import EventDispatcher
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.db import make_engine
from crm_shared.errors import NotFound
from crm_shared.metrics import METRICS
from crm_shared.testing import RabbitVhost, start_service, wait_for

ALL_RIGHTS = {f"{e}.{a}": "all" for e in ("counterparties", "contacts", "products", "invoices", "payments",
                                          "communications") for a in ("create", "read", "update", "delete")}
ALL_RIGHTS["invoices.discount"] = "all"

PRINCIPALS: dict[tuple[str, str], dict[str, Any]] = {}
PRINCIPAL_CALLS: list[tuple[str, str]] = []


class FakeUsers:
    """Stands in for the users service: its principal contract, nothing more."""

    name = "users"
    dispatch = EventDispatcher()

    @rpc
    def get_principal(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        PRINCIPAL_CALLS.append((tenant_id, user_id))
        principal = PRINCIPALS.get((tenant_id, user_id))
        if principal is None:
            raise NotFound("user not found")
        return principal

    @rpc
    def announce(self, tenant_id: str, user_ids: list[str] | None) -> None:
        """``principal_changed`` as the users service publishes it (the outbox envelope)."""
        self.dispatch("principal_changed", {
            "event_id": str(uuid.uuid4()), "event_type": "principal_changed", "aggregate_id": tenant_id,
            "tenant_id": tenant_id, "occurred_at": "2026-01-01T00:00:00+00:00",
            "data": {"tenant_id": tenant_id, "user_ids": user_ids}})

    @rpc
    def health(self) -> dict[str, str]:
        return {"service": "users", "status": "ok"}


class Org:
    """A tenant's users with their rights and departments, as principals."""

    def __init__(self, harness: "CrmHarness") -> None:
        self.h = harness
        self.tenant_id = f"t-{uuid.uuid4().hex[:12]}"
        self.users: dict[str, str] = {}

    def user(self, name: str, rights: dict[str, str] | None = None, department_user_ids: list[str] | None = None,
             active: bool = True, **extra: Any) -> dict[str, str]:
        user_id = self.users.get(name) or str(uuid.uuid4())
        self.users[name] = user_id
        PRINCIPALS[(self.tenant_id, user_id)] = {
            "tenant_id": self.tenant_id, "user_id": user_id, "login": name, "full_name": f"Тестовый {name}",
            "email": f"{name}@example.test", "timezone": "Europe/Moscow", "active": active,
            "rights": dict(ALL_RIGHTS if rights is None else rights), "department_ids": [],
            "department_user_ids": list(department_user_ids or []), **extra}
        return self.caller(name)

    def caller(self, name: str) -> dict[str, str]:
        return {"tenant_id": self.tenant_id, "user_id": self.users[name]}

    def change(self, name: str, announce: bool = True, **changes: Any) -> None:
        """Changes a principal at the source and (by default) announces it like the users service."""
        PRINCIPALS[(self.tenant_id, self.users[name])].update(changes)
        if announce:
            before = METRICS.value("crm_crm_principal_invalidations_total")
            self.h.proxy.users.announce(self.tenant_id, [self.users[name]])
            wait_for(lambda: METRICS.value("crm_crm_principal_invalidations_total") > before,
                     message="principal_changed handled")


class CrmHarness:
    def __init__(self, amqp_uri: str, database_url: str, container: ServiceContainer, proxy: Any) -> None:
        self.amqp_uri = amqp_uri
        self.database_url = database_url
        self.container = container
        self.proxy = proxy
        self.rpc = proxy.crm
        self.engine = make_engine(database_url, pool_size=1)
        self.principal_calls = PRINCIPAL_CALLS

    def org(self) -> Org:
        return Org(self)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def outbox(self, event_type: str = "record_changed") -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT payload FROM outbox_events WHERE event_type = :t ORDER BY id"),
                                {"t": event_type}).all()
        return [r[0] for r in rows]


def start_crm(amqp_uri: str, databases: Any, **overrides: Any) -> tuple[ServiceContainer, str]:
    container, url = start_service("crm", amqp_uri, databases, **overrides)
    assert url is not None
    return container, url


@pytest.fixture(scope="module")
def crm(databases: Any) -> Any:
    """The crm service and the fake users service on a vhost of their own, once per module."""
    vhost = RabbitVhost()
    amqp_uri = vhost.create()
    users = ServiceContainer(FakeUsers, {"AMQP_URI": amqp_uri})
    users.start()
    container, url = start_crm(amqp_uri, databases)
    harness = None
    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=20) as proxy:
            harness = CrmHarness(amqp_uri, url, container, proxy)
            yield harness
    finally:
        if harness is not None:
            harness.engine.dispose()
        container.stop()
        users.stop()
        vhost.delete()
