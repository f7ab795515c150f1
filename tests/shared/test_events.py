"""Outbox through a broker outage, idempotent handlers, retries with delays
and the parking queue — against the real RabbitMQ and PostgreSQL."""
import time
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from kombu import Connection
from nameko.containers import ServiceContainer
from sqlalchemy.orm import Session

from crm_shared.db import Database, make_engine
from crm_shared.events import first_delivery, handle_event, replay_parked
from crm_shared.metrics import METRICS
from crm_shared.migrations import migrate
from crm_shared.outbox import Outbox, OutboxRelay, outbox_events, record_event
from crm_shared.testing import TcpProxy, wait_for

HISTORY = Path(__file__).parent / "history"
received = sa.table("received", sa.column("id"), sa.column("event_id"), sa.column("aggregate_id"), sa.column("seq"))

attempts: dict[str, list[float]] = defaultdict(list)


class Receiver:
    name = "receiver"
    db = Database()

    @handle_event("emitter", "thing_happened")
    def on_thing(self, event):
        if not first_delivery(self.db, event, "receiver.on_thing"):
            return
        self.db.execute(received.insert().values(event_id=event["event_id"], aggregate_id=event["aggregate_id"],
                                                 seq=event["data"]["seq"]))

    @handle_event("emitter", "flaky_thing")
    def on_flaky(self, event):
        attempts[event["event_id"]].append(time.monotonic())
        if len(attempts[event["event_id"]]) <= 3:
            raise RuntimeError("not yet")
        if not first_delivery(self.db, event, "receiver.on_flaky"):
            return
        self.db.execute(received.insert().values(event_id=event["event_id"], aggregate_id="flaky", seq=0))

    @handle_event("emitter", "poison_thing")
    def on_poison(self, event):
        attempts[event["event_id"]].append(time.monotonic())
        raise ValueError("cannot handle this")


class Emitter:
    """Only the outbox relay runs here; tests write events as a business transaction would."""

    name = "emitter"
    db = Database()
    outbox = Outbox()


def _db(databases):
    url = databases.create("events")
    migrate(url, HISTORY, "events-test")
    return url


def _config(amqp_uri, url, **extra):
    return {"AMQP_URI": amqp_uri, "DATABASE_URL": url, "OUTBOX_POLL_SECONDS": 0.2,
            "EVENT_RETRY_DELAYS_SECONDS": [0.1, 0.2, 0.4], **extra}


def _emit(engine, event_type, aggregate_id, seq):
    with Session(engine) as session:
        record_event(session, event_type, {"seq": seq}, aggregate_id, tenant_id="t1")
        session.commit()


def _received(engine, aggregate=None):
    with engine.connect() as conn:
        query = sa.select(received.c.aggregate_id, received.c.seq).order_by(received.c.id)
        if aggregate:
            query = query.where(received.c.aggregate_id == aggregate)
        return conn.execute(query).all()


@pytest.fixture
def receiver(private_containers, databases):
    url = _db(databases)
    container = ServiceContainer(Receiver, _config(private_containers.amqp_uri, url))
    container.start()
    private_containers.started.append(container)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_events_written_during_a_broker_outage_arrive_in_order_once(private_containers, databases, receiver):
    proxy = TcpProxy(5672).start()
    vhost = private_containers.amqp_uri.rsplit("/", 1)[1]
    via_proxy = f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}"
    emitter_url = _db(databases)
    emitter_engine = make_engine(emitter_url)
    try:
        proxy.cut()
        emitter = ServiceContainer(Emitter, _config(via_proxy, emitter_url))
        emitter.start()
        private_containers.started.append(emitter)
        for agg, seq in [("a1", 1), ("a2", 1), ("a1", 2), ("a1", 3), ("a2", 2)]:
            _emit(emitter_engine, "thing_happened", agg, seq)
        # the relay keeps failing while the broker is away, and nothing is lost
        wait_for(lambda: METRICS.value("crm_outbox_publish_failures_total", {"service": "emitter"}) >= 2,
                 message="relay failures during the outage")
        with emitter_engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(outbox_events)
                               .where(outbox_events.c.published_at.is_(None))) == 5
        assert _received(receiver) == []

        proxy.restore()
        wait_for(lambda: len(_received(receiver)) == 5, timeout=30, message="all five events delivered")
        assert [seq for _, seq in _received(receiver, "a1")] == [1, 2, 3]
        assert [seq for _, seq in _received(receiver, "a2")] == [1, 2]

        # a relay that crashed after publishing but before marking sends again: the handler dedupes
        with emitter_engine.begin() as conn:
            conn.execute(outbox_events.update().where(outbox_events.c.id == sa.select(sa.func.min(outbox_events.c.id))
                                                      .scalar_subquery()).values(published_at=None))
        wait_for(lambda: METRICS.value("crm_events_duplicates_total", {"consumer": "receiver.on_thing"}) == 1,
                 timeout=15, message="the duplicate to be seen and skipped")
        assert len(_received(receiver)) == 5
    finally:
        proxy.stop()
        emitter_engine.dispose()


def _publish(amqp_uri, databases, event_type):
    url = _db(databases)
    engine = make_engine(url)
    with Session(engine) as session:
        event_id = record_event(session, event_type, {"seq": 0}, "x", tenant_id="t1")
        session.commit()
    relay = OutboxRelay("emitter", url, amqp_uri)
    assert relay.publish_pending() == 1
    relay.close()
    engine.dispose()
    return str(event_id)


def test_a_handler_failing_three_times_is_retried_with_growing_delays_then_processed_once(
        private_containers, databases, receiver):
    event_id = _publish(private_containers.amqp_uri, databases, "flaky_thing")
    wait_for(lambda: _received(receiver, "flaky"), timeout=15, message="the flaky event to be processed")
    times = attempts[event_id]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39, gaps
    assert len(_received(receiver, "flaky")) == 1
    assert METRICS.value("crm_events_retried_total", {"service": "receiver", "handler": "on_flaky"}) == 3
    assert METRICS.value("crm_events_parked_total", {"service": "receiver", "handler": "on_flaky"}) == 0


def test_a_handler_that_always_fails_ends_in_the_parking_queue(private_containers, databases, receiver):
    event_id = _publish(private_containers.amqp_uri, databases, "poison_thing")
    labels = {"service": "receiver", "handler": "on_poison"}
    wait_for(lambda: METRICS.value("crm_events_parked_total", labels) == 1, timeout=15, message="parking")
    assert len(attempts[event_id]) == 4  # first delivery + three retries
    assert METRICS.value("crm_events_retried_total", labels) == 3
    with Connection(private_containers.amqp_uri) as conn:
        parked = "evt-emitter-poison_thing--receiver.on_poison.parked"
        _, count, _ = conn.default_channel.queue_declare(parked, passive=True)
        assert count == 1
        message = conn.SimpleQueue(parked).get(timeout=5)
        assert message.headers["x-crm-attempt"] == 4
        assert "cannot handle this" in message.headers["x-crm-error"]
        assert message.payload["event_id"] == event_id
        message.requeue()

    # once the cause is fixed, an operator replays it: a full set of retries again
    assert replay_parked(private_containers.amqp_uri, parked) == 1
    wait_for(lambda: METRICS.value("crm_events_parked_total", labels) == 2, timeout=15, message="parked again")
    assert len(attempts[event_id]) == 8
    assert METRICS.value("crm_events_retried_total", labels) == 6
