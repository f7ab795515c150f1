"""The users service's rules without a broker or database: rights and
scopes, the password policy and hashing, the tree, the principal snapshot
and its cache, journal masking."""
from __future__ import annotations

import datetime as dt

import pytest
from argon2 import extract_parameters

from contracts.users import utc_offset
from services.users import rights as R
from services.users.guards import creates_cycle
from services.users.passwords import Hasher, check_new_password, policy_problems
from services.users.principal import PrincipalCache, Profile, TenantSnapshot
from services.users.work import decode_cursor, encode_cursor, mask


def test_catalogue_shape():
    cat = {r["code"]: r for r in R.catalogue()}
    assert len(cat) == 6 * 4 + 9
    assert all(r["title"] and r["scopes"][0] == "none" for r in cat.values())
    assert cat["payments.delete"]["scopes"] == ["none", "own", "department", "all"]
    assert cat["mail.send"]["scopes"] == ["none", "all"]


def test_merge_takes_the_most_permissive_scope():
    merged = R.merge([{"contacts.read": "own", "mail.send": "all"}, {"contacts.read": "department"}, {}])
    assert merged["contacts.read"] == "department" and merged["mail.send"] == "all"
    assert merged["contacts.delete"] == "none" and set(merged) == set(R.CATALOGUE)
    assert R.allows(merged, "contacts.read", "own") and not R.allows(merged, "contacts.read")


def test_validate_rights_names_each_bad_entry():
    assert R.validate_rights({"contacts.read": "own", "users.manage": "all"}) == {}
    problems = R.validate_rights({"users.manage": "own", "x.y": "all", "contacts.read": "mine"})
    assert set(problems) == {"rights.users.manage", "rights.x.y", "rights.contacts.read"}


def test_builtin_roles():
    admin = R.BUILTIN_ROLES[R.ROLE_ADMIN][1]
    assert R.is_full_admin(admin) and set(admin.values()) == {"all"} and set(admin) == set(R.CATALOGUE)
    manager = R.complete(R.BUILTIN_ROLES[R.ROLE_MANAGER][1])
    assert manager["invoices.update"] == "department" and manager["users.manage"] == "none"
    employee = R.complete(R.BUILTIN_ROLES[R.ROLE_EMPLOYEE][1])
    assert employee["counterparties.read"] == "own" and employee["invoices.discount"] == "none"
    assert not R.validate_rights(manager) and not R.validate_rights(employee)


@pytest.mark.parametrize("password, broken", [
    ("Abcdefgh1", ["at least 10"]),
    ("abcdefghij1", ["upper-case"]),
    ("ABCDEFGHIJ1", ["lower-case"]),
    ("Abcdefghijk", ["digit"]),
    ("abc", ["at least 10", "digit", "upper-case"]),
    ("Пароль-надёжный-1", []),
    ("Abcdefghi1", []),
])
def test_password_policy(password, broken):
    problems = policy_problems(password)
    assert len(problems) == len(broken)
    for fragment, problem in zip(broken, problems):
        assert fragment in problem


def test_new_password_checks_the_confirmation():
    assert check_new_password("Abcdefghi1", "Abcdefghi1") == {}
    assert set(check_new_password("Abcdefghi1", "Abcdefghi2")) == {"password_confirm"}
    assert set(check_new_password("short", "short")) == {"password"}
    assert set(check_new_password("Abcdefghi1", None)) == {"password_confirm"}


def test_argon2id_at_or_above_the_owasp_minimum():
    hasher = Hasher()
    stored = hasher.hash("Abcdefghi1")
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2 and params.parallelism >= 1
    assert hasher.verify(stored, "Abcdefghi1") and not hasher.verify(stored, "Abcdefghi2")
    assert not hasher.verify(None, "Abcdefghi1")  # the dummy hash: one verification, never a match
    assert not hasher.verify("garbage", "Abcdefghi1")
    with pytest.raises(ValueError):
        Hasher(memory_kib=8192)


def test_cycle_detection():
    parents = {"root": None, "a": "root", "b": "a", "c": "b", "x": "root"}
    assert creates_cycle(parents, "a", "c") and creates_cycle(parents, "a", "a")
    assert not creates_cycle(parents, "c", "x") and not creates_cycle(parents, "b", "root")


