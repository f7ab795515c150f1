"""Contracts of CSV (and Excel) import and export: the job and mapping
answers, the query parameters, and the duplicate keys both sides use.

The file itself is the request body (CSV in UTF-8 or windows-1251, or
``.xlsx``); a mapping names, for each column header of the file, the field
it fills (``{"ФИО": "full_name", "Телефон": "phones"}``), and ``""`` for a
column to leave out. ``duplicate_keys`` is the one definition of "the same
record" (e-mail or phone for contacts, ИНН+КПП for counterparties, article
for products), applied within the file by the onec service and against the
tenant's records by the crm service."""
from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from contracts import inn as inn_rules
from contracts.base import Answer, Contract, Cursor, UtcDateTime
from contracts.phones import try_normalize_email, try_normalize_phone

Entity = Literal["contacts", "counterparties", "products"]
ENTITIES: tuple[str, ...] = ("contacts", "counterparties", "products")
Policy = Literal["skip", "update", "create"]
Outcome = Literal["created", "updated", "skipped", "rejected"]
JobStatus = Literal["queued", "running", "done", "failed", "reverting", "reverted"]

Mapping = dict[Annotated[str, StringConstraints(max_length=300)], Annotated[str, StringConstraints(max_length=64)]]


def _mapping(value: Any) -> Any:
    """The mapping parameter is a JSON object in the query string."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError('must be a JSON object such as {"ФИО": "full_name"}') from None
        if not isinstance(value, dict) or len(value) > 500:
            raise ValueError("must be a JSON object of at most 500 columns")
        return value
    raise ValueError("must be a JSON object")


class ImportQuery(Contract):
    entity: Entity = Field(description="What the rows are")
    dry_run: bool = Field(default=False, description="Report what the import would do, per row, writing nothing")
    duplicates: Policy = Field(default="skip", description=(
        "What to do with a row that repeats a record (contacts: e-mail or phone; counterparties: ИНН+КПП; "
        "products: article), in the file or in the CRM: skip it, update that record, or create another"))
    # at most 500 characters, so that the request line stays within the web server's 8 KB
    # however the characters percent-encode: name wide files' columns by number ("#12")
    mapping: Annotated[str, StringConstraints(max_length=500)] | None = Field(default=None, description=(
        'JSON object: column -> field, a column named by its header or by its number ("#1" is the first); '
        '"" leaves a column out; the suggested mapping when omitted'))
    file_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = Field(
        default=None, description="Shown in the job and the journal")

    def mapping_object(self) -> dict[str, str] | None:
        return _mapping(self.mapping)

    @field_validator("mapping")
    @classmethod
    def _valid_mapping(cls, value: str | None) -> str | None:
        parsed = _mapping(value)
        if parsed is not None and not all(isinstance(k, str) and isinstance(v, (str, type(None)))
                                          for k, v in parsed.items()):
            raise ValueError("column headers map to field names (strings)")
        return value


class SuggestQuery(Contract):
    entity: Entity


class ExportQuery(Contract):
    entity: Entity
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        default=None, description="The list's search words: the export holds what the list shows")
    responsible_id: uuid.UUID | None = None
    format: Literal["excel", "plain"] = Field(default="excel", description=(
        "excel: UTF-8 with a BOM and ';' (opens right in a Russian-locale Excel); plain: UTF-8 and ','"))


class RowsQuery(Contract):
    outcome: Outcome | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Cursor | None = None


# -- answers ------------------------------------------------------------------------

class FieldOut(Answer):
    name: str
    title: str
    required: bool
    many: bool = Field(description="Takes several columns, and several values in a cell split by ',' or ';'")


class MappingOut(Answer):
    entity: str
    format: Literal["csv", "xlsx"]
    encoding: str | None = Field(description="utf-8, utf-8-sig or windows-1251 (csv)")
    delimiter: str | None = Field(description="';', ',' or a tab (csv)")
    headers: list[str]
    mapping: dict[str, str] = Field(description="column header -> field, for the columns recognised")
    unmapped: list[str] = Field(description="column headers no field was found for")
    missing: list[str] = Field(description="required fields no column maps to")
    fields: list[FieldOut]
    sample: list[list[str]] = Field(description="The first rows, as read")


class JobAccepted(Answer):
    job_id: str


class RevertOut(Answer):
    deleted: int
    restored: int
    left: int = Field(description="records left alone: changed after the import, used elsewhere or gone")
    left_records: list[dict[str, str]] = Field(description="{record_id, reason}, the first 1000")


class ImportJobOut(Answer):
    id: str
    entity: str
    file_name: str | None
    status: JobStatus
    dry_run: bool
    policy: Policy
    mapping: dict[str, str] = Field(description="column header -> field, as the import used it")
    unmapped: list[str] = Field(description="the file's columns left out")
    read: int = Field(description="rows read so far")
    total: int = Field(description="data rows in the file")
    created: int
    updated: int
    skipped: int
    duplicates: int = Field(description="rows that repeat a record (in the file or the CRM), whatever was done")
    rejected: int
    progress: int = Field(description="percent of the rows done")
    errors_url: str | None = Field(description="the rejected rows with a reason column, when there are any")
    error: str | None = Field(description="why the job failed")
    reverted: RevertOut | None
    created_at: UtcDateTime
    finished_at: UtcDateTime | None


class RowOut(Answer):
    row: int = Field(description="the row's number in the file (the header is row 1)")
    outcome: Outcome
    record_id: str | None = Field(description="the record made or updated (null in a dry run's creations)")
    duplicate: bool
    reason: str | None


# -- what "the same record" is ------------------------------------------------------

def duplicate_keys(entity: str, data: dict[str, Any]) -> list[str]:
    """The keys by which a row (in the contract's fields) is the same record as another."""
    keys: list[str] = []
    if entity == "contacts":
        for email in data.get("emails") or ():
            key = try_normalize_email(email)
            if key and key not in keys:
                keys.append(key)
        for phone in data.get("phones") or ():
            key = try_normalize_phone(phone)
            if key and key not in keys:
                keys.append(key)
    elif entity == "counterparties":
        inn = inn_rules.clean(data.get("inn"))
        if inn:
            keys.append(f"inn:{inn}/{inn_rules.clean(data.get('kpp')) or ''}")
    elif entity == "products":
        article = str(data.get("article") or "").strip().lower()
        if article:
            keys.append(f"article:{article}")
    return keys


# -- between the onec and crm services --------------------------------------------------

class _BatchPart(BaseModel):
    # not a Contract: ``data`` is checked field by field by the entity's create contract (a
    # Contract) when the crm service applies it, so it is not walked twice per row
    model_config = ConfigDict(extra="forbid")


class SameAs(_BatchPart):
    """The earlier row of the file this row repeats (in an earlier batch: its record, if any,
    is found by the same keys)."""

    row: int


class BatchRow(_BatchPart):
    row: int = Field(ge=2)
    data: dict[str, Any]
    same_as: SameAs | None = None


class ImportBatch(Contract):
    import_id: uuid.UUID
    batch: int = Field(ge=0)
    policy: Policy
    dry_run: bool
    rows: list[BatchRow] = Field(max_length=5000)
