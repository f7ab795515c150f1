"""The CommerceML HTTP protocol ("обмен с сайтом"), as 1C drives it at
``/api/v1/exchange/1c``:

- ``mode=checkauth`` (HTTP Basic, checked by the gateway) opens a session;
  the answer names its cookie;
- ``mode=init``: ``zip=yes`` and ``file_limit`` (1C then sends one zip, in
  chunks of at most that size);
- ``mode=file&filename=``: the body is appended to that file (a chunked
  upload arrives as several calls); pictures and other non-XML files are
  acknowledged and dropped;
- ``type=catalog&mode=import&filename=``: the file (or the zip's member of
  that name) becomes an exchange import job; while it runs the answer is
  ``progress``, then ``success`` or ``failure``;
- ``type=sale&mode=query``: the invoices changed since the last exchange 1C
  confirmed, as CommerceML documents; ``mode=success`` confirms them;
- ``type=sale&mode=file``: documents from 1C (payments) are imported.

Every call after ``checkauth`` carries the cookie, and the user behind it
must still be active and hold ``exchange.run`` (the crm service checks it)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
import zipfile
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from contracts.exchange import version_of
from services.onec import commerceml
from services.onec import exchange as X
from services.onec.exceptions import ValidationFailed
from services.onec.imports import PART_BYTES, utcnow
from services.onec.models import ExchangeJob, ExchangePeer, ExchangeSession, ExchangeSettings, ImportFile

COOKIE = "crm_1c_session"
VERSION = "commerceml-2.10"
SESSION_HOURS = 12
KEPT = (".xml", ".zip")


class BadSession(Exception):
    """The cookie names no open session."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(session: Session, tenant_id: str, user_id: str, actor: Any, kind: str) -> str:
    """A new session; answers the cookie's value ``<tenant>.<session>.<secret>``."""
    secret = secrets.token_urlsafe(24)
    row = ExchangeSession(tenant_id=tenant_id, id=uuid.uuid4(), secret_hash=_hash(secret), user_id=uuid.UUID(user_id),
                          actor=actor, type=kind, uploads={}, created_at=utcnow(),
                          expires_at=utcnow() + dt.timedelta(hours=SESSION_HOURS))
    session.add(row)
    return f"{tenant_id}.{row.id}.{secret}"


def find_session(session: Session, cookie: str) -> ExchangeSession:
    parts = str(cookie or "").split(".")
    if len(parts) != 3:
        raise BadSession("no exchange session: call mode=checkauth first")
    tenant_id, sid, secret = parts
    try:
        key = uuid.UUID(sid)
    except ValueError:
        raise BadSession("no exchange session: call mode=checkauth first") from None
    row = session.get(ExchangeSession, (tenant_id, key), with_for_update=True)
    if row is None or row.expires_at < utcnow() or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        raise BadSession("the exchange session has ended: call mode=checkauth again")
    return row


def caller_of(row: ExchangeSession) -> dict[str, str]:
    return {"tenant_id": row.tenant_id, "user_id": str(row.user_id)}


def _upload_id(row: ExchangeSession, filename: str) -> uuid.UUID:
    return uuid.uuid5(row.id, f"upload:{filename}")


