"""Helpers shared by the benchmarks: a throwaway vhost and databases, and percentiles."""
from __future__ import annotations

import contextlib
import statistics
from typing import Any, Iterator

from crm_shared.testing import Databases, RabbitVhost


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000
    return {"p50_ms": round(pct(0.50), 3), "p90_ms": round(pct(0.90), 3), "p99_ms": round(pct(0.99), 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "samples": len(ordered)}


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[str, Databases]]:
    vhost = RabbitVhost()
    uri = vhost.create()
    dbs = Databases()
    try:
        yield uri, dbs
    finally:
        dbs.drop_all()
        vhost.delete()


def start(service_cls: Any, config: dict[str, Any]) -> Any:
    from nameko.containers import ServiceContainer

    container = ServiceContainer(service_cls, config)
    container.start()
    return container
