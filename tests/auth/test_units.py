"""Business rules of the auth service and the gateway's token check, without a broker."""
from __future__ import annotations

import datetime as dt
import itertools
import time
from types import SimpleNamespace

import pytest

from crm_shared.config import ConfigError
from crm_shared.errors import Unauthenticated
from gateway.tokens import TokenVerifier, UnknownKey, client_ip
from services.auth import product_codes as pc
from services.auth import throttle
from services.auth.exceptions import too_many_attempts
from services.auth.mailer import welcome_message
from services.auth.settings import Settings
from services.auth.tenants import generate_admin_password
from services.auth.tokens import (
    SigningKeys,
    generate_key_spec,
    hash_refresh_token,
    new_refresh_token,
    parse_refresh_token,
)

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


# -- product codes ---------------------------------------------------------------

def test_product_codes_are_unambiguous_and_self_checking():
    codes = {pc.generate() for _ in range(2000)}
    assert len(codes) == 2000
    for code in itertools.islice(codes, 200):
        assert len(code) == 12 and not set(code) & set("01OIL")
        shown = pc.display(code)
        assert shown.count("-") == 2
        assert pc.normalize(shown) == code
        assert pc.normalize(" " + shown.lower().replace("-", " ") + " ") == code


def test_every_single_typo_and_swap_is_rejected_not_matched():
    code = pc.generate()
    for i, original in enumerate(code):
        for ch in pc.ALPHABET:
            if ch != original:
                with pytest.raises(pc.InvalidProductCode):
                    pc.normalize(code[:i] + ch + code[i + 1:])
    for i in range(len(code) - 1):
        for j in range(i + 1, len(code)):
            if code[i] != code[j]:
                swapped = list(code)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                with pytest.raises(pc.InvalidProductCode):
                    pc.normalize("".join(swapped))


@pytest.mark.parametrize("text", ["", "ABCD", "0000-0000-0000", "IIII-LLLL-OOOO", "x" * 65, "ÄBCD-EFGH-JKMN"])
def test_malformed_codes_are_rejected(text):
    with pytest.raises(pc.InvalidProductCode):
        pc.normalize(text)


# -- passwords ---------------------------------------------------------------------

def test_generated_admin_passwords_meet_the_policy():
    for _ in range(500):
        p = generate_admin_password()
        assert len(p) >= 10 and any(c.isdigit() for c in p) and any(c.isupper() for c in p) \
            and any(c.islower() for c in p)
    assert len({generate_admin_password() for _ in range(100)}) == 100


# -- throttling -------------------------------------------------------------------------

def test_failures_slow_down_then_lock():
    policy = throttle.ThrottlePolicy(slowdown_after=3, slowdown_seconds=1, slowdown_max_seconds=8, lockout_after=6,
                                     lockout_seconds=900, failure_window_seconds=900)
    state = throttle.LoginState()
    now = T0
    waits = []
    for _ in range(5):
        assert throttle.wait_for_login(state, now) == (0.0, False)
        assert throttle.after_failure(state, policy, now) is False
        wait, locked = throttle.wait_for_login(state, now)
        waits.append(wait)
        assert not locked
        now += dt.timedelta(seconds=wait)
    assert waits == [0, 0, 1, 2, 4]
    assert throttle.after_failure(state, policy, now) is True
    wait, locked = throttle.wait_for_login(state, now)
    assert locked and wait == 900
    # the lock ends by itself; the count starts over
    later = now + dt.timedelta(seconds=901)
    assert throttle.wait_for_login(state, later) == (0.0, False)
    assert throttle.after_failure(state, policy, later) is False and state.failures == 1


def test_failures_are_forgotten_after_the_window():
    policy = throttle.ThrottlePolicy(slowdown_after=2, lockout_after=3, failure_window_seconds=60)
    state = throttle.LoginState()
    throttle.after_failure(state, policy, T0)
    throttle.after_failure(state, policy, T0 + dt.timedelta(seconds=10))
    throttle.after_failure(state, policy, T0 + dt.timedelta(seconds=200))
    assert state.failures == 1 and state.locked_until is None


