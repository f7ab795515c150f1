"""DependencyProviders of the gateway."""
from __future__ import annotations

from typing import Any

import eventlet
from nameko.extensions import DependencyProvider

from crm_shared.config import settings_of
from crm_shared.errors import CrmError
from crm_shared.layout import SERVICES
from crm_shared.service import check_broker
from gateway.settings import Settings


class Readiness(DependencyProvider):
    """Checks the broker and sends a ``health`` RPC to every service at once,
    each bounded by ``READYZ_TIMEOUT_SECONDS``."""

    def get_dependency(self, worker_ctx: Any) -> "Readiness.Checker":
        return Readiness.Checker(settings_of(self.container.config, Settings))

    class Checker:
        def __init__(self, settings: Settings) -> None:
            self.amqp_uri = settings.AMQP_URI
            self.timeout = settings.READYZ_TIMEOUT_SECONDS

        def run(self, cluster: Any) -> dict[str, str]:
            fast = cluster.with_timeout(self.timeout)

            def guarded(name: str, check: Any) -> str:
                # a greenthread must not die raising: eventlet would print its traceback
                try:
                    return str(check())
                except CrmError as exc:
                    return f"down: {exc.message}"
                except Exception as exc:
                    return f"down: {exc.__class__.__name__}: {exc}"[:300]

            def broker() -> str:
                check_broker(self.amqp_uri, self.timeout)
                return "ok"

            def service(name: str) -> str:
                answer = getattr(fast, name).health()
                return "ok" if answer.get("status") == "ok" else f"down: {answer}"

            jobs = {"broker": eventlet.spawn(guarded, "broker", broker)}
            for name in SERVICES:
                jobs[name] = eventlet.spawn(guarded, name, lambda n=name: service(n))
            results = {name: job.wait() for name, job in jobs.items()}
            return results
