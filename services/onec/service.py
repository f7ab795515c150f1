"""Nameko entrypoints of the onec service. They stay thin: validate, call
the domain code, return plain data."""
from __future__ import annotations

from crm_shared.service import DatabaseServiceBase


class OnecService(DatabaseServiceBase):
    """1C:Accounting exchange (versions, import/export jobs, exchange log, CommerceML HTTP protocol)
    and CSV import/export."""

    name = "onec"


SERVICE = OnecService
