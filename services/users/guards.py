"""Invariants that protect an instance from locking itself out, and the
department tree's shape. Checked inside the writing transaction, under the
tenant lock, against the state the change would leave."""
from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.users import rights as R
from services.users.exceptions import last_admin
from services.users.models import Position, Role, User, UserPosition


def _holders(tenant_id: str, code: str) -> Any:
    return (
        sa.select(UserPosition.user_id)
        .join(Position, sa.and_(Position.tenant_id == UserPosition.tenant_id,
                                Position.id == UserPosition.position_id))
        .join(Role, sa.and_(Role.tenant_id == Position.tenant_id, Role.id == Position.role_id))
        .where(UserPosition.tenant_id == tenant_id, Role.rights[code].astext == R.ALL)
    )


def full_admin_count(session: Session, tenant_id: str) -> int:
    """Active, not deleted users holding users.manage and org.manage at ``all``
    (through one role or several)."""
    session.flush()
    query = sa.select(sa.func.count()).select_from(User).where(
        User.tenant_id == tenant_id, User.active.is_(True), User.deleted_at.is_(None),
        *[User.id.in_(_holders(tenant_id, code)) for code in R.ADMIN_RIGHTS],
    )
    return int(session.scalar(query) or 0)


def ensure_an_admin_remains(session: Session, tenant_id: str, action: str) -> None:
    if full_admin_count(session, tenant_id) == 0:
        raise last_admin(action)


def creates_cycle(parents: Mapping[str, str | None], department_id: str, new_parent_id: str) -> bool:
    """True when ``new_parent_id`` is the department itself or one of its descendants."""
    seen: set[str] = set()
    current: str | None = new_parent_id
    while current is not None and current not in seen:
        if current == department_id:
            return True
        seen.add(current)
        current = parents.get(current)
    return False
