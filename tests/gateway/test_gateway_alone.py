"""The gateway with the services replaced by a fake cluster (no service, no
database: the RPC proxy is a mock; nameko's reply queue still binds to the
test vhost): request validation, authentication and error mapping, in
milliseconds. The end-to-end tests (tests/*/test_*_gateway.py) keep the
real suite behind it."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.testing.services import replace_dependencies, restrict_entrypoints

from crm_shared.errors import Forbidden, NotFound, ServiceUnavailable, Throttled
from crm_shared.testing import service_config
from gateway.entrypoints import ApiEndpoint
from gateway.openapi import endpoints
from gateway.service import GatewayService, openapi_document
from services.auth.tokens import SigningKeys, generate_key_spec

TENANT, USER, SESSION = uuid.uuid4().hex, str(uuid.uuid4()), uuid.uuid4().hex


class Gateway:
    def __init__(self, amqp_uri: str) -> None:
        _, config = service_config("gateway", amqp_uri)
        self.container = ServiceContainer(GatewayService, config)
        restrict_entrypoints(self.container, *[name for name, _ in endpoints(GatewayService)])
        self.cluster, _ = replace_dependencies(self.container, "cluster", "readiness")
        self.store = next(ep.tokens for ep in self.container.entrypoints if isinstance(ep, ApiEndpoint))
        self.store.start = lambda: None  # no key sync with an auth service: the keys are set below
        self.container.start()
        self.keys = SigningKeys.from_spec(generate_key_spec("unit"))
        self.store.verifier.set_jwks(self.keys.jwks())
        self.store.loaded.send(True)
        self.base = f"http://{config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', '127.0.0.1')}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token()}"

    def token(self, session_id: str = SESSION, ttl: int = 300) -> str:
        return self.keys.sign_access_token(tenant_id=TENANT, user_id=USER, session_id=session_id,
                                           issued_at=int(time.time()), ttl_seconds=ttl)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}{path}", timeout=5, **kwargs)


@pytest.fixture(scope="module")
def gw(amqp_uri: str) -> Any:
    gateway = Gateway(amqp_uri)
    yield gateway
    gateway.container.kill()


@pytest.fixture(autouse=True)
def fresh_cluster(gw: Gateway) -> None:
    gw.cluster.reset_mock(return_value=True, side_effect=True)


def error(resp: requests.Response) -> dict[str, Any]:
    assert resp.headers["Content-Type"].startswith("application/json"), resp.text
    return dict(resp.json()["error"])


# -- validation ---------------------------------------------------------------------

@pytest.mark.parametrize("path,body,field", [
    ("/api/v1/counterparties", {"name": "ООО \u0000Ромашка"}, "name"),
    ("/api/v1/contacts", {"full_name": "Иван", "phones": ["+7 916 123-45-67", "8\u0000"]}, "phones"),
    ("/api/v1/departments", {"name": "Продажи\u0000"}, "name"),
    ("/api/v1/roles", {"name": "Роль", "rights": {"contacts.read\u0000": "all"}}, "rights"),
    ("/api/v1/auth/login", {"product_code": "K7QM-3XWA-9RTC", "login": "ad\u0000min", "password": "x"}, "login"),
    ("/api/v1/contacts", {"full_name": "\ud800"}, "full_name"),
])
def test_unstorable_characters_in_a_body_are_a_422_naming_the_field(gw: Gateway, path: str, body: dict[str, Any],
                                                                    field: str) -> None:
    resp = gw.call("POST", path, json=body)
    assert resp.status_code == 422, resp.text
    assert "cannot be stored" in error(resp)["fields"][field]
    assert not gw.cluster.mock_calls  # nothing reached a service


def test_unstorable_characters_in_a_query_or_path_are_a_422(gw: Gateway) -> None:
    resp = gw.call("GET", "/api/v1/contacts", params={"q": "Ив\x00ан"})
    assert resp.status_code == 422 and "q" in error(resp)["fields"]
    resp = gw.call("GET", "/api/v1/contacts/ab%00cd")
    assert resp.status_code == 422 and "contact_id" in error(resp)["fields"]
    assert not gw.cluster.mock_calls


def test_an_over_long_value_is_a_422_stating_the_limit(gw: Gateway) -> None:
    resp = gw.call("POST", "/api/v1/contacts", json={"full_name": "Я" * 301})
    assert resp.status_code == 422
    assert "300" in error(resp)["fields"]["full_name"]
    resp = gw.call("GET", "/api/v1/contacts", params={"q": "x" * 201})
    assert resp.status_code == 422 and "200" in error(resp)["fields"]["q"]


def test_unknown_fields_wrong_types_and_malformed_bodies(gw: Gateway) -> None:
    resp = gw.call("POST", "/api/v1/contacts", json={"full_name": "Иван", "colour": "red"})
    assert resp.status_code == 422 and "colour" in error(resp)["fields"]
    resp = gw.call("POST", "/api/v1/contacts", json={"full_name": "Иван", "counterparty_id": "not-a-uuid"})
    assert resp.status_code == 422 and "counterparty_id" in error(resp)["fields"]
    resp = gw.call("POST", "/api/v1/contacts", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and error(resp)["code"] == "malformed_json"
    resp = gw.call("POST", "/api/v1/contacts", data=b"[1, 2]")
    assert resp.status_code == 400 and error(resp)["code"] == "malformed_json"
    resp = gw.call("POST", "/api/v1/contacts", data=b"{" + b" " * 2_000_000 + b"}")
    assert resp.status_code == 413 and error(resp)["code"] == "payload_too_large"
    resp = gw.call("GET", "/api/v1/contacts", params={"limit": "0"})
    assert resp.status_code == 422 and "limit" in error(resp)["fields"]
    assert not gw.cluster.mock_calls


def test_one_rule_in_one_place_inn_check_digits_and_phone_shape(gw: Gateway) -> None:
    resp = gw.call("POST", "/api/v1/counterparties", json={"name": "ПАО", "inn": "7707083894"})
    assert resp.status_code == 422 and "check digit" in error(resp)["fields"]["inn"]
    resp = gw.call("POST", "/api/v1/contacts", json={"full_name": "Иван", "phones": ["12-34"]})
    assert resp.status_code == 422 and "phones.0" in error(resp)["fields"]
    resp = gw.call("POST", "/api/v1/users", json={"full_name": "Иван", "login": "-bad login", "password": "x",
                                                  "password_confirm": "x"})
    assert resp.status_code == 422 and "letters, digits" in error(resp)["fields"]["login"]


# -- paths and methods -----------------------------------------------------------------

def test_unknown_path_and_wrong_method_answer_in_the_error_format(gw: Gateway) -> None:
    resp = gw.call("GET", "/api/v1/no-such-thing")
    assert resp.status_code == 404 and error(resp)["code"] == "not_found"
    resp = gw.call("GET", "/nothing/here.html")
    assert resp.status_code == 404 and error(resp)["code"] == "not_found"
    resp = gw.call("PUT", "/api/v1/contacts")
    assert resp.status_code == 405 and error(resp)["code"] == "method_not_allowed"
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


# -- authentication ----------------------------------------------------------------------

def test_bearer_tokens_are_checked_in_the_gateway(gw: Gateway) -> None:
    url = f"{gw.base}/api/v1/contacts"
    assert error(requests.get(url, timeout=5))["code"] == "unauthenticated"
    bad = requests.get(url, headers={"Authorization": "Bearer nonsense"}, timeout=5)
    assert bad.status_code == 401 and error(bad)["code"] == "invalid_token"
    other = SigningKeys.from_spec(generate_key_spec("unit"))  # same kid, another key
    forged = other.sign_access_token(tenant_id=TENANT, user_id=USER, session_id=SESSION,
                                     issued_at=int(time.time()), ttl_seconds=300)
    assert requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=5).status_code == 401
    expired = gw.token(ttl=-60)
    resp = requests.get(url, headers={"Authorization": f"Bearer {expired}"}, timeout=5)
    assert resp.status_code == 401 and error(resp)["code"] == "token_expired"
    ended = uuid.uuid4().hex
    gw.store.revoke(ended, time.time() + 600)
    resp = requests.get(url, headers={"Authorization": f"Bearer {gw.token(ended)}"}, timeout=5)
    assert resp.status_code == 401 and error(resp)["code"] == "session_ended"
    resp = requests.post(f"{gw.base}/api/v1/tenants", json={}, headers={"Authorization": f"Bearer {gw.token()}"},
                         timeout=5)
    assert resp.status_code == 401  # a user's token is not the operator's
    assert not gw.cluster.mock_calls


# -- the one RPC and error mapping -------------------------------------------------------

def test_a_generated_route_makes_one_rpc_with_the_caller(gw: Gateway) -> None:
    page = {"items": [], "next_cursor": None}
    gw.cluster.crm.list_records.return_value = page
    resp = gw.call("GET", "/api/v1/contacts", params={"q": "Иван", "limit": "20"})
    assert resp.status_code == 200 and resp.json() == page
    gw.cluster.crm.list_records.assert_called_once_with({"tenant_id": TENANT, "user_id": USER}, "contacts",
                                                        {"q": "Иван", "limit": 20})
    gw.cluster.users.get_department.return_value = {"id": "d"}
    assert gw.call("GET", "/api/v1/departments/d1").json() == {"id": "d"}
    gw.cluster.users.get_department.assert_called_once_with({"tenant_id": TENANT, "user_id": USER}, "d1")
    gw.cluster.crm.delete_record.return_value = None
    assert gw.call("DELETE", "/api/v1/invoices/i1").status_code == 204
    gw.cluster.crm.delete_record.assert_called_once_with({"tenant_id": TENANT, "user_id": USER}, "invoices", "i1")


@pytest.mark.parametrize("raised,status,code", [
    (NotFound("no such contact", code="not_found"), 404, "not_found"),
    (Forbidden("no", code="forbidden", details={"right": "contacts.update"}), 403, "forbidden"),
    (ServiceUnavailable("service 'crm' did not answer within 5s"), 503, "service_unavailable"),
    (Throttled("slow down", code="too_many_attempts", details={"retry_after": 7}), 429, "too_many_attempts"),
])
def test_service_errors_map_through_the_one_table(gw: Gateway, raised: Exception, status: int, code: str) -> None:
    gw.cluster.crm.get_record.side_effect = raised
    resp = gw.call("GET", "/api/v1/contacts/c1")
    assert resp.status_code == status and error(resp)["code"] == code
    if status == 429:
        assert resp.headers["Retry-After"] == "7"


def test_an_unexpected_failure_is_a_500_that_tells_nothing(gw: Gateway) -> None:
    gw.cluster.crm.get_record.side_effect = RuntimeError("password=hunter2 in a traceback")
    resp = gw.call("GET", "/api/v1/contacts/c1")
    assert resp.status_code == 500 and error(resp) == {"code": "internal_error", "message": "internal error"}


# -- the document --------------------------------------------------------------------------

def test_every_operation_documents_the_statuses_it_can_answer() -> None:
    doc = openapi_document()
    login = doc["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"200", "401", "403", "422", "429", "503"} <= set(login)
    assert "401" in doc["paths"]["/api/v1/auth/refresh"]["post"]["responses"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/v1"):
                assert "503" in op["responses"], (method, path)
            if "{" in path:
                assert {"404", "422"} <= set(op["responses"]), (method, path)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert {"list_contacts", "count_contacts", "create_contact", "get_contact", "update_contact",
            "delete_contact", "list_journal", "list_rights"} <= set(ids)


# -- layout ----------------------------------------------------------------------------------

def test_the_gateway_and_the_contracts_import_no_service_code() -> None:
    probe = ("import sys, gateway.service, contracts.crm, contracts.users, contracts.auth, contracts.tenants;"
             "print(sorted(m for m in sys.modules if m == 'services' or m.startswith('services.')))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    probe = ("import sys, contracts.crm, contracts.users, contracts.auth, contracts.tenants, contracts.ops;"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'nameko', 'sqlalchemy', 'services',"
             " 'crm_shared', 'gateway', 'eventlet', 'kombu'}))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
