"""outbox and processed-event tables

Revision ID: 0001
Revises:
"""
from crm_shared.migrations import create_infrastructure_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_infrastructure_tables()


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
