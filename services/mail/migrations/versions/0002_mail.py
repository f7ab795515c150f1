"""mail accounts, folder cursors, messages once per tenant, mailbox entries

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
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mail_accounts",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("preset", sa.String(16)),
        sa.Column("password_enc", sa.Text, nullable=False),
        sa.Column("imap_host", sa.String(253), nullable=False),
        sa.Column("imap_port", sa.Integer, nullable=False),
        sa.Column("imap_encryption", sa.String(8), nullable=False),
        sa.Column("imap_login", sa.String(320), nullable=False),
        sa.Column("smtp_host", sa.String(253), nullable=False),
        sa.Column("smtp_port", sa.Integer, nullable=False),
        sa.Column("smtp_encryption", sa.String(8), nullable=False),
        sa.Column("smtp_auth", sa.String(16), nullable=False),
        sa.Column("smtp_login", sa.String(320)),
        sa.Column("smtp_password_enc", sa.Text),
        sa.Column("smtp_require_secure_auth", sa.Boolean, nullable=False),
        sa.Column("timeout_min", sa.Integer, nullable=False),
        sa.Column("poll_every_min", sa.Integer, nullable=False),
        sa.Column("sent_folder", sa.String(500)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("next_poll_at", TS, nullable=False),
        sa.Column("lease_until", TS),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False, server_default="never"),
        sa.Column("last_poll_at", TS),
        sa.Column("last_success_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_reason", sa.String(32)),
        sa.Column("messages_behind", sa.Integer, nullable=False, server_default="0"),
        sa.Column("idle_owner", sa.String(64)),
        sa.Column("idle_until", TS),
        sa.Column("idle_supported", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("pending_reservation", sa.String(200)),
        sa.Column("pending_bytes", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_mail_accounts_user", "mail_accounts", ["tenant_id", "user_id"])
    op.create_index("ix_mail_accounts_due", "mail_accounts", ["next_poll_at"], postgresql_where=sa.text("active"))
    op.create_index("uq_mail_accounts_default", "mail_accounts", ["tenant_id", "user_id"], unique=True,
                    postgresql_where=sa.text("is_default"))
    op.create_table(
        "mail_folders",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("folder", sa.String(500), primary_key=True),
        sa.Column("uidvalidity", sa.BigInteger),
        sa.Column("last_uid", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("messages_behind", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reconciled_at", TS),
        sa.Column("reconcile_missing", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "mail_messages",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("message_key", sa.String(400), nullable=False),
        sa.Column("message_id", sa.String(998)),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("sender", JSONB),
        sa.Column("to", JSONB, nullable=False),
        sa.Column("cc", JSONB, nullable=False),
        sa.Column("sent_at", TS),
        sa.Column("text", sa.Text),
        sa.Column("html", sa.Text),
        sa.Column("attachments", JSONB, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("counterpart", sa.String(320)),
        sa.Column("contact_id", sa.Uuid),
        sa.Column("counterparty_id", sa.Uuid),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "message_key", name="uq_mail_messages_key"),
    )
    op.create_index("ix_mail_messages_sent", "mail_messages", ["tenant_id", "sent_at", "id"])
    op.create_index("ix_mail_messages_contact", "mail_messages", ["tenant_id", "contact_id"])
    op.create_index("ix_mail_messages_counterparty", "mail_messages", ["tenant_id", "counterparty_id"])
    op.create_table(
        "mail_entries",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("folder", sa.String(500), primary_key=True),
        sa.Column("uidvalidity", sa.BigInteger, primary_key=True),
        sa.Column("uid", sa.BigInteger, primary_key=True),
        sa.Column("message_id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
    )
    op.create_index("ix_mail_entries_message", "mail_entries", ["tenant_id", "message_id"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
