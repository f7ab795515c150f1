"""HTTP schemas of the users area (org structure, roles, rights, users,
journal). Requests are checked for shape here; the users service applies
the business rules (password policy, uniqueness, time zones) and names the
field it refuses."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ID = Field(description="UUID")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(default=None, ge=1, le=500, description="Page size")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")


# -- rights ---------------------------------------------------------------

class RightOut(BaseModel):
    code: str = Field(description="<entity>.<action>")
    title: str
    scopes: list[str] = Field(description="Scopes the right takes, least to most permissive")


class RightList(BaseModel):
    items: list[RightOut]
    next_cursor: str | None = None


# -- roles ----------------------------------------------------------------

class RoleCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    rights: dict[str, str] = Field(default_factory=dict,
                                   description='{"<right>": "<scope>"}; missing rights are "none"')


class RoleUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rights: dict[str, str] | None = Field(
        default=None, description="Merged into the role's rights: the codes given change, the others stay")


class RoleOut(BaseModel):
    id: str
    name: str
    rights: dict[str, str] = Field(description="Every right of the catalogue with its scope")
    builtin: str | None = Field(description="admin, manager or employee for the roles a new instance ships")
    created_at: str
    updated_at: str


class RoleList(BaseModel):
    items: list[RoleOut]
    next_cursor: str | None


class RoleQuery(_Query):
    pass


# -- departments ----------------------------------------------------------

class DepartmentCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, description="Parent department; the organisation root when omitted")


class DepartmentUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, description="Moves the department (never under its own descendant)")


class DepartmentOut(BaseModel):
    id: str
    name: str
    parent_id: str | None
    is_root: bool = Field(description="The organisation itself (the tree's root)")
    created_at: str
    updated_at: str


class DepartmentList(BaseModel):
    items: list[DepartmentOut]
    next_cursor: str | None


class DepartmentQuery(_Query):
    parent_id: str | None = Field(default=None, description="Only the children of this department")


# -- positions ------------------------------------------------------------

class PositionCreate(_Body):
    title: str = Field(min_length=1, max_length=200)
    department_id: str
    role_id: str


class PositionUpdate(_Body):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    department_id: str | None = None
    role_id: str | None = None


class PositionOut(BaseModel):
    id: str
    title: str
    department_id: str
    department_name: str
    role_id: str
    role_name: str
    holders: int = Field(description="How many users hold the position")
    created_at: str
    updated_at: str


class PositionList(BaseModel):
    items: list[PositionOut]
    next_cursor: str | None


class PositionQuery(_Query):
    department_id: str | None = None
    role_id: str | None = None


# -- users ----------------------------------------------------------------

class UserCreate(_Body):
    full_name: str = Field(min_length=1, max_length=300, examples=["Уваров Андрей Алексеевич"])
    login: str = Field(min_length=1, max_length=64, description="Unique per instance, case-insensitively",
                       examples=["uvarov"])
    email: str | None = Field(default=None, max_length=320, examples=["a.uvarov@testmail.ts"])
    password: str = Field(max_length=1024,
                          description="At least 10 characters with digits, upper- and lower-case letters")
    password_confirm: str = Field(max_length=1024, description="The password again")
    position_ids: list[str] = Field(default_factory=list, max_length=100)
    timezone: str = Field(default="Europe/Moscow", description="IANA time zone name", examples=["Europe/Samara"])
    active: bool = True
    sip_enabled: bool = False


class UserUpdate(_Body):
    full_name: str | None = Field(default=None, min_length=1, max_length=300)
    login: str | None = Field(default=None, min_length=1, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1024, description="Together with password_confirm")
    password_confirm: str | None = Field(default=None, max_length=1024)
    position_ids: list[str] | None = Field(default=None, max_length=100, description="Replaces the user's positions")
    timezone: str | None = None
    active: bool | None = Field(default=None, description="false blocks login and ends the user's sessions")
    sip_enabled: bool | None = None


class UserPositionOut(BaseModel):
    id: str
    title: str
    department_id: str
    department_name: str
    role_id: str
    role_name: str


class UserOut(BaseModel):
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


class UserList(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class UserQuery(_Query):
    q: str | None = Field(default=None, max_length=200, description="Part of the name, login or e-mail")
    department_id: str | None = Field(default=None, description="Holders of a position in it or its descendants")
    position_id: str | None = None
    active: bool | None = None
    include_deleted: bool | None = Field(default=None, description="Also list deleted users")


# -- journal --------------------------------------------------------------

class JournalActor(BaseModel):
    id: str | None
    login: str | None
    full_name: str | None


class JournalEntryOut(BaseModel):
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


class JournalList(BaseModel):
    items: list[JournalEntryOut]
    next_cursor: str | None


class JournalQuery(_Query):
    entity: str | None = Field(default=None, description="user, department, position, role, …")
    entity_id: str | None = None
    actor: str | None = Field(default=None, description="Id of the user who made the change")
    action: str | None = Field(default=None, description="create, update, delete, locked_out, …")
    since: str | None = Field(default=None, description="ISO 8601, inclusive")
    until: str | None = Field(default=None, description="ISO 8601, exclusive")
