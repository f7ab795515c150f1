"""Platform routes (``/api/v1/tenants``), for the operator token only
(``CRM_OPERATOR_TOKEN``): create an instance, read its tariff and usage,
change the tariff.

Creating is safe to retry: send an ``Idempotency-Key`` header (any unique
string, e.g. a UUID); the same key with the same body finishes or repeats
the same creation (see ``services.auth.tenants``). Without the header the
gateway makes one up and, when the creation could not finish (503
``tenant_provisioning_incomplete``), names it in the error body as
``idempotency_key`` so the client can retry with it."""
from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request

from contracts.tenants import TenantCreate, TenantCreated, TenantOut, TenantPatch
from gateway.entrypoints import api


class TenantRoutes:
    cluster: Any
    token_state: Any

    @api("POST", "/api/v1/tenants", auth="operator", body=TenantCreate, response=TenantCreated, status=201,
         tags=("platform",), summary="Create an instance (Idempotency-Key header makes retries safe)")
    def create_tenant(self, request: Request, body: TenantCreate) -> Any:
        key = (request.headers.get("Idempotency-Key") or "").strip() or f"auto-{uuid.uuid4().hex}"
        return self.cluster.with_timeout(self.token_state.nested_timeout).auth.create_tenant(
            body.model_dump(mode="json"), key)

    @api("GET", "/api/v1/tenants/<string:product_code>", auth="operator", response=TenantOut,
         tags=("platform",), summary="An instance's tariff and usage")
    def get_tenant(self, request: Request, product_code: str) -> Any:
        return self.cluster.auth.get_tenant(product_code)

    @api("PATCH", "/api/v1/tenants/<string:product_code>", auth="operator", body=TenantPatch,
         response=TenantOut, tags=("platform",), summary="Change an instance's tariff")
    def update_tenant(self, request: Request, product_code: str, body: TenantPatch) -> Any:
        return self.cluster.auth.update_tenant(product_code, body.model_dump(mode="json", exclude_unset=True))
