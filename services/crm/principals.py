"""The callers' principals (effective rights), cached in the crm process.

A principal comes from ``users.get_principal(tenant_id, user_id)`` on first
use and is kept for ``CRM_PRINCIPAL_TTL_SECONDS`` at most. The users service
publishes ``principal_changed`` (``{"tenant_id", "user_ids": [...] | null}``)
whenever roles, positions, departments or users change; every crm replica
gets it on a broadcast queue of its own and drops those principals (all of
the tenant's when ``user_ids`` is null), so a role change applies to the next
request. The TTL is the safety net for a replica that missed an event while
its broker connection was down (broadcast queues are not durable).

A generation number per tenant keeps a principal fetched while a change
was being announced from being stored stale."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from crm_shared.metrics import METRICS

Key = tuple[str, str]


def _lookups() -> Any:
    return METRICS.counter("crm_crm_principal_cache_total",
                           "Principal cache lookups in the crm service by result (hit, miss).", ("result",))


def _invalidations() -> Any:
    return METRICS.counter("crm_crm_principal_invalidations_total",
                           "Principals dropped from the crm service's cache on principal_changed.")


class PrincipalCache:
    def __init__(self, ttl_seconds: float = 30.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Key, tuple[float, dict[str, Any]]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._global = 0
        self._lock = threading.Lock()

    def _generation(self, tenant_id: str) -> tuple[int, int]:
        return self._global, self._generations.get(tenant_id, 0)

    def get(self, tenant_id: str, user_id: str, fetch: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = (tenant_id, user_id)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(key)
                _lookups().labels("hit").inc()
                return entry[1]
            generation = self._generation(tenant_id)
        _lookups().labels("miss").inc()
        principal = fetch()
        with self._lock:
            if self._generation(tenant_id) == generation:
                self._entries[key] = (now + self.ttl, principal)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return principal

    def invalidate(self, tenant_id: str | None, user_ids: list[str] | None = None) -> int:
        """Drops the tenant's principals (those of ``user_ids`` only, when given;
        every tenant's when ``tenant_id`` is None). Returns how many were dropped."""
        with self._lock:
            if tenant_id is None:
                self._global += 1
                dropped = len(self._entries)
                self._entries.clear()
                self._generations.clear()
            else:
                self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
                wanted = None if user_ids is None else {str(u) for u in user_ids}
                doomed = [k for k in self._entries if k[0] == tenant_id and (wanted is None or k[1] in wanted)]
                for key in doomed:
                    del self._entries[key]
                dropped = len(doomed)
        _invalidations().inc()
        return dropped

    def __len__(self) -> int:
        return len(self._entries)
