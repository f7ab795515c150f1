"""Login, tokens, sessions, seats and throttling through the gateway, against
the real services (users included)."""
from __future__ import annotations

import time

import pytest

from crm_shared.testing import GatewayProcess, wait_for
from tests.auth.conftest import next_client_ip


def until(call, done, message, timeout=15.0):
    """Repeats ``call`` until ``done(answer)``; returns that answer."""
    return wait_for(lambda: (lambda r: (r,) if done(r) else None)(call()), timeout, message=message)[0]


def test_register_log_in_and_read_me(auth_suite):
    s = auth_suite
    created = s.create_tenant(max_sessions=3, disk_quota_mb=5)
    assert set(created) >= {"product_code", "tenant_id", "admin"}
    assert created["admin"]["login"] == "admin"
    resp = s.login(created["product_code"].lower().replace("-", " "), "admin", created["admin"]["password"])
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    assert tokens["user"]["login"] == "admin"
    me = s.call("GET", "/api/v1/auth/me", tokens["access_token"])
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["tenant_id"] == created["tenant_id"]
    assert body["user"]["login"] == "admin"
    assert body["rights"]["users.manage"] == "all"
    assert body["session_id"] == tokens["session_id"]


def test_wrong_password_unknown_code_and_login_answer_the_same(auth_suite):
    s = auth_suite
    created = s.create_tenant()
    code = created["product_code"]
    other = code[:-1] + ("2" if code[-1] != "2" else "3")  # a typo: rejected by the check symbol
    answers = [
        s.login(code, "admin", "Wrong-pass-0001"),
        s.login(code, "nobody", "Wrong-pass-0001"),
        s.login(other, "admin", created["admin"]["password"]),
        s.login("ZZZZ-ZZZZ-ZZZZ", "admin", "Wrong-pass-0001"),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.content for r in answers}) == 1, [r.text for r in answers]
    assert answers[0].json()["error"]["code"] == "invalid_credentials"
    # and about the same time: each costs one RPC to users and one argon2 check there
    def timed(code_, login):
        started = time.perf_counter()
        resp = s.login(code_, login, "Wrong-pass-0001")
        assert resp.status_code == 401
        return time.perf_counter() - started

    known = sorted(timed(code, f"nobody{i}") for i in range(5))[2]
    unknown = sorted(timed("ZZZZ-ZZZZ-ZZZZ", f"admin{i}") for i in range(5))[2]
    assert 0.4 < unknown / known < 2.5, (known, unknown)


def test_missing_expired_and_garbage_tokens_are_401(auth_suite):
    s = auth_suite
    assert s.call("GET", "/api/v1/auth/me").status_code == 401
    resp = s.call("GET", "/api/v1/auth/me", "abc.def.ghi")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_token"
    # the operator token is not a user's token
    assert s.call("GET", "/api/v1/auth/me", s.operator_token).status_code == 401


def test_two_tenants_never_see_each_other(auth_suite):
    s = auth_suite
    a, b = s.admin_session(), s.admin_session()
    assert a.tenant_id != b.tenant_id
    b_user = b.add_user("buser")
    # listing and reading only ever show the caller's tenant
    listed = s.call("GET", "/api/v1/users", a.token)
    assert listed.status_code == 200
    assert {u["login"] for u in listed.json()["items"]} == {"admin"}
    for path in (f"/api/v1/users/{b_user}", f"/api/v1/users/{b.admin_id}"):
        assert s.call("GET", path, a.token).status_code == 404
    assert s.call("POST", f"/api/v1/users/{b_user}/unlock", a.token).status_code == 404
    me_a = s.call("GET", "/api/v1/auth/me", a.token).json()
    assert me_a["tenant_id"] == a.tenant_id and me_a["user"]["id"] == a.admin_id
    # a token cannot be bent to another tenant: any change breaks its signature
    head, body, sig = a.token.split(".")
    import base64
    import json
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["tid"] = b.tenant_id
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert s.call("GET", "/api/v1/auth/me", f"{head}.{forged}.{sig}").status_code == 401


