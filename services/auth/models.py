"""Table models of the auth service. Every tenant-owned table leads its
primary key and indexes with ``tenant_id``.

Tables: ``tenants`` (product code, tariff, provisioning state),
``sessions`` and ``refresh_tokens`` (hashes only), ``login_throttle`` (per
tenant and login) and ``ip_throttle`` (per client address, not tenant
data), ``storage_ledgers`` (bytes stored per tenant, the row that
reservations lock) and ``storage_reservations``."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TS = sa.DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    product_code: Mapped[str] = mapped_column(sa.String(16), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # provisioning | active
    company_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    owner_email: Mapped[str] = mapped_column(sa.String(320), nullable=False)
    max_sessions: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    disk_quota_mb: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    request_fingerprint: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    admin_user_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    activated_at: Mapped[dt.datetime | None] = mapped_column(TS)
    first_login_at: Mapped[dt.datetime | None] = mapped_column(TS)


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        sa.Index("ix_sessions_tenant_user", "tenant_id", "user_id"),
        sa.Index("ix_sessions_tenant_live", "tenant_id", "idle_expires_at",
                 postgresql_where=sa.text("revoked_at IS NULL")),
        sa.Index("ix_sessions_tenant_revoked", "tenant_id", "access_expires_at",
                 postgresql_where=sa.text("revoked_at IS NOT NULL")),
    )

    tenant_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    last_seen_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    idle_expires_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)  # absolute lifetime
    access_expires_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)  # of the last access token
    revoked_at: Mapped[dt.datetime | None] = mapped_column(TS)
    revoke_reason: Mapped[str | None] = mapped_column(sa.String(40))
    client_ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"

    tenant_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    spent_at: Mapped[dt.datetime | None] = mapped_column(TS)


class LoginThrottle(Base):
    """Failures per (tenant, login). ``tenant_key`` is the tenant id, or
    ``?<code>`` for a product code that names no tenant (throttled alike so
    answers do not tell which codes exist)."""

    __tablename__ = "login_throttle"

    tenant_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    login: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(64))
    failures: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(TS)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(TS)
    locked_until: Mapped[dt.datetime | None] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)


class IpThrottle(Base):
    __tablename__ = "ip_throttle"

    client_ip: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(TS)


class StorageLedger(Base):
    __tablename__ = "storage_ledgers"

    tenant_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    used_bytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)


class StorageReservation(Base):
    __tablename__ = "storage_reservations"
    __table_args__ = (
        sa.Index("ix_storage_reservations_pending", "tenant_id", "expires_at",
                 postgresql_where=sa.text("state = 'pending'")),
    )

    tenant_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    reservation_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    nbytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    purpose: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    state: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # pending | committed | released
    actual_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
    settled_at: Mapped[dt.datetime | None] = mapped_column(TS)


class StorageRelease(Base):
    """Dedupe of ``release_stored`` calls that carry a reference."""

    __tablename__ = "storage_releases"

    tenant_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    ref: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    nbytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(TS, nullable=False)
