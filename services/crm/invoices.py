"""Invoice arithmetic and the invoice life cycle, in exact decimals.

Prices include VAT (Russian practice, "в т.ч. НДС"): the amount a line
charges is what the customer pays, and the VAT inside it is extracted.
For each line, rounded to kopecks (0.01) with ROUND_HALF_UP:

    amount          = round(quantity × price)                 (before discount)
    discount_amount = round(amount × discount_percent / 100)
    total           = amount − discount_amount                (VAT included)
    vat_amount      = round(total × vat_rate / (100 + vat_rate))   (0 when "без НДС")

and the invoice's figures are the sums of its lines' rounded figures:
``subtotal`` = Σ amount, ``discount_total`` = Σ discount_amount,
``vat_total`` = Σ vat_amount, ``total`` = Σ total = subtotal − discount_total.
Rounding per line (not on the sum) is what 1C does, so the figures agree
with the documents 1C prints for the same invoice.

Status: ``draft`` → ``issued`` → (payments) ``partly_paid`` → ``paid``;
``cancelled`` from draft or issued when nothing is paid. ``partly_paid`` and
``paid`` follow the payments linked to the invoice and are never set by
hand: when payments are deleted the invoice goes back to ``issued``."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

KOPECK = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal("0.00")

DRAFT, ISSUED, PARTLY_PAID, PAID, CANCELLED = "draft", "issued", "partly_paid", "paid", "cancelled"
STATUSES = (DRAFT, ISSUED, PARTLY_PAID, PAID, CANCELLED)
SETTABLE = (DRAFT, ISSUED, CANCELLED)  # by a user; the others follow payments


def money(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineInput:
    quantity: Decimal
    price: Decimal
    discount_percent: Decimal = Decimal(0)
    vat_rate: Decimal | None = None  # None: без НДС


@dataclass(frozen=True)
class LineFigures:
    amount: Decimal
    discount_amount: Decimal
    total: Decimal
    vat_amount: Decimal


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount_total: Decimal
    vat_total: Decimal
    total: Decimal
    lines: tuple[LineFigures, ...]

    def as_strings(self) -> dict[str, str]:
        return {"subtotal": str(self.subtotal), "discount_total": str(self.discount_total),
                "vat_total": str(self.vat_total), "total": str(self.total)}


def line_figures(line: LineInput) -> LineFigures:
    amount = money(line.quantity * line.price)
    discount = money(amount * line.discount_percent / HUNDRED)
    total = amount - discount
    vat = ZERO
    if line.vat_rate is not None and line.vat_rate > 0:
        vat = money(total * line.vat_rate / (HUNDRED + line.vat_rate))
    return LineFigures(amount, discount, total, vat)


def compute_totals(lines: Iterable[LineInput]) -> Totals:
    figures = tuple(line_figures(line) for line in lines)
    return Totals(
        subtotal=money(sum((f.amount for f in figures), ZERO)),
        discount_total=money(sum((f.discount_amount for f in figures), ZERO)),
        vat_total=money(sum((f.vat_amount for f in figures), ZERO)),
        total=money(sum((f.total for f in figures), ZERO)),
        lines=figures,
    )


def has_discount(lines: Iterable[LineInput]) -> bool:
    return any(line.discount_percent != 0 for line in lines)


def status_after_payments(current: str, total: Decimal, paid: Decimal) -> str:
    """The status an invoice takes once its payments sum to ``paid``."""
    if current == CANCELLED:
        return CANCELLED
    if paid > 0 and paid >= total:
        return PAID
    if paid > 0:
        return PARTLY_PAID
    if current in (PARTLY_PAID, PAID):
        return ISSUED
    return current


def status_change_problem(current: str, new: str, paid: Decimal) -> str | None:
    """Why a user may not move an invoice from ``current`` to ``new`` (None: allowed)."""
    if new == current:
        return None
    if new not in SETTABLE:
        return "partly_paid and paid follow the invoice's payments; they are not set by hand"
    if new == CANCELLED and paid > 0:
        return "an invoice with payments cannot be cancelled; delete or move its payments first"
    if current in (PARTLY_PAID, PAID) and new in (DRAFT, ISSUED):
        return "a paid invoice follows its payments"
    return None
