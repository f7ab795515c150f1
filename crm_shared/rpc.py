"""RPC between services with a timeout. nameko's RpcProxy waits forever; a
call through ``ServiceRpc`` gives up after ``RPC_TIMEOUT_SECONDS`` (or the
per-proxy timeout) and raises ``ServiceUnavailable`` naming the service. The
request carries the same expiry, so a stopped service does not run it long
after the caller gave up."""
from __future__ import annotations

import sys
from functools import partial
from typing import Any

import eventlet
import kombu.serialization
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import UnknownService, UnserializableValueError, serialize
from nameko.messaging import QueueConsumer
from nameko.rpc import (
    MethodProxy,
    ReplyListener,
    Responder,
    RpcConsumer,
    RpcProxy,
    ServiceProxy,
    get_rpc_exchange,
)
from nameko.rpc import Rpc as NamekoRpc

from crm_shared.config import ServiceSettings, settings_of
from crm_shared.errors import ServiceUnavailable
from crm_shared.metrics import METRICS


def _timeouts_total() -> Any:
    return METRICS.counter("crm_rpc_client_timeouts_total",
                           "RPC calls that got no answer in time.", ("service", "target"))


class ReplyQueueConsumer(QueueConsumer):
    """Consumes RPC replies, more cheaply than nameko's shared consumer:

    - without acknowledging each reply (``no_ack``): a reply queue is this
      process's own, and a reply lost with the process has nobody to go to;
    - handling each reply in the consumer loop instead of spawning a
      greenthread for it: handling one only wakes the waiting caller."""

    def get_consumers(self, consumer_cls: Any, channel: Any) -> Any:
        for provider in self._providers:
            consumer = consumer_cls(queues=[provider.queue], callbacks=[partial(self.handle_message, provider)],
                                    accept=self.accept, no_ack=True)
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def handle_message(self, provider: Any, body: Any, message: Any) -> None:
        provider.handle_message(body, message)

    def ack_message(self, message: Any) -> None:
        pass  # consumed with no_ack


class ReplyQueue(ReplyListener):
    queue_consumer = ReplyQueueConsumer()


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

    rpc_reply_listener = ReplyQueue()

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any) -> None:
        super().__init__(target_service, **options)
        self.timeout = timeout

    def setup(self) -> None:
        super().setup()
        self.timeout = self.timeout or settings_of(self.container.config, ServiceSettings).RPC_TIMEOUT_SECONDS

    def get_dependency(self, worker_ctx: Any) -> TimedServiceProxy:
        assert self.timeout is not None
        return TimedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, self.timeout,
                                 **self.options)


class ClusterRpc(RpcProxy):
    """Proxies to any service by name: ``self.cluster.users.get_principal(...)``;
    ``self.cluster.with_timeout(1).auth.health()`` for a shorter wait."""

    rpc_reply_listener = ReplyQueue()

    def __init__(self, timeout: float | None = None, **options: Any) -> None:
        super().__init__("", **options)
        self.timeout = timeout

    def setup(self) -> None:
        super().setup()
        self.timeout = self.timeout or settings_of(self.container.config, ServiceSettings).RPC_TIMEOUT_SECONDS

    def get_dependency(self, worker_ctx: Any) -> "ClusterHandle":
        assert self.timeout is not None
        return ClusterHandle(worker_ctx, self.rpc_reply_listener, self.timeout, self.options)


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


# -- the serving side -----------------------------------------------------------

class Reply(Responder):
    """nameko's reply to an RPC, with two costs removed from every call:

    - the result was serialized twice (a trial ``dumps`` to catch an
      unserializable value, then the publish); here once, and the bytes are
      published as they are;
    - the reply was published with a publisher confirm, a broker round trip
      per call that buys nothing: the caller is waiting on its own timeout
      and a lost reply ends as ``service_unavailable`` either way.
      (Requests keep their confirm: nameko detects an unknown service by it.)"""

    def send_response(self, result: Any, exc_info: Any) -> tuple[Any, Any]:
        error = serialize(exc_info[1]) if exc_info is not None else None
        content_type = self.message.properties["content_type"]
        serializer = kombu.serialization.registry.type_to_name[content_type]
        try:
            _, encoding, body = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            _, encoding, body = kombu.serialization.dumps({"result": None, "error": error}, serializer)
        publisher = self.publisher_cls(self.amqp_uri, ssl=self.ssl, login_method=self.login_method,
                                       use_confirms=False)
        publisher.publish(body, content_type=content_type, content_encoding=encoding, exchange=self.exchange,
                          routing_key=self.message.properties["reply_to"],
                          correlation_id=self.message.properties.get("correlation_id"))
        return result, exc_info


class ReplyingRpcConsumer(RpcConsumer):
    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        config = self.container.config
        reply = Reply(config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
                      config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
                      ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        result, exc_info = reply.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class Rpc(NamekoRpc):
    """``@rpc`` of every service (``crm_shared.rpc.rpc``): nameko's, answering through ``Reply``."""

    rpc_consumer = ReplyingRpcConsumer()


rpc = Rpc.decorator
