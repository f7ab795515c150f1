"""The record engine every kind shares: list, count, export, read, create,
update and delete, with the caller's rights inside each query.

- list, count and export run one query each, under the same conditions:
  tenant, the read scope, the filters and ``q``; lists page by keyset over
  (sort key, id), so a page boundary stays put when records are inserted;
- a single read is the same query by id: a record outside the read scope
  (or of another tenant) is 404;
- a write first reads the record under the read scope, locking it, with the
  write scope computed in the same query: invisible is 404, visible but not
  writable is 403 naming the right (``contacts.update``);
- creates need the create right; ``responsible_id`` (the caller by default)
  must be within the caller's scope of that right (own: the caller;
  department: the caller's department users; all: any active user);
- every link field names a record of the tenant the caller may read, or the
  answer is 422 naming the field;
- every change writes a ``record_changed`` event to the outbox."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any, Iterable

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from contracts import journal
from contracts.crm import ListQuery
from contracts.phones import try_normalize_email, try_normalize_phone
from crm_shared import scopes
from crm_shared.errors import Conflict, Forbidden, NotFound
from services.crm import search as S
from services.crm.models import CreateRequest, MatchKey
from services.crm.schemas import invalid, parse, parse_list_query
from services.crm.work import Work, created, decode_cursor, diff, encode_cursor, jsonable, parse_id, removed

EXPORT_CHUNK = 1000
SINGULAR = {"counterparties": "counterparty", "contacts": "contact", "products": "product", "invoices": "invoice",
            "payments": "payment"}

# unique index -> (error code, field, message)
UNIQUE_ERRORS: dict[str, tuple[str, str, str]] = {
    "uq_counterparties_inn_kpp": ("inn_kpp_taken", "inn", "a counterparty with this ИНН and КПП exists"),
    "uq_invoices_number": ("number_taken", "number", "an invoice with this number exists"),
    "uq_counterparties_external_id": ("external_id_taken", "external_id", "this external_id is taken"),
    "uq_contacts_external_id": ("external_id_taken", "external_id", "this external_id is taken"),
    "uq_products_external_id": ("external_id_taken", "external_id", "this external_id is taken"),
    "uq_invoices_external_id": ("external_id_taken", "external_id", "this external_id is taken"),
    "uq_payments_external_id": ("external_id_taken", "external_id", "this external_id is taken"),
}


class Kind:
    """What one kind of record adds to the engine (subclassed per kind)."""

    name: str = ""            # "contacts": the URL segment and the rights' entity
    entity: str = ""          # "contact": the journal's entity
    model: Any = None
    create_schema: type[BaseModel] | None = None
    update_schema: type[BaseModel] | None = None
    not_null: frozenset[str] = frozenset()  # fields an update may not clear
    sort_columns: dict[str, Any] = {}
    responsible_column: str = "responsible_id"
    # lists read plain rows of the columns (no ORM objects); a kind whose out() needs
    # relationships (invoice lines) reads objects
    lists_plain_rows: bool = True
    _listed: list[Any] | None = None

    def right(self, action: str) -> str:
        return f"{self.name}.{action}"

    def listed_columns(self) -> list[Any]:
        """The columns a list reads: every mapped column but the search text, ids as text
        (the answer shows them so; no UUID object is made and turned back into text)."""
        if self._listed is None:
            columns = []
            for key in sa.inspect(self.model).column_attrs.keys():
                if key == "search":
                    continue
                attr = getattr(self.model, key)
                columns.append((sa.cast(attr, sa.Text) if isinstance(attr.type, sa.Uuid) else attr).label(key))
            self._listed = columns
        return self._listed

    # -- hooks ------------------------------------------------------------
    def filters(self, work: Work, query: ListQuery) -> list[Any]:
        m = self.model
        conditions: list[Any] = []
        for name in ("responsible_id", "counterparty_id", "contact_id", "invoice_id", "status", "active", "kind"):
            value = getattr(query, name)
            if value is not None and name in query.model_fields_set:
                conditions.append(getattr(m, name) == value)
        if query.q and hasattr(m, "search"):
            conditions.extend(S.condition(m.search, query.q))
        return conditions

    def values(self, row: Any) -> dict[str, Any]:
        """The record's fields as the journal shows them."""
        raise NotImplementedError

    def out(self, row: Any) -> dict[str, Any]:
        data = self.values(row)
        data.update(id=row.id, responsible_id=row.responsible_id, created_by=row.created_by,
                    created_at=row.created_at, updated_at=row.updated_at)
        return shallow_jsonable(data)

    def out_many(self, work: Work, rows: list[Any]) -> list[dict[str, Any]]:
        return [self.out(row) for row in rows]

    def exported(self, data: dict[str, Any]) -> dict[str, Any]:
        """A listed row (its columns by name) for the CSV export, as it is: no per-value
        conversion (the wire codec writes datetimes and decimals), ~20 times cheaper than ``out``."""
        return data

    def apply(self, work: Work, row: Any, data: dict[str, Any], creating: bool) -> None:
        """Sets the given fields, checking links and rules between fields."""
        for name, value in data.items():
            setattr(row, name, value)

    def search_text(self, row: Any) -> str:
        return ""

    def after_write(self, work: Work, row: Any, before: dict[str, Any] | None) -> None:
        pass

    def before_delete(self, work: Work, row: Any) -> None:
        pass

    def after_delete(self, work: Work, row: Any) -> None:
        pass


