"""Login throttling and lockout.

Per login (tenant + login, lower-cased): failures within
``failure_window`` count up. From ``slowdown_after`` failures on, the next
attempt is allowed only after a delay that doubles with each further
failure (``slowdown_seconds`` · 2^n, at most ``slowdown_max_seconds``); at
``lockout_after`` failures the login is locked for ``lockout_seconds`` (or
until an administrator unlocks it). An attempt that comes too early is
answered 429 ``too_many_attempts`` with ``Retry-After`` without checking
the password, so guessing gains nothing from it. A success clears the
count.

Per client address: ``ip_max_failures`` failures within ``ip_window``
block further attempts from that address until the window ends (many
logins guessed from one place). A success does not clear it.

Unknown product codes are throttled the same way (keyed by the code as
typed), so the answers do not reveal which codes exist."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from services.auth.exceptions import too_many_attempts
from services.auth.models import IpThrottle, LoginThrottle

STALE_AFTER = dt.timedelta(days=2)


@dataclass(frozen=True)
class ThrottlePolicy:
    slowdown_after: int = 3
    slowdown_seconds: float = 1.0
    slowdown_max_seconds: float = 60.0
    lockout_after: int = 10
    lockout_seconds: int = 900
    failure_window_seconds: int = 900
    ip_max_failures: int = 50
    ip_window_seconds: int = 600

    @classmethod
    def from_settings(cls, s: Any) -> "ThrottlePolicy":
        """From the auth service's validated ``Settings``."""
        return cls(s.AUTH_LOGIN_SLOWDOWN_AFTER, s.AUTH_LOGIN_SLOWDOWN_SECONDS, s.AUTH_LOGIN_SLOWDOWN_MAX_SECONDS,
                   s.AUTH_LOGIN_LOCKOUT_AFTER, s.AUTH_LOGIN_LOCKOUT_SECONDS, s.AUTH_LOGIN_FAILURE_WINDOW_SECONDS,
                   s.AUTH_IP_MAX_FAILURES, s.AUTH_IP_WINDOW_SECONDS)

    def delay_after(self, failures: int) -> float:
        """Seconds the next attempt must wait after ``failures`` consecutive failures."""
        if failures < self.slowdown_after:
            return 0.0
        return float(min(self.slowdown_max_seconds, self.slowdown_seconds * 2 ** (failures - self.slowdown_after)))


# -- pure decisions -----------------------------------------------------------

@dataclass
class LoginState:
    failures: int = 0
    last_failure_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    locked_until: dt.datetime | None = None


def wait_for_login(state: LoginState, now: dt.datetime) -> tuple[float, bool]:
    """(seconds to wait, locked) before an attempt may be checked; (0, False) when it may."""
    if state.locked_until is not None and state.locked_until > now:
        return (state.locked_until - now).total_seconds(), True
    if state.next_attempt_at is not None and state.next_attempt_at > now:
        return (state.next_attempt_at - now).total_seconds(), False
    return 0.0, False


def after_failure(state: LoginState, policy: ThrottlePolicy, now: dt.datetime) -> bool:
    """Counts a failure into ``state``; True when it locks the login now."""
    window = dt.timedelta(seconds=policy.failure_window_seconds)
    expired_lock = state.locked_until is not None and state.locked_until <= now
    if expired_lock or state.last_failure_at is None or now - state.last_failure_at > window:
        state.failures = 0
        state.locked_until = None
    state.failures += 1
    state.last_failure_at = now
    delay = policy.delay_after(state.failures)
    state.next_attempt_at = now + dt.timedelta(seconds=delay) if delay else None
    if state.failures >= policy.lockout_after:
        state.locked_until = now + dt.timedelta(seconds=policy.lockout_seconds)
        state.next_attempt_at = None
        return True
    return False


@dataclass
class IpState:
    failures: int = 0
    window_started_at: dt.datetime | None = None
    blocked_until: dt.datetime | None = None


def wait_for_ip(state: IpState, now: dt.datetime) -> float:
    if state.blocked_until is not None and state.blocked_until > now:
        return (state.blocked_until - now).total_seconds()
    return 0.0


def after_ip_failure(state: IpState, policy: ThrottlePolicy, now: dt.datetime) -> None:
    window = dt.timedelta(seconds=policy.ip_window_seconds)
    if state.window_started_at is None or now - state.window_started_at > window:
        state.failures = 0
        state.window_started_at = now
        state.blocked_until = None
    state.failures += 1
    if state.failures >= policy.ip_max_failures:
        state.blocked_until = state.window_started_at + window


# -- storage --------------------------------------------------------------------

def login_key(login: str) -> str:
    return (login or "").strip().lower()[:200]


