"""infrastructure tables plus a table the test consumers write to"""
import sqlalchemy as sa
from alembic import op

from crm_shared.migrations import create_infrastructure_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_infrastructure_tables()
    op.create_table(
        "received",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("aggregate_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
