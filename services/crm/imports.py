"""CSV imports into the crm records, batch by batch, and their revert.

The onec service reads the file and sends batches of rows already in the
create contract's fields (``contracts.imports.ImportBatch``). Here each batch:

- needs ``csv.import`` and the kind's ``create`` right (``update`` too for
  ``duplicates=update``), checked on every batch;
- looks up in one query the records that the rows repeat (``duplicate_keys``:
  e-mail or phone for contacts, ИНН+КПП for counterparties, article for
  products), under the tenant only: a duplicate the caller may not update is
  rejected rather than created again;
- creates with one flush and one insert of match keys, updates one record at
  a time (locked), and writes each change to ``import_changes`` for revert;
- writes no journal entry per record: the onec service journals the import;
- in a dry run does all of this and rolls it back, so that its outcomes are
  the real run's;
- stores its outcomes under (import, batch number): the same batch sent again
  answers them without importing twice.

A revert deletes the records the import created and puts back the fields it
updated, except on records changed since (their ``updated_at`` moved), used
by other records, or gone: those are left alone and reported."""
from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from contracts.imports import ENTITIES, BatchRow, ImportBatch, SameAs, duplicate_keys
from contracts.phones import try_normalize_email, try_normalize_phone
from crm_shared import scopes
from crm_shared.db import insert_rows
from crm_shared.errors import CrmError, Forbidden, field_problems
from services.crm import records as R
from services.crm.models import (
    Communication,
    Contact,
    Counterparty,
    ImportChange,
    Invoice,
    InvoiceLine,
    MatchKey,
    Payment,
    Product,
)
from services.crm.models import (
    ImportBatch as AppliedBatch,
)
from services.crm.schemas import invalid, parse
from services.crm.work import Work, jsonable

LIST_FIELDS = ("phones", "emails", "addresses")
KEEP_LEFT = 1000


def _importable(kind: R.Kind) -> None:
    if kind.name not in ENTITIES:
        raise R.NotFound(f"{kind.name} are not imported or exported as CSV ({', '.join(ENTITIES)})",
                         code="not_found")


def require_import(work: Work, kind: R.Kind, policy: str) -> None:
    _importable(kind)
    if not work.allows("csv.import"):
        raise scopes.forbidden("csv.import")
    work.require(kind.right("create"))
    if policy == "update":
        work.require(kind.right("update"))


def require_export(work: Work, kind: R.Kind) -> None:
    _importable(kind)
    if not work.allows("csv.export"):
        raise scopes.forbidden("csv.export")
    work.require(kind.right("read"))


# -- finding what a row repeats -------------------------------------------------------

def _existing(work: Work, kind: R.Kind, keys: set[str]) -> dict[str, tuple[uuid.UUID, uuid.UUID]]:
    """key -> (record id, responsible id) of the tenant's records holding it."""
    if not keys:
        return {}
    tid = work.tenant_id
    found: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    if kind.name == "contacts":
        rows = work.session.execute(
            sa.select(MatchKey.value, Contact.id, Contact.responsible_id)
            .join(Contact, sa.and_(Contact.tenant_id == MatchKey.tenant_id, Contact.id == MatchKey.record_id))
            .where(MatchKey.tenant_id == tid, MatchKey.entity == "contact", MatchKey.value.in_(sorted(keys)))
            .order_by(Contact.created_at, Contact.id))
        for key, rid, resp in rows:
            found.setdefault(key, (rid, resp))
    elif kind.name == "counterparties":
        pairs = [tuple(k.removeprefix("inn:").split("/", 1)) for k in keys]
        parties = work.session.execute(
            sa.select(Counterparty.inn, sa.func.coalesce(Counterparty.kpp, ""), Counterparty.id,
                      Counterparty.responsible_id)
            .where(Counterparty.tenant_id == tid,
                   sa.tuple_(Counterparty.inn, sa.func.coalesce(Counterparty.kpp, "")).in_(pairs)))
        for inn, kpp, rid, resp in parties:
            found[f"inn:{inn}/{kpp}"] = (rid, resp)
    elif kind.name == "products":
        articles = [k.removeprefix("article:") for k in keys]
        rows = work.session.execute(
            sa.select(sa.func.lower(Product.article), Product.id, Product.responsible_id)
            .where(Product.tenant_id == tid, Product.article.is_not(None),
                   sa.func.lower(Product.article).in_(articles))
            .order_by(Product.created_at, Product.id))
        for article, rid, resp in rows:
            found.setdefault(f"article:{article}", (rid, resp))
    return found


