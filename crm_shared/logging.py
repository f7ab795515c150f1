"""JSON-line logging carrying tenant, user and request id.

The ids live in a (greenthread-)local set per worker by ``RequestContext``
and travel between services in nameko's context data (message headers)."""
from __future__ import annotations

import json
import logging
import logging.config
import threading
import time
from typing import Any

from nameko.extensions import DependencyProvider

CONTEXT_KEYS = ("tenant_id", "user_id", "request_id")
_local = threading.local()  # greenthread-local once eventlet has monkey-patched threading


def current_context() -> dict[str, Any]:
    return dict(getattr(_local, "ctx", None) or {})


def set_context(**values: Any) -> None:
    ctx = current_context()
    ctx.update({k: v for k, v in values.items() if v is not None})
    _local.ctx = ctx


def clear_context() -> None:
    _local.ctx = {}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service:
            entry["service"] = self.service
        entry.update(current_context())
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "service": service}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    logging.config.dictConfig({
        "version": 1,
        # nameko's worker tracebacks come from loggers created at import time.
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "kombu": {"level": "WARNING"},
            "amqp": {"level": "WARNING"},
            "alembic": {"level": "INFO"},
            "nameko": {"level": "INFO"},
        },
    })


class RequestContext(DependencyProvider):
    """Binds the worker's context data (tenant, user, request id) to the log
    context; ``set(...)`` also adds it to what outgoing RPCs and events carry."""

    class Handle:
        def __init__(self, worker_ctx: Any) -> None:
            self._worker_ctx = worker_ctx

        def get(self, key: str) -> Any:
            return self._worker_ctx.context_data.get(key)

        def set(self, **values: Any) -> None:
            for key, value in values.items():
                if value is not None:
                    # .data, not .context_data: the latter is a fresh copy on every access
                    self._worker_ctx.data[key] = value
            set_context(**values)

    def get_dependency(self, worker_ctx: Any) -> "RequestContext.Handle":
        return RequestContext.Handle(worker_ctx)

    def worker_setup(self, worker_ctx: Any) -> None:
        clear_context()
        data = worker_ctx.context_data
        set_context(**{k: data.get(k) for k in CONTEXT_KEYS})

    def worker_teardown(self, worker_ctx: Any) -> None:
        clear_context()
