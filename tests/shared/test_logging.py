"""JSON-line logs carry tenant, user and request id across an RPC hop."""
import io
import json
import logging

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.logging import JsonFormatter, RequestContext
from crm_shared.rpc import ServiceRpc

log = logging.getLogger("test.hops")


class Inner:
    name = "log_inner"
    context = RequestContext()

    @rpc
    def work(self):
        log.info("inner did the work", extra={"fields": {"step": 2}})
        return self.context.get("request_id")


class Outer:
    name = "log_outer"
    context = RequestContext()
    inner = ServiceRpc("log_inner")

    @rpc
    def work(self):
        self.context.set(user_id="u-7")  # e.g. learnt from a token: flows on to the next hop
        log.info("outer calls inner")
        return self.inner.work()


def test_request_context_reaches_the_next_service_and_its_log_lines(private_containers):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        uri = private_containers.amqp_uri
        private_containers.start(Inner, {"AMQP_URI": uri})
        private_containers.start(Outer, {"AMQP_URI": uri})
        with ClusterRpcProxy({"AMQP_URI": uri}, timeout=10,
                             context_data={"request_id": "req-42", "tenant_id": "t-1"}) as proxy:
            assert proxy.log_outer.work() == "req-42"
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    inner = next(entry for entry in lines if entry["msg"] == "inner did the work")
    assert inner["request_id"] == "req-42" and inner["tenant_id"] == "t-1" and inner["user_id"] == "u-7"
    assert inner["step"] == 2 and inner["level"] == "info" and inner["ts"].endswith("Z")
    outer = next(entry for entry in lines if entry["msg"] == "outer calls inner")
    assert outer["request_id"] == "req-42" and outer["tenant_id"] == "t-1"