def _login_row(db: DbSession, tenant_key: str, login: str, now: dt.datetime, lock: bool) -> LoginThrottle:
    db.execute(insert(LoginThrottle).values(tenant_key=tenant_key, login=login, failures=0, updated_at=now)
               .on_conflict_do_nothing())
    query = sa.select(LoginThrottle).where(LoginThrottle.tenant_key == tenant_key, LoginThrottle.login == login)
    return db.scalars(query.with_for_update() if lock else query).one()


def _ip_row(db: DbSession, client_ip: str, now: dt.datetime) -> IpThrottle:
    db.execute(insert(IpThrottle).values(client_ip=client_ip, failures=0, window_started_at=now)
               .on_conflict_do_nothing())
    return db.scalars(sa.select(IpThrottle).where(IpThrottle.client_ip == client_ip).with_for_update()).one()


def check(db: DbSession, tenant_key: str, login: str, client_ip: str | None, now: dt.datetime) -> None:
    """Raises 429 ``too_many_attempts`` when this attempt must not be checked yet."""
    row = db.scalars(sa.select(LoginThrottle).where(LoginThrottle.tenant_key == tenant_key,
                                                    LoginThrottle.login == login)).first()
    if row is not None:
        wait, locked = wait_for_login(LoginState(row.failures, row.last_failure_at, row.next_attempt_at,
                                                 row.locked_until), now)
        if wait > 0:
            raise too_many_attempts(wait, locked)
    if client_ip:
        ip = db.scalars(sa.select(IpThrottle).where(IpThrottle.client_ip == client_ip)).first()
        if ip is not None:
            wait = wait_for_ip(IpState(ip.failures, ip.window_started_at, ip.blocked_until), now)
            if wait > 0:
                raise too_many_attempts(wait)


def record_failure(db: DbSession, tenant_key: str, login: str, client_ip: str | None, policy: ThrottlePolicy,
                   now: dt.datetime) -> LoginThrottle | None:
    """Counts a failed attempt; returns the login's row when this failure locked it."""
    row = _login_row(db, tenant_key, login, now, lock=True)
    state = LoginState(row.failures, row.last_failure_at, row.next_attempt_at, row.locked_until)
    locked = after_failure(state, policy, now)
    row.failures, row.last_failure_at = state.failures, state.last_failure_at
    row.next_attempt_at, row.locked_until, row.updated_at = state.next_attempt_at, state.locked_until, now
    if client_ip:
        ip = _ip_row(db, client_ip, now)
        ip_state = IpState(ip.failures, ip.window_started_at, ip.blocked_until)
        after_ip_failure(ip_state, policy, now)
        ip.failures, ip.blocked_until = ip_state.failures, ip_state.blocked_until
        ip.window_started_at = ip_state.window_started_at or now
    db.flush()
    return row if locked else None


def record_success(db: DbSession, tenant_key: str, login: str, user_id: str, now: dt.datetime) -> None:
    """Clears the login's failures and remembers which user it names (for lockout events)."""
    db.execute(insert(LoginThrottle).values(tenant_key=tenant_key, login=login, user_id=user_id, failures=0,
                                            updated_at=now)
               .on_conflict_do_update(index_elements=["tenant_key", "login"],
                                      set_={"user_id": user_id, "failures": 0, "last_failure_at": None,
                                            "next_attempt_at": None, "locked_until": None, "updated_at": now}))


def unlock(db: DbSession, tenant_id: str, login: str, user_id: str, now: dt.datetime) -> bool:
    """Clears a lock and the failure count; True when there was a lock or a slowdown to clear."""
    result = db.execute(sa.update(LoginThrottle).where(
        LoginThrottle.tenant_key == tenant_id,
        sa.or_(LoginThrottle.login == login, LoginThrottle.user_id == user_id),
        sa.or_(LoginThrottle.failures > 0, LoginThrottle.locked_until.is_not(None)))
        .values(failures=0, last_failure_at=None, next_attempt_at=None, locked_until=None, updated_at=now))
    return bool(getattr(result, "rowcount", 0))


def purge(db: DbSession, policy: ThrottlePolicy, now: dt.datetime) -> None:
    """Forgets stale rows: logins that never signed in (guesses) once their failures are long
    past, and old address windows. Rows of real logins stay (one per login that signed in)."""
    stale = now - max(STALE_AFTER, dt.timedelta(seconds=policy.failure_window_seconds + policy.lockout_seconds))
    db.execute(sa.delete(LoginThrottle).where(
        LoginThrottle.updated_at < stale, LoginThrottle.user_id.is_(None),
        sa.or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now)))
    db.execute(sa.delete(IpThrottle).where(
        IpThrottle.window_started_at < now - dt.timedelta(seconds=policy.ip_window_seconds),
        sa.or_(IpThrottle.blocked_until.is_(None), IpThrottle.blocked_until < now)))
