"""Errors of the auth service. Each subclasses a ``crm_shared.errors``
class, so it crosses RPC intact and the gateway maps it to its HTTP status."""
from crm_shared.errors import Conflict, NotFound, ValidationFailed

__all__ = ["Conflict", "NotFound", "ValidationFailed"]
