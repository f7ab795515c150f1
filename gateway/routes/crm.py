"""CRM routes (``/api/v1/{counterparties,contacts,products,invoices,payments}``
and ``/api/v1/communications``): one RPC to the crm service each, carrying
the caller taken from the verified access token. Rights are the crm
service's business: it filters every query by the caller's scopes."""
from __future__ import annotations

from contracts.crm import (
    CommunicationOut,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    CounterpartyCreate,
    CounterpartyOut,
    CounterpartyUpdate,
    InvoiceCreate,
    InvoiceOut,
    InvoiceUpdate,
    ListQuery,
    PaymentCreate,
    PaymentOut,
    PaymentUpdate,
    ProductCreate,
    ProductOut,
    ProductUpdate,
)
from gateway.resources import Area, Resource

IN_USE = {"delete": "Delete a {0} ({1}.delete; 409 while other records use it)"}


def _in_use(singular: str, path: str) -> dict[str, str]:
    return {"delete": IN_USE["delete"].format(singular, path)}


CrmRoutes = Area("crm", tag="crm", generic=True).routes(
    Resource("counterparties", "counterparty", CounterpartyOut, query=ListQuery, create=CounterpartyCreate,
             update=CounterpartyUpdate, summaries={
                 "list": "Counterparties (organisations and individuals): a page under your rights "
                         "(counterparties.read)", **_in_use("counterparty", "counterparties")}),
    Resource("contacts", "contact", ContactOut, query=ListQuery, create=ContactCreate, update=ContactUpdate,
             summaries={"list": "Contact people: a page under your rights (contacts.read)",
                        **_in_use("contact", "contacts")}),
    Resource("products", "product", ProductOut, query=ListQuery, create=ProductCreate, update=ProductUpdate,
             summaries=_in_use("product", "products")),
    Resource("invoices", "invoice", InvoiceOut, query=ListQuery, create=InvoiceCreate, update=InvoiceUpdate,
             summaries={"list": "Invoices (totals computed by the server): a page under your rights "
                                "(invoices.read)", **_in_use("invoice", "invoices")}),
    Resource("payments", "payment", PaymentOut, query=ListQuery, create=PaymentCreate, update=PaymentUpdate,
             summaries={"list": "Payments (they move their invoice's status): a page under your rights "
                                "(payments.read)", **_in_use("payment", "payments")}),
    Resource("communications", "communication", CommunicationOut, query=ListQuery,
             actions=("list", "count", "read"),
             summaries={"list": "Calls and e-mails (filter by contact_id, counterparty_id, kind), newest first",
                        "read": "A call or an e-mail"}),
    name="CrmRoutes",
)
