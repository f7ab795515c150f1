"""users, departments, roles, positions, user positions and the audit journal

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


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("company_name", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "departments",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("parent_id", sa.Uuid),
        sa.Column("name", sa.String(200), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_departments"),
        sa.ForeignKeyConstraint(["tenant_id", "parent_id"], ["departments.tenant_id", "departments.id"],
                                name="fk_departments_parent"),
    )
    op.create_index("ix_departments_parent", "departments", ["tenant_id", "parent_id"])
    op.create_index("uq_departments_root", "departments", ["tenant_id"], unique=True,
                    postgresql_where=sa.text("parent_id IS NULL"))

    op.create_table(
        "roles",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("rights", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("builtin", sa.String(32)),
        *_stamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_roles"),
    )
    op.create_index("uq_roles_name", "roles", ["tenant_id", sa.text("lower(name)")], unique=True)
    op.create_index("uq_roles_builtin", "roles", ["tenant_id", "builtin"], unique=True,
                    postgresql_where=sa.text("builtin IS NOT NULL"))

    op.create_table(
        "positions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("department_id", sa.Uuid, nullable=False),
        sa.Column("role_id", sa.Uuid, nullable=False),
        sa.Column("builtin", sa.String(32)),
        *_stamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_positions"),
        sa.ForeignKeyConstraint(["tenant_id", "department_id"], ["departments.tenant_id", "departments.id"],
                                name="fk_positions_department"),
        sa.ForeignKeyConstraint(["tenant_id", "role_id"], ["roles.tenant_id", "roles.id"],
                                name="fk_positions_role"),
    )
    op.create_index("uq_positions_title", "positions", ["tenant_id", "department_id", sa.text("lower(title)")],
                    unique=True)
    op.create_index("ix_positions_role", "positions", ["tenant_id", "role_id"])

    op.create_table(
        "users",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("full_name", sa.String(300), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("sip_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        *_stamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_users"),
    )
    op.create_index("uq_users_login", "users", ["tenant_id", sa.text("lower(login)")], unique=True,
                    postgresql_where=sa.text("deleted_at IS NULL"))
    op.create_index("ix_users_name", "users", ["tenant_id", "full_name", "id"])

    op.create_table(
        "user_positions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("position_id", sa.Uuid, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "position_id", name="pk_user_positions"),
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"],
                                name="fk_user_positions_user"),
        sa.ForeignKeyConstraint(["tenant_id", "position_id"], ["positions.tenant_id", "positions.id"],
                                name="fk_user_positions_position"),
    )
    op.create_index("ix_user_positions_position", "user_positions", ["tenant_id", "position_id"])

    op.create_table(
        "journal",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_id", sa.Uuid),
        sa.Column("actor_login", sa.String(64)),
        sa.Column("actor_name", sa.String(300)),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("changes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("request_id", sa.String(64)),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_journal"),
    )
    op.create_index("ix_journal_entity", "journal", ["tenant_id", "entity", "entity_id", "id"])
    op.create_index("ix_journal_actor", "journal", ["tenant_id", "actor_id", "id"])
    op.create_index("ix_journal_at", "journal", ["tenant_id", "at"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
