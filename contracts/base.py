"""What every contract shares.

- ``Contract``: an input (request body or query). Unknown fields are
  refused, and no string anywhere in it (nested lists and dict keys too) may
  hold a character PostgreSQL text cannot store (NUL) or that is not valid
  UTF-8 (a lone surrogate such as ``"\\ud800"``): such input is a 422 naming
  the field, never a database error.
- ``Answer``: an output (documented, not validated on the hot path).
- ``Page``: ``limit`` and ``cursor`` of every list; ``list_of`` builds the
  ``{items, next_cursor}`` answer of a list.
- Every string a contract takes has a maximum length, so an over-long
  value is a 422 stating the limit; ``UtcDateTime`` stores instants as UTC."""
from __future__ import annotations

import datetime as dt
import re
from functools import cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "contains a character that cannot be stored (NUL or an invalid surrogate)"


def has_unstorable(value: Any) -> bool:
    """True when a string in ``value`` (walked through lists and dicts, keys too) cannot be stored."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(has_unstorable(k) or has_unstorable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_unstorable(v) for v in value)
    return False


class Storable(BaseModel):
    """Refuses strings that cannot be stored, naming the field."""

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if has_unstorable(value):
            raise ValueError(UNSTORABLE_MESSAGE)
        return value


class Contract(Storable):
    """A request body or query."""

    model_config = ConfigDict(extra="forbid")


class EventData(Storable):
    """The data of an event another service publishes (fields it adds later are ignored)."""

    model_config = ConfigDict(extra="ignore")


class Answer(BaseModel):
    """A response body."""


# a cursor is base64url text: refusing other characters also keeps a request line within
# the web server's limit (4-byte characters percent-encode to 12 bytes each)
Cursor = Annotated[str, StringConstraints(max_length=1000, pattern=r"^[A-Za-z0-9_=-]*$")]


class Page(Contract):
    limit: int = Field(default=50, ge=1, le=500, description="Page size")
    cursor: Cursor | None = Field(default=None, description="next_cursor of the previous page")


@cache
def list_of(item: type[BaseModel], name: str | None = None) -> type[Answer]:
    """``{items: [item], next_cursor}``, named ``<Item>List`` (``ContactOut`` -> ``ContactList``)."""
    name = name or item.__name__.removesuffix("Out") + "List"
    model: type[Answer] = create_model(
        name, __base__=Answer, __module__=item.__module__,
        items=(list[item], ...),  # type: ignore[valid-type]
        next_cursor=(str | None, Field(default=None, description="Pass as cursor for the next page; null: last")))
    return model


class Count(Answer):
    count: int = Field(description="How many records the list shows over all its pages")


def blank_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    try:
        # PostgreSQL takes offsets up to ±15:59 only: every instant is stored as UTC
        return value.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("out of the range of dates") from None


UtcDateTime = Annotated[dt.datetime, AfterValidator(_utc),
                        Field(description="ISO 8601; without an offset it is taken as UTC")]
