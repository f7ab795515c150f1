"""Fixtures of the auth tests: the whole suite (every service and the
gateway, in-process on the test vhost) with login throttling tuned so a
test can reach a lockout in a second, the gateway trusting one proxy hop so
each test can act from its own client address (``X-Forwarded-For``), and
platform mail pointed at a loopback SMTP server (tests/labs)."""
from __future__ import annotations

import itertools
import os
import uuid
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.db import make_engine
from crm_shared.layout import SERVICES
from tests.labs.smtp import SmtpLab

ADMIN_STRONG = "Admin-pass-0001"
AUTH_TEST_SETTINGS = {
    "AUTH_LOGIN_SLOWDOWN_AFTER": "2",
    "AUTH_LOGIN_SLOWDOWN_SECONDS": "0.3",
    "AUTH_LOGIN_LOCKOUT_AFTER": "4",
    "AUTH_LOGIN_LOCKOUT_SECONDS": "600",
    "AUTH_IP_MAX_FAILURES": "6",
    "AUTH_IP_WINDOW_SECONDS": "600",
}
_ips = itertools.count(1)


def next_client_ip() -> str:
    """A documentation-range address (never contacted: it only travels in a header)."""
    n = next(_ips)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


class AuthSuite:
    def __init__(self, containers: Any, smtp: SmtpLab | None, **auth_overrides: Any) -> None:
        self.containers = containers
        self.smtp = smtp
        self.by_name: dict[str, Any] = {}
        auth_settings = dict(AUTH_TEST_SETTINGS, **(smtp.settings() if smtp else {}), **auth_overrides)
        for name in SERVICES:
            self.by_name[name] = containers.start_named(name, **(auth_settings if name == "auth" else {}))
        self.gateway = self.start_gateway()
        self.url = self.gateway_url(self.gateway)
        self.operator_token = self.gateway.config["CRM_OPERATOR_TOKEN"]
        self.amqp_uri = containers.amqp_uri
        self.auth_db = make_engine(self.by_name["auth"].config["DATABASE_URL"], pool_size=1)

    def start_gateway(self, containers: Any = None) -> Any:
        """Another gateway replica. A test starting one passes its function-scoped
        ``containers``: nameko's pytest plugin tells every consumer made during a
        test to stop when the test ends, so a container must not outlive its test."""
        return (containers or self.containers).start_named("gateway", GATEWAY_TRUSTED_PROXY_HOPS="1")

    @staticmethod
    def gateway_url(container: Any) -> str:
        return f"http://{container.config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', '127.0.0.1')}"

    # -- HTTP -----------------------------------------------------------------
    def call(self, method: str, path: str, token: str | None = None, json: Any = None,
             headers: dict[str, str] | None = None, ip: str | None = None, url: str | None = None) -> Any:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        if ip:
            h["X-Forwarded-For"] = ip
        return requests.request(method, f"{url or self.url}{path}", json=json, headers=h, timeout=30)

    def create_tenant(self, max_sessions: int = 5, disk_quota_mb: int = 10, key: str | None = None,
                      company: str = "ООО Ромашка", email: str = "owner@example.test") -> dict[str, Any]:
        resp = self.call("POST", "/api/v1/tenants", self.operator_token,
                         {"company_name": company, "owner_email": email,
                          "tariff": {"max_sessions": max_sessions, "disk_quota_mb": disk_quota_mb}},
                         headers={"Idempotency-Key": key or uuid.uuid4().hex})
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def login(self, product_code: str, login: str, password: str, ip: str | None = None) -> Any:
        return self.call("POST", "/api/v1/auth/login",
                         json={"product_code": product_code, "login": login, "password": password},
                         ip=ip or next_client_ip())

    def admin_session(self, **tariff: Any) -> "Instance":
        created = self.create_tenant(**tariff)
        resp = self.login(created["product_code"], "admin", created["admin"]["password"])
        assert resp.status_code == 200, resp.text
        return Instance(self, created, resp.json())

    def rpc(self) -> ClusterRpcProxy:
        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=30)

    def sql(self, statement: str, **params: Any) -> Any:
        with self.auth_db.begin() as conn:
            return conn.execute(sa.text(statement), params)

    def close(self) -> None:
        self.auth_db.dispose()


class Instance:
    """A tenant with its admin signed in."""

    def __init__(self, suite: AuthSuite, created: dict[str, Any], tokens: dict[str, Any]) -> None:
        self.suite = suite
        self.product_code = created["product_code"]
        self.tenant_id = created["tenant_id"]
        self.admin_password = created["admin"]["password"]
        self.tokens = tokens
        self.token = tokens["access_token"]
        self.admin_id = tokens["user"]["id"]

    def add_user(self, login: str, password: str = "User-pass-0001") -> str:
        resp = self.suite.call("POST", "/api/v1/users", self.token,
                               {"full_name": f"Пользователь {login}", "login": login, "password": password,
                                "password_confirm": password})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


@pytest.fixture(scope="module")
def smtp_lab(tmp_path_factory: Any) -> Any:
    lab = SmtpLab(tmp_path_factory.mktemp("smtp")).start()
    # the auth service verifies the server certificate against SSL_CERT_FILE (as in production)
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(lab.cert_file)
    yield lab
    if previous is None:
        os.environ.pop("SSL_CERT_FILE", None)
    else:
        os.environ["SSL_CERT_FILE"] = previous
    lab.stop()


@pytest.fixture(scope="module")
def auth_suite(amqp_uri: str, databases: Any, smtp_lab: SmtpLab) -> Any:
    from tests.conftest import Containers

    containers = Containers(amqp_uri, databases)
    suite = AuthSuite(containers, smtp_lab)
    yield suite
    suite.close()
    containers.stop_all()
