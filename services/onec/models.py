"""Table models of the onec service. Every tenant-owned table leads its
primary key and indexes with ``tenant_id``.

A CSV import is a job (``ImportJob``) with its file (``ImportFile``, kept
while the job runs and counted in the tenant's disk quota) and one
``ImportRow`` per data row: what was done with it, and for a rejected row
its cells, from which the error file is written."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT = sa.String(64)


class Base(DeclarativeBase):
    pass


class ImportJob(Base):
    __tablename__ = "import_jobs"
    __table_args__ = (
        sa.Index("ix_import_jobs_user", "tenant_id", "user_id", "created_at"),
        # the job runner's claim reads the few jobs not finished, across tenants: all of this index
        sa.Index("ix_import_jobs_open", "tenant_id", "created_at",
                 postgresql_where=sa.text("status IN ('queued', 'running', 'reverting')")),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    actor: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    entity: Mapped[str] = mapped_column(sa.String(32))
    file_name: Mapped[str | None] = mapped_column(sa.String(300))
    policy: Mapped[str] = mapped_column(sa.String(16))
    dry_run: Mapped[bool] = mapped_column(sa.Boolean)
    format: Mapped[str] = mapped_column(sa.String(8))
    encoding: Mapped[str | None] = mapped_column(sa.String(32))
    delimiter: Mapped[str | None] = mapped_column(sa.String(1))
    headers: Mapped[list[str]] = mapped_column(JSONB)
    mapping: Mapped[dict[str, str]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(sa.String(16))
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    read: Mapped[int] = mapped_column(sa.Integer, default=0)
    created: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped: Mapped[int] = mapped_column(sa.Integer, default=0)
    duplicates: Mapped[int] = mapped_column(sa.Integer, default=0)
    rejected: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_row: Mapped[int] = mapped_column(sa.Integer, default=1)   # the last file row done
    batch_no: Mapped[int] = mapped_column(sa.Integer, default=0)   # batches sent to crm
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    file_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    lease_until: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reverted: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class ImportFile(Base):
    """A job's file in parts of ``PART_BYTES`` (a CSV or exchange upload, or an exchange export's result):
    a running job reads or writes one part at a time."""

    __tablename__ = "import_files"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    part: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class ImportRow(Base):
    __tablename__ = "import_rows"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    row_no: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    record_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    duplicate: Mapped[bool] = mapped_column(sa.Boolean)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    cells: Mapped[list[str] | None] = mapped_column(JSONB)  # rejected rows only


# -- the 1C exchange --------------------------------------------------------------------

class ExchangeSettings(Base):
    """The tenant's "Интеграция с 1С" form."""

    __tablename__ = "exchange_settings"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(32))
    file_name: Mapped[str | None] = mapped_column(sa.String(100))
    import_objects: Mapped[list[str]] = mapped_column(JSONB)
    export_objects: Mapped[dict[str, Any]] = mapped_column(JSONB)
    overwrite: Mapped[bool] = mapped_column(sa.Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)


class ExchangeJob(Base):
    """An exchange import (its file in ``ImportFile`` while it runs) or export (the file it wrote, in
    ``ImportFile`` until retention)."""

    __tablename__ = "exchange_jobs"
    __table_args__ = (
        sa.Index("ix_exchange_jobs_created", "tenant_id", "created_at"),
        sa.Index("ix_exchange_jobs_open", "tenant_id", "created_at",
                 postgresql_where=sa.text("status IN ('queued', 'running')")),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    actor: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    direction: Mapped[str] = mapped_column(sa.String(8))
    version: Mapped[str] = mapped_column(sa.String(32))
    objects: Mapped[list[str]] = mapped_column(JSONB)
    windows: Mapped[dict[str, Any]] = mapped_column(JSONB)  # an export's object -> {since, until}
    # "api" (an upload: the job is the whole exchange) or "http:<session>" (one file of 1C's HTTP exchange)
    source: Mapped[str] = mapped_column(sa.String(64), default="api")
    full_catalogue: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # a CommerceML catalogue, not changes
    overwrite: Mapped[bool] = mapped_column(sa.Boolean)
    file_name: Mapped[str | None] = mapped_column(sa.String(300))
    status: Mapped[str] = mapped_column(sa.String(16))
    read: Mapped[int] = mapped_column(sa.Integer, default=0)
    created: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped: Mapped[int] = mapped_column(sa.Integer, default=0)
    rejected: Mapped[int] = mapped_column(sa.Integer, default=0)
    deactivated: Mapped[int] = mapped_column(sa.Integer, default=0)  # left out of a full catalogue
    position: Mapped[int] = mapped_column(sa.Integer, default=0)     # objects of the file done
    batch_no: Mapped[int] = mapped_column(sa.Integer, default=0)
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)      # the file's bytes
    consumed: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # bytes read at ``position``
    file_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # counted in the quota
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    lease_until: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class ExchangeLogEntry(Base):
    """The exchange log ("Журнал обмена"): jobs started and ended, objects left out and why."""

    __tablename__ = "exchange_log"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    level: Mapped[str] = mapped_column(sa.String(8))
    message: Mapped[str] = mapped_column(sa.Text)
    path: Mapped[str | None] = mapped_column(sa.Text)


class ExchangeReference(Base):
    """Service data from 1C (units, currencies, organisations), kept for the exchange."""

    __tablename__ = "exchange_reference"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class ExchangePeer(Base):
    """An exchange's message numbering (EnterpriseData ``MessageNo`` / ``ReceivedNo``)."""

    __tablename__ = "exchange_peers"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    peer: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    received_no: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sent_no: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # CommerceML HTTP ``sale``: invoices changed up to here were confirmed by 1C (``mode=success``)
    synced_until: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class ExchangeSession(Base):
    """A CommerceML HTTP exchange session (1C's cookie), opened by ``mode=checkauth``."""

    __tablename__ = "exchange_sessions"
    __table_args__ = (sa.Index("ix_exchange_sessions_expiry", "expires_at"),)

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    actor: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    type: Mapped[str] = mapped_column(sa.String(8))
    # uploads by file name -> bytes so far (the parts are ``ImportFile`` rows under ``upload_id``)
    uploads: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    pending_until: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
