"""Contracts of the crm area: counterparties, contacts, products, invoices,
payments and communications (requests, answers and list queries), and the
events the crm service takes from telephony and mail.

Rules that need no data live here (ИНН/КПП check digits, phone shape,
money precision); the crm service applies the ones that need data (links,
rights, uniqueness) and names the field it refuses (``phones.1``,
``lines.0.quantity``)."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from contracts import inn as inn_rules
from contracts.base import Answer, Contract, Count, Cursor, EventData, UtcDateTime, blank_none, list_of
from contracts.phones import PhoneError, normalize_email, normalize_phone

__all__ = ["Count"]


# -- field types --------------------------------------------------------------

def _phone(value: str) -> str:
    try:
        normalize_phone(value)
    except PhoneError as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    return value.strip()


def _email(value: str) -> str:
    normalize_email(value)
    return value.strip()


def _inn(value: str | None) -> str | None:
    value = inn_rules.clean(value)
    if value is not None:
        problem = inn_rules.inn_problem(value)
        if problem:
            raise ValueError(f"not a valid ИНН: {problem}")
    return value


def _kpp(value: str | None) -> str | None:
    value = inn_rules.clean(value)
    if value is not None:
        problem = inn_rules.kpp_problem(value)
        if problem:
            raise ValueError(f"not a valid КПП: {problem}")
    return value


def _places(limit: int) -> Any:
    def check(value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        if not value.is_finite():
            raise ValueError("must be a finite number")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > limit:
            raise ValueError(f"at most {limit} digits after the decimal point")
        return value
    return check


def _vat(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower().replace(" ", "") in ("", "none", "безндс", "без_ндс"):
        return None
    if isinstance(value, str) and value.strip().endswith("%"):
        return value.strip()[:-1]
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Phone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_phone)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
Inn = Annotated[str | None, BeforeValidator(blank_none), AfterValidator(_inn),
                Field(description="ИНН: 10 digits (organisation) or 12 (individual), check digits verified")]
Kpp = Annotated[str | None, BeforeValidator(blank_none), AfterValidator(_kpp),
                Field(description="КПП: 9 characters, organisations only")]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("9999999999999999.99"), description="decimal string, kopecks"),
                  AfterValidator(_places(2))]
PositiveMoney = Annotated[Decimal, Field(gt=0, le=Decimal("9999999999999999.99"),
                                         description="decimal string, kopecks"), AfterValidator(_places(2))]
Quantity = Annotated[Decimal, Field(gt=0, le=Decimal("999999999999999.999")), AfterValidator(_places(3))]
Percent = Annotated[Decimal, Field(ge=0, le=100), AfterValidator(_places(2))]
VatRate = Annotated[Annotated[Decimal, Field(ge=0, lt=100), AfterValidator(_places(2))] | None,
                    BeforeValidator(_vat), Field(description=(
                        'VAT rate in percent ("22", "10", "0"); null or "без НДС" when the goods carry no VAT'))]
Currency = Annotated[str, BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
                     StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 4217 code, RUB by default")]


# optional texts: blank means none; surrounding spaces are dropped
OptText64 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None,
                       BeforeValidator(blank_none)]
OptText100 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None,
                       BeforeValidator(blank_none)]
OptText200 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None,
                       BeforeValidator(blank_none)]
OptText300 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None,
                       BeforeValidator(blank_none)]
OptText1000 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None,
                       BeforeValidator(blank_none)]
OptText2000 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None,
                       BeforeValidator(blank_none)]
OptText5000 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] | None,
                       BeforeValidator(blank_none)]
ExternalId = Annotated[OptText200, Field(description="The identifier in 1C when the record came from 1C")]
Phones = Annotated[list[Phone], Field(max_length=20, description="As entered; matched in E.164")]
Emails = Annotated[list[Email], Field(max_length=20, description="As entered; matched in lower case")]

KINDS = ("counterparties", "contacts", "products", "invoices", "payments")


class _In(Contract):
    pass


class _Owned(_In):
    responsible_id: uuid.UUID | None = Field(default=None, description="The user responsible; the caller by default")


# -- counterparties -------------------------------------------------------------

class Address(_In):
    kind: Literal["legal", "actual", "postal", "delivery", "other"] = "other"
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class CounterpartyCreate(_Owned):
    kind: Literal["legal", "individual"] = "legal"
    name: Annotated[Text, StringConstraints(max_length=300)]
    full_name: OptText1000 = None
    inn: Inn = None
    kpp: Kpp = None
    phones: Phones = Field(default_factory=list)
    emails: Emails = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list, max_length=10)
    external_id: ExternalId = None
    active: bool = True


class CounterpartyUpdate(_Owned):
    kind: Literal["legal", "individual"] | None = None
    name: Annotated[Text, StringConstraints(max_length=300)] | None = None
    full_name: OptText1000 = None
    inn: Inn = None
    kpp: Kpp = None
    phones: Phones | None = None
    emails: Emails | None = None
    addresses: list[Address] | None = Field(default=None, max_length=10)
    external_id: ExternalId = None
    active: bool | None = None


def counterparty_problems(kind: str, inn: str | None, kpp: str | None) -> dict[str, str]:
    """The rules between fields (checked on the merged record for updates)."""
    problems: dict[str, str] = {}
    if inn is not None:
        if kind == "legal" and len(inn) != 10:
            problems["inn"] = "an organisation's ИНН has 10 digits (12 digits belong to individuals)"
        if kind == "individual" and len(inn) != 12:
            problems["inn"] = "an individual's ИНН has 12 digits"
    if kpp is not None:
        if kind == "individual":
            problems["kpp"] = "individuals have no КПП"
        elif inn is None:
            problems["kpp"] = "a КПП needs the organisation's ИНН"
    return problems


# -- contacts -------------------------------------------------------------------

class ContactCreate(_Owned):
    full_name: Annotated[Text, StringConstraints(max_length=300)]
    counterparty_id: uuid.UUID | None = None
    position: OptText300 = None
    phones: Phones = Field(default_factory=list)
    emails: Emails = Field(default_factory=list)
    external_id: ExternalId = None
    active: bool = True


class ContactUpdate(_Owned):
    full_name: Annotated[Text, StringConstraints(max_length=300)] | None = None
    counterparty_id: uuid.UUID | None = None
    position: OptText300 = None
    phones: Phones | None = None
    emails: Emails | None = None
    external_id: ExternalId = None
    active: bool | None = None


# -- products -------------------------------------------------------------------

class Unit(_In):
    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{3,4}$"),
                    Field(description="ОКЕИ code: 796 = шт, 166 = кг, 006 = м")]
    name: Annotated[Text, StringConstraints(max_length=50)]


class ProductCreate(_Owned):
    name: Annotated[Text, StringConstraints(max_length=500)]
    article: OptText100 = None
    group: OptText300 = None
    unit: Unit | None = None
    price: Money = Decimal("0")
    currency: Currency = "RUB"
    # the standard rate since 2026-01-01 (10 for some food, children's and medical goods; null: без НДС)
    vat_rate: VatRate = Decimal("22")
    external_id: ExternalId = None
    active: bool = True


class ProductUpdate(_Owned):
    name: Annotated[Text, StringConstraints(max_length=500)] | None = None
    article: OptText100 = None
    group: OptText300 = None
    unit: Unit | None = None
    price: Money | None = None
    currency: Currency | None = None
    vat_rate: VatRate = None
    external_id: ExternalId = None
    active: bool | None = None


# -- invoices -------------------------------------------------------------------

class InvoiceLineIn(_In):
    product_id: uuid.UUID
    quantity: Quantity
    price: Money | None = Field(default=None, description="VAT included; the product's price when omitted")
    discount_percent: Percent = Decimal("0")
    vat_rate: VatRate = Field(default=None, description="The product's rate when omitted")


class InvoiceCreate(_Owned):
    number: OptText64 = Field(
        default=None, description="Given out from the tenant's sequence when omitted")
    date: dt.date | None = Field(default=None, description="Today when omitted")
    counterparty_id: uuid.UUID
    contact_id: uuid.UUID | None = None
    currency: Currency = "RUB"
    status: Literal["draft", "issued"] = "draft"
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=1000)
    comment: OptText5000 = None
    external_id: ExternalId = None


class InvoiceUpdate(_Owned):
    number: Annotated[Text, StringConstraints(max_length=64)] | None = None
    date: dt.date | None = None
    counterparty_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    currency: Currency | None = None
    status: Literal["draft", "issued", "partly_paid", "paid", "cancelled"] | None = None
    lines: list[InvoiceLineIn] | None = Field(default=None, min_length=1, max_length=1000)
    comment: OptText5000 = None
    external_id: ExternalId = None


# -- payments -------------------------------------------------------------------

class PaymentCreate(_Owned):
    date: dt.date | None = Field(default=None, description="Today when omitted")
    amount: PositiveMoney
    currency: Currency = "RUB"
    counterparty_id: uuid.UUID
    invoice_id: uuid.UUID | None = None
    number: OptText64 = Field(
        default=None, description="The payment order's number")
    purpose: OptText2000 = Field(
        default=None, description="Назначение платежа")
    external_id: ExternalId = None


class PaymentUpdate(_Owned):
    date: dt.date | None = None
    amount: PositiveMoney | None = None
    currency: Currency | None = None
    counterparty_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    number: OptText64 = None
    purpose: OptText2000 = None
    external_id: ExternalId = None


# -- lists ----------------------------------------------------------------------

SORTS: dict[str, tuple[str, ...]] = {
    "counterparties": ("name", "created_at"),
    "contacts": ("name", "created_at"),
    "products": ("name", "created_at"),
    "invoices": ("date", "created_at"),
    "payments": ("date", "created_at"),
    "communications": ("occurred_at",),
}
DEFAULT_SORT = {"counterparties": "name", "contacts": "name", "products": "name", "invoices": "-date",
                "payments": "-date", "communications": "-occurred_at"}


class ListQuery(_In):
    """Every filter a list takes; a kind refuses those that mean nothing for it."""

    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        default=None, description="Words to find in names, ИНН, phones (a digits fragment) and e-mails")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: Cursor | None = Field(default=None, description="next_cursor of the previous page")
    sort: str | None = Field(default=None, description="name, -name, created_at, -created_at (invoices and "
                                                        "payments: date, -date, created_at, -created_at)")
    responsible_id: uuid.UUID | None = None
    counterparty_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    status: Literal["draft", "issued", "partly_paid", "paid", "cancelled"] | None = None
    active: bool | None = None
    kind: str | None = Field(default=None, description="counterparties: legal/individual; "
                                                       "communications: call/email")


FILTERS: dict[str, set[str]] = {
    "counterparties": {"responsible_id", "active", "kind"},
    "contacts": {"responsible_id", "counterparty_id", "active"},
    "products": {"responsible_id", "active"},
    "invoices": {"responsible_id", "counterparty_id", "contact_id", "status"},
    "payments": {"responsible_id", "counterparty_id", "invoice_id"},
    "communications": {"responsible_id", "counterparty_id", "contact_id", "kind"},
}
COMMON = {"q", "limit", "cursor", "sort"}


# -- events the crm service takes from other services (documented in docs/crm.md) --------------------

class CallLogged(EventData):
    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    call_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    direction: Literal["incoming", "outgoing"]
    started_at: UtcDateTime
    duration_seconds: int = Field(default=0, ge=0)
    answered: bool | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    user_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    counterparty_id: uuid.UUID | None = None


class MailLogged(EventData):
    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    direction: Literal["incoming", "outgoing"]
    sent_at: UtcDateTime
    subject: Annotated[str, StringConstraints(max_length=1000)] | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    user_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    counterparty_id: uuid.UUID | None = None


# -- answers ----------------------------------------------------------------------

MONEY = Field(description="Decimal string with kopecks, e.g. \"1499.90\"")


class _Record(Answer):
    id: str = Field(description="UUID")
    responsible_id: str | None = Field(description="The user responsible (the rights filter column)")
    created_by: str | None
    created_at: str
    updated_at: str


class CounterpartyOut(_Record):
    kind: str = Field(description="legal or individual")
    name: str
    full_name: str | None
    inn: str | None = Field(description="ИНН")
    kpp: str | None = Field(description="КПП")
    phones: list[str] = Field(description="As entered")
    emails: list[str]
    addresses: list[Address]
    external_id: str | None = Field(description="1C identifier")
    active: bool = Field(description="false when deactivated (e.g. deleted in 1C)")


class ContactOut(_Record):
    full_name: str
    counterparty_id: str | None
    position: str | None
    phones: list[str] = Field(description="As entered; matched in E.164")
    emails: list[str]
    external_id: str | None
    active: bool = Field(description="false when deactivated (e.g. deleted in 1C)")


class ProductOut(_Record):
    name: str
    article: str | None
    group: str | None
    unit: Unit | None = Field(description="ОКЕИ code and name")
    price: str = MONEY
    currency: str
    vat_rate: str | None = Field(description='Percent ("22"); null: без НДС')
    external_id: str | None
    active: bool = Field(description="false when deactivated (e.g. deleted in 1C)")


class InvoiceLineOut(Answer):
    product_id: str
    name: str = Field(description="The product's name when the line was written")
    unit: Unit | None
    quantity: str
    price: str = Field(description="VAT included")
    discount_percent: str
    vat_rate: str | None
    amount: str = Field(description="quantity × price, rounded to kopecks")
    discount_amount: str
    vat_amount: str = Field(description="VAT inside total: total × rate / (100 + rate), rounded")
    total: str = Field(description="amount − discount_amount")


class InvoiceOut(_Record):
    number: str
    date: str
    counterparty_id: str
    contact_id: str | None
    currency: str
    status: str = Field(description="draft, issued, partly_paid, paid, cancelled")
    lines: list[InvoiceLineOut]
    subtotal: str = MONEY
    discount_total: str = MONEY
    vat_total: str = Field(description="VAT included in total (в т.ч. НДС)")
    total: str = MONEY
    paid_amount: str = MONEY
    comment: str | None
    external_id: str | None


class PaymentOut(_Record):
    date: str
    amount: str = MONEY
    currency: str
    counterparty_id: str
    invoice_id: str | None
    number: str | None
    purpose: str | None
    external_id: str | None


class CommunicationOut(_Record):
    kind: str = Field(description="call or email")
    direction: str = Field(description="incoming or outgoing")
    occurred_at: str
    duration_seconds: int | None
    answered: bool | None
    subject: str | None
    external_ref: str = Field(description="The call id (telephony) or Message-ID (mail)")
    source: str
    phone: str | None = Field(description="E.164")
    email: str | None
    contact_id: str | None
    counterparty_id: str | None
    handled_by: str | None


CounterpartyList = list_of(CounterpartyOut)
ContactList = list_of(ContactOut)
ProductList = list_of(ProductOut)
InvoiceList = list_of(InvoiceOut)
PaymentList = list_of(PaymentOut)
CommunicationList = list_of(CommunicationOut)
