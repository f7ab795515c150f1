"""Error classes with stable codes. They cross RPC as themselves (registered
with nameko's deserializer) and the gateway turns them into the DESIGN
error body ``{"error": {"code", "message", "fields"}}`` with their status."""
from __future__ import annotations

import json
from typing import Any

from nameko.exceptions import deserialize_to_instance


class CrmError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str = "", fields: dict[str, str] | None = None,
                 code: str | None = None, details: dict[str, Any] | str | None = None) -> None:
        # args must hold everything, JSON-safe (nameko stringifies None): the
        # other side rebuilds the instance as cls(*args). nameko also stringifies
        # numbers and booleans, so details travel as JSON text and keep their types.
        if isinstance(details, str):
            details = json.loads(details) if details else {}
        super().__init__(message, dict(fields or {}), code or "", json.dumps(details or {}, default=str))
        self.message = message or self.__class__.__doc__ or self.code
        self.fields = dict(fields or {})
        if code:
            self.code = code
        self.details = dict(details or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        deserialize_to_instance(cls)

    def __str__(self) -> str:
        return self.message

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        error.update(self.details)
        return {"error": error}


deserialize_to_instance(CrmError)


class BadRequest(CrmError):
    """The request is malformed."""
    status, code = 400, "bad_request"


class Unauthenticated(CrmError):
    """Not authenticated."""
    status, code = 401, "unauthenticated"


class Forbidden(CrmError):
    """Not allowed."""
    status, code = 403, "forbidden"


class NotFound(CrmError):
    """Not found."""
    status, code = 404, "not_found"


class Conflict(CrmError):
    """Conflicts with the current state."""
    status, code = 409, "conflict"


class PayloadTooLarge(CrmError):
    """The request body is too large."""
    status, code = 413, "payload_too_large"


class ValidationFailed(CrmError):
    """Validation failed."""
    status, code = 422, "validation_failed"


class Throttled(CrmError):
    """Too many requests."""
    status, code = 429, "too_many_requests"

    @property
    def retry_after(self) -> int:
        return int(self.details.get("retry_after", 1))


class ServiceUnavailable(CrmError):
    """A dependency is unavailable."""
    status, code = 503, "service_unavailable"


def field_problems(exc: Any) -> dict[str, str]:
    """``{field: reason}`` from a pydantic ValidationError (first reason per field,
    without pydantic's "Value error, " prefix)."""
    fields: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "body"
        fields.setdefault(name, str(err["msg"]).removeprefix("Value error, "))
    return fields


def validation_failed(exc: Any) -> ValidationFailed:
    """The 422 for a pydantic ValidationError, naming every bad field."""
    fields = field_problems(exc)
    return ValidationFailed(f"invalid value for {', '.join(fields)}", fields=fields)
