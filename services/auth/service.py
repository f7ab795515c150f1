"""Nameko entrypoints of the auth service. They stay thin: validate, call
the domain code, return plain data."""
from __future__ import annotations

from crm_shared.service import DatabaseServiceBase


class AuthService(DatabaseServiceBase):
    """Tenants (product code, tariff), credentials check, sessions, access/refresh tokens, login throttling and lockout, the per-tenant storage ledger."""

    name = "auth"


SERVICE = AuthService