def _counterparties_named(work: Work, texts: set[str]) -> dict[str, list[uuid.UUID]]:
    """A contact's "Контрагент" cell -> the counterparties (the caller may read) it names:
    by ИНН when it is one, else by name, in any case."""
    if not texts:
        return {}
    inns = {t for t in texts if t.isdigit() and len(t) in (10, 12)}
    names = {t.lower() for t in texts - inns}
    m = Counterparty
    stmt = sa.select(m.id, m.inn, sa.func.lower(m.name)).where(
        m.tenant_id == work.tenant_id, work.condition("counterparties.read", m.responsible_id),
        sa.or_(m.inn.in_(sorted(inns)), sa.func.lower(m.name).in_(sorted(names))))
    by_text: dict[str, list[uuid.UUID]] = {}
    for rid, inn, name in work.session.execute(stmt):
        for text in texts:
            if (text in inns and inn == text) or (text not in inns and name == text.lower()):
                by_text.setdefault(text, []).append(rid)
    return by_text


# -- a batch ------------------------------------------------------------------------

def _reason(exc: ValidationError | CrmError) -> str:
    problems = _problems(exc)
    return "; ".join(f"{k}: {v}" for k, v in problems) if problems else str(exc)


def parse_batch(data: Any) -> ImportBatch:
    """``ImportBatch`` from RPC data: the head by its contract, the rows checked by hand (a
    thousand per batch: the contract's per-field validation would cost as much as importing
    them), their ``data`` by the entity's create contract as each row is applied."""
    if not isinstance(data, dict):
        raise invalid({"batch": "must be an object"})
    head = parse(ImportBatch, {**data, "rows": []})
    raw = data.get("rows")
    if not isinstance(raw, list) or len(raw) > 5000:
        raise invalid({"rows": "must be a list of at most 5000 rows"})
    rows: list[BatchRow] = []
    for i, item in enumerate(raw):
        same = item.get("same_as") if isinstance(item, dict) else None
        same_row = same.get("row") if isinstance(same, dict) and set(same) == {"row"} else None
        if not (isinstance(item, dict) and set(item) <= {"row", "data", "same_as"} and type(item.get("row")) is int
                and item["row"] >= 2 and isinstance(item.get("data"), dict)
                and (same is None or type(same_row) is int)):
            raise invalid({f"rows.{i}": "a row is {row: int >= 2, data: object, same_as: {row: int} | null}"})
        rows.append(BatchRow.model_construct(row=item["row"], data=item["data"], same_as=None if same is None else
                                             SameAs.model_construct(row=same_row)))
    head.rows = rows
    return head


def _problems(exc: ValidationError | CrmError) -> list[tuple[str, str]]:
    """(field path, message) of a refused row, for the onec service to name by column."""
    return list((field_problems(exc) if isinstance(exc, ValidationError) else exc.fields).items())


