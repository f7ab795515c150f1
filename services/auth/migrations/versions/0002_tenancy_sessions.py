"""tenants, sessions, refresh tokens, login throttling, storage ledger

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("product_code", sa.String(16), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("owner_email", sa.String(320), nullable=False),
        sa.Column("max_sessions", sa.Integer, nullable=False),
        sa.Column("disk_quota_mb", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("admin_user_id", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("activated_at", TS),
        sa.Column("first_login_at", TS),
        sa.CheckConstraint("status IN ('provisioning', 'active')", name="ck_tenants_status"),
        sa.CheckConstraint("max_sessions >= 1", name="ck_tenants_max_sessions"),
        sa.CheckConstraint("disk_quota_mb >= 0", name="ck_tenants_disk_quota"),
    )
    op.create_table(
        "sessions",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("idle_expires_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("access_expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
        sa.Column("revoke_reason", sa.String(40)),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("user_agent", sa.String(300)),
    )
    op.create_index("ix_sessions_tenant_user", "sessions", ["tenant_id", "user_id"])
    op.create_index("ix_sessions_tenant_live", "sessions", ["tenant_id", "idle_expires_at"],
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_index("ix_sessions_tenant_revoked", "sessions", ["tenant_id", "access_expires_at"],
                    postgresql_where=sa.text("revoked_at IS NOT NULL"))
    op.create_table(
        "refresh_tokens",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(32), primary_key=True),
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("spent_at", TS),
    )
    op.create_table(
        "login_throttle",
        sa.Column("tenant_key", sa.String(64), primary_key=True),
        sa.Column("login", sa.String(200), primary_key=True),
        sa.Column("user_id", sa.String(64)),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_failure_at", TS),
        sa.Column("next_attempt_at", TS),
        sa.Column("locked_until", TS),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "ip_throttle",
        sa.Column("client_ip", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("window_started_at", TS, nullable=False),
        sa.Column("blocked_until", TS),
    )
    op.create_table(
        "storage_ledgers",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("used_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("used_bytes >= 0", name="ck_storage_ledgers_used"),
    )
    op.create_table(
        "storage_reservations",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("reservation_id", sa.String(32), primary_key=True),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("actual_bytes", sa.BigInteger),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("settled_at", TS),
        sa.CheckConstraint("state IN ('pending', 'committed', 'released')", name="ck_storage_reservations_state"),
    )
    op.create_index("ix_storage_reservations_pending", "storage_reservations", ["tenant_id", "expires_at"],
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_table(
        "storage_releases",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("ref", sa.String(200), primary_key=True),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