def _snapshot() -> TenantSnapshot:
    # root > top > mid > low; P_top holds the manager role, others the employee role
    profile = Profile("u", "U", None, "UTC", True, False)
    return TenantSnapshot.build(
        "t1",
        departments=[("root", None), ("top", "root"), ("mid", "top"), ("low", "mid"), ("side", "root")],
        positions=[("p_top", "top", "r_mgr"), ("p_mid", "mid", "r_emp"), ("p_low", "low", "r_emp"),
                   ("p_side", "side", "r_emp")],
        roles=[("r_mgr", {"contacts.read": "department"}), ("r_emp", {"contacts.read": "own", "mail.send": "all"})],
        holdings=[("u_top", "p_top"), ("u_mid", "p_mid"), ("u_low", "p_low"), ("u_both", "p_low"),
                  ("u_both", "p_side")],
        users=[(u, profile) for u in ("u_top", "u_mid", "u_low", "u_both", "u_none")],
    )


def test_principal_over_a_three_level_tree():
    snap = _snapshot()
    top = snap.principal("u_top")
    assert top is not None
    assert set(top["department_ids"]) == {"top", "mid", "low"}
    assert set(top["department_user_ids"]) == {"u_top", "u_mid", "u_low", "u_both"}
    low = snap.principal("u_low")
    assert low is not None and low["department_ids"] == ["low"]
    assert set(low["department_user_ids"]) == {"u_low", "u_both"}
    both = snap.principal("u_both")
    assert both is not None and set(both["department_ids"]) == {"low", "side"}
    assert both["rights"]["contacts.read"] == "own" and both["rights"]["mail.send"] == "all"
    nobody = snap.principal("u_none")
    assert nobody is not None and nobody["department_ids"] == [] and set(nobody["rights"].values()) == {"none"}
    assert snap.principal("ghost") is None


class _FakeSession:
    def __init__(self) -> None:
        self.info: dict = {}


def test_cache_never_stores_a_snapshot_built_across_a_change():
    built = []

    def loader(session, tenant_id):
        built.append(tenant_id)
        if len(built) == 1:
            cache.invalidate(tenant_id)  # a change committed while this build was reading
        return _snapshot()

    cache = PrincipalCache(loader=loader)
    session = _FakeSession()
    cache.snapshot(session, "t1")
    assert len(cache) == 0
    cache.snapshot(session, "t1")
    assert len(cache) == 1
    cache.snapshot(session, "t1")
    assert len(built) == 2
    cache.invalidate("t1")
    assert len(cache) == 0


def test_cache_keeps_a_bounded_number_of_tenants():
    cache = PrincipalCache(max_tenants=2, loader=lambda s, t: _snapshot())
    session = _FakeSession()
    for tenant in ("a", "b", "a", "c"):
        cache.snapshot(session, tenant)
    assert set(cache._snapshots) == {"a", "c"}


def test_masking_and_cursors():
    masked = mask({"password": {"old": None, "new": "x"}, "sip": {"secret": "s", "login": "l"},
                   "name": {"old": "a", "new": "b"}})
    assert masked == {"password": {"old": None, "new": "***"}, "sip": {"secret": "***", "login": "l"},
                      "name": {"old": "a", "new": "b"}}
    assert decode_cursor(encode_cursor("Иванов", 5), 2) == ["Иванов", 5]


def test_utc_offsets():
    summer = dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)
    assert utc_offset("Europe/Moscow", summer) == "+03:00"
    assert utc_offset("America/New_York", summer) == "-04:00"
    assert utc_offset("Asia/Kolkata", summer) == "+05:30"


def test_colleagues_share_one_copy_of_their_scope():
    snap = _snapshot()
    snap.user_positions["u_mid2"] = ["p_mid"]
    snap.profiles["u_mid2"] = snap.profiles["u_mid"]
    first, second = snap.principal("u_mid"), snap.principal("u_mid2")
    assert first is not None and second is not None
    assert first["department_user_ids"] is second["department_user_ids"]
    assert first["rights"] is second["rights"]
