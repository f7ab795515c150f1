"""HTTP schemas of the crm area. Request bodies and list queries are the
crm service's own input schemas (``services.crm.schemas``), so the gateway
answers a malformed body exactly as the service would, naming each field;
the service still validates again and applies the rules that need data
(links, rights, uniqueness). The answers below document the records."""
from __future__ import annotations

from pydantic import BaseModel, Field

from services.crm.schemas import (
    Address,
    ContactCreate,
    ContactUpdate,
    CounterpartyCreate,
    CounterpartyUpdate,
    InvoiceCreate,
    InvoiceUpdate,
    ListQuery,
    PaymentCreate,
    PaymentUpdate,
    ProductCreate,
    ProductUpdate,
    Unit,
)

__all__ = [
    "ContactCreate", "ContactUpdate", "CounterpartyCreate", "CounterpartyUpdate", "InvoiceCreate", "InvoiceUpdate",
    "ListQuery", "PaymentCreate", "PaymentUpdate", "ProductCreate", "ProductUpdate",
]

MONEY = Field(description="Decimal string with kopecks, e.g. \"1499.90\"")


class _Record(BaseModel):
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


class ProductOut(_Record):
    name: str
    article: str | None
    group: str | None
    unit: Unit | None = Field(description="ОКЕИ code and name")
    price: str = MONEY
    currency: str
    vat_rate: str | None = Field(description='Percent ("22"); null: без НДС')
    external_id: str | None


class InvoiceLineOut(BaseModel):
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


class CounterpartyList(BaseModel):
    items: list[CounterpartyOut]
    next_cursor: str | None


class ContactList(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class ProductList(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class InvoiceList(BaseModel):
    items: list[InvoiceOut]
    next_cursor: str | None


class PaymentList(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None


class CommunicationList(BaseModel):
    items: list[CommunicationOut]
    next_cursor: str | None


class Count(BaseModel):
    count: int = Field(description="How many records the list shows over all its pages")
