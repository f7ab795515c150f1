"""DependencyProviders for the users service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``)."""
from __future__ import annotations

from typing import Any

from eventlet import tpool
from nameko.extensions import DependencyProvider

from crm_shared.config import settings_of
from services.users.passwords import Hasher
from services.users.principal import PrincipalCache
from services.users.settings import Settings


class Principals(DependencyProvider):
    """The process's principal cache (one per service container)."""

    cache: PrincipalCache

    def setup(self) -> None:
        self.cache = PrincipalCache(settings_of(self.container.config, Settings).PRINCIPAL_CACHE_TENANTS)

    def get_dependency(self, worker_ctx: Any) -> PrincipalCache:
        return self.cache


class Passwords(DependencyProvider):
    """argon2id hashing, run in a native thread so the eventlet hub keeps
    serving other workers while a hash is computed."""

    hasher: Hasher

    def setup(self) -> None:
        self.hasher = Hasher(offload=tpool.execute)

    def get_dependency(self, worker_ctx: Any) -> Hasher:
        return self.hasher
