"""The per-tenant storage ledger (disk quota).

A writer reserves the bytes it is about to store, writes, then commits the
actual size (or releases the reservation when it gave up). Every change
locks the tenant's ledger row (``SELECT … FOR UPDATE``), so concurrent
writers are serialized: used + reserved never exceeds the quota.

A writer that crashes between reserve and commit leaves a pending
reservation; it stops counting at ``expires_at`` (the reservation TTL) and
housekeeping deletes it. A commit that arrives after its reservation
expired is still booked (the bytes were written), even over the quota.

Every call is idempotent under redelivery: committing or releasing a
settled reservation answers as before; ``release_stored`` dedupes on an
optional ``ref``."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from services.auth.exceptions import NotFound, ValidationFailed, quota_exceeded
from services.auth.models import StorageLedger, StorageRelease, StorageReservation, Tenant

MB = 1024 * 1024
SETTLED_KEEP = dt.timedelta(days=1)


def _locked_ledger(db: DbSession, tenant_id: str, now: dt.datetime) -> StorageLedger:
    db.execute(insert(StorageLedger).values(tenant_id=tenant_id, used_bytes=0, updated_at=now)
               .on_conflict_do_nothing())
    return db.scalars(sa.select(StorageLedger).where(StorageLedger.tenant_id == tenant_id).with_for_update()).one()


def reserved_bytes(db: DbSession, tenant_id: str, now: dt.datetime) -> int:
    return int(db.scalar(sa.select(sa.func.coalesce(sa.func.sum(StorageReservation.nbytes), 0)).where(
        StorageReservation.tenant_id == tenant_id, StorageReservation.state == "pending",
        StorageReservation.expires_at > now)) or 0)


def usage(db: DbSession, tenant_id: str, now: dt.datetime) -> dict[str, int]:
    used = db.scalar(sa.select(StorageLedger.used_bytes).where(StorageLedger.tenant_id == tenant_id)) or 0
    return {"disk_used_bytes": int(used), "disk_reserved_bytes": reserved_bytes(db, tenant_id, now)}


def _split(reservation_id: str) -> tuple[str, str]:
    tenant_id, sep, rid = str(reservation_id).partition(":")
    if not sep or not tenant_id or len(rid) != 32:
        raise NotFound("no such storage reservation", code="reservation_not_found")
    return tenant_id, rid


def _check_bytes(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationFailed(f"{name} must be a non-negative integer", fields={name: "must be an integer >= 0"})
    return value


def reserve(db: DbSession, tenant_id: str, nbytes: int, purpose: str, ttl_seconds: int, now: dt.datetime) -> str:
    nbytes = _check_bytes("nbytes", nbytes)
    tenant = db.scalars(sa.select(Tenant).where(Tenant.tenant_id == tenant_id, Tenant.status == "active")).first()
    if tenant is None:
        raise NotFound("no such tenant", code="tenant_not_found")
    ledger = _locked_ledger(db, tenant_id, now)
    allowed = tenant.disk_quota_mb * MB
    reserved = reserved_bytes(db, tenant_id, now)
    if ledger.used_bytes + reserved + nbytes > allowed:
        raise quota_exceeded(ledger.used_bytes, reserved, nbytes, allowed)
    rid = uuid.uuid4().hex
    db.add(StorageReservation(tenant_id=tenant_id, reservation_id=rid, nbytes=nbytes,
                              purpose=(purpose or "")[:200], state="pending", created_at=now,
                              expires_at=now + dt.timedelta(seconds=ttl_seconds)))
    db.flush()
    return f"{tenant_id}:{rid}"


def _reservation(db: DbSession, tenant_id: str, rid: str) -> StorageReservation:
    row = db.scalars(sa.select(StorageReservation).where(StorageReservation.tenant_id == tenant_id,
                                                         StorageReservation.reservation_id == rid)).first()
    if row is None:
        raise NotFound("no such storage reservation (expired reservations are forgotten after a day)",
                       code="reservation_not_found")
    return row


def commit(db: DbSession, reservation_id: str, actual_bytes: int, now: dt.datetime) -> dict[str, Any]:
    actual_bytes = _check_bytes("actual_bytes", actual_bytes)
    tenant_id, rid = _split(reservation_id)
    ledger = _locked_ledger(db, tenant_id, now)
    row = _reservation(db, tenant_id, rid)
    if row.state == "committed":
        return {"reservation_id": reservation_id, "state": row.state, "actual_bytes": row.actual_bytes,
                "disk_used_bytes": ledger.used_bytes}
    if row.state == "released":
        raise ValidationFailed("the reservation was released", code="reservation_released")
    row.state, row.actual_bytes, row.settled_at = "committed", actual_bytes, now
    ledger.used_bytes += actual_bytes
    ledger.updated_at = now
    db.flush()
    return {"reservation_id": reservation_id, "state": row.state, "actual_bytes": actual_bytes,
            "disk_used_bytes": ledger.used_bytes}


def release(db: DbSession, reservation_id: str, now: dt.datetime) -> dict[str, Any]:
    tenant_id, rid = _split(reservation_id)
    _locked_ledger(db, tenant_id, now)
    row = db.scalars(sa.select(StorageReservation).where(StorageReservation.tenant_id == tenant_id,
                                                         StorageReservation.reservation_id == rid)).first()
    if row is None or row.state == "released":
        return {"reservation_id": reservation_id, "state": "released"}
    if row.state == "committed":
        raise ValidationFailed("the reservation was committed: free its bytes with release_stored",
                               code="reservation_committed")
    row.state, row.settled_at = "released", now
    db.flush()
    return {"reservation_id": reservation_id, "state": "released"}


def release_stored(db: DbSession, tenant_id: str, nbytes: int, now: dt.datetime, ref: str | None = None
                   ) -> dict[str, Any]:
    nbytes = _check_bytes("nbytes", nbytes)
    ledger = _locked_ledger(db, tenant_id, now)
    if ref:
        inserted = db.execute(insert(StorageRelease).values(tenant_id=tenant_id, ref=str(ref)[:200], nbytes=nbytes,
                                                            created_at=now)
                              .on_conflict_do_nothing().returning(StorageRelease.ref)).first()
        if inserted is None:
            return {"disk_used_bytes": ledger.used_bytes, "duplicate": True}
    ledger.used_bytes = max(0, ledger.used_bytes - nbytes)
    ledger.updated_at = now
    db.flush()
    return {"disk_used_bytes": ledger.used_bytes, "duplicate": False}


def purge(db: DbSession, now: dt.datetime) -> int:
    """Forgets expired pending reservations and settled ones older than a day."""
    cutoff = now - SETTLED_KEEP
    result = db.execute(sa.delete(StorageReservation).where(sa.or_(
        sa.and_(StorageReservation.state == "pending", StorageReservation.expires_at < cutoff),
        StorageReservation.settled_at < cutoff)))
    db.execute(sa.delete(StorageRelease).where(StorageRelease.created_at < now - dt.timedelta(days=7)))
    return int(getattr(result, "rowcount", 0) or 0)
