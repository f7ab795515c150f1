"""Test infrastructure against the real RabbitMQ and PostgreSQL: a fresh
vhost per test session (through the management API), fresh databases, and
nameko containers configured from each service's own ``config.yaml``."""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import sqlalchemy as sa

from crm_shared.config import load_settings
from crm_shared.db import make_engine
from crm_shared.layout import ROOT, package_of

ADMIN_DATABASE_URL = os.environ.get("CRM_TEST_ADMIN_DATABASE_URL", "postgresql://crm:crm@127.0.0.1:5432/postgres")
RABBIT_MGMT_URL = os.environ.get("CRM_TEST_RABBIT_MGMT_URL", "http://guest:guest@127.0.0.1:15672")
RABBIT_AMQP_BASE = os.environ.get("CRM_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
TEST_SECRET_KEYS = "test1:" + "A" * 43  # 32 zero-ish bytes, test only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RabbitVhost:
    def __init__(self) -> None:
        self.name = f"crm-test-{uuid.uuid4().hex[:10]}"
        self.session = requests.Session()
        self.session.headers["content-type"] = "application/json"

    def _url(self, path: str) -> str:
        base = RABBIT_MGMT_URL
        creds, _, host = base.partition("://")[2].rpartition("@")
        user, _, password = creds.partition(":")
        self.session.auth = (user, password)
        return f"{base.partition('://')[0]}://{host}/api/{path}"

    def create(self) -> str:
        vhost = quote(self.name, safe="")
        self.session.put(self._url(f"vhosts/{vhost}"), timeout=10).raise_for_status()
        user = self.session.auth[0] if isinstance(self.session.auth, tuple) else "guest"
        self.session.put(self._url(f"permissions/{vhost}/{user}"),
                         json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
        return f"{RABBIT_AMQP_BASE}/{vhost}"

    def queue(self, name: str) -> dict[str, Any] | None:
        resp = self.session.get(self._url(f"queues/{quote(self.name, safe='')}/{quote(name, safe='')}"), timeout=10)
        return resp.json() if resp.status_code == 200 else None

    def delete(self) -> None:
        self.session.delete(self._url(f"vhosts/{quote(self.name, safe='')}"), timeout=10)


class Databases:
    """Creates uniquely named databases and drops them all at the end."""

    def __init__(self) -> None:
        self.engine = make_engine(ADMIN_DATABASE_URL, pool_size=1)
        self.created: list[str] = []
        self.prefix = f"crm_test_{uuid.uuid4().hex[:8]}"

    def create(self, label: str) -> str:
        name = f"{self.prefix}_{label}_{len(self.created)}"
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return sa.make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in self.created:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                             {"n": name})
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        self.engine.dispose()


def service_config(name: str, amqp_uri: str, database_url: str | None = None,
                   **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """The service's real config.yaml, pointed at the test vhost and database."""
    env = dict(os.environ)
    env.update({
        "AMQP_URI": amqp_uri,
        "CRM_OPERATOR_TOKEN": env.get("CRM_OPERATOR_TOKEN", "test-operator-token-0123456789"),
        "CRM_SECRET_KEYS": TEST_SECRET_KEYS,
        "OUTBOX_POLL_SECONDS": "0.2",
        "EVENT_RETRY_DELAYS_SECONDS": "0.05,0.1,0.2",
        "RPC_TIMEOUT_SECONDS": "5",
        "LOG_FORMAT": "text",
    })
    up = name.upper()
    env[f"{up}_METRICS_PORT"] = "0"
    if database_url:
        env[f"{up}_DATABASE_URL"] = database_url
    if name == "gateway":
        env["GATEWAY_PORT"] = str(free_port())
    env.update({k: str(v) for k, v in overrides.items()})
    folder = Path(ROOT, package_of(name).replace(".", "/"))
    import importlib

    settings_cls = importlib.import_module(f"{package_of(name)}.settings").Settings
    return load_settings(settings_cls, folder / "config.yaml", env)


class TcpProxy:
    """A loopback TCP proxy a test can cut and restore, to take a broker away
    from one client without touching the machine's own RabbitMQ."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cut_off = False
        self._server: Any = None
        self._conns: list[Any] = []
        self._pipes: list[Any] = []
        self._thread: Any = None

    def start(self) -> "TcpProxy":
        import eventlet

        self._server = eventlet.listen(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = eventlet.spawn(self._accept)
        return self

    def _accept(self) -> None:
        import eventlet

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                continue
            try:
                upstream = eventlet.connect(self.target)
            except OSError:
                client.close()
                continue
            self._conns += [client, upstream]
            self._pipes += [eventlet.spawn(self._pipe, client, upstream), eventlet.spawn(self._pipe, upstream, client)]

    @staticmethod
    def _pipe(src: Any, dst: Any) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, EOFError):  # eventlet raises EOFError on a socket closed under it
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass

    def cut(self) -> None:
        """Drop every live connection and refuse new ones."""
        self.cut_off = True
        # kill the pipes first: a greenthread left reading a closed fd would
        # collide with whatever socket reuses that fd number next
        pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            pipe.kill()
        conns, self._conns = self._conns, []
        for sock in conns:
            try:
                sock.close()
            except OSError:
                pass

    def restore(self) -> None:
        self.cut_off = False

    def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        if self._thread is not None:
            self._thread.kill()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05, message: str = "condition") -> Any:
    """Polls ``predicate`` until it returns something truthy; fails after ``timeout``.
    ``time.sleep`` is eventlet's where eventlet is patched in (tests/, bench/) and the
    plain one where it is not (the console's browser tests)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def migrated_database(databases: Databases, name: str, label: str | None = None) -> str:
    """A fresh database (``label`` names it) at the head of service ``name``'s migrations."""
    from crm_shared.migrations import migrate

    url = databases.create(label or name)
    migrate(url, Path(ROOT, package_of(name).replace(".", "/"), "migrations"), name)
    return url


def start_service(name: str, amqp_uri: str, databases: Databases, **overrides: Any) -> tuple[Any, str | None]:
    """Starts one of the suite's services in this process on a fresh, migrated
    database (none for the gateway); returns the container and the database URL."""
    import importlib

    from nameko.containers import ServiceContainer

    url = migrated_database(databases, name) if name != "gateway" else None
    _, config = service_config(name, amqp_uri, url, **overrides)
    container = ServiceContainer(importlib.import_module(f"{package_of(name)}.service").SERVICE, config)
    container.start()
    return container, url


class ApiClient:
    """An HTTP client of the gateway's ``/api/v1`` for one signed-in user (tests)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}/api/v1{path}", timeout=15, **kwargs)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.call("POST", path, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.call("PATCH", path, json=body)

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None, status: int = 200,
           **params: Any) -> Any:
        """The JSON answer, asserting the status."""
        resp = self.call(method, path, json=body, params=params or None)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def all(self, kind: str, page_size: int = 3, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, following next_cursor."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.ok("GET", f"/{kind}", limit=page_size, **params, **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items


STRONG = "Uvarov-2024pass"


class Api(ApiClient):
    """A logged-in HTTP client for one user of one tenant."""

    def __init__(self, base: str, token: str, tenant_id: str = "", user_id: str = "") -> None:
        super().__init__(base, token)
        self.tenant_id = tenant_id
        self.user_id = user_id

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.call("GET", path, params=params)


def error_of(resp: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    return dict(error)


def run_suite_output(proc: Any, timeout: float = 150) -> str:
    """What ``scripts/run_suite.py`` printed until it said it is up (or stopped saying anything)."""
    import time

    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    return "".join(lines)


class Instance:
    def __init__(self, suite: Any, disk_quota_mb: int = 100) -> None:
        self.base = suite.url
        resp = requests.post(f"{suite.url}/api/v1/tenants", timeout=30,
                             headers={"Authorization": f"Bearer {suite.operator_token}"},
                             json={"company_name": "ООО Ромашка", "owner_email": "owner@example.test",
                                   "tariff": {"max_sessions": 50, "disk_quota_mb": disk_quota_mb}})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        self.product_code = body["product_code"]
        self.admin_password = body["admin"]["password"]
        self.admin = self.login("admin", self.admin_password)
        self.tenant_id = self.admin.tenant_id

    def login(self, login: str, password: str = STRONG) -> Api:
        resp = requests.post(f"{self.base}/api/v1/auth/login", timeout=15,
                             json={"product_code": self.product_code, "login": login, "password": password})
        assert resp.status_code == 200, resp.text
        api = Api(self.base, resp.json()["access_token"])
        me = api.ok("GET", "/auth/me")
        api.tenant_id, api.user_id = me["tenant_id"], me["user"]["id"]
        return api

    def role_id(self, builtin: str) -> str:
        return next(r["id"] for r in self.admin.ok("GET", "/roles")["items"] if r["builtin"] == builtin)

    def department(self, name: str, parent_id: str | None = None) -> str:
        body = {"name": name, **({"parent_id": parent_id} if parent_id else {})}
        return str(self.admin.ok("POST", "/departments", body, status=201)["id"])

    def staff(self, login: str, department_id: str, role_id: str) -> Api:
        position = self.admin.ok("POST", "/positions", {"title": f"должность {login}", "department_id": department_id,
                                                        "role_id": role_id}, status=201)
        self.admin.ok("POST", "/users", {"full_name": f"Пользователь {login}", "login": login, "password": STRONG,
                                         "password_confirm": STRONG, "position_ids": [position["id"]]}, status=201)
        return self.login(login)


class GatewayProcess:
    """A gateway replica as its own process (``python -m crm_shared.runner gateway``) on the
    test vhost: what a second replica in production is, with its own token store, broker
    connections and broadcast queues."""

    def __init__(self, amqp_uri: str, **env: str) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = dict(os.environ)
        environ.update({"AMQP_URI": amqp_uri, "GATEWAY_PORT": str(self.port), "GATEWAY_METRICS_PORT": "0",
                        "CRM_OPERATOR_TOKEN": environ.get("CRM_OPERATOR_TOKEN", "test-operator-token-0123456789"),
                        "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING", **env})
        self.log = Path(ROOT, ".run", "test-logs")
        self.log.mkdir(parents=True, exist_ok=True)
        with open(self.log / f"gateway-{self.port}.log", "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "crm_shared.runner", "gateway"], cwd=ROOT,
                                         env=environ, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=30, message="the gateway process")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the gateway process exited: {(self.log / f'gateway-{self.port}.log').read_text()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except Exception:
            self.proc.kill()
