"""Platform costs: an RPC round trip through ``ServiceRpc`` (one hop between
two services) and outbox relay throughput (events published per second)."""
from __future__ import annotations

import time
from typing import Any

import eventlet
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session

from bench.common import infrastructure, percentiles, start
from crm_shared.db import make_engine
from crm_shared.outbox import OutboxRelay, record_event
from crm_shared.rpc import ServiceRpc

CALLS = 2000
EVENTS = 5000


class Target:
    name = "bench_target"

    @rpc
    def echo(self, value: Any) -> Any:
        return value


class Caller:
    name = "bench_caller"
    target = ServiceRpc("bench_target")

    @rpc
    def hop(self, n: int) -> list[float]:
        samples = []
        for i in range(n):
            t = time.perf_counter()
            self.target.echo(i)
            samples.append(time.perf_counter() - t)
        return samples


def run() -> dict[str, Any]:
    with infrastructure() as (uri, dbs):
        config = {"AMQP_URI": uri, "RPC_TIMEOUT_SECONDS": 5}
        containers = [start(Target, config), start(Caller, config)]
        try:
            with ClusterRpcProxy(config, timeout=120) as proxy:
                proxy.bench_caller.hop(50)  # warm up
                started = time.perf_counter()
                samples = proxy.bench_caller.hop(CALLS)
                elapsed = time.perf_counter() - started
        finally:
            for c in containers:
                c.stop()
        rpc_result = {**percentiles(samples), "calls_per_second_sequential": round(CALLS / elapsed, 1)}

        from crm_shared.layout import ROOT
        from crm_shared.migrations import migrate

        url = dbs.create("bench_outbox")
        migrate(url, ROOT / "services" / "auth" / "migrations", "bench")
        engine = make_engine(url)
        with Session(engine) as session:
            for i in range(EVENTS):
                record_event(session, "bench_event", {"i": i}, f"agg-{i % 100}", tenant_id="t")
            session.commit()
        relay = OutboxRelay("bench_emitter", url, uri, batch_size=500)
        started = time.perf_counter()
        sent = 0
        while sent < EVENTS:
            sent += relay.publish_pending()
            eventlet.sleep(0)
        relay_elapsed = time.perf_counter() - started
        relay.close()
        engine.dispose()
    return {
        "rpc_round_trip": rpc_result,
        "outbox_relay": {"events": EVENTS, "seconds": round(relay_elapsed, 3),
                         "events_per_second": round(EVENTS / relay_elapsed, 1),
                         "note": "publisher confirms on, one event per publish"},
    }
