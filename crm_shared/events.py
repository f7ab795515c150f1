"""Event handling: an idempotency guard (dedupe on event id) and an event
handler entrypoint that retries a failing handler with growing delays
(per-delay TTL queues dead-lettering back to the handler's queue), then
parks the message in ``<queue>.parked``. Never nameko's requeue loop."""
from __future__ import annotations

import logging
import uuid
from typing import Any, TypeVar

import eventlet
import sqlalchemy as sa
from eventlet.event import Event
from kombu import Connection, Queue
from nameko.events import EventHandler
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from crm_shared.config import ServiceSettings, settings_of
from crm_shared.metrics import METRICS
from crm_shared.outbox import processed_events

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-crm-attempt"
ERROR_HEADER = "x-crm-error"


class MalformedEvent(ValueError):
    """An event no retry can make acceptable (no id, data of the wrong shape). A handler
    raises it; the event is parked at once (``<queue>.parked``, counted in
    ``crm_events_parked_total`` and ``crm_events_malformed_total``), never dropped, so it
    can be looked at and, once the sender or the handler is fixed, replayed."""


M = TypeVar("M", bound=BaseModel)


def event_data(schema: type[M], event: Any) -> M:
    """The event's ``data`` (with the envelope's ``tenant_id``) as ``schema``; ``MalformedEvent`` otherwise."""
    if not isinstance(event, dict) or not event.get("event_id"):
        raise MalformedEvent("not an event envelope (no event_id)")
    data = dict(event.get("data") or {}) if isinstance(event.get("data") or {}, dict) else None
    if data is None:
        raise MalformedEvent("the event's data is not an object")
    data.setdefault("tenant_id", event.get("tenant_id"))
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise MalformedEvent(f"event data does not match {schema.__name__}: {exc.errors()[:3]}") from None


def first_delivery(session: Session, event: dict[str, Any], consumer: str) -> bool:
    """True the first time ``consumer`` sees this event id; False for a duplicate.

    The marker is written in the handler's own transaction, so it commits
    together with the handler's effects, or not at all. An event without a
    UUID ``event_id`` is a ``MalformedEvent``."""
    try:
        event_id = uuid.UUID(str(event["event_id"]))
    except (TypeError, KeyError, ValueError):
        raise MalformedEvent("not an event envelope (no UUID event_id)") from None
    inserted = session.execute(
        insert(processed_events)
        .values(event_id=event_id, consumer=consumer)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    ).first()
    if inserted is None:
        METRICS.counter("crm_events_duplicates_total", "Duplicate event deliveries skipped.",
                        ("consumer",)).labels(consumer).inc()
        return False
    return True


