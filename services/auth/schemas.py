"""Input and output schemas of the auth service (pydantic), kept apart
from the table models. The gateway validates the same shapes at the edge;
the service validates again, so an RPC caller cannot skip the rules."""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_SESSIONS_LIMIT = 100_000
DISK_QUOTA_MB_LIMIT = 100_000_000  # ~95 TiB


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 320 or not EMAIL.match(value):
        raise ValueError("must be an e-mail address like owner@example.com")
    return value


class Tariff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_sessions: int = Field(ge=1, le=MAX_SESSIONS_LIMIT, description="Users that may be signed in at once")
    disk_quota_mb: int = Field(ge=0, le=DISK_QUOTA_MB_LIMIT, description="Storage for files and messages, MiB")


class TariffPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_sessions: int | None = Field(default=None, ge=1, le=MAX_SESSIONS_LIMIT)
    disk_quota_mb: int | None = Field(default=None, ge=0, le=DISK_QUOTA_MB_LIMIT)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    company_name: str = Field(min_length=1, max_length=200)
    owner_email: str = Field(max_length=320)
    tariff: Tariff

    @field_validator("owner_email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        return _email(value)


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    company_name: str | None = Field(default=None, min_length=1, max_length=200)
    owner_email: str | None = Field(default=None, max_length=320)
    tariff: TariffPatch | None = None

    @field_validator("owner_email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        return None if value is None else _email(value)
