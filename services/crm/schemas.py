"""Input schemas of the crm service (pydantic), kept apart from the table
models. The service validates every RPC argument with them (the gateway
validates HTTP bodies with the same classes, so both answer alike): bad
input is a ``ValidationFailed`` naming each field (``phones.1``,
``lines.0.quantity``)."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from crm_shared.errors import ValidationFailed, field_problems
from services.crm import inn as inn_rules
from services.crm.phones import PhoneError, normalize_email, normalize_phone

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """``model`` from RPC data; ``ValidationFailed`` naming each bad field."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise validation_failed(exc) from None


def validation_failed(exc: ValidationError) -> ValidationFailed:
    return invalid(field_problems(exc))


def invalid(fields: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(f"invalid value for {', '.join(fields)}", fields=fields, code="validation_failed")


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


def _blank_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Phone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_phone)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
Inn = Annotated[str | None, BeforeValidator(_blank_none), AfterValidator(_inn),
                Field(description="ИНН: 10 digits (organisation) or 12 (individual), check digits verified")]
Kpp = Annotated[str | None, BeforeValidator(_blank_none), AfterValidator(_kpp),
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
                       BeforeValidator(_blank_none)]
OptText100 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None,
                       BeforeValidator(_blank_none)]
OptText200 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None,
                       BeforeValidator(_blank_none)]
OptText300 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None,
                       BeforeValidator(_blank_none)]
OptText1000 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None,
                       BeforeValidator(_blank_none)]
OptText2000 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None,
                       BeforeValidator(_blank_none)]
OptText5000 = Annotated[Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] | None,
                       BeforeValidator(_blank_none)]
ExternalId = Annotated[OptText200, Field(description="The identifier in 1C when the record came from 1C")]
Phones = Annotated[list[Phone], Field(max_length=20, description="As entered; matched in E.164")]
Emails = Annotated[list[Email], Field(max_length=20, description="As entered; matched in lower case")]

KINDS = ("counterparties", "contacts", "products", "invoices", "payments")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class ContactUpdate(_Owned):
    full_name: Annotated[Text, StringConstraints(max_length=300)] | None = None
    counterparty_id: uuid.UUID | None = None
    position: OptText300 = None
    phones: Phones | None = None
    emails: Emails | None = None
    external_id: ExternalId = None


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


class ProductUpdate(_Owned):
    name: Annotated[Text, StringConstraints(max_length=500)] | None = None
    article: OptText100 = None
    group: OptText300 = None
    unit: Unit | None = None
    price: Money | None = None
    currency: Currency | None = None
    vat_rate: VatRate = None
    external_id: ExternalId = None


# -- invoices -------------------------------------------------------------------

class InvoiceLineIn(_In):
    product_id: uuid.UUID
    quantity: Quantity
    price: Money | None = Field(default=None, description="VAT included; the product's price when omitted")
    discount_percent: Percent = Decimal("0")
    vat_rate: VatRate = Field(default=None, description="The product's rate when omitted")


def _fields_set(model: BaseModel) -> set[str]:
    return set(model.model_fields_set)


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
    cursor: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="next_cursor of the previous page")
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
    "contacts": {"responsible_id", "counterparty_id"},
    "products": {"responsible_id"},
    "invoices": {"responsible_id", "counterparty_id", "contact_id", "status"},
    "payments": {"responsible_id", "counterparty_id", "invoice_id"},
    "communications": {"responsible_id", "counterparty_id", "contact_id", "kind"},
}
COMMON = {"q", "limit", "cursor", "sort"}


def parse_list_query(kind: str, data: Any) -> ListQuery:
    query = parse(ListQuery, data)
    problems = {name: f"{kind} cannot be filtered by {name}"
                for name in sorted(query.model_fields_set - COMMON - FILTERS[kind])}
    if kind == "communications" and query.q:
        problems["q"] = "communications are filtered by contact_id, counterparty_id, kind or responsible_id"
    sort = query.sort or DEFAULT_SORT[kind]
    if sort.lstrip("-") not in SORTS[kind]:
        problems["sort"] = "one of: " + ", ".join(f"{k}, -{k}" for k in SORTS[kind])
    if query.kind is not None and "kind" not in problems:
        kinds = ("legal", "individual") if kind == "counterparties" else ("call", "email")
        if query.kind not in kinds:
            problems["kind"] = f"one of: {', '.join(kinds)}"
    if problems:
        raise invalid(problems)
    query.sort = sort
    return query


# -- events from other services (documented in docs/crm.md) --------------------

class CallLogged(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    call_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    direction: Literal["incoming", "outgoing"]
    started_at: dt.datetime
    duration_seconds: int = Field(default=0, ge=0)
    answered: bool | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    user_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    counterparty_id: uuid.UUID | None = None


class MailLogged(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    direction: Literal["incoming", "outgoing"]
    sent_at: dt.datetime
    subject: Annotated[str, StringConstraints(max_length=1000)] | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    user_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    counterparty_id: uuid.UUID | None = None
