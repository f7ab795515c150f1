"""a slow migration that fails if run twice (CREATE TABLE without IF NOT EXISTS)"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT pg_sleep(1.5)")
    op.execute("CREATE TABLE slow_marker (id integer primary key)")
    op.execute("INSERT INTO slow_marker VALUES (1)")
