"""Nameko entrypoints of the onec service. They stay thin: validate, call
the domain code, return plain data.

CSV import and export (``services.onec.imports``, ``services.onec.exports``):
the rights (``csv.import`` with the entity's create/update, ``csv.export``
with its read scope) are the crm service's to check, since it owns the
records; every call here that touches records goes through it. An import's
file is counted against the tenant's disk quota (the auth service's
storage ledger) while its job runs."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import time
from typing import Any, Callable

import eventlet
import sqlalchemy as sa
from nameko.dependency_providers import Config
from nameko.timer import timer
from pydantic import ValidationError

from contracts import journal
from contracts.imports import ExportQuery, ImportQuery, SuggestQuery
from crm_shared.config import settings_of
from crm_shared.db import read_only
from crm_shared.errors import CrmError, ServiceUnavailable, Unauthenticated, validation_failed
from crm_shared.jobs import Stopping, job_timer
from crm_shared.rpc import ClusterRpc, rpc
from crm_shared.service import DatabaseServiceBase
from services.onec import exchange, exports, imports, kd2, site_exchange
from services.onec import metrics as m
from services.onec.dependencies import PagePrefetch
from services.onec.exceptions import Conflict, NotFound, ValidationFailed
from services.onec.models import ExchangeJob, ExchangeSettings, ImportJob, ImportRow
from services.onec.settings import Settings

log = logging.getLogger(__name__)

domain_rpc = rpc(expected_exceptions=(CrmError,))
EXPORT_PAGE = 2000
ERRORS_PAGE = 5000


def _caller(caller: Any) -> tuple[str, str]:
    if not isinstance(caller, dict) or not caller.get("tenant_id") or not caller.get("user_id"):
        raise Unauthenticated("no authenticated caller", code="unauthenticated")
    return str(caller["tenant_id"]), str(caller["user_id"])


def _content(content_b64: Any) -> bytes:
    try:
        return base64.b64decode(str(content_b64), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("the file must travel as base64", fields={"file": "not base64"}) from None


def _parse(model: Any, data: Any) -> Any:
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise validation_failed(exc) from None


class OnecService(DatabaseServiceBase):
    """1C:Accounting exchange (versions, import/export jobs, exchange log, CommerceML HTTP protocol)
    and CSV import/export."""

    name = "onec"

    cluster: Any = ClusterRpc()
    config: Any = Config()
    stopping: Any = Stopping()
    prefetch: Any = PagePrefetch()

    @property
    def settings(self) -> Settings:
        return settings_of(self.config, Settings)

    # -- CSV import ---------------------------------------------------------------------
    @domain_rpc
    def suggest_mapping(self, caller: dict[str, Any], query: dict[str, Any], content_b64: str) -> dict[str, Any]:
        """The file's format, headers and the suggested mapping (nothing is stored)."""
        q = _parse(SuggestQuery, query)
        self.cluster.crm.check_import(caller, q.entity, "skip")
        return imports.suggestion(q.entity, _content(content_b64))

    @domain_rpc
    def start_import(self, caller: dict[str, Any], query: dict[str, Any], content_b64: str) -> dict[str, Any]:
        """``{job_id}``: the file is checked, counted in the quota, stored, and queued."""
        tenant_id, user_id = _caller(caller)
        q = _parse(ImportQuery, query)
        content = _content(content_b64)
        actor = self.cluster.crm.check_import(caller, q.entity, q.duplicates).get("actor")
        job, parts = imports.new_job(tenant_id, user_id, actor, q, content)
        size = len(content)
        del content  # the parts hold it now
        self._store_counted(tenant_id, size, f"csv import {job.id}", lambda: self._add_parts(job, parts))
        return {"job_id": str(job.id)}

    def _store_counted(self, tenant_id: str, size: int, purpose: str, store: Callable[[], None]) -> None:
        """Stores a job's file within the tenant's disk quota: reserved first (409 ``quota_exceeded``),
        then written and committed, then counted; a failure in between stores and counts nothing."""
        reservation = self.cluster.auth.reserve_storage(tenant_id, size, purpose)
        try:
            store()
            self.db.commit()
        except Exception:
            self.db.rollback()
            self.cluster.auth.release_storage(reservation)
            raise
        self.cluster.auth.commit_storage(reservation, size)

    def _add_parts(self, job: Any, parts: list[Any]) -> None:
        self.db.add(job)
        for part in parts:  # one at a time: each part's SQL text is twice its size
            self.db.add(part)
            self.db.flush()

    @domain_rpc
    @read_only
    def get_import_job(self, caller: dict[str, Any], job_id: str) -> dict[str, Any]:
        tenant_id, user_id = _caller(caller)
        return imports.job_out(imports.visible_job(self.db, tenant_id, user_id, job_id))

    @domain_rpc
    @read_only
    def list_import_rows(self, caller: dict[str, Any], job_id: str,
                         query: dict[str, Any] | None = None) -> dict[str, Any]:
        tenant_id, user_id = _caller(caller)
        job = imports.visible_job(self.db, tenant_id, user_id, job_id)
        return imports.list_rows(self.db, job, query)

    @domain_rpc
    @read_only
    def import_errors(self, caller: dict[str, Any], job_id: str, after: int = 1) -> dict[str, Any]:
        """A chunk of the error file: ``{text, encoding, file_name, next}`` (next: pass as ``after``)."""
        tenant_id, user_id = _caller(caller)
        job = imports.visible_job(self.db, tenant_id, user_id, job_id)
        rows = list(self.db.execute(
            sa.select(ImportRow.row_no, ImportRow.cells, ImportRow.reason).where(
                ImportRow.tenant_id == job.tenant_id, ImportRow.job_id == job.id, ImportRow.outcome == "rejected",
                ImportRow.row_no > int(after)).order_by(ImportRow.row_no).limit(ERRORS_PAGE + 1)))
        more = len(rows) > ERRORS_PAGE
        rows = rows[:ERRORS_PAGE]
        csv_like = job.format == "csv"
        text = exports.errors_chunk(list(job.headers), (job.delimiter or ";") if csv_like else ";",
                                    [(list(r.cells or []), r.reason or "") for r in rows], first=int(after) <= 1,
                                    bom=(job.encoding == "utf-8-sig") or not csv_like)
        encoding = "windows-1251" if job.encoding == "windows-1251" else "utf-8"
        name = (job.file_name or f"import-{job.entity}").rsplit(".", 1)[0]
        return {"text": text, "encoding": encoding, "file_name": f"{name}-errors.csv",
                "next": rows[-1].row_no if more and rows else None}

    @domain_rpc
    def revert_import(self, caller: dict[str, Any], job_id: str) -> dict[str, Any]:
        """Queues the revert of a finished import; the job then shows its progress."""
        tenant_id, user_id = _caller(caller)
        job = imports.visible_job(self.db, tenant_id, user_id, job_id)
        self.cluster.crm.check_import(caller, job.entity, "skip")
        job = imports.request_revert(self.db, tenant_id, user_id, job_id)
        return imports.job_out(job)

    # -- CSV export -----------------------------------------------------------------------
    @domain_rpc
    def export_chunk(self, caller: dict[str, Any], query: dict[str, Any],
                     cursor: str | None = None) -> dict[str, Any]:
        """A chunk of the export: ``{text, encoding, file_name, next}`` (next: pass as ``cursor``)."""
        tenant_id, user_id = _caller(caller)
        q = _parse(ExportQuery, query)
        filters = {k: v for k, v in q.model_dump(mode="json", exclude={"entity", "format"}).items() if v is not None}
        crm = self.cluster.with_timeout(self.settings.ONEC_BATCH_TIMEOUT_SECONDS).crm

        def key(at: str | None) -> tuple[Any, ...]:
            return tenant_id, user_id, q.entity, tuple(sorted(filters.items())), at

        started = self.prefetch.take(key(cursor))
        page = started.wait() if started is not None else crm.export_page(caller, q.entity, filters, cursor,
                                                                           EXPORT_PAGE)
        following = page["next_cursor"]
        if following:
            self.prefetch.fetch_ahead(key(following), lambda: crm.export_page(caller, q.entity, filters, following,
                                                                        EXPORT_PAGE))
        text = exports.chunk(q.entity, q.format, page["items"], page.get("names") or {}, first=not cursor)
        m.export_rows().labels(q.entity).inc(len(page["items"]))
        return {"text": text, "encoding": "utf-8", "file_name": f"{q.entity}.csv", "next": page["next_cursor"]}

    # -- 1C exchange (services.onec.exchange; the crm service checks exchange.run) ---------------
    def _exchange_caller(self, caller: Any) -> tuple[str, str, Any]:
        tenant_id, user_id = _caller(caller)
        return tenant_id, user_id, self.cluster.crm.check_exchange(caller).get("actor")

    @domain_rpc
    def exchange_rules(self, version_id: str) -> dict[str, Any]:
        """The exchange-rules file the 1C side loads, for the versions that have one."""
        if str(version_id) != "bp82":
            raise NotFound(f"the version {version_id} has no exchange-rules file", code="not_found")
        return {"text": kd2.rules_file(), "file_name": "CRM_1C82.xml"}

    @domain_rpc
    def get_exchange_settings(self, caller: dict[str, Any]) -> dict[str, Any]:
        tenant_id, _, _ = self._exchange_caller(caller)
        answer = exchange.settings_out(self.db.get(ExchangeSettings, tenant_id))
        self.db.commit()
        return answer

    @domain_rpc
    def put_exchange_settings(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        tenant_id, user_id, actor = self._exchange_caller(caller)
        try:
            row = exchange.save_settings(self.db, tenant_id, user_id, data)
        except ValidationError as exc:
            raise validation_failed(exc) from None
        answer = exchange.settings_out(row)
        self.outbox.record(self.db, journal.RECORD_CHANGED, {
            "tenant_id": tenant_id, "entity": "exchange_settings", "entity_id": tenant_id,
            "action": journal.SETTINGS, "actor": actor, "source": "api", "request_id": None,
            "changes": {k: v for k, v in answer.items() if k != "updated_at"}}, tenant_id, tenant_id)
        self.db.commit()
        return answer

    @domain_rpc
    def start_exchange_import(self, caller: dict[str, Any], query: dict[str, Any],
                              content_b64: str) -> dict[str, Any]:
        """``{job_id}``: the file is counted in the quota, stored, and queued."""
        tenant_id, user_id, actor = self._exchange_caller(caller)
        content = _content(content_b64)
        try:
            job, parts = exchange.new_import(self.db, tenant_id, user_id, actor, query, content)
        except ValidationError as exc:
            raise validation_failed(exc) from None
        size = len(content)
        del content
        self._store_counted(tenant_id, size, f"1c import {job.id}", lambda: self._add_parts(job, parts))
        return {"job_id": str(job.id)}

    @domain_rpc
    def start_exchange_export(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        tenant_id, user_id, actor = self._exchange_caller(caller)
        try:
            job = exchange.new_export(self.db, tenant_id, user_id, actor, data)
        except ValidationError as exc:
            raise validation_failed(exc) from None
        self.db.add(job)
        self.db.commit()
        return {"job_id": str(job.id)}

    @domain_rpc
    def get_exchange_job(self, caller: dict[str, Any], job_id: str) -> dict[str, Any]:
        tenant_id, _, _ = self._exchange_caller(caller)
        answer = exchange.job_out(exchange.visible_job(self.db, tenant_id, job_id))
        self.db.commit()
        return answer

    @domain_rpc
    def exchange_file_part(self, caller: dict[str, Any], job_id: str, part: int = 0) -> dict[str, Any]:
        """``{data (base64), file_name, next}``: one part of an export's file (next: the part after, or None)."""
        tenant_id, _, _ = self._exchange_caller(caller)
        job = exchange.visible_job(self.db, tenant_id, job_id)
        if job.direction != "export" or job.status != "done":
            raise Conflict("only a finished export has a file", code="not_finished")
        data = exchange.file_part(self.db, job, int(part)) or b""
        following = exchange.file_part(self.db, job, int(part) + 1) is not None
        self.db.commit()
        return {"data": base64.b64encode(data).decode(), "file_name": job.file_name or "exchange.xml",
                "next": int(part) + 1 if following else None}

    @domain_rpc
    def exchange_log(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        tenant_id, _, _ = self._exchange_caller(caller)
        try:
            answer = exchange.list_log(self.db, tenant_id, query)
        except ValidationError as exc:
            raise validation_failed(exc) from None
        self.db.commit()
        return answer

    # -- the CommerceML HTTP protocol (services.onec.site_exchange) ------------------------------
    @domain_rpc
    def open_exchange_session(self, caller: dict[str, Any], kind: str) -> dict[str, Any]:
        """``mode=checkauth``, the login done: the caller holds exchange.run; answers the cookie."""
        tenant_id, user_id, actor = self._exchange_caller(caller)
        cookie = site_exchange.open_session(self.db, tenant_id, user_id, actor, str(kind or "catalog")[:8])
        self.db.commit()
        return {"cookie_name": site_exchange.COOKIE, "cookie": cookie}

    @domain_rpc
    def exchange_http(self, cookie: str, kind: str, mode: str, filename: str | None = None,
                      content_b64: str | None = None, version: str | None = None) -> dict[str, Any]:
        """One call of 1C after checkauth: ``{status, text, content_type}``, the answer 1C reads."""
        def text(body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> dict[str, Any]:
            return {"status": status, "text": body, "content_type": content_type}
        try:
            row = site_exchange.find_session(self.db, cookie)
        except site_exchange.BadSession as exc:
            self.db.rollback()
            return text(f"failure\n{exc}\n", 401)
        caller = site_exchange.caller_of(row)
        self.cluster.crm.check_exchange(caller)  # still active, still holding exchange.run
        mode, kind, name = str(mode or ""), str(kind or ""), str(filename or "")
        if mode == "init":
            self.db.commit()
            # 1C 8.3 asking for a protocol version (version=3.1) also wants the session named and the version
            # confirmed; older ones read only the first two lines
            extra = f"sessid={row.id}\nversion={str(version)[:8]}\n" if version else ""
            return text(f"zip=yes\nfile_limit={self.settings.ONEC_HTTP_FILE_LIMIT_BYTES}\n{extra}")
        if mode == "file":
            kept = site_exchange.append(self.db, row, name, _content(content_b64 or ""))
            if kept and kind == "sale":  # documents from 1C: imported at once
                return self._site_import(row, name, answer_progress=False)
            self.db.commit()
            return text("success\n")
        if mode == "import":
            return self._site_import(row, name)
        if mode == "query" and kind == "sale":
            crm = self.cluster.with_timeout(self.settings.ONEC_BATCH_TIMEOUT_SECONDS).crm
            body = site_exchange.sale_query(self.db, row, crm)
            self.db.commit()
            return text(body, content_type="application/xml; charset=utf-8")
        if mode == "success" and kind == "sale":
            site_exchange.sale_success(self.db, row)
            self.db.commit()
            return text("success\n")
        if mode == "deactivate" and kind == "catalog":
            answer = self._site_deactivate(row)
            self.db.commit()
            return text(answer)
        if mode in ("complete", "success"):
            self.db.commit()
            return text("success\n")
        self.db.rollback()
        return text(f"failure\nunknown mode {mode!r} for type {kind!r}\n", 400)

    def _site_deactivate(self, row: Any) -> str:
        """``mode=deactivate`` (1C's full catalogue sent): products from 1C that the session's files did not
        list are deactivated, once every file of the session is imported."""
        jobs = site_exchange.session_jobs(self.db, row)
        if any(j.status in exchange.OPEN for j in jobs):
            return "progress\nthe catalogue is still being imported\n"
        full = [j for j in jobs if j.status == "done" and j.full_catalogue]
        if not full:
            return "success\nnothing to deactivate: no full catalogue in this exchange\n"
        crm = _ExchangeCrm(self.cluster.with_timeout(self.settings.ONEC_BATCH_TIMEOUT_SECONDS).crm)
        count = exchange.deactivate_unlisted(self.db, full[-1], crm, [j for j in jobs if j.status == "done"])
        return f"success\n{count} product(s) deactivated\n"

    def _site_import(self, row: Any, name: str, answer_progress: bool = True) -> dict[str, Any]:
        try:
            state, job, size = site_exchange.import_step(self.db, row, name)
            if size:  # a job just made (its file already in the session): it counts in the quota
                self._store_counted(row.tenant_id, size, f"1c import {job.id}", lambda: None)
            else:
                self.db.commit()
        except CrmError as exc:  # the file is not there, or it does not fit the quota: nothing is kept
            self.db.rollback()
            return {"status": 200, "text": f"failure\n{exc}\n", "content_type": "text/plain; charset=utf-8"}
        if state == "failure":
            body = f"failure\n{job.error or 'the import failed'}\n"
        elif state == "success" or not answer_progress:
            body = f"success\n{name}: прочитано {job.read}, создано {job.created}, обновлено {job.updated}\n"
        else:
            body = f"progress\n{name}: {exchange.job_out(job)['progress']}%\n"
        return {"status": 200, "text": body, "content_type": "text/plain; charset=utf-8"}

    # -- the job runner ---------------------------------------------------------------------
    @job_timer(interval=1)
    def run_jobs(self) -> None:
        """Runs open jobs (CSV, then exchange), one at a time, until none is left or the service stops."""
        settings = self.settings
        self._observe_open_jobs()
        while not self.stopping():
            job = imports.claim(self.db, settings.ONEC_JOB_LEASE_SECONDS)
            self.db.commit()
            if job is not None:
                self._run(job, settings)
                self.db.commit()
                continue
            exchange_job = exchange.claim(self.db, settings.ONEC_JOB_LEASE_SECONDS)
            self.db.commit()
            if exchange_job is None:
                return
            self._run_exchange(exchange_job, settings)
            self.db.commit()

    def _run_exchange(self, job: ExchangeJob, settings: Settings) -> None:
        kind = f"exchange_{job.direction}"
        crm = _ExchangeCrm(self.cluster.with_timeout(settings.ONEC_BATCH_TIMEOUT_SECONDS).crm)
        started = time.perf_counter()

        def counted(object_kind: str, outcome: str, n: int) -> None:
            m.exchange_objects().labels(job.version, object_kind, outcome).inc(n)

        def body() -> None:
            if job.direction == "import":
                run = exchange.ImportRun(self.db, job, crm, self.db.commit, self.stopping,
                                         settings.ONEC_JOB_LEASE_SECONDS, on_objects=counted)
                if not run.run():
                    job.lease_until = None  # another runner may take it at once
                    return
            else:
                exchange.run_export(self.db, job, crm, self.db.commit, on_objects=counted)
            exchange.finish(self.db, job, self.outbox)
            self.db.commit()
            self._release_stored(job, f"1c-import:{job.id}")
            m.jobs().labels(kind, "done").inc()
            m.exchange_duration().labels(job.version, job.direction).observe(time.perf_counter() - started)

        def failed(again: Any, message: str, outcome: str) -> None:
            exchange.fail(self.db, again, message)
            self.db.commit()
            m.jobs().labels(kind, outcome).inc()
            self._release_stored(again, f"1c-import:{again.id}")
        self._guarded(job, body, failed, settings)

    def _guarded(self, job: Any, body: Callable[[], None], failed: Callable[[Any, str, str], None],
                 settings: Settings) -> None:
        """Runs one pass of a job. A crm service that is down or slow makes the job wait and try again
        later, from its last batch (backoff 2, 4 … 300 s, ``ONEC_JOB_MAX_ATTEMPTS`` tries); a refusal
        (``expected_error``) or anything unexpected (``error``) fails it."""
        model, key = type(job), (job.tenant_id, job.id)
        try:
            body()
        except ServiceUnavailable as exc:
            self.db.rollback()
            again = self.db.get(model, key)
            again.attempts += 1
            if again.attempts >= settings.ONEC_JOB_MAX_ATTEMPTS:
                failed(again, f"gave up after {again.attempts} tries: {exc}", "error")
            else:
                again.lease_until = imports.utcnow() + dt.timedelta(seconds=min(300, 2 ** again.attempts))
                log.warning("job %s waits for the crm service (try %s): %s", again.id, again.attempts, exc)
        except CrmError as exc:
            self.db.rollback()
            again = self.db.get(model, key)
            if again is not None:
                failed(again, str(exc), "expected_error")
        except Exception as exc:  # noqa: BLE001 - a job must end, whatever broke
            log.exception("job %s failed", job.id)
            self.db.rollback()
            again = self.db.get(model, key)
            if again is not None:
                failed(again, f"unexpected error: {type(exc).__name__}", "error")

    def _release_stored(self, job: Any, ref: str) -> None:
        """A job's file leaves the quota once it is deleted (housekeeping retries a failure)."""
        if not job.file_bytes:
            return
        try:
            self.cluster.auth.release_stored(job.tenant_id, job.file_bytes, ref)
        except CrmError as exc:
            log.warning("could not release the storage of job %s yet: %s", job.id, exc)
            return
        job.file_bytes = 0
        self.db.commit()

    def _observe_open_jobs(self) -> None:
        count, oldest = self.db.execute(sa.select(sa.func.count(), sa.func.min(ImportJob.created_at)).where(
            ImportJob.status.in_(imports.OPEN))).one()
        more, oldest_exchange = self.db.execute(sa.select(sa.func.count(), sa.func.min(ExchangeJob.created_at)).where(
            ExchangeJob.status.in_(exchange.OPEN))).one()
        self.db.commit()
        oldest = min((t for t in (oldest, oldest_exchange) if t is not None), default=None)
        m.open_jobs().set(int(count or 0) + int(more or 0))
        age = (dt.datetime.now(dt.timezone.utc) - oldest).total_seconds() if oldest else 0.0
        m.oldest_open_job().set(max(0.0, age))

    def _run(self, job: ImportJob, settings: Settings) -> None:
        kind = "csv_revert" if job.status == "reverting" else "csv_import"
        crm = _TimedCrm(self.cluster.with_timeout(settings.ONEC_BATCH_TIMEOUT_SECONDS).crm, job.entity)

        def body() -> None:
            if kind == "csv_revert":
                if not imports.run_revert(self.db, job, crm, self.db.commit, self.outbox, self.stopping,
                                          settings.ONEC_JOB_LEASE_SECONDS):
                    return
            else:
                table = imports.table_of(self.db, job)
                if table is None:
                    raise ValidationFailed("the job's file is gone", code="file_gone")
                run = imports.ImportRun(self.db, job, table, crm, self.db.commit, self.stopping,
                                        settings.ONEC_JOB_LEASE_SECONDS, on_rows=self._count_rows(job.entity))
                if not run.run():
                    job.lease_until = None  # another runner may take it at once
                    return
                imports.finish_import(self.db, job, self.outbox)
                self.db.commit()
                self._release_stored(job, f"csv-import:{job.id}")
            m.jobs().labels(kind, "done").inc()

        def failed(again: Any, message: str, outcome: str) -> None:
            imports.fail(self.db, again, message)
            self.db.commit()
            m.jobs().labels(kind, outcome).inc()
            if kind == "csv_import":
                self._release_stored(again, f"csv-import:{again.id}")
        self._guarded(job, body, failed, settings)

    @staticmethod
    def _count_rows(entity: str) -> Any:
        def count(counts: dict[str, int]) -> None:
            for outcome, n in counts.items():
                if n:
                    m.import_rows().labels(entity, outcome).inc(n)
        return count

    @timer(interval=3600)
    def housekeeping(self) -> None:
        """Releases the storage of finished jobs still counted; forgets jobs past their retention."""
        for job in self.db.scalars(sa.select(ImportJob).where(ImportJob.status.in_(("done", "failed", "reverted")),
                                                              ImportJob.file_bytes > 0).limit(1000)):
            self._release_stored(job, f"csv-import:{job.id}")
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=self.settings.ONEC_IMPORT_RETENTION_DAYS)
        old = sa.select(ImportJob.tenant_id, ImportJob.id).where(
            ImportJob.finished_at < cutoff, ImportJob.status.in_(("done", "failed", "reverted")),
            ImportJob.file_bytes == 0)
        self.db.execute(sa.delete(ImportRow).where(sa.tuple_(ImportRow.tenant_id, ImportRow.job_id).in_(old)))
        self.db.execute(sa.delete(ImportJob).where(sa.tuple_(ImportJob.tenant_id, ImportJob.id).in_(old)))
        self.db.commit()
        # 1C exchange: imports' files still counted, jobs (exported files, log) past the retention,
        # HTTP exchange sessions that ended (with what they uploaded and never imported)
        for exchange_job in self.db.scalars(sa.select(ExchangeJob).where(
                ExchangeJob.status.in_(("done", "failed")), ExchangeJob.file_bytes > 0).limit(1000)):
            self._release_stored(exchange_job, f"1c-import:{exchange_job.id}")
        exchange.forget_before(self.db, cutoff)
        site_exchange.forget_expired(self.db)


class _ExchangeCrm:
    """The crm proxy for an exchange job: a batch's call goes while the next batch is read."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy

    def start_apply_exchange(self, caller: dict[str, Any], batch: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        call = eventlet.spawn(self.proxy.apply_exchange, caller, batch)  # the proxy's own timeout applies
        return lambda: dict(call.wait())

    def exchange_export_page(self, caller: dict[str, Any], kind: str, window: dict[str, Any], after: str | None,
                             limit: int) -> dict[str, Any]:
        return dict(self.proxy.exchange_export_page(caller, kind, window, after, limit))

    def deactivate_unlisted(self, caller: dict[str, Any], job_ids: list[str]) -> dict[str, Any]:
        return dict(self.proxy.deactivate_unlisted(caller, job_ids))


class _TimedCrm:
    """The crm proxy for a job, timing each batch."""

    def __init__(self, proxy: Any, entity: str) -> None:
        self.proxy, self.entity = proxy, entity

    def start_import_rows(self, caller: dict[str, Any], kind: str,
                          batch: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        started = time.perf_counter()
        call = eventlet.spawn(self.proxy.import_rows, caller, kind, batch)  # the proxy's own timeout applies

        def answer() -> dict[str, Any]:
            try:
                return dict(call.wait())
            finally:
                m.batch_duration().labels(self.entity).observe(time.perf_counter() - started)
        return answer

    def revert_import(self, caller: dict[str, Any], kind: str, import_id: str, limit: int,
                      after: str | None) -> dict[str, Any]:
        return dict(self.proxy.revert_import(caller, kind, import_id, limit, after))


SERVICE = OnecService
