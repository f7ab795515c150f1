"""The organisation: the department tree, positions (department + role) and
roles with their rights."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from contracts.users import (
    DepartmentCreate,
    DepartmentQuery,
    DepartmentUpdate,
    PositionCreate,
    PositionQuery,
    PositionUpdate,
    RoleCreate,
    RoleQuery,
    RoleUpdate,
)
from services.users import guards
from services.users import rights as R
from services.users.exceptions import Conflict, not_found
from services.users.models import Department, Position, Role, UserPosition
from services.users.schemas import invalid, parse
from services.users.work import Work, created, decode_cursor, diff, encode_cursor, jsonable, parse_id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _page(work: Work, query: Any, order: tuple[Any, Any], cursor: str | None, limit: int,
          out: Any) -> dict[str, Any]:
    after = decode_cursor(cursor, 2)
    if after is not None:
        after_id = parse_id(after[1])
        if not isinstance(after[0], str) or after_id is None:
            raise invalid({"cursor": "not a cursor this list returned"})
        query = query.where(sa.tuple_(*order) > sa.tuple_(sa.literal(after[0]), sa.literal(after_id)))
    rows = list(work.session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {
        "items": [out(work, r) for r in rows],
        "next_cursor": encode_cursor(getattr(last, order[0].key), last.id) if more and last is not None else None,
    }


# -- departments ----------------------------------------------------------

def department_out(work: Work, d: Department) -> dict[str, Any]:
    return {"id": str(d.id), "name": d.name, "parent_id": jsonable(d.parent_id), "is_root": d.parent_id is None,
            "created_at": jsonable(d.created_at), "updated_at": jsonable(d.updated_at)}


def _department(work: Work, department_id: Any) -> Department:
    did = parse_id(department_id)
    dept = None if did is None else work.session.scalar(
        sa.select(Department).where(Department.tenant_id == work.tenant_id, Department.id == did))
    if dept is None:
        raise not_found("department")
    return dept


def _root(work: Work) -> Department:
    root = work.session.scalar(sa.select(Department).where(Department.tenant_id == work.tenant_id,
                                                           Department.parent_id.is_(None)))
    if root is None:
        raise Conflict("the organisation has not been set up", code="no_organisation")
    return root


def _parent(work: Work, parent_id: uuid.UUID) -> Department:
    parent = work.session.scalar(sa.select(Department).where(Department.tenant_id == work.tenant_id,
                                                             Department.id == parent_id))
    if parent is None:
        raise invalid({"parent_id": "no such department"})
    return parent


def _sibling_named(work: Work, parent_id: uuid.UUID | None, name: str, except_id: uuid.UUID | None) -> bool:
    query = sa.select(Department.id).where(Department.tenant_id == work.tenant_id,
                                           Department.parent_id == parent_id,
                                           sa.func.lower(Department.name) == name.lower())
    if except_id is not None:
        query = query.where(Department.id != except_id)
    return work.session.scalar(query.limit(1)) is not None


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a department named '{name}' already exists under this parent", code="department_exists",
                    fields={"name": "already exists under this parent"})


def get_department(work: Work, department_id: Any) -> dict[str, Any]:
    return department_out(work, _department(work, department_id))


def list_departments(work: Work, query_data: Any) -> dict[str, Any]:
    q = parse(DepartmentQuery, query_data)
    query = sa.select(Department).where(Department.tenant_id == work.tenant_id)
    if q.parent_id is not None:
        query = query.where(Department.parent_id == q.parent_id)
    return _page(work, query, (Department.name, Department.id), q.cursor, q.limit, department_out)


def create_department(work: Work, data: Any) -> dict[str, Any]:
    work.lock()
    body = parse(DepartmentCreate, data)
    parent = _parent(work, body.parent_id) if body.parent_id is not None else _root(work)
    if _sibling_named(work, parent.id, body.name, None):
        raise _name_taken(body.name)
    dept = Department(tenant_id=work.tenant_id, id=uuid.uuid4(), parent_id=parent.id, name=body.name)
    work.session.add(dept)
    work.session.flush()
    work.session.refresh(dept)
    work.journal("department", dept.id, "create", created({"name": dept.name, "parent_id": parent.id}))
    work.org_changed()
    return department_out(work, dept)


def update_department(work: Work, department_id: Any, data: Any) -> dict[str, Any]:
    work.lock()
    dept = _department(work, department_id)
    body = parse(DepartmentUpdate, data)
    given = body.model_fields_set
    before: dict[str, Any] = {"name": dept.name, "parent_id": dept.parent_id}
    after = dict(before)
    if "name" in given:
        if body.name is None:
            raise invalid({"name": "may not be null"})
        after["name"] = body.name
    if "parent_id" in given and body.parent_id != dept.parent_id:
        if dept.parent_id is None:
            raise Conflict("the organisation root cannot be moved", code="organisation_root")
        if body.parent_id is None:
            raise invalid({"parent_id": "a department needs a parent; only the organisation root has none"})
        _parent(work, body.parent_id)
        parents = {str(i): (str(p) if p else None) for i, p in work.session.execute(
            sa.select(Department.id, Department.parent_id).where(Department.tenant_id == work.tenant_id))}
        if guards.creates_cycle(parents, str(dept.id), str(body.parent_id)):
            raise Conflict("a department cannot be moved under itself or one of its own descendants",
                           code="department_cycle", fields={"parent_id": "is this department or its descendant"})
        after["parent_id"] = body.parent_id
    changes = diff(before, after)
    if not changes:
        return department_out(work, dept)
    if _sibling_named(work, after["parent_id"], after["name"], dept.id):
        raise _name_taken(after["name"])
    dept.name, dept.parent_id = after["name"], after["parent_id"]
    dept.updated_at = _now()
    work.session.flush()
    work.journal("department", dept.id, "update", changes)
    work.org_changed()
    return department_out(work, dept)


def delete_department(work: Work, department_id: Any) -> None:
    work.lock()
    dept = _department(work, department_id)
    if dept.parent_id is None:
        raise Conflict("the organisation root cannot be deleted", code="organisation_root")
    children = work.session.scalar(sa.select(sa.func.count()).select_from(Department).where(
        Department.tenant_id == work.tenant_id, Department.parent_id == dept.id)) or 0
    positions = work.session.scalar(sa.select(sa.func.count()).select_from(Position).where(
        Position.tenant_id == work.tenant_id, Position.department_id == dept.id)) or 0
    if children or positions:
        what = " and ".join(part for part in (
            f"{children} child department(s)" if children else "",
            f"{positions} position(s)" if positions else "") if part)
        raise Conflict(f"the department has {what}; move or delete them first", code="department_not_empty",
                       details={"children": children, "positions": positions})
    work.session.delete(dept)
    work.session.flush()
    work.journal("department", dept.id, "delete", {"name": {"old": dept.name, "new": None}})
    work.org_changed()


# -- roles ----------------------------------------------------------------

def role_out(work: Work, role: Role) -> dict[str, Any]:
    return {"id": str(role.id), "name": role.name, "rights": R.complete(role.rights or {}),
            "builtin": role.builtin, "created_at": jsonable(role.created_at),
            "updated_at": jsonable(role.updated_at)}


def _role(work: Work, role_id: Any) -> Role:
    rid = parse_id(role_id)
    role = None if rid is None else work.session.scalar(
        sa.select(Role).where(Role.tenant_id == work.tenant_id, Role.id == rid))
    if role is None:
        raise not_found("role")
    return role


def _role_named(work: Work, name: str, except_id: uuid.UUID | None) -> bool:
    query = sa.select(Role.id).where(Role.tenant_id == work.tenant_id, sa.func.lower(Role.name) == name.lower())
    if except_id is not None:
        query = query.where(Role.id != except_id)
    return work.session.scalar(query.limit(1)) is not None


def _role_taken(name: str) -> Conflict:
    return Conflict(f"a role named '{name}' already exists", code="role_exists",
                    fields={"name": "already exists"})


def get_role(work: Work, role_id: Any) -> dict[str, Any]:
    return role_out(work, _role(work, role_id))


def list_roles(work: Work, query_data: Any) -> dict[str, Any]:
    q = parse(RoleQuery, query_data)
    query = sa.select(Role).where(Role.tenant_id == work.tenant_id)
    return _page(work, query, (Role.name, Role.id), q.cursor, q.limit, role_out)


def create_role(work: Work, data: Any) -> dict[str, Any]:
    work.lock()
    body = parse(RoleCreate, data)
    problems = R.validate_rights(body.rights)
    if problems:
        raise invalid(problems)
    if _role_named(work, body.name, None):
        raise _role_taken(body.name)
    role = Role(tenant_id=work.tenant_id, id=uuid.uuid4(), name=body.name, rights=R.granted(body.rights))
    work.session.add(role)
    work.session.flush()
    work.session.refresh(role)
    work.journal("role", role.id, "create", created({"name": role.name, "rights": role.rights}))
    work.org_changed()
    return role_out(work, role)


def update_role(work: Work, role_id: Any, data: Any) -> dict[str, Any]:
    """``rights`` merges: the codes given change, the others keep their scope."""
    work.lock()
    role = _role(work, role_id)
    body = parse(RoleUpdate, data)
    given = body.model_fields_set
    if "name" in given and body.name is None:
        raise invalid({"name": "may not be null"})
    if "rights" in given and body.rights is None:
        raise invalid({"rights": "may not be null"})
    if body.rights:
        problems = R.validate_rights(body.rights)
        if problems:
            raise invalid(problems)
    name = body.name if body.name is not None else role.name
    rights = R.granted({**(role.rights or {}), **(body.rights or {})})
    changes: dict[str, Any] = {}
    if name != role.name:
        if _role_named(work, name, role.id):
            raise _role_taken(name)
        changes["name"] = {"old": role.name, "new": name}
    old_rights = R.complete(role.rights or {})
    new_rights = R.complete(rights)
    rights_diff = {code: {"old": old_rights[code], "new": new_rights[code]}
                   for code in new_rights if old_rights[code] != new_rights[code]}
    if rights_diff:
        changes["rights"] = rights_diff
    if not changes:
        return role_out(work, role)
    role.name, role.rights = name, rights
    role.updated_at = _now()
    work.session.flush()
    if any(code in rights_diff for code in R.ADMIN_RIGHTS):
        guards.ensure_an_admin_remains(work.session, work.tenant_id, "take these rights from the role")
    work.journal("role", role.id, "update", changes)
    work.org_changed()
    return role_out(work, role)


def delete_role(work: Work, role_id: Any) -> None:
    work.lock()
    role = _role(work, role_id)
    used = work.session.scalar(sa.select(sa.func.count()).select_from(Position).where(
        Position.tenant_id == work.tenant_id, Position.role_id == role.id)) or 0
    if used:
        raise Conflict(f"the role is assigned to {used} position(s); give them another role first",
                       code="role_in_use", details={"positions": used})
    work.session.delete(role)
    work.session.flush()
    work.journal("role", role.id, "delete", {"name": {"old": role.name, "new": None}})
    work.org_changed()


# -- positions ------------------------------------------------------------

def _position_rows(work: Work, positions: list[Position]) -> dict[uuid.UUID, tuple[str, str, int]]:
    """Department name, role name and the number of holders of each position."""
    if not positions:
        return {}
    t = work.tenant_id
    depts = dict(work.session.execute(sa.select(Department.id, Department.name).where(
        Department.tenant_id == t, Department.id.in_({p.department_id for p in positions}))).all())
    roles = dict(work.session.execute(sa.select(Role.id, Role.name).where(
        Role.tenant_id == t, Role.id.in_({p.role_id for p in positions}))).all())
    holders = dict(work.session.execute(
        sa.select(UserPosition.position_id, sa.func.count())
        .where(UserPosition.tenant_id == t, UserPosition.position_id.in_([p.id for p in positions]))
        .group_by(UserPosition.position_id)).all())
    return {p.id: (depts.get(p.department_id, ""), roles.get(p.role_id, ""), int(holders.get(p.id, 0)))
            for p in positions}


def position_out(work: Work, p: Position, names: tuple[str, str, int] | None = None) -> dict[str, Any]:
    dept_name, role_name, holders = names or _position_rows(work, [p])[p.id]
    return {"id": str(p.id), "title": p.title, "department_id": str(p.department_id), "department_name": dept_name,
            "role_id": str(p.role_id), "role_name": role_name, "holders": holders,
            "created_at": jsonable(p.created_at), "updated_at": jsonable(p.updated_at)}


def _position(work: Work, position_id: Any) -> Position:
    pid = parse_id(position_id)
    pos = None if pid is None else work.session.scalar(
        sa.select(Position).where(Position.tenant_id == work.tenant_id, Position.id == pid))
    if pos is None:
        raise not_found("position")
    return pos


def _check_refs(work: Work, department_id: uuid.UUID | None, role_id: uuid.UUID | None) -> None:
    problems = {}
    if department_id is not None and work.session.scalar(sa.select(Department.id).where(
            Department.tenant_id == work.tenant_id, Department.id == department_id)) is None:
        problems["department_id"] = "no such department"
    if role_id is not None and work.session.scalar(sa.select(Role.id).where(
            Role.tenant_id == work.tenant_id, Role.id == role_id)) is None:
        problems["role_id"] = "no such role"
    if problems:
        raise invalid(problems)


def _title_taken(work: Work, department_id: uuid.UUID, title: str, except_id: uuid.UUID | None) -> bool:
    query = sa.select(Position.id).where(Position.tenant_id == work.tenant_id, Position.department_id == department_id,
                                         sa.func.lower(Position.title) == title.lower())
    if except_id is not None:
        query = query.where(Position.id != except_id)
    return work.session.scalar(query.limit(1)) is not None


def _position_taken(title: str) -> Conflict:
    return Conflict(f"the department already has a position titled '{title}'", code="position_exists",
                    fields={"title": "already exists in this department"})


def get_position(work: Work, position_id: Any) -> dict[str, Any]:
    return position_out(work, _position(work, position_id))


def list_positions(work: Work, query_data: Any) -> dict[str, Any]:
    q = parse(PositionQuery, query_data)
    query = sa.select(Position).where(Position.tenant_id == work.tenant_id)
    if q.department_id is not None:
        query = query.where(Position.department_id == q.department_id)
    if q.role_id is not None:
        query = query.where(Position.role_id == q.role_id)
    page = _page(work, query, (Position.title, Position.id), q.cursor, q.limit, lambda w, p: p)
    positions: list[Position] = page["items"]
    names = _position_rows(work, positions)
    page["items"] = [position_out(work, p, names[p.id]) for p in positions]
    return page


def create_position(work: Work, data: Any) -> dict[str, Any]:
    work.lock()
    body = parse(PositionCreate, data)
    _check_refs(work, body.department_id, body.role_id)
    if _title_taken(work, body.department_id, body.title, None):
        raise _position_taken(body.title)
    pos = Position(tenant_id=work.tenant_id, id=uuid.uuid4(), title=body.title, department_id=body.department_id,
                   role_id=body.role_id)
    work.session.add(pos)
    work.session.flush()
    work.session.refresh(pos)
    work.journal("position", pos.id, "create", created(
        {"title": pos.title, "department_id": pos.department_id, "role_id": pos.role_id}))
    work.org_changed()
    return position_out(work, pos)


def update_position(work: Work, position_id: Any, data: Any) -> dict[str, Any]:
    work.lock()
    pos = _position(work, position_id)
    body = parse(PositionUpdate, data)
    given = body.model_fields_set
    for name in given:
        if getattr(body, name) is None:
            raise invalid({name: "may not be null"})
    _check_refs(work, body.department_id, body.role_id)
    before = {"title": pos.title, "department_id": pos.department_id, "role_id": pos.role_id}
    after = {**before, **{name: getattr(body, name) for name in given}}
    changes = diff(before, after)
    if not changes:
        return position_out(work, pos)
    if _title_taken(work, after["department_id"], after["title"], pos.id):
        raise _position_taken(after["title"])
    pos.title, pos.department_id, pos.role_id = after["title"], after["department_id"], after["role_id"]
    pos.updated_at = _now()
    work.session.flush()
    if "role_id" in changes:
        guards.ensure_an_admin_remains(work.session, work.tenant_id, "give this position another role")
    work.journal("position", pos.id, "update", changes)
    work.org_changed()
    return position_out(work, pos)


def delete_position(work: Work, position_id: Any) -> None:
    work.lock()
    pos = _position(work, position_id)
    holders = work.session.scalar(sa.select(sa.func.count()).select_from(UserPosition).where(
        UserPosition.tenant_id == work.tenant_id, UserPosition.position_id == pos.id)) or 0
    if holders:
        raise Conflict(f"the position is held by {holders} user(s); take it from them first",
                       code="position_in_use", details={"holders": holders})
    work.session.delete(pos)
    work.session.flush()
    work.journal("position", pos.id, "delete", {"title": {"old": pos.title, "new": None}})
    work.org_changed()
