"""Table models of the crm service. Every tenant-owned table leads its
primary key and indexes with ``tenant_id``.

Each record table carries ``responsible_id`` (the rights filter column),
``created_by``, ``created_at``, ``updated_at`` and ``search``: a lower-case
text of what ``q`` searches (names, ИНН/КПП, phone digits as entered and
normalised, e-mails), indexed with pg_trgm so fragment searches use an index.
Lists page by keyset over (sort key, id), with a btree per sort key both with
and without ``responsible_id`` after the tenant (own/department scopes walk the
latter). The hand-written migrations create exactly these."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TENANT = sa.String(64)
MONEY = sa.Numeric(18, 2)
RATE = sa.Numeric(5, 2)
QUANTITY = sa.Numeric(18, 3)


class Base(DeclarativeBase):
    pass


def _ts(**kw: Any) -> Any:
    return mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now(), **kw)


def _record_indexes(table: str, *sort_keys: str) -> tuple[Any, ...]:
    indexes: list[Any] = []
    for key in sort_keys:
        indexes.append(sa.Index(f"ix_{table}_{key}", "tenant_id", key, "id"))
        indexes.append(sa.Index(f"ix_{table}_resp_{key}", "tenant_id", "responsible_id", key, "id"))
    indexes.append(sa.Index(f"ix_{table}_search", "tenant_id", "search", postgresql_using="gin",
                            postgresql_ops={"search": "gin_trgm_ops"}))
    return tuple(indexes)


def _external_unique(table: str) -> Any:
    return sa.Index(f"uq_{table}_external_id", "tenant_id", "external_id", unique=True,
                    postgresql_where=sa.text("external_id IS NOT NULL"))


class RecordMixin:
    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    responsible_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[dt.datetime] = _ts()
    updated_at: Mapped[dt.datetime] = _ts()
    # written on every change, read only by queries (never loaded with the record)
    search: Mapped[str] = mapped_column(sa.Text, default="", deferred=True)


class Counterparty(RecordMixin, Base):
    __tablename__ = "counterparties"
    __table_args__ = (
        # one ИНН, several КПП (branches); an individual has no КПП
        sa.Index("uq_counterparties_inn_kpp", "tenant_id", "inn", sa.text("coalesce(kpp, '')"), unique=True,
                 postgresql_where=sa.text("inn IS NOT NULL")),
        _external_unique("counterparties"),
        *_record_indexes("counterparties", "name", "created_at"),
    )

    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(300))
    full_name: Mapped[str | None] = mapped_column(sa.String(1000))
    inn: Mapped[str | None] = mapped_column(sa.String(12))
    kpp: Mapped[str | None] = mapped_column(sa.String(9))
    phones: Mapped[list[str]] = mapped_column(JSONB, default=list)
    emails: Mapped[list[str]] = mapped_column(JSONB, default=list)
    addresses: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class Contact(RecordMixin, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "counterparty_id"], ["counterparties.tenant_id", "counterparties.id"],
                                name="fk_contacts_counterparty"),
        sa.Index("ix_contacts_counterparty", "tenant_id", "counterparty_id"),
        _external_unique("contacts"),
        *_record_indexes("contacts", "full_name", "created_at"),
    )

    full_name: Mapped[str] = mapped_column(sa.String(300))
    counterparty_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    position: Mapped[str | None] = mapped_column(sa.String(300))
    phones: Mapped[list[str]] = mapped_column(JSONB, default=list)
    emails: Mapped[list[str]] = mapped_column(JSONB, default=list)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class Product(RecordMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        _external_unique("products"),
        # the CSV import's duplicate key
        sa.Index("ix_products_article", "tenant_id", sa.text("lower(article)"),
                 postgresql_where=sa.text("article IS NOT NULL")),
        *_record_indexes("products", "name", "created_at"),
    )

    name: Mapped[str] = mapped_column(sa.String(500))
    article: Mapped[str | None] = mapped_column(sa.String(100))
    group: Mapped[str | None] = mapped_column("product_group", sa.String(300))
    unit_code: Mapped[str | None] = mapped_column(sa.String(10))
    unit_name: Mapped[str | None] = mapped_column(sa.String(50))
    price: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.String(3))
    vat_rate: Mapped[Decimal | None] = mapped_column(RATE)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class Invoice(RecordMixin, Base):
    __tablename__ = "invoices"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "counterparty_id"], ["counterparties.tenant_id", "counterparties.id"],
                                name="fk_invoices_counterparty"),
        sa.ForeignKeyConstraint(["tenant_id", "contact_id"], ["contacts.tenant_id", "contacts.id"],
                                name="fk_invoices_contact"),
        sa.Index("uq_invoices_number", "tenant_id", "number", unique=True),
        sa.Index("ix_invoices_counterparty", "tenant_id", "counterparty_id"),
        sa.Index("ix_invoices_contact", "tenant_id", "contact_id"),
        _external_unique("invoices"),
        *_record_indexes("invoices", "date", "created_at"),
    )

    number: Mapped[str] = mapped_column(sa.String(64))
    date: Mapped[dt.date] = mapped_column(sa.Date)
    counterparty_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16))
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    discount_total: Mapped[Decimal] = mapped_column(MONEY)
    vat_total: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    paid_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    # loaded with every invoice, one query per batch of invoices
    lines: Mapped[list["InvoiceLine"]] = relationship(order_by="InvoiceLine.line_no", cascade="all, delete-orphan",
                                                      lazy="selectin")


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"],
                                name="fk_invoice_lines_invoice", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "product_id"], ["products.tenant_id", "products.id"],
                                name="fk_invoice_lines_product"),
        sa.Index("ix_invoice_lines_product", "tenant_id", "product_id"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    line_no: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    name: Mapped[str] = mapped_column(sa.String(500))
    unit_code: Mapped[str | None] = mapped_column(sa.String(10))
    unit_name: Mapped[str | None] = mapped_column(sa.String(50))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    price: Mapped[Decimal] = mapped_column(MONEY)
    discount_percent: Mapped[Decimal] = mapped_column(RATE)
    vat_rate: Mapped[Decimal | None] = mapped_column(RATE)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    discount_amount: Mapped[Decimal] = mapped_column(MONEY)
    vat_amount: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)


class InvoiceCounter(Base):
    """The last invoice number given out in a tenant (the row lock serialises numbering)."""

    __tablename__ = "invoice_counters"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    last_value: Mapped[int] = mapped_column(sa.BigInteger)


class Payment(RecordMixin, Base):
    __tablename__ = "payments"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "counterparty_id"], ["counterparties.tenant_id", "counterparties.id"],
                                name="fk_payments_counterparty"),
        sa.ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"],
                                name="fk_payments_invoice"),
        sa.Index("ix_payments_counterparty", "tenant_id", "counterparty_id"),
        sa.Index("ix_payments_invoice", "tenant_id", "invoice_id"),
        _external_unique("payments"),
        *_record_indexes("payments", "date", "created_at"),
    )

    date: Mapped[dt.date] = mapped_column(sa.Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.String(3))
    counterparty_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    number: Mapped[str | None] = mapped_column(sa.String(64))
    purpose: Mapped[str | None] = mapped_column(sa.Text)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))


class Communication(Base):
    """A call or an e-mail, logged from the telephony and mail services' events.
    ``responsible_id`` is who handled it (else the matched contact's
    responsible); NULL is visible only with scope ``all``."""

    __tablename__ = "communications"
    __table_args__ = (
        sa.Index("uq_communications_ref", "tenant_id", "kind", "external_ref", unique=True),
        sa.Index("ix_communications_occurred_at", "tenant_id", "occurred_at", "id"),
        sa.Index("ix_communications_resp_occurred_at", "tenant_id", "responsible_id", "occurred_at", "id"),
        sa.Index("ix_communications_contact", "tenant_id", "contact_id", "occurred_at", "id"),
        sa.Index("ix_communications_counterparty", "tenant_id", "counterparty_id", "occurred_at", "id"),
    )

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(sa.String(16))
    direction: Mapped[str] = mapped_column(sa.String(16))
    occurred_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    duration_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    answered: Mapped[bool | None] = mapped_column(sa.Boolean)
    subject: Mapped[str | None] = mapped_column(sa.String(1000))
    external_ref: Mapped[str] = mapped_column(sa.String(300))
    source: Mapped[str] = mapped_column(sa.String(32))
    phone: Mapped[str | None] = mapped_column(sa.String(64))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    counterparty_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    handled_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    responsible_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[dt.datetime] = _ts()
    updated_at: Mapped[dt.datetime] = _ts()


class MatchKey(Base):
    """Normalised phones (E.164) and e-mails (lower case) of contacts and
    counterparties: ``match_contact`` is one index lookup."""

    __tablename__ = "match_keys"
    __table_args__ = (sa.Index("ix_match_keys_record", "tenant_id", "entity", "record_id"),)

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    entity: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)


class CreateRequest(Base):
    """Creates already done, by request id: a redelivered or retried create
    answers the record it made instead of making another."""

    __tablename__ = "create_requests"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    request_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = _ts()


class ImportBatch(Base):
    """A batch of CSV rows already applied, with its outcomes: a batch the onec
    service sends again (after a restart) answers as before instead of
    importing twice."""

    __tablename__ = "import_batches"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    batch_no: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    outcomes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = _ts()


class ImportChange(Base):
    """What an import did to one record, so that it can be reverted: a
    creation, or an update with the fields as they were before. ``stamp`` is
    the record's ``updated_at`` as the import left it: a record whose stamp
    moved was changed by someone since, and a revert leaves it alone."""

    __tablename__ = "import_changes"

    tenant_id: Mapped[str] = mapped_column(TENANT, primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    action: Mapped[str] = mapped_column(sa.String(16))  # created | updated
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    stamp: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending | left (reverted: deleted)
