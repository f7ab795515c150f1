"""1C exchange routes (``/api/v1/exchange/...``): the versions, the
tenant's exchange settings, import and export jobs, and the exchange log.
The onec service runs them; ``exchange.run`` is needed for all but the
versions list (the crm service checks it).

An import's file (XML, or a zip of XML files) is the request body, up to
``GATEWAY_IMPORT_MAX_BYTES``. An export's file is streamed part by part.

``/api/v1/exchange/1c`` is the CommerceML HTTP protocol (``services.onec.site_exchange``)
with 1C's own conventions: plain-text answers (``success`` / ``progress`` /
``failure`` and a reason), HTTP Basic at ``mode=checkauth`` with the user
``<product code>\\<login>``, then a cookie. The login at checkauth is a normal
login (throttled, journalled), whose session ends at once: the exchange
session is the cookie's, and it holds no seat."""
from __future__ import annotations

import base64
import binascii
from typing import Any, Iterator
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from contracts.base import list_of
from contracts.exchange import (
    VERSIONS,
    ExchangeExportIn,
    ExchangeImportQuery,
    ExchangeJobOut,
    ExchangeSettingsIn,
    ExchangeSettingsOut,
    ExchangeVersion,
    JobAccepted,
    LogEntryOut,
    LogQuery,
)
from crm_shared.errors import CrmError
from gateway.entrypoints import api
from gateway.exceptions import error_response
from gateway.tokens import caller

FILE_TYPES = ("application/xml", "text/xml", "application/zip", "application/octet-stream")
UPLOAD_TIMEOUT = 120.0


