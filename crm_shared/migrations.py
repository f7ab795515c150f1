"""Alembic migrations, one history per service, applied at start under a
PostgreSQL advisory lock so replicas starting together migrate once.

Run by hand: ``python -m crm_shared.migrations <service>``."""
from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from crm_shared.db import make_engine

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a migration history."""
    return int.from_bytes(hashlib.sha256(f"crm-migrate:{name}".encode()).digest()[:8], "big", signed=True)


def _alembic_config(script_location: str | Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


def migrate(database_url: str, script_location: str | Path, name: str | None = None) -> list[str]:
    """Upgrade to head; returns the revisions applied (empty when already there)."""
    name = name or str(script_location)
    engine = make_engine(database_url, pool_size=1, application_name=f"migrate-{name}")
    cfg = _alembic_config(script_location)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    try:
        with engine.connect() as conn:
            # Session-level lock: held across alembic's own commits, released below.
            log.info("waiting for migration lock", extra={"fields": {"history": name}})
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(name)})
            conn.commit()
            try:
                before = MigrationContext.configure(conn).get_current_revision()
                conn.commit()
                if before == head:
                    log.info("database up to date", extra={"fields": {"history": name, "revision": head}})
                    return []
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
                after = MigrationContext.configure(conn).get_current_revision()
                log.info("database migrated", extra={"fields": {"history": name, "from": before, "to": after}})
                return [r for r in [after] if r]
            finally:
                conn.rollback()  # a failed migration leaves the transaction aborted; keep its error visible
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                conn.commit()
    finally:
        engine.dispose()


def run_env(target_metadata: Any = None) -> None:
    """Body of every service's ``migrations/env.py``: online mode, using the
    connection that ``migrate`` holds the lock on."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through crm_shared.migrations.migrate()")
    context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def create_database_if_missing(database_url: str) -> bool:
    """Creates the database named in the URL (used by ``make run`` and tests)."""
    url = sa.make_url(database_url)
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False), pool_size=1)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database})
            if exists:
                return False
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
            return True
    finally:
        admin.dispose()


def main(argv: list[str]) -> int:
    from crm_shared.runner import load_service

    if len(argv) != 1:
        print("usage: python -m crm_shared.migrations <service>", file=sys.stderr)
        return 2
    spec = load_service(argv[0])
    from crm_shared.logging import configure_logging

    configure_logging(spec.name, spec.settings.LOG_LEVEL, spec.settings.LOG_FORMAT)
    if spec.migrations is None or not spec.settings.DATABASE_URL:
        print(f"{spec.name} has no database to migrate", file=sys.stderr)
        return 2
    migrate(spec.settings.DATABASE_URL, spec.migrations, spec.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def create_infrastructure_tables() -> None:
    """The outbox and processed-event tables, as every service's first
    migration creates them. Frozen: later changes get their own migration."""
    from alembic import op

    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("aggregate_id", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_outbox_events_unpublished", "outbox_events", ["id"],
                    postgresql_where=sa.text("published_at IS NULL"))
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("consumer", sa.String(200), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
