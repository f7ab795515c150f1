"""Errors of the auth service. They are instances of the ``crm_shared.errors``
classes with stable codes (not subclasses: the gateway process deserializes
them without importing this service), so they cross RPC intact and the
gateway maps them to their HTTP status."""
from __future__ import annotations

import math

from crm_shared.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    ValidationFailed,
)

__all__ = ["Conflict", "Forbidden", "NotFound", "ServiceUnavailable", "Throttled", "Unauthenticated",
           "ValidationFailed", "invalid_credentials", "invalid_refresh_token", "quota_exceeded",
           "seats_exhausted", "too_many_attempts", "tenant_not_found"]

INVALID_CREDENTIALS_MESSAGE = "invalid product code, login or password"


def invalid_credentials() -> Unauthenticated:
    """The one answer for an unknown product code, unknown login, wrong password or inactive user."""
    return Unauthenticated(INVALID_CREDENTIALS_MESSAGE, code="invalid_credentials")


def invalid_refresh_token(message: str = "the refresh token is not valid", code: str = "invalid_refresh_token"
                          ) -> Unauthenticated:
    return Unauthenticated(message, code=code)


def seats_exhausted(max_sessions: int) -> Forbidden:
    return Forbidden(f"every seat of this instance is taken: at most {max_sessions} users may be signed in "
                     "at once; a seat frees when a user logs out or stays idle", code="seats_exhausted",
                     details={"max_sessions": max_sessions})


def too_many_attempts(retry_after_seconds: float, locked: bool = False) -> Throttled:
    seconds = max(1, math.ceil(retry_after_seconds))
    message = (f"too many failed logins: locked, try again in {seconds} s or ask an administrator to unlock"
               if locked else f"too many failed logins: try again in {seconds} s")
    return Throttled(message, code="too_many_attempts", details={"retry_after": seconds, "locked": locked})


def quota_exceeded(used_bytes: int, reserved_bytes: int, requested_bytes: int, allowed_bytes: int) -> Conflict:
    return Conflict(
        f"disk quota exceeded: {used_bytes + reserved_bytes} of {allowed_bytes} bytes in use or reserved, "
        f"{requested_bytes} more requested", code="quota_exceeded",
        details={"used_bytes": used_bytes, "reserved_bytes": reserved_bytes, "requested_bytes": requested_bytes,
                 "allowed_bytes": allowed_bytes})


def tenant_not_found() -> NotFound:
    return NotFound("no instance has this product code", code="tenant_not_found")
