"""1C exchange: settings, jobs, the exchange log, service data, message numbering, HTTP exchange sessions

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TENANT = sa.String(64)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exchange_settings",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("file_name", sa.String(100)),
        sa.Column("import_objects", JSONB, nullable=False),
        sa.Column("export_objects", JSONB, nullable=False),
        sa.Column("overwrite", sa.Boolean, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.Uuid),
    )
    op.create_table(
        "exchange_jobs",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("actor", JSONB),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("objects", JSONB, nullable=False),
        sa.Column("windows", JSONB, nullable=False),
        sa.Column("source", sa.String(64), nullable=False, server_default="api"),
        sa.Column("full_catalogue", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("overwrite", sa.Boolean, nullable=False),
        sa.Column("file_name", sa.String(300)),
        sa.Column("status", sa.String(16), nullable=False),
        *[sa.Column(name, sa.Integer, nullable=False, server_default="0")
          for name in ("read", "created", "updated", "skipped", "rejected", "deactivated", "position", "batch_no",
                       "attempts")],
        *[sa.Column(name, sa.BigInteger, nullable=False, server_default="0")
          for name in ("size", "consumed", "file_bytes")],
        sa.Column("lease_until", TS),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_exchange_jobs_created", "exchange_jobs", ["tenant_id", "created_at"])
    op.create_index("ix_exchange_jobs_open", "exchange_jobs", ["tenant_id", "created_at"],
                    postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.create_table(
        "exchange_log",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", sa.Uuid),
        sa.Column("at", TS, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("path", sa.Text),
    )
    op.create_table(
        "exchange_reference",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("code", sa.String(200), primary_key=True),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "exchange_peers",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("peer", sa.String(200), primary_key=True),
        sa.Column("received_no", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("sent_no", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("synced_until", TS),
    )
    op.create_table(
        "exchange_sessions",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("actor", JSONB),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("uploads", JSONB, nullable=False),
        sa.Column("pending_until", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_exchange_sessions_expiry", "exchange_sessions", ["expires_at"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
