"""The gateway's HTTP routes. Each route validates, makes (at most) one RPC
and shapes the answer; errors map through ``gateway.exceptions``."""
from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.wrappers import Request

from crm_shared.errors import ServiceUnavailable
from crm_shared.metrics import METRICS
from crm_shared.rpc import ClusterRpc
from crm_shared.service import ServiceBase
from gateway.dependencies import Readiness
from gateway.entrypoints import api
from gateway.exceptions import json_response
from gateway.openapi import build_openapi
from gateway.schemas import Health, OpenApiDocument, Readiness as ReadinessBody

API_VERSION = "1.0.0"


class GatewayService(ServiceBase):
    name = "gateway"

    cluster: Any = ClusterRpc()
    readiness: Any = Readiness()

    @api("GET", "/healthz", auth=None, response=Health, summary="The process is up", tags=("ops",))
    def healthz(self, request: Request) -> dict[str, str]:
        return {"status": "ok"}

    @api("GET", "/readyz", auth=None, response=ReadinessBody, tags=("ops",),
         summary="Broker and every service answer (503 names what is down)")
    def readyz(self, request: Request) -> Any:
        checks = self.readiness.run(self.cluster)
        down = sorted(name for name, state in checks.items() if state != "ok")
        if down:
            error = ServiceUnavailable(f"not ready: {', '.join(down)} down", code="not_ready",
                                       details={"checks": checks})
            return json_response(error.to_body(), 503)
        return {"status": "ok", "checks": checks}

    @api("GET", "/metrics", auth=None, raw_response=CONTENT_TYPE_LATEST, tags=("ops",),
         summary="Prometheus metrics of the gateway")
    def metrics_page(self, request: Request) -> bytes:
        return METRICS.exposition()

    @api("GET", "/openapi.json", auth=None, response=OpenApiDocument, tags=("ops",),
         summary="This document")
    def openapi(self, request: Request) -> dict[str, Any]:
        return openapi_document()


_document: dict[str, Any] | None = None


def openapi_document() -> dict[str, Any]:
    global _document
    if _document is None:
        _document = build_openapi(GatewayService, "CRM platform API", API_VERSION)
    return _document


SERVICE = GatewayService
