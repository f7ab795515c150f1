"""1C exchange jobs: settings, submitting a file, running an import object
by object against the crm service, writing an export, and the exchange log.

An import runs in bounded memory: the stored file is parsed iteratively
(``services.onec.xmlread``), ``BATCH`` objects at a time go to
``crm.apply_exchange``, and each batch's counters and position (objects
done, ``batch_no``) are committed with its log entries before the next. A
runner that stopped (a restart, a crash, a lost lease) resumes from there:
the crm service answers a batch it already applied with the same outcomes,
so nothing is applied twice. Service data (units, currencies,
organisations) is kept here, in ``exchange_reference``.

An EnterpriseData message whose ``MessageNo`` is not past the last one
received from that sender is recognised as sent again and loads nothing."""
from __future__ import annotations

import datetime as dt
import io
import uuid
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from contracts import journal
from contracts.exchange import (
    CRM_KINDS,
    OBJECT_OF_KIND,
    VERSIONS,
    ExchangeExportIn,
    ExchangeImportQuery,
    ExchangeSettingsIn,
    LogQuery,
    version_of,
)
from crm_shared.jobs import claim_oldest
from crm_shared.records import encode_cursor, jsonable, parse_id
from services.onec import commerceml, enterprisedata, kd2
from services.onec.exceptions import NotFound, ValidationFailed
from services.onec.imports import PART_BYTES, number_cursor, utcnow
from services.onec.models import (
    ExchangeJob,
    ExchangeLogEntry,
    ExchangePeer,
    ExchangeReference,
    ExchangeSettings,
    ImportFile,
)
from services.onec.xmlread import Item, Unreadable, members

BATCH = 1000
OPEN = ("queued", "running")
DEFAULT_VERSION = VERSIONS[0].id
EXPORT_ORDER = ("counterparties", "contacts", "products", "invoices")


