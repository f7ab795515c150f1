"""The kinds of record the crm service keeps, by their URL name."""
from __future__ import annotations

from crm_shared.errors import NotFound
from services.crm.billing import Invoices, Payments
from services.crm.communications import Communications
from services.crm.parties import Contacts, Counterparties
from services.crm.products import Products
from services.crm.records import Kind

KINDS: dict[str, Kind] = {k.name: k for k in (Counterparties(), Contacts(), Products(), Invoices(), Payments(),
                                              Communications())}
WRITABLE = frozenset({"counterparties", "contacts", "products", "invoices", "payments"})


def kind_of(name: str, write: bool = False) -> Kind:
    kind = KINDS.get(str(name))
    if kind is None or (write and kind.name not in WRITABLE):
        raise NotFound(f"no record kind '{name}' ({', '.join(sorted(WRITABLE if write else KINDS))})",
                       code="not_found")
    return kind
