"""Typed settings of the auth service, validated at start from ``config.yaml``."""
from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    # Ed25519 signing keys, "kid:base64url-seed[,kid:seed…]": required (``make run``
    # and the tests generate one; ``python -m services.auth.tokens`` prints a new key).
    AUTH_SIGNING_KEYS: str = Field(min_length=1)
    AUTH_ACCESS_TOKEN_TTL_SECONDS: int = Field(default=300, ge=10, le=3600)
    AUTH_SESSION_IDLE_TIMEOUT_SECONDS: int = Field(default=1800, ge=30, le=7 * 86400)
    AUTH_SESSION_MAX_LIFETIME_SECONDS: int = Field(default=43200, ge=60, le=90 * 86400)

    AUTH_LOGIN_SLOWDOWN_AFTER: int = Field(default=3, ge=1, le=100)
    AUTH_LOGIN_SLOWDOWN_SECONDS: float = Field(default=1.0, gt=0, le=600)
    AUTH_LOGIN_SLOWDOWN_MAX_SECONDS: float = Field(default=60.0, gt=0, le=3600)
    AUTH_LOGIN_LOCKOUT_AFTER: int = Field(default=10, ge=1, le=1000)
    AUTH_LOGIN_LOCKOUT_SECONDS: int = Field(default=900, ge=1, le=7 * 86400)
    AUTH_LOGIN_FAILURE_WINDOW_SECONDS: int = Field(default=900, ge=1, le=7 * 86400)
    AUTH_IP_MAX_FAILURES: int = Field(default=50, ge=1, le=100000)
    AUTH_IP_WINDOW_SECONDS: int = Field(default=600, ge=1, le=86400)

    AUTH_STORAGE_RESERVATION_TTL_SECONDS: int = Field(default=3600, ge=1, le=7 * 86400)
    AUTH_HOUSEKEEPING_SECONDS: float = Field(default=60.0, gt=0, le=3600)

    # The platform's own mail (the admin password of a new instance); empty host = disabled.
    PLATFORM_SMTP_HOST: str = ""
    PLATFORM_SMTP_PORT: int = Field(default=587, ge=1, le=65535)
    PLATFORM_SMTP_USER: str = ""
    PLATFORM_SMTP_PASSWORD: str = ""
    PLATFORM_SMTP_FROM: str = ""
    PLATFORM_SMTP_TLS: str = Field(default="starttls", pattern=r"^(starttls|ssl|none)$")
    PLATFORM_SMTP_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=120)

    @field_validator("AUTH_SIGNING_KEYS", "PLATFORM_SMTP_HOST", "PLATFORM_SMTP_USER", "PLATFORM_SMTP_PASSWORD",
                     "PLATFORM_SMTP_FROM", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else str(value).strip()

    @field_validator("PLATFORM_SMTP_TLS", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("AUTH_SIGNING_KEYS")
    @classmethod
    def _keys_parse(cls, value: str) -> str:
        from services.auth.tokens import SigningKeys

        try:
            SigningKeys.from_spec(value)
        except Exception as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "Settings":
        if self.AUTH_ACCESS_TOKEN_TTL_SECONDS * 2 > self.AUTH_SESSION_IDLE_TIMEOUT_SECONDS:
            raise ValueError("AUTH_ACCESS_TOKEN_TTL_SECONDS must be at most half of "
                             "AUTH_SESSION_IDLE_TIMEOUT_SECONDS (activity is counted at refresh)")
        if self.AUTH_SESSION_IDLE_TIMEOUT_SECONDS > self.AUTH_SESSION_MAX_LIFETIME_SECONDS:
            raise ValueError("AUTH_SESSION_IDLE_TIMEOUT_SECONDS must not exceed AUTH_SESSION_MAX_LIFETIME_SECONDS")
        if self.PLATFORM_SMTP_HOST and not self.PLATFORM_SMTP_FROM:
            raise ValueError("PLATFORM_SMTP_FROM is required when PLATFORM_SMTP_HOST is set")
        if self.AUTH_LOGIN_SLOWDOWN_AFTER > self.AUTH_LOGIN_LOCKOUT_AFTER:
            raise ValueError("AUTH_LOGIN_SLOWDOWN_AFTER must not exceed AUTH_LOGIN_LOCKOUT_AFTER")
        return self
