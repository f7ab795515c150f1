"""The users service over RPC, as the gateway and auth call it: the default
instance, credentials, users, the org tree, scopes, rights taking effect,
the guards and the journal. Real RabbitMQ and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from nameko.standalone.events import event_dispatcher

from crm_shared.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from crm_shared.testing import wait_for

STRONG = "Uvarov-2024pass"
GUIDE_USER = {"full_name": "Уваров Андрей Алексеевич", "login": "uvarov", "email": "a.uvarov@testmail.ts",
              "password": STRONG, "password_confirm": STRONG, "timezone": "Europe/Samara", "active": True,
              "sip_enabled": True}


# -- the default instance and credentials ------------------------------------

def test_bootstrap_creates_the_default_instance(users, tenant):
    rpc, admin = users.rpc, tenant.admin
    departments = rpc.list_departments(admin, {})["items"]
    root = next(d for d in departments if d["is_root"])
    assert root["name"] == "Компания"
    admins = next(d for d in departments if d["name"] == "Администраторы")
    assert admins["parent_id"] == root["id"]
    roles = {r["name"]: r for r in rpc.list_roles(admin, {})["items"]}
    assert {"Администратор", "Руководитель", "Сотрудник"} <= set(roles)
    assert set(roles["Администратор"]["rights"].values()) == {"all"}
    assert roles["Руководитель"]["rights"]["counterparties.read"] == "department"
    assert roles["Сотрудник"]["rights"]["counterparties.update"] == "own"
    assert roles["Сотрудник"]["rights"]["users.manage"] == "none"
    position = rpc.list_positions(admin, {})["items"][0]
    assert position["title"] == "сотрудник отдела администрирования"
    assert position["department_id"] == admins["id"] and position["role_name"] == "Администратор"
    me = rpc.get_user(admin, tenant.admin_id)
    assert me["login"] == "admin" and me["position_ids"] == [position["id"]]
    assert "password_hash" not in me and "password" not in me


def test_bootstrap_is_idempotent_and_resets_the_admin_password(users, events):
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    first = users.rpc.bootstrap_tenant(tenant_id, "ООО Тест", "First-password-1")
    second = users.rpc.bootstrap_tenant(tenant_id, "ООО Тест", "Second-password-2")
    assert first == second == {"admin_user_id": first["admin_user_id"], "login": "admin"}
    admin = {"tenant_id": tenant_id, "user_id": first["admin_user_id"]}
    assert len(users.rpc.list_roles(admin, {})["items"]) == 3
    assert len(users.rpc.list_departments(admin, {})["items"]) == 2
    with pytest.raises(Unauthenticated):
        users.rpc.verify_credentials(tenant_id, "admin", "First-password-1")
    assert users.rpc.verify_credentials(tenant_id, "admin", "Second-password-2")["user_id"] == first["admin_user_id"]
    events.wait("user_password_changed", user_id=first["admin_user_id"])


def test_verify_credentials(users, tenant):
    user = tenant.user("uvarov")
    answer = users.rpc.verify_credentials(tenant.id, "UVAROV", STRONG)
    assert answer == {"user_id": user["id"], "login": "uvarov", "full_name": user["full_name"]}
    for login, password in (("uvarov", "Wrong-pass-123"), ("nobody", STRONG), ("uvarov", "")):
        with pytest.raises(Unauthenticated) as err:
            users.rpc.verify_credentials(tenant.id, login, password)
        assert err.value.code == "invalid_credentials"
    # another tenant does not know this login
    other = users.tenant()
    with pytest.raises(Unauthenticated):
        users.rpc.verify_credentials(other.id, "uvarov", STRONG)
    # inactive users cannot log in
    users.rpc.update_user(tenant.admin, user["id"], {"active": False})
    with pytest.raises(Unauthenticated) as err:
        users.rpc.verify_credentials(tenant.id, "uvarov", STRONG)
    assert err.value.code == "invalid_credentials"


# -- users ------------------------------------------------------------------------

def test_the_guides_example_user(users, tenant):
    dept = tenant.department("Отдел продаж")
    pos = tenant.position("Сотрудник отдела продаж", dept["id"])
    user = users.rpc.create_user(tenant.admin, {**GUIDE_USER, "position_ids": [pos["id"]]})
    assert user["full_name"] == "Уваров Андрей Алексеевич"
    assert user["login"] == "uvarov" and user["email"] == "a.uvarov@testmail.ts"
    assert user["timezone"] == "Europe/Samara" and user["timezone_offset"] == "+04:00"
    assert user["active"] is True and user["sip_enabled"] is True and user["deleted"] is False
    assert user["positions"] == [{"id": pos["id"], "title": "Сотрудник отдела продаж", "department_id": dept["id"],
                                  "department_name": "Отдел продаж", "role_id": pos["role_id"],
                                  "role_name": "Сотрудник"}]
    assert not any("password" in key and key != "password_changed_at" for key in user)
    assert users.rpc.get_user(tenant.admin, user["id"]) == user
    listed = users.rpc.list_users(tenant.admin, {"q": "уваров"})["items"]
    assert [u["id"] for u in listed] == [user["id"]]


@pytest.mark.parametrize("password, rule", [
    ("Short1a", "at least 10 characters"),
    ("NoDigitsHereAtAll", "digit"),
    ("nouppercase123", "upper-case"),
    ("NOLOWERCASE123", "lower-case"),
])
def test_each_password_rule_is_named(users, tenant, password, rule):
    with pytest.raises(ValidationFailed) as err:
        users.rpc.create_user(tenant.admin, {**GUIDE_USER, "password": password, "password_confirm": password})
    assert rule in err.value.fields["password"]
    assert set(err.value.fields) == {"password"}
    assert users.rpc.list_users(tenant.admin, {"q": "uvarov"})["items"] == []


def test_password_confirmation_mismatch(users, tenant):
    with pytest.raises(ValidationFailed) as err:
        users.rpc.create_user(tenant.admin, {**GUIDE_USER, "password_confirm": STRONG + "x"})
    assert set(err.value.fields) == {"password_confirm"}
    assert users.rpc.list_users(tenant.admin, {"q": "uvarov"})["items"] == []
    user = tenant.user("petrov")
    with pytest.raises(ValidationFailed) as err:
        users.rpc.update_user(tenant.admin, user["id"], {"password": "Another-pass-1", "password_confirm": "x"})
    assert set(err.value.fields) == {"password_confirm"}
    users.rpc.verify_credentials(tenant.id, "petrov", STRONG)


def test_other_bad_fields_are_named(users, tenant):
    with pytest.raises(ValidationFailed) as err:
        users.rpc.create_user(tenant.admin, {**GUIDE_USER, "timezone": "Mars/Olympus", "email": "not-an-email",
                                             "login": "bad login", "position_ids": [str(uuid.uuid4())]})
    assert {"timezone", "email", "login"} <= set(err.value.fields)
    with pytest.raises(ValidationFailed) as err:
        users.rpc.create_user(tenant.admin, {**GUIDE_USER, "position_ids": [str(uuid.uuid4())]})
    assert "position_ids" in err.value.fields


def test_login_is_unique_per_tenant_case_insensitively(users, tenant):
    tenant.user("uvarov")
    with pytest.raises(Conflict) as err:
        tenant.user("UvArOv")
    assert err.value.code == "login_taken"
    other = users.tenant()
    assert other.user("uvarov")["login"] == "uvarov"


def test_user_update_deactivation_and_soft_delete(users, tenant, events):
    user = tenant.user("sidorov")
    updated = users.rpc.update_user(tenant.admin, user["id"], {"full_name": "Сидоров Иван", "timezone": "Asia/Tokyo"})
    assert updated["full_name"] == "Сидоров Иван" and updated["timezone_offset"] == "+09:00"
    users.rpc.update_user(tenant.admin, user["id"], {"password": "Brand-new-pass1", "password_confirm":
                                                     "Brand-new-pass1"})
    events.wait("user_password_changed", user_id=user["id"], tenant_id=tenant.id)
    users.rpc.verify_credentials(tenant.id, "sidorov", "Brand-new-pass1")

    users.rpc.update_user(tenant.admin, user["id"], {"active": False})
    events.wait("user_deactivated", user_id=user["id"], tenant_id=tenant.id)
    assert users.rpc.get_principal(tenant.id, user["id"])["active"] is False
    with pytest.raises(Unauthenticated):
        users.rpc.list_users(tenant.caller(user["id"]), {})

    users.rpc.delete_user(tenant.admin, user["id"])
    events.wait("user_deleted", user_id=user["id"], tenant_id=tenant.id)
    shown = users.rpc.get_user(tenant.admin, user["id"])
    assert shown["deleted"] is True and shown["deleted_at"] and shown["full_name"] == "Сидоров Иван"
    assert user["id"] not in [u["id"] for u in users.rpc.list_users(tenant.admin, {})["items"]]
    assert user["id"] in [u["id"] for u in users.rpc.list_users(tenant.admin, {"include_deleted": True})["items"]]
    with pytest.raises(Conflict) as err:
        users.rpc.update_user(tenant.admin, user["id"], {"active": True})
    assert err.value.code == "user_deleted"
    users.rpc.delete_user(tenant.admin, user["id"])  # idempotent
    # the login is free again
    assert tenant.user("sidorov")["id"] != user["id"]


def test_another_tenants_ids_are_not_found(users, tenant):
    other = users.tenant()
    foreign = other.user("foreign")
    for call in (lambda: users.rpc.get_user(tenant.admin, foreign["id"]),
                 lambda: users.rpc.update_user(tenant.admin, foreign["id"], {"full_name": "x"}),
                 lambda: users.rpc.delete_user(tenant.admin, foreign["id"]),
                 lambda: users.rpc.get_department(tenant.admin, other.root()["id"]),
                 lambda: users.rpc.get_role(tenant.admin, other.role("admin")["id"]),
                 lambda: users.rpc.get_principal(tenant.id, foreign["id"]),
                 lambda: users.rpc.get_user(tenant.admin, "not-a-uuid")):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(ValidationFailed):
        users.rpc.create_user(tenant.admin, {**GUIDE_USER, "position_ids": [other.rpc.list_positions(
            other.admin, {})["items"][0]["id"]]})
    # a caller from another tenant is nobody here
    with pytest.raises(Unauthenticated):
        users.rpc.list_users({"tenant_id": tenant.id, "user_id": foreign["id"]}, {})


def test_users_list_pages_with_a_cursor(users, tenant):
    for n in range(5):
        tenant.user(f"pager{n}")
    seen, cursor = [], None
    while True:
        page = users.rpc.list_users(tenant.admin, {"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [u["login"] for u in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(["admin"] + [f"pager{n}" for n in range(5)])
    assert len(seen) == len(set(seen))
    with pytest.raises(ValidationFailed) as err:
        users.rpc.list_users(tenant.admin, {"cursor": "garbage"})
    assert "cursor" in err.value.fields


# -- org structure and scopes ----------------------------------------------------------

def test_a_user_may_hold_positions_in_two_departments(users, tenant):
    sales, support = tenant.department("Продажи"), tenant.department("Поддержка")
    manager_role, employee_role = tenant.role("manager"), tenant.role("employee")
    p1 = tenant.position("Руководитель продаж", sales["id"], manager_role["id"])
    p2 = tenant.position("Инженер поддержки", support["id"], employee_role["id"])
    user = tenant.user("dual", [p1["id"], p2["id"]])
    assert sorted(user["position_ids"]) == sorted([p1["id"], p2["id"]])
    principal = users.rpc.get_principal(tenant.id, user["id"])
    assert set(principal["department_ids"]) == {sales["id"], support["id"]}
    # the most permissive scope of both roles
    assert principal["rights"]["counterparties.read"] == "department"
    assert principal["rights"]["telephony.use"] == "all"
    assert principal["rights"]["users.manage"] == "none"
    by_dept = users.rpc.list_users(tenant.admin, {"department_id": support["id"]})["items"]
    assert [u["login"] for u in by_dept] == ["dual"]


def test_department_scope_over_a_three_level_tree(users, tenant):
    top = tenant.department("Дирекция")
    mid = tenant.department("Коммерция", top["id"])
    low = tenant.department("Розница", mid["id"])
    role = tenant.role("manager")["id"]
    u_top = tenant.user("top", [tenant.position("Директор", top["id"], role)["id"]])
    u_mid = tenant.user("mid", [tenant.position("Коммерческий директор", mid["id"], role)["id"]])
    u_low = tenant.user("low", [tenant.position("Продавец", low["id"], role)["id"]])

    p_top = users.rpc.get_principal(tenant.id, u_top["id"])
    assert set(p_top["department_ids"]) == {top["id"], mid["id"], low["id"]}
    assert set(p_top["department_user_ids"]) == {u_top["id"], u_mid["id"], u_low["id"]}
    p_mid = users.rpc.get_principal(tenant.id, u_mid["id"])
    assert set(p_mid["department_ids"]) == {mid["id"], low["id"]}
    assert set(p_mid["department_user_ids"]) == {u_mid["id"], u_low["id"]}
    p_low = users.rpc.get_principal(tenant.id, u_low["id"])
    assert p_low["department_ids"] == [low["id"]]
    assert p_low["department_user_ids"] == [u_low["id"]]
    assert p_low["tenant_id"] == tenant.id and p_low["login"] == "low" and p_low["active"] is True
    assert set(p_low) == {"tenant_id", "user_id", "login", "full_name", "email", "timezone", "active", "rights",
                          "department_ids", "department_user_ids", "sip_enabled"}
    assert p_low["sip_enabled"] is False

    # moving the child out of the tree changes the parent's set on the next call
    users.rpc.update_department(tenant.admin, low["id"], {"parent_id": tenant.root()["id"]})
    assert set(users.rpc.get_principal(tenant.id, u_top["id"])["department_user_ids"]) == {u_top["id"], u_mid["id"]}


def test_department_tree_guards(users, tenant, events):
    a = tenant.department("A")
    b = tenant.department("B", a["id"])
    c = tenant.department("C", b["id"])
    for target in (a, c):
        with pytest.raises(Conflict) as err:
            users.rpc.update_department(tenant.admin, a["id"], {"parent_id": target["id"]})
        assert err.value.code == "department_cycle"
        assert "descendant" in err.value.message
    with pytest.raises(Conflict) as err:
        users.rpc.delete_department(tenant.admin, b["id"])
    assert err.value.code == "department_not_empty" and "child" in err.value.message
    tenant.position("Кассир", c["id"])
    with pytest.raises(Conflict) as err:
        users.rpc.delete_department(tenant.admin, c["id"])
    assert err.value.code == "department_not_empty" and "position" in err.value.message
    with pytest.raises(Conflict) as err:
        users.rpc.delete_department(tenant.admin, tenant.root()["id"])
    assert err.value.code == "organisation_root"
    with pytest.raises(Conflict) as err:
        tenant.department("b", a["id"])
    assert err.value.code == "department_exists"
    with pytest.raises(ValidationFailed) as err:
        tenant.department("X", str(uuid.uuid4()))
    assert "parent_id" in err.value.fields
    empty = tenant.department("Пустой")
    users.rpc.delete_department(tenant.admin, empty["id"])
    with pytest.raises(NotFound):
        users.rpc.get_department(tenant.admin, empty["id"])
    events.wait("principal_changed", tenant_id=tenant.id, user_ids=None)


def test_roles_validate_rights_and_refuse_deletion_in_use(users, tenant):
    with pytest.raises(ValidationFailed) as err:
        users.rpc.create_role(tenant.admin, {"name": "Плохая", "rights": {"users.manage": "department",
                                                                          "nothing.here": "all"}})
    assert set(err.value.fields) == {"rights.users.manage", "rights.nothing.here"}
    role = users.rpc.create_role(tenant.admin, {"name": "Бухгалтер", "rights": {"invoices.read": "all"}})
    assert role["rights"]["invoices.read"] == "all" and role["rights"]["invoices.update"] == "none"
    with pytest.raises(Conflict) as err:
        users.rpc.create_role(tenant.admin, {"name": "бухгалтер"})
    assert err.value.code == "role_exists"
    pos = tenant.position("Бухгалтер", tenant.root()["id"], role["id"])
    with pytest.raises(Conflict) as err:
        users.rpc.delete_role(tenant.admin, role["id"])
    assert err.value.code == "role_in_use"
    user = tenant.user("buh", [pos["id"]])
    with pytest.raises(Conflict) as err:
        users.rpc.delete_position(tenant.admin, pos["id"])
    assert err.value.code == "position_in_use"
    users.rpc.update_user(tenant.admin, user["id"], {"position_ids": []})
    users.rpc.delete_position(tenant.admin, pos["id"])
    users.rpc.delete_role(tenant.admin, role["id"])


def test_rights_catalogue(users, tenant):
    items = {r["code"]: r for r in users.rpc.list_rights(tenant.admin)["items"]}
    assert items["counterparties.update"]["scopes"] == ["none", "own", "department", "all"]
    assert items["invoices.discount"]["scopes"] == ["none", "all"]
    for entity in ("counterparties", "contacts", "products", "invoices", "payments", "communications"):
        for action in ("create", "read", "update", "delete"):
            assert f"{entity}.{action}" in items
    for code in ("invoices.discount", "users.manage", "org.manage", "journal.read", "exchange.run", "csv.import",
                 "csv.export", "telephony.use", "mail.send"):
        assert items[code]["title"]
    assert items["counterparties.read"]["title"] == "Контрагенты: просмотр"


# -- rights take effect on the next request ------------------------------------------

def test_a_role_change_takes_effect_on_the_next_request(users, tenant, events):
    role = users.rpc.create_role(tenant.admin, {"name": "Кадровик", "rights": {"journal.read": "all"}})
    pos = tenant.position("Кадровик", tenant.root()["id"], role["id"])
    hr = tenant.user("hr", [pos["id"]])
    me = tenant.caller(hr["id"])
    with pytest.raises(Forbidden) as err:
        users.rpc.create_user(me, {**GUIDE_USER})
    assert "users.manage" in err.value.message
    users.rpc.update_role(tenant.admin, role["id"], {"rights": {"users.manage": "all"}})
    created = users.rpc.create_user(me, {**GUIDE_USER})  # the very next request
    assert created["login"] == "uvarov"
    assert users.rpc.get_principal(tenant.id, hr["id"])["rights"]["journal.read"] == "all"  # merged, not replaced
    events.wait("principal_changed", tenant_id=tenant.id)
    users.rpc.update_role(tenant.admin, role["id"], {"rights": {"users.manage": "none"}})
    with pytest.raises(Forbidden):
        users.rpc.update_user(me, created["id"], {"full_name": "x"})
    # and by positions: taking the position away
    users.rpc.update_role(tenant.admin, role["id"], {"rights": {"users.manage": "all"}})
    users.rpc.update_user(me, created["id"], {"full_name": "Уваров А. А."})
    users.rpc.update_user(tenant.admin, hr["id"], {"position_ids": []})
    with pytest.raises(Forbidden):
        users.rpc.update_user(me, created["id"], {"full_name": "x"})


def test_principal_changed_event_drops_the_cache(users, tenant):
    user = tenant.user("cached")
    users.rpc.get_principal(tenant.id, user["id"])
    cache = users.cache()
    assert tenant.id in cache._snapshots
    dispatch = event_dispatcher({"AMQP_URI": users.amqp_uri})
    dispatch("users", "principal_changed", {"event_id": str(uuid.uuid4()), "event_type": "principal_changed",
                                            "tenant_id": tenant.id, "data": {"tenant_id": tenant.id,
                                                                             "user_ids": None}})
    wait_for(lambda: tenant.id not in cache._snapshots, 10, message="the snapshot dropped")


# -- the last administrator --------------------------------------------------------------

def test_the_last_admin_cannot_be_removed(users, tenant):
    admin_id = tenant.admin_id
    admin_role = tenant.role("admin")
    admin_position = users.rpc.get_user(tenant.admin, admin_id)["positions"][0]
    attempts = [
        lambda: users.rpc.update_user(tenant.admin, admin_id, {"active": False}),
        lambda: users.rpc.delete_user(tenant.admin, admin_id),
        lambda: users.rpc.update_user(tenant.admin, admin_id, {"position_ids": []}),
        lambda: users.rpc.update_role(tenant.admin, admin_role["id"], {"rights": {"org.manage": "none"}}),
        lambda: users.rpc.update_position(tenant.admin, admin_position["id"],
                                          {"role_id": tenant.role("manager")["id"]}),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict) as err:
            attempt()
        assert err.value.code == "last_admin"
        assert "administrative rights" in err.value.message
    assert users.rpc.get_principal(tenant.id, admin_id)["active"] is True
    assert users.rpc.get_principal(tenant.id, admin_id)["rights"]["org.manage"] == "all"

    # an inactive admin does not count; a second active one does
    idle = tenant.user("idle_admin", [admin_position["id"]], active=False)
    with pytest.raises(Conflict):
        users.rpc.update_user(tenant.admin, admin_id, {"active": False})
    users.rpc.update_user(tenant.admin, idle["id"], {"active": True})
    users.rpc.update_user(tenant.admin, admin_id, {"active": False})
    second = tenant.caller(idle["id"])
    with pytest.raises(Conflict):
        users.rpc.delete_user(second, idle["id"])


# -- the journal -----------------------------------------------------------------------

def test_the_journal_records_changes_with_secrets_masked(users, tenant):
    user = users.rpc.create_user(tenant.admin, {**GUIDE_USER})
    users.rpc.update_user(tenant.admin, user["id"], {"password": "Changed-pass-22", "password_confirm":
                                                     "Changed-pass-22", "email": "uvarov@testmail.ts"})
    entries = users.rpc.list_journal(tenant.admin, {"entity": "user", "entity_id": user["id"]})["items"]
    assert [e["action"] for e in entries] == ["update", "create"]
    update, create = entries
    assert create["changes"]["password"] == {"old": None, "new": "***"}
    assert create["changes"]["login"] == {"old": None, "new": "uvarov"}
    assert update["changes"]["password"] == {"old": "***", "new": "***"}
    assert update["changes"]["email"] == {"old": "a.uvarov@testmail.ts", "new": "uvarov@testmail.ts"}
    assert update["actor"] == {"id": tenant.admin_id, "login": "admin", "full_name": "Администратор"}
    assert update["tenant_id"] == tenant.id and update["source"] == "api"
    assert dt.datetime.fromisoformat(update["at"]) <= dt.datetime.now(dt.timezone.utc)
    assert STRONG not in str(entries) and "Changed-pass-22" not in str(entries)
    # filters and pages
    by_actor = users.rpc.list_journal(tenant.admin, {"actor": tenant.admin_id, "limit": 1})
    assert [e["action"] for e in by_actor["items"]] == ["update"] and by_actor["next_cursor"]
    rest = users.rpc.list_journal(tenant.admin, {"actor": tenant.admin_id, "cursor": by_actor["next_cursor"]})
    assert [e["action"] for e in rest["items"]] == ["create"] and rest["next_cursor"] is None
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()
    assert users.rpc.list_journal(tenant.admin, {"since": future})["items"] == []
    assert users.rpc.list_journal(tenant.admin, {"until": future, "entity": "role"})["items"]
    # only with journal.read
    plain = tenant.user("plain")
    with pytest.raises(Forbidden):
        users.rpc.list_journal(tenant.caller(plain["id"]), {})
    # and never another tenant's entries
    other = users.tenant()
    assert all(e["tenant_id"] == other.id for e in users.rpc.list_journal(other.admin, {"limit": 500})["items"])


def test_auth_lockouts_land_in_the_journal_once(users, tenant):
    user = tenant.user("locked")
    dispatch = event_dispatcher({"AMQP_URI": users.amqp_uri})
    event = {"event_id": str(uuid.uuid4()), "event_type": "user_locked_out", "aggregate_id": user["id"],
             "tenant_id": tenant.id, "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat(),
             "data": {"tenant_id": tenant.id, "user_id": user["id"], "login": "locked", "client_ip": "10.0.0.7",
                      "until": "2030-01-01T00:00:00+00:00"}}
    dispatch("auth", "user_locked_out", event)
    dispatch("auth", "user_locked_out", event)  # redelivered

    def lockouts():
        return users.rpc.list_journal(tenant.admin, {"entity_id": user["id"], "action": "locked_out"})["items"]

    entries = wait_for(lockouts, 10, message="the lockout entry")
    entry = entries[0]
    assert entry["source"] == "auth" and entry["actor"] is None
    assert entry["changes"] == {"login": "locked", "client_ip": "10.0.0.7", "until": "2030-01-01T00:00:00+00:00"}
    marker = str(uuid.uuid4())  # a later event proves the duplicate was handled (and skipped) before it
    dispatch("auth", "user_locked_out", {**event, "event_id": marker, "data": {**event["data"], "login": marker}})
    wait_for(lambda: len(lockouts()) == 2, 10, message="the second lockout")
    assert len(lockouts()) == 2


def test_a_lockout_known_only_by_login_is_journalled_against_that_user(users, tenant):
    user = tenant.user("NeverSignedIn")
    dispatch = event_dispatcher({"AMQP_URI": users.amqp_uri})
    dispatch("auth", "user_locked_out", {
        "event_id": str(uuid.uuid4()), "event_type": "user_locked_out", "aggregate_id": "neversignedin",
        "tenant_id": tenant.id, "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "data": {"tenant_id": tenant.id, "user_id": None, "login": "neversignedin", "client_ip": "10.0.0.8",
                 "until": "2030-01-01T00:00:00+00:00"}})
    entries = wait_for(lambda: users.rpc.list_journal(
        tenant.admin, {"entity_id": user["id"], "action": "locked_out"})["items"], 10, message="the lockout entry")
    assert entries[0]["changes"]["login"] == "neversignedin"


def test_two_admins_deactivating_each_other_at_once_leave_one(users, tenant):
    position = users.rpc.get_user(tenant.admin, tenant.admin_id)["position_ids"]
    second = tenant.user("second_admin", position)
    first_call = users.rpc.update_user.call_async(tenant.admin, second["id"], {"active": False})
    second_call = users.rpc.update_user.call_async(tenant.caller(second["id"]), tenant.admin_id, {"active": False})
    outcomes = []
    for reply in (first_call, second_call):
        try:
            reply.result()
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.code)
        except Unauthenticated:
            outcomes.append("caller deactivated first")
    assert outcomes.count("ok") == 1, outcomes
    actives = [users.rpc.get_principal(tenant.id, uid)["active"] for uid in (tenant.admin_id, second["id"])]
    assert actives.count(True) == 1
