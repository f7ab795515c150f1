"""CSV import jobs: submitting a file, running it batch by batch against the
crm service, reverting it, and what the API shows of a job.

A job runs in bounded memory: the file is walked row by row, ``BATCH`` rows
at a time go to ``crm.import_rows``, and each batch's outcomes, counters
and position (``last_row``, ``batch_no``) are committed before the next.
A job whose runner stopped (a restart, a lost lease) resumes from there; the
crm service answers a batch it already applied with the same outcomes, so
nothing is imported twice.

Duplicates within the file are found here, by the same ``duplicate_keys``
the crm service uses against the tenant's records: a row repeating an
earlier row carries ``same_as`` (that row's number), and a
batch is sent before it whenever it repeats a row still waiting in the same
batch, so that every earlier row's outcome is known. A dry run goes
through the same path; the crm service rolls each of its batches back."""
from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any, Callable, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from contracts import journal
from contracts.imports import ImportQuery, RowsQuery, duplicate_keys
from crm_shared.db import insert_rows
from crm_shared.jobs import claim_oldest
from crm_shared.records import decode_cursor, encode_cursor, jsonable, parse_id
from services.onec import columns
from services.onec.exceptions import Conflict, NotFound, ValidationFailed
from services.onec.models import ImportFile, ImportJob, ImportRow
from services.onec.tables import Table, read_table, stored_table

BATCH = 2000
SAMPLE_ROWS = 5
OPEN = ("queued", "running", "reverting")