def test_one_address_is_blocked_for_the_rest_of_its_window():
    policy = throttle.ThrottlePolicy(ip_max_failures=3, ip_window_seconds=100)
    state = throttle.IpState()
    for i in range(3):
        assert throttle.wait_for_ip(state, T0 + dt.timedelta(seconds=i)) == 0
        throttle.after_ip_failure(state, policy, T0 + dt.timedelta(seconds=i))
    assert throttle.wait_for_ip(state, T0 + dt.timedelta(seconds=2)) == 98
    assert throttle.wait_for_ip(state, T0 + dt.timedelta(seconds=101)) == 0


def test_throttled_error_carries_retry_after():
    exc = too_many_attempts(0.2)
    assert exc.status == 429 and exc.code == "too_many_attempts" and exc.retry_after == 1
    assert too_many_attempts(12.1, locked=True).to_body()["error"]["retry_after"] == 13


# -- tokens --------------------------------------------------------------------------------

def _verifier(keys: SigningKeys) -> TokenVerifier:
    v = TokenVerifier()
    v.set_jwks(keys.jwks())
    return v


def test_access_tokens_verify_locally_and_rotate_by_kid():
    old = SigningKeys.from_spec(generate_key_spec("old"))
    rotated = SigningKeys.from_spec(generate_key_spec("new") + "," + old.keys[0].kid + ":" +
                                    generate_key_spec("x").split(":")[1])
    now = int(time.time())
    token = old.sign_access_token(tenant_id="t1", user_id="u1", session_id="s1", issued_at=now, ttl_seconds=60)
    claims = _verifier(old).verify(token)
    assert (claims.tenant_id, claims.user_id, claims.session_id) == ("t1", "u1", "s1")
    # a gateway that knows only other keys asks for a refetch
    with pytest.raises(UnknownKey):
        _verifier(SigningKeys.from_spec(generate_key_spec("other"))).verify(token)
    # same kid, different key material: refused
    with pytest.raises(Unauthenticated):
        _verifier(rotated).verify(token)
    assert [k["kid"] for k in rotated.jwks()["keys"]] == ["new", "old"]


def test_expired_tampered_and_revoked_tokens_are_refused():
    keys = SigningKeys.from_spec(generate_key_spec("k1"))
    v = _verifier(keys)
    now = int(time.time())
    expired = keys.sign_access_token(tenant_id="t", user_id="u", session_id="s", issued_at=now - 100, ttl_seconds=60)
    with pytest.raises(Unauthenticated) as err:
        v.verify(expired)
    assert err.value.code == "token_expired"
    good = keys.sign_access_token(tenant_id="t", user_id="u", session_id="s", issued_at=now, ttl_seconds=60)
    head, body, sig = good.split(".")
    for bad in (f"{head}.{body}x.{sig}", f"{head}.{body}.{sig[:-4]}AAAA", "not-a-token", ""):
        with pytest.raises(Unauthenticated):
            v.verify(bad)
    v.revoke("s", dt.datetime.fromtimestamp(now + 60, dt.timezone.utc).isoformat())
    with pytest.raises(Unauthenticated) as err:
        v.verify(good)
    assert err.value.code == "session_ended"
    v.prune(now + 60 + 10)
    assert "s" not in v.revoked


def test_unsigned_or_hs256_tokens_are_refused():
    import jwt

    keys = SigningKeys.from_spec(generate_key_spec("k1"))
    v = _verifier(keys)
    claims = {"iss": "crm-auth", "aud": "crm-api", "sub": "u", "tid": "t", "sid": "s", "iat": int(time.time()),
              "exp": int(time.time()) + 60}
    for token in (jwt.encode(claims, "secret" * 8, algorithm="HS256", headers={"kid": "k1"}),
                  jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})):
        with pytest.raises(Unauthenticated):
            v.verify(token)


