"""The one exception -> HTTP table of the suite.

Every ``CrmError`` (raised here or re-raised from an RPC) carries its status
and stable code; anything else is a 500 ``internal_error`` whose details are
logged, never sent."""
from __future__ import annotations

import logging
from typing import Any

from nameko.exceptions import RemoteError
from werkzeug.wrappers import Response

from crm_shared import codec
from crm_shared.errors import BadRequest, CrmError, PayloadTooLarge, Throttled, ValidationFailed

log = logging.getLogger(__name__)

__all__ = ["BadRequest", "CrmError", "PayloadTooLarge", "ValidationFailed", "error_response", "json_response"]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(codec.dumps(payload), status=status, headers=headers, mimetype="application/json")


def error_response(exc: BaseException) -> Response:
    if isinstance(exc, CrmError):
        headers = {}
        if isinstance(exc, Throttled):
            headers["Retry-After"] = str(exc.retry_after)
        return json_response(exc.to_body(), exc.status, headers)
    if isinstance(exc, RemoteError):
        log.error("unexpected remote error: %s", exc)
    else:
        log.error("unexpected error: %r", exc, exc_info=exc)
    return json_response({"error": {"code": "internal_error", "message": "internal error"}}, 500)