# -- helpers the kinds use --------------------------------------------------------

_PLAIN = (str, int, float, bool, type(None))


def shallow_jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """``jsonable`` for a record's answer, walking only the values that need it (most are plain)."""
    for key, value in data.items():
        if isinstance(value, _PLAIN):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            continue
        data[key] = jsonable(value)
    return data




def linked(work: Work, model: Any, record_id: Any, kind: str, field: str, lock: bool = False) -> Any:
    """The record a link field names, if it is in the tenant and the caller may
    read it; otherwise 422 naming the field (never telling which of the two)."""
    stmt = sa.select(model).where(model.tenant_id == work.tenant_id, model.id == record_id,
                                  work.condition(f"{kind}.read", model.responsible_id))
    if lock:
        stmt = stmt.with_for_update()
    row = work.session.scalars(stmt).first()
    if row is None:
        raise invalid({field: f"no such {SINGULAR.get(kind, kind)} (or you may not see it)"})
    return row


def count_where(work: Work, model: Any, *conditions: Any) -> int:
    return int(work.session.scalar(sa.select(sa.func.count()).select_from(model)
                                   .where(model.tenant_id == work.tenant_id, *conditions)) or 0)


def in_use(what: dict[str, int], entity: str) -> Conflict:
    parts = ", ".join(f"{n} {name}" for name, n in what.items() if n)
    return Conflict(f"this {entity} is used by {parts}; remove those links first (or deactivate it)",
                    code="in_use", details={"used_by": {k: v for k, v in what.items() if v}})


def replace_match_keys(work: Work, entity: str, record_id: uuid.UUID, phones: Iterable[str],
                       emails: Iterable[str]) -> None:
    session = work.session
    session.execute(sa.delete(MatchKey).where(MatchKey.tenant_id == work.tenant_id, MatchKey.entity == entity,
                                              MatchKey.record_id == record_id))
    keys = {k for k in (try_normalize_phone(p) for p in phones) if k}
    keys |= {k for k in (try_normalize_email(e) for e in emails) if k}
    if keys:
        session.execute(insert(MatchKey).values([
            {"tenant_id": work.tenant_id, "value": key, "entity": entity, "record_id": record_id}
            for key in sorted(keys)]).on_conflict_do_nothing())


def drop_match_keys(work: Work, entity: str, record_id: uuid.UUID) -> None:
    work.session.execute(sa.delete(MatchKey).where(MatchKey.tenant_id == work.tenant_id, MatchKey.entity == entity,
                                                   MatchKey.record_id == record_id))


