"""Users, org structure, roles and the journal through the HTTP gateway,
against the whole suite: a tenant is created with the operator token and its
users log in through ``POST /api/v1/auth/login``."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from crm_shared.testing import ApiClient, wait_for
from gateway.openapi import endpoints
from gateway.service import GatewayService

STRONG = "Uvarov-2024pass"
GUIDE_USER = {"full_name": "Уваров Андрей Алексеевич", "login": "uvarov", "email": "a.uvarov@testmail.ts",
              "password": STRONG, "password_confirm": STRONG, "timezone": "Europe/Moscow", "active": True,
              "sip_enabled": False}
_ROUTES = {(ep.method, ep.url) for _, ep in endpoints(GatewayService)}
AUTH_READY = {("POST", "/api/v1/tenants"), ("POST", "/api/v1/auth/login")} <= _ROUTES

pytestmark = pytest.mark.skipif(
    not AUTH_READY, reason="needs POST /api/v1/tenants and POST /api/v1/auth/login (the auth routes are not in "
                           "the gateway yet); the same behaviour is covered over RPC in test_users_rpc.py")


class Api(ApiClient):
    """A logged-in HTTP client for one user of one tenant."""

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)


class Instance:
    def __init__(self, suite: Any) -> None:
        self.base = suite.url
        resp = requests.post(f"{suite.url}/api/v1/tenants", timeout=30,
                             headers={"Authorization": f"Bearer {suite.operator_token}"},
                             json={"company_name": "ООО Ромашка", "owner_email": "owner@example.test",
                                   "tariff": {"max_sessions": 20, "disk_quota_mb": 100}})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        self.product_code = body["product_code"]
        self.admin = self.login("admin", body["admin"]["password"])
        self.admin_id = self.admin.get("/users", params={"q": "admin"}).json()["items"][0]["id"]

    def login(self, login: str, password: str) -> Api:
        resp = requests.post(f"{self.base}/api/v1/auth/login", timeout=15,
                             json={"product_code": self.product_code, "login": login, "password": password})
        assert resp.status_code == 200, resp.text
        return Api(self.base, resp.json()["access_token"])

    def role_id(self, builtin: str) -> str:
        return next(r["id"] for r in self.admin.get("/roles").json()["items"] if r["builtin"] == builtin)

    def root_id(self) -> str:
        return next(d["id"] for d in self.admin.get("/departments").json()["items"] if d["is_root"])

    def department(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        resp = self.admin.post("/departments", {"name": name, **({"parent_id": parent_id} if parent_id else {})})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def position(self, title: str, department_id: str, role_id: str) -> dict[str, Any]:
        resp = self.admin.post("/positions", {"title": title, "department_id": department_id, "role_id": role_id})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def user(self, login: str, position_ids: list[str]) -> dict[str, Any]:
        resp = self.admin.post("/users", {**GUIDE_USER, "login": login, "full_name": f"Пользователь {login}",
                                          "email": None, "position_ids": position_ids})
        assert resp.status_code == 201, resp.text
        return resp.json()


@pytest.fixture(scope="module")
def instance(suite: Any) -> Instance:
    return Instance(suite)


def _error(resp: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    return error


def test_the_default_instance_and_the_guides_example_user(suite):
    inst = Instance(suite)
    api = inst.admin
    depts = api.get("/departments").json()["items"]
    assert {d["name"] for d in depts} == {"Компания", "Администраторы"}
    roles = {r["name"] for r in api.get("/roles").json()["items"]}
    assert {"Администратор", "Руководитель", "Сотрудник"} <= roles
    positions = api.get("/positions").json()["items"]
    assert [p["title"] for p in positions] == ["сотрудник отдела администрирования"]

    sales = inst.department("Отдел продаж")
    pos = inst.position("Сотрудник отдела продаж", sales["id"], inst.role_id("employee"))
    resp = api.post("/users", {**GUIDE_USER, "position_ids": [pos["id"]]})
    assert resp.status_code == 201, resp.text
    user = resp.json()
    assert (user["full_name"], user["login"], user["email"]) == (
        "Уваров Андрей Алексеевич", "uvarov", "a.uvarov@testmail.ts")
    assert user["timezone_offset"] == "+03:00" and user["positions"][0]["role_name"] == "Сотрудник"
    assert "password" not in resp.text.replace("password_changed_at", "")
    assert api.get(f"/users/{user['id']}").json() == user
    # the new user logs in with the password they were given
    inst.login("uvarov", STRONG)


@pytest.mark.parametrize("password, rule", [
    ("Short1a", "at least 10 characters"), ("NoDigitsHereAtAll", "digit"),
    ("nouppercase123", "upper-case"), ("NOLOWERCASE123", "lower-case"),
])
def test_each_password_rule_is_a_422_naming_it(instance, password, rule):
    login = f"weak{uuid.uuid4().hex[:6]}"
    resp = instance.admin.post("/users", {**GUIDE_USER, "login": login, "password": password,
                                          "password_confirm": password})
    error = _error(resp, 422, "validation_failed")
    assert rule in error["fields"]["password"]
    assert instance.admin.get("/users", params={"q": login}).json()["items"] == []


def test_password_confirmation_mismatch_is_a_422(instance):
    resp = instance.admin.post("/users", {**GUIDE_USER, "login": "mismatch", "password_confirm": "Other-pass-123"})
    error = _error(resp, 422, "validation_failed")
    assert set(error["fields"]) == {"password_confirm"}
    assert instance.admin.get("/users", params={"q": "mismatch"}).json()["items"] == []


def test_duplicate_login_is_409_in_one_tenant_and_fine_in_another(suite, instance):
    instance.user("twin", [])
    _error(instance.admin.post("/users", {**GUIDE_USER, "login": "TWIN"}), 409, "login_taken")
    other = Instance(suite)
    assert other.admin.post("/users", {**GUIDE_USER, "login": "twin"}).status_code == 201


def test_positions_in_two_departments(instance):
    a, b = instance.department("Склад"), instance.department("Логистика")
    pa = instance.position("Кладовщик", a["id"], instance.role_id("employee"))
    pb = instance.position("Логист", b["id"], instance.role_id("manager"))
    user = instance.user("twojobs", [pa["id"], pb["id"]])
    assert {p["department_name"] for p in user["positions"]} == {"Склад", "Логистика"}
    listed = instance.admin.get("/users", params={"department_id": b["id"]}).json()["items"]
    assert [u["login"] for u in listed] == ["twojobs"]


def test_scope_over_a_three_level_tree_in_auth_me(instance):
    top = instance.department("Верх")
    mid = instance.department("Середина", top["id"])
    low = instance.department("Низ", mid["id"])
    role = instance.role_id("manager")
    u_top = instance.user("u_top", [instance.position("Директор", top["id"], role)["id"]])
    u_low = instance.user("u_low", [instance.position("Продавец", low["id"], role)["id"]])
    me_top = instance.login("u_top", STRONG).get("/auth/me")
    if me_top.status_code == 404:
        pytest.skip("GET /auth/me is not there yet")
    assert me_top.status_code == 200, me_top.text
    text_top = me_top.text
    assert low["id"] in text_top and u_low["id"] in text_top
    text_low = instance.login("u_low", STRONG).get("/auth/me").text
    assert top["id"] not in text_low and u_top["id"] not in text_low


def test_a_role_change_takes_effect_on_the_next_request(instance):
    role = instance.admin.post("/roles", {"name": "Аудитор", "rights": {}}).json()
    pos = instance.position("Аудитор", instance.root_id(), role["id"])
    instance.user("auditor", [pos["id"]])
    auditor = instance.login("auditor", STRONG)
    _error(auditor.get("/journal"), 403, "forbidden")
    resp = instance.admin.patch(f"/roles/{role['id']}", {"rights": {"journal.read": "all"}})
    assert resp.status_code == 200 and resp.json()["rights"]["journal.read"] == "all"
    assert auditor.get("/journal").status_code == 200  # same token, next request
    instance.admin.patch(f"/roles/{role['id']}", {"rights": {"journal.read": "none"}})
    _error(auditor.get("/journal"), 403, "forbidden")


def test_the_last_admin_guard(instance):
    error = _error(instance.admin.patch(f"/users/{instance.admin_id}", {"active": False}), 409, "last_admin")
    assert "administrative rights" in error["message"]
    _error(instance.admin.delete(f"/users/{instance.admin_id}"), 409, "last_admin")
    _error(instance.admin.patch(f"/users/{instance.admin_id}", {"position_ids": []}), 409, "last_admin")


def test_deactivation_blocks_login_and_ends_sessions(instance):
    user = instance.user("leaver", [])
    api = instance.login("leaver", STRONG)
    assert api.get("/users").status_code == 200
    assert instance.admin.patch(f"/users/{user['id']}", {"active": False}).status_code == 200
    wait_for(lambda: api.get("/users").status_code == 401, 10, message="the session to end")
    resp = requests.post(f"{instance.base}/api/v1/auth/login", timeout=15,
                         json={"product_code": instance.product_code, "login": "leaver", "password": STRONG})
    _error(resp, 401, "invalid_credentials")
    assert instance.admin.delete(f"/users/{user['id']}").status_code == 204
    shown = instance.admin.get(f"/users/{user['id']}").json()
    assert shown["deleted"] is True and shown["full_name"] == "Пользователь leaver"


def test_the_journal_masks_the_password(instance):
    user = instance.user("journaled", [])
    instance.admin.patch(f"/users/{user['id']}", {"password": "Next-pass-2024", "password_confirm": "Next-pass-2024"})
    resp = instance.admin.get("/journal", params={"entity": "user", "entity_id": user["id"]})
    assert resp.status_code == 200, resp.text
    entries = resp.json()["items"]
    assert [e["action"] for e in entries] == ["update", "create"]
    assert entries[0]["changes"]["password"] == {"old": "***", "new": "***"}
    assert entries[1]["changes"]["password"]["new"] == "***"
    assert "Next-pass-2024" not in resp.text and STRONG not in resp.text
    assert entries[0]["actor"]["login"] == "admin"
    assert resp.json()["next_cursor"] is None


def test_errors_rights_and_tenancy(suite, instance):
    plain = instance.user("plainuser", [])
    api = instance.login("plainuser", STRONG)
    _error(api.post("/users", {**GUIDE_USER, "login": "x1"}), 403, "forbidden")
    _error(api.post("/departments", {"name": "Нет"}), 403, "forbidden")
    assert api.get("/rights").json()["items"][0]["code"] == "counterparties.create"
    _error(Api(suite.url).get("/users"), 401, "unauthenticated")
    other = Instance(suite)
    _error(other.admin.get(f"/users/{plain['id']}"), 404, "not_found")
    _error(other.admin.patch(f"/users/{plain['id']}", {"full_name": "x"}), 404, "not_found")
    _error(instance.admin.post("/users", {**GUIDE_USER, "login": "x2", "unexpected": 1}), 422, "validation_failed")
    resp = instance.admin.call("POST", "/users", data=b"{oops", headers={"Content-Type": "application/json"})
    _error(resp, 400, "malformed_json")
    dept = instance.department("Цикл")
    child = instance.department("Цикл-2", dept["id"])
    error = _error(instance.admin.patch(f"/departments/{dept['id']}", {"parent_id": child["id"]}), 409,
                   "department_cycle")
    assert "descendant" in error["message"]
    _error(instance.admin.delete(f"/departments/{dept['id']}"), 409, "department_not_empty")


def test_openapi_documents_the_users_area(suite):
    doc = requests.get(f"{suite.url}/openapi.json", timeout=5).json()
    for path in ("/api/v1/users", "/api/v1/users/{user_id}", "/api/v1/departments", "/api/v1/positions",
                 "/api/v1/roles", "/api/v1/rights", "/api/v1/journal"):
        assert path in doc["paths"], path
    assert "UserCreate" in doc["components"]["schemas"]