def test_seats_limit_distinct_users_and_free_on_logout_or_idle(auth_suite):
    s = auth_suite
    inst = s.admin_session(max_sessions=2)
    inst.add_user("second")
    inst.add_user("third")
    # the admin signing in again (second device) takes no new seat
    again = s.login(inst.product_code, "admin", inst.admin_password)
    assert again.status_code == 200
    second = s.login(inst.product_code, "second", "User-pass-0001")
    assert second.status_code == 200, second.text
    third = s.login(inst.product_code, "third", "User-pass-0001")
    assert third.status_code == 403, third.text
    assert third.json()["error"]["code"] == "seats_exhausted"
    assert third.json()["error"]["max_sessions"] == 2 and "2" in third.json()["error"]["message"]
    usage = s.call("GET", f"/api/v1/tenants/{inst.product_code}", s.operator_token).json()["usage"]
    assert usage["active_sessions"] == 2 and usage["live_sessions"] == 3
    # the second user logs out: their seat frees at once
    assert s.call("POST", "/api/v1/auth/logout", second.json()["access_token"]).status_code == 204
    third = s.login(inst.product_code, "third", "User-pass-0001")
    assert third.status_code == 200, third.text
    # full again; an idle session frees its seat (time moved by editing the idle deadline)
    assert s.login(inst.product_code, "second", "User-pass-0001").status_code == 403
    s.sql("UPDATE sessions SET idle_expires_at = now() - interval '1 second' "
          "WHERE tenant_id = :t AND session_id = :s", t=inst.tenant_id, s=third.json()["session_id"])
    assert s.login(inst.product_code, "second", "User-pass-0001").status_code == 200
    # the idle session cannot be refreshed back to life
    resp = s.call("POST", "/api/v1/auth/refresh", json={"refresh_token": third.json()["refresh_token"]})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "session_expired"


def test_logout_kills_the_access_token_at_once_on_every_replica(auth_suite, containers):
    s = auth_suite
    inst = s.admin_session()
    other_gateway = s.start_gateway(containers)
    other = s.gateway_url(other_gateway)
    # the other replica loads its keys at start
    wait_for(lambda: s.call("GET", "/api/v1/auth/me", inst.token, url=other).status_code == 200, 15,
             message="second gateway ready")
    assert s.call("POST", "/api/v1/auth/logout", inst.token).status_code == 204
    # the replica that served the logout: at once, no waiting
    resp = s.call("GET", "/api/v1/auth/me", inst.token)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "session_ended"
    # the other replica: through the session_revoked broadcast
    wait_for(lambda: s.call("GET", "/api/v1/auth/me", inst.token, url=other).status_code == 401, 5,
             interval=0.01, message="revocation broadcast")
    # and the refresh token is dead too
    resp = s.call("POST", "/api/v1/auth/refresh", json={"refresh_token": inst.tokens["refresh_token"]})
    assert resp.status_code == 401
    # a replica started after the logout loads the revoked sessions by RPC before it accepts tokens
    late = s.gateway_url(s.start_gateway(containers))
    wait_for(lambda: s.call("GET", "/healthz", url=late).status_code == 200, 10, message="late gateway")
    resp = until(lambda: s.call("GET", "/api/v1/auth/me", inst.token, url=late), lambda r: r.status_code != 503,
                 "late gateway keys")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "session_ended"