def _base(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def append(session: Session, row: ExchangeSession, filename: str, data: bytes) -> bool:
    """Appends a chunk to the file; False when the file is not one the exchange keeps (a picture)."""
    if not filename or not _base(filename).lower().endswith(KEPT):
        return False
    upload = _upload_id(row, filename)
    size = int((row.uploads or {}).get(filename, 0))
    total = size + len(data)
    last = size // PART_BYTES
    if size % PART_BYTES:  # fill the last part up, then whole parts
        part = session.get(ImportFile, (row.tenant_id, upload, last))
        assert part is not None
        room = PART_BYTES - len(part.data)
        part.data = bytes(part.data) + data[:room]
        data, last = data[room:], last + 1
    for start in range(0, len(data), PART_BYTES):
        session.add(ImportFile(tenant_id=row.tenant_id, job_id=upload, part=last, data=data[start:start + PART_BYTES]))
        session.flush()
        last += 1
    row.uploads = {**(row.uploads or {}), filename: total}
    return True


def _job_id(row: ExchangeSession, filename: str) -> uuid.UUID:
    return uuid.uuid5(row.id, f"import:{filename}")


def import_step(session: Session, row: ExchangeSession, filename: str) -> tuple[str, ExchangeJob, int]:
    """What ``mode=import`` answers: ``("progress", job, bytes to count)`` when a job was just queued
    (the caller counts the bytes in the quota), ``("progress"|"success"|"failure", job, 0)`` after."""
    job = session.get(ExchangeJob, (row.tenant_id, _job_id(row, filename)))
    if job is not None:
        if job.status == "done":
            return "success", job, 0
        if job.status == "failed":
            return "failure", job, 0
        return "progress", job, 0
    job = _new_job(session, row, filename)
    return "progress", job, job.size


def _new_job(session: Session, row: ExchangeSession, filename: str) -> ExchangeJob:
    settings = session.get(ExchangeSettings, row.tenant_id)
    version = version_of(VERSION)
    assert version is not None
    objects = [o for o in (settings.import_objects if settings and settings.version == VERSION else [])
               if o in version.import_objects] or list(version.import_objects)
    job = X._new_job(row.tenant_id, str(row.user_id), row.actor, "import", VERSION, objects,
                     bool(settings and settings.overwrite), _base(filename))
    job.id = _job_id(row, filename)
    job.source = f"http:{row.id}"
    direct = _upload_id(row, filename)
    if filename in (row.uploads or {}):  # sent as it is: its parts become the job's
        session.execute(sa.update(ImportFile).where(ImportFile.tenant_id == row.tenant_id,
                                                    ImportFile.job_id == direct).values(job_id=job.id))
        job.size = int(row.uploads[filename])
    else:
        job.size = _extract(session, row, filename, job)
    job.file_bytes = job.size
    session.add(job)
    session.flush()
    return job


def _extract(session: Session, row: ExchangeSession, filename: str, job: ExchangeJob) -> int:
    """The member ``filename`` of an uploaded zip, written into the job's parts."""
    wanted = _base(filename).lower()
    for name, size in (row.uploads or {}).items():
        if not name.lower().endswith(".zip"):
            continue
        stored = X.StoredFile(_fetcher(session, row.tenant_id, _upload_id(row, name)), int(size))
        try:
            archive = zipfile.ZipFile(stored)
        except zipfile.BadZipFile:
            raise ValidationFailed(f"{name} is not a whole zip archive", code="unreadable_file") from None
        member = next((i for i in archive.infolist() if _base(i.filename).lower() == wanted), None)
        if member is None:
            continue
        out = X.PartWriter(session, job)
        with archive.open(member) as src:
            while chunk := src.read(PART_BYTES):
                out.write_bytes(chunk)
        out.close()
        return out.size
    raise ValidationFailed(f"no file {filename} was sent (mode=file) in this session", code="no_such_file")


def session_jobs(session: Session, row: ExchangeSession) -> list[ExchangeJob]:
    return list(session.scalars(sa.select(ExchangeJob).where(
        ExchangeJob.tenant_id == row.tenant_id, ExchangeJob.source == f"http:{row.id}").order_by(
        ExchangeJob.created_at)))


def _fetcher(session: Session, tenant_id: str, upload: uuid.UUID) -> Callable[[int], bytes | None]:
    def fetch(part: int) -> bytes | None:
        return session.scalar(sa.select(ImportFile.data).where(
            ImportFile.tenant_id == tenant_id, ImportFile.job_id == upload, ImportFile.part == part))
    return fetch


def sale_query(session: Session, row: ExchangeSession, crm: Any) -> str:
    """The orders document: invoices changed since the last confirmed exchange."""
    peer = session.get(ExchangePeer, (row.tenant_id, VERSION, "sale"))
    until = utcnow()
    window = {"since": peer.synced_until.isoformat() if peer and peer.synced_until else None,
              "until": until.isoformat()}
    row.pending_until = until
    parts = [commerceml.head(until)]
    for page in X.export_pages(crm, caller_of(row), "invoices", window):
        parts.extend(X.cml_invoice(item, page) for item in page["items"])
    parts.append(commerceml.TAIL)
    return "".join(parts)


def sale_success(session: Session, row: ExchangeSession) -> None:
    if row.pending_until is None:
        return
    peer = session.get(ExchangePeer, (row.tenant_id, VERSION, "sale"), with_for_update=True)
    if peer is None:
        peer = ExchangePeer(tenant_id=row.tenant_id, version=VERSION, peer="sale", received_no=0, sent_no=0)
        session.add(peer)
    peer.synced_until, peer.sent_no = row.pending_until, (peer.sent_no or 0) + 1
    row.pending_until = None


def forget_expired(session: Session) -> None:
    """Housekeeping: ended sessions and what they uploaded but never imported."""
    expired = list(session.execute(sa.select(ExchangeSession.tenant_id, ExchangeSession.id, ExchangeSession.uploads)
                                   .where(ExchangeSession.expires_at < utcnow()).limit(1000)))
    for tenant_id, sid, uploads in expired:
        ids = [uuid.uuid5(sid, f"upload:{name}") for name in (uploads or {})]
        if ids:
            session.execute(sa.delete(ImportFile).where(ImportFile.tenant_id == tenant_id, ImportFile.job_id.in_(ids)))
        session.execute(sa.delete(ExchangeSession).where(ExchangeSession.tenant_id == tenant_id,
                                                         ExchangeSession.id == sid))
