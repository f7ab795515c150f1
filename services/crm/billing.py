"""Invoices and payments. The arithmetic and the status rules are in
``services.crm.invoices``; this module applies them to the records.

- Invoice numbers come from a per-tenant counter row, incremented with
  ``INSERT … ON CONFLICT DO UPDATE … RETURNING``: the row lock serialises
  concurrent creates of one tenant and a rolled-back create gives its number
  back, so numbers have no gaps and no duplicates. A number given by hand
  (an import) is kept; the counter skips numbers already taken.
- Lines name products the caller may read; price and VAT rate default to the
  product's. A non-zero discount needs ``invoices.discount``.
- A payment linked to an invoice locks it and recomputes its paid amount and
  status in the same transaction (also when the payment moves or goes)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from contracts import journal
from contracts.crm import InvoiceCreate, InvoiceLineIn, InvoiceUpdate, PaymentCreate, PaymentUpdate
from crm_shared import scopes
from services.crm import invoices as I
from services.crm import records as R
from services.crm.models import Contact, Counterparty, Invoice, InvoiceCounter, InvoiceLine, Payment, Product
from services.crm.products import rate_text
from services.crm.schemas import invalid
from services.crm.search import search_text
from services.crm.work import Work, diff

DISCOUNT_RIGHT = "invoices.discount"


def number_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != 0 else "0"


def next_number(work: Work) -> str:
    while True:
        value = work.session.execute(
            insert(InvoiceCounter).values(tenant_id=work.tenant_id, last_value=1)
            .on_conflict_do_update(index_elements=[InvoiceCounter.tenant_id],
                                   set_={"last_value": InvoiceCounter.last_value + 1})
            .returning(InvoiceCounter.last_value)).scalar_one()
        number = str(value)
        taken = work.session.scalar(sa.select(sa.literal(1)).where(
            Invoice.tenant_id == work.tenant_id, Invoice.number == number))
        if not taken:
            return number


def line_values(line: InvoiceLine) -> dict[str, Any]:
    unit = {"code": line.unit_code, "name": line.unit_name} if line.unit_code else None
    return {"product_id": line.product_id, "name": line.name, "unit": unit,
            "quantity": number_text(line.quantity), "price": line.price,
            "discount_percent": number_text(line.discount_percent), "vat_rate": rate_text(line.vat_rate),
            "amount": line.amount, "discount_amount": line.discount_amount, "vat_amount": line.vat_amount,
            "total": line.total}


def paid_sum(work: Work, invoice_id: Any) -> Decimal:
    total = work.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Payment.amount), 0))
                                .where(Payment.tenant_id == work.tenant_id, Payment.invoice_id == invoice_id))
    return I.money(Decimal(total or 0))


class Invoices(R.Kind):
    name, entity, model = "invoices", "invoice", Invoice
    create_schema, update_schema = InvoiceCreate, InvoiceUpdate
    not_null = frozenset({"number", "date", "counterparty_id", "currency", "status", "lines"})
    sort_columns = {"date": Invoice.date, "created_at": Invoice.created_at}
    lists_plain_rows = False  # out() reads the lines relationship

    def values(self, row: Any) -> dict[str, Any]:
        return {"number": row.number, "date": row.date, "counterparty_id": row.counterparty_id,
                "contact_id": row.contact_id, "currency": row.currency, "status": row.status,
                "lines": [line_values(line) for line in row.lines],
                "subtotal": row.subtotal, "discount_total": row.discount_total, "vat_total": row.vat_total,
                "total": row.total, "paid_amount": row.paid_amount, "comment": row.comment,
                "external_id": row.external_id}

    def search_text(self, row: Any) -> str:
        return search_text(row.number, row.external_id)

    def apply(self, work: Work, row: Any, data: dict[str, Any], creating: bool) -> None:
        lines: list[InvoiceLineIn] | None = data.pop("lines", None)
        new_status = data.pop("status", None)
        if lines is not None and I.has_discount(self._inputs_only(lines)) and not work.allows(DISCOUNT_RIGHT):
            raise scopes.forbidden(DISCOUNT_RIGHT)
        if creating:
            row.paid_amount = Decimal("0.00")
            row.status = new_status or I.DRAFT
            if data.get("number") is None:
                data["number"] = next_number(work)
            if data.get("date") is None:
                data["date"] = work.today()
        elif new_status is not None:
            problem = I.status_change_problem(row.status, new_status, row.paid_amount)
            if problem:
                raise invalid({"status": problem})
            row.status = new_status
        counterparty_changed = "counterparty_id" in data and data["counterparty_id"] != row.counterparty_id
        if counterparty_changed:
            R.linked(work, Counterparty, data["counterparty_id"], "counterparties", "counterparty_id")
        contact = None
        if data.get("contact_id") is not None and data["contact_id"] != row.contact_id:
            contact = R.linked(work, Contact, data["contact_id"], "contacts", "contact_id")
        if not creating and row.paid_amount > 0:
            if "currency" in data and data["currency"] != row.currency:
                raise invalid({"currency": f"the invoice has payments in {row.currency}"})
            if counterparty_changed:
                raise invalid({"counterparty_id": "the invoice has payments from its counterparty"})
        super().apply(work, row, data, creating)
        if row.contact_id is not None and (contact is not None or counterparty_changed):
            contact = contact or work.session.get(Contact, (work.tenant_id, row.contact_id))
            if contact is not None and contact.counterparty_id not in (None, row.counterparty_id):
                raise invalid({"contact_id": "this contact belongs to another counterparty"})
        if lines is not None:
            self._set_lines(work, row, lines)
        row.status = I.status_after_payments(row.status, row.total, row.paid_amount)

    @staticmethod
    def _inputs_only(lines: list[InvoiceLineIn]) -> list[I.LineInput]:
        return [I.LineInput(line.quantity, line.price or Decimal(0), line.discount_percent) for line in lines]

    def _set_lines(self, work: Work, row: Any, lines: list[InvoiceLineIn]) -> None:
        ids = {line.product_id for line in lines}
        products = {p.id: p for p in work.session.scalars(sa.select(Product).where(
            Product.tenant_id == work.tenant_id, Product.id.in_(ids),
            work.condition("products.read", Product.responsible_id)))}
        problems: dict[str, str] = {}
        inputs: list[I.LineInput] = []
        for i, line in enumerate(lines):
            product = products.get(line.product_id)
            if product is None:
                problems[f"lines.{i}.product_id"] = "no such product (or you may not see it)"
                continue
            price = line.price
            if price is None:
                if product.currency != row.currency:
                    problems[f"lines.{i}.price"] = (f"the product is priced in {product.currency}; "
                                                    f"give the price in {row.currency}")
                    continue
                price = product.price
            vat = line.vat_rate if "vat_rate" in line.model_fields_set else product.vat_rate
            inputs.append(I.LineInput(line.quantity, price, line.discount_percent, vat))
        if problems:
            raise invalid(problems)
        totals = I.compute_totals(inputs)
        new_lines = []
        for i, (line, given, figures) in enumerate(zip(lines, inputs, totals.lines, strict=True)):
            product = products[line.product_id]
            new_lines.append(InvoiceLine(
                tenant_id=work.tenant_id, invoice_id=row.id, line_no=i + 1, product_id=product.id,
                name=product.name, unit_code=product.unit_code, unit_name=product.unit_name,
                quantity=given.quantity, price=I.money(given.price), discount_percent=given.discount_percent,
                vat_rate=given.vat_rate, amount=figures.amount, discount_amount=figures.discount_amount,
                vat_amount=figures.vat_amount, total=figures.total))
        row.lines = new_lines
        row.subtotal, row.discount_total = totals.subtotal, totals.discount_total
        row.vat_total, row.total = totals.vat_total, totals.total

    def before_delete(self, work: Work, row: Any) -> None:
        used = {"payments": R.count_where(work, Payment, Payment.invoice_id == row.id)}
        if any(used.values()):
            raise R.in_use(used, "invoice")


def recompute_invoice(work: Work, invoice_id: Any) -> None:
    """The invoice's paid amount and status after its payments changed."""
    invoice = work.session.scalars(sa.select(Invoice).where(
        Invoice.tenant_id == work.tenant_id, Invoice.id == invoice_id).with_for_update()).first()
    if invoice is None:
        return
    before = {"status": invoice.status, "paid_amount": invoice.paid_amount}
    invoice.paid_amount = paid_sum(work, invoice_id)
    invoice.status = I.status_after_payments(invoice.status, invoice.total, invoice.paid_amount)
    after = {"status": invoice.status, "paid_amount": invoice.paid_amount}
    changes = diff(before, after)
    if changes:
        invoice.updated_at = dt.datetime.now(dt.timezone.utc)
        work.session.flush()
        work.audit("invoice", invoice.id, journal.UPDATE, changes)