class Crm(Protocol):
    def start_import_rows(self, caller: dict[str, Any], kind: str,
                          batch: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        """Sends ``crm.import_rows``; the callable waits for its answer."""

    def revert_import(self, caller: dict[str, Any], kind: str, import_id: str, limit: int,
                      after: str | None) -> dict[str, Any]: ...


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# -- the mapping ---------------------------------------------------------------------

def suggestion(entity: str, content: bytes) -> dict[str, Any]:
    table = read_table(content)
    mapping = columns.suggest(entity, table.headers)
    sample = [cells for _, cells in itertools.islice(table.rows(), SAMPLE_ROWS)]
    return {"entity": entity, "format": table.format, "encoding": table.encoding, "delimiter": table.delimiter,
            "headers": table.headers, "mapping": mapping,
            "unmapped": [h for h in table.headers if h and h not in mapping],
            "missing": [c.field for c in columns.COLUMNS[entity] if c.required and c.field not in mapping.values()],
            "fields": [{"name": c.field, "title": c.title, "required": c.required, "many": c.many}
                       for c in columns.COLUMNS[entity]],
            "sample": sample}


# -- submitting -----------------------------------------------------------------------

PART_BYTES = 1024 * 1024


def new_job(tenant_id: str, user_id: str, actor: dict[str, Any] | None, query: ImportQuery,
            content: bytes) -> tuple[ImportJob, list[ImportFile]]:
    """The job and its file, checked: unreadable files and mappings that do not fit are 422s."""
    table = read_table(content)
    given = query.mapping_object()
    mapping = columns.check_mapping(query.entity, table.headers,
                                    given if given is not None else columns.suggest(query.entity, table.headers))
    total = table.count_rows()
    if total == 0:
        raise ValidationFailed("the file has a header but no rows", code="unreadable_file",
                               fields={"file": "no data rows"})
    job_id = uuid.uuid4()
    job = ImportJob(tenant_id=tenant_id, id=job_id, user_id=uuid.UUID(user_id), actor=actor, entity=query.entity,
                    file_name=query.file_name, policy=query.duplicates, dry_run=query.dry_run, format=table.format,
                    encoding=table.encoding, delimiter=table.delimiter, headers=table.headers, mapping=mapping,
                    status="queued", total=total, read=0, created=0, updated=0, skipped=0, duplicates=0,
                    rejected=0, last_row=1, batch_no=0, attempts=0, file_bytes=len(content), created_at=utcnow())
    parts = [ImportFile(tenant_id=tenant_id, job_id=job_id, part=n, data=content[start:start + PART_BYTES])
             for n, start in enumerate(range(0, len(content), PART_BYTES))]
    return job, parts


def table_of(session: Session, job: ImportJob) -> Table | None:
    """The job's stored file, read part by part as the rows are walked (None when it is gone)."""
    def fetch(part: int) -> bytes | None:
        return session.scalar(sa.select(ImportFile.data).where(
            ImportFile.tenant_id == job.tenant_id, ImportFile.job_id == job.id, ImportFile.part == part))

    stored = sa.select(ImportFile.part).where(ImportFile.tenant_id == job.tenant_id, ImportFile.job_id == job.id)
    if session.scalar(stored.limit(1)) is None:
        return None
    return stored_table(job.format, job.encoding, job.delimiter, list(job.headers), fetch)


# -- claiming ---------------------------------------------------------------------------

def claim(session: Session, lease_seconds: float) -> ImportJob | None:
    """The oldest open job no runner holds, leased to this one (committed by the caller)."""
    job = claim_oldest(session, ImportJob, OPEN, lease_seconds)
    if job is None:
        return None
    if job.status == "queued":
        job.status = "running"
    return job


# -- running an import -------------------------------------------------------------------

def caller_of(job: ImportJob) -> dict[str, str]:
    return {"tenant_id": job.tenant_id, "user_id": str(job.user_id)}


Pending = tuple[int, list[str], dict[str, Any], list[str]]  # row number, cells, data, duplicate keys


class ImportRun:
    """One runner's pass over a job, from ``job.last_row`` on.

    One batch is at the crm service while the next is read and checked here: before a batch
    goes, the answer to the one before is recorded and committed, so every earlier row's
    outcome is known when the batch's ``same_as`` are computed."""

    def __init__(self, session: Session, job: ImportJob, table: Table, crm: Crm, commit: Callable[[], None],
                 stopping: Callable[[], bool] = lambda: False, lease_seconds: float = 60.0,
                 on_rows: Callable[[dict[str, int]], None] = lambda counts: None) -> None:
        self.session, self.job, self.table, self.crm = session, job, table, crm
        self.commit, self.stopping, self.lease_seconds, self.on_rows = commit, stopping, lease_seconds, on_rows
        # duplicate key (its hash: 100,000 rows keep ~20 MB, not ~70) -> the first row standing for it
        self.seen: dict[int, int] = {}
        self.pending: list[Pending] = []
        self.pending_keys: set[str] = set()
        self.in_flight: tuple[Callable[[], dict[str, Any]], list[Pending]] | None = None

    def _data(self, cells: list[str]) -> dict[str, Any]:
        return columns.row_data(self.job.entity, self.table.headers, self.job.mapping, cells)

    def _remember(self, number: int, keys: list[str]) -> None:
        for key in keys:
            self.seen.setdefault(hash(key), number)

    def _resume(self) -> None:
        """The rows done before a restart, for the duplicates within the file."""
        done = set(self.session.scalars(
            sa.select(ImportRow.row_no).where(
                ImportRow.tenant_id == self.job.tenant_id, ImportRow.job_id == self.job.id,
                sa.or_(ImportRow.outcome.in_(("created", "updated")),
                       sa.and_(ImportRow.outcome == "skipped", ImportRow.duplicate)))))
        if not done:
            return
        for number, cells in self.table.rows():
            if number > self.job.last_row:
                break
            if number in done:
                self._remember(number, duplicate_keys(self.job.entity, self._data(cells)))

    def run(self) -> bool:
        """True when the whole file is done; False when asked to stop between batches."""
        if self.job.last_row > 1:
            self._resume()
        for number, cells in self.table.rows(start_after=self.job.last_row):
            data = self._data(cells)  # checked by the crm service, with the create contract
            keys = duplicate_keys(self.job.entity, data)
            if self.pending_keys.intersection(keys):
                self._dispatch()
            self.pending.append((number, cells, data, keys))
            self.pending_keys.update(keys)
            if len(self.pending) >= BATCH:
                self._dispatch()
                if self.stopping():
                    self._complete()
                    return False
        self._dispatch()
        self._complete()
        return True

    def _dispatch(self) -> None:
        """Sends the pending rows, once the batch before is recorded."""
        self._complete()
        if not self.pending:
            return
        job = self.job
        rows = []
        for number, _, data, keys in self.pending:
            same = next((self.seen[h] for h in map(hash, keys) if h in self.seen), None)
            rows.append({"row": number, "data": data, "same_as": {"row": same} if same else None})
        answer = self.crm.start_import_rows(caller_of(job), job.entity, {
            "import_id": str(job.id), "batch": job.batch_no, "policy": job.policy, "dry_run": job.dry_run,
            "rows": rows})
        self.in_flight = (answer, self.pending)
        self.pending, self.pending_keys = [], set()

    def _earlier_records(self, pending: list[Pending], answered: dict[int, dict[str, Any]]) -> None:
        """A repeat of an earlier row whose record the crm service could not tell (it was found by
        other keys than this row has) shows the earlier row's record."""
        wanted: dict[int, int] = {}
        for number, _, _, keys in pending:
            outcome = answered[number]
            if outcome["outcome"] == "skipped" and outcome.get("duplicate") and not outcome.get("record_id"):
                earlier = next((self.seen[h] for h in map(hash, keys) if h in self.seen), None)
                if earlier is not None:
                    wanted[number] = earlier
        if not wanted:
            return
        records = dict(self.session.execute(sa.select(ImportRow.row_no, ImportRow.record_id).where(
            ImportRow.tenant_id == self.job.tenant_id, ImportRow.job_id == self.job.id,
            ImportRow.row_no.in_(sorted(set(wanted.values()))))).all())
        for number, earlier in wanted.items():
            if records.get(earlier):
                answered[number]["record_id"] = str(records[earlier])

    def _complete(self) -> None:
        """Records the answer to the batch in flight, and commits it with the job's position."""
        if self.in_flight is None:
            return
        answer, pending = self.in_flight
        self.in_flight = None
        job = self.job
        answered = {int(o["row"]): o for o in answer()["outcomes"]}
        job.batch_no += 1
        self._earlier_records(pending, answered)
        records: list[dict[str, Any]] = []
        counts = {"created": 0, "updated": 0, "skipped": 0, "rejected": 0}
        for number, cells, _, keys in pending:
            outcome = answered[number]
            kind = str(outcome["outcome"])
            counts[kind] += 1
            if outcome.get("problems"):
                outcome["reason"] = columns.titled_reason(job.entity, [tuple(p) for p in outcome["problems"]])
            job.duplicates += 1 if outcome.get("duplicate") else 0
            # a row stands for its record from here on: created, updated, or skipped as a repeat of it
            if kind in ("created", "updated") or (kind == "skipped" and outcome.get("duplicate")):
                self._remember(number, keys)
            records.append({"tenant_id": job.tenant_id, "job_id": job.id, "row_no": number, "outcome": kind,
                            "record_id": outcome.get("record_id"), "duplicate": bool(outcome.get("duplicate")),
                            "reason": outcome.get("reason"), "cells": cells if kind == "rejected" else None})
        insert_rows(self.session.connection(), ImportRow.__table__, records)
        job.created += counts["created"]
        job.updated += counts["updated"]
        job.skipped += counts["skipped"]
        job.rejected += counts["rejected"]
        job.read += len(pending)
        job.last_row = pending[-1][0]
        job.attempts = 0
        job.lease_until = utcnow() + dt.timedelta(seconds=self.lease_seconds)
        self.commit()
        self.on_rows(counts)


def finish_import(session: Session, job: ImportJob, outbox: Any) -> None:
    """Done: the file goes (its bytes are released by the caller), one journal entry is written."""
    job.status, job.finished_at, job.lease_until = "done", utcnow(), None
    session.execute(sa.delete(ImportFile).where(ImportFile.tenant_id == job.tenant_id, ImportFile.job_id == job.id))
    if not job.dry_run:
        _journal(job, outbox, session, journal.IMPORT, {
            "entity": job.entity, "file_name": job.file_name, "policy": job.policy, "rows": job.read,
            "created": job.created, "updated": job.updated, "skipped": job.skipped, "duplicates": job.duplicates,
            "rejected": job.rejected})


def fail(session: Session, job: ImportJob, message: str) -> None:
    if job.status == "reverting":
        job.status, job.error = "done", f"the revert failed: {message}"
    else:
        job.status, job.error, job.finished_at = "failed", message, utcnow()
        session.execute(sa.delete(ImportFile).where(ImportFile.tenant_id == job.tenant_id,
                                                    ImportFile.job_id == job.id))
    job.lease_until = None


def _journal(job: ImportJob, outbox: Any, session: Session, action: str, changes: dict[str, Any]) -> None:
    outbox.record(session, journal.RECORD_CHANGED, {
        "tenant_id": job.tenant_id, "entity": "import", "entity_id": str(job.id), "action": action,
        "actor": job.actor, "source": "csv", "request_id": None, "changes": changes}, str(job.id), job.tenant_id)


# -- reverting ------------------------------------------------------------------------------

def request_revert(session: Session, tenant_id: str, user_id: str, job_id: Any) -> ImportJob:
    job = visible_job(session, tenant_id, user_id, job_id, lock=True)
    if job.dry_run:
        raise Conflict("a dry run changed nothing: there is nothing to revert", code="dry_run")
    if job.status in ("reverting", "reverted"):
        raise Conflict("this import is reverted already" if job.status == "reverted" else "the revert is running",
                       code="already_reverted")
    if job.status not in ("done", "failed"):
        raise Conflict(f"only a finished import can be reverted (this one is {job.status})", code="not_finished")
    job.status, job.error, job.lease_until = "reverting", None, None
    job.reverted = {"deleted": 0, "restored": 0, "left": 0, "left_records": []}
    return job


def run_revert(session: Session, job: ImportJob, crm: Crm, commit: Callable[[], None], outbox: Any,
               stopping: Callable[[], bool] = lambda: False, lease_seconds: float = 60.0) -> bool:
    totals = dict(job.reverted or {"deleted": 0, "restored": 0, "left": 0, "left_records": []})
    after = None
    while True:
        answer = crm.revert_import(caller_of(job), job.entity, str(job.id), 2000, after)
        after = answer.get("after")
        totals = {"deleted": totals["deleted"] + int(answer["deleted"]),
                  "restored": totals["restored"] + int(answer["restored"]),
                  "left": totals["left"] + int(answer.get("left_count", len(answer["left"]))),
                  "left_records": (list(totals["left_records"]) + list(answer["left"]))[:1000]}
        job.reverted = totals
        job.lease_until = utcnow() + dt.timedelta(seconds=lease_seconds)
        if not answer["more"]:
            break
        commit()
        if stopping():
            return False
    job.status, job.lease_until = "reverted", None
    _journal(job, outbox, session, journal.REVERT, {"entity": job.entity, "file_name": job.file_name,
                                                   "deleted": totals["deleted"], "restored": totals["restored"],
                                                   "left": totals["left"]})
    commit()
    return True


# -- what the API shows --------------------------------------------------------------------

def visible_job(session: Session, tenant_id: str, user_id: str, job_id: Any, lock: bool = False) -> ImportJob:
    """The caller's own job; any other id (another user's, another tenant's) is not found."""
    jid = parse_id(job_id)
    uid = parse_id(user_id)
    stmt = sa.select(ImportJob).where(ImportJob.tenant_id == tenant_id, ImportJob.id == jid,
                                      ImportJob.user_id == uid)
    job = session.scalars(stmt.with_for_update() if lock else stmt).first() if jid and uid else None
    if job is None:
        raise NotFound("no such import job", code="not_found")
    return job


def job_out(job: ImportJob) -> dict[str, Any]:
    progress = 100 if job.status in ("done", "reverting", "reverted") else (
        int(job.read * 100 / job.total) if job.total else 0)
    return jsonable({
        "id": job.id, "entity": job.entity, "file_name": job.file_name, "status": job.status,
        "dry_run": job.dry_run, "policy": job.policy, "mapping": job.mapping,
        "unmapped": [h for h in job.headers if h and h not in job.mapping], "read": job.read, "total": job.total,
        "created": job.created, "updated": job.updated, "skipped": job.skipped, "duplicates": job.duplicates,
        "rejected": job.rejected, "progress": progress,
        "errors_url": f"/api/v1/import/jobs/{job.id}/errors.csv" if job.rejected else None,
        "error": job.error, "reverted": job.reverted, "created_at": job.created_at, "finished_at": job.finished_at})


def number_cursor(cursor: str | None) -> int | None:
    """The number a list of rows or log entries gave as its ``next_cursor`` (None for the first page)."""
    decoded = decode_cursor(cursor, 1)
    if decoded is None:
        return None
    if not isinstance(decoded[0], int):
        raise ValidationFailed("not a cursor this list returned", fields={"cursor": "not a cursor of this list"})
    return decoded[0]


def list_rows(session: Session, job: ImportJob, query_data: Any) -> dict[str, Any]:
    query = RowsQuery.model_validate(query_data or {})
    stmt = sa.select(ImportRow).where(ImportRow.tenant_id == job.tenant_id, ImportRow.job_id == job.id)
    if query.outcome:
        stmt = stmt.where(ImportRow.outcome == query.outcome)
    after = number_cursor(query.cursor)
    if after is not None:
        stmt = stmt.where(ImportRow.row_no > after)
    rows = list(session.scalars(stmt.order_by(ImportRow.row_no).limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return {"items": [{"row": r.row_no, "outcome": r.outcome, "record_id": str(r.record_id) if r.record_id else None,
                       "duplicate": r.duplicate, "reason": r.reason} for r in rows],
            "next_cursor": encode_cursor(rows[-1].row_no) if more and rows else None}
