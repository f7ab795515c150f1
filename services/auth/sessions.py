"""Sessions, seats and token issue.

A session is live while it is not revoked, its idle deadline has not passed
and its absolute lifetime has not ended. Activity is counted when the
client refreshes: every refresh moves the idle deadline to now + idle
timeout. The access token lives well under the idle timeout (at most half,
enforced by the settings), so a client in use refreshes within it, while a
client left alone past the idle timeout finds its refresh token refused and
its seat already free. The gateway never calls auth per request.

Seats: the tariff's ``max_sessions`` caps the number of distinct users with
a live session. A user who already has one takes no new seat with another
login (a second device). Logins of one tenant serialize on its tenant row
(``SELECT … FOR UPDATE``) so concurrent logins cannot overfill the seats.

Refresh tokens rotate: each refresh spends the presented token and issues a
new one. Presenting a spent token again means it was copied: the whole
session is revoked (the legitimate client then logs in again)."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from services.auth.exceptions import invalid_refresh_token, seats_exhausted
from services.auth.models import RefreshTokenRow, Session, Tenant
from services.auth.tokens import SigningKeys, new_refresh_token, parse_refresh_token

REVOKED_KEEP = dt.timedelta(days=1)  # revoked/expired sessions are kept this long, then purged


@dataclass(frozen=True)
class SessionPolicy:
    access_ttl_seconds: int = 300
    idle_timeout_seconds: int = 1800
    max_lifetime_seconds: int = 43200

    @classmethod
    def from_settings(cls, s: Any) -> "SessionPolicy":
        """From the auth service's validated ``Settings``."""
        return cls(s.AUTH_ACCESS_TOKEN_TTL_SECONDS, s.AUTH_SESSION_IDLE_TIMEOUT_SECONDS,
                   s.AUTH_SESSION_MAX_LIFETIME_SECONDS)


def live(now: dt.datetime) -> Any:
    return sa.and_(Session.revoked_at.is_(None), Session.idle_expires_at > now, Session.expires_at > now)


def seats_in_use(db: DbSession, tenant_id: str, now: dt.datetime) -> int:
    return int(db.scalar(sa.select(sa.func.count(sa.distinct(Session.user_id)))
                         .where(Session.tenant_id == tenant_id, live(now))) or 0)


def live_sessions(db: DbSession, tenant_id: str, now: dt.datetime) -> int:
    return int(db.scalar(sa.select(sa.func.count()).select_from(Session)
                         .where(Session.tenant_id == tenant_id, live(now))) or 0)


def has_live_session(db: DbSession, tenant_id: str, user_id: str, now: dt.datetime) -> bool:
    return db.scalar(sa.select(sa.literal(1)).where(
        sa.exists().where(Session.tenant_id == tenant_id, Session.user_id == user_id, live(now)))) is not None


def _issue(db: DbSession, keys: SigningKeys, row: Session, policy: SessionPolicy, now: dt.datetime) -> dict[str, Any]:
    """New access + refresh token for ``row``; moves its idle deadline."""
    # milliseconds: a gateway refuses a user's tokens issued before their sessions were ended
    # (deactivation, password change), and a login right after must not fall in that second
    issued_at = round(now.timestamp(), 3)
    # an access token never outlives its session
    ttl = max(1, min(policy.access_ttl_seconds, int((row.expires_at - now).total_seconds())))
    access = keys.sign_access_token(tenant_id=row.tenant_id, user_id=row.user_id, session_id=row.session_id,
                                    issued_at=issued_at, ttl_seconds=ttl)
    refresh = new_refresh_token(row.tenant_id, row.session_id)
    db.add(RefreshTokenRow(tenant_id=row.tenant_id, session_id=row.session_id, token_hash=refresh.digest,
                           created_at=now))
    row.last_seen_at = now
    row.idle_expires_at = min(now + dt.timedelta(seconds=policy.idle_timeout_seconds), row.expires_at)
    access_expires = dt.datetime.fromtimestamp(int(issued_at) + ttl, dt.timezone.utc)
    row.access_expires_at = max(row.access_expires_at or access_expires, access_expires)
    return {
        "access_token": access,
        "refresh_token": str(refresh),
        "token_type": "bearer",
        "expires_in": ttl,
        "refresh_expires_in": int((row.idle_expires_at - now).total_seconds()),
        "session_id": row.session_id,
    }


def open_session(db: DbSession, keys: SigningKeys, tenant: Tenant, user_id: str, policy: SessionPolicy,
                 now: dt.datetime, client_ip: str | None = None, user_agent: str | None = None) -> dict[str, Any]:
    """Creates a session and its first tokens. ``tenant`` must be locked by the caller
    (``FOR UPDATE``) so the seat count cannot change underneath."""
    if not has_live_session(db, tenant.tenant_id, user_id, now):
        if seats_in_use(db, tenant.tenant_id, now) >= tenant.max_sessions:
            raise seats_exhausted(tenant.max_sessions)
    row = Session(tenant_id=tenant.tenant_id, session_id=uuid.uuid4().hex, user_id=user_id, created_at=now,
                  last_seen_at=now, idle_expires_at=now,
                  expires_at=now + dt.timedelta(seconds=policy.max_lifetime_seconds),
                  access_expires_at=now, client_ip=(client_ip or None) and client_ip[:64],
                  user_agent=(user_agent or None) and user_agent[:300])
    db.add(row)
    tokens = _issue(db, keys, row, policy, now)
    db.flush()
    return tokens


