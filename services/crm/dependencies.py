"""DependencyProviders for the crm service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``)."""
from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider

from crm_shared.config import settings_of
from services.crm.principals import PrincipalCache
from services.crm.settings import Settings


class Principals(DependencyProvider):
    """The process-wide principal cache (``services.crm.principals``)."""

    cache: PrincipalCache

    def setup(self) -> None:
        settings = settings_of(self.container.config, Settings)
        self.cache = PrincipalCache(settings.CRM_PRINCIPAL_TTL_SECONDS, settings.CRM_PRINCIPAL_CACHE_SIZE)

    def get_dependency(self, worker_ctx: Any) -> PrincipalCache:
        return self.cache
