"""The crm service over RPC, as the gateway (and later telephony, mail and
1C) call it, against real RabbitMQ and PostgreSQL, with a fake ``users``
service serving principals (tests/crm/conftest.py)."""
from __future__ import annotations

import uuid
from typing import Any

import eventlet
import pytest
import sqlalchemy as sa
from kombu import Connection
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from crm_shared.events import replay_parked
from crm_shared.metrics import METRICS
from crm_shared.testing import wait_for

OWN = {f"{e}.{a}": "own" for e in ("counterparties", "contacts", "products", "invoices", "payments",
                                   "communications") for a in ("create", "read", "update", "delete")}
DEPARTMENT = dict.fromkeys(OWN, "department")
ROMASHKA = {"name": "Ромашка", "full_name": "ООО «Ромашка»", "inn": "7707083893", "kpp": "773601001"}


def pages(rpc: Any, caller: dict[str, str], kind: str, limit: int = 2, **query: Any) -> list[dict[str, Any]]:
    """Every item of a list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = rpc.list_records(caller, kind, {**query, "limit": limit, **({"cursor": cursor} if cursor else {})})
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


def audit_of(crm: Any, entity_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in crm.outbox() if e["data"]["entity_id"] == entity_id]


# -- records ---------------------------------------------------------------------

def test_counterparty_crud_with_its_journal_events(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    created = rpc.create_record(admin, "counterparties", {
        **ROMASHKA, "phones": ["8 (495) 123-45-67"], "emails": ["Info@Romashka.ru"],
        "addresses": [{"kind": "legal", "text": "Москва, ул. Ленина, 1"}], "external_id": "1c-0001"})
    assert created["kind"] == "legal" and created["active"] is True
    assert created["phones"] == ["8 (495) 123-45-67"]  # shown as entered
    assert created["responsible_id"] == created["created_by"] == org.users["admin"]
    assert created["created_at"] == created["updated_at"]
    assert rpc.get_record(admin, "counterparties", created["id"]) == created

    changed = rpc.update_record(admin, "counterparties", created["id"], {"active": False, "full_name": None})
    assert changed["active"] is False and changed["full_name"] is None and changed["name"] == "Ромашка"
    assert changed["updated_at"] > created["updated_at"]

    rpc.delete_record(admin, "counterparties", created["id"])
    with pytest.raises(NotFound):
        rpc.get_record(admin, "counterparties", created["id"])

    journal = audit_of(crm, created["id"])
    assert [e["action"] for e in journal] == ["create", "update", "delete"]
    assert journal[0]["entity"] == "counterparty" and journal[0]["tenant_id"] == org.tenant_id
    assert journal[0]["actor"] == {"id": org.users["admin"], "login": "admin", "full_name": "Тестовый admin"}
    assert journal[0]["changes"]["inn"] == {"old": None, "new": "7707083893"}
    assert journal[1]["changes"] == {"active": {"old": True, "new": False},
                                     "full_name": {"old": "ООО «Ромашка»", "new": None}}
    assert journal[2]["changes"]["name"] == {"old": "Ромашка", "new": None}


def test_inn_kpp_rules(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "counterparties", {"name": "X", "inn": "7707083894"})
    assert list(exc.value.fields) == ["inn"] and "check digit" in exc.value.fields["inn"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "counterparties", {"name": "X", "kind": "individual", "inn": "7707083893"})
    assert "12 digits" in exc.value.fields["inn"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "counterparties", {"name": "X", "kpp": "773601001"})
    assert list(exc.value.fields) == ["kpp"]

    head_office = rpc.create_record(admin, "counterparties", ROMASHKA)
    branch = rpc.create_record(admin, "counterparties", {**ROMASHKA, "name": "Ромашка, филиал", "kpp": "503101001"})
    assert branch["inn"] == head_office["inn"]  # one ИНН, several КПП
    with pytest.raises(Conflict) as exc:
        rpc.create_record(admin, "counterparties", {**ROMASHKA, "name": "Дубль"})
    assert exc.value.code == "inn_kpp_taken"
    person = rpc.create_record(admin, "counterparties", {"name": "ИП Иванов", "kind": "individual",
                                                         "inn": "500100732259"})
    with pytest.raises(Conflict):
        rpc.create_record(admin, "counterparties", {"name": "Иванов", "kind": "individual", "inn": "500100732259"})
    with pytest.raises(ValidationFailed) as exc:  # the rule holds on the merged record
        rpc.update_record(admin, "counterparties", person["id"], {"kind": "legal"})
    assert "10 digits" in exc.value.fields["inn"]
    with pytest.raises(Conflict) as exc:
        rpc.update_record(admin, "counterparties", branch["id"], {"kpp": "773601001"})
    # another tenant may have the same counterparty
    other = crm.org().user("admin")
    assert rpc.create_record(other, "counterparties", ROMASHKA)["inn"] == ROMASHKA["inn"]


def test_contacts_products_and_links(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    company = rpc.create_record(admin, "counterparties", ROMASHKA)
    contact = rpc.create_record(admin, "contacts", {"full_name": "Петров Иван", "counterparty_id": company["id"],
                                                    "position": "директор", "phones": ["8 (916) 123-45-67"],
                                                    "emails": ["I.Petrov@Romashka.ru"]})
    assert contact["counterparty_id"] == company["id"] and contact["emails"] == ["I.Petrov@Romashka.ru"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "contacts", {"full_name": "X", "counterparty_id": str(uuid.uuid4())})
    assert list(exc.value.fields) == ["counterparty_id"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "contacts", {"full_name": "X", "phones": ["123-45-67"]})
    assert "area code" in exc.value.fields["phones.0"]
    unlinked = rpc.update_record(admin, "contacts", contact["id"], {"counterparty_id": None, "position": "ГД"})
    assert unlinked["counterparty_id"] is None and unlinked["position"] == "ГД"
    with pytest.raises(ValidationFailed) as exc:
        rpc.update_record(admin, "contacts", contact["id"], {"full_name": None})
    assert exc.value.fields == {"full_name": "cannot be null"}

    product = rpc.create_record(admin, "products", {"name": "Стул офисный", "article": "СТ-01", "group": "Мебель",
                                                    "unit": {"code": "796", "name": "шт"}, "price": 4990,
                                                    "vat_rate": "22", "external_id": "1c-stul"})
    assert product["price"] == "4990.00" and product["vat_rate"] == "22" and product["currency"] == "RUB"
    assert product["unit"] == {"code": "796", "name": "шт"}
    with pytest.raises(Conflict) as exc:
        rpc.create_record(admin, "products", {"name": "Дубль", "external_id": "1c-stul"})
    assert exc.value.code == "external_id_taken"
    no_vat = rpc.update_record(admin, "products", product["id"], {"vat_rate": None, "price": "10.5"})
    assert no_vat["vat_rate"] is None and no_vat["price"] == "10.50"
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "products", {"name": "X", "price": "-1", "currency": "рубли"})
    assert set(exc.value.fields) == {"price", "currency"}


def _catalogue(rpc: Any, caller: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    company = rpc.create_record(caller, "counterparties", {"name": f"Покупатель {uuid.uuid4().hex[:6]}"})
    chair = rpc.create_record(caller, "products", {"name": "Стул", "price": "1499.90", "vat_rate": "22"})
    table = rpc.create_record(caller, "products", {"name": "Стол", "price": "120.00", "vat_rate": "10"})
    return company, chair, table


def test_invoice_totals_numbers_and_payments(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    company, chair, table = _catalogue(rpc, admin)
    invoice = rpc.create_record(admin, "invoices", {
        "counterparty_id": company["id"], "status": "issued",
        "lines": [{"product_id": chair["id"], "quantity": "2", "discount_percent": "7.5"},
                  {"product_id": table["id"], "quantity": "0.333"},
                  {"product_id": table["id"], "quantity": 4, "price": "10.00", "vat_rate": None}]})
    assert invoice["number"] == "1" and invoice["status"] == "issued" and invoice["currency"] == "RUB"
    assert {k: invoice[k] for k in ("subtotal", "discount_total", "vat_total", "total", "paid_amount")} == {
        "subtotal": "3079.76", "discount_total": "224.99", "vat_total": "504.01", "total": "2854.77",
        "paid_amount": "0.00"}
    first = invoice["lines"][0]
    assert first == {"product_id": chair["id"], "name": "Стул", "unit": None, "quantity": "2", "price": "1499.90",
                     "discount_percent": "7.5", "vat_rate": "22", "amount": "2999.80", "discount_amount": "224.99",
                     "vat_amount": "500.38", "total": "2774.81"}
    assert invoice["lines"][2]["vat_rate"] is None and invoice["lines"][2]["vat_amount"] == "0.00"

    second = rpc.create_record(admin, "invoices", {"counterparty_id": company["id"],
                                                   "lines": [{"product_id": table["id"], "quantity": 1}]})
    assert second["number"] == "2" and second["status"] == "draft" and second["total"] == "120.00"
    with pytest.raises(Conflict) as exc:
        rpc.create_record(admin, "invoices", {"number": "2", "counterparty_id": company["id"],
                                              "lines": [{"product_id": table["id"], "quantity": 1}]})
    assert exc.value.code == "number_taken"
    manual = rpc.create_record(admin, "invoices", {"number": "3", "counterparty_id": company["id"],
                                                   "lines": [{"product_id": table["id"], "quantity": 1}]})
    assert manual["number"] == "3"
    assert rpc.create_record(admin, "invoices", {"counterparty_id": company["id"], "lines": [
        {"product_id": table["id"], "quantity": 1}]})["number"] == "4"  # the counter skips the taken number

    # payments move the status; deleting them moves it back
    pay = rpc.create_record(admin, "payments", {"counterparty_id": company["id"], "invoice_id": invoice["id"],
                                                "amount": "1000", "number": "512", "purpose": "Оплата по счёту 1"})
    assert rpc.get_record(admin, "invoices", invoice["id"])["status"] == "partly_paid"
    rest = rpc.create_record(admin, "payments", {"counterparty_id": company["id"], "invoice_id": invoice["id"],
                                                 "amount": "1854.77", "date": "2026-02-01"})
    paid = rpc.get_record(admin, "invoices", invoice["id"])
    assert paid["status"] == "paid" and paid["paid_amount"] == "2854.77"
    with pytest.raises(ValidationFailed) as exc:
        rpc.update_record(admin, "invoices", invoice["id"], {"status": "cancelled"})
    assert "payments" in exc.value.fields["status"]
    with pytest.raises(Conflict) as exc:
        rpc.delete_record(admin, "invoices", invoice["id"])
    assert exc.value.code == "in_use"
    rpc.update_record(admin, "payments", rest["id"], {"amount": "1"})
    assert rpc.get_record(admin, "invoices", invoice["id"])["status"] == "partly_paid"
    rpc.delete_record(admin, "payments", rest["id"])
    rpc.update_record(admin, "payments", pay["id"], {"invoice_id": None})
    back = rpc.get_record(admin, "invoices", invoice["id"])
    assert back["status"] == "issued" and back["paid_amount"] == "0.00"
    exported = rpc.export_records(admin, "invoices", {"counterparty_id": company["id"], "sort": "created_at"})
    assert exported["count"] == 4 and [i["number"] for i in exported["items"]] == ["1", "2", "3", "4"]
    assert exported["items"][0]["lines"] == back["lines"]
    statuses = [e["changes"]["status"]["new"] for e in audit_of(crm, invoice["id"]) if "status" in e["changes"]]
    assert statuses == ["issued", "partly_paid", "paid", "partly_paid", "issued"]

    # the rules of payments
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "payments", {"counterparty_id": company["id"], "invoice_id": invoice["id"],
                                              "amount": "5", "currency": "USD"})
    assert list(exc.value.fields) == ["currency"]
    stranger = rpc.create_record(admin, "counterparties", {"name": "Чужой"})
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "payments", {"counterparty_id": stranger["id"], "invoice_id": invoice["id"],
                                              "amount": "5"})
    assert list(exc.value.fields) == ["invoice_id"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "payments", {"counterparty_id": company["id"], "amount": "0"})
    assert list(exc.value.fields) == ["amount"]
    rpc.update_record(admin, "invoices", second["id"], {"status": "cancelled"})
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "payments", {"counterparty_id": company["id"], "invoice_id": second["id"],
                                              "amount": "5"})
    assert "cancelled" in exc.value.fields["invoice_id"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.update_record(admin, "invoices", second["id"], {"status": "paid"})
    assert "payments" in exc.value.fields["status"]


def test_invoice_lines_are_checked_on_the_server(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    company, chair, _ = _catalogue(rpc, admin)
    usd = rpc.create_record(admin, "products", {"name": "Licence", "price": "100", "currency": "USD"})
    other_company = rpc.create_record(admin, "counterparties", {"name": "Другая"})
    their_contact = rpc.create_record(admin, "contacts", {"full_name": "Чужой", "counterparty_id": other_company["id"]})
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "invoices", {"counterparty_id": company["id"], "contact_id": their_contact["id"],
                                              "lines": [{"product_id": chair["id"], "quantity": 1}]})
    assert list(exc.value.fields) == ["contact_id"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "invoices", {"counterparty_id": company["id"], "lines": [
            {"product_id": chair["id"], "quantity": 1}, {"product_id": str(uuid.uuid4()), "quantity": 1},
            {"product_id": usd["id"], "quantity": 1}, {"product_id": chair["id"], "quantity": 0}]})
    assert set(exc.value.fields) == {"lines.3.quantity"}  # shape first
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "invoices", {"counterparty_id": company["id"], "lines": [
            {"product_id": chair["id"], "quantity": 1}, {"product_id": str(uuid.uuid4()), "quantity": 1},
            {"product_id": usd["id"], "quantity": 1}]})
    assert set(exc.value.fields) == {"lines.1.product_id", "lines.2.price"}
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "invoices", {"counterparty_id": company["id"], "lines": []})
    assert list(exc.value.fields) == ["lines"]
    in_usd = rpc.create_record(admin, "invoices", {"counterparty_id": company["id"], "currency": "usd", "lines": [
        {"product_id": usd["id"], "quantity": 3}]})
    assert in_usd["currency"] == "USD" and in_usd["total"] == "300.00" and in_usd["vat_total"] == "54.10"
    # another tenant's counterparty does not exist here
    stranger = crm.org().user("admin")
    theirs = rpc.create_record(stranger, "counterparties", {"name": "Их"})
    with pytest.raises(ValidationFailed) as exc:
        rpc.create_record(admin, "invoices", {"counterparty_id": theirs["id"],
                                              "lines": [{"product_id": chair["id"], "quantity": 1}]})
    assert list(exc.value.fields) == ["counterparty_id"]
    with pytest.raises(Conflict) as exc:
        rpc.delete_record(admin, "products", usd["id"])
    assert exc.value.code == "in_use" and exc.value.details["used_by"] == {"invoice lines": 1}
    rpc.delete_record(admin, "products", chair["id"])  # in no invoice


def test_a_discount_needs_its_right(crm):
    org = crm.org()
    admin = org.user("admin")
    rights = {**OWN, "products.read": "all", "counterparties.read": "all"}
    seller = org.user("seller", rights)
    rpc = crm.rpc
    company, chair, _ = _catalogue(rpc, admin)
    body = {"counterparty_id": company["id"], "lines": [{"product_id": chair["id"], "quantity": 1,
                                                         "discount_percent": "10"}]}
    with pytest.raises(Forbidden) as exc:
        rpc.create_record(seller, "invoices", body)
    assert exc.value.details["right"] == "invoices.discount" and "invoices.discount" in exc.value.message
    plain = rpc.create_record(seller, "invoices", {**body, "lines": [{"product_id": chair["id"], "quantity": 1}]})
    with pytest.raises(Forbidden):
        rpc.update_record(seller, "invoices", plain["id"], {"lines": body["lines"]})
    org.change("seller", rights={**rights, "invoices.discount": "all"})
    assert rpc.create_record(seller, "invoices", body)["discount_total"] == "149.99"


def test_invoice_numbers_are_unique_and_gapless_under_concurrency(crm):
    org = crm.org()
    admin = org.user("admin")
    company, _, table = _catalogue(crm.rpc, admin)
    body = {"counterparty_id": company["id"], "lines": [{"product_id": table["id"], "quantity": 1}]}

    def create(_: int) -> str:
        with ClusterRpcProxy({"AMQP_URI": crm.amqp_uri}, timeout=30) as proxy:
            return str(proxy.crm.create_record(admin, "invoices", body)["number"])

    numbers = list(eventlet.GreenPool(8).imap(create, range(16)))
    assert sorted(numbers, key=int) == [str(n) for n in range(1, 17)]


# -- rights ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree(crm):
    """Отдел продаж ⊃ Москва ⊃ Группа А; and Поддержка beside it. Everyone owns three contacts."""
    org = crm.org()
    admin = org.user("admin")
    names = ["head", "mid", "emp1", "emp2", "other"]
    for name in names:
        org.users[name] = str(uuid.uuid4())
    u = org.users
    team_a = [u["emp1"], u["emp2"]]
    org.user("head", DEPARTMENT, [u["head"], u["mid"], *team_a])
    org.user("mid", DEPARTMENT, [u["mid"], *team_a])
    org.user("emp1", OWN, team_a)
    org.user("emp2", OWN, team_a)
    org.user("other", {**OWN, "contacts.read": "all"}, [u["other"]])
    contacts: dict[str, list[str]] = {}
    for n, name in enumerate(["admin", *names]):
        contacts[name] = [crm.rpc.create_record(admin, "contacts", {
            "full_name": f"Клиент {name} {i}", "responsible_id": u[name],
            "phones": [f"8 (91{n}) 555-{n}{n}-{i:02d}"], "emails": [f"{name}{i}@client.test"]})["id"]
            for i in range(3)]
    return org, contacts


def visible_to(contacts: dict[str, list[str]], *owners: str) -> set[str]:
    return {cid for owner in owners for cid in contacts[owner]}


@pytest.mark.parametrize("viewer,owners", [
    ("admin", ("admin", "head", "mid", "emp1", "emp2", "other")),
    ("head", ("head", "mid", "emp1", "emp2")),
    ("mid", ("mid", "emp1", "emp2")),
    ("emp1", ("emp1",)),
    ("other", ("admin", "head", "mid", "emp1", "emp2", "other")),
])
def test_scopes_give_the_same_set_in_list_count_search_export_and_reads(crm, tree, viewer, owners):
    org, contacts = tree
    caller, rpc = org.caller(viewer), crm.rpc
    expected = visible_to(contacts, *owners)
    assert ids(pages(rpc, caller, "contacts")) == expected
    assert ids(pages(rpc, caller, "contacts", sort="-created_at", limit=4)) == expected
    assert rpc.count_records(caller, "contacts", {})["count"] == len(expected)
    assert ids(rpc.export_records(caller, "contacts", {})["items"]) == expected
    assert ids(pages(rpc, caller, "contacts", q="клиент")) == expected
    assert rpc.count_records(caller, "contacts", {"q": "клиент"})["count"] == len(expected)
    # a phone fragment in another format than entered: mid's numbers are 8 (912) 555-22-0i
    by_phone = ids(pages(rpc, caller, "contacts", q="+7 912 555"))
    assert by_phone == expected & visible_to(contacts, "mid")
    assert ids(rpc.export_records(caller, "contacts", {"q": "(912) 555"})["items"]) == by_phone
    assert rpc.count_records(caller, "contacts", {"q": "912555"})["count"] == len(by_phone)
    assert ids(pages(rpc, caller, "contacts", q="MID1@client")) == expected & {contacts["mid"][1]}
    for owner, owned in contacts.items():
        for cid in owned:
            if cid in expected:
                assert rpc.get_record(caller, "contacts", cid)["id"] == cid
            else:
                with pytest.raises(NotFound):
                    rpc.get_record(caller, "contacts", cid)


def test_records_outside_the_scope_are_not_found_for_writes_too(crm, tree):
    org, contacts = tree
    rpc = crm.rpc
    emp1, mid, other = org.caller("emp1"), org.caller("mid"), org.caller("other")
    theirs = contacts["emp2"][0]
    with pytest.raises(NotFound):
        rpc.update_record(emp1, "contacts", theirs, {"position": "x"})
    with pytest.raises(NotFound):
        rpc.delete_record(emp1, "contacts", theirs)
    # "other" reads everything but updates only their own: visible yet not writable is 403
    with pytest.raises(Forbidden) as exc:
        rpc.update_record(other, "contacts", theirs, {"position": "x"})
    assert exc.value.details["right"] == "contacts.update"
    # a department head writes the department's records
    assert rpc.update_record(mid, "contacts", theirs, {"position": "менеджер"})["position"] == "менеджер"


def test_reassigning_the_responsible_user(crm, tree):
    org, contacts = tree
    rpc, u = crm.rpc, org.users
    emp1, mid, admin = org.caller("emp1"), org.caller("mid"), org.caller("admin")
    mine = rpc.create_record(emp1, "contacts", {"full_name": "Мой клиент"})
    assert mine["responsible_id"] == u["emp1"]
    with pytest.raises(Forbidden) as exc:  # own scope: only yourself
        rpc.update_record(emp1, "contacts", mine["id"], {"responsible_id": u["emp2"]})
    assert exc.value.details["field"] == "responsible_id"
    with pytest.raises(Forbidden):
        rpc.create_record(emp1, "contacts", {"full_name": "Чужой", "responsible_id": u["emp2"]})
    moved = rpc.update_record(mid, "contacts", mine["id"], {"responsible_id": u["emp2"]})
    assert moved["responsible_id"] == u["emp2"]
    with pytest.raises(Forbidden):  # not in mid's departments
        rpc.update_record(mid, "contacts", mine["id"], {"responsible_id": u["other"]})
    with pytest.raises(ValidationFailed) as exc:  # scope all: any active user of the tenant, no one else
        rpc.update_record(admin, "contacts", mine["id"], {"responsible_id": str(uuid.uuid4())})
    assert list(exc.value.fields) == ["responsible_id"]
    assert rpc.update_record(admin, "contacts", mine["id"], {"responsible_id": u["other"]})["responsible_id"] \
        == u["other"]
    with pytest.raises(NotFound):  # and now it is out of mid's reach
        rpc.get_record(mid, "contacts", mine["id"])


def test_scope_none_is_forbidden_naming_the_right(crm):
    org = crm.org()
    nobody = org.user("nobody", {"contacts.read": "own"})
    rpc = crm.rpc
    with pytest.raises(Forbidden) as exc:
        rpc.list_records(nobody, "counterparties", {})
    assert exc.value.details["right"] == "counterparties.read"
    for call in (lambda: rpc.count_records(nobody, "products", {}),
                 lambda: rpc.export_records(nobody, "invoices", {}),
                 lambda: rpc.get_record(nobody, "payments", str(uuid.uuid4()))):
        with pytest.raises(Forbidden):
            call()
    with pytest.raises(Forbidden) as exc:
        rpc.create_record(nobody, "contacts", {"full_name": "X"})
    assert exc.value.details["right"] == "contacts.create"
    assert rpc.list_records(nobody, "contacts", {}) == {"items": [], "next_cursor": None}


def test_unknown_and_inactive_callers(crm):
    org = crm.org()
    org.user("gone", active=False)
    with pytest.raises(Unauthenticated):
        crm.rpc.list_records(org.caller("gone"), "contacts", {})
    with pytest.raises(Unauthenticated):
        crm.rpc.list_records({"tenant_id": org.tenant_id, "user_id": str(uuid.uuid4())}, "contacts", {})
    with pytest.raises(Unauthenticated):
        crm.rpc.list_records({"tenant_id": org.tenant_id}, "contacts", {})
    with pytest.raises(NotFound):
        crm.rpc.list_records(org.user("admin"), "widgets", {})


def test_a_role_change_applies_to_the_next_request(crm):
    org = crm.org()
    admin = org.user("admin")
    seller = org.user("seller", OWN)
    rpc = crm.rpc
    theirs = rpc.create_record(admin, "contacts", {"full_name": "Клиент админа"})
    assert rpc.list_records(seller, "contacts", {})["items"] == []
    calls = len(crm.principal_calls)
    rpc.list_records(seller, "contacts", {})
    assert len(crm.principal_calls) == calls  # cached: no RPC to users per request
    org.change("seller", rights={**OWN, "contacts.read": "all"})  # the users service announces it
    assert ids(rpc.list_records(seller, "contacts", {})["items"]) == {theirs["id"]}
    org.change("seller", rights={**OWN, "contacts.read": "none"})
    with pytest.raises(Forbidden):
        rpc.list_records(seller, "contacts", {})
    org.change("seller", active=False)
    with pytest.raises(Unauthenticated):
        rpc.list_records(seller, "contacts", {})


def test_another_tenants_ids_are_not_found(crm):
    mine, theirs = crm.org(), crm.org()
    me, them = mine.user("admin"), theirs.user("admin")
    rpc = crm.rpc
    company = rpc.create_record(them, "counterparties", {"name": "Их компания"})
    contact = rpc.create_record(them, "contacts", {"full_name": "Их контакт", "phones": ["+7 916 000-00-01"]})
    for kind, rid in (("counterparties", company["id"]), ("contacts", contact["id"])):
        with pytest.raises(NotFound):
            rpc.get_record(me, kind, rid)
        with pytest.raises(NotFound):
            rpc.update_record(me, kind, rid, {})
        with pytest.raises(NotFound):
            rpc.delete_record(me, kind, rid)
    assert rpc.list_records(me, "contacts", {"q": "916"})["items"] == []
    assert rpc.match_contact(mine.tenant_id, phone="89160000001")["contacts"] == []
    with pytest.raises(NotFound):
        rpc.get_record(me, "contacts", "not-a-uuid")


# -- lists ----------------------------------------------------------------------------

def test_cursor_pages_stay_stable_under_inserts(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    made = [rpc.create_record(admin, "products", {"name": f"Товар {n:02d}"})["id"] for n in range(6)]
    first = rpc.list_records(admin, "products", {"limit": 3})
    assert [p["name"] for p in first["items"]] == ["Товар 00", "Товар 01", "Товар 02"]
    # records inserted before and after the cursor while the client pages
    rpc.create_record(admin, "products", {"name": "Товар 00а"})
    rpc.create_record(admin, "products", {"name": "Товар 99"})
    rest = pages(rpc, admin, "products", limit=3, cursor=first["next_cursor"])
    names = [p["name"] for p in first["items"] + rest]
    assert names == ["Товар 00", "Товар 01", "Товар 02", "Товар 03", "Товар 04", "Товар 05", "Товар 99"]
    newest = rpc.list_records(admin, "products", {"sort": "-created_at", "limit": 2})["items"]
    assert [p["name"] for p in newest] == ["Товар 99", "Товар 00а"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.list_records(admin, "products", {"sort": "-name", "cursor": first["next_cursor"]})
    assert list(exc.value.fields) == ["cursor"]
    with pytest.raises(ValidationFailed):
        rpc.list_records(admin, "products", {"cursor": "garbage"})
    assert len(made) == 6


def test_filters(crm):
    org = crm.org()
    admin = org.user("admin")
    seller = org.user("seller")
    rpc = crm.rpc
    a = rpc.create_record(admin, "counterparties", {"name": "Альфа", "responsible_id": org.users["seller"]})
    b = rpc.create_record(admin, "counterparties", {"name": "Бета", "kind": "individual", "active": False})
    ca = rpc.create_record(admin, "contacts", {"full_name": "Анна", "counterparty_id": a["id"]})
    rpc.create_record(admin, "contacts", {"full_name": "Борис", "counterparty_id": b["id"]})
    assert ids(rpc.list_records(admin, "counterparties", {"responsible_id": org.users["seller"]})["items"]) == {a["id"]}
    assert ids(rpc.list_records(admin, "counterparties", {"active": False})["items"]) == {b["id"]}
    assert ids(rpc.list_records(admin, "counterparties", {"kind": "individual"})["items"]) == {b["id"]}
    assert ids(rpc.list_records(admin, "contacts", {"counterparty_id": a["id"]})["items"]) == {ca["id"]}
    assert [c["name"] for c in rpc.list_records(seller, "counterparties", {"sort": "-name"})["items"]] == \
        ["Бета", "Альфа"]
    with pytest.raises(ValidationFailed) as exc:
        rpc.list_records(admin, "contacts", {"status": "paid", "limit": 0})
    assert set(exc.value.fields) == {"limit"}  # shape first, then the kind's filters
    with pytest.raises(ValidationFailed) as exc:
        rpc.list_records(admin, "contacts", {"status": "paid"})
    assert set(exc.value.fields) == {"status"}


# -- matching and communications ---------------------------------------------------------

def test_matching_phones_and_emails_in_any_format(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    company = rpc.create_record(admin, "counterparties", {"name": "Ромашка", "phones": ["+7 (495) 111-22-33"],
                                                          "emails": ["office@romashka.ru"]})
    contact = rpc.create_record(admin, "contacts", {"full_name": "Петров", "counterparty_id": company["id"],
                                                    "phones": ["8 (916) 123-45-67"],
                                                    "emails": ["I.Petrov@Romashka.RU"]})
    for phone in ("+79161234567", "8 916 123 45 67", "9161234567", "+7 (916) 123-45-67"):
        found = rpc.match_contact(org.tenant_id, phone=phone)
        assert found["contact_id"] == contact["id"] and found["counterparty_id"] == company["id"], phone
        assert found["phone"] == "+79161234567"
    found = rpc.match_contact(org.tenant_id, email="i.petrov@romashka.ru")
    assert [c["id"] for c in found["contacts"]] == [contact["id"]]
    assert found["responsible_id"] == org.users["admin"]
    by_office = rpc.match_contact(org.tenant_id, phone="84951112233")
    assert by_office["contacts"] == [] and by_office["counterparty_id"] == company["id"]
    assert rpc.match_contact(org.tenant_id, phone="123")["contact_id"] is None
    # changing or deleting the contact changes what matches
    rpc.update_record(admin, "contacts", contact["id"], {"phones": ["+7 903 000-00-00"]})
    assert rpc.match_contact(org.tenant_id, phone="89161234567")["contacts"] == []
    assert rpc.match_contact(org.tenant_id, phone="89030000000")["contact_id"] == contact["id"]
    rpc.delete_record(admin, "contacts", contact["id"])
    assert rpc.match_contact(org.tenant_id, email="I.Petrov@romashka.ru")["contacts"] == []


def _event(tenant_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_type": event_type, "aggregate_id": str(uuid.uuid4()),
            "tenant_id": tenant_id, "occurred_at": "2026-03-02T10:00:00+00:00", "data": data}


def test_calls_and_mails_from_events_become_communications(crm):
    org = crm.org()
    admin = org.user("admin")
    seller = org.user("seller", {**OWN, "contacts.read": "all"})
    rpc = crm.rpc
    company = rpc.create_record(admin, "counterparties", {"name": "Ромашка"})
    contact = rpc.create_record(admin, "contacts", {"full_name": "Петров", "counterparty_id": company["id"],
                                                    "phones": ["8 (916) 123-45-67"], "emails": ["petrov@r.ru"]})
    dispatch = event_dispatcher({"AMQP_URI": crm.amqp_uri})
    call = _event(org.tenant_id, "call_logged", {
        "tenant_id": org.tenant_id, "call_id": "pbx-1", "direction": "incoming", "phone": "+7 916 123 45 67",
        "started_at": "2026-03-02T10:00:00+03:00", "duration_seconds": 95, "answered": True,
        "user_id": org.users["seller"]})
    dispatch("telephony", "call_logged", call)
    dispatch("telephony", "call_logged", call)  # redelivered: handled once
    mail = _event(org.tenant_id, "mail_logged", {
        "message_id": "<abc@r.ru>", "direction": "outgoing", "email": "Petrov@R.ru",
        "sent_at": "2026-03-02T11:00:00+03:00", "subject": "Счёт на оплату"})
    dispatch("mail", "mail_logged", mail)

    def both() -> list[dict[str, Any]] | None:
        items = rpc.list_records(admin, "communications", {"contact_id": contact["id"]})["items"]
        return items if len(items) == 2 else None

    listing = wait_for(both, message="two communications")
    email, phone_call = listing  # newest first
    assert phone_call["kind"] == "call" and phone_call["direction"] == "incoming"
    assert phone_call["phone"] == "+79161234567" and phone_call["duration_seconds"] == 95
    assert phone_call["contact_id"] == contact["id"] and phone_call["counterparty_id"] == company["id"]
    assert phone_call["handled_by"] == phone_call["responsible_id"] == org.users["seller"]
    assert phone_call["external_ref"] == "pbx-1" and phone_call["source"] == "telephony"
    assert email["kind"] == "email" and email["subject"] == "Счёт на оплату" and email["email"] == "petrov@r.ru"
    assert email["responsible_id"] == org.users["admin"]  # nobody handled it: the contact's responsible
    assert ids(rpc.list_records(admin, "communications", {"counterparty_id": company["id"]})["items"]) == \
        ids(listing)
    # rights: the seller sees the call they handled, not the mail
    assert ids(rpc.list_records(seller, "communications", {})["items"]) == {phone_call["id"]}
    with pytest.raises(NotFound):
        rpc.get_record(seller, "communications", email["id"])
    # the same call logged again (a later event) updates it
    dispatch("telephony", "call_logged", _event(org.tenant_id, "call_logged", {
        **call["data"], "duration_seconds": 120}))
    wait_for(lambda: rpc.get_record(admin, "communications", phone_call["id"])["duration_seconds"] == 120,
             message="the call updated")
    assert rpc.count_records(admin, "communications", {})["count"] == 2
    with pytest.raises(NotFound):  # read-only through the API
        rpc.create_record(admin, "communications", {})
    # a malformed event is parked at once (not retried forever, not dropped): counted and replayable
    dispatch("telephony", "call_logged", _event(org.tenant_id, "call_logged", {"call_id": "x"}))
    labels = {"service": "crm", "handler": "on_call_logged"}
    wait_for(lambda: METRICS.value("crm_events_malformed_total", labels) == 1, message="the malformed event parked")
    assert METRICS.value("crm_events_parked_total", labels) == 1
    assert METRICS.value("crm_events_retried_total", labels) == 0
    with Connection(crm.amqp_uri) as conn:
        message = conn.SimpleQueue("evt-telephony-call_logged--crm.on_call_logged.parked").get(timeout=5)
        assert "MalformedEvent" in message.headers["x-crm-error"] and message.payload["data"] == {"call_id": "x"}
        message.requeue()
    assert replay_parked(crm.amqp_uri, "evt-telephony-call_logged--crm.on_call_logged.parked") == 1
    wait_for(lambda: METRICS.value("crm_events_malformed_total", labels) == 2, message="parked again on replay")
    # deleting the contact keeps the history, unlinked
    rpc.delete_record(admin, "contacts", contact["id"])
    assert rpc.get_record(admin, "communications", phone_call["id"])["contact_id"] is None


def test_a_redelivered_create_answers_the_record_it_made(crm):
    org = crm.org()
    admin = org.user("admin")
    body = {"full_name": "Один раз"}
    with ClusterRpcProxy({"AMQP_URI": crm.amqp_uri}, context_data={"request_id": "req-1"}, timeout=20) as proxy:
        first = proxy.crm.create_record(admin, "contacts", body)
        again = proxy.crm.create_record(admin, "contacts", body)
        assert again == first
        with pytest.raises(Conflict) as exc:
            proxy.crm.create_record(admin, "contacts", {"full_name": "Другое"})
        assert exc.value.code == "request_id_reused"
    assert crm.rpc.count_records(admin, "contacts", {})["count"] == 1


def test_deleting_what_others_use_is_a_conflict(crm):
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    company, _, table = _catalogue(rpc, admin)
    contact = rpc.create_record(admin, "contacts", {"full_name": "Петров", "counterparty_id": company["id"]})
    rpc.create_record(admin, "invoices", {"counterparty_id": company["id"], "contact_id": contact["id"],
                                          "lines": [{"product_id": table["id"], "quantity": 1}]})
    with pytest.raises(Conflict) as exc:
        rpc.delete_record(admin, "counterparties", company["id"])
    assert exc.value.details["used_by"] == {"contacts": 1, "invoices": 1}
    with pytest.raises(Conflict):
        rpc.delete_record(admin, "contacts", contact["id"])


def test_housekeeping_forgets_old_request_ids(crm):
    from nameko.testing.services import entrypoint_hook

    org = crm.org()
    admin = org.user("admin")
    with ClusterRpcProxy({"AMQP_URI": crm.amqp_uri}, context_data={"request_id": "req-old"}, timeout=20) as proxy:
        proxy.crm.create_record(admin, "products", {"name": "Старый"})
    with crm.engine.begin() as conn:
        conn.execute(sa.text("UPDATE create_requests SET created_at = now() - interval '100 hours' "
                             "WHERE request_id = 'req-old'"))
    with entrypoint_hook(crm.container, "housekeeping") as housekeeping:
        housekeeping()
    assert crm.scalar("SELECT count(*) FROM create_requests WHERE request_id = 'req-old'") == 0


def test_phone_search_as_people_type_numbers(crm):
    """A number saved as +7 916 123-45-60 is found however it is typed, fragments too; match_contact alike."""
    org = crm.org()
    admin = org.user("admin")
    rpc = crm.rpc
    contact = rpc.create_record(admin, "contacts", {"full_name": "Сидоров", "phones": ["+7 916 123-45-60"]})
    company = rpc.create_record(admin, "counterparties", {"name": "Лютик", "phones": ["8 (495) 765-43-21"]})
    typed = ("+79161234560", "9161234560", "89161234560", "8 (916) 123-45-60", "8-916-123-45-60", "7 916 1234560",
             "123-45", "916 123")
    for q in typed:
        assert [c["id"] for c in rpc.list_records(admin, "contacts", {"q": q})["items"]] == [contact["id"]], q
        assert rpc.count_records(admin, "contacts", {"q": q})["count"] == 1, q
    for q in ("+7 495 765-43-21", "84957654321", "4957654321", "765-43"):
        assert [c["id"] for c in rpc.list_records(admin, "counterparties", {"q": q})["items"]] == [company["id"]], q
    assert rpc.list_records(admin, "contacts", {"q": "89161234569"})["items"] == []
    for phone in typed[:6]:
        assert rpc.match_contact(org.tenant_id, phone=phone)["contact_id"] == contact["id"], phone
    assert rpc.match_contact(org.tenant_id, phone="8 (495) 765-43-21")["counterparty_id"] == company["id"]
