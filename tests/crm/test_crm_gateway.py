"""CRM records through the HTTP gateway against the whole suite: a tenant is
created with the operator token, its org structure and users through the
users API, and every user logs in through ``POST /api/v1/auth/login``. The
principal here is the real users service's."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.testing import Instance, error_of, wait_for


@pytest.fixture(scope="module")
def org(suite: Any) -> Any:
    """Продажи ⊃ Москва ⊃ Группа А, and Поддержка; managers head the first two."""
    inst = Instance(suite)
    manager, employee = inst.role_id("manager"), inst.role_id("employee")
    sales = inst.department("Продажи")
    moscow = inst.department("Москва", sales)
    team = inst.department("Группа А", moscow)
    support = inst.department("Поддержка")
    inst.users = {  # type: ignore[attr-defined]
        "admin": inst.admin,
        "boss": inst.staff("boss", sales, manager),
        "lead": inst.staff("lead", moscow, manager),
        "seller1": inst.staff("seller1", team, employee),
        "seller2": inst.staff("seller2", team, employee),
        "helper": inst.staff("helper", support, employee),
    }
    return inst


def test_crud_of_every_kind_through_the_gateway(org):
    api = org.admin
    company = api.ok("POST", "/counterparties", {
        "name": "Ромашка", "full_name": "ООО «Ромашка»", "inn": "7707083893", "kpp": "773601001",
        "phones": ["8 (495) 123-45-67"], "emails": ["info@romashka.ru"],
        "addresses": [{"kind": "legal", "text": "Москва"}], "external_id": "1c-7707"}, status=201)
    assert company["responsible_id"] == company["created_by"] == api.user_id
    assert api.ok("GET", f"/counterparties/{company['id']}") == company
    assert api.ok("PATCH", f"/counterparties/{company['id']}", {"active": False})["active"] is False
    contact = api.ok("POST", "/contacts", {"full_name": "Петров Иван", "counterparty_id": company["id"],
                                           "position": "директор", "phones": ["+7 916 1234567"]}, status=201)
    assert api.ok("PATCH", f"/contacts/{contact['id']}", {"position": "ГД"})["position"] == "ГД"
    product = api.ok("POST", "/products", {"name": "Стул", "article": "СТ-1", "group": "Мебель",
                                           "unit": {"code": "796", "name": "шт"}, "price": "1499.90",
                                           "vat_rate": "22"}, status=201)
    line = {"product_id": product["id"], "quantity": "2", "discount_percent": "7.5"}
    invoice = api.ok("POST", "/invoices", {"counterparty_id": company["id"], "contact_id": contact["id"],
                                           "status": "issued", "lines": [line]}, status=201)
    assert (invoice["subtotal"], invoice["discount_total"], invoice["vat_total"], invoice["total"]) == (
        "2999.80", "224.99", "500.38", "2774.81")
    payment = api.ok("POST", "/payments", {"counterparty_id": company["id"], "invoice_id": invoice["id"],
                                           "amount": "2774.81", "date": "2026-03-01", "number": "77"}, status=201)
    assert api.ok("GET", f"/invoices/{invoice['id']}")["status"] == "paid"
    assert api.ok("GET", "/payments", invoice_id=invoice["id"])["items"] == [payment]
    assert api.ok("GET", "/invoices/count", counterparty_id=company["id"]) == {"count": 1}
    error_of(api.delete(f"/counterparties/{company['id']}"), 409, "in_use")
    for kind, rid in (("payments", payment["id"]), ("invoices", invoice["id"]), ("products", product["id"]),
                      ("contacts", contact["id"]), ("counterparties", company["id"])):
        assert api.delete(f"/{kind}/{rid}").status_code == 204
        error_of(api.get(f"/{kind}/{rid}"), 404, "not_found")


def test_bad_input_is_a_422_naming_the_field(org):
    api = org.admin
    error = error_of(api.post("/counterparties", {"name": "X", "inn": "7707083894"}), 422, "validation_failed")
    assert list(error["fields"]) == ["inn"] and "ИНН" in error["fields"]["inn"]
    error = error_of(api.post("/counterparties", {"name": "X", "kind": "individual", "inn": "7707083893"}), 422,
                     "validation_failed")
    assert "12 digits" in error["fields"]["inn"]
    error = error_of(api.post("/contacts", {"full_name": "X", "phones": ["12-34"], "emails": ["nope"]}), 422,
                     "validation_failed")
    assert set(error["fields"]) == {"phones.0", "emails.0"}
    error = error_of(api.post("/invoices", {"counterparty_id": str(uuid.uuid4()), "lines": [
        {"product_id": str(uuid.uuid4()), "quantity": "-1"}]}), 422, "validation_failed")
    assert set(error["fields"]) == {"lines.0.quantity"}
    error_of(api.get("/contacts", unknown="1"), 422, "validation_failed")
    error_of(api.get("/contacts", sort="-date"), 422, "validation_failed")
    error_of(api.call("POST", "/contacts", data="{not json"), 400, "malformed_json")


def test_the_discount_right(org):
    seller, boss, admin = org.users["seller1"], org.users["boss"], org.admin
    company = seller.ok("POST", "/counterparties", {"name": f"Клиент {uuid.uuid4().hex[:4]}"}, status=201)
    product = admin.ok("POST", "/products", {"name": "Диван", "price": "30000"}, status=201)
    body = {"counterparty_id": company["id"],
            "lines": [{"product_id": product["id"], "quantity": 1, "discount_percent": "5"}]}
    error = error_of(seller.post("/invoices", body), 403, "forbidden")
    assert "invoices.discount" in error["message"] and error["right"] == "invoices.discount"
    assert seller.ok("POST", "/invoices", {**body, "lines": [{"product_id": product["id"], "quantity": 1}]},
                     status=201)["total"] == "30000.00"
    made = boss.ok("POST", "/invoices", body, status=201)  # the manager role has it
    assert made["discount_total"] == "1500.00" and made["total"] == "28500.00" and made["vat_total"] == "5139.34"


def test_a_three_level_tree_sees_exactly_its_records(org):
    tag = uuid.uuid4().hex[:6]
    block = str(uuid.uuid4().int % 90 + 10)
    owned: dict[str, set[str]] = {}
    for n, (name, api) in enumerate(org.users.items()):
        owned[name] = {api.ok("POST", "/contacts", {
            "full_name": f"Контакт {tag} {name} {i}", "phones": [f"8 (9{n}{n}) 100-{block}-0{i}"]},
            status=201)["id"] for i in range(2)}
    sees = {
        "admin": set(org.users),
        "boss": {"boss", "lead", "seller1", "seller2"},
        "lead": {"lead", "seller1", "seller2"},
        "seller1": {"seller1"},
        "helper": {"helper"},
    }
    every = set().union(*owned.values())
    for viewer, owners in sees.items():
        api = org.users[viewer]
        expected = set().union(*(owned[o] for o in owners))
        listed = {c["id"] for c in api.all("contacts", q=tag)}
        assert listed == expected, viewer
        assert api.ok("GET", "/contacts/count", q=tag) == {"count": len(expected)}, viewer
        assert {c["id"] for c in api.all("contacts", q=tag, sort="-created_at")} == expected
        # a phone fragment written differently from how it was entered: lead's numbers are 8 (922) …
        by_phone = {c["id"] for c in api.all("contacts", q="+7 922 100")} & every
        assert by_phone == expected & owned["lead"], viewer
        for cid in every:
            status = api.get(f"/contacts/{cid}").status_code
            assert status == (200 if cid in expected else 404), (viewer, cid)
        outside = next(iter(every - expected), None)
        if outside:
            error_of(api.patch(f"/contacts/{outside}", {"position": "x"}), 404, "not_found")
            error_of(api.delete(f"/contacts/{outside}"), 404, "not_found")


def test_another_tenants_ids_answer_404(suite, org):
    mine = org.admin.ok("POST", "/contacts", {"full_name": "Секретный", "phones": ["+7 900 111-22-33"]}, status=201)
    other = Instance(suite).admin
    for method in ("GET", "PATCH", "DELETE"):
        resp = other.call(method, f"/contacts/{mine['id']}", json={} if method == "PATCH" else None)
        error_of(resp, 404, "not_found")
    assert other.ok("GET", "/contacts", q="900 111")["items"] == []
    error_of(other.post("/invoices", {"counterparty_id": str(uuid.uuid4()), "lines": [
        {"product_id": str(uuid.uuid4()), "quantity": 1}]}), 422, "validation_failed")


def test_phone_and_email_matching_with_other_formats(suite, org):
    api = org.admin
    contact = api.ok("POST", "/contacts", {"full_name": "Сидоров", "phones": ["8 (915) 765-43-21"],
                                           "emails": ["A.Sidorov@Example.RU"]}, status=201)
    for q in ("+7 915 765", "9157654321", "765-43-21", "a.sidorov@example", "СИДОРОВ"):
        assert contact["id"] in {c["id"] for c in api.ok("GET", "/contacts", q=q)["items"]}, q
    with ClusterRpcProxy({"AMQP_URI": suite.containers.amqp_uri}, timeout=20) as proxy:
        for phone in ("+79157654321", "8 915 765 43 21", "(915) 765-43-21"):
            assert proxy.crm.match_contact(org.tenant_id, phone=phone)["contact_id"] == contact["id"], phone
        assert proxy.crm.match_contact(org.tenant_id, email="a.sidorov@example.ru")["contact_id"] == contact["id"]
        assert proxy.crm.match_contact(str(uuid.uuid4()), phone="+79157654321")["contact_id"] is None


def test_a_role_change_reaches_the_crm_service(org):
    admin = org.admin
    role = admin.ok("POST", "/roles", {"name": f"Стажёр {uuid.uuid4().hex[:4]}",
                                       "rights": {"contacts.read": "own", "contacts.create": "own"}}, status=201)
    root = next(d["id"] for d in admin.ok("GET", "/departments")["items"] if d["is_root"])
    trainee = org.staff(f"trainee{uuid.uuid4().hex[:4]}", root, role["id"])
    theirs = admin.ok("POST", "/contacts", {"full_name": "Чужой клиент"}, status=201)
    error_of(trainee.get(f"/contacts/{theirs['id']}"), 404, "not_found")
    error_of(trainee.get("/counterparties"), 403, "forbidden")
    admin.ok("PATCH", f"/roles/{role['id']}", {"rights": {"contacts.read": "all", "counterparties.read": "all"}})
    # principal_changed leaves the users service's outbox as its write commits; the crm service drops
    # the cached principal when it arrives (milliseconds), so the change applies from the next requests
    wait_for(lambda: trainee.get(f"/contacts/{theirs['id']}").status_code == 200, timeout=5,
             message="the widened scope applied")
    assert trainee.get("/counterparties").status_code == 200
    admin.ok("PATCH", f"/roles/{role['id']}", {"rights": {"contacts.read": "none"}})
    wait_for(lambda: trainee.get("/contacts").status_code == 403, timeout=5, message="the right withdrawn")


def test_changes_reach_the_audit_journal(org):
    api = org.admin
    contact = api.ok("POST", "/contacts", {"full_name": "Для журнала"}, status=201)
    api.ok("PATCH", f"/contacts/{contact['id']}", {"position": "бухгалтер"})

    def entries() -> list[dict[str, Any]] | None:
        items = api.ok("GET", "/journal", entity="contact", entity_id=contact["id"])["items"]
        return items if len(items) == 2 else None

    updated, created = wait_for(entries, message="two journal entries")
    assert created["action"] == "create" and updated["action"] == "update"
    assert updated["changes"]["position"] == {"old": None, "new": "бухгалтер"}
    assert updated["actor"]["id"] == api.user_id


def test_one_journal_vocabulary_across_sources(org):
    """?action=create finds the users service's own entries and crm's alike."""
    api = org.admin
    contact = api.ok("POST", "/contacts", {"full_name": "Из одного словаря"}, status=201)

    def creations() -> list[dict[str, Any]] | None:
        items = api.all("journal", page_size=200, action="create")
        return items if any(i["entity_id"] == contact["id"] for i in items) else None

    items = wait_for(creations, message="crm's creation under action=create")
    assert {item["action"] for item in items} == {"create"}
    assert {"user", "position", "contact"} <= {item["entity"] for item in items}
    assert not api.ok("GET", "/journal", action="created")["items"]
