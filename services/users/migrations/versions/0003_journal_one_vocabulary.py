"""the journal's actions in one vocabulary: crm's created/updated/deleted become create/update/delete

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RENAMES = {"created": "create", "updated": "update", "deleted": "delete"}


def upgrade() -> None:
    for old, new in RENAMES.items():
        op.execute(f"UPDATE journal SET action = '{new}' WHERE action = '{old}'")


def downgrade() -> None:
    # only crm's records used the old forms
    for old, new in RENAMES.items():
        op.execute(f"UPDATE journal SET action = '{old}' WHERE action = '{new}' AND entity IN "
                   "('counterparty', 'contact', 'product', 'invoice', 'payment', 'communication')")