def test_refresh_rotates_and_reuse_revokes_the_session(auth_suite):
    s = auth_suite
    inst = s.admin_session()
    first = inst.tokens["refresh_token"]
    resp = s.call("POST", "/api/v1/auth/refresh", json={"refresh_token": first})
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert second["refresh_token"] != first and second["session_id"] == inst.tokens["session_id"]
    assert s.call("GET", "/api/v1/auth/me", second["access_token"]).status_code == 200
    # the spent token comes back (stolen copy): the whole session ends
    resp = s.call("POST", "/api/v1/auth/refresh", json={"refresh_token": first})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "refresh_token_reused"
    resp = s.call("POST", "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "session_ended"
    # access tokens of the session die too: on this replica before the 401 answered
    assert s.call("GET", "/api/v1/auth/me", second["access_token"]).status_code == 401
    # garbage is refused without touching any session
    resp = s.call("POST", "/api/v1/auth/refresh", json={"refresh_token": "nonsense"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_refresh_token"


@pytest.fixture
def second_gateway(amqp_uri):
    """Another gateway replica, as a process of its own."""
    gateway = GatewayProcess(amqp_uri)
    yield gateway
    gateway.stop()


def test_deactivating_a_user_or_changing_the_password_ends_their_sessions(auth_suite, second_gateway):
    """At once on the replica that answered; on another gateway process through users' broadcast."""
    s = auth_suite
    inst = s.admin_session()
    other = second_gateway.url
    wait_for(lambda: s.call("GET", "/api/v1/auth/me", inst.token, url=other).status_code == 200, 20,
             message="second gateway ready")
    uid = inst.add_user("leaver")
    user = s.login(inst.product_code, "leaver", "User-pass-0001").json()
    for url in (None, other):
        assert s.call("GET", "/api/v1/auth/me", user["access_token"], url=url).status_code == 200
    resp = s.call("PATCH", f"/api/v1/users/{uid}", inst.token, {"active": False})
    assert resp.status_code == 200, resp.text
    resp = s.call("GET", "/api/v1/auth/me", user["access_token"])
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "session_ended"
    wait_for(lambda: s.call("GET", "/api/v1/auth/me", user["access_token"], url=other).status_code == 401, 5,
             interval=0.005, message="the other replica refuses the deactivated user")
    assert s.login(inst.product_code, "leaver", "User-pass-0001").status_code == 401
    # a password change ends the sessions too; a login with the new password works at once
    uid2 = inst.add_user("mover")
    user2 = s.login(inst.product_code, "mover", "User-pass-0001").json()
    resp = s.call("PATCH", f"/api/v1/users/{uid2}", inst.token,
                  {"password": "New-pass-0002x", "password_confirm": "New-pass-0002x"})
    assert resp.status_code == 200, resp.text
    assert s.call("GET", "/api/v1/auth/me", user2["access_token"]).status_code == 401
    wait_for(lambda: s.call("GET", "/api/v1/auth/me", user2["access_token"], url=other).status_code == 401, 5,
             interval=0.005, message="the other replica refuses the old password's tokens")
    fresh = s.login(inst.product_code, "mover", "New-pass-0002x")
    assert fresh.status_code == 200
    # deleting a user: the same, at once here
    uid3 = inst.add_user("goner")
    user3 = s.login(inst.product_code, "goner", "User-pass-0001").json()
    assert s.call("DELETE", f"/api/v1/users/{uid3}", inst.token).status_code == 204
    assert s.call("GET", "/api/v1/auth/me", user3["access_token"]).status_code == 401


def test_repeated_failures_slow_down_then_lock_until_an_admin_unlocks(auth_suite):
    s = auth_suite  # slowdown after 2 failures (0.3 s, doubling), lockout at 4 (see conftest)
    inst = s.admin_session()
    uid = inst.add_user("victim")
    ip = next_client_ip()
    # the victim has signed in before, so auth knows whom the login names (the lockout
    # event carries the user id; users' RPCs offer no lookup by login)
    earlier = s.login(inst.product_code, "victim", "User-pass-0001")
    assert earlier.status_code == 200
    assert s.call("POST", "/api/v1/auth/logout", earlier.json()["access_token"]).status_code == 204

    def attempt(password="Wrong-pass-0001"):
        return s.login(inst.product_code, "victim", password, ip=ip)

    assert attempt().status_code == 401
    assert attempt().status_code == 401
    early = attempt()
    assert early.status_code == 429, early.text
    assert early.json()["error"]["code"] == "too_many_attempts"
    assert int(early.headers["Retry-After"]) >= 1
    # even the right password waits: a guess gains nothing from coming early
    assert attempt("User-pass-0001").status_code == 429
    assert until(attempt, lambda r: r.status_code != 429, "slowdown over").status_code == 401
    locking = until(attempt, lambda r: r.status_code != 429, "slowdown over")
    assert locking.status_code == 401  # the 4th failure locks
    locked = attempt("User-pass-0001")
    assert locked.status_code == 429 and locked.json()["error"]["locked"] is True
    assert int(locked.headers["Retry-After"]) > 500
    # the users service journals the lockout (user_locked_out)
    def journaled():
        resp = s.call("GET", "/api/v1/journal", inst.token)
        return resp.status_code == 200 and any(
            e.get("action") == "locked_out" and str(e.get("entity_id")) == uid for e in resp.json()["items"])
    wait_for(journaled, 10, message="lockout in the journal")
    # unlocking needs users.manage
    victim_peer = inst.add_user("peer")
    peer = s.login(inst.product_code, "peer", "User-pass-0001").json()
    resp = s.call("POST", f"/api/v1/users/{uid}/unlock", peer["access_token"])
    assert resp.status_code == 403, resp.text
    assert victim_peer
    resp = s.call("POST", f"/api/v1/users/{uid}/unlock", inst.token)
    assert resp.status_code == 200 and resp.json() == {"user_id": uid, "unlocked": True}
    assert attempt("User-pass-0001").status_code == 200


def test_many_failures_from_one_address_are_throttled(auth_suite):
    s = auth_suite  # at most 6 failures per address per window (see conftest)
    inst = s.admin_session()
    ip = next_client_ip()
    for i in range(6):
        assert s.login(inst.product_code, f"guess{i}", "Wrong-pass-0001", ip=ip).status_code == 401
    resp = s.login(inst.product_code, "admin", inst.admin_password, ip=ip)
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "too_many_attempts"
    assert int(resp.headers["Retry-After"]) > 0
    # another address is not affected
    assert s.login(inst.product_code, "admin", inst.admin_password).status_code == 200
