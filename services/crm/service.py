"""Nameko entrypoints of the crm service. They stay thin: validate, call
the domain code, return plain data."""
from __future__ import annotations

from crm_shared.service import DatabaseServiceBase


class CrmService(DatabaseServiceBase):
    """Counterparties, contacts, products, invoices, payments and communications, with rights enforced
    inside every query."""

    name = "crm"


SERVICE = CrmService