def _outcome(row: int, outcome: str, record_id: Any = None, duplicate: bool = False,
             reason: str | None = None, problems: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    answer = {"row": row, "outcome": outcome, "record_id": str(record_id) if record_id else None,
              "duplicate": duplicate, "reason": reason}
    if problems:
        answer["problems"] = problems
    return answer


def _merged(kind: R.Kind, row: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """An update's fields: the row's non-empty cells; phones and e-mails are added to the
    record's own rather than replacing them."""
    merged: dict[str, Any] = {}
    for name, value in fields.items():
        if name in LIST_FIELDS and hasattr(row, name):
            current = list(getattr(row, name) or [])
            norm = try_normalize_phone if name == "phones" else try_normalize_email
            known = {norm(v) or v for v in current} if name != "addresses" else {str(v) for v in current}
            for item in value:
                key = (norm(item) or item) if name != "addresses" else str(item)
                if key not in known:
                    current.append(item)
                    known.add(key)
            merged[name] = current
        else:
            merged[name] = value
    return merged


def _record_change(work: Work, kind: R.Kind, import_id: uuid.UUID, record_id: uuid.UUID, action: str,
                   before: dict[str, Any] | None, stamp: dt.datetime) -> None:
    """One row per record and import: a second change keeps the first ``before``, moves the stamp."""
    stmt = insert(ImportChange).values(tenant_id=work.tenant_id, import_id=import_id, record_id=record_id,
                                       kind=kind.name, action=action, before=before, stamp=stamp, state="pending")
    work.session.execute(stmt.on_conflict_do_update(
        index_elements=[ImportChange.tenant_id, ImportChange.import_id, ImportChange.record_id],
        set_={"stamp": stmt.excluded.stamp}))


def import_rows(work: Work, kind: R.Kind, data: Any) -> dict[str, Any]:
    batch = parse_batch(data)
    require_import(work, kind, batch.policy)
    if not batch.dry_run:
        applied = work.session.get(AppliedBatch, (work.tenant_id, batch.import_id, batch.batch))
        if applied is not None:
            return {"outcomes": applied.outcomes}
    assert kind.create_schema is not None and kind.update_schema is not None
    now = dt.datetime.now(dt.timezone.utc)
    update_scope = work.scope(kind.right("update")) if batch.policy == "update" else scopes.NONE
    parsed: list[tuple[int, Any, list[str], Any]] = []
    outcomes: dict[int, dict[str, Any]] = {}
    texts: set[str] = set()
    for item in batch.rows:
        fields = dict(item.data)
        link = str(fields.pop("counterparty", "") or "").strip() if kind.name == "contacts" else ""
        try:
            body = kind.create_schema.model_validate(fields)
        except ValidationError as exc:
            outcomes[item.row] = _outcome(item.row, "rejected", reason=_reason(exc), problems=_problems(exc))
            continue
        if link:
            texts.add(link)
        parsed.append((item.row, body, duplicate_keys(kind.name, vars(body)), (item, link)))
    links = _counterparties_named(work, texts)
    existing = _existing(work, kind, {k for _, _, keys, _ in parsed for k in keys})
    created: list[Any] = []
    for number, body, keys, (item, link) in parsed:
        fields = R._given(body, type(body).model_fields)
        fields.pop("responsible_id", None)
        if link:
            named = links.get(link, [])
            if len(named) != 1:
                why = "no counterparty" if not named else f"{len(named)} counterparties"
                outcomes[number] = _outcome(number, "rejected", reason=f"Контрагент: {why} '{link}' found")
                continue
            fields["counterparty_id"] = named[0]
        # the record the row repeats (for a repeat of an earlier row: that row's record, by the same keys)
        hit = next((existing[k] for k in keys if k in existing), None)
        target, target_responsible = hit if hit is not None else (None, None)
        duplicate = hit is not None or item.same_as is not None
        try:
            if not duplicate or batch.policy == "create":
                if duplicate and kind.name == "counterparties":
                    outcomes[number] = _outcome(number, "rejected", duplicate=True, reason=(
                        "a counterparty with this ИНН and КПП exists (they are unique); import it with "
                        "duplicates=update or skip"))
                    continue
                created.append(_create(work, kind, fields, now))
                outcomes[number] = _outcome(number, "created", None if batch.dry_run else created[-1].id,
                                            duplicate=duplicate)
            elif batch.policy == "skip":
                where = f"row {item.same_as.row} of the file" if item.same_as else f"an existing {kind.entity}"
                outcomes[number] = _outcome(number, "skipped", target, duplicate=True, reason=f"repeats {where}")
            elif target is None:
                earlier = item.same_as.row if item.same_as else "?"
                if batch.dry_run:  # the record the earlier row would create
                    outcomes[number] = _outcome(number, "updated", None, duplicate=True,
                                                reason=f"updates what row {earlier} creates")
                else:
                    outcomes[number] = _outcome(number, "rejected", duplicate=True,
                                                reason=f"repeats row {earlier}, whose record was not found")
            else:
                if work.principal is not None and target_responsible is not None \
                        and not scopes.covers(work.principal, update_scope, target_responsible):
                    outcomes[number] = _outcome(number, "rejected", duplicate=True, reason=(
                        f"repeats an existing {kind.entity} that you may not update ({kind.right('update')})"))
                    continue
                changed = _update(work, kind, batch.import_id, target, fields, now)
                outcomes[number] = _outcome(number, "updated" if changed else "skipped", target, duplicate=True,
                                            reason=None if changed else "no changes")
        except (CrmError, ValidationError) as exc:
            outcomes[number] = _outcome(number, "rejected", duplicate=duplicate, reason=_reason(exc),
                                        problems=_problems(exc))
    if created:
        R.flush(work)  # the updates above, before the creations' own insert
        _insert(work, kind, created)
        _match_keys(work, kind, created)
        insert_rows(work.session.connection(), ImportChange.__table__, [
            {"tenant_id": work.tenant_id, "import_id": batch.import_id, "record_id": row.id, "kind": kind.name,
             "action": "created", "before": None, "stamp": now, "state": "pending"} for row in created])
    answer = [outcomes[item.row] for item in batch.rows]
    if batch.dry_run:
        work.session.rollback()
    else:
        work.session.add(AppliedBatch(tenant_id=work.tenant_id, import_id=batch.import_id, batch_no=batch.batch,
                                      outcomes=answer))
    return {"outcomes": answer}


_COLUMNS: dict[str, list[tuple[str, str]]] = {}


def _columns(kind: R.Kind) -> list[tuple[str, str]]:
    """(attribute, column) of the kind's table."""
    if kind.name not in _COLUMNS:
        # plain str: orjson takes no str subclass (SQLAlchemy's quoted_name) as a key
        _COLUMNS[kind.name] = [(str(attr.key), str(attr.columns[0].name))
                               for attr in sa.inspect(kind.model).column_attrs]
    return _COLUMNS[kind.name]


def _create(work: Work, kind: R.Kind, fields: dict[str, Any], now: dt.datetime) -> Any:
    """A new record's values on a plain object (the kind's rules apply to it as to a model): thousands
    are inserted with one statement, without the ORM's per-object work."""
    row = SimpleNamespace(**{attr: None for attr, _ in _columns(kind)})
    row.tenant_id, row.id, row.created_by, row.responsible_id = work.tenant_id, uuid.uuid4(), work.user_id, work.user_id
    row.created_at = row.updated_at = now
    if "counterparty_id" in fields:  # resolved under the read scope above: no second lookup
        row.counterparty_id = fields["counterparty_id"]
    kind.apply(work, row, fields, creating=True)
    row.search = kind.search_text(row)
    return row


def _insert(work: Work, kind: R.Kind, rows: list[Any]) -> None:
    columns = _columns(kind)
    try:
        insert_rows(work.session.connection(), kind.model.__table__,
                    [{column: getattr(row, attr) for attr, column in columns} for row in rows])
    except IntegrityError as exc:
        raise R.unique_conflict(exc) from None


def _match_keys(work: Work, kind: R.Kind, rows: list[Any]) -> None:
    if kind.name not in ("contacts", "counterparties"):
        return
    values: list[dict[str, Any]] = []
    for row in rows:
        keys = {k for k in (try_normalize_phone(p) for p in row.phones or []) if k}
        keys |= {k for k in (try_normalize_email(e) for e in row.emails or []) if k}
        values.extend({"tenant_id": work.tenant_id, "value": k, "entity": kind.entity, "record_id": row.id}
                      for k in sorted(keys))
    insert_rows(work.session.connection(), MatchKey.__table__, values, skip_conflicts=True)


def _update(work: Work, kind: R.Kind, import_id: uuid.UUID | None, record_id: uuid.UUID, fields: dict[str, Any],
            now: dt.datetime) -> bool:
    """Updates a record with the given non-empty fields; with an ``import_id``, keeps what it was for a revert."""
    row = work.session.scalars(sa.select(kind.model).where(kind.model.tenant_id == work.tenant_id,
                                                           kind.model.id == record_id).with_for_update()).first()
    if row is None:
        raise R.not_found(kind)
    before = {"responsible_id": row.responsible_id, **kind.values(row)}
    given = {k: v for k, v in fields.items() if v not in (None, [], "")}
    try:
        kind.apply(work, row, _merged(kind, row, given), creating=False)
    except CrmError:
        work.session.expire(row)  # nothing of a refused row may reach the flush
        raise
    row.search = kind.search_text(row)
    changes = R.diff(before, {"responsible_id": row.responsible_id, **kind.values(row)})
    if not changes:
        return False
    row.updated_at = now
    R.flush(work)
    kind.after_write(work, row, before)
    if import_id is not None:
        _record_change(work, kind, import_id, row.id, "updated",
                       jsonable({k: before[k] for k in changes if k != "responsible_id"}), now)
    return True


# -- revert -------------------------------------------------------------------------

def _in_use(kind: R.Kind) -> list[Any]:
    """NOT EXISTS conditions: other records using the record (a revert leaves those)."""
    def unused(model: Any, column: Any, own: Any) -> Any:
        return ~sa.exists().where(model.tenant_id == own.tenant_id, column == own.id)
    if kind.name == "contacts":
        return [unused(Invoice, Invoice.contact_id, Contact)]
    if kind.name == "counterparties":
        return [unused(Contact, Contact.counterparty_id, Counterparty),
                unused(Invoice, Invoice.counterparty_id, Counterparty),
                unused(Payment, Payment.counterparty_id, Counterparty)]
    if kind.name == "products":
        return [unused(InvoiceLine, InvoiceLine.product_id, Product)]
    return []


def _changes(import_id: uuid.UUID, tenant_id: str, record_ids: list[Any]) -> tuple[Any, ...]:
    return (ImportChange.tenant_id == tenant_id, ImportChange.import_id == import_id,
            ImportChange.record_id.in_(record_ids))


def _settle(work: Work, import_id: uuid.UUID, reverted: list[Any], left: list[Any]) -> None:
    """One statement each for many changes (an ORM flush would send one each): reverted changes
    are forgotten, those left alone stay, marked."""
    if reverted:
        work.session.execute(sa.delete(ImportChange).where(*_changes(import_id, work.tenant_id, reverted))
                             .execution_options(synchronize_session=False))
    if left:
        work.session.execute(sa.update(ImportChange).where(*_changes(import_id, work.tenant_id, left))
                             .values(state="left").execution_options(synchronize_session=False))


def revert_import(work: Work, kind: R.Kind, import_id: Any, limit: int = 2000, after: Any = None) -> dict[str, Any]:
    """Reverts up to ``limit`` of the import's changes (those past the record id ``after``, the
    ``after`` the call before answered: each call then starts where the last one ended instead of
    walking the changes done); ``more`` says whether any are left."""
    require_import(work, kind, "skip")
    iid = R.parse_id(import_id)
    if iid is None:
        raise R.invalid({"import_id": "not an id"})
    m, session, tid = kind.model, work.session, work.tenant_id
    start = R.parse_id(after)
    pending = (ImportChange.tenant_id == tid, ImportChange.import_id == iid, ImportChange.kind == kind.name,
               ImportChange.state == "pending", *((ImportChange.record_id > start,) if start else ()))
    changes = list(session.execute(
        sa.select(ImportChange.record_id, ImportChange.action, ImportChange.before, ImportChange.stamp)
        .where(*pending).order_by(ImportChange.record_id).limit(max(1, min(int(limit), 5000)))
        .with_for_update(skip_locked=True)))
    left: list[dict[str, str]] = []
    reverted: list[Any] = []
    deleted = restored = 0
    made = {c.record_id: c for c in changes if c.action == "created"}
    if made:
        # unused records, locked; those whose stamp moved are left (compared here: a join with
        # import_changes made the planner hash all of the import's changes on every call)
        deletable = {rid for rid, stamp in session.execute(
            sa.select(m.id, m.updated_at).where(m.tenant_id == tid, m.id.in_(list(made)), *_in_use(kind))
            .with_for_update(of=m)) if stamp == made[rid].stamp}
        if deletable:
            ids = sorted(deletable)
            for column in (Communication.contact_id, Communication.counterparty_id):
                if (kind.name == "contacts") == (column is Communication.contact_id) and \
                        kind.name in ("contacts", "counterparties"):
                    session.execute(sa.update(Communication).where(Communication.tenant_id == tid, column.in_(ids))
                                    .values({column.key: None}))
            session.execute(sa.delete(MatchKey).where(MatchKey.tenant_id == tid, MatchKey.entity == kind.entity,
                                                      MatchKey.record_id.in_(ids)))
            session.execute(sa.delete(m).where(m.tenant_id == tid, m.id.in_(ids)))
            deleted = len(ids)
        rest = [rid for rid in made if rid not in deletable]
        if rest:
            stamps: dict[Any, Any] = dict(session.execute(sa.select(m.id, m.updated_at)
                                          .where(m.tenant_id == tid, m.id.in_(rest))).all())
            for rid in rest:
                if rid not in stamps:
                    why = "already deleted"
                elif stamps[rid] != made[rid].stamp:
                    why = "changed after the import"
                else:
                    why = "used by other records"
                left.append({"record_id": str(rid), "reason": why})
        reverted.extend(deletable)
    for change in (c for c in changes if c.action == "updated"):
        row = session.scalars(sa.select(m).where(m.tenant_id == tid, m.id == change.record_id)
                              .with_for_update()).first()
        if row is None or row.updated_at != change.stamp:
            left.append({"record_id": str(change.record_id),
                         "reason": "already deleted" if row is None else "changed after the import"})
            continue
        before = {"responsible_id": row.responsible_id, **kind.values(row)}
        try:
            assert kind.update_schema is not None
            body = parse(kind.update_schema, change.before or {})
            kind.apply(work, row, R._given(body), creating=False)
        except (CrmError, Forbidden) as exc:
            session.expire(row)
            left.append({"record_id": str(change.record_id), "reason": f"cannot be restored: {_reason(exc)}"})
            continue
        row.search = kind.search_text(row)
        row.updated_at = dt.datetime.now(dt.timezone.utc)
        R.flush(work)
        kind.after_write(work, row, before)
        reverted.append(change.record_id)
        restored += 1
    session.flush()
    _settle(work, iid, reverted, [uuid.UUID(item["record_id"]) for item in left])
    last = changes[-1].record_id if changes else start
    rest_pending = (*pending[:4], *((ImportChange.record_id > last,) if last else ()))
    more = session.execute(sa.select(sa.literal(1)).where(*rest_pending).limit(1)).first() is not None
    return {"deleted": deleted, "restored": restored, "left": left[:KEEP_LEFT], "left_count": len(left),
            "more": more, "after": str(last) if last else None}


# -- export -------------------------------------------------------------------------

def export_page(work: Work, kind: R.Kind, query: Any, cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of what the list shows, for the CSV export (``csv.export`` and the read scope)."""
    require_export(work, kind)
    data = {k: v for k, v in dict(query or {}).items() if k not in ("limit", "cursor")}
    data["limit"] = 500
    if cursor:
        data["cursor"] = cursor
    page = R.list_records(work, kind, data, limit=max(1, min(int(limit), 5000)), exported=True)
    names: dict[str, str] = {}
    if kind.name == "contacts":
        ids = sorted({item["counterparty_id"] for item in page["items"] if item.get("counterparty_id")})
        if ids:
            names = {str(rid): name for rid, name in work.session.execute(
                sa.select(Counterparty.id, Counterparty.name).where(
                    Counterparty.tenant_id == work.tenant_id, Counterparty.id.in_([uuid.UUID(i) for i in ids]),
                    work.condition("counterparties.read", Counterparty.responsible_id)))}
    page["names"] = names
    return page


def forget_before(session: Any, cutoff: dt.datetime) -> None:
    """Housekeeping (every tenant): imports older than the retention can no longer be reverted."""
    session.execute(sa.delete(AppliedBatch).where(AppliedBatch.created_at < cutoff))
    session.execute(sa.delete(ImportChange).where(ImportChange.stamp < cutoff))
