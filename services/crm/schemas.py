"""How the crm service reads its RPC input: the request models are the
contracts (``contracts.crm``), shared with the gateway; here they are
applied (``parse``: bad input is a ``ValidationFailed`` naming each field)
together with the list rules of each kind."""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.crm import COMMON, DEFAULT_SORT, FILTERS, SORTS, ListQuery
from crm_shared.errors import ValidationFailed, field_problems

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """``model`` from RPC data; ``ValidationFailed`` naming each bad field."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise validation_failed(exc) from None


def validation_failed(exc: ValidationError) -> ValidationFailed:
    return invalid(field_problems(exc))


def invalid(fields: dict[str, str]) -> ValidationFailed:
    return ValidationFailed(f"invalid value for {', '.join(fields)}", fields=fields, code="validation_failed")


def parse_list_query(kind: str, data: Any) -> ListQuery:
    query = parse(ListQuery, data)
    problems = {name: f"{kind} cannot be filtered by {name}"
                for name in sorted(query.model_fields_set - COMMON - FILTERS[kind])}
    if kind == "communications" and query.q:
        problems["q"] = "communications are filtered by contact_id, counterparty_id, kind or responsible_id"
    sort = query.sort or DEFAULT_SORT[kind]
    if sort.lstrip("-") not in SORTS[kind]:
        problems["sort"] = "one of: " + ", ".join(f"{k}, -{k}" for k in SORTS[kind])
    if query.kind is not None and "kind" not in problems:
        kinds = ("legal", "individual") if kind == "counterparties" else ("call", "email")
        if query.kind not in kinds:
            problems["kind"] = f"one of: {', '.join(kinds)}"
    if problems:
        raise invalid(problems)
    query.sort = sort
    return query
