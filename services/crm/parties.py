"""Counterparties (organisations and individuals) and their contact people."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from contracts.crm import ContactCreate, ContactUpdate, CounterpartyCreate, CounterpartyUpdate, counterparty_problems
from services.crm import records as R
from services.crm.models import Communication, Contact, Counterparty, Invoice, Payment
from services.crm.schemas import invalid
from services.crm.search import search_text
from services.crm.work import Work


def _unlink_communications(work: Work, column: Any, record_id: Any) -> None:
    """Calls and mails keep their history (number, address) when a party goes."""
    work.session.execute(sa.update(Communication)
                         .where(Communication.tenant_id == work.tenant_id, column == record_id)
                         .values({column.key: None}))


class Counterparties(R.Kind):
    name, entity, model = "counterparties", "counterparty", Counterparty
    create_schema, update_schema = CounterpartyCreate, CounterpartyUpdate
    not_null = frozenset({"kind", "name", "phones", "emails", "addresses", "active"})
    sort_columns = {"name": Counterparty.name, "created_at": Counterparty.created_at}

    def values(self, row: Any) -> dict[str, Any]:
        return {"kind": row.kind, "name": row.name, "full_name": row.full_name, "inn": row.inn, "kpp": row.kpp,
                "phones": list(row.phones or []), "emails": list(row.emails or []),
                "addresses": list(row.addresses or []), "external_id": row.external_id, "active": row.active}

    def apply(self, work: Work, row: Any, data: dict[str, Any], creating: bool) -> None:
        super().apply(work, row, data, creating)
        problems = counterparty_problems(row.kind, row.inn, row.kpp)
        if problems:
            raise invalid(problems)

    def search_text(self, row: Any) -> str:
        return search_text(row.name, row.full_name, row.inn, row.kpp, phones=row.phones or [],
                           emails=row.emails or [])

    def after_write(self, work: Work, row: Any, before: dict[str, Any] | None) -> None:
        if before is None or before["phones"] != row.phones or before["emails"] != row.emails:
            R.replace_match_keys(work, "counterparty", row.id, row.phones or [], row.emails or [])

    def before_delete(self, work: Work, row: Any) -> None:
        used = {"contacts": R.count_where(work, Contact, Contact.counterparty_id == row.id),
                "invoices": R.count_where(work, Invoice, Invoice.counterparty_id == row.id),
                "payments": R.count_where(work, Payment, Payment.counterparty_id == row.id)}
        if any(used.values()):
            raise R.in_use(used, "counterparty")
        _unlink_communications(work, Communication.counterparty_id, row.id)

    def after_delete(self, work: Work, row: Any) -> None:
        R.drop_match_keys(work, "counterparty", row.id)


class Contacts(R.Kind):
    name, entity, model = "contacts", "contact", Contact
    create_schema, update_schema = ContactCreate, ContactUpdate
    not_null = frozenset({"full_name", "phones", "emails", "active"})
    sort_columns = {"name": Contact.full_name, "created_at": Contact.created_at}

    def values(self, row: Any) -> dict[str, Any]:
        return {"full_name": row.full_name, "counterparty_id": row.counterparty_id, "position": row.position,
                "phones": list(row.phones or []), "emails": list(row.emails or []), "external_id": row.external_id,
                "active": row.active}

    def apply(self, work: Work, row: Any, data: dict[str, Any], creating: bool) -> None:
        target = data.get("counterparty_id")
        if target is not None and target != row.counterparty_id:
            R.linked(work, Counterparty, target, "counterparties", "counterparty_id")
        super().apply(work, row, data, creating)

    def search_text(self, row: Any) -> str:
        return search_text(row.full_name, row.position, phones=row.phones or [], emails=row.emails or [])

    def after_write(self, work: Work, row: Any, before: dict[str, Any] | None) -> None:
        if before is None or before["phones"] != row.phones or before["emails"] != row.emails:
            R.replace_match_keys(work, "contact", row.id, row.phones or [], row.emails or [])

    def before_delete(self, work: Work, row: Any) -> None:
        used = {"invoices": R.count_where(work, Invoice, Invoice.contact_id == row.id)}
        if any(used.values()):
            raise R.in_use(used, "contact")
        _unlink_communications(work, Communication.contact_id, row.id)

    def after_delete(self, work: Work, row: Any) -> None:
        R.drop_match_keys(work, "contact", row.id)