@dataclass
class RefreshOutcome:
    tokens: dict[str, Any] | None = None
    revoked: Session | None = None  # set when reuse revoked the session
    error: Exception | None = None


def refresh(db: DbSession, keys: SigningKeys, token_text: str, policy: SessionPolicy,
            now: dt.datetime) -> RefreshOutcome:
    """Rotates a refresh token. On reuse of a spent token the session is revoked
    (returned in ``revoked``; the caller records the event, commits, then raises ``error``)."""
    parsed = parse_refresh_token(token_text)
    if parsed is None:
        return RefreshOutcome(error=invalid_refresh_token())
    row = db.scalars(sa.select(Session).where(Session.tenant_id == parsed.tenant_id,
                                              Session.session_id == parsed.session_id)
                     .with_for_update()).first()
    if row is None:
        return RefreshOutcome(error=invalid_refresh_token())
    stored = db.scalars(sa.select(RefreshTokenRow).where(
        RefreshTokenRow.tenant_id == parsed.tenant_id, RefreshTokenRow.session_id == parsed.session_id,
        RefreshTokenRow.token_hash == parsed.digest)).first()
    if stored is None:
        return RefreshOutcome(error=invalid_refresh_token())
    if row.revoked_at is not None and row.revoke_reason != "expired":
        return RefreshOutcome(error=invalid_refresh_token("the session has ended: log in again", "session_ended"))
    if stored.spent_at is not None:
        revoke_row(row, "refresh_token_reuse", now)
        return RefreshOutcome(revoked=row, error=invalid_refresh_token(
            "this refresh token was already used: the session is ended for safety, log in again",
            "refresh_token_reused"))
    if row.revoked_at is not None or row.idle_expires_at <= now or row.expires_at <= now:
        return RefreshOutcome(error=invalid_refresh_token("the session has expired: log in again", "session_expired"))
    stored.spent_at = now
    tokens = _issue(db, keys, row, policy, now)
    db.flush()
    return RefreshOutcome(tokens=tokens)


def revoke_row(row: Session, reason: str, now: dt.datetime) -> None:
    row.revoked_at = now
    row.revoke_reason = reason[:40]


def revoke(db: DbSession, tenant_id: str, session_id: str, reason: str, now: dt.datetime,
           user_id: str | None = None) -> Session | None:
    """Revokes one session (None when unknown or already revoked)."""
    query = sa.select(Session).where(Session.tenant_id == tenant_id, Session.session_id == session_id,
                                     Session.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(Session.user_id == user_id)
    row = db.scalars(query.with_for_update()).first()
    if row is None:
        return None
    revoke_row(row, reason, now)
    db.flush()
    return row


def revoke_user(db: DbSession, tenant_id: str, user_id: str, reason: str, now: dt.datetime) -> list[Session]:
    """Revokes every session of a user that is not revoked yet (expired ones too:
    their last access token may still be valid for a moment)."""
    rows = list(db.scalars(sa.select(Session).where(
        Session.tenant_id == tenant_id, Session.user_id == user_id, Session.revoked_at.is_(None),
        Session.access_expires_at > now - dt.timedelta(seconds=5)).with_for_update()))
    for row in rows:
        revoke_row(row, reason, now)
    # sessions whose tokens have all expired just end, with nothing to broadcast
    db.execute(sa.update(Session).where(Session.tenant_id == tenant_id, Session.user_id == user_id,
                                        Session.revoked_at.is_(None))
               .values(revoked_at=now, revoke_reason=reason[:40]))
    db.flush()
    return rows


def revoked_event(row: Session) -> dict[str, Any]:
    return {"tenant_id": row.tenant_id, "session_id": row.session_id, "user_id": row.user_id,
            "expires_at": row.access_expires_at.isoformat()}


def revoked_not_expired(db: DbSession, now: dt.datetime) -> list[dict[str, str]]:
    """Sessions revoked while an access token of theirs may still be valid (for a gateway starting up)."""
    rows = db.execute(sa.select(Session.tenant_id, Session.session_id, Session.access_expires_at)
                      .where(Session.revoked_at.is_not(None), Session.access_expires_at > now)).all()
    return [{"tenant_id": r.tenant_id, "session_id": r.session_id, "expires_at": r.access_expires_at.isoformat()}
            for r in rows]


def purge(db: DbSession, now: dt.datetime) -> int:
    """Deletes sessions (and their refresh tokens) that ended more than a day ago."""
    cutoff = now - REVOKED_KEEP
    ended = sa.select(Session.tenant_id, Session.session_id).where(
        sa.or_(Session.revoked_at < cutoff, Session.expires_at < cutoff, Session.idle_expires_at < cutoff),
        Session.access_expires_at < cutoff)
    db.execute(sa.delete(RefreshTokenRow).where(
        sa.tuple_(RefreshTokenRow.tenant_id, RefreshTokenRow.session_id).in_(ended)))
    result = db.execute(sa.delete(Session).where(sa.tuple_(Session.tenant_id, Session.session_id).in_(ended)))
    return int(getattr(result, "rowcount", 0) or 0)


def end_idle(db: DbSession, now: dt.datetime) -> int:
    """Marks idle or outlived sessions as ended (their seats were free already;
    this keeps ``revoked_at`` meaningful for reports)."""
    result = db.execute(sa.update(Session).where(
        Session.revoked_at.is_(None), sa.or_(Session.idle_expires_at <= now, Session.expires_at <= now))
        .values(revoked_at=now, revoke_reason="expired"))
    return int(getattr(result, "rowcount", 0) or 0)
