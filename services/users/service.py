"""Nameko entrypoints of the users service. They stay thin: validate, call
the domain code, return plain data."""
from __future__ import annotations

from crm_shared.service import DatabaseServiceBase


class UsersService(DatabaseServiceBase):
    """Users, departments (a tree), positions, roles and their rights with scopes, the principal of a user, the audit journal."""

    name = "users"


SERVICE = UsersService
