"""CRM routes (``/api/v1/{counterparties,contacts,products,invoices,payments}``
and ``/api/v1/communications``): one RPC to the crm service each, carrying
the caller taken from the verified access token. Rights are the crm
service's business: it filters every query by the caller's scopes."""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.entrypoints import api
from gateway.schemas_crm import (
    CommunicationList,
    CommunicationOut,
    ContactCreate,
    ContactList,
    ContactOut,
    ContactUpdate,
    Count,
    CounterpartyCreate,
    CounterpartyList,
    CounterpartyOut,
    CounterpartyUpdate,
    InvoiceCreate,
    InvoiceList,
    InvoiceOut,
    InvoiceUpdate,
    ListQuery,
    PaymentCreate,
    PaymentList,
    PaymentOut,
    PaymentUpdate,
    ProductCreate,
    ProductList,
    ProductOut,
    ProductUpdate,
)
from gateway.tokens import caller

TAGS = ("crm",)


def _query(query: ListQuery) -> dict[str, Any]:
    return query.model_dump(mode="json", exclude_unset=True)


def _body(body: Any) -> dict[str, Any]:
    return dict(body.model_dump(mode="json", exclude_unset=True))


class CrmRoutes:
    cluster: Any
    context: Any

    # -- counterparties --------------------------------------------------------
    @api("GET", "/api/v1/counterparties", query=ListQuery, response=CounterpartyList, tags=TAGS,
         summary="Counterparties (organisations and individuals): a page under your rights (counterparties.read)")
    def list_counterparties(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.list_records(caller(self.context), "counterparties", _query(query))

    @api("GET", "/api/v1/counterparties/count", query=ListQuery, response=Count, tags=TAGS,
         summary="How many counterparties the list shows (same filters)")
    def count_counterparties(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.count_records(caller(self.context), "counterparties", _query(query))

    @api("POST", "/api/v1/counterparties", body=CounterpartyCreate, response=CounterpartyOut, status=201, tags=TAGS,
         summary="Create a counterparty (counterparties.create)")
    def create_counterparty(self, request: Request, body: CounterpartyCreate) -> Any:
        return self.cluster.crm.create_record(caller(self.context), "counterparties", _body(body))

    @api("GET", "/api/v1/counterparties/<string:record_id>", response=CounterpartyOut, tags=TAGS,
         summary="A counterparty")
    def get_counterparty(self, request: Request, record_id: str) -> Any:
        return self.cluster.crm.get_record(caller(self.context), "counterparties", record_id)

    @api("PATCH", "/api/v1/counterparties/<string:record_id>", body=CounterpartyUpdate, response=CounterpartyOut,
         tags=TAGS, summary="Change a counterparty (counterparties.update; the fields given change)")
    def update_counterparty(self, request: Request, record_id: str, body: CounterpartyUpdate) -> Any:
        return self.cluster.crm.update_record(caller(self.context), "counterparties", record_id, _body(body))

    @api("DELETE", "/api/v1/counterparties/<string:record_id>", status=204, tags=TAGS,
         summary="Delete a counterparty (counterparties.delete; 409 while other records use it)")
    def delete_counterparty(self, request: Request, record_id: str) -> Any:
        self.cluster.crm.delete_record(caller(self.context), "counterparties", record_id)
        return 204, None

    # -- contacts --------------------------------------------------------------
    @api("GET", "/api/v1/contacts", query=ListQuery, response=ContactList, tags=TAGS,
         summary="Contact people: a page under your rights (contacts.read)")
    def list_contacts(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.list_records(caller(self.context), "contacts", _query(query))

    @api("GET", "/api/v1/contacts/count", query=ListQuery, response=Count, tags=TAGS,
         summary="How many contacts the list shows (same filters)")
    def count_contacts(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.count_records(caller(self.context), "contacts", _query(query))

    @api("POST", "/api/v1/contacts", body=ContactCreate, response=ContactOut, status=201, tags=TAGS,
         summary="Create a contact (contacts.create)")
    def create_contact(self, request: Request, body: ContactCreate) -> Any:
        return self.cluster.crm.create_record(caller(self.context), "contacts", _body(body))

    @api("GET", "/api/v1/contacts/<string:record_id>", response=ContactOut, tags=TAGS, summary="A contact")
    def get_contact(self, request: Request, record_id: str) -> Any:
        return self.cluster.crm.get_record(caller(self.context), "contacts", record_id)

    @api("PATCH", "/api/v1/contacts/<string:record_id>", body=ContactUpdate, response=ContactOut, tags=TAGS,
         summary="Change a contact (contacts.update; the fields given change)")
    def update_contact(self, request: Request, record_id: str, body: ContactUpdate) -> Any:
        return self.cluster.crm.update_record(caller(self.context), "contacts", record_id, _body(body))

    @api("DELETE", "/api/v1/contacts/<string:record_id>", status=204, tags=TAGS,
         summary="Delete a contact (contacts.delete; 409 while other records use it)")
    def delete_contact(self, request: Request, record_id: str) -> Any:
        self.cluster.crm.delete_record(caller(self.context), "contacts", record_id)
        return 204, None

    # -- products --------------------------------------------------------------
    @api("GET", "/api/v1/products", query=ListQuery, response=ProductList, tags=TAGS,
         summary="Products: a page under your rights (products.read)")
    def list_products(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.list_records(caller(self.context), "products", _query(query))

    @api("GET", "/api/v1/products/count", query=ListQuery, response=Count, tags=TAGS,
         summary="How many products the list shows (same filters)")
    def count_products(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.count_records(caller(self.context), "products", _query(query))

    @api("POST", "/api/v1/products", body=ProductCreate, response=ProductOut, status=201, tags=TAGS,
         summary="Create a product (products.create)")
    def create_product(self, request: Request, body: ProductCreate) -> Any:
        return self.cluster.crm.create_record(caller(self.context), "products", _body(body))

    @api("GET", "/api/v1/products/<string:record_id>", response=ProductOut, tags=TAGS, summary="A product")
    def get_product(self, request: Request, record_id: str) -> Any:
        return self.cluster.crm.get_record(caller(self.context), "products", record_id)

    @api("PATCH", "/api/v1/products/<string:record_id>", body=ProductUpdate, response=ProductOut, tags=TAGS,
         summary="Change a product (products.update; the fields given change)")
    def update_product(self, request: Request, record_id: str, body: ProductUpdate) -> Any:
        return self.cluster.crm.update_record(caller(self.context), "products", record_id, _body(body))

    @api("DELETE", "/api/v1/products/<string:record_id>", status=204, tags=TAGS,
         summary="Delete a product (products.delete; 409 while other records use it)")
    def delete_product(self, request: Request, record_id: str) -> Any:
        self.cluster.crm.delete_record(caller(self.context), "products", record_id)
        return 204, None

    # -- invoices --------------------------------------------------------------
    @api("GET", "/api/v1/invoices", query=ListQuery, response=InvoiceList, tags=TAGS,
         summary="Invoices (totals computed by the server): a page under your rights (invoices.read)")
    def list_invoices(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.list_records(caller(self.context), "invoices", _query(query))

    @api("GET", "/api/v1/invoices/count", query=ListQuery, response=Count, tags=TAGS,
         summary="How many invoices the list shows (same filters)")
    def count_invoices(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.count_records(caller(self.context), "invoices", _query(query))

    @api("POST", "/api/v1/invoices", body=InvoiceCreate, response=InvoiceOut, status=201, tags=TAGS,
         summary="Create a invoice (invoices.create)")
    def create_invoice(self, request: Request, body: InvoiceCreate) -> Any:
        return self.cluster.crm.create_record(caller(self.context), "invoices", _body(body))

    @api("GET", "/api/v1/invoices/<string:record_id>", response=InvoiceOut, tags=TAGS, summary="A invoice")
    def get_invoice(self, request: Request, record_id: str) -> Any:
        return self.cluster.crm.get_record(caller(self.context), "invoices", record_id)

    @api("PATCH", "/api/v1/invoices/<string:record_id>", body=InvoiceUpdate, response=InvoiceOut, tags=TAGS,
         summary="Change a invoice (invoices.update; the fields given change)")
    def update_invoice(self, request: Request, record_id: str, body: InvoiceUpdate) -> Any:
        return self.cluster.crm.update_record(caller(self.context), "invoices", record_id, _body(body))

    @api("DELETE", "/api/v1/invoices/<string:record_id>", status=204, tags=TAGS,
         summary="Delete a invoice (invoices.delete; 409 while other records use it)")
    def delete_invoice(self, request: Request, record_id: str) -> Any:
        self.cluster.crm.delete_record(caller(self.context), "invoices", record_id)
        return 204, None

    # -- payments --------------------------------------------------------------
    @api("GET", "/api/v1/payments", query=ListQuery, response=PaymentList, tags=TAGS,
         summary="Payments (they move their invoice's status): a page under your rights (payments.read)")
    def list_payments(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.list_records(caller(self.context), "payments", _query(query))

    @api("GET", "/api/v1/payments/count", query=ListQuery, response=Count, tags=TAGS,
         summary="How many payments the list shows (same filters)")
    def count_payments(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.count_records(caller(self.context), "payments", _query(query))

    @api("POST", "/api/v1/payments", body=PaymentCreate, response=PaymentOut, status=201, tags=TAGS,
         summary="Create a payment (payments.create)")
    def create_payment(self, request: Request, body: PaymentCreate) -> Any:
        return self.cluster.crm.create_record(caller(self.context), "payments", _body(body))

    @api("GET", "/api/v1/payments/<string:record_id>", response=PaymentOut, tags=TAGS, summary="A payment")
    def get_payment(self, request: Request, record_id: str) -> Any:
        return self.cluster.crm.get_record(caller(self.context), "payments", record_id)

    @api("PATCH", "/api/v1/payments/<string:record_id>", body=PaymentUpdate, response=PaymentOut, tags=TAGS,
         summary="Change a payment (payments.update; the fields given change)")
    def update_payment(self, request: Request, record_id: str, body: PaymentUpdate) -> Any:
        return self.cluster.crm.update_record(caller(self.context), "payments", record_id, _body(body))

    @api("DELETE", "/api/v1/payments/<string:record_id>", status=204, tags=TAGS,
         summary="Delete a payment (payments.delete; 409 while other records use it)")
    def delete_payment(self, request: Request, record_id: str) -> Any:
        self.cluster.crm.delete_record(caller(self.context), "payments", record_id)
        return 204, None

    # -- communications -----------------------------------------------------
    @api("GET", "/api/v1/communications", query=ListQuery, response=CommunicationList, tags=TAGS,
         summary="Calls and e-mails (filter by contact_id, counterparty_id, kind), newest first")
    def list_communications(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.list_records(caller(self.context), "communications", _query(query))

    @api("GET", "/api/v1/communications/count", query=ListQuery, response=Count, tags=TAGS,
         summary="How many communications the list shows")
    def count_communications(self, request: Request, query: ListQuery) -> Any:
        return self.cluster.crm.count_records(caller(self.context), "communications", _query(query))

    @api("GET", "/api/v1/communications/<string:record_id>", response=CommunicationOut, tags=TAGS,
         summary="A call or an e-mail")
    def get_communication(self, request: Request, record_id: str) -> Any:
        return self.cluster.crm.get_record(caller(self.context), "communications", record_id)
