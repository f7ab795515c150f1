"""Nameko entrypoints of the telephony service. They stay thin: validate, call
the domain code, return plain data."""
from __future__ import annotations

from crm_shared.service import DatabaseServiceBase


class TelephonyService(DatabaseServiceBase):
    """Per-user SIP accounts, the SIP engine, active calls, the call log and the Mango Office PBX
    adapter."""

    name = "telephony"


SERVICE = TelephonyService
