"""CSV import jobs, their files and row outcomes

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("actor", JSONB),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("file_name", sa.String(300)),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("encoding", sa.String(32)),
        sa.Column("delimiter", sa.String(1)),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("mapping", JSONB, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *[sa.Column(name, sa.Integer, nullable=False, server_default="0")
          for name in ("total", "read", "created", "updated", "skipped", "duplicates", "rejected")],
        sa.Column("last_row", sa.Integer, nullable=False, server_default="1"),
        sa.Column("batch_no", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("file_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("reverted", JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_import_jobs_user", "import_jobs", ["tenant_id", "user_id", "created_at"])
    op.create_index("ix_import_jobs_open", "import_jobs", ["tenant_id", "created_at"],
                    postgresql_where=sa.text("status IN ('queued', 'running', 'reverting')"))
    op.create_table(
        "import_files",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("job_id", sa.Uuid, primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "import_rows",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("job_id", sa.Uuid, primary_key=True),
        sa.Column("row_no", sa.Integer, primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("record_id", sa.Uuid),
        sa.Column("duplicate", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("cells", JSONB),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
