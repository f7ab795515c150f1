"""DependencyProviders for the crm service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``)."""
from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider

from services.crm.principals import PrincipalCache


class Principals(DependencyProvider):
    """The process-wide principal cache (``services.crm.principals``)."""

    cache: PrincipalCache

    def setup(self) -> None:
        config = self.container.config
        self.cache = PrincipalCache(float(config.get("CRM_PRINCIPAL_TTL_SECONDS", 30)),
                                    int(config.get("CRM_PRINCIPAL_CACHE_SIZE", 10_000)))

    def get_dependency(self, worker_ctx: Any) -> PrincipalCache:
        return self.cache
