"""The default instance of a new tenant (DESIGN section 4, the quick-start
guide): organisation "Компания", department "Администраторы", position
"сотрудник отдела администрирования" with role "Администратор", the ordinary
roles "Руководитель" and "Сотрудник", and the user ``admin``."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from services.users import rights as R
from services.users.models import Department, Instance, Position, Role, User, UserPosition
from services.users.work import Work, created

ORGANISATION_NAME = "Компания"
ADMIN_DEPARTMENT = "Администраторы"
ADMIN_POSITION = "сотрудник отдела администрирования"
ADMIN_LOGIN = "admin"
ADMIN_FULL_NAME = "Администратор"
ADMIN_TIMEZONE = "Europe/Moscow"
BUILTIN_ADMIN_POSITION = "admin"


def _role(work: Work, kind: str) -> Role:
    role = work.session.scalar(sa.select(Role).where(Role.tenant_id == work.tenant_id, Role.builtin == kind))
    if role is None:
        name, rights = R.BUILTIN_ROLES[kind]
        taken = work.session.scalar(sa.select(Role.id).where(Role.tenant_id == work.tenant_id,
                                                             sa.func.lower(Role.name) == name.lower()))
        role = Role(tenant_id=work.tenant_id, id=uuid.uuid4(), name=name if taken is None else f"{name} ({kind})",
                    rights=R.granted(rights), builtin=kind)
        work.session.add(role)
        work.session.flush()
        work.journal("role", role.id, "create", created({"name": role.name, "rights": role.rights}))
    return role


def _department(work: Work, parent_id: uuid.UUID | None, name: str) -> Department:
    query = sa.select(Department).where(Department.tenant_id == work.tenant_id)
    query = query.where(Department.parent_id.is_(None)) if parent_id is None else query.where(
        Department.parent_id == parent_id, sa.func.lower(Department.name) == name.lower())
    dept = work.session.scalar(query.limit(1))
    if dept is None:
        dept = Department(tenant_id=work.tenant_id, id=uuid.uuid4(), parent_id=parent_id, name=name)
        work.session.add(dept)
        work.session.flush()
        work.journal("department", dept.id, "create", created({"name": name, "parent_id": parent_id}))
    return dept


def _admin_position(work: Work, department: Department, role: Role) -> Position:
    pos = work.session.scalar(sa.select(Position).where(Position.tenant_id == work.tenant_id,
                                                        Position.builtin == BUILTIN_ADMIN_POSITION))
    if pos is None:
        pos = work.session.scalar(sa.select(Position).where(
            Position.tenant_id == work.tenant_id, Position.department_id == department.id,
            sa.func.lower(Position.title) == ADMIN_POSITION.lower()))
    if pos is None:
        pos = Position(tenant_id=work.tenant_id, id=uuid.uuid4(), title=ADMIN_POSITION, department_id=department.id,
                       role_id=role.id, builtin=BUILTIN_ADMIN_POSITION)
        work.session.add(pos)
        work.session.flush()
        work.journal("position", pos.id, "create", created(
            {"title": pos.title, "department_id": department.id, "role_id": role.id}))
    return pos


def bootstrap_tenant(work: Work, company_name: str, admin_password: str) -> dict[str, Any]:
    """Creates what is missing of the default instance and (re)sets admin's
    password. Idempotent: a retried tenant creation ends with the same
    instance and the newest password."""
    assert work.hasher is not None
    password_hash = work.hasher.hash(admin_password)
    work.lock()
    t = work.tenant_id
    if work.session.get(Instance, t) is None:
        work.session.add(Instance(tenant_id=t, company_name=company_name))
    admin_role = _role(work, R.ROLE_ADMIN)
    _role(work, R.ROLE_MANAGER)
    _role(work, R.ROLE_EMPLOYEE)
    root = _department(work, None, ORGANISATION_NAME)
    admins = _department(work, root.id, ADMIN_DEPARTMENT)
    position = _admin_position(work, admins, admin_role)
    admin = work.session.scalar(sa.select(User).where(
        User.tenant_id == t, sa.func.lower(User.login) == ADMIN_LOGIN, User.deleted_at.is_(None)).with_for_update())
    if admin is None:
        admin = User(tenant_id=t, id=uuid.uuid4(), login=ADMIN_LOGIN, full_name=ADMIN_FULL_NAME, email=None,
                     password_hash=password_hash, timezone=ADMIN_TIMEZONE, active=True, sip_enabled=False)
        work.session.add(admin)
        work.session.flush()
        work.session.add(UserPosition(tenant_id=t, user_id=admin.id, position_id=position.id))
        work.journal("user", admin.id, "create", created({
            "login": ADMIN_LOGIN, "full_name": ADMIN_FULL_NAME, "timezone": ADMIN_TIMEZONE, "active": True,
            "password": "set", "position_ids": [str(position.id)]}))
    else:
        admin.password_hash = password_hash
        admin.password_changed_at = dt.datetime.now(dt.timezone.utc)
        admin.updated_at = admin.password_changed_at
        work.journal("user", admin.id, "password_reset", {"password": {"old": "set", "new": "set"}})
        work.emit("user_password_changed", {"tenant_id": t, "user_id": admin.id}, admin.id)
    work.org_changed()
    return {"admin_user_id": str(admin.id), "login": admin.login}
