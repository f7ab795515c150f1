"""Transactional outbox: events are rows written in the business
transaction; a relay publishes them to the service's nameko events exchange
(``<service>.events``, routing key = event type) and marks them sent.

While the broker is unreachable events wait in the table; the relay keeps
id order and stops at the first failure, so order per aggregate holds."""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import eventlet
import sqlalchemy as sa
from eventlet.event import Event
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from crm_shared.config import ServiceSettings, settings_of
from crm_shared.db import insert_rows, make_engine
from crm_shared.logging import current_context
from crm_shared.metrics import METRICS
from crm_shared.migrations import lock_key

log = logging.getLogger(__name__)

infrastructure_metadata = sa.MetaData()

outbox_events = sa.Table(
    "outbox_events",
    infrastructure_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("aggregate_id", sa.String(200), nullable=False),
    sa.Column("tenant_id", sa.String(64)),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    # only unsent rows are indexed: the relay's scan stays small however long the history
    sa.Index("ix_outbox_events_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
)

processed_events = sa.Table(
    "processed_events",
    infrastructure_metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def _envelope(event_type: str, data: dict[str, Any], aggregate_id: str, tenant_id: str | None,
              ctx: dict[str, Any]) -> dict[str, Any]:
    event_id = uuid.uuid4()
    tenant = tenant_id or ctx.get("tenant_id")
    envelope = {
        "event_id": str(event_id),
        "event_type": event_type,
        "aggregate_id": str(aggregate_id),
        "tenant_id": tenant,
        "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "data": data,
    }
    # nameko consumers turn "nameko.<key>" headers into worker context data
    headers = {f"nameko.{k}": v for k, v in ctx.items() if v is not None}
    return {"event_id": event_id, "event_type": event_type, "aggregate_id": str(aggregate_id), "tenant_id": tenant,
            "payload": envelope, "headers": headers}


def record_event(session: Session, event_type: str, data: dict[str, Any], aggregate_id: str,
                 tenant_id: str | None = None) -> uuid.UUID:
    """Adds an event to the current transaction; it goes out only if that commits."""
    row = _envelope(event_type, data, aggregate_id, tenant_id, current_context())
    session.execute(outbox_events.insert().values(**row))
    session.info["outbox_dirty"] = True
    return uuid.UUID(str(row["event_id"]))


def record_events(session: Session, event_type: str, items: list[tuple[dict[str, Any], str]],
                  tenant_id: str | None = None) -> int:
    """Adds many events of one type (``(data, aggregate_id)`` each) in one statement, in order."""
    if not items:
        return 0
    ctx = current_context()
    rows = [_envelope(event_type, data, aggregate_id, tenant_id, ctx) for data, aggregate_id in items]
    for row in rows:
        row["event_id"] = str(row["event_id"])
    insert_rows(session.connection(), outbox_events, rows, columns=_EVENT_COLUMNS)
    session.info["outbox_dirty"] = True
    return len(items)


_EVENT_COLUMNS = ("event_id", "event_type", "aggregate_id", "tenant_id", "payload", "headers")


def _published_total() -> Any:
    return METRICS.counter("crm_outbox_published_total", "Events published from the outbox.", ("service",))


def _failures_total() -> Any:
    return METRICS.counter("crm_outbox_publish_failures_total", "Failed outbox relay rounds.", ("service",))


def _pending() -> Any:
    return METRICS.gauge("crm_outbox_pending_events", "Events waiting in the outbox.", ("service",))


class OutboxRelay:
    """Publishes unsent outbox rows. One relay at a time per database (an
    advisory transaction lock), so replicas never reorder events."""

    def __init__(self, service_name: str, database_url: str, amqp_uri: str,
                 batch_size: int = 100, connect_timeout: float = 3.0) -> None:
        self.service_name = service_name
        self.engine = make_engine(database_url, pool_size=1, application_name=f"{service_name}-outbox")
        self.amqp_uri = amqp_uri
        self.batch_size = batch_size
        self.connect_timeout = connect_timeout
        # declared exactly as nameko's event handlers declare it
        self.exchange = get_event_exchange(service_name, {})
        self._connection: Connection | None = None
        self._producer: Any = None

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            conn = Connection(self.amqp_uri, connect_timeout=self.connect_timeout,
                              transport_options={"confirm_publish": True})
            conn.connect()
            self._connection = conn
            self._producer = conn.Producer()
            self.exchange(self._producer.channel).declare()
        return self._producer

    def _reset_connection(self) -> None:
        try:
            if self._connection is not None:
                self._connection.release()
        except Exception as exc:  # the connection is already broken
            log.debug("closing a broken broker connection: %s", exc)
        self._connection = None
        self._producer = None

    def close(self) -> None:
        self._reset_connection()
        self.engine.dispose()

    def _publish_batch(self, conn: Any) -> tuple[int, BaseException | None]:
        rows = conn.execute(
            sa.select(outbox_events.c.id, outbox_events.c.event_type, outbox_events.c.payload,
                      outbox_events.c.headers)
            .where(outbox_events.c.published_at.is_(None))
            .order_by(outbox_events.c.id)
            .limit(self.batch_size)
        ).all()
        sent: list[int] = []
        failure: BaseException | None = None
        for row in rows:
            try:
                producer = self._ensure_producer()
                producer.publish(
                    row.payload, exchange=self.exchange, routing_key=row.event_type,
                    serializer="json", delivery_mode=2, headers=dict(row.headers or {}),
                    message_id=row.payload.get("event_id"), retry=False,
                )
            except Exception as exc:  # broker down: keep the rest for later, in order
                self._reset_connection()
                failure = exc
                break
            sent.append(row.id)
        if sent:  # one statement for the batch: the marks commit together with the caller's transaction
            conn.execute(outbox_events.update().where(outbox_events.c.id == sa.any_(
                sa.bindparam("ids", sent, type_=ARRAY(sa.BigInteger)))).values(published_at=sa.func.now()))
        return len(sent), failure

    def publish_pending(self) -> int:
        """Publishes one batch; returns how many went out. Raises on broker failure
        after committing the marks of what did go out."""
        sent = 0
        failure: BaseException | None = None
        with self.engine.connect() as conn:
            with conn.begin():
                lock = sa.func.pg_try_advisory_xact_lock(lock_key(f"outbox:{self.service_name}"))
                if conn.scalar(sa.select(lock)):
                    sent, failure = self._publish_batch(conn)
                # counted by every replica, lock or not, so the gauge never goes stale
                pending = conn.scalar(sa.select(sa.func.count()).select_from(outbox_events)
                                      .where(outbox_events.c.published_at.is_(None)))
        _pending().labels(self.service_name).set(pending or 0)
        if sent:
            _published_total().labels(self.service_name).inc(sent)
        if failure is not None:
            raise failure
        return sent


class Outbox(DependencyProvider):
    """Injects ``record(session, event_type, data, aggregate_id)`` and runs the
    relay in a greenthread: woken right after a worker that recorded events,
    polling every ``OUTBOX_POLL_SECONDS`` otherwise, backing off on failure."""

    def __init__(self) -> None:
        self.relay: OutboxRelay | None = None
        self._wake = Event()
        self._thread: Any = None
        self._running = False
        self._sessions: dict[Any, Any] = {}

    def setup(self) -> None:
        settings = settings_of(self.container.config, ServiceSettings)
        assert settings.DATABASE_URL, "a service with an Outbox needs DATABASE_URL"
        self.poll_seconds = settings.OUTBOX_POLL_SECONDS
        self.relay = OutboxRelay(self.container.service_name, settings.DATABASE_URL, settings.AMQP_URI,
                                 settings.OUTBOX_BATCH_SIZE)

    def start(self) -> None:
        self._running = True
        self._thread = self.container.spawn_managed_thread(self._run)

    def stop(self) -> None:
        self._running = False
        self.wake()
        if self._thread is not None:
            self._thread.wait()
        if self.relay is not None:
            self.relay.close()

    def kill(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.kill()
        if self.relay is not None:
            self.relay.close()

    def wake(self) -> None:
        if not self._wake.ready():
            self._wake.send(True)

    def _run(self) -> None:
        assert self.relay is not None
        backoff = self.poll_seconds
        while self._running:
            try:
                while self._running and self.relay.publish_pending() >= self.relay.batch_size:
                    pass
                backoff = self.poll_seconds
            except Exception as exc:
                _failures_total().labels(self.container.service_name).inc()
                log.warning("outbox relay cannot publish, will retry: %s", exc)
                backoff = min(backoff * 2, 30.0)
            with eventlet.Timeout(backoff, False):
                self._wake.wait()
            self._wake = Event()

    def get_dependency(self, worker_ctx: Any) -> Any:
        provider = self

        class Recorder:
            @staticmethod
            def record(session: Session, event_type: str, data: dict[str, Any], aggregate_id: str,
                       tenant_id: str | None = None) -> uuid.UUID:
                provider._sessions[worker_ctx] = True
                return record_event(session, event_type, data, aggregate_id, tenant_id)

        return Recorder()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        # also after a failure: a worker may commit events and then answer an error
        # (auth's refusal of a reused refresh token ends the session first)
        if self._sessions.pop(worker_ctx, None):
            self.wake()

    def worker_teardown(self, worker_ctx: Any) -> None:
        self._sessions.pop(worker_ctx, None)
