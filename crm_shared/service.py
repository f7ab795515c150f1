"""What every service class shares: entrypoint metrics, log context, the ops
HTTP server (metrics and probes) and the ``health`` RPC."""
from __future__ import annotations

from typing import Any

from kombu import Connection
from nameko.extensions import DependencyProvider
from sqlalchemy import text

from crm_shared.config import ServiceSettings, settings_of
from crm_shared.db import Database
from crm_shared.logging import RequestContext
from crm_shared.metrics import EntrypointMetrics, OpsServer
from crm_shared.outbox import Outbox
from crm_shared.rpc import rpc


def check_broker(amqp_uri: str, timeout: float = 2.0) -> None:
    with Connection(amqp_uri, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


class OpsEndpoint(DependencyProvider):
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on ``METRICS_PORT``."""

    server: OpsServer | None = None

    def setup(self) -> None:
        config = self.container.config
        checks: dict[str, Any] = {"broker": lambda: check_broker(config["AMQP_URI"])}
        for dep in self.container.dependencies:
            if isinstance(dep, Database):
                checks["database"] = dep.check
        self.server = OpsServer(int(settings_of(config, ServiceSettings).METRICS_PORT or 0), checks)

    def start(self) -> None:
        assert self.server is not None
        self.port = self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    kill = stop


class ServiceBase:
    """Base of every service class (``name`` set by the subclass)."""

    name: str
    metrics = EntrypointMetrics()
    context = RequestContext()
    ops = OpsEndpoint()


class DatabaseServiceBase(ServiceBase):
    """A service that owns a database (every service but the gateway)."""

    db: Any = Database()
    outbox: Any = Outbox()

    @rpc
    def health(self) -> dict[str, str]:
        self.db.execute(text("SELECT 1"))
        return {"service": self.name, "status": "ok"}
