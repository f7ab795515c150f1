# eventlet must patch before anything imports socket/threading (nameko's rule)
import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import psycogreen.eventlet  # noqa: E402

psycogreen.eventlet.patch_psycopg()

from crm_shared import codec  # noqa: E402

codec.install()  # as the runner does in every process

import os  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402

from crm_shared.layout import SERVICES  # noqa: E402
from crm_shared.metrics import METRICS  # noqa: E402
from crm_shared.testing import Databases, RabbitVhost, start_service  # noqa: E402


@pytest.fixture(scope="session")
def rabbit() -> Any:
    vhost = RabbitVhost()
    vhost.amqp_uri = vhost.create()
    yield vhost
    vhost.delete()


@pytest.fixture(scope="session")
def amqp_uri(rabbit: RabbitVhost) -> str:
    return rabbit.amqp_uri


@pytest.fixture(scope="session")
def databases() -> Any:
    dbs = Databases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(autouse=True)
def fresh_metrics() -> None:
    METRICS.reset()


class Containers:
    """Starts nameko containers in this process; stops them all at the end."""

    def __init__(self, amqp_uri: str, databases: Databases) -> None:
        self.amqp_uri = amqp_uri
        self.databases = databases
        self.started: list[ServiceContainer] = []

    def start(self, service_cls: Any, config: dict[str, Any]) -> ServiceContainer:
        container = ServiceContainer(service_cls, config)
        container.start()
        self.started.append(container)
        return container

    def start_named(self, name: str, **overrides: Any) -> ServiceContainer:
        if name == "telephony":
            # no SIP engine processes beside other areas' tests (tests/telephony sets its own in the environment)
            overrides.setdefault("TELEPHONY_ENGINE_WORKERS", os.environ.get("TELEPHONY_ENGINE_WORKERS", "0"))
        container, _ = start_service(name, self.amqp_uri, self.databases, **overrides)
        self.started.append(container)
        return container

    def stop_all(self) -> None:
        # in parallel: each nameko container takes ~1.5 s to drain its consumer
        pool = eventlet.GreenPool()
        for container in reversed(self.started):
            pool.spawn(container.stop)
        pool.waitall()
        self.started.clear()


@pytest.fixture
def containers(amqp_uri: str, databases: Databases) -> Any:
    c = Containers(amqp_uri, databases)
    yield c
    c.stop_all()


class Suite:
    def __init__(self, containers: Containers) -> None:
        self.containers = containers
        self.by_name: dict[str, ServiceContainer] = {}
        for name in SERVICES:
            self.by_name[name] = containers.start_named(name)
        gateway = containers.start_named("gateway")
        self.by_name["gateway"] = gateway
        self.url = f"http://{gateway.config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', '127.0.0.1')}"
        self.operator_token = gateway.config["CRM_OPERATOR_TOKEN"]


def suite_with_env(amqp_uri: str, databases: Databases, env: dict[str, str]) -> Any:
    """A module's whole suite started with ``env`` in the environment (the services read it through
    their config.yaml), restored afterwards; a generator for a fixture to ``yield from``."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    containers = Containers(amqp_uri, databases)
    try:
        yield Suite(containers)
    finally:
        containers.stop_all()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def private_containers(databases: Databases) -> Any:
    """Containers on a vhost of their own, for tests that stop or break services."""
    vhost = RabbitVhost()
    c = Containers(vhost.create(), databases)
    yield c
    c.stop_all()
    vhost.delete()


@pytest.fixture(scope="module")
def suite(amqp_uri: str, databases: Databases) -> Any:
    """All six services and the gateway, started once per test module."""
    c = Containers(amqp_uri, databases)
    s = Suite(c)
    yield s
    c.stop_all()


@pytest.fixture(scope="session", autouse=True)
def auth_signing_keys() -> Any:
    """The auth service requires AUTH_SIGNING_KEYS (no built-in default): one key per test session."""
    import os

    from services.auth.tokens import generate_key_spec

    if os.environ.get("AUTH_SIGNING_KEYS"):
        yield os.environ["AUTH_SIGNING_KEYS"]
        return
    os.environ["AUTH_SIGNING_KEYS"] = generate_key_spec("test1")
    yield os.environ["AUTH_SIGNING_KEYS"]
    os.environ.pop("AUTH_SIGNING_KEYS", None)
