"""Contracts of the users area: users, departments (a tree), positions,
roles with their rights, the rights catalogue and the audit journal.

The users service applies the rules that need data (uniqueness of logins,
the department tree, the last-admin guard) and the password policy
(``contracts.passwords``) and names the field it refuses."""
from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from contracts.base import Answer, Contract, UtcDateTime, list_of
from contracts.base import Page as _Page

LOGIN_RE = re.compile(r"^[\w][\w.@-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
DEFAULT_TIMEZONE = "Europe/Moscow"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Secret = Annotated[str, StringConstraints(max_length=1024)]


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def utc_offset(name: str, at: dt.datetime | None = None) -> str:
    """The zone's current offset, "+03:00"."""
    offset = (at or dt.datetime.now(dt.timezone.utc)).astimezone(zoneinfo.ZoneInfo(name)).utcoffset()
    minutes = int((offset or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _check_timezone(value: str) -> str:
    value = value.strip()
    if value not in known_timezones():
        raise ValueError("not an IANA time zone name (for example Europe/Moscow)")
    return value


def _check_login(value: str) -> str:
    value = value.strip()
    if not LOGIN_RE.match(value):
        raise ValueError("1-64 letters, digits or . _ - @, starting with a letter or digit")
    return value


def _check_email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value == "":
        return None
    if len(value) > 320 or not EMAIL_RE.match(value):
        raise ValueError("not a valid e-mail address")
    return value


Code = Annotated[str, StringConstraints(max_length=64)]
Rights = dict[Code, Code]
Login = Annotated[str, StringConstraints(max_length=64),
                  Field(description="Unique per instance, case-insensitively: 1-64 letters, digits or . _ - @",
                        examples=["uvarov"])]
Email = Annotated[str | None, StringConstraints(max_length=320), Field(examples=["a.uvarov@testmail.ts"])]
Timezone = Annotated[str, StringConstraints(max_length=64),
                     Field(description="IANA time zone name", examples=["Europe/Samara"])]
Page = _Page


class UserCreate(Contract):
    full_name: Annotated[FullName, Field(examples=["Уваров Андрей Алексеевич"])]
    login: Login
    email: Email = None
    password: Secret = Field(description="At least 10 characters with digits, upper- and lower-case letters")
    password_confirm: Secret = Field(description="The password again")
    position_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    timezone: Timezone = DEFAULT_TIMEZONE
    active: bool = True
    sip_enabled: bool = False

    _login = field_validator("login")(_check_login)
    _email = field_validator("email")(_check_email)
    _tz = field_validator("timezone")(_check_timezone)


class UserUpdate(Contract):
    full_name: FullName | None = None
    login: Login | None = None
    email: Email = None
    password: Secret | None = Field(default=None, description="Together with password_confirm")
    password_confirm: Secret | None = None
    position_ids: list[uuid.UUID] | None = Field(default=None, max_length=100,
                                                 description="Replaces the user's positions")
    timezone: Timezone | None = None
    active: bool | None = Field(default=None, description="false blocks login and ends the user's sessions")
    sip_enabled: bool | None = None

    @field_validator("login")
    @classmethod
    def _login(cls, value: str | None) -> str | None:
        return None if value is None else _check_login(value)

    _email = field_validator("email")(_check_email)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class UserQuery(Page):
    q: str | None = Field(default=None, max_length=200, description="Part of the name, login or e-mail")
    department_id: uuid.UUID | None = Field(default=None,
                                            description="Holders of a position in it or its descendants")
    position_id: uuid.UUID | None = None
    active: bool | None = None
    include_deleted: bool = Field(default=False, description="Also list deleted users")


class DepartmentCreate(Contract):
    name: Name
    parent_id: uuid.UUID | None = Field(default=None,
                                        description="Parent department; the organisation root when omitted")


class DepartmentUpdate(Contract):
    name: Name | None = None
    parent_id: uuid.UUID | None = Field(default=None,
                                        description="Moves the department (never under its own descendant)")


class DepartmentQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)
    parent_id: uuid.UUID | None = Field(default=None, description="Only the children of this department")


class PositionCreate(Contract):
    title: Name
    department_id: uuid.UUID
    role_id: uuid.UUID


class PositionUpdate(Contract):
    title: Name | None = None
    department_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None


class PositionQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)
    department_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None


class RoleCreate(Contract):
    name: Name
    rights: Rights = Field(default_factory=dict, description='{"<right>": "<scope>"}; missing rights are "none"')


class RoleUpdate(Contract):
    name: Name | None = None
    rights: Rights | None = Field(
        default=None, description="Merged into the role's rights: the codes given change, the others stay")


class RoleQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)


class RightsQuery(Contract):
    pass


class JournalQuery(Page):
    entity: str | None = Field(default=None, max_length=64, description="user, department, position, role, …")
    entity_id: str | None = Field(default=None, max_length=64)
    actor: uuid.UUID | None = Field(default=None, description="Id of the user who made the change")
    action: str | None = Field(default=None, max_length=64,
                               description="create, update, delete (any source), password_reset, locked_out")
    since: UtcDateTime | None = Field(default=None, description="ISO 8601, inclusive")
    until: UtcDateTime | None = Field(default=None, description="ISO 8601, exclusive")


# -- answers ----------------------------------------------------------------

class RightOut(Answer):
    code: str = Field(description="<entity>.<action>")
    title: str
    scopes: list[str] = Field(description="Scopes the right takes, least to most permissive")


class RoleOut(Answer):
    id: str
    name: str
    rights: dict[str, str] = Field(description="Every right of the catalogue with its scope")
    builtin: str | None = Field(description="admin, manager or employee for the roles a new instance ships")
    created_at: str
    updated_at: str


class DepartmentOut(Answer):
    id: str
    name: str
    parent_id: str | None
    is_root: bool = Field(description="The organisation itself (the tree's root)")
    created_at: str
    updated_at: str


class UserPositionOut(Answer):
    id: str
    title: str
    department_id: str
    department_name: str
    role_id: str
    role_name: str


class PositionOut(UserPositionOut):
    holders: int = Field(description="How many users hold the position")
    created_at: str
    updated_at: str


class UserOut(Answer):
    id: str
    login: str
    full_name: str
    email: str | None
    timezone: str
    timezone_offset: str = Field(description='The zone\'s current UTC offset, e.g. "+03:00"')
    active: bool
    sip_enabled: bool
    deleted: bool
    deleted_at: str | None
    position_ids: list[str]
    positions: list[UserPositionOut]
    password_changed_at: str
    created_at: str
    updated_at: str


class JournalActor(Answer):
    id: str | None
    login: str | None
    full_name: str | None


class JournalEntryOut(Answer):
    id: str
    at: str
    tenant_id: str
    actor: JournalActor | None = Field(description="null for changes made by the system")
    source: str = Field(description="api, bootstrap, or the service whose event it records")
    entity: str
    entity_id: str
    action: str
    changes: dict[str, Any] = Field(description='{field: {"old", "new"}}; secrets show as "***"')
    request_id: str | None


RightList = list_of(RightOut)
RoleList = list_of(RoleOut)
DepartmentList = list_of(DepartmentOut)
PositionList = list_of(PositionOut)
UserList = list_of(UserOut)
JournalList = list_of(JournalEntryOut, "JournalList")
