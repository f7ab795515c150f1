"""CSV import and export routes (``/api/v1/import/...``, ``/api/v1/export/csv``):
the onec service runs them; the crm service checks the rights
(``csv.import`` with the entity's create/update, ``csv.export`` with its
read scope).

The file is the request body (CSV or ``.xlsx``, up to
``GATEWAY_IMPORT_MAX_BYTES``). Exports and error files are streamed: the
first chunk is fetched before the answer starts, so that a refusal is a
proper error status; the rest follow chunk by chunk, never held whole."""
from __future__ import annotations

import base64
from typing import Any, Callable, Iterator
from urllib.parse import quote

import eventlet
from werkzeug.wrappers import Request, Response

from contracts.base import list_of
from contracts.imports import (
    ExportQuery,
    ImportJobOut,
    ImportQuery,
    JobAccepted,
    MappingOut,
    RowOut,
    RowsQuery,
    SuggestQuery,
)
from gateway.entrypoints import api
from gateway.tokens import caller

FILE_TYPES = ("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              "application/octet-stream")
UPLOAD_TIMEOUT = 120.0


def _streamed(first: dict[str, Any], more: Callable[[Any], dict[str, Any]]) -> Response:
    encoding = str(first.get("encoding") or "utf-8")

    def chunks() -> Iterator[bytes]:
        chunk = first
        while True:
            # the next chunk is fetched while this one goes out
            following = eventlet.spawn(more, chunk["next"]) if chunk.get("next") is not None else None
            yield str(chunk["text"]).encode(encoding, errors="replace")
            if following is None:
                return
            chunk = following.wait()

    name = str(first.get("file_name") or "export.csv")
    return Response(chunks(), status=200, content_type=f"text/csv; charset={encoding}", direct_passthrough=True,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


class ImportRoutes:
    cluster: Any
    context: Any

    def _onec(self, timeout: float | None = None) -> Any:
        return (self.cluster.with_timeout(timeout) if timeout else self.cluster).onec

    @api("POST", "/api/v1/import/csv", query=ImportQuery, raw_body=FILE_TYPES, response=JobAccepted, status=202,
         tags=("csv",), errors=(403, 404, 409),
         summary="Import a CSV or .xlsx file (the body) as a background job (csv.import and the entity's "
                 "create; update too for duplicates=update)")
    def import_csv(self, request: Request, query: ImportQuery, content: bytes) -> Any:
        return self._onec(UPLOAD_TIMEOUT).start_import(
            caller(self.context), query.model_dump(mode="json", exclude_none=True),
            base64.b64encode(content).decode())

    @api("POST", "/api/v1/import/csv/suggest", query=SuggestQuery, raw_body=FILE_TYPES, response=MappingOut,
         tags=("csv",),
         summary="The file's columns and the suggested mapping (the file, or its first rows, as the body)")
    def suggest_csv_mapping(self, request: Request, query: SuggestQuery, content: bytes) -> Any:
        return self._onec(UPLOAD_TIMEOUT).suggest_mapping(
            caller(self.context), query.model_dump(mode="json"), base64.b64encode(content).decode())

    @api("GET", "/api/v1/import/jobs/<string:job_id>", response=ImportJobOut, tags=("csv",),
         summary="An import job: status, counters, progress (yours only)")
    def get_import_job(self, request: Request, job_id: str) -> Any:
        return self._onec().get_import_job(caller(self.context), job_id)

    @api("GET", "/api/v1/import/jobs/<string:job_id>/rows", query=RowsQuery, response=list_of(RowOut),
         tags=("csv",), summary="What the import did (or, in a dry run, would do) with each row")
    def list_import_rows(self, request: Request, job_id: str, query: RowsQuery) -> Any:
        return self._onec().list_import_rows(caller(self.context), job_id,
                                             query.model_dump(mode="json", exclude_none=True))

    @api("GET", "/api/v1/import/jobs/<string:job_id>/errors.csv", raw_response="text/csv", tags=("csv",),
         summary="The rejected rows as they were, with a reason column: fix them and import the file again")
    def get_import_errors(self, request: Request, job_id: str) -> Any:
        who, onec = caller(self.context), self._onec()
        return _streamed(onec.import_errors(who, job_id, 1), lambda after: onec.import_errors(who, job_id, after))

    @api("POST", "/api/v1/import/jobs/<string:job_id>/revert", response=ImportJobOut, status=202, tags=("csv",),
         errors=(403,), summary="Revert an import: its records go, the fields it updated come back (records "
                                "changed since are left and reported)")
    def revert_import(self, request: Request, job_id: str) -> Any:
        return self._onec().revert_import(caller(self.context), job_id)

    @api("GET", "/api/v1/export/csv", query=ExportQuery, raw_response="text/csv", tags=("csv",), errors=(403,),
         summary="Export what the list shows under your rights as CSV (csv.export), streamed")
    def export_csv(self, request: Request, query: ExportQuery) -> Any:
        who, onec = caller(self.context), self._onec(60.0)
        data = query.model_dump(mode="json", exclude_none=True)
        return _streamed(onec.export_chunk(who, data, None), lambda cursor: onec.export_chunk(who, data, cursor))
