"""The 1C exchange's objects applied to the crm records, batch by batch, and
the pages an export reads.

Each batch (``contracts.exchange.ExchangeBatch``) needs ``exchange.run``;
each object needs its kind's ``create`` right to be created and the
``update`` scope covering the record to be updated or deactivated. An object
is matched by its 1C identifier (``external_id``) first, then by ИНН+КПП
(counterparties) or article (products):

- found and ``overwrite`` on: updated with the fields the file gives
  (phones and e-mails are added, not replaced); off: left alone;
- not found: created, with the 1C identifier;
- deleted (``УдалениеОбъекта``, ``ПометкаУдаления``): deactivated, never deleted;
- an offer sets the price of its product (found by identifier only);
- a record another object only points at (``reference``) is created when
  missing and never updated from there.

Counterparties, products, contacts, offers and payments are applied in that
order, so that a batch's contacts and payments find the counterparties
before them. A batch's outcomes are stored under (job, batch number): the
same batch sent again (a job resumed after a crash) answers them again
without applying anything twice. The onec service journals the job."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql

from contracts.base import has_unstorable
from contracts.exchange import ExchangeBatch, ExchangeObject, ExportPageQuery
from crm_shared import scopes
from crm_shared.errors import CrmError
from services.crm import imports as csv
from services.crm import records as R
from services.crm.kinds import kind_of
from services.crm.models import Contact, Counterparty, Invoice, Product
from services.crm.models import ImportBatch as AppliedBatch
from services.crm.schemas import parse
from services.crm.work import Work

ORDER = ("counterparty", "product", "contact", "offer", "payment")
KIND_OF = {"counterparty": "counterparties", "product": "products", "contact": "contacts", "offer": "products",
           "payment": "payments"}
Outcomes = dict[int, dict[str, Any]]


def require_exchange(work: Work) -> None:
    if not work.allows("exchange.run"):
        raise scopes.forbidden("exchange.run")


def _outcome(item: ExchangeObject, outcome: str, record_id: Any = None, reason: str | None = None) -> dict[str, Any]:
    return {"n": item.n, "outcome": outcome, "record_id": str(record_id) if record_id else None, "reason": reason}


def parse_batch(data: Any) -> ExchangeBatch:
    """``ExchangeBatch`` from RPC data: the head by its contract, the objects checked by hand (a
    thousand per batch: the contract's per-field validation would cost as much as applying them),
    their ``data`` by the kind's create contract as each is applied."""
    if not isinstance(data, dict):
        raise R.invalid({"batch": "must be an object"})
    head = parse(ExchangeBatch, {**data, "objects": []})
    raw = data.get("objects")
    if not isinstance(raw, list) or len(raw) > 5000:
        raise R.invalid({"objects": "must be a list of at most 5000 objects"})
    objects: list[ExchangeObject] = []
    for i, item in enumerate(raw):
        links = item.get("links") if isinstance(item, dict) else None
        ref = item.get("ref") if isinstance(item, dict) else None
        if not (isinstance(item, dict) and set(item) <= FIELDS and type(item.get("n")) is int and item["n"] >= 0
                and item.get("kind") in ORDER and isinstance(item.get("data", {}), dict)
                and (ref is None or (isinstance(ref, str) and len(ref) <= 200 and not has_unstorable(ref)))
                and isinstance(links or {}, dict)
                and all(isinstance(k, str) and isinstance(v, str) and len(v) <= 200 and not has_unstorable(v)
                        for k, v in (links or {}).items())
                and isinstance(item.get("deleted", False), bool) and isinstance(item.get("reference", False), bool)):
            raise R.invalid({f"objects.{i}": "an object is {n: int >= 0, kind, ref: str <= 200 | null, data: object, "
                                             "links: {str: str}, deleted: bool, reference: bool}"})
        objects.append(ExchangeObject.model_construct(
            n=item["n"], kind=item["kind"], ref=ref, data=item.get("data") or {}, links=links or {},
            deleted=bool(item.get("deleted")), reference=bool(item.get("reference"))))
    head.objects = objects
    return head


FIELDS = frozenset(ExchangeObject.model_fields)


def apply_objects(work: Work, data: Any) -> dict[str, Any]:
    require_exchange(work)
    batch = parse_batch(data)
    applied = work.session.get(AppliedBatch, (work.tenant_id, batch.job_id, batch.batch))
    if applied is not None:
        return {"outcomes": applied.outcomes}
    now = dt.datetime.now(dt.timezone.utc)
    outcomes: Outcomes = {}
    for name in ORDER:
        items = [o for o in batch.objects if o.kind == name]
        if items:
            Applier(work, name, batch.overwrite, now, outcomes).apply(items)
    answer = [outcomes[o.n] for o in batch.objects]
    work.session.add(AppliedBatch(tenant_id=work.tenant_id, import_id=batch.job_id, batch_no=batch.batch,
                                  outcomes=answer))
    return {"outcomes": answer}


class Applier:
    """One kind's objects of a batch."""

    def __init__(self, work: Work, name: str, overwrite: bool, now: dt.datetime, outcomes: Outcomes) -> None:
        self.work, self.name, self.overwrite, self.now, self.outcomes = work, name, overwrite, now, outcomes
        self.kind = kind_of(KIND_OF[name], write=True)
        self.model = self.kind.model
        self.may_create = work.scope(self.kind.right("create")) != scopes.NONE
        self.update_scope = work.scope(self.kind.right("update"))

    # -- finding ------------------------------------------------------------------------
    def _by_ref(self, model: Any, refs: set[str]) -> dict[str, tuple[uuid.UUID, uuid.UUID, bool]]:
        if not refs:
            return {}
        active = model.active if hasattr(model, "active") else sa.true()
        found = {ext: (rid, resp, bool(on)) for ext, rid, resp, on in self.work.session.execute(
            sa.select(model.external_id, model.id, model.responsible_id, active).where(
                model.tenant_id == self.work.tenant_id, model.external_id.in_(sorted(refs))))}
        # a record the CRM wrote comes back from 1C under the CRM's own id
        ids = [uuid.UUID(r) for r in refs if r not in found and R.parse_id(r)]
        if ids:
            found.update({str(rid): (rid, resp, bool(on)) for rid, resp, on in self.work.session.execute(
                sa.select(model.id, model.responsible_id, active).where(
                    model.tenant_id == self.work.tenant_id, model.id.in_(ids)))})
        return found

    def _by_key(self, items: list[ExchangeObject]) -> dict[str, tuple[uuid.UUID, uuid.UUID, bool]]:
        """ИНН+КПП or article -> the record (for objects not found by their identifier)."""
        tid = self.work.tenant_id
        if self.name == "counterparty":
            pairs = {(o.data["inn"], o.data.get("kpp") or "") for o in items if o.data.get("inn")}
            if not pairs:
                return {}
            m = Counterparty
            return {f"{inn}/{kpp}": (rid, resp, on) for inn, kpp, rid, resp, on in self.work.session.execute(
                sa.select(m.inn, sa.func.coalesce(m.kpp, ""), m.id, m.responsible_id, m.active).where(
                    m.tenant_id == tid, sa.tuple_(m.inn, sa.func.coalesce(m.kpp, "")).in_(sorted(pairs))))}
        if self.name == "product":
            articles = {str(o.data["article"]).lower() for o in items if o.data.get("article")}
            if not articles:
                return {}
            found: dict[str, tuple[uuid.UUID, uuid.UUID, bool]] = {}
            for article, rid, resp, on in self.work.session.execute(
                    sa.select(sa.func.lower(Product.article), Product.id, Product.responsible_id, Product.active)
                    .where(Product.tenant_id == tid, Product.article.is_not(None),
                           sa.func.lower(Product.article).in_(sorted(articles)))
                    .order_by(Product.created_at, Product.id)):
                found.setdefault(article, (rid, resp, on))
            return found
        return {}

    def _key(self, item: ExchangeObject) -> str | None:
        if self.name == "counterparty" and item.data.get("inn"):
            return f"{item.data['inn']}/{item.data.get('kpp') or ''}"
        if self.name == "product" and item.data.get("article"):
            return str(item.data["article"]).lower()
        return None

    # -- applying -------------------------------------------------------------------------
    def apply(self, items: list[ExchangeObject]) -> None:
        if self.name == "offer":
            self._offers(items)
            return
        by_ref = self._by_ref(self.model, {o.ref for o in items if o.ref})
        by_key = self._by_key([o for o in items if o.ref not in by_ref])
        links = self._links(items)
        created: list[Any] = []
        for item in items:
            hit = by_ref.get(item.ref or "") or by_key.get(self._key(item) or "")
            try:
                made = self._one(item, hit, links)
            except (CrmError, ValidationError) as exc:
                self.outcomes[item.n] = _outcome(item, "rejected", reason=csv._reason(exc))
                continue
            if hit is not None and item.ref:
                by_ref.setdefault(item.ref, hit)  # found by ИНН+КПП or article: it holds this identifier now
            if made is not None:
                created.append(made)
                entry = (made.id, made.responsible_id, True)
                if item.ref:
                    by_ref[item.ref] = entry  # a repeat later in the batch finds it
                if self._key(item):
                    by_key[self._key(item) or ""] = entry
        if created:
            R.flush(self.work)
            if self.name == "payment":
                return  # created one by one (each one recomputes its invoice)
            csv._insert(self.work, self.kind, created)
            csv._match_keys(self.work, self.kind, created)

    def _links(self, items: list[ExchangeObject]) -> dict[str, dict[str, uuid.UUID]]:
        """The records the objects point at: counterparties by identifier or ИНН, invoices by identifier
        or number (under the caller's read scope)."""
        tid, work = self.work.tenant_id, self.work
        out: dict[str, dict[str, uuid.UUID]] = {"counterparty": {}, "counterparty_inn": {}, "invoice": {},
                                                "invoice_number": {}}
        wanted: dict[str, set[str]] = {k: {o.links[k] for o in items if o.links.get(k)} for k in out}
        read = work.condition("counterparties.read", Counterparty.responsible_id)
        if wanted["counterparty"]:
            refs = sorted(wanted["counterparty"])
            out["counterparty"] = _pairs(work.session.execute(
                sa.select(Counterparty.external_id, Counterparty.id).where(
                    Counterparty.tenant_id == tid, read, Counterparty.external_id.in_(refs))))
            # a counterparty the CRM wrote is known to 1C by the CRM's id
            ids = [uuid.UUID(r) for r in refs if R.parse_id(r) and r not in out["counterparty"]]
            if ids:
                out["counterparty"].update({str(rid): rid for (rid,) in work.session.execute(
                    sa.select(Counterparty.id).where(Counterparty.tenant_id == tid, read, Counterparty.id.in_(ids)))})
        if wanted["counterparty_inn"]:
            for inn, rid in work.session.execute(sa.select(Counterparty.inn, Counterparty.id).where(
                    Counterparty.tenant_id == tid, read, Counterparty.inn.in_(sorted(wanted["counterparty_inn"])))
                    .order_by(Counterparty.created_at)):
                out["counterparty_inn"].setdefault(str(inn), rid)
        inv_read = work.condition("invoices.read", Invoice.responsible_id)
        if wanted["invoice"]:
            out["invoice"] = _pairs(work.session.execute(sa.select(Invoice.external_id, Invoice.id).where(
                Invoice.tenant_id == tid, inv_read, Invoice.external_id.in_(sorted(wanted["invoice"])))))
            # an invoice the CRM wrote is known to 1C by the CRM's id
            ids = [uuid.UUID(r) for r in wanted["invoice"] if R.parse_id(r)]
            if ids:
                out["invoice"].update({str(rid): rid for (rid,) in work.session.execute(
                    sa.select(Invoice.id).where(Invoice.tenant_id == tid, inv_read, Invoice.id.in_(ids)))})
        if wanted["invoice_number"]:
            out["invoice_number"] = _pairs(work.session.execute(sa.select(Invoice.number, Invoice.id).where(
                Invoice.tenant_id == tid, inv_read, Invoice.number.in_(sorted(wanted["invoice_number"])))))
        return out

    def _fields(self, item: ExchangeObject, links: dict[str, dict[str, uuid.UUID]]) -> dict[str, Any]:
        data = dict(item.data)
        if item.ref:
            data["external_id"] = item.ref
        if self.name == "contact" and item.links.get("counterparty"):
            target = links["counterparty"].get(item.links["counterparty"])
            if target is None:
                raise R.invalid({"counterparty": f"no counterparty with the 1C identifier "
                                                 f"{item.links['counterparty']}"})
            data["counterparty_id"] = target
        if self.name == "payment":
            target = links["counterparty"].get(item.links.get("counterparty", "")) or \
                links["counterparty_inn"].get(item.links.get("counterparty_inn", ""))
            if target is None:
                raise R.invalid({"counterparty": "the payer is not in the CRM (load counterparties too)"})
            data["counterparty_id"] = target
            invoice = links["invoice"].get(item.links.get("invoice", "")) or \
                links["invoice_number"].get(item.links.get("invoice_number", ""))
            if invoice is not None:
                data["invoice_id"] = invoice
        return data

    def _one(self, item: ExchangeObject, hit: tuple[uuid.UUID, uuid.UUID, bool] | None,
             links: dict[str, dict[str, uuid.UUID]]) -> Any:
        """Applies one object; answers the new record when it is to be inserted with the batch."""
        kind, work = self.kind, self.work
        if item.deleted:
            if hit is None:
                self.outcomes[item.n] = _outcome(item, "skipped", reason=f"deleted in 1C; no such {kind.entity}")
            elif not hasattr(self.model, "active"):
                self.outcomes[item.n] = _outcome(item, "skipped", hit[0], reason=f"a {kind.entity} is not "
                                                                                 "deactivated; left as it is")
            elif not hit[2]:
                self.outcomes[item.n] = _outcome(item, "skipped", hit[0], reason="deleted in 1C; already inactive")
            else:
                self._check_update(hit)
                csv._update(work, kind, None, hit[0], {"active": False}, self.now)
                self.outcomes[item.n] = _outcome(item, "updated", hit[0], reason="deleted in 1C: deactivated")
            return None
        assert kind.create_schema is not None
        body = kind.create_schema.model_validate(self._fields(item, links))
        if hit is not None:
            if item.reference:
                self.outcomes[item.n] = _outcome(item, "skipped", hit[0], reason="found")
            elif not self.overwrite:
                self.outcomes[item.n] = _outcome(item, "skipped", hit[0], reason="found; overwriting is off")
            else:
                self._check_update(hit)
                given = R._given(body)
                given.setdefault("active", True)  # sent again undeleted: active again
                changed = csv._update(work, kind, None, hit[0], given, self.now)
                self.outcomes[item.n] = _outcome(item, "updated" if changed else "skipped", hit[0],
                                                 reason=None if changed else "no changes")
            return None
        if not self.may_create:
            raise scopes.forbidden(kind.right("create"))
        fields = R._given(body, type(body).model_fields)
        fields.pop("responsible_id", None)
        if self.name == "payment":
            row = _create_one(work, kind, fields, self.now)
        else:
            row = csv._create(work, kind, fields, self.now)
        self.outcomes[item.n] = _outcome(item, "created", row.id)
        return row

    def _check_update(self, hit: tuple[uuid.UUID, uuid.UUID, bool]) -> None:
        principal = self.work.principal
        if principal is not None and not scopes.covers(principal, self.update_scope, hit[1]):
            raise scopes.forbidden(self.kind.right("update"))

    def _offers(self, items: list[ExchangeObject]) -> None:
        """Offers set their product's price whatever ``overwrite`` says: that is what they are for."""
        by_ref = self._by_ref(Product, {o.ref for o in items if o.ref})
        for item in items:
            hit = by_ref.get(item.ref or "")
            if hit is None:
                self.outcomes[item.n] = _outcome(item, "rejected", reason=(
                    f"no product with the 1C identifier {item.ref} (load the catalogue first)"))
                continue
            if not item.data:
                self.outcomes[item.n] = _outcome(item, "skipped", hit[0], reason="no price in the offer")
                continue
            try:
                self._check_update(hit)
                assert self.kind.update_schema is not None
                body = self.kind.update_schema.model_validate(item.data)
                changed = csv._update(self.work, self.kind, None, hit[0], R._given(body), self.now)
            except (CrmError, ValidationError) as exc:
                self.outcomes[item.n] = _outcome(item, "rejected", reason=csv._reason(exc))
                continue
            self.outcomes[item.n] = _outcome(item, "updated" if changed else "skipped", hit[0],
                                             reason=None if changed else "no changes")


def _pairs(rows: Any) -> dict[str, uuid.UUID]:
    return {str(key): rid for key, rid in rows}


def _create_one(work: Work, kind: R.Kind, fields: dict[str, Any], now: dt.datetime) -> Any:
    """A record created through the ORM, for kinds whose writes have effects (a payment recomputes its
    invoice)."""
    row = kind.model(tenant_id=work.tenant_id, id=uuid.uuid4(), created_by=work.user_id,
                     responsible_id=work.user_id, created_at=now, updated_at=now)
    kind.apply(work, row, fields, creating=True)
    row.search = kind.search_text(row)
    work.session.add(row)
    R.flush(work)
    kind.after_write(work, row, None)
    return row


def deactivate_unlisted(work: Work, job_ids: Any) -> dict[str, Any]:
    """After a full catalogue: the caller's products from 1C (``external_id`` set) that none of the jobs'
    batches mentioned are deactivated, under the ``products.update`` scope."""
    require_exchange(work)
    kind = kind_of("products", write=True)
    work.require(kind.right("update"))
    ids = [R.parse_id(j) for j in (job_ids if isinstance(job_ids, list) else [])]
    if not ids or None in ids or len(ids) > 100:
        raise R.invalid({"job_ids": "a list of 1 to 100 job ids"})
    listed = sa.text(
        "products.id NOT IN (SELECT (o.value->>'record_id')::uuid FROM import_batches b "
        "CROSS JOIN LATERAL jsonb_array_elements(b.outcomes) o WHERE b.tenant_id = :tenant "
        "AND b.import_id = ANY(:jobs) AND o.value->>'record_id' IS NOT NULL)").bindparams(
        sa.bindparam("tenant", work.tenant_id), sa.bindparam("jobs", ids, type_=postgresql.ARRAY(sa.Uuid)))
    now = dt.datetime.now(dt.timezone.utc)
    done = work.session.execute(
        sa.update(Product).where(Product.tenant_id == work.tenant_id, Product.active, Product.external_id.is_not(None),
                                 work.condition(kind.right("update"), Product.responsible_id), listed)
        .values(active=False, updated_at=now).returning(Product.id).execution_options(synchronize_session=False))
    return {"deactivated": len(done.all())}


# -- export ------------------------------------------------------------------------------

EXPORTED = {"counterparties": Counterparty, "contacts": Contact, "products": Product, "invoices": Invoice}


def export_page(work: Work, kind_name: str, query: Any, after: str | None, limit: int) -> dict[str, Any]:
    """``{items, after}``: records changed within the window, under the caller's read scope, in id
    order from ``after``; invoices come with their counterparties, contacts and products."""
    require_exchange(work)
    if kind_name not in EXPORTED:
        raise R.NotFound(f"{kind_name} are not exported to 1C", code="not_found")
    kind = kind_of(kind_name, write=True)
    work.require(kind.right("read"))
    window = parse(ExportPageQuery, query or {})
    m = kind.model
    stmt = sa.select(m).where(m.tenant_id == work.tenant_id, work.condition(kind.right("read"), m.responsible_id))
    if window.since:
        stmt = stmt.where(m.updated_at >= window.since)
    if window.until:
        stmt = stmt.where(m.updated_at <= window.until)
    start = R.parse_id(after)
    if start:
        stmt = stmt.where(m.id > start)
    rows = list(work.session.scalars(stmt.order_by(m.id).limit(max(1, min(int(limit), 2000)))))
    items = kind.out_many(work, rows)
    answer: dict[str, Any] = {"items": items, "after": str(rows[-1].id) if len(rows) == limit else None}
    if kind_name == "invoices" and rows:
        answer.update(_related(work, rows))
        # an invoice goes with its counterparty, or not at all: one outside the caller's read scope
        # withholds the invoice (counted) rather than leaking the counterparty or writing a blank one
        kept = [i for i in items if i["counterparty_id"] in answer["counterparties"]]
        answer["withheld"] = len(items) - len(kept)
        answer["items"] = kept
    elif kind_name == "contacts" and rows:  # a contact person is written with the counterparty it belongs to
        answer["counterparties"] = _related(work, [], {r.counterparty_id for r in rows if r.counterparty_id})[
            "counterparties"]
    elif kind_name == "counterparties" and rows and window.with_contacts:
        people = kind_of("contacts", write=True)
        found = work.session.scalars(sa.select(Contact).where(
            Contact.tenant_id == work.tenant_id, Contact.counterparty_id.in_([r.id for r in rows]),
            work.condition(people.right("read"), Contact.responsible_id)).order_by(Contact.full_name, Contact.id))
        by_party: dict[str, list[dict[str, Any]]] = {}
        for person in people.out_many(work, list(found)):
            by_party.setdefault(str(person["counterparty_id"]), []).append(person)
        answer["contacts"] = by_party
    return answer


def _related(work: Work, invoices: list[Any], parties: set[Any] | None = None) -> dict[str, Any]:
    """The records invoices (or contacts) point at, under the caller's read scope of each."""
    def many(name: str, ids: set[Any]) -> dict[str, Any]:
        if not ids:
            return {}
        kind = kind_of(name, write=True)
        m = kind.model
        rows = work.session.scalars(sa.select(m).where(m.tenant_id == work.tenant_id, m.id.in_(sorted(ids)),
                                                       work.condition(kind.right("read"), m.responsible_id)))
        return {item["id"]: item for item in kind.out_many(work, list(rows))}
    return {"counterparties": many("counterparties", {i.counterparty_id for i in invoices} | (parties or set())),
            "contacts": many("contacts", {i.contact_id for i in invoices if i.contact_id}),
            "products": many("products", {line.product_id for i in invoices for line in i.lines})}
