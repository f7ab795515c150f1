"""Prometheus metrics: one process-wide registry that tests can reset, a
DependencyProvider timing every entrypoint, and the per-service ops HTTP
server (``/metrics``, ``/healthz``, ``/readyz``) on ``METRICS_PORT``."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

import eventlet
import eventlet.wsgi
from nameko.extensions import DependencyProvider
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class MetricsRegistry:
    """Get-or-create access to metrics, so modules never hold a stale object after ``reset``."""

    def __init__(self) -> None:
        self._metrics: dict[str, Any] = {}
        self.registry = self._new_registry()

    @staticmethod
    def _new_registry() -> CollectorRegistry:
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, fds
        return registry

    def _get(self, kind: type, name: str, doc: str, labels: Iterable[str], **kw: Any) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            metric = kind(name, doc, list(labels), registry=self.registry, **kw)
            self._metrics[name] = metric
        return metric

    def counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return self._get(Counter, name, doc, labels)

    def gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return self._get(Gauge, name, doc, labels)

    def histogram(self, name: str, doc: str, labels: Iterable[str] = (),
                  buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
        return self._get(Histogram, name, doc, labels, buckets=buckets)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent); for tests and health checks."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def reset(self) -> None:
        self.registry = self._new_registry()
        self._metrics = {}


METRICS = MetricsRegistry()


def entrypoint_duration() -> Histogram:
    return METRICS.histogram(
        "crm_entrypoint_duration_seconds",
        "Time spent in a service entrypoint (RPC, event handler, HTTP route, timer).",
        ("service", "entrypoint", "outcome"),
    )


def entrypoint_calls() -> Counter:
    return METRICS.counter(
        "crm_entrypoint_calls_total",
        "Entrypoint calls by outcome: success, expected_error (a domain error) or error.",
        ("service", "entrypoint", "outcome"),
    )


class EntrypointMetrics(DependencyProvider):
    """Records latency and outcome for every worker of the service."""

    def __init__(self) -> None:
        self._started: dict[Any, float] = {}

    def worker_setup(self, worker_ctx: Any) -> None:
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        if exc_info is None:
            outcome = "success"
        elif isinstance(exc_info[1], worker_ctx.entrypoint.expected_exceptions):
            outcome = "expected_error"
        else:
            outcome = "error"
        labels = (self.container.service_name, worker_ctx.entrypoint.method_name, outcome)
        entrypoint_duration().labels(*labels).observe(time.perf_counter() - started)
        entrypoint_calls().labels(*labels).inc()

    def worker_teardown(self, worker_ctx: Any) -> None:
        self._started.pop(worker_ctx, None)


ReadinessCheck = Callable[[], None]  # raises when not ready


class OpsServer:
    """Tiny WSGI server for probes and scraping, run in a greenthread."""

    def __init__(self, port: int, readiness_checks: dict[str, ReadinessCheck]) -> None:
        self.port = port
        self.checks = readiness_checks
        self._thread: Any = None
        self._socket: Any = None

    def readiness(self) -> dict[str, str]:
        results = {}
        gauge = METRICS.gauge("crm_readiness_check_up", "1 when a readiness check of this process passes.",
                              ("check",))
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # a probe reports, it never raises
                results[name] = f"down: {exc.__class__.__name__}: {exc}"[:300]
            gauge.labels(name).set(1 if results[name] == "ok" else 0)
        return results

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        import json

        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            self.readiness()  # so a scrape also sees crm_readiness_check_up
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [METRICS.exposition()]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok"}']
        if path == "/readyz":
            checks = self.readiness()
            ok = all(v == "ok" for v in checks.values())
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"status": "ok" if ok else "unavailable", "checks": checks}).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def start(self) -> int:
        self._socket = eventlet.listen(("0.0.0.0", self.port))
        self.port = self._socket.getsockname()[1]
        self._thread = eventlet.spawn(
            eventlet.wsgi.server, self._socket, self.app, log_output=False, log=logging.getLogger("ops")
        )
        return self.port

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.kill()
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