def test_refresh_tokens_name_their_session_and_are_stored_hashed():
    token = new_refresh_token("a" * 32, "b" * 32)
    parsed = parse_refresh_token(str(token))
    assert parsed == token and token.digest == hash_refresh_token(str(token)) != str(token)
    for bad in ("", "x.y.z", "a" * 32 + "." + "b" * 32, str(token) + ".x", "A" * 32 + "." + "b" * 32 + "." + "c" * 43):
        assert parse_refresh_token(bad) is None


@pytest.mark.parametrize("spec", ["", "nokey", "k1:short", "bad kid:" + "A" * 43, "k1:" + "A" * 43 + ",k1:" + "B" * 43])
def test_bad_signing_keys_are_refused(spec):
    with pytest.raises(ConfigError):
        SigningKeys.from_spec(spec)


# -- settings ---------------------------------------------------------------------------------

BASE = {"SERVICE_NAME": "auth", "AMQP_URI": "amqp://x", "METRICS_PORT": 0, "RPC_TIMEOUT_SECONDS": 5,
        "LOG_LEVEL": "INFO"}


def test_settings_require_keys_and_coherent_timeouts():
    from pydantic import ValidationError

    Settings.model_validate({**BASE, "AUTH_SIGNING_KEYS": generate_key_spec()})
    for bad in ({"AUTH_SIGNING_KEYS": ""},
                {"AUTH_SIGNING_KEYS": "k:nope"},
                {"AUTH_SIGNING_KEYS": generate_key_spec(), "AUTH_ACCESS_TOKEN_TTL_SECONDS": 1000,
                 "AUTH_SESSION_IDLE_TIMEOUT_SECONDS": 1800},
                {"AUTH_SIGNING_KEYS": generate_key_spec(), "PLATFORM_SMTP_HOST": "smtp.example.test"}):
        with pytest.raises(ValidationError):
            Settings.model_validate({**BASE, **bad})


# -- gateway helpers -----------------------------------------------------------------------------

def _request(remote: str, forwarded: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(remote_addr=remote, headers={"X-Forwarded-For": forwarded} if forwarded else {})


def test_client_address_trusts_only_the_configured_proxies():
    assert client_ip(_request("10.0.0.5", "6.6.6.6"), 0) == "10.0.0.5"  # no proxy: the header is the client's lie
    assert client_ip(_request("10.0.0.5", "6.6.6.6, 203.0.113.7"), 1) == "203.0.113.7"
    assert client_ip(_request("10.0.0.5", "6.6.6.6, 203.0.113.7, 10.0.0.9"), 2) == "203.0.113.7"
    assert client_ip(_request("10.0.0.5"), 1) == "10.0.0.5"


def test_welcome_mail_names_code_login_and_password():
    msg = welcome_message("CRM <platform@crm.test>", "owner@example.test", "ООО Ромашка", "K7QM-3XWA-9RTC",
                          "Pw-123abcDEF")
    body = msg.get_content()
    assert "K7QM-3XWA-9RTC" in body and "admin" in body and "Pw-123abcDEF" in body
    assert msg["To"] == "owner@example.test"


def test_a_remembered_token_still_expires_and_still_obeys_revocation_and_key_removal():
    keys = SigningKeys.from_spec(generate_key_spec("k1"))
    v = _verifier(keys)
    now = int(time.time())
    token = keys.sign_access_token(tenant_id="t", user_id="u", session_id="s9", issued_at=now, ttl_seconds=60)
    assert v.verify(token).session_id == "s9"
    assert v.verify(token).session_id == "s9"  # from memory
    with pytest.raises(Unauthenticated) as err:
        v.verify(token, now=now + 60 + 10)
    assert err.value.code == "token_expired"
    v.verify(token)  # verified afresh
    v.revoke("s9", now + 60)
    with pytest.raises(Unauthenticated):
        v.verify(token)
    # the key is rotated out: what it signed is checked again (and fails)
    other = SigningKeys.from_spec(generate_key_spec("k2"))
    v2 = _verifier(keys)
    fresh = keys.sign_access_token(tenant_id="t", user_id="u", session_id="s8", issued_at=now, ttl_seconds=60)
    v2.verify(fresh)
    v2.set_jwks(other.jwks())
    with pytest.raises(UnknownKey):
        v2.verify(fresh)