class Payments(R.Kind):
    name, entity, model = "payments", "payment", Payment
    create_schema, update_schema = PaymentCreate, PaymentUpdate
    not_null = frozenset({"date", "amount", "currency", "counterparty_id"})
    sort_columns = {"date": Payment.date, "created_at": Payment.created_at}

    def values(self, row: Any) -> dict[str, Any]:
        return {"date": row.date, "amount": row.amount, "currency": row.currency,
                "counterparty_id": row.counterparty_id, "invoice_id": row.invoice_id, "number": row.number,
                "purpose": row.purpose, "external_id": row.external_id}

    def search_text(self, row: Any) -> str:
        return search_text(row.number, row.purpose, row.external_id)

    def apply(self, work: Work, row: Any, data: dict[str, Any], creating: bool) -> None:
        if creating and data.get("date") is None:
            data["date"] = work.today()
        if "counterparty_id" in data and data["counterparty_id"] != row.counterparty_id:
            R.linked(work, Counterparty, data["counterparty_id"], "counterparties", "counterparty_id")
        invoice = None
        if data.get("invoice_id") is not None and data["invoice_id"] != row.invoice_id:
            invoice = R.linked(work, Invoice, data["invoice_id"], "invoices", "invoice_id", lock=True)
            if invoice.status == I.CANCELLED:
                raise invalid({"invoice_id": "the invoice is cancelled"})
        super().apply(work, row, data, creating)
        row.amount = I.money(row.amount)
        if row.invoice_id is not None:
            invoice = invoice or work.session.scalars(sa.select(Invoice).where(
                Invoice.tenant_id == work.tenant_id, Invoice.id == row.invoice_id).with_for_update()).first()
            if invoice is not None:
                if invoice.counterparty_id != row.counterparty_id:
                    raise invalid({"invoice_id": "the invoice is made out to another counterparty"})
                if invoice.currency != row.currency:
                    raise invalid({"currency": f"the invoice is in {invoice.currency}"})

    def after_write(self, work: Work, row: Any, before: dict[str, Any] | None) -> None:
        affected = {row.invoice_id, (before or {}).get("invoice_id")} - {None}
        for invoice_id in sorted(affected, key=str):
            recompute_invoice(work, invoice_id)

    def after_delete(self, work: Work, row: Any) -> None:
        if row.invoice_id is not None:
            recompute_invoice(work, row.invoice_id)