def unique_conflict(exc: IntegrityError) -> Exception:
    """The 409 of a unique-index violation (the error itself when the index is not a known one)."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or ""
    known = UNIQUE_ERRORS.get(constraint)
    if known is None:
        return exc
    code, field, message = known
    return Conflict(message, code=code, details={"field": field})


def flush(work: Work) -> None:
    """Flushes, turning a unique-index violation into its 409."""
    try:
        work.session.flush()
    except IntegrityError as exc:
        raise unique_conflict(exc) from None


# -- reading ---------------------------------------------------------------------

def _sort(kind: Kind, sort: str) -> tuple[str, Any, bool]:
    key = sort.lstrip("-")
    return key, kind.sort_columns[key], sort.startswith("-")


def _decode_value(column: Any, value: Any) -> Any:
    if value is None:
        return None
    python_type = column.type.python_type
    try:
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(str(value))
        if python_type is dt.date:
            return dt.date.fromisoformat(str(value))
    except ValueError:
        raise invalid({"cursor": "not a cursor this list returned"}) from None
    return str(value)


def _conditions(work: Work, kind: Kind, query: ListQuery) -> list[Any]:
    m = kind.model
    return [m.tenant_id == work.tenant_id, work.filter(kind.right("read"), getattr(m, kind.responsible_column)),
            *kind.filters(work, query)]


def list_records(work: Work, kind: Kind, query_data: Any, limit: int | None = None,
                 exported: bool = False) -> dict[str, Any]:
    """One page; ``limit`` overrides the query's and ``exported`` shapes the items for the CSV
    export (``Kind.exported``)."""
    query = parse_list_query(kind.name, query_data)
    if limit is not None:
        query.limit = limit
    m = kind.model
    assert query.sort is not None
    key, column, desc = _sort(kind, query.sort)
    selected = kind.listed_columns() if kind.lists_plain_rows else [m]
    stmt = sa.select(*selected).where(*_conditions(work, kind, query))
    after = decode_cursor(query.cursor, 3)
    if after is not None:
        if after[0] != query.sort or parse_id(after[2]) is None:
            raise invalid({"cursor": "not a cursor of this list and sort"})
        boundary = sa.tuple_(column, m.id)
        value = (_decode_value(column, after[1]), parse_id(after[2]))
        stmt = stmt.where(boundary < value if desc else boundary > value)
    order = (column.desc(), m.id.desc()) if desc else (column.asc(), m.id.asc())
    stmt = stmt.order_by(*order).limit(query.limit + 1)
    if kind.lists_plain_rows:  # Core rows: none of the ORM's per-object work
        rows = list(work.session.connection().execute(stmt).all())
    else:
        rows = list(work.session.scalars(stmt))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(query.sort, getattr(last, column.key), last.id)
    if exported and kind.lists_plain_rows:
        keys = [str(c.key) for c in kind.listed_columns()]
        items = [kind.exported(dict(zip(keys, row, strict=True))) for row in rows]
    else:
        items = kind.out_many(work, rows)
    return {"items": items, "next_cursor": next_cursor}


def count_records(work: Work, kind: Kind, query_data: Any) -> dict[str, Any]:
    query = parse_list_query(kind.name, query_data)
    m = kind.model
    total = work.session.scalar(sa.select(sa.func.count()).select_from(m).where(*_conditions(work, kind, query)))
    return {"count": int(total or 0)}


def export_records(work: Work, kind: Kind, query_data: Any) -> dict[str, Any]:
    """Every record the list would show (all pages), in the list's order."""
    data = dict(query_data or {})
    data.pop("limit", None)
    data.pop("cursor", None)
    query = parse_list_query(kind.name, data)
    m = kind.model
    assert query.sort is not None
    _, column, desc = _sort(kind, query.sort)
    order = (column.desc(), m.id.desc()) if desc else (column.asc(), m.id.asc())
    result = work.session.scalars(sa.select(m).where(*_conditions(work, kind, query)).order_by(*order)
                                  .execution_options(yield_per=EXPORT_CHUNK))
    items: list[dict[str, Any]] = []
    for chunk in result.partitions():
        items.extend(kind.out_many(work, list(chunk)))
    return {"items": items, "count": len(items)}


def _visible(work: Work, kind: Kind, record_id: Any, extra: tuple[Any, ...] = (), lock: bool = False) -> Any:
    rid = parse_id(record_id)
    if rid is None:
        return None
    m = kind.model
    stmt = sa.select(m, *extra).where(m.tenant_id == work.tenant_id, m.id == rid,
                                      work.filter(kind.right("read"), getattr(m, kind.responsible_column)))
    if lock:
        stmt = stmt.with_for_update(of=m)
    return work.session.execute(stmt).first()


def not_found(kind: Kind) -> NotFound:
    return NotFound(f"no such {kind.entity}", code="not_found")


def get_record(work: Work, kind: Kind, record_id: Any) -> dict[str, Any]:
    found = _visible(work, kind, record_id)
    if found is None:
        raise not_found(kind)
    return kind.out_many(work, [found[0]])[0]


# -- writing ---------------------------------------------------------------------

