"""1C exchange routes (``/api/v1/exchange/...``): the versions, the
tenant's exchange settings, import and export jobs, and the exchange log.
The onec service runs them; ``exchange.run`` is needed for all but the
versions list (the crm service checks it).

An import's file (XML, or a zip of XML files) is the request body, up to
``GATEWAY_IMPORT_MAX_BYTES``. An export's file is streamed part by part."""
from __future__ import annotations

import base64
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
from gateway.entrypoints import api
from gateway.tokens import caller

FILE_TYPES = ("application/xml", "text/xml", "application/zip", "application/octet-stream")
UPLOAD_TIMEOUT = 120.0


class ExchangeRoutes:
    cluster: Any
    context: Any

    def _onec(self, timeout: float | None = None) -> Any:
        return (self.cluster.with_timeout(timeout) if timeout else self.cluster).onec

    @api("GET", "/api/v1/exchange/versions", response=list_of(ExchangeVersion), tags=("exchange",),
         summary="The exchange versions: what each loads into the CRM and writes from it")
    def list_exchange_versions(self, request: Request) -> Any:
        return {"items": [v.model_dump() for v in VERSIONS], "next_cursor": None}

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
