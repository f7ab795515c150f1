"""1C exchange: contacts and products can be deactivated (a deletion in 1C
deactivates, never deletes), as counterparties already can

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("contacts", "products"):
        op.add_column(table, sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
