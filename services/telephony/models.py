"""Table models of the telephony service. Every tenant-owned table leads its
primary key and indexes with ``tenant_id``.

- ``SipAccount``: a user's SIP account (one per user), its password
  (encrypted, bound to the row), the engine worker holding it
  (``worker``, ``lease_until``: the row lease) and its registration as that
  worker last saw it. ``version`` grows with every change, so a worker
  re-creates the account when it differs from what it holds.
- ``Call``: a call, from the first ring to its end: the active list is the
  calls not yet ended (and those ended moments ago), the call log the ended
  ones. A click-to-call starts as a row with ``command = 'dial'``.
- ``MangoSettings``: a tenant's Mango Office API key and salt (encrypted),
  and the key's fingerprint, by which a webhook finds its tenant.
- ``MangoWebhook``: the webhooks taken, by their signature, so that a replay
  is refused."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT = sa.String(64)
TS = sa.DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class SipAccount(Base):
    __tablename__ = "sip_accounts"
    __table_args__ = (
        # the workers' claim: active accounts whose lease has run out, across tenants
        sa.Index("ix_sip_accounts_lease", "lease_until", postgresql_where=sa.text("active")),
        sa.Index("ix_sip_accounts_worker", "worker"),
        # a Mango Office extension belongs to one user of the tenant
        sa.Index("uq_sip_accounts_extension", "tenant_id", "extension", unique=True,
                 postgresql_where=sa.text("extension IS NOT NULL")),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(128))
    domain: Mapped[str] = mapped_column(sa.String(253))
    port: Mapped[int] = mapped_column(sa.Integer)
    mango: Mapped[bool] = mapped_column(sa.Boolean)  # set through mango_username
    extension: Mapped[str | None] = mapped_column(sa.String(16))  # the user's Mango Office extension
    password_enc: Mapped[str] = mapped_column(sa.Text)
    notify_incoming: Mapped[bool] = mapped_column(sa.Boolean)
    active: Mapped[bool] = mapped_column(sa.Boolean)  # the user is active and sip_enabled
    version: Mapped[int] = mapped_column(sa.Integer)
    worker: Mapped[str | None] = mapped_column(sa.String(96))
    lease_until: Mapped[dt.datetime | None] = mapped_column(TS)
    reg_state: Mapped[str] = mapped_column(sa.String(16))  # off | registering | registered | failed
    reg_code: Mapped[int | None] = mapped_column(sa.Integer)
    reg_reason: Mapped[str | None] = mapped_column(sa.String(200))
    reg_expires_at: Mapped[dt.datetime | None] = mapped_column(TS)
    reg_changed_at: Mapped[dt.datetime | None] = mapped_column(TS)
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        sa.Index("uq_calls_external", "tenant_id", "source", "external_id", unique=True),
        sa.Index("ix_calls_active", "tenant_id", "started_at", postgresql_where=sa.text("ended_at IS NULL")),
        sa.Index("ix_calls_log", "tenant_id", "started_at", "id"),
        sa.Index("ix_calls_user", "tenant_id", "user_id", "started_at"),
        # a worker's open calls, to end them when it is gone
        sa.Index("ix_calls_worker", "worker", postgresql_where=sa.text("ended_at IS NULL")),
        # the calls whose number is still to be matched to a contact, across tenants
        sa.Index("ix_calls_unmatched", "started_at", postgresql_where=sa.text("NOT matched")),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(8))  # sip | mango
    external_id: Mapped[str] = mapped_column(sa.String(200))  # the SIP Call-ID or Mango's call id
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    direction: Mapped[str] = mapped_column(sa.String(8))  # incoming | outgoing
    state: Mapped[str] = mapped_column(sa.String(16))  # ringing | talking | transferring | ended
    from_number: Mapped[str | None] = mapped_column(sa.String(64))
    from_name: Mapped[str | None] = mapped_column(sa.String(200))
    to_number: Mapped[str | None] = mapped_column(sa.String(64))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    counterparty_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    matched: Mapped[bool] = mapped_column(sa.Boolean)
    command: Mapped[str | None] = mapped_column(sa.String(16))  # dial: waiting for the user's worker
    worker: Mapped[str | None] = mapped_column(sa.String(96))
    started_at: Mapped[dt.datetime] = mapped_column(TS)
    answered_at: Mapped[dt.datetime | None] = mapped_column(TS)
    ended_at: Mapped[dt.datetime | None] = mapped_column(TS)
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    end_reason: Mapped[str | None] = mapped_column(sa.String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class MangoSettings(Base):
    __tablename__ = "mango_settings"
    __table_args__ = (sa.Index("uq_mango_settings_key", "key_fingerprint", unique=True),)

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    api_key_enc: Mapped[str] = mapped_column(sa.Text)
    api_salt_enc: Mapped[str] = mapped_column(sa.Text)
    key_fingerprint: Mapped[str] = mapped_column(sa.String(64))
    api_base: Mapped[str] = mapped_column(sa.String(500))
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class MangoWebhook(Base):
    __tablename__ = "mango_webhooks"
    __table_args__ = (sa.Index("ix_mango_webhooks_received", "received_at"),)

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    sign: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    received_at: Mapped[dt.datetime] = mapped_column(TS)
