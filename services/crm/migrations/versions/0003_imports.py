"""CSV imports: applied batches and per-record changes (for revert); an
index on products' article (the import's duplicate key)

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


def upgrade() -> None:
    op.create_table(
        "import_batches",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("import_id", sa.Uuid, primary_key=True),
        sa.Column("batch_no", sa.Integer, primary_key=True),
        sa.Column("outcomes", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "import_changes",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("import_id", sa.Uuid, primary_key=True),
        sa.Column("record_id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("before", JSONB),
        sa.Column("stamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    )
    op.execute("CREATE INDEX ix_products_article ON products (tenant_id, lower(article)) "
               "WHERE article IS NOT NULL")


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