def _given(model: BaseModel, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The fields the caller gave (all of them for a create), as python values;
    nested models become dicts, except invoice lines, which stay models."""
    data: dict[str, Any] = {}
    for name in (model.model_fields_set if names is None else names):
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            value = value.model_dump()
        elif isinstance(value, list) and name != "lines":
            value = [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
        data[name] = value
    return data


def check_responsible(work: Work, right: str, scope: str, user_id: Any) -> uuid.UUID:
    """``user_id`` may be made responsible under the caller's ``scope`` of ``right``:
    own: only the caller; department: the caller's department users; all: any
    active user of the tenant (asked of the users service, cached)."""
    uid = parse_id(user_id)
    assert uid is not None
    if work.principal is None or uid == work.user_id:
        return uid
    if scope == scopes.ALL:
        other = work.lookup_user(str(uid)) if work.lookup_user else None
        if not other or not other.get("active"):
            raise invalid({"responsible_id": "no active user with this id in the organisation"})
        return uid
    if not scopes.covers(work.principal, scope, uid):
        whom = "yourself" if scope == scopes.OWN else "users of your departments"
        raise Forbidden(f"with scope '{scope}' of '{right}' you may make responsible only {whom}",
                        code="forbidden", details={"right": right, "field": "responsible_id"})
    return uid


def _claim(work: Work, kind: Kind, data: Any, record_id: uuid.UUID) -> uuid.UUID | None:
    """Records that this request creates ``record_id``; the id an earlier
    delivery of the same request created, when there was one."""
    if not work.request_id:
        return None
    fingerprint = hashlib.sha256(json.dumps(jsonable(data), sort_keys=True, default=str).encode()).hexdigest()
    inserted = work.session.execute(
        insert(CreateRequest).values(tenant_id=work.tenant_id, request_id=work.request_id, kind=kind.name,
                                     record_id=record_id, fingerprint=fingerprint)
        .on_conflict_do_nothing().returning(CreateRequest.record_id)).first()
    if inserted is not None:
        return None
    earlier = work.session.get(CreateRequest, (work.tenant_id, work.request_id, kind.name))
    assert earlier is not None
    if earlier.fingerprint != fingerprint:
        raise Conflict("this request id was used for a different create", code="request_id_reused")
    return earlier.record_id


def create_record(work: Work, kind: Kind, data: Any) -> dict[str, Any]:
    assert kind.create_schema is not None
    right = kind.right("create")
    scope = work.require(right)
    body = parse(kind.create_schema, data)
    record_id = uuid.uuid4()
    earlier = _claim(work, kind, data, record_id)
    if earlier is not None:
        return get_record(work, kind, earlier)
    fields = _given(body, type(body).model_fields)
    responsible = fields.pop("responsible_id", None) or work.user_id
    now = dt.datetime.now(dt.timezone.utc)
    row = kind.model(tenant_id=work.tenant_id, id=record_id, created_by=work.user_id, created_at=now,
                     updated_at=now)
    row.responsible_id = check_responsible(work, right, scope, responsible) if responsible else None
    kind.apply(work, row, fields, creating=True)
    row.search = kind.search_text(row)
    work.session.add(row)
    flush(work)
    work.audit(kind.entity, row.id, journal.CREATE, created({"responsible_id": row.responsible_id, **kind.values(row)}))
    kind.after_write(work, row, None)
    return kind.out_many(work, [row])[0]


def _writable(work: Work, kind: Kind, record_id: Any, action: str) -> Any:
    """The record under the read scope, locked; 404 when invisible, 403 when
    visible but outside the scope of ``<kind>.<action>``."""
    right = kind.right(action)
    writable = work.condition(right, getattr(kind.model, kind.responsible_column)).label("writable")
    found = _visible(work, kind, record_id, (writable,), lock=True)
    if found is None:
        raise not_found(kind)
    if not found[1]:
        raise scopes.forbidden(right)
    return found[0]


def update_record(work: Work, kind: Kind, record_id: Any, data: Any) -> dict[str, Any]:
    assert kind.update_schema is not None
    body = parse(kind.update_schema, data)
    row = _writable(work, kind, record_id, "update")
    fields = _given(body)
    cleared = {name: "cannot be null" for name in kind.not_null if name in fields and fields[name] is None}
    if cleared:
        raise invalid(cleared)
    before = {"responsible_id": row.responsible_id, **kind.values(row)}
    if "responsible_id" in fields:
        responsible = fields.pop("responsible_id")
        if responsible is None:
            raise invalid({"responsible_id": "cannot be null"})
        if responsible != row.responsible_id:
            row.responsible_id = check_responsible(work, kind.right("update"), work.scope(kind.right("update")),
                                                   responsible)
    kind.apply(work, row, fields, creating=False)
    row.search = kind.search_text(row)
    after = {"responsible_id": row.responsible_id, **kind.values(row)}
    changes = diff(before, after)
    if changes:
        row.updated_at = dt.datetime.now(dt.timezone.utc)
        flush(work)
        work.audit(kind.entity, row.id, journal.UPDATE, changes)
        kind.after_write(work, row, before)
    return kind.out_many(work, [row])[0]


def delete_record(work: Work, kind: Kind, record_id: Any) -> None:
    row = _writable(work, kind, record_id, "delete")
    before = {"responsible_id": row.responsible_id, **kind.values(row)}
    kind.before_delete(work, row)
    work.session.delete(row)
    work.session.flush()
    work.audit(kind.entity, row.id, journal.DELETE, removed(before))
    kind.after_delete(work, row)
