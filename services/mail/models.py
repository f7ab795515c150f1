"""Table models of the mail service. Every tenant-owned table leads its
primary key and indexes with ``tenant_id``.

- ``MailAccount``: a user's account, its servers, its secrets (encrypted,
  bound to the row), its schedule (``next_poll_at``, ``lease_until``: the
  poller's row lease) and its status.
- ``MailFolder``: the sync cursor of one folder of an account
  (UIDVALIDITY and the last UID stored), and its reconciliation result.
- ``MailMessage``: a message, once per tenant (``message_key``), with its
  raw bytes and what was decoded from them.
- ``MailEntry``: where a message sits: account, folder, UIDVALIDITY, UID."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT = sa.String(64)
TS = sa.DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class MailAccount(Base):
    __tablename__ = "mail_accounts"
    __table_args__ = (
        sa.Index("ix_mail_accounts_user", "tenant_id", "user_id"),
        # the poller's claim: active accounts by due time, across tenants
        sa.Index("ix_mail_accounts_due", "next_poll_at", postgresql_where=sa.text("active")),
        sa.Index("uq_mail_accounts_default", "tenant_id", "user_id", unique=True,
                 postgresql_where=sa.text("is_default")),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320))
    preset: Mapped[str | None] = mapped_column(sa.String(16))
    password_enc: Mapped[str] = mapped_column(sa.Text)
    imap_host: Mapped[str] = mapped_column(sa.String(253))
    imap_port: Mapped[int] = mapped_column(sa.Integer)
    imap_encryption: Mapped[str] = mapped_column(sa.String(8))
    imap_login: Mapped[str] = mapped_column(sa.String(320))
    smtp_host: Mapped[str] = mapped_column(sa.String(253))
    smtp_port: Mapped[int] = mapped_column(sa.Integer)
    smtp_encryption: Mapped[str] = mapped_column(sa.String(8))
    smtp_auth: Mapped[str] = mapped_column(sa.String(16))
    smtp_login: Mapped[str | None] = mapped_column(sa.String(320))
    smtp_password_enc: Mapped[str | None] = mapped_column(sa.Text)
    smtp_require_secure_auth: Mapped[bool] = mapped_column(sa.Boolean)
    timeout_min: Mapped[int] = mapped_column(sa.Integer)
    poll_every_min: Mapped[int] = mapped_column(sa.Integer)
    sent_folder: Mapped[str | None] = mapped_column(sa.String(500))
    active: Mapped[bool] = mapped_column(sa.Boolean)
    is_default: Mapped[bool] = mapped_column(sa.Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)
    # the schedule and the poller's lease
    next_poll_at: Mapped[dt.datetime] = mapped_column(TS)
    lease_until: Mapped[dt.datetime | None] = mapped_column(TS)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    # status
    state: Mapped[str] = mapped_column(sa.String(16), default="never")
    last_poll_at: Mapped[dt.datetime | None] = mapped_column(TS)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(TS)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_reason: Mapped[str | None] = mapped_column(sa.String(32))
    messages_behind: Mapped[int] = mapped_column(sa.Integer, default=0)
    # the IMAP IDLE watch on INBOX: which replica holds it, until when; false once a server lacks IDLE
    idle_owner: Mapped[str | None] = mapped_column(sa.String(64))
    idle_until: Mapped[dt.datetime | None] = mapped_column(TS)
    idle_supported: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # storage booked in the database but not yet committed to auth's ledger (a crash in between)
    pending_reservation: Mapped[str | None] = mapped_column(sa.String(200))
    pending_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class MailFolder(Base):
    __tablename__ = "mail_folders"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    folder: Mapped[str] = mapped_column(sa.String(500), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_uid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    messages_behind: Mapped[int] = mapped_column(sa.Integer, default=0)
    reconciled_at: Mapped[dt.datetime | None] = mapped_column(TS)
    reconcile_missing: Mapped[int] = mapped_column(sa.Integer, default=0)


class MailMessage(Base):
    __tablename__ = "mail_messages"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "message_key", name="uq_mail_messages_key"),
        sa.Index("ix_mail_messages_sent", "tenant_id", "sent_at", "id"),
        sa.Index("ix_mail_messages_contact", "tenant_id", "contact_id"),
        sa.Index("ix_mail_messages_counterparty", "tenant_id", "counterparty_id"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    message_key: Mapped[str] = mapped_column(sa.String(400))
    message_id: Mapped[str | None] = mapped_column(sa.String(998))
    direction: Mapped[str] = mapped_column(sa.String(8))
    subject: Mapped[str | None] = mapped_column(sa.Text)
    sender: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    to: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    cc: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    sent_at: Mapped[dt.datetime | None] = mapped_column(TS)
    text: Mapped[str | None] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    size: Mapped[int] = mapped_column(sa.Integer)
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)
    counterpart: Mapped[str | None] = mapped_column(sa.String(320))  # the other party's address
    contact_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    counterparty_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(TS)


class MailEntry(Base):
    __tablename__ = "mail_entries"
    __table_args__ = (
        sa.Index("ix_mail_entries_message", "tenant_id", "message_id"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    folder: Mapped[str] = mapped_column(sa.String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uid: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)  # the account's owner (the rights filter column)
