"""Table models of the users service. Every tenant-owned table leads its
primary key and indexes with ``tenant_id``."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT = sa.String(64)


def _now() -> Any:
    return sa.func.now()


class Base(DeclarativeBase):
    pass


class Instance(Base):
    """One row per bootstrapped tenant (the default instance exists)."""

    __tablename__ = "instances"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    company_name: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class Department(Base):
    """The organisation's tree; its root (``parent_id`` NULL) is the organisation itself."""

    __tablename__ = "departments"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "parent_id"], ["departments.tenant_id", "departments.id"],
                                name="fk_departments_parent"),
        sa.Index("ix_departments_parent", "tenant_id", "parent_id"),
        # one organisation root per tenant
        sa.Index("uq_departments_root", "tenant_id", unique=True, postgresql_where=sa.text("parent_id IS NULL")),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class Role(Base):
    __tablename__ = "roles"
    __table_args__ = (
        sa.Index("uq_roles_name", "tenant_id", sa.text("lower(name)"), unique=True),
        sa.Index("uq_roles_builtin", "tenant_id", "builtin", unique=True,
                 postgresql_where=sa.text("builtin IS NOT NULL")),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(200))
    # {code: scope}, only rights above "none"
    rights: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    builtin: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class Position(Base):
    __tablename__ = "positions"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "department_id"], ["departments.tenant_id", "departments.id"],
                                name="fk_positions_department"),
        sa.ForeignKeyConstraint(["tenant_id", "role_id"], ["roles.tenant_id", "roles.id"],
                                name="fk_positions_role"),
        sa.Index("uq_positions_title", "tenant_id", "department_id", sa.text("lower(title)"), unique=True),
        sa.Index("ix_positions_role", "tenant_id", "role_id"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(sa.String(200))
    department_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    role_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    builtin: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # logins are unique per tenant, case-insensitively, among users not deleted
        sa.Index("uq_users_login", "tenant_id", sa.text("lower(login)"), unique=True,
                 postgresql_where=sa.text("deleted_at IS NULL")),
        sa.Index("ix_users_name", "tenant_id", "full_name", "id"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    login: Mapped[str] = mapped_column(sa.String(64))
    full_name: Mapped[str] = mapped_column(sa.String(300))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    sip_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    password_changed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())


class UserPosition(Base):
    __tablename__ = "user_positions"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"],
                                name="fk_user_positions_user"),
        sa.ForeignKeyConstraint(["tenant_id", "position_id"], ["positions.tenant_id", "positions.id"],
                                name="fk_user_positions_position"),
        sa.Index("ix_user_positions_position", "tenant_id", "position_id"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    position_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)


class JournalEntry(Base):
    """The audit journal: who changed what, when; secrets masked."""

    __tablename__ = "journal"
    __table_args__ = (
        sa.Index("ix_journal_entity", "tenant_id", "entity", "entity_id", "id"),
        sa.Index("ix_journal_actor", "tenant_id", "actor_id", "id"),
        sa.Index("ix_journal_at", "tenant_id", "at"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=_now())
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    actor_login: Mapped[str | None] = mapped_column(sa.String(64))
    actor_name: Mapped[str | None] = mapped_column(sa.String(300))
    source: Mapped[str] = mapped_column(sa.String(64))
    entity: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
