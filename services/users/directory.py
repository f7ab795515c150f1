"""Users: create, read, update, deactivate, soft delete; credentials."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from contracts.users import UserCreate, UserQuery, UserUpdate, utc_offset
from services.users import guards
from services.users.exceptions import Conflict, invalid_credentials, not_found
from services.users.models import Department, Position, Role, User, UserPosition
from services.users.passwords import Hasher, check_new_password
from services.users.schemas import invalid, parse
from services.users.work import Work, created, decode_cursor, diff, encode_cursor, jsonable, parse_id

PROFILE_FIELDS = ("full_name", "login", "email", "timezone", "active", "sip_enabled")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _password_problems(data: Any, required: bool) -> dict[str, str]:
    if not isinstance(data, dict):
        return {}
    password, confirm = data.get("password"), data.get("password_confirm")
    if not required and password is None and confirm is None:
        return {}
    if any(value is not None and not isinstance(value, str) for value in (password, confirm)):
        return {}  # the schema reports the type
    if password is None and confirm is not None:
        return {"password": "is required together with password_confirm"}
    return check_new_password(password, confirm)


# -- reading --------------------------------------------------------------

def positions_of(session: Session, tenant_id: str, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    result: dict[uuid.UUID, list[dict[str, Any]]] = {u: [] for u in user_ids}
    if not user_ids:
        return result
    rows = session.execute(
        sa.select(UserPosition.user_id, Position.id, Position.title, Position.department_id, Department.name,
                  Position.role_id, Role.name)
        .join(Position, sa.and_(Position.tenant_id == UserPosition.tenant_id, Position.id == UserPosition.position_id))
        .join(Department, sa.and_(Department.tenant_id == Position.tenant_id,
                                  Department.id == Position.department_id))
        .join(Role, sa.and_(Role.tenant_id == Position.tenant_id, Role.id == Position.role_id))
        .where(UserPosition.tenant_id == tenant_id, UserPosition.user_id.in_(user_ids))
        .order_by(UserPosition.user_id, Position.title, Position.id)
    ).all()
    for user_id, pos_id, title, dept_id, dept_name, role_id, role_name in rows:
        result[user_id].append({"id": str(pos_id), "title": title, "department_id": str(dept_id),
                                "department_name": dept_name, "role_id": str(role_id), "role_name": role_name})
    return result


def user_out(user: User, positions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "login": user.login,
        "full_name": user.full_name,
        "email": user.email,
        "timezone": user.timezone,
        "timezone_offset": utc_offset(user.timezone),
        "active": user.active,
        "sip_enabled": user.sip_enabled,
        "deleted": user.deleted_at is not None,
        "deleted_at": jsonable(user.deleted_at),
        "position_ids": [p["id"] for p in positions],
        "positions": positions,
        "password_changed_at": jsonable(user.password_changed_at),
        "created_at": jsonable(user.created_at),
        "updated_at": jsonable(user.updated_at),
    }


def _load(work: Work, user_id: Any, for_update: bool = False) -> User:
    uid = parse_id(user_id)
    user = None
    if uid is not None:
        query = sa.select(User).where(User.tenant_id == work.tenant_id, User.id == uid)
        if for_update:
            query = query.with_for_update()
        user = work.session.scalar(query)
    if user is None:
        raise not_found("user")
    return user


def get_user(work: Work, user_id: Any) -> dict[str, Any]:
    user = _load(work, user_id)
    return user_out(user, positions_of(work.session, work.tenant_id, [user.id])[user.id])


def list_users(work: Work, query_data: Any) -> dict[str, Any]:
    q = parse(UserQuery, query_data)
    t = work.tenant_id
    query = sa.select(User).where(User.tenant_id == t)
    if not q.include_deleted:
        query = query.where(User.deleted_at.is_(None))
    if q.active is not None:
        query = query.where(User.active.is_(q.active))
    if q.q:
        pattern = "%" + q.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(sa.or_(User.full_name.ilike(pattern), User.login.ilike(pattern),
                                   User.email.ilike(pattern)))
    if q.department_id is not None:
        departments = [uuid.UUID(d) for d in work.snapshot().subtree(str(q.department_id))]
        query = query.where(User.id.in_(
            sa.select(UserPosition.user_id)
            .join(Position, sa.and_(Position.tenant_id == UserPosition.tenant_id,
                                    Position.id == UserPosition.position_id))
            .where(UserPosition.tenant_id == t, Position.department_id.in_(departments))))
    if q.position_id is not None:
        query = query.where(User.id.in_(sa.select(UserPosition.user_id).where(
            UserPosition.tenant_id == t, UserPosition.position_id == q.position_id)))
    after = decode_cursor(q.cursor, 2)
    if after is not None:
        after_id = parse_id(after[1])
        if not isinstance(after[0], str) or after_id is None:
            raise invalid({"cursor": "not a cursor this list returned"})
        query = query.where(sa.tuple_(User.full_name, User.id) > sa.tuple_(sa.literal(after[0]), sa.literal(after_id)))
    users = list(work.session.scalars(query.order_by(User.full_name, User.id).limit(q.limit + 1)))
    more = len(users) > q.limit
    users = users[:q.limit]
    positions = positions_of(work.session, t, [u.id for u in users])
    return {
        "items": [user_out(u, positions[u.id]) for u in users],
        "next_cursor": encode_cursor(users[-1].full_name, users[-1].id) if more else None,
    }


# -- writing --------------------------------------------------------------

def _login_taken(work: Work, login: str, except_id: uuid.UUID | None = None) -> bool:
    query = sa.select(User.id).where(User.tenant_id == work.tenant_id, sa.func.lower(User.login) == login.lower(),
                                     User.deleted_at.is_(None))
    if except_id is not None:
        query = query.where(User.id != except_id)
    return work.session.scalar(query.limit(1)) is not None


def _login_conflict(login: str) -> Conflict:
    return Conflict(f"the login '{login}' is already taken in this instance", code="login_taken",
                    fields={"login": "already taken"})


def _check_positions(work: Work, position_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    unique = list(dict.fromkeys(position_ids))
    if not unique:
        return unique
    found = set(work.session.scalars(sa.select(Position.id).where(
        Position.tenant_id == work.tenant_id, Position.id.in_(unique))))
    missing = [str(p) for p in unique if p not in found]
    if missing:
        raise invalid({"position_ids": f"no such position: {', '.join(missing)}"})
    return unique


def _set_positions(work: Work, user_id: uuid.UUID, position_ids: list[uuid.UUID]) -> None:
    work.session.execute(sa.delete(UserPosition).where(UserPosition.tenant_id == work.tenant_id,
                                                       UserPosition.user_id == user_id))
    for pos in position_ids:
        work.session.add(UserPosition(tenant_id=work.tenant_id, user_id=user_id, position_id=pos))


def _current_positions(work: Work, user_id: uuid.UUID) -> list[uuid.UUID]:
    return list(work.session.scalars(sa.select(UserPosition.position_id).where(
        UserPosition.tenant_id == work.tenant_id, UserPosition.user_id == user_id)
        .order_by(UserPosition.position_id)))


def create_user(work: Work, data: Any) -> dict[str, Any]:
    assert work.hasher is not None
    body = parse(UserCreate, data, _password_problems(data, required=True))
    assert body.password is not None
    password_hash = work.hasher.hash(body.password)  # ~40 ms: before taking the tenant's write lock
    work.lock()
    if _login_taken(work, body.login):
        raise _login_conflict(body.login)
    positions = _check_positions(work, body.position_ids)
    user = User(tenant_id=work.tenant_id, id=uuid.uuid4(), login=body.login, full_name=body.full_name,
                email=body.email, password_hash=password_hash, timezone=body.timezone,
                active=body.active, sip_enabled=body.sip_enabled)
    work.session.add(user)
    work.session.flush()
    _set_positions(work, user.id, positions)
    work.session.flush()
    work.session.refresh(user)
    values: dict[str, Any] = {f: getattr(body, f) for f in PROFILE_FIELDS}
    values["password"] = "set"
    values["position_ids"] = sorted(str(p) for p in positions)
    work.journal("user", user.id, "create", created(values))
    work.org_changed(None if positions else [user.id])
    return get_user(work, user.id)


def update_user(work: Work, user_id: Any, data: Any) -> dict[str, Any]:
    assert work.hasher is not None
    body = parse(UserUpdate, data, _password_problems(data, required=False))
    password_hash = work.hasher.hash(body.password) if body.password is not None else None
    work.lock()
    user = _load(work, user_id, for_update=True)
    if user.deleted_at is not None:
        raise Conflict("the user is deleted and cannot be changed", code="user_deleted")
    given = body.model_fields_set
    for name in ("full_name", "login", "timezone", "active", "sip_enabled", "position_ids"):
        if name in given and getattr(body, name) is None:
            raise invalid({name: "may not be null"})
    before: dict[str, Any] = {f: getattr(user, f) for f in PROFILE_FIELDS}
    after = dict(before)
    for name in PROFILE_FIELDS:
        if name in given:
            after[name] = getattr(body, name)
    if after["login"] != before["login"] and _login_taken(work, after["login"], user.id):
        raise _login_conflict(after["login"])
    changes = diff(before, after)
    positions_changed = False
    if body.position_ids is not None:
        old_positions = _current_positions(work, user.id)
        new_positions = _check_positions(work, body.position_ids)
        if sorted(old_positions) != sorted(new_positions):
            _set_positions(work, user.id, new_positions)
            positions_changed = True
            changes["position_ids"] = {"old": sorted(str(p) for p in old_positions),
                                       "new": sorted(str(p) for p in new_positions)}
    password_changed = password_hash is not None
    if password_hash is not None:
        user.password_hash = password_hash
        user.password_changed_at = _now()
        changes["password"] = {"old": "set", "new": "set"}
    if not changes:
        return get_user(work, user.id)
    for name in PROFILE_FIELDS:
        setattr(user, name, after[name])
    user.updated_at = _now()
    deactivated = before["active"] and not after["active"]
    if deactivated or positions_changed:
        guards.ensure_an_admin_remains(
            work.session, work.tenant_id,
            "deactivate this user" if deactivated else "change this user's positions")
    work.journal("user", user.id, "update", changes)
    if deactivated:
        work.emit("user_deactivated", {"tenant_id": work.tenant_id, "user_id": user.id}, user.id)
    if not before["active"] and after["active"]:
        work.emit("user_activated", {"tenant_id": work.tenant_id, "user_id": user.id}, user.id)
    if before["sip_enabled"] != after["sip_enabled"]:
        # the telephony service registers or stops this user's SIP account
        work.emit("user_sip_changed", {"tenant_id": work.tenant_id, "user_id": user.id,
                                       "sip_enabled": after["sip_enabled"]}, user.id)
    if password_changed:
        work.emit("user_password_changed", {"tenant_id": work.tenant_id, "user_id": user.id}, user.id)
    work.org_changed(None if positions_changed else [user.id])
    return get_user(work, user.id)


def delete_user(work: Work, user_id: Any) -> None:
    """Soft delete: the user can no longer log in and shows as deleted; their
    records keep pointing at them."""
    work.lock()
    user = _load(work, user_id, for_update=True)
    if user.deleted_at is not None:
        return
    was_active = user.active
    user.deleted_at = _now()
    user.active = False
    user.updated_at = user.deleted_at
    guards.ensure_an_admin_remains(work.session, work.tenant_id, "delete this user")
    work.journal("user", user.id, "delete", {"deleted": {"old": False, "new": True}})
    if was_active:
        work.emit("user_deactivated", {"tenant_id": work.tenant_id, "user_id": user.id}, user.id)
    work.emit("user_deleted", {"tenant_id": work.tenant_id, "user_id": user.id}, user.id)
    work.org_changed([user.id])


# -- credentials ----------------------------------------------------------

def verify_credentials(session: Session, hasher: Hasher, tenant_id: str, login: str, password: str) -> dict[str, Any]:
    """One argon2 verification whatever the outcome; the same error for an
    unknown login, a wrong password and an inactive user."""
    user = None
    if isinstance(login, str) and 0 < len(login) <= 64 and isinstance(tenant_id, str):
        user = session.scalar(sa.select(User).where(
            User.tenant_id == tenant_id, sa.func.lower(User.login) == login.strip().lower(),
            User.deleted_at.is_(None)))
    if not isinstance(password, str) or len(password) > 1024:
        password = ""
    ok = hasher.verify(user.password_hash if user is not None else None, password)
    if user is None or not ok or not user.active:
        raise invalid_credentials()
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return {"user_id": str(user.id), "login": user.login, "full_name": user.full_name}
