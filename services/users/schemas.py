"""Input schemas of the users service (pydantic), kept apart from the table
models. RPC arguments are validated here; the answer to bad input is a
``ValidationFailed`` naming each field."""
from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from crm_shared.errors import ValidationFailed, field_problems

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


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class UserCreate(Input):
    full_name: FullName
    login: str
    email: str | None = None
    password: Secret | None = None
    password_confirm: Secret | None = None
    position_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    timezone: str = DEFAULT_TIMEZONE
    active: bool = True
    sip_enabled: bool = False

    _login = field_validator("login")(_check_login)
    _email = field_validator("email")(_check_email)
    _tz = field_validator("timezone")(_check_timezone)


class UserUpdate(Input):
    full_name: FullName | None = None
    login: str | None = None
    email: str | None = None
    password: Secret | None = None
    password_confirm: Secret | None = None
    position_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    timezone: str | None = None
    active: bool | None = None
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


class Page(Input):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None


class UserQuery(Page):
    q: str | None = Field(default=None, max_length=200)
    department_id: uuid.UUID | None = None
    position_id: uuid.UUID | None = None
    active: bool | None = None
    include_deleted: bool = False


class DepartmentCreate(Input):
    name: Name
    parent_id: uuid.UUID | None = None


class DepartmentUpdate(Input):
    name: Name | None = None
    parent_id: uuid.UUID | None = None


class DepartmentQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)
    parent_id: uuid.UUID | None = None


class PositionCreate(Input):
    title: Name
    department_id: uuid.UUID
    role_id: uuid.UUID


class PositionUpdate(Input):
    title: Name | None = None
    department_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None


class PositionQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)
    department_id: uuid.UUID | None = None
    role_id: uuid.UUID | None = None


class RoleCreate(Input):
    name: Name
    rights: dict[str, str] = Field(default_factory=dict)


class RoleUpdate(Input):
    name: Name | None = None
    rights: dict[str, str] | None = None


class RoleQuery(Page):
    limit: int = Field(default=100, ge=1, le=500)


class JournalQuery(Page):
    entity: str | None = Field(default=None, max_length=64)
    entity_id: str | None = Field(default=None, max_length=64)
    actor: uuid.UUID | None = None
    action: str | None = Field(default=None, max_length=64)
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


M = TypeVar("M", bound=BaseModel)




def parse(model: type[M], data: Any, extra_problems: dict[str, str] | None = None) -> M:
    """Validates ``data``; raises ``ValidationFailed`` naming every bad field
    (together with ``extra_problems`` found by other checks)."""
    problems = dict(extra_problems or {})
    try:
        result = model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = {**field_problems(exc), **problems}
        raise invalid(problems) from None
    if problems:
        raise invalid(problems)
    return result


def invalid(fields: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(f"invalid value for {', '.join(fields)}", fields=fields)
