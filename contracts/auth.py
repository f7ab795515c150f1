"""Contracts of the auth area: login, refresh, the signed-in user and unlocking."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from contracts.base import Answer, Contract


class LoginBody(Contract):
    product_code: str = Field(min_length=1, max_length=64, description="The instance's product code, "
                              "e.g. K7QM-3XWA-9RTC (case, spaces and dashes do not matter)")
    login: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(Contract):
    refresh_token: str = Field(min_length=1, max_length=300)


class UserRef(Answer):
    id: str
    login: str
    full_name: str | None = None


class TenantRef(Answer):
    tenant_id: str
    product_code: str


class TokenPair(Answer):
    access_token: str = Field(description="Ed25519-signed JWT; send as 'Authorization: Bearer …'")
    refresh_token: str = Field(description="Single use: each refresh returns a new one")
    token_type: str = Field(description="Always 'bearer'")
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_expires_in: int = Field(description="Seconds of inactivity after which the session ends")
    session_id: str
    user: UserRef | None = None
    tenant: TenantRef | None = None


class Me(Answer):
    user: dict[str, Any]
    rights: dict[str, str] = Field(description="Effective rights: code -> scope")
    tenant_id: str
    session_id: str


class Unlocked(Answer):
    user_id: str
    unlocked: bool = Field(description="False when the user was not locked")
