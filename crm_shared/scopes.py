"""Rights as SQL: the caller's scope for a right becomes a condition on the
``responsible_id`` column inside the query itself (list, count, search,
export and single reads alike), never a check on loaded rows.

Scopes (from the users service's principal):

- ``all``: every record of the tenant;
- ``department``: records whose responsible user holds a position in one of
  the caller's departments or their child departments
  (``principal["department_user_ids"]``), and the caller's own records;
- ``own``: records the caller is responsible for;
- ``none``: nothing; asking for it is 403 naming the right.

Action rights (``invoices.discount``…) take ``none`` or ``all``."""
from __future__ import annotations

import uuid
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from crm_shared.errors import Forbidden, Unauthenticated

NONE, OWN, DEPARTMENT, ALL = "none", "own", "department", "all"
RANK = {NONE: 0, OWN: 1, DEPARTMENT: 2, ALL: 3}


def scope_of(principal: Mapping[str, Any], right: str) -> str:
    scope = str((principal.get("rights") or {}).get(right, NONE))
    return scope if scope in RANK else NONE


def forbidden(right: str, scope: str = "") -> Forbidden:
    need = f" (at least '{scope}')" if scope else ""
    return Forbidden(f"this needs the right '{right}'{need}", code="forbidden", details={"right": right})


def require(principal: Mapping[str, Any], right: str, at_least: str = OWN) -> str:
    """The caller's scope for ``right``; 403 naming it when below ``at_least``."""
    scope = scope_of(principal, right)
    if RANK[scope] < RANK[at_least]:
        raise forbidden(right, at_least if at_least != OWN else "")
    return scope


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def user_id_of(principal: Mapping[str, Any]) -> uuid.UUID:
    uid = _uuid(principal.get("user_id"))
    assert uid is not None, "a principal always has a user id"
    return uid


def department_users(principal: Mapping[str, Any]) -> list[uuid.UUID]:
    """The users a department scope covers: the colleagues and the caller."""
    ids = {u for u in (_uuid(v) for v in principal.get("department_user_ids") or ()) if u is not None}
    ids.add(user_id_of(principal))
    return sorted(ids)


def condition(principal: Mapping[str, Any], scope: str, column: Any) -> Any:
    """The SQL condition for ``scope`` on ``column`` (the responsible user)."""
    if scope == ALL:
        return sa.true()
    if scope == DEPARTMENT:
        # one array parameter (= ANY) rather than an IN list: one plan whatever the size
        ids = sa.bindparam(None, department_users(principal), type_=ARRAY(sa.Uuid))
        return column == sa.any_(ids)
    if scope == OWN:
        return column == user_id_of(principal)
    return sa.false()


def filter_for(principal: Mapping[str, Any], right: str, column: Any) -> Any:
    """The condition for reading (etc.) under ``right``: 403 naming it for scope ``none``."""
    return condition(principal, require(principal, right), column)


def covers(principal: Mapping[str, Any], scope: str, user_id: Any) -> bool:
    """Whether ``user_id`` falls within ``scope`` for this caller (own/department; ``all``
    needs the user to exist in the tenant, which the caller checks separately)."""
    uid = _uuid(user_id)
    if uid is None:
        return False
    if scope == ALL:
        return True
    if scope == DEPARTMENT:
        return uid in department_users(principal)
    if scope == OWN:
        return uid == user_id_of(principal)
    return False


def allows(principal: Mapping[str, Any], right: str) -> bool:
    """An action right (``invoices.discount``) is held."""
    return scope_of(principal, right) == ALL


USERS_MANAGE = "users.manage"


def may_manage_user(principal: Mapping[str, Any], user_id: Any) -> bool:
    """A user's own settings (mail and SIP accounts): the user, or anyone with ``users.manage``."""
    return str(principal.get("user_id")) == str(user_id) or allows(principal, USERS_MANAGE)


def require_manage_user(principal: Mapping[str, Any], user_id: Any, what: str) -> None:
    if not may_manage_user(principal, user_id):
        raise Forbidden(f"managing another user's {what} needs the right '{USERS_MANAGE}'", code="forbidden",
                        details={"right": USERS_MANAGE})


def caller_principal(users: Any, caller: Any) -> dict[str, Any]:
    """The caller's principal from the users service (``users.get_principal``, one RPC), for a
    service that checks rights itself; 401 without an authenticated caller or for a blocked user."""
    if not isinstance(caller, Mapping) or not caller.get("tenant_id") or not caller.get("user_id"):
        raise Unauthenticated("no authenticated caller", code="unauthenticated")
    principal = dict(users.get_principal(str(caller["tenant_id"]), str(caller["user_id"])))
    if not principal.get("active"):
        raise Unauthenticated("the user is not active", code="unauthenticated")
    return principal
