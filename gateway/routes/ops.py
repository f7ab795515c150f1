"""Ops routes (no prefix): health, readiness, metrics and the OpenAPI document."""
from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.wrappers import Request

from contracts.ops import Health, OpenApiDocument, Readiness
from crm_shared.errors import ServiceUnavailable
from crm_shared.metrics import METRICS
from gateway.entrypoints import api
from gateway.exceptions import json_response


class OpsRoutes:
    cluster: Any
    readiness: Any

    @api("GET", "/healthz", auth=None, response=Health, summary="The process is up", tags=("ops",))
    def healthz(self, request: Request) -> dict[str, str]:
        return {"status": "ok"}

    @api("GET", "/readyz", auth=None, response=Readiness, tags=("ops",),
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
        from gateway.service import openapi_document

        return openapi_document()
