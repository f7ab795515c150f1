"""Contracts of the platform area (the operator's ``/api/v1/tenants``):
instances, their tariff (seats and disk quota) and usage."""
from __future__ import annotations

import re

from pydantic import ConfigDict, Field, field_validator

from contracts.base import Answer, Contract

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_SESSIONS_LIMIT = 100_000
DISK_QUOTA_MB_LIMIT = 100_000_000  # ~95 TiB


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 320 or not EMAIL.match(value):
        raise ValueError("must be an e-mail address like owner@example.com")
    return value


class Tariff(Contract):
    max_sessions: int = Field(ge=1, le=MAX_SESSIONS_LIMIT, description="Users that may be signed in at once")
    disk_quota_mb: int = Field(ge=0, le=DISK_QUOTA_MB_LIMIT, description="Storage for files and messages, MiB")


class TariffPatch(Contract):
    max_sessions: int | None = Field(default=None, ge=1, le=MAX_SESSIONS_LIMIT)
    disk_quota_mb: int | None = Field(default=None, ge=0, le=DISK_QUOTA_MB_LIMIT)


class TenantCreate(Contract):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    company_name: str = Field(min_length=1, max_length=200)
    owner_email: str = Field(max_length=320)
    tariff: Tariff

    @field_validator("owner_email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        return _email(value)


class TenantPatch(Contract):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    company_name: str | None = Field(default=None, min_length=1, max_length=200)
    owner_email: str | None = Field(default=None, max_length=320)
    tariff: TariffPatch | None = None

    @field_validator("owner_email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        return None if value is None else _email(value)


# -- answers ----------------------------------------------------------------

class AdminCredentials(Answer):
    login: str
    password: str = Field(description="Shown only in this answer (and the e-mail to owner_email)")


class TenantCreated(Answer):
    product_code: str
    tenant_id: str
    admin: AdminCredentials
    email: str = Field(description="'queued' when mailed to owner_email, 'disabled' without platform SMTP")


class TariffOut(Answer):
    max_sessions: int
    disk_quota_mb: int


class UsageOut(Answer):
    active_sessions: int = Field(description="Seats in use: users with a live session")
    live_sessions: int = Field(description="Live sessions (a user may have several devices)")
    disk_used_bytes: int
    disk_reserved_bytes: int = Field(description="Reserved by writes in progress")


class TenantOut(Answer):
    product_code: str
    tenant_id: str
    status: str = Field(description="'active', or 'provisioning' while its creation is unfinished")
    company_name: str
    owner_email: str
    tariff: TariffOut
    usage: UsageOut
    created_at: str
    activated_at: str | None = None
