"""Tenants through the gateway: creation (with the admin password e-mailed
through a real SMTP server), retries, the tariff and its usage."""
from __future__ import annotations

import re
import uuid

import sqlalchemy as sa

from crm_shared.testing import wait_for
from services.auth import product_codes

BODY = {"company_name": "ООО Ромашка", "owner_email": "owner@example.test",
        "tariff": {"max_sessions": 3, "disk_quota_mb": 50}}


def test_only_the_operator_token_creates_or_reads_tenants(auth_suite):
    s = auth_suite
    for token in (None, "wrong-token-0123456789", s.admin_session().token):
        for method, path in (("POST", "/api/v1/tenants"), ("GET", "/api/v1/tenants/ABCD-EFGH-JKMN"),
                             ("PATCH", "/api/v1/tenants/ABCD-EFGH-JKMN")):
            resp = s.call(method, path, token, BODY if method != "GET" else None)
            assert resp.status_code == 401, (method, path, resp.text)


def test_create_answers_code_and_password_once_and_mails_the_owner(auth_suite):
    s = auth_suite
    created = s.create_tenant(email="boss@example.test", company="ООО Почта")
    code, password = created["product_code"], created["admin"]["password"]
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", code)
    assert product_codes.normalize(code)
    assert len(password) >= 10 and re.search(r"\d", password) and re.search(r"[a-z]", password) \
        and re.search(r"[A-Z]", password)
    assert created["email"] == "queued"
    # the mail went out through the platform SMTP (STARTTLS, AUTH, certificate verified)
    def delivered():
        return [m for m in s.smtp.messages() if m["To"] == "boss@example.test"]
    [msg] = wait_for(delivered, 15, message="welcome mail")
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert code in text and password in text and "admin" in text
    assert msg["X-Auth-User"] == s.smtp.user
    # the password is stored nowhere in plain text: not in the auth database, not in its events
    with s.auth_db.connect() as conn:
        dump = " ".join(str(row) for table in ("tenants", "outbox_events", "login_throttle")
                        for row in conn.execute(sa.text(f"SELECT * FROM {table}")))
    assert password not in dump
    tenant = s.call("GET", f"/api/v1/tenants/{code}", s.operator_token).json()
    assert "password" not in str(tenant)


def test_get_and_patch_the_tariff_and_usage(auth_suite):
    s = auth_suite
    created = s.create_tenant(max_sessions=4, disk_quota_mb=7)
    code = created["product_code"]
    resp = s.call("GET", f"/api/v1/tenants/{code.lower()}", s.operator_token)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["tariff"] == {"max_sessions": 4, "disk_quota_mb": 7}
    assert body["usage"]["active_sessions"] == 0 and body["usage"]["disk_used_bytes"] == 0
    assert body["status"] == "active" and body["company_name"] == "ООО Ромашка"
    assert s.login(code, "admin", created["admin"]["password"]).status_code == 200
    resp = s.call("PATCH", f"/api/v1/tenants/{code}", s.operator_token, {"tariff": {"max_sessions": 9}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["tariff"] == {"max_sessions": 9, "disk_quota_mb": 7}
    assert resp.json()["usage"]["active_sessions"] == 1
    bad = s.call("PATCH", f"/api/v1/tenants/{code}", s.operator_token, {"tariff": {"max_sessions": 0}})
    assert bad.status_code == 422 and "tariff.max_sessions" in bad.json()["error"]["fields"]
    # unknown and mistyped codes are not found
    for wrong in ("ZZZZ-ZZZZ-ZZZZ", code[:-1] + ("2" if code[-1] != "2" else "3"), "nonsense"):
        assert s.call("GET", f"/api/v1/tenants/{wrong}", s.operator_token).status_code == 404


def test_invalid_bodies_name_the_field(auth_suite):
    s = auth_suite
    for body, field in (({**BODY, "owner_email": "nope"}, "owner_email"),
                        ({**BODY, "tariff": {"max_sessions": 0, "disk_quota_mb": 1}}, "tariff.max_sessions"),
                        ({"owner_email": "a@b.cc", "tariff": BODY["tariff"]}, "company_name")):
        resp = s.call("POST", "/api/v1/tenants", s.operator_token, body)
        assert resp.status_code == 422, resp.text
        assert field in resp.json()["error"]["fields"]


def test_a_retry_with_the_same_key_finds_the_same_tenant(auth_suite):
    s = auth_suite
    key = uuid.uuid4().hex
    first = s.create_tenant(key=key)
    # the answer was lost: the retry completes the same tenant with a fresh password
    again = s.create_tenant(key=key)
    assert again["product_code"] == first["product_code"] and again["tenant_id"] == first["tenant_id"]
    assert again["admin"]["password"] != first["admin"]["password"]
    assert s.login(first["product_code"], "admin", first["admin"]["password"]).status_code == 401
    assert s.login(again["product_code"], "admin", again["admin"]["password"]).status_code == 200
    # once the instance is in use, a replay no longer resets anything
    resp = s.call("POST", "/api/v1/tenants", s.operator_token, BODY, headers={"Idempotency-Key": key})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "idempotency_key_reused"
    resp = s.call("POST", "/api/v1/tenants", s.operator_token,
                  {"company_name": "ООО Ромашка", "owner_email": "owner@example.test",
                   "tariff": {"max_sessions": 5, "disk_quota_mb": 10}}, headers={"Idempotency-Key": key})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "tenant_exists"
    assert resp.json()["error"]["product_code"] == first["product_code"]


def test_a_failed_bootstrap_leaves_no_usable_tenant_and_a_retry_completes_it(private_containers):
    """The users service is down: 503 naming the key to retry with, the tenant stays
    'provisioning' (no login), and the retry after users is back completes it."""
    c = private_containers
    auth = c.start_named("auth", RPC_TIMEOUT_SECONDS="1")
    gateway = c.start_named("gateway", RPC_TIMEOUT_SECONDS="1")
    url = f"http://{gateway.config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', '127.0.0.1')}"
    import requests
    headers = {"Authorization": f"Bearer {gateway.config['CRM_OPERATOR_TOKEN']}"}
    resp = requests.post(f"{url}/api/v1/tenants", json=BODY, headers=headers, timeout=30)
    assert resp.status_code == 503, resp.text
    error = resp.json()["error"]
    assert error["code"] == "tenant_provisioning_incomplete"
    key, code = error["idempotency_key"], error["product_code"]
    status = requests.get(f"{url}/api/v1/tenants/{code}", headers=headers, timeout=10).json()["status"]
    assert status == "provisioning"
    # no one can sign in to a half-made tenant
    resp = requests.post(f"{url}/api/v1/auth/login",
                         json={"product_code": code, "login": "admin", "password": "whatever-1A"}, timeout=30)
    assert resp.status_code in (401, 503)
    c.start_named("users")
    resp = requests.post(f"{url}/api/v1/tenants", json=BODY, headers={**headers, "Idempotency-Key": key}, timeout=30)
    assert resp.status_code == 201, resp.text
    done = resp.json()
    assert done["product_code"] == code
    assert requests.get(f"{url}/api/v1/tenants/{code}", headers=headers, timeout=10).json()["status"] == "active"
    resp = requests.post(f"{url}/api/v1/auth/login",
                         json={"product_code": code, "login": "admin", "password": done["admin"]["password"]},
                         timeout=30)
    assert resp.status_code == 200, resp.text
    assert auth.config["PLATFORM_SMTP_HOST"] == ""  # mail disabled here
    assert done["email"] == "disabled"
