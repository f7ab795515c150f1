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

from pydantic import BaseModel, ConfigDict, Field
from werkzeug.wrappers import Request

from gateway.entrypoints import api


class TariffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_sessions: int = Field(ge=1, le=100_000, description="Users that may be signed in at once (seats)")
    disk_quota_mb: int = Field(ge=0, le=100_000_000, description="Storage for files and messages, MiB")


class TariffPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_sessions: int | None = Field(default=None, ge=1, le=100_000)
    disk_quota_mb: int | None = Field(default=None, ge=0, le=100_000_000)


class TenantCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    company_name: str = Field(min_length=1, max_length=200)
    owner_email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                             description="Receives the admin password when platform mail is configured")
    tariff: TariffIn


class TenantPatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    company_name: str | None = Field(default=None, min_length=1, max_length=200)
    owner_email: str | None = Field(default=None, min_length=3, max_length=320,
                                    pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    tariff: TariffPatchIn | None = None


class AdminCredentials(BaseModel):
    login: str
    password: str = Field(description="Shown only in this answer (and the e-mail to owner_email)")


class TenantCreated(BaseModel):
    product_code: str
    tenant_id: str
    admin: AdminCredentials
    email: str = Field(description="'queued' when mailed to owner_email, 'disabled' without platform SMTP")


class TariffOut(BaseModel):
    max_sessions: int
    disk_quota_mb: int


class UsageOut(BaseModel):
    active_sessions: int = Field(description="Seats in use: users with a live session")
    live_sessions: int = Field(description="Live sessions (a user may have several devices)")
    disk_used_bytes: int
    disk_reserved_bytes: int = Field(description="Reserved by writes in progress")


class TenantOut(BaseModel):
    product_code: str
    tenant_id: str
    status: str = Field(description="'active', or 'provisioning' while its creation is unfinished")
    company_name: str
    owner_email: str
    tariff: TariffOut
    usage: UsageOut
    created_at: str
    activated_at: str | None = None


class TenantRoutes:
    cluster: Any
    token_state: Any

    @api("POST", "/api/v1/tenants", auth="operator", body=TenantCreateBody, response=TenantCreated, status=201,
         tags=("platform",), summary="Create an instance (Idempotency-Key header makes retries safe)")
    def create_tenant(self, request: Request, body: TenantCreateBody) -> Any:
        key = (request.headers.get("Idempotency-Key") or "").strip() or f"auto-{uuid.uuid4().hex}"
        return self.cluster.with_timeout(self.token_state.nested_timeout).auth.create_tenant(
            body.model_dump(mode="json"), key)

    @api("GET", "/api/v1/tenants/<string:product_code>", auth="operator", response=TenantOut,
         tags=("platform",), summary="An instance's tariff and usage")
    def get_tenant(self, request: Request, product_code: str) -> Any:
        return self.cluster.auth.get_tenant(product_code)

    @api("PATCH", "/api/v1/tenants/<string:product_code>", auth="operator", body=TenantPatchBody,
         response=TenantOut, tags=("platform",), summary="Change an instance's tariff")
    def update_tenant(self, request: Request, product_code: str, body: TenantPatchBody) -> Any:
        return self.cluster.auth.update_tenant(product_code, body.model_dump(mode="json", exclude_unset=True))