def _text(body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(body, status=status, content_type=content_type)


def _failure(exc: CrmError) -> Response:
    """1C shows the text after ``failure``; the status is the API's for that error."""
    return _text(f"failure\n{exc}\n", error_response(exc).status_code)


def basic_credentials(request: Request) -> tuple[str, str, str] | None:
    """(product code, login, password) from ``Authorization: Basic`` with the user ``<code>\\<login>``
    (``<code>/<login>`` is taken too)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    for separator in ("\\", "/"):
        code, found, login = user.partition(separator)
        if found and code.strip() and login.strip():
            return code.strip(), login.strip(), password
    return None


class ExchangeRoutes:
    cluster: Any
    context: Any
    token_state: Any

    def _onec(self, timeout: float | None = None) -> Any:
        return (self.cluster.with_timeout(timeout) if timeout else self.cluster).onec

    @api("GET", "/api/v1/exchange/versions", response=list_of(ExchangeVersion), tags=("exchange",),
         summary="The exchange versions: what each loads into the CRM and writes from it")
    def list_exchange_versions(self, request: Request) -> Any:
        return {"items": [v.model_dump() for v in VERSIONS], "next_cursor": None}

    @api("GET", "/api/v1/exchange/versions/<string:version_id>/rules", raw_response="application/xml",
         tags=("exchange",), summary="The exchange-rules file the 1C side loads (1С:Бухгалтерия 8.2: CRM_1C82.xml)")
    def get_exchange_rules(self, request: Request, version_id: str) -> Any:
        rules = self._onec().exchange_rules(version_id)
        return Response(rules["text"].encode("utf-8"), status=200, content_type="application/xml; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(rules['file_name'])}"})

    @api("GET", "/api/v1/exchange/settings", response=ExchangeSettingsOut, tags=("exchange",), errors=(403,),
         summary="The exchange form: version, objects to load, objects to unload with their time windows, "
                 "overwrite (exchange.run)")
    def get_exchange_settings(self, request: Request) -> Any:
        return self._onec().get_exchange_settings(caller(self.context))

    @api("PUT", "/api/v1/exchange/settings", body=ExchangeSettingsIn, response=ExchangeSettingsOut,
         tags=("exchange",), errors=(403,), summary="Save the exchange form (exchange.run)")
    def put_exchange_settings(self, request: Request, body: ExchangeSettingsIn) -> Any:
        return self._onec().put_exchange_settings(caller(self.context), body.model_dump(mode="json"))

    @api("POST", "/api/v1/exchange/import", query=ExchangeImportQuery, raw_body=FILE_TYPES, response=JobAccepted,
         status=202, tags=("exchange",), errors=(403,),
         summary="Load an exchange file (the body: XML or a zip of XML files) as a background job "
                 "(exchange.run; the objects' create and update rights)")
    def import_exchange(self, request: Request, query: ExchangeImportQuery, content: bytes) -> Any:
        return self._onec(UPLOAD_TIMEOUT).start_exchange_import(
            caller(self.context), query.model_dump(mode="json", exclude_none=True),
            base64.b64encode(content).decode())

    @api("POST", "/api/v1/exchange/export", body=ExchangeExportIn, response=JobAccepted, status=202,
         tags=("exchange",), errors=(403,),
         summary="Write an exchange file of the records changed in the window, under your read rights")
    def export_exchange(self, request: Request, body: ExchangeExportIn) -> Any:
        return self._onec().start_exchange_export(caller(self.context), body.model_dump(mode="json",
                                                                                        exclude_none=True))

    @api("GET", "/api/v1/exchange/jobs/<string:job_id>", response=ExchangeJobOut, tags=("exchange",),
         errors=(403,), summary="An exchange job: status, counters, progress, the exported file's address")
    def get_exchange_job(self, request: Request, job_id: str) -> Any:
        return self._onec().get_exchange_job(caller(self.context), job_id)

    @api("GET", "/api/v1/exchange/jobs/<string:job_id>/file", raw_response="application/xml", tags=("exchange",),
         errors=(403, 409), summary="The file a finished export wrote (UTF-8 with a BOM), streamed")
    def get_exchange_file(self, request: Request, job_id: str) -> Any:
        who, onec = caller(self.context), self._onec()
        first = onec.exchange_file_part(who, job_id, 0)

        def parts() -> Iterator[bytes]:
            part = first
            while True:
                yield base64.b64decode(part["data"])
                if part.get("next") is None:
                    return
                part = onec.exchange_file_part(who, job_id, part["next"])

        name = str(first.get("file_name") or "exchange.xml")
        return Response(parts(), status=200, content_type="application/xml; charset=utf-8",
                        direct_passthrough=True,
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})

    @api("GET", "/api/v1/exchange/log", query=LogQuery, response=list_of(LogEntryOut), tags=("exchange",),
         errors=(403,), summary="The exchange log, newest first: jobs and the objects left out, with where and why")
    def get_exchange_log(self, request: Request, query: LogQuery) -> Any:
        return self._onec().exchange_log(caller(self.context), query.model_dump(mode="json", exclude_none=True))

    # -- the CommerceML HTTP protocol --------------------------------------------------------
    @api("GET", "/api/v1/exchange/1c", auth=None, raw_response="text/plain", tags=("exchange",),
         errors=(400, 401, 403, 409, 429), error_type="text/plain",
         summary="The CommerceML HTTP protocol as 1C drives it: type=catalog|sale, "
                 "mode=checkauth|init|import|query|success (see docs/onec.md)")
    def exchange_1c(self, request: Request) -> Any:
        return self._exchange_1c(request, b"")

    @api("POST", "/api/v1/exchange/1c", auth=None, raw_body=FILE_TYPES, raw_response="text/plain",
         tags=("exchange",), errors=(400, 401, 403, 409, 429), error_type="text/plain",
         summary="The CommerceML HTTP protocol: mode=file (a chunk of the file, appended)")
    def exchange_1c_file(self, request: Request, content: bytes) -> Any:
        return self._exchange_1c(request, content)

    def _exchange_1c(self, request: Request, content: bytes) -> Response:
        kind, mode = request.args.get("type", "")[:16], request.args.get("mode", "")[:16]
        try:
            if mode == "checkauth":
                return self._checkauth(request, kind)
            answer = self._onec(UPLOAD_TIMEOUT).exchange_http(
                request.cookies.get("crm_1c_session", ""), kind, mode, request.args.get("filename", "")[:300],
                base64.b64encode(content).decode() if content else None, request.args.get("version", "")[:8] or None)
        except CrmError as exc:
            return _failure(exc)
        return _text(answer["text"], int(answer["status"]), str(answer["content_type"]))

    def _checkauth(self, request: Request, kind: str) -> Response:
        credentials = basic_credentials(request)
        if credentials is None:
            response = _text("failure\nHTTP Basic with the user <product code>\\<login> is required\n", 401)
            response.headers["WWW-Authenticate"] = 'Basic realm="CRM 1C exchange"'
            return response
        code, login, password = credentials
        tokens = self.cluster.with_timeout(self.token_state.nested_timeout).auth.login(
            code, login, password, self.token_state.client_ip(request), "1C exchange")
        claims = self.token_state.verify(tokens["access_token"])
        who = {"tenant_id": claims.tenant_id, "user_id": claims.user_id}
        try:
            opened = self._onec().open_exchange_session(who, kind)
        finally:  # the login's own session is not needed: the exchange session is the cookie's
            self.cluster.auth.logout(who, claims.session_id)
            self.token_state.revoke(claims.session_id, None)
        response = _text(f"success\n{opened['cookie_name']}\n{opened['cookie']}\n")
        response.set_cookie(opened["cookie_name"], opened["cookie"], httponly=True, samesite="Lax",
                            path="/api/v1/exchange/1c")
        return response
