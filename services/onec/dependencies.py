"""DependencyProviders for the onec service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``)."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable

import eventlet
from nameko.extensions import DependencyProvider

Key = tuple[Any, ...]


class PagePrefetch(DependencyProvider):
    """The crm page an export asks for next, fetched while this one is written and sent.

    An export is a chain of calls, each needing the cursor the last one returned: without
    this, the crm service's page query and this service's CSV writing take turns. A page
    not asked for within ``ttl`` seconds (the client went away, or the next call went to
    another replica, which then fetches it itself) is dropped; at most ``size`` are held."""

    def __init__(self, ttl: float = 30.0, size: int = 16) -> None:
        self.ttl, self.size = ttl, size
        self.pages: OrderedDict[Key, tuple[float, Any]] = OrderedDict()

    def get_dependency(self, worker_ctx: Any) -> "PagePrefetch":
        return self

    def take(self, key: Key) -> Any | None:
        """The fetch started for ``key`` (wait() gives the page or raises its error), or None."""
        entry = self.pages.pop(key, None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def fetch_ahead(self, key: Key, fetch: Callable[[], Any]) -> None:
        self.pages[key] = (time.monotonic() + self.ttl, eventlet.spawn(fetch))
        while len(self.pages) > self.size:
            _, (_, stale) = self.pages.popitem(last=False)
            stale.kill()
