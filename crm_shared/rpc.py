"""RPC between services with a timeout. nameko's RpcProxy waits forever; a
call through ``ServiceRpc`` gives up after ``RPC_TIMEOUT_SECONDS`` (or the
per-proxy timeout) and raises ``ServiceUnavailable`` naming the service. The
request carries the same expiry, so a stopped service does not run it long
after the caller gave up."""
from __future__ import annotations

from typing import Any

import eventlet
from nameko.exceptions import UnknownService
from nameko.rpc import MethodProxy, RpcProxy, ServiceProxy

from crm_shared.config import ServiceSettings, settings_of
from crm_shared.errors import ServiceUnavailable
from crm_shared.metrics import METRICS


def _timeouts_total() -> Any:
    return METRICS.counter("crm_rpc_client_timeouts_total",
                           "RPC calls that got no answer in time.", ("service", "target"))


class TimedMethodProxy(MethodProxy):
    def __init__(self, worker_ctx: Any, service_name: str, method_name: str, reply_listener: Any,
                 timeout: float, **options: Any) -> None:
        self.timeout = timeout
        options.setdefault("expiration", timeout)
        super().__init__(worker_ctx, service_name, method_name, reply_listener, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            reply = self._call(*args, **kwargs)
        except UnknownService:
            raise ServiceUnavailable(f"service '{self.service_name}' is not running",
                                     details={"service": self.service_name}) from None
        try:
            with eventlet.Timeout(self.timeout):
                return reply.result()
        except eventlet.Timeout:
            self._forget(reply)
            _timeouts_total().labels(self.worker_ctx.container.service_name, self.service_name).inc()
            raise ServiceUnavailable(
                f"service '{self.service_name}' did not answer within {self.timeout:g}s",
                details={"service": self.service_name},
            ) from None


    def _forget(self, reply: Any) -> None:
        # the reply listener would otherwise keep the abandoned wait forever
        pending = self.reply_listener._reply_events
        for key, event in list(pending.items()):
            if event is reply.reply_event:
                pending.pop(key, None)


class TimedServiceProxy(ServiceProxy):
    def __init__(self, worker_ctx: Any, service_name: str, reply_listener: Any, timeout: float,
                 **options: Any) -> None:
        super().__init__(worker_ctx, service_name, reply_listener, **options)
        self.timeout = timeout

    def __getattr__(self, name: str) -> TimedMethodProxy:
        return TimedMethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener,
                                self.timeout, **self.options)


class ServiceRpc(RpcProxy):
    """``users = ServiceRpc("users")`` then ``self.users.get_principal(...)``."""

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any) -> None:
        super().__init__(target_service, **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx: Any) -> TimedServiceProxy:
        timeout = self.timeout or settings_of(self.container.config, ServiceSettings).RPC_TIMEOUT_SECONDS
        return TimedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, timeout,
                                 **self.options)


class ClusterRpc(RpcProxy):
    """Proxies to any service by name: ``self.cluster.users.get_principal(...)``;
    ``self.cluster.with_timeout(1).auth.health()`` for a shorter wait."""

    def __init__(self, timeout: float | None = None, **options: Any) -> None:
        super().__init__("", **options)
        self.timeout = timeout

    def get_dependency(self, worker_ctx: Any) -> "ClusterHandle":
        timeout = self.timeout or settings_of(self.container.config, ServiceSettings).RPC_TIMEOUT_SECONDS
        return ClusterHandle(worker_ctx, self.rpc_reply_listener, timeout, self.options)


class ClusterHandle:
    def __init__(self, worker_ctx: Any, reply_listener: Any, timeout: float, options: dict[str, Any]) -> None:
        self._worker_ctx = worker_ctx
        self._reply_listener = reply_listener
        self._timeout = timeout
        self._options = options

    def with_timeout(self, timeout: float) -> "ClusterHandle":
        return ClusterHandle(self._worker_ctx, self._reply_listener, timeout, self._options)

    def __getattr__(self, service_name: str) -> TimedServiceProxy:
        if service_name.startswith("_"):
            raise AttributeError(service_name)
        return TimedServiceProxy(self._worker_ctx, service_name, self._reply_listener, self._timeout,
                                 **self._options)
