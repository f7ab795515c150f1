"""DependencyProviders for the auth service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``): its parsed
settings and signing keys, the platform mailer, and a timer whose interval
comes from the configuration."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider

from crm_shared.config import settings_of
from services.auth import mailer
from services.auth.metrics import platform_mail
from services.auth.sessions import SessionPolicy
from services.auth.settings import Settings
from services.auth.throttle import ThrottlePolicy
from services.auth.tokens import SigningKeys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthConfig:
    keys: SigningKeys
    sessions: SessionPolicy
    throttle: ThrottlePolicy
    reservation_ttl_seconds: int


class AuthSettings(DependencyProvider):
    """Injects ``AuthConfig``: keys parsed once at start (a bad key stops the service)."""

    def setup(self) -> None:
        s = settings_of(self.container.config, Settings)
        self.value = AuthConfig(
            keys=SigningKeys.from_spec(s.AUTH_SIGNING_KEYS),
            sessions=SessionPolicy.from_settings(s),
            throttle=ThrottlePolicy.from_settings(s),
            reservation_ttl_seconds=s.AUTH_STORAGE_RESERVATION_TTL_SECONDS,
        )

    def get_dependency(self, worker_ctx: Any) -> AuthConfig:
        return self.value


class PlatformMailer(DependencyProvider):
    """Sends the new instance's credentials in the background (after the
    creating transaction committed), retrying a failing server a few times.
    The creation never waits for, nor fails on, the mail server."""

    attempts = 3

    def setup(self) -> None:
        self.settings = mailer.SmtpSettings.from_settings(settings_of(self.container.config, Settings))
        self.pending: set[Any] = set()

    def stop(self) -> None:
        # let sends in flight finish (bounded by their timeouts)
        for thread in list(self.pending):
            with eventlet.Timeout(self.settings.timeout * self.attempts + 5, False):
                thread.wait()

    def kill(self) -> None:
        for thread in list(self.pending):
            thread.kill()

    def _send(self, msg: Any) -> None:
        delay = 1.0
        for attempt in range(1, self.attempts + 1):
            try:
                mailer.send(self.settings, msg)
                platform_mail().labels("sent").inc()
                log.info("sent new instance credentials", extra={"fields": {"to": msg["To"]}})
                return
            except Exception as exc:  # the server's problem must not leak as a crash
                log.warning("platform mail failed (attempt %s of %s): %s: %s", attempt, self.attempts,
                            exc.__class__.__name__, exc)
                if attempt < self.attempts:
                    eventlet.sleep(delay)
                    delay *= 4
        platform_mail().labels("failed").inc()

    class Handle:
        def __init__(self, provider: "PlatformMailer") -> None:
            self._provider = provider

        @property
        def enabled(self) -> bool:
            return self._provider.settings.enabled

        def send_welcome(self, to: str, company_name: str, product_code: str, password: str) -> str:
            """"queued" or "disabled"."""
            provider = self._provider
            if not provider.settings.enabled:
                platform_mail().labels("disabled").inc()
                return "disabled"
            msg = mailer.welcome_message(provider.settings.sender, to, company_name, product_code, password)
            thread = provider.container.spawn_managed_thread(lambda: provider._send(msg))
            provider.pending.add(thread)
            thread.link(lambda gt: provider.pending.discard(gt))
            return "queued"

    def get_dependency(self, worker_ctx: Any) -> "PlatformMailer.Handle":
        return PlatformMailer.Handle(self)
