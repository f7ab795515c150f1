"""``@api(...)``: nameko's ``@http`` plus JSON body and query validation
against pydantic schemas, operator/bearer authentication, request ids,
per-route metrics and the DESIGN error format. The schemas given here are
also what ``/openapi.json`` documents."""
from __future__ import annotations

import hmac
import json
import time
import uuid
from functools import partial
from typing import Any

from eventlet.event import Event
from nameko.web.handlers import HttpRequestHandler
from pydantic import BaseModel, ValidationError
from werkzeug.wrappers import Request, Response

from contracts.base import UNSTORABLE_MESSAGE, has_unstorable
from crm_shared import codec
from crm_shared.config import settings_of
from crm_shared.errors import (
    BadRequest,
    CrmError,
    PayloadTooLarge,
    Unauthenticated,
    ValidationFailed,
    validation_failed,
)
from crm_shared.metrics import METRICS
from gateway.exceptions import error_response, json_response
from gateway.server import ApiWebServer
from gateway.settings import Settings
from gateway.tokens import TokenStore


def _requests_total() -> Any:
    return METRICS.counter("crm_http_requests_total", "HTTP requests by route and status.",
                           ("method", "route", "status"))


def _request_duration() -> Any:
    return METRICS.histogram("crm_http_request_duration_seconds", "HTTP request latency by route.",
                             ("method", "route"))


class ApiEndpoint(HttpRequestHandler):
    server = ApiWebServer()
    tokens = TokenStore()  # shared per process: public keys and revoked sessions

    def __init__(self, method: str, url: str, *, body: type[BaseModel] | None = None,
                 query: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
                 status: int = 200, summary: str = "", tags: tuple[str, ...] = (),
                 auth: str | None = "bearer", max_body_bytes: int | None = None,
                 raw_response: str | None = None, errors: tuple[int, ...] = (),
                 raw_body: tuple[str, ...] = (), error_type: str = "application/json", **kwargs: Any) -> None:
        super().__init__(method, url, expected_exceptions=(CrmError,), **kwargs)
        self.body_schema = body
        self.query_schema = query
        self.response_schema = response
        self.status = status
        self.summary = summary
        self.tags = tags
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.raw_response = raw_response  # a content type for non-JSON answers (metrics)
        self.errors = errors  # error statuses to document beyond the ones implied (e.g. 429)
        self.raw_body = raw_body  # content types of a body taken as bytes (a file), passed as ``content``
        self.error_type = error_type  # what the errors are written as (1C's protocol answers plain text)

    def setup(self) -> None:
        super().setup()
        self.settings = settings_of(self.container.config, Settings)

    # -- request side -----------------------------------------------------
    def _authenticate(self, request: Request, context_data: dict[str, Any]) -> None:
        if self.auth is None:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("missing bearer token")
        if self.auth == "operator":
            expected = self.settings.CRM_OPERATOR_TOKEN
            if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
                raise Unauthenticated("invalid operator token")
            context_data["operator"] = True
            return
        # bearer: verified here, without an RPC (gateway.tokens)
        claims = self.tokens.verify(token)
        context_data.update(tenant_id=claims.tenant_id, user_id=claims.user_id, session_id=claims.session_id)

    def _raw(self, request: Request, limit: int) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        raw = request.get_data(cache=False)
        if len(raw) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        return bytes(raw)

    def _parse_body(self, request: Request) -> BaseModel:
        assert self.body_schema is not None
        raw = self._raw(request, self.max_body_bytes or self.settings.MAX_BODY_BYTES)
        try:
            data = codec.loads(raw or b"null")
        except ValueError:
            # orjson refuses what JSON's grammar allows but no text column can hold (a lone
            # "\ud800"): parsed again by the standard library, the contract then names the field
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise BadRequest(f"malformed JSON body: {exc}", code="malformed_json") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object", code="malformed_json")
        try:
            return self.body_schema.model_validate(data)
        except ValidationError as exc:
            raise validation_failed(exc) from None

    def get_entrypoint_parameters(self, request: Request) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kwargs: dict[str, Any] = dict(request.path_values)  # type: ignore[attr-defined]
        bad = {name: UNSTORABLE_MESSAGE for name, value in kwargs.items() if has_unstorable(value)}
        if bad:
            raise ValidationFailed(f"invalid value for {', '.join(bad)}", fields=bad)
        if self.body_schema is not None:
            kwargs["body"] = self._parse_body(request)
        if self.raw_body:
            kwargs["content"] = self._raw(request, self.max_body_bytes or self.settings.GATEWAY_IMPORT_MAX_BYTES)
        if self.query_schema is not None:
            try:
                kwargs["query"] = self.query_schema.model_validate(request.args.to_dict())
            except ValidationError as exc:
                raise validation_failed(exc) from None
        return (request,), kwargs

    def handle_request(self, request: Request) -> Response:
        request.shallow = False
        started = time.perf_counter()
        request_id = (request.headers.get("X-Request-ID") or "")[:64] or uuid.uuid4().hex
        try:
            context_data: dict[str, Any] = {"request_id": request_id}
            self._authenticate(request, context_data)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(self, args, kwargs, context_data=context_data,
                                        handle_result=partial(self.handle_result, event))
            result = event.wait()
            response = self.response_from_result(result)
        except Exception as exc:
            response = self.response_from_exception(exc)
        response.headers["X-Request-ID"] = request_id
        _requests_total().labels(self.method, self.url, str(response.status_code)).inc()
        _request_duration().labels(self.method, self.url).observe(time.perf_counter() - started)
        return response

    # -- response side ----------------------------------------------------
    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status = self.status
        if isinstance(result, tuple):
            status, result = result
        if status == 204:
            return Response(status=204)
        if self.raw_response is not None:
            return Response(result, status=status, content_type=self.raw_response)
        if isinstance(result, BaseModel):
            result = result.model_dump(mode="json")
        return json_response(result, status)

    def response_from_exception(self, exc: BaseException) -> Response:
        return error_response(exc)


api = ApiEndpoint.decorator