def forget_processed_before(session: Session, cutoff: Any) -> int:
    result = session.execute(sa.delete(processed_events).where(processed_events.c.processed_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def retried_total() -> Any:
    return METRICS.counter("crm_events_retried_total", "Event deliveries scheduled for a retry.",
                           ("service", "handler"))


def parked_total() -> Any:
    return METRICS.counter("crm_events_parked_total", "Event deliveries parked (after the last retry, or at once "
                           "when malformed).", ("service", "handler"))


def malformed_total() -> Any:
    return METRICS.counter("crm_events_malformed_total", "Malformed events parked without retries.",
                           ("service", "handler"))


class ReliableEventHandler(EventHandler):
    """``@handle_event(source_service, event_type)``: a pooled, durable event handler.

    Retry delays come from ``EVENT_RETRY_DELAYS_SECONDS``; after the last one
    the message is parked. Unexpected and expected errors are retried alike;
    a ``MalformedEvent`` is parked at once. Nothing is dropped without a trace."""

    def __init__(self, source_service: str, event_type: str, **kwargs: Any) -> None:
        kwargs.pop("requeue_on_error", None)
        super().__init__(source_service, event_type, requeue_on_error=False, **kwargs)
        self._tails: dict[str, Event] = {}
        self._done: dict[Any, tuple[str, Event]] = {}

    def handle_message(self, body: Any, message: Any) -> None:
        """Workers run concurrently, but events of one aggregate are handled one
        after another, in the order they arrive (the outbox publishes in order)."""
        key = body.get("aggregate_id") if isinstance(body, dict) else None
        if key is None:
            super().handle_message(body, message)
            return
        previous = self._tails.get(key)
        done = Event()
        self._tails[key] = done
        self._done[id(message)] = (key, done)

        def dispatch() -> None:
            if previous is not None:
                previous.wait()
            try:
                super(ReliableEventHandler, self).handle_message(body, message)
            except Exception:
                self._finish(message)
                raise

        if previous is None or previous.ready():
            dispatch()
        else:
            eventlet.spawn_n(dispatch)

    def _finish(self, message: Any) -> None:
        entry = self._done.pop(id(message), None)
        if entry is None:
            return
        key, done = entry
        if self._tails.get(key) is done:
            del self._tails[key]
        done.send(True)

    @property
    def delays_ms(self) -> list[int]:
        raw = settings_of(self.container.config, ServiceSettings).EVENT_RETRY_DELAYS_SECONDS
        if isinstance(raw, str):  # a hand-built config (tests) names them as text
            raw = [float(v) for v in raw.split(",") if v.strip()]
        return [max(1, int(float(v) * 1000)) for v in raw]

    def handle_result(self, message: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> Any:
        try:
            return self._settle(message, result, exc_info)
        finally:
            self._finish(message)

    def _settle(self, message: Any, result: Any, exc_info: Any) -> Any:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return result, exc_info
        try:
            self._retry_or_park(message, exc_info)
        except Exception:
            # the broker refused the retry copy: leave the original to be redelivered
            log.exception("could not schedule a retry; requeueing")
            self.queue_consumer.requeue_message(message)
            return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def _retry_or_park(self, message: Any, exc_info: Any) -> None:
        headers = dict(message.headers or {})
        attempt = int(headers.get(ATTEMPT_HEADER, 0)) + 1
        headers[ATTEMPT_HEADER] = attempt
        headers[ERROR_HEADER] = f"{exc_info[0].__name__}: {exc_info[1]}"[:500]
        queue_name = self.queue.name
        delays = self.delays_ms
        service, handler = self.container.service_name, self.method_name
        if isinstance(exc_info[1], MalformedEvent):
            target = Queue(f"{queue_name}.parked", durable=True)
            parked_total().labels(service, handler).inc()
            malformed_total().labels(service, handler).inc()
            log.error("event handler %s got a malformed event (%s), parked in %s", handler, exc_info[1],
                      target.name)
        elif attempt <= len(delays):
            delay = delays[attempt - 1]
            target = Queue(
                f"{queue_name}.retry.{delay}", durable=True,
                queue_arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": queue_name,
                },
            )
            retried_total().labels(service, handler).inc()
            log.warning("event handler %s failed (attempt %s), retrying in %sms", handler, attempt, delay)
        else:
            target = Queue(f"{queue_name}.parked", durable=True)
            parked_total().labels(service, handler).inc()
            log.error("event handler %s failed %s times, parked in %s", handler, attempt, target.name)
        with Connection(self.container.config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            target(producer.channel).declare()
            producer.publish(
                message.body, exchange="", routing_key=target.name, headers=headers,
                content_type=message.content_type, content_encoding=message.content_encoding,
                delivery_mode=2, retry=True, retry_policy={"max_retries": 3},
            )


handle_event = ReliableEventHandler.decorator


def replay_parked(amqp_uri: str, parked_queue: str, limit: int | None = None) -> int:
    """Moves parked messages back to their handler's queue with the attempt
    count reset (after the cause is fixed). Publishes with confirms before
    acking, so a crash in between can duplicate (handlers dedupe), never lose."""
    if not parked_queue.endswith(".parked"):
        raise ValueError("name a parking queue: <handler queue>.parked")
    target = parked_queue[: -len(".parked")]
    moved = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        queue = conn.SimpleQueue(Queue(parked_queue, durable=True))
        producer = conn.Producer()
        try:
            while limit is None or moved < limit:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    break
                headers = {k: v for k, v in (message.headers or {}).items() if k not in (ATTEMPT_HEADER, ERROR_HEADER)}
                headers["x-crm-replayed"] = int((message.headers or {}).get("x-crm-replayed", 0)) + 1
                producer.publish(message.body, exchange="", routing_key=target, headers=headers,
                                 content_type=message.content_type, content_encoding=message.content_encoding,
                                 delivery_mode=2)
                message.ack()
                moved += 1
        finally:
            queue.close()
    log.info("replayed %s parked message(s) from %s to %s", moved, parked_queue, target)
    return moved


def main(argv: list[str]) -> int:
    """``python -m crm_shared.events replay <queue>.parked [limit]`` (AMQP_URI from the environment)."""
    import os
    import sys

    if len(argv) not in (2, 3) or argv[0] != "replay":
        print("usage: python -m crm_shared.events replay <handler-queue>.parked [limit]", file=sys.stderr)
        return 2
    amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
    moved = replay_parked(amqp_uri, argv[1], int(argv[2]) if len(argv) == 3 else None)
    print(f"replayed {moved} message(s)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
