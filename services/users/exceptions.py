"""Errors of the users service. Each subclasses a ``crm_shared.errors``
class, so it crosses RPC intact and the gateway maps it to its HTTP status."""
from crm_shared.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed

__all__ = ["Conflict", "Forbidden", "NotFound", "Unauthenticated", "ValidationFailed",
           "invalid_credentials", "last_admin", "not_found"]


def invalid_credentials() -> Unauthenticated:
    return Unauthenticated("invalid credentials", code="invalid_credentials")


def not_found(entity: str) -> NotFound:
    return NotFound(f"{entity} not found", code="not_found")


def last_admin(action: str) -> Conflict:
    return Conflict(
        f"cannot {action}: it would leave no active user with full administrative rights "
        "(users.manage and org.manage at scope all)",
        code="last_admin",
    )
