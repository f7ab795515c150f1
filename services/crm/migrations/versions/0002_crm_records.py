"""crm records: counterparties, contacts, products, invoices (lines, counter),
payments, communications, match keys, create requests

Revision ID: 0002
Revises: 0001

pg_trgm (fragment search) and btree_gin (so the GIN indexes lead with
tenant_id) are trusted extensions since PostgreSQL 13: the database owner
creates them without superuser rights.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT = sa.String(64)
MONEY = sa.Numeric(18, 2)
RATE = sa.Numeric(5, 2)


def _record_columns():
    return [
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("responsible_id", sa.Uuid, nullable=False),
        sa.Column("created_by", sa.Uuid),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("search", sa.Text, nullable=False, server_default=""),
    ]


def _record_indexes(table, *sort_keys):
    for key in sort_keys:
        op.create_index(f"ix_{table}_{key}", table, ["tenant_id", key, "id"])
        op.create_index(f"ix_{table}_resp_{key}", table, ["tenant_id", "responsible_id", key, "id"])
    op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (tenant_id, search gin_trgm_ops)")


def _external_unique(table):
    op.create_index(f"uq_{table}_external_id", table, ["tenant_id", "external_id"], unique=True,
                    postgresql_where=sa.text("external_id IS NOT NULL"))


def _fk(name, columns, target):
    return sa.ForeignKeyConstraint(["tenant_id", columns], [f"{target}.tenant_id", f"{target}.id"], name=name)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")

    op.create_table(
        "counterparties", *_record_columns(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("full_name", sa.String(1000)),
        sa.Column("inn", sa.String(12)),
        sa.Column("kpp", sa.String(9)),
        sa.Column("phones", JSONB, nullable=False, server_default="[]"),
        sa.Column("emails", JSONB, nullable=False, server_default="[]"),
        sa.Column("addresses", JSONB, nullable=False, server_default="[]"),
        sa.Column("external_id", sa.String(200)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.CheckConstraint("kind IN ('legal', 'individual')", name="ck_counterparties_kind"),
    )
    op.create_index("uq_counterparties_inn_kpp", "counterparties",
                    ["tenant_id", "inn", sa.text("coalesce(kpp, '')")], unique=True,
                    postgresql_where=sa.text("inn IS NOT NULL"))
    _external_unique("counterparties")
    _record_indexes("counterparties", "name", "created_at")

    op.create_table(
        "contacts", *_record_columns(),
        sa.Column("full_name", sa.String(300), nullable=False),
        sa.Column("counterparty_id", sa.Uuid),
        sa.Column("position", sa.String(300)),
        sa.Column("phones", JSONB, nullable=False, server_default="[]"),
        sa.Column("emails", JSONB, nullable=False, server_default="[]"),
        sa.Column("external_id", sa.String(200)),
        _fk("fk_contacts_counterparty", "counterparty_id", "counterparties"),
    )
    op.create_index("ix_contacts_counterparty", "contacts", ["tenant_id", "counterparty_id"])
    _external_unique("contacts")
    _record_indexes("contacts", "full_name", "created_at")

    op.create_table(
        "products", *_record_columns(),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("article", sa.String(100)),
        sa.Column("product_group", sa.String(300)),
        sa.Column("unit_code", sa.String(10)),
        sa.Column("unit_name", sa.String(50)),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("vat_rate", RATE),
        sa.Column("external_id", sa.String(200)),
    )
    _external_unique("products")
    _record_indexes("products", "name", "created_at")

    op.create_table(
        "invoices", *_record_columns(),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("counterparty_id", sa.Uuid, nullable=False),
        sa.Column("contact_id", sa.Uuid),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("discount_total", MONEY, nullable=False),
        sa.Column("vat_total", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("paid_amount", MONEY, nullable=False, server_default="0"),
        sa.Column("comment", sa.Text),
        sa.Column("external_id", sa.String(200)),
        _fk("fk_invoices_counterparty", "counterparty_id", "counterparties"),
        _fk("fk_invoices_contact", "contact_id", "contacts"),
        sa.CheckConstraint("status IN ('draft', 'issued', 'partly_paid', 'paid', 'cancelled')",
                           name="ck_invoices_status"),
    )
    op.create_index("uq_invoices_number", "invoices", ["tenant_id", "number"], unique=True)
    op.create_index("ix_invoices_counterparty", "invoices", ["tenant_id", "counterparty_id"])
    op.create_index("ix_invoices_contact", "invoices", ["tenant_id", "contact_id"])
    _external_unique("invoices")
    _record_indexes("invoices", "date", "created_at")

    op.create_table(
        "invoice_lines",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("invoice_id", sa.Uuid, primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("product_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("unit_code", sa.String(10)),
        sa.Column("unit_name", sa.String(50)),
        sa.Column("quantity", sa.Numeric(18, 3), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("discount_percent", RATE, nullable=False),
        sa.Column("vat_rate", RATE),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("discount_amount", MONEY, nullable=False),
        sa.Column("vat_amount", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"],
                                name="fk_invoice_lines_invoice", ondelete="CASCADE"),
        _fk("fk_invoice_lines_product", "product_id", "products"),
    )
    op.create_index("ix_invoice_lines_product", "invoice_lines", ["tenant_id", "product_id"])

    op.create_table(
        "invoice_counters",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("last_value", sa.BigInteger, nullable=False),
    )

    op.create_table(
        "payments", *_record_columns(),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("counterparty_id", sa.Uuid, nullable=False),
        sa.Column("invoice_id", sa.Uuid),
        sa.Column("number", sa.String(64)),
        sa.Column("purpose", sa.Text),
        sa.Column("external_id", sa.String(200)),
        _fk("fk_payments_counterparty", "counterparty_id", "counterparties"),
        _fk("fk_payments_invoice", "invoice_id", "invoices"),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount"),
    )
    op.create_index("ix_payments_counterparty", "payments", ["tenant_id", "counterparty_id"])
    op.create_index("ix_payments_invoice", "payments", ["tenant_id", "invoice_id"])
    _external_unique("payments")
    _record_indexes("payments", "date", "created_at")

    op.create_table(
        "communications",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Integer),
        sa.Column("answered", sa.Boolean),
        sa.Column("subject", sa.String(1000)),
        sa.Column("external_ref", sa.String(300), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(64)),
        sa.Column("email", sa.String(320)),
        sa.Column("contact_id", sa.Uuid),
        sa.Column("counterparty_id", sa.Uuid),
        sa.Column("handled_by", sa.Uuid),
        sa.Column("responsible_id", sa.Uuid),
        sa.Column("created_by", sa.Uuid),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("uq_communications_ref", "communications", ["tenant_id", "kind", "external_ref"], unique=True)
    op.create_index("ix_communications_occurred_at", "communications", ["tenant_id", "occurred_at", "id"])
    op.create_index("ix_communications_resp_occurred_at", "communications",
                    ["tenant_id", "responsible_id", "occurred_at", "id"])
    op.create_index("ix_communications_contact", "communications", ["tenant_id", "contact_id", "occurred_at", "id"])
    op.create_index("ix_communications_counterparty", "communications",
                    ["tenant_id", "counterparty_id", "occurred_at", "id"])

    op.create_table(
        "match_keys",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("value", sa.String(320), primary_key=True),
        sa.Column("entity", sa.String(16), primary_key=True),
        sa.Column("record_id", sa.Uuid, primary_key=True),
    )
    op.create_index("ix_match_keys_record", "match_keys", ["tenant_id", "entity", "record_id"])

    op.create_table(
        "create_requests",
        sa.Column("tenant_id", TENANT, primary_key=True),
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("record_id", sa.Uuid, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
