"""SIP accounts with their worker leases, calls, Mango Office settings and webhooks taken

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT = sa.String(64)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sip_accounts",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("user_id", sa.Uuid, primary_key=True),
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("mango", sa.Boolean, nullable=False),
        sa.Column("extension", sa.String(16)),
        sa.Column("password_enc", sa.Text, nullable=False),
        sa.Column("notify_incoming", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(96)),
        sa.Column("lease_until", TS),
        sa.Column("reg_state", sa.String(16), nullable=False),
        sa.Column("reg_code", sa.Integer),
        sa.Column("reg_reason", sa.String(200)),
        sa.Column("reg_expires_at", TS),
        sa.Column("reg_changed_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_sip_accounts_lease", "sip_accounts", ["lease_until"], postgresql_where=sa.text("active"))
    op.create_index("ix_sip_accounts_worker", "sip_accounts", ["worker"])
    op.create_index("uq_sip_accounts_extension", "sip_accounts", ["tenant_id", "extension"], unique=True,
                    postgresql_where=sa.text("extension IS NOT NULL"))
    op.create_table(
        "calls",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Uuid),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("from_number", sa.String(64)),
        sa.Column("from_name", sa.String(200)),
        sa.Column("to_number", sa.String(64)),
        sa.Column("contact_id", sa.Uuid),
        sa.Column("counterparty_id", sa.Uuid),
        sa.Column("matched", sa.Boolean, nullable=False),
        sa.Column("command", sa.String(16)),
        sa.Column("worker", sa.String(96)),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("answered_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("outcome", sa.String(32)),
        sa.Column("end_reason", sa.String(200)),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("uq_calls_external", "calls", ["tenant_id", "source", "external_id"], unique=True)
    op.create_index("ix_calls_active", "calls", ["tenant_id", "started_at"],
                    postgresql_where=sa.text("ended_at IS NULL"))
    op.create_index("ix_calls_log", "calls", ["tenant_id", "started_at", "id"])
    op.create_index("ix_calls_user", "calls", ["tenant_id", "user_id", "started_at"])
    op.create_index("ix_calls_worker", "calls", ["worker"], postgresql_where=sa.text("ended_at IS NULL"))
    op.create_index("ix_calls_unmatched", "calls", ["started_at"], postgresql_where=sa.text("NOT matched"))
    op.create_table(
        "mango_settings",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("api_key_enc", sa.Text, nullable=False),
        sa.Column("api_salt_enc", sa.Text, nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("api_base", sa.String(500), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("uq_mango_settings_key", "mango_settings", ["key_fingerprint"], unique=True)
    op.create_table(
        "mango_webhooks",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("sign", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_mango_webhooks_received", "mango_webhooks", ["received_at"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