class Crm(Protocol):
    def start_apply_exchange(self, caller: dict[str, Any], batch: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        """Sends ``crm.apply_exchange``; the callable waits for its answer."""

    def deactivate_unlisted(self, caller: dict[str, Any], job_ids: list[str]) -> dict[str, Any]: ...


    def exchange_export_page(self, caller: dict[str, Any], kind: str, window: dict[str, Any],
                             after: str | None, limit: int) -> dict[str, Any]: ...


# -- settings -----------------------------------------------------------------------------

def settings_out(row: ExchangeSettings | None) -> dict[str, Any]:
    if row is None:
        return {"version": DEFAULT_VERSION, "file_name": None, "import_objects": [], "export_objects": {},
                "overwrite": False, "updated_at": None}
    return jsonable({"version": row.version, "file_name": row.file_name, "import_objects": row.import_objects,
                     "export_objects": row.export_objects, "overwrite": row.overwrite,
                     "updated_at": row.updated_at})


def save_settings(session: Session, tenant_id: str, user_id: str, data: Any) -> ExchangeSettings:
    body = ExchangeSettingsIn.model_validate(data)
    row = session.get(ExchangeSettings, tenant_id, with_for_update=True)
    values = {"version": body.version, "file_name": body.file_name, "import_objects": list(body.import_objects),
              "export_objects": {k: w.model_dump(mode="json") for k, w in body.export_objects.items()},
              "overwrite": body.overwrite, "updated_at": utcnow(), "updated_by": uuid.UUID(user_id)}
    if row is None:
        row = ExchangeSettings(tenant_id=tenant_id, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    return row


# -- the log --------------------------------------------------------------------------------

def log(session: Session, tenant_id: str, job_id: uuid.UUID | None, level: str, message: str,
        path: str | None = None) -> None:
    session.add(ExchangeLogEntry(tenant_id=tenant_id, job_id=job_id, at=utcnow(), level=level,
                                 message=message[:2000], path=path))


def list_log(session: Session, tenant_id: str, query_data: Any) -> dict[str, Any]:
    query = LogQuery.model_validate(query_data or {})
    stmt = sa.select(ExchangeLogEntry).where(ExchangeLogEntry.tenant_id == tenant_id)
    if query.job_id:
        stmt = stmt.where(ExchangeLogEntry.job_id == query.job_id)
    if query.level:
        stmt = stmt.where(ExchangeLogEntry.level == query.level)
    before = number_cursor(query.cursor)
    if before is not None:
        stmt = stmt.where(ExchangeLogEntry.id < before)
    rows = list(session.scalars(stmt.order_by(ExchangeLogEntry.id.desc()).limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return {"items": [jsonable({"id": r.id, "job_id": r.job_id, "at": r.at, "level": r.level, "message": r.message,
                                "path": r.path}) for r in rows],
            "next_cursor": encode_cursor(rows[-1].id) if more and rows else None}


# -- submitting ----------------------------------------------------------------------------------

def _new_job(tenant_id: str, user_id: str, actor: Any, direction: str, version: str, objects: list[str],
             overwrite: bool, file_name: str | None, windows: dict[str, Any] | None = None) -> ExchangeJob:
    return ExchangeJob(tenant_id=tenant_id, id=uuid.uuid4(), user_id=uuid.UUID(user_id), actor=actor,
                       direction=direction, version=version, objects=objects, windows=windows or {},
                       overwrite=overwrite, file_name=file_name, source="api", full_catalogue=False,
                       status="queued", read=0, created=0, updated=0, skipped=0, rejected=0, deactivated=0,
                       position=0, batch_no=0, size=0, consumed=0, file_bytes=0, attempts=0, created_at=utcnow())


def new_import(session: Session, tenant_id: str, user_id: str, actor: Any, query_data: Any,
               content: bytes) -> tuple[ExchangeJob, list[ImportFile]]:
    """The job and its file: the version and objects default to the settings'; a file that is not XML
    or a zip is refused at once (422)."""
    query = ExchangeImportQuery.model_validate(query_data or {})
    settings = session.get(ExchangeSettings, tenant_id)
    version_id = query.version or (settings.version if settings else DEFAULT_VERSION)
    version = version_of(version_id)
    assert version is not None
    objects = list(query.objects if query.objects is not None else (settings.import_objects if settings else []))
    objects = [o for o in objects if o in version.import_objects] if query.objects is None else objects
    wrong = [o for o in objects if o not in version.import_objects]
    if wrong:
        raise ValidationFailed(f"the version {version_id} does not load {', '.join(wrong)}",
                               fields={"objects": f"not loaded by {version_id}"})
    if not objects:
        objects = list(version.import_objects)
    head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not (head.startswith(b"<") or head.startswith(b"PK")):
        raise ValidationFailed("the file is neither XML nor a zip archive", code="unreadable_file",
                               fields={"file": "not XML or zip"})
    overwrite = query.overwrite if query.overwrite is not None else bool(settings and settings.overwrite)
    job = _new_job(tenant_id, user_id, actor, "import", version_id, objects, overwrite, query.file_name)
    job.size = job.file_bytes = len(content)
    parts = [ImportFile(tenant_id=tenant_id, job_id=job.id, part=n, data=content[start:start + PART_BYTES])
             for n, start in enumerate(range(0, len(content), PART_BYTES))]
    return job, parts


def new_export(session: Session, tenant_id: str, user_id: str, actor: Any, data: Any) -> ExchangeJob:
    body = ExchangeExportIn.model_validate(data or {})
    settings = session.get(ExchangeSettings, tenant_id)
    version_id = body.version or (settings.version if settings else DEFAULT_VERSION)
    version = version_of(version_id)
    assert version is not None
    saved = dict(settings.export_objects) if settings else {}
    objects = list(body.objects if body.objects is not None else [o for o in saved if o in version.export_objects])
    if not objects:
        objects = list(version.export_objects)
    wrong = [o for o in objects if o not in version.export_objects]
    if wrong:
        raise ValidationFailed(f"the version {version_id} does not write {', '.join(wrong)}",
                               fields={"objects": f"not written by {version_id}"})
    windows = {}
    for name in objects:
        window = dict(saved.get(name) or {})
        if body.since is not None:
            window["since"] = body.since.isoformat()
        if body.until is not None:
            window["until"] = body.until.isoformat()
        windows[name] = {"since": window.get("since"), "until": window.get("until")}
    file_name = (settings.file_name if settings and settings.file_name else None) or {
        "bp82": "CRM_1C82_exchange.xml", "enterprisedata-1.8": "message.xml"}.get(version_id, "orders.xml")
    return _new_job(tenant_id, user_id, actor, "export", version_id, objects, False, file_name, windows)


# -- claiming and the stored file ---------------------------------------------------------------

def claim(session: Session, lease_seconds: float) -> ExchangeJob | None:
    job = claim_oldest(session, ExchangeJob, OPEN, lease_seconds)
    if job is None:
        return None
    if job.status == "queued":
        job.status = "running"
        log(session, job.tenant_id, job.id, "info", f"{job.direction} started ({job.version}: "
                                                     f"{', '.join(job.objects)})")
    return job


class StoredFile(io.RawIOBase):
    """A job's stored file, read part by part, seekable (a zip is read at random)."""

    def __init__(self, fetch: Callable[[int], bytes | None], size: int) -> None:
        self.fetch, self.size, self.pos = fetch, size, 0
        self.cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, target: Any) -> int:
        if self.pos >= self.size:
            return 0
        part, start = divmod(self.pos, PART_BYTES)
        if self.cached is None or self.cached[0] != part:
            data = self.fetch(part)
            if data is None:
                return 0
            self.cached = (part, bytes(data))
        chunk = self.cached[1][start:start + len(target)]
        target[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def stored_file(session: Session, job: ExchangeJob) -> StoredFile:
    def fetch(part: int) -> bytes | None:
        return session.scalar(sa.select(ImportFile.data).where(
            ImportFile.tenant_id == job.tenant_id, ImportFile.job_id == job.id, ImportFile.part == part))
    return StoredFile(fetch, job.size)


def drop_file(session: Session, job: ExchangeJob) -> None:
    session.execute(sa.delete(ImportFile).where(ImportFile.tenant_id == job.tenant_id, ImportFile.job_id == job.id))


# -- running an import ----------------------------------------------------------------------------

def caller_of(job: ExchangeJob) -> dict[str, str]:
    return {"tenant_id": job.tenant_id, "user_id": str(job.user_id)}


def read_items(version: str, stream: IO[bytes]) -> Iterator[tuple[Any, Item]]:
    """(reader, item) of every file in the upload (a zip holds several)."""
    for _, member in members(stream):
        reader: Any = (enterprisedata.Reader() if version.startswith("enterprisedata") else
                       kd2.Reader() if version == "bp82" else commerceml.Reader())
        for item in reader.read(member):
            yield reader, item


class ImportRun:
    """One runner's pass over an import job, from ``job.position`` on.

    One batch is at the crm service while the next is read here: before a batch goes, the answer
    to the one before is recorded and committed with the job's position, so the crm service
    applies one batch of a job at a time, in order."""

    def __init__(self, session: Session, job: ExchangeJob, crm: Crm, commit: Callable[[], None],
                 stopping: Callable[[], bool] = lambda: False, lease_seconds: float = 60.0,
                 on_objects: Callable[[str, str, int], None] = lambda kind, outcome, n: None) -> None:
        self.session, self.job, self.crm, self.commit = session, job, crm, commit
        self.stopping, self.lease_seconds, self.on_objects = stopping, lease_seconds, on_objects
        self.batch = Batch()
        self.in_flight: tuple[Callable[[], dict[str, Any]], Batch] | None = None
        self.header_checked = False
        self.message: tuple[str, int] | None = None  # (sender, MessageNo) to remember once done

    def run(self) -> bool:
        """True when the whole file is done; False when asked to stop between batches."""
        job = self.job
        stream = io.BufferedReader(stored_file(self.session, job), buffer_size=65536)
        n = -1
        try:
            for reader, item in read_items(job.version, stream):
                n += 1
                if getattr(reader, "full_catalogue", False):
                    job.full_catalogue = True
                if not self.header_checked and isinstance(reader, enterprisedata.Reader):
                    self.header_checked = True
                    if self._received_already(reader.header):
                        return True
                if n < job.position:
                    continue
                self._take(n, item)
                if len(self.batch.items) >= BATCH:
                    self._dispatch(n + 1, stream.tell())
                    if self.stopping():
                        self._complete()
                        return False
        except Unreadable as exc:
            raise ValidationFailed(f"the file cannot be read: {exc}", code="unreadable_file") from None
        self._dispatch(n + 1, job.size)
        self._complete()
        if self.message is not None:
            self._remember_message(*self.message)
        if job.full_catalogue and job.source == "api" and "products" in job.objects:
            deactivate_unlisted(self.session, job, self.crm, [job])
        return True

    def _received_already(self, header: enterprisedata.Header) -> bool:
        if header.message_no is None:
            return False
        sender = header.sender or ""
        peer = self.session.get(ExchangePeer, (self.job.tenant_id, self.job.version, sender))
        if peer is not None and header.message_no <= peer.received_no:
            log(self.session, self.job.tenant_id, self.job.id, "warning",
                f"message {header.message_no} from {sender or 'the sender'} was received already "
                f"(the last was {peer.received_no}): nothing loaded")
            return True
        self.message = (sender, header.message_no)
        return False

    def _remember_message(self, sender: str, number: int) -> None:
        stmt = insert(ExchangePeer).values(tenant_id=self.job.tenant_id, version=self.job.version, peer=sender,
                                           received_no=number, sent_no=0)
        self.session.execute(stmt.on_conflict_do_update(
            index_elements=[ExchangePeer.tenant_id, ExchangePeer.version, ExchangePeer.peer],
            set_={"received_no": sa.func.greatest(ExchangePeer.received_no, number)}))

    def _take(self, n: int, item: Item) -> None:
        job, batch = self.job, self.batch
        if item.kind == "unsupported":
            batch.outcomes.append(("unsupported", "skipped"))
            batch.notes.append(("info", f"left out: {item.problem}", item.path))
            return
        if OBJECT_OF_KIND.get(item.kind) not in job.objects:
            return  # not chosen for this exchange
        if item.problem:
            batch.outcomes.append((item.kind, "rejected"))
            batch.notes.append(("warning", f"{item.kind} rejected: {item.problem}", item.path))
            return
        if item.kind not in CRM_KINDS:
            batch.outcomes.append((item.kind, self._reference(item)))
            return
        batch.items.append(item)
        batch.numbers.append(n)

    def _reference(self, item: Item) -> str:
        """Service data, kept here: created, updated (overwrite on), or skipped."""
        job = self.job
        key = (job.tenant_id, item.kind, str(item.ref))
        row = self.session.get(ExchangeReference, key)
        if row is None:
            if item.deleted:
                return "skipped"
            self.session.add(ExchangeReference(tenant_id=job.tenant_id, kind=item.kind, code=str(item.ref),
                                               data=item.data, active=True, updated_at=utcnow()))
            self.session.flush()
            return "created"
        if item.deleted:
            if not row.active:
                return "skipped"
            row.active, row.updated_at = False, utcnow()
            return "updated"
        if not job.overwrite or (row.data == item.data and row.active):
            return "skipped"
        row.data, row.active, row.updated_at = item.data, True, utcnow()
        return "updated"

    def _dispatch(self, position: int, consumed: int) -> None:
        """Sends the batch read so far, once the one before is recorded."""
        self._complete()
        job, batch = self.job, self.batch
        batch.position, batch.consumed = position, consumed
        self.batch = Batch()
        if not batch.items:
            self._record(batch, {})
            return
        answer = self.crm.start_apply_exchange(caller_of(job), {
            "job_id": str(job.id), "batch": job.batch_no, "overwrite": job.overwrite,
            "objects": [{"n": n, "kind": i.kind, "ref": i.ref, "data": jsonable(i.data), "links": i.links,
                         "deleted": i.deleted, "reference": i.reference}
                        for n, i in zip(batch.numbers, batch.items, strict=True)]})
        self.in_flight = (answer, batch)

    def _complete(self) -> None:
        if self.in_flight is None:
            return
        answer, batch = self.in_flight
        self.in_flight = None
        outcomes = {int(o["n"]): o for o in answer()["outcomes"]}
        self.job.batch_no += 1
        self._record(batch, outcomes)

    def _record(self, batch: "Batch", outcomes: dict[int, dict[str, Any]]) -> None:
        """A batch's counters, log entries and position, committed together."""
        job = self.job
        for n, item in zip(batch.numbers, batch.items, strict=True):
            answered = outcomes[n]
            batch.outcomes.append((item.kind, str(answered["outcome"])))
            if answered["outcome"] == "rejected":
                ref = f" {item.ref}" if item.ref else ""
                batch.notes.append(("warning", f"{item.kind}{ref} rejected: {answered.get('reason')}", item.path))
        counts: dict[tuple[str, str], int] = {}
        for kind, outcome in batch.outcomes:
            counts[(kind, outcome)] = counts.get((kind, outcome), 0) + 1
            setattr(job, outcome, getattr(job, outcome) + 1)
        job.read += len(batch.outcomes)
        for level, message, path in batch.notes:
            log(self.session, job.tenant_id, job.id, level, message, path)
        job.position, job.consumed = batch.position, batch.consumed
        job.attempts = 0
        job.lease_until = utcnow() + dt.timedelta(seconds=self.lease_seconds)
        self.commit()
        for (kind, outcome), count in counts.items():
            self.on_objects(kind, outcome, count)


@dataclass
class Batch:
    """Objects read for one crm call, with what was decided here about the others read with them."""

    items: list[Item] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (kind, outcome) of every object counted
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # log entries: (level, message, path)
    position: int = 0
    consumed: int = 0


def deactivate_unlisted(session: Session, job: ExchangeJob, crm: Crm, listing: list[ExchangeJob]) -> int:
    """A full catalogue: the products from 1C that the listing jobs did not mention are deactivated
    (a changes-only file never does this). Counted in ``job.deactivated``; committed by the caller."""
    answer = crm.deactivate_unlisted(caller_of(job), [str(j.id) for j in listing])
    count = int(answer.get("deactivated", 0))
    job.deactivated = (job.deactivated or 0) + count
    log(session, job.tenant_id, job.id, "info",
        f"full catalogue: {count} product(s) from 1C it does not list deactivated")
    return count


def finish(session: Session, job: ExchangeJob, outbox: Any) -> None:
    job.status, job.finished_at, job.lease_until = "done", utcnow(), None
    if job.direction == "import":
        drop_file(session, job)
    summary = {"version": job.version, "objects": job.objects, "overwrite": job.overwrite, "read": job.read,
               "created": job.created, "updated": job.updated, "skipped": job.skipped, "rejected": job.rejected,
               "deactivated": job.deactivated}
    log(session, job.tenant_id, job.id, "info", f"{job.direction} done: " + ", ".join(
        f"{k} {summary[k]}" for k in ("read", "created", "updated", "skipped", "rejected")))
    outbox.record(session, journal.RECORD_CHANGED, {
        "tenant_id": job.tenant_id, "entity": "exchange", "entity_id": str(job.id),
        "action": journal.IMPORT if job.direction == "import" else journal.EXPORT, "actor": job.actor,
        "source": "1c", "request_id": None, "changes": summary}, str(job.id), job.tenant_id)


def fail(session: Session, job: ExchangeJob, message: str) -> None:
    job.status, job.error, job.finished_at, job.lease_until = "failed", message, utcnow(), None
    drop_file(session, job)
    log(session, job.tenant_id, job.id, "error", f"{job.direction} failed: {message}")


# -- writing an export --------------------------------------------------------------------------

class PartWriter:
    """Text written into the job's stored parts, ``PART_BYTES`` at a time."""

    def __init__(self, session: Session, job: ExchangeJob) -> None:
        self.session, self.job, self.buffer, self.part, self.size = session, job, bytearray(), 0, 0

    def write(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= PART_BYTES:
            self._store(bytes(self.buffer[:PART_BYTES]))
            del self.buffer[:PART_BYTES]

    def _store(self, data: bytes) -> None:
        self.session.add(ImportFile(tenant_id=self.job.tenant_id, job_id=self.job.id, part=self.part, data=data))
        self.session.flush()
        self.part += 1
        self.size += len(data)

    def close(self) -> None:
        if self.buffer:
            self._store(bytes(self.buffer))
            self.buffer = bytearray()


def export_pages(crm: Any, caller: dict[str, Any], kind: str, window: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The crm service's export pages of ``kind`` changed within ``window``, in id order."""
    after = None
    while True:
        page = crm.exchange_export_page(caller, kind, window, after, 1000)
        yield page
        after = page.get("after")
        if not after:
            return


def _organisation(session: Session, job: ExchangeJob) -> dict[str, Any]:
    """Our organisation in an invoice: the first one loaded from 1C."""
    row = session.scalars(sa.select(ExchangeReference).where(
        ExchangeReference.tenant_id == job.tenant_id, ExchangeReference.kind == "organisation",
        ExchangeReference.active).order_by(ExchangeReference.updated_at).limit(1)).first()
    if row is None:
        log(session, job.tenant_id, job.id, "warning", "no organisation has been loaded from 1C: invoices name a "
                                                       "placeholder one; load the service data first")
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"crm-organisation:{job.tenant_id}")),
                "name": "Организация", "kind": "legal"}
    return {"id": row.code, "external_id": row.code, "kind": "legal", **row.data}


def _party_of(page: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    return (page.get("counterparties") or {}).get(item["counterparty_id"]) or {
        "id": item["counterparty_id"], "name": "?", "kind": "legal"}


Write = Callable[[str, dict[str, Any], dict[str, Any]], str]  # (object, record, its page) -> the text


def _writer(session: Session, job: ExchangeJob, now: dt.datetime) -> tuple[str, Write, str]:
    """The head, the writer of one record, and the tail of the job's version."""
    # our organisation, named by an invoice in the 8.2 and EnterpriseData formats
    organisation = _organisation(session, job) if "invoices" in job.objects and job.version != "commerceml-2.10" \
        else {}
    if job.version == "bp82":
        windows = list(job.windows.values())
        kd2_writer = kd2.Writer()

        def bp82(kind: str, item: dict[str, Any], page: dict[str, Any]) -> str:
            if kind == "counterparties":
                return kd2_writer.counterparty(item)
            if kind == "contacts":
                return kd2_writer.contact(item, (page.get("counterparties") or {}).get(item.get("counterparty_id")
                                                                                        or ""))
            if kind == "products":
                return kd2_writer.product(item)
            return kd2_writer.invoice(item, _party_of(page, item), organisation, page.get("products") or {})
        return (kd2.head(now, min((w.get("since") or "" for w in windows), default=None),
                         max((w.get("until") or "" for w in windows), default=None)), bp82, kd2.TAIL)
    if job.version.startswith("enterprisedata"):
        peer = session.get(ExchangePeer, (job.tenant_id, job.version, ""), with_for_update=True)
        if peer is None:
            peer = ExchangePeer(tenant_id=job.tenant_id, version=job.version, peer="", received_no=0, sent_no=0)
            session.add(peer)
        peer.sent_no += 1

        def ed(kind: str, item: dict[str, Any], page: dict[str, Any]) -> str:
            if kind == "counterparties":
                return enterprisedata.write_counterparty(item, (page.get("contacts") or {}).get(item["id"], []))
            if kind == "products":
                return enterprisedata.write_product(item)
            return enterprisedata.write_invoice(item, _party_of(page, item), organisation, page.get("products") or {})
        return enterprisedata.head(now, peer.sent_no, peer.received_no, "CRM", "1C"), ed, enterprisedata.TAIL

    return commerceml.head(now), lambda kind, item, page: cml_invoice(item, page), commerceml.TAIL


def cml_invoice(item: dict[str, Any], page: dict[str, Any]) -> str:
    """An invoice of an export page as a CommerceML document."""
    contact = (page.get("contacts") or {}).get(item.get("contact_id") or "")
    return commerceml.invoice_document(item, _party_of(page, item), contact, page.get("products") or {})


def run_export(session: Session, job: ExchangeJob, crm: Crm, commit: Callable[[], None],
               on_objects: Callable[[str, str, int], None] = lambda kind, outcome, n: None) -> None:
    """Writes the whole file (an export is rewritten from the start when its runner stopped)."""
    drop_file(session, job)
    out = PartWriter(session, job)
    head, write, tail = _writer(session, job, utcnow())
    out.write(head)
    written = 0
    withheld = 0
    kinds = [k for k in EXPORT_ORDER if k in job.objects]
    extra: dict[str, Any] = {}
    if job.version.startswith("enterprisedata") and "contacts" in kinds:
        # EnterpriseData has contact people only as their counterparty's contact information
        kinds = [k for k in kinds if k != "contacts"]
        kinds = kinds if "counterparties" in kinds else ["counterparties", *kinds]
        extra = {"with_contacts": True}
    for kind in kinds:
        window = {**(job.windows.get(kind) or {}), **(extra if kind == "counterparties" else {})}
        for page in export_pages(crm, caller_of(job), kind, window):
            for item in page["items"]:
                out.write(write(kind, item, page))
            written += len(page["items"])
            withheld += int(page.get("withheld") or 0)
            on_objects(kind, "exported", len(page["items"]))
    out.write(tail)
    if withheld:
        job.skipped = withheld
        log(session, job.tenant_id, job.id, "warning", f"{withheld} invoice(s) left out: their counterparty is "
                                                       "outside your read rights")
    out.close()
    job.read = job.created = written
    job.size = out.size
    job.position = written


def forget_before(session: Session, cutoff: dt.datetime) -> None:
    """Housekeeping (every tenant): finished jobs older than ``cutoff``, their files and log entries."""
    old = sa.select(ExchangeJob.tenant_id, ExchangeJob.id).where(
        ExchangeJob.finished_at < cutoff, ExchangeJob.status.in_(("done", "failed")), ExchangeJob.file_bytes == 0)
    session.execute(sa.delete(ImportFile).where(sa.tuple_(ImportFile.tenant_id, ImportFile.job_id).in_(old)))
    session.execute(sa.delete(ExchangeLogEntry).where(ExchangeLogEntry.at < cutoff))
    session.execute(sa.delete(ExchangeJob).where(sa.tuple_(ExchangeJob.tenant_id, ExchangeJob.id).in_(old)))


def file_part(session: Session, job: ExchangeJob, part: int) -> bytes | None:
    return session.scalar(sa.select(ImportFile.data).where(
        ImportFile.tenant_id == job.tenant_id, ImportFile.job_id == job.id, ImportFile.part == part))


# -- what the API shows ------------------------------------------------------------------------------

def visible_job(session: Session, tenant_id: str, job_id: Any, lock: bool = False) -> ExchangeJob:
    """A job of the tenant (the exchange is the tenant's, shared by those holding ``exchange.run``)."""
    jid = parse_id(job_id)
    stmt = sa.select(ExchangeJob).where(ExchangeJob.tenant_id == tenant_id, ExchangeJob.id == jid)
    job = session.scalars(stmt.with_for_update() if lock else stmt).first() if jid else None
    if job is None:
        raise NotFound("no such exchange job", code="not_found")
    return job


def job_out(job: ExchangeJob) -> dict[str, Any]:
    if job.status == "done":
        progress = 100
    elif job.direction == "import" and job.size:
        progress = min(99, int(job.consumed * 100 / job.size))
    else:
        progress = 0
    done_export = job.direction == "export" and job.status == "done"
    return jsonable({
        "id": job.id, "direction": job.direction, "version": job.version, "objects": job.objects,
        "overwrite": job.overwrite, "file_name": job.file_name, "status": job.status, "read": job.read,
        "created": job.created, "updated": job.updated, "skipped": job.skipped, "rejected": job.rejected,
        "deactivated": job.deactivated, "progress": progress, "error": job.error,
        "download_url": f"/api/v1/exchange/jobs/{job.id}/file" if done_export else None,
        "created_at": job.created_at, "finished_at": job.finished_at})
