"""How the users service reads its RPC input: the request models are the
contracts (``contracts.users``), shared with the gateway; ``parse`` applies
them, and bad input is a ``ValidationFailed`` naming each field."""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.users import utc_offset
from crm_shared.errors import ValidationFailed, field_problems

__all__ = ["invalid", "parse", "utc_offset"]

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
