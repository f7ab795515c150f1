"""Nameko entrypoints of the auth service. They stay thin: validate, call
the domain code, return plain data."""
from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.tenants import TenantCreate, TenantPatch
from crm_shared.errors import (
    CrmError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
    validation_failed,
)
from crm_shared.events import MalformedEvent, first_delivery, handle_event
from crm_shared.jobs import setting_job_timer
from crm_shared.rpc import ServiceRpc, rpc
from crm_shared.service import DatabaseServiceBase
from services.auth import ledger, product_codes, sessions, tenants, throttle
from services.auth import metrics as m
from services.auth.clock import utcnow
from services.auth.dependencies import AuthSettings, PlatformMailer
from services.auth.exceptions import invalid_credentials

log = logging.getLogger(__name__)

# verify_credentials is asked about this tenant for unknown product codes, so an
# unknown code costs the same work (an RPC and an argon2 check) as a wrong password
UNKNOWN_TENANT = "0" * 32
M = TypeVar("M", bound=BaseModel)
# domain errors are answers, not failures: logged as warnings, counted as expected_error
domain_rpc = rpc(expected_exceptions=(CrmError,))


def _validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def _caller(caller: Any) -> tuple[str, str]:
    if not isinstance(caller, dict) or not caller.get("tenant_id") or not caller.get("user_id"):
        raise Unauthenticated("no caller", code="unauthenticated")
    return str(caller["tenant_id"]), str(caller["user_id"])


class AuthService(DatabaseServiceBase):
    """Tenants (product code, tariff), credentials check, sessions, access/refresh tokens, login
    throttling and lockout, the per-tenant storage ledger."""

    name = "auth"

    users: Any = ServiceRpc("users")
    conf: Any = AuthSettings()
    mailer: Any = PlatformMailer()

    # -- keys and revocations (read by every gateway replica) ---------------------
    @domain_rpc
    def public_keys(self) -> dict[str, Any]:
        """The JWKS of every published signing key, with the issuer and audience to check."""
        return dict(self.conf.keys.jwks())

    @domain_rpc
    def revoked_sessions(self) -> list[dict[str, str]]:
        """Sessions revoked while one of their access tokens may still be valid."""
        return sessions.revoked_not_expired(self.db, utcnow())

    # -- tenants (operator) ----------------------------------------------------------
    @domain_rpc
    def create_tenant(self, request: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        body = _validated(TenantCreate, request)
        key = str(idempotency_key or "").strip()
        if not (1 <= len(key) <= 200) or not key.isprintable():
            raise ValidationFailed("Idempotency-Key must be 1-200 printable characters",
                                   fields={"Idempotency-Key": "1-200 printable characters"})
        now = utcnow()
        tenant = tenants.start_provisioning(self.db, body, key, now)  # committed: a retry finds it
        tenant = tenants.lock(self.db, tenant.tenant_id)
        tenants.ensure_replayable(tenant)
        code = product_codes.display(tenant.product_code)
        password = tenants.generate_admin_password()
        try:
            answer = self.users.bootstrap_tenant(tenant.tenant_id, tenant.company_name, password)
        except CrmError as exc:
            if not isinstance(exc, ServiceUnavailable):
                m.tenants_created().labels("rejected").inc()
                raise
            m.tenants_created().labels("incomplete").inc()
            raise self._incomplete(key, code, exc) from None
        except Exception as exc:  # the users service failed unexpectedly: still retryable
            m.tenants_created().labels("incomplete").inc()
            log.error("bootstrap_tenant failed: %r", exc)
            raise self._incomplete(key, code, exc) from None
        first = tenants.activate(tenant, str(answer["admin_user_id"]), now)
        # remember whom "admin" names, so a lockout before its first login still names the user
        throttle.record_success(self.db, tenant.tenant_id, "admin", str(answer["admin_user_id"]), now)
        self.outbox.record(self.db, "tenant_created" if first else "tenant_admin_password_reset",
                           {"tenant_id": tenant.tenant_id, "product_code": code,
                            "company_name": tenant.company_name, "admin_user_id": tenant.admin_user_id},
                           aggregate_id=tenant.tenant_id, tenant_id=tenant.tenant_id)
        self.db.commit()
        m.tenants_created().labels("created" if first else "replayed").inc()
        email = self.mailer.send_welcome(tenant.owner_email, tenant.company_name, code, password)
        return {"product_code": code, "tenant_id": tenant.tenant_id,
                "admin": {"login": "admin", "password": password}, "email": email}

    @staticmethod
    def _incomplete(key: str, code: str, cause: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(
            "the new instance is not set up yet (the users service did not finish); retry the same request "
            "with the same Idempotency-Key to complete it", code="tenant_provisioning_incomplete",
            details={"idempotency_key": key, "product_code": code})

    @domain_rpc
    def get_tenant(self, product_code: str) -> dict[str, Any]:
        tenant = tenants.get_by_code(self.db, product_code)
        return tenants.describe(self.db, tenant, utcnow())

    @domain_rpc
    def update_tenant(self, product_code: str, patch: dict[str, Any]) -> dict[str, Any]:
        body = _validated(TenantPatch, patch)
        now = utcnow()
        tenant = tenants.get_by_code(self.db, product_code, lock=True)
        tenants.update(tenant, body, now)
        self.outbox.record(self.db, "tenant_updated",
                           {"tenant_id": tenant.tenant_id,
                            "tariff": {"max_sessions": tenant.max_sessions, "disk_quota_mb": tenant.disk_quota_mb}},
                           aggregate_id=tenant.tenant_id, tenant_id=tenant.tenant_id)
        self.db.flush()
        return tenants.describe(self.db, tenant, now)

    # -- login, refresh, logout ------------------------------------------------------------
    @domain_rpc
    def login(self, product_code: str, login: str, password: str, client_ip: str | None = None,
              user_agent: str | None = None) -> dict[str, Any]:
        if not all(isinstance(v, str) for v in (product_code, login, password)):
            raise invalid_credentials()
        now = utcnow()
        tenant = tenants.find_by_code(self.db, product_code)
        if tenant is not None and tenant.status != "active":
            tenant = None
        tenant_key = tenant.tenant_id if tenant else "?" + "".join(product_code.split()).upper()[:62]
        key = throttle.login_key(login)
        try:
            throttle.check(self.db, tenant_key, key, client_ip, now)
        except CrmError:
            m.logins().labels("throttled").inc()
            raise
        try:
            who = self.users.verify_credentials(tenant.tenant_id if tenant else UNKNOWN_TENANT, login, password)
            if tenant is None:
                raise invalid_credentials()
        except (Unauthenticated, NotFound):
            self._failed_login(tenant, tenant_key, key, client_ip, now)
            self.db.commit()
            m.logins().labels("invalid_credentials").inc()
            raise invalid_credentials() from None
        except ServiceUnavailable:
            m.logins().labels("unavailable").inc()
            raise
        user_id = str(who["user_id"])
        throttle.record_success(self.db, tenant.tenant_id, key, user_id, now)
        self.db.commit()
        locked = tenants.lock(self.db, tenant.tenant_id)
        try:
            tokens = sessions.open_session(self.db, self.conf.keys, locked, user_id, self.conf.sessions, now,
                                           client_ip, user_agent)
        except Forbidden:
            m.logins().labels("seats_exhausted").inc()
            raise
        if locked.first_login_at is None:
            locked.first_login_at = now
        m.logins().labels("success").inc()
        self.context.set(tenant_id=tenant.tenant_id, user_id=user_id)
        return {**tokens, "user": {"id": user_id, "login": who.get("login", login),
                                   "full_name": who.get("full_name")},
                "tenant": {"tenant_id": tenant.tenant_id, "product_code": product_codes.display(tenant.product_code)}}

    def _failed_login(self, tenant: Any, tenant_key: str, key: str, client_ip: str | None, now: Any) -> None:
        locked_row = throttle.record_failure(self.db, tenant_key, key, client_ip, self.conf.throttle, now)
        if locked_row is None:
            return
        m.lockouts().inc()
        if tenant is not None:
            until = locked_row.locked_until.isoformat() if locked_row.locked_until else None
            self.outbox.record(self.db, "user_locked_out",
                               {"tenant_id": tenant.tenant_id, "user_id": locked_row.user_id, "login": key,
                                "client_ip": client_ip, "until": until},
                               aggregate_id=f"{tenant.tenant_id}:{key}", tenant_id=tenant.tenant_id)

    @domain_rpc
    def refresh(self, refresh_token: str) -> dict[str, Any]:
        now = utcnow()
        outcome = sessions.refresh(self.db, self.conf.keys, refresh_token, self.conf.sessions, now)
        if outcome.revoked is not None:
            self._record_revoked([outcome.revoked], "refresh_token_reuse")
            self.db.commit()
            m.refreshes().labels("reused").inc()
        if outcome.error is not None:
            if outcome.revoked is None:
                m.refreshes().labels("refused").inc()
            raise outcome.error
        m.refreshes().labels("success").inc()
        assert outcome.tokens is not None
        return outcome.tokens

    @domain_rpc
    def logout(self, caller: dict[str, Any], session_id: str) -> dict[str, Any]:
        tenant_id, user_id = _caller(caller)
        row = sessions.revoke(self.db, tenant_id, str(session_id), "logout", utcnow(), user_id=user_id)
        if row is None:
            return {"session_id": session_id, "expires_at": None}
        self._record_revoked([row], "logout")
        return {"session_id": row.session_id, "expires_at": row.access_expires_at.isoformat()}

    def _record_revoked(self, rows: list[Any], reason: str) -> None:
        for row in rows:
            self.outbox.record(self.db, "session_revoked", sessions.revoked_event(row),
                               aggregate_id=f"{row.tenant_id}:{row.session_id}", tenant_id=row.tenant_id)
        if rows:
            m.revocations().labels(reason).inc(len(rows))

    @domain_rpc
    def unlock_user(self, caller: dict[str, Any], user_id: str) -> dict[str, Any]:
        """Clears a lockout (needs ``users.manage``). Another tenant's user is not found."""
        tenant_id, caller_id = _caller(caller)
        me = self.users.get_principal(tenant_id, caller_id)
        if (me.get("rights") or {}).get("users.manage") != "all" or not me.get("active", True):
            raise Forbidden("unlocking a user needs the users.manage right", code="forbidden")
        target = self.users.get_principal(tenant_id, str(user_id))
        now = utcnow()
        unlocked = throttle.unlock(self.db, tenant_id, throttle.login_key(target["login"]), str(user_id), now)
        self.outbox.record(self.db, "user_unlocked", {"tenant_id": tenant_id, "user_id": str(user_id),
                                                      "login": target["login"], "by_user_id": caller_id,
                                                      "was_locked": unlocked},
                           aggregate_id=f"{tenant_id}:{throttle.login_key(target['login'])}", tenant_id=tenant_id)
        return {"user_id": str(user_id), "unlocked": unlocked}

    # -- the users service ends sessions ----------------------------------------------------
    def _end_user_sessions(self, event: dict[str, Any], reason: str) -> None:
        if not first_delivery(self.db, event, f"auth.{reason}"):
            return
        data = event.get("data") or {}
        tenant_id = data.get("tenant_id") or event.get("tenant_id")
        user_id = data.get("user_id")
        if not tenant_id or not user_id:
            raise MalformedEvent(f"{reason} event without tenant_id/user_id")
        rows = sessions.revoke_user(self.db, str(tenant_id), str(user_id), reason, utcnow())
        self._record_revoked(rows, reason)

    @handle_event("users", "user_deactivated")
    def on_user_deactivated(self, event: dict[str, Any]) -> None:
        self._end_user_sessions(event, "user_deactivated")

    @handle_event("users", "user_deleted")
    def on_user_deleted(self, event: dict[str, Any]) -> None:
        self._end_user_sessions(event, "user_deleted")

    @handle_event("users", "user_password_changed")
    def on_user_password_changed(self, event: dict[str, Any]) -> None:
        self._end_user_sessions(event, "user_password_changed")

    # -- the storage ledger -------------------------------------------------------------------
    @domain_rpc
    def reserve_storage(self, tenant_id: str, nbytes: int, purpose: str) -> str:
        try:
            rid = ledger.reserve(self.db, str(tenant_id), nbytes, str(purpose or ""),
                                 self.conf.reservation_ttl_seconds, utcnow())
        except CrmError as exc:
            if exc.code == "quota_exceeded":
                m.storage().labels("quota_exceeded").inc()
            raise
        m.storage().labels("granted").inc()
        return rid

    @domain_rpc
    def commit_storage(self, reservation_id: str, actual_bytes: int) -> dict[str, Any]:
        return ledger.commit(self.db, str(reservation_id), actual_bytes, utcnow())

    @domain_rpc
    def release_storage(self, reservation_id: str) -> dict[str, Any]:
        return ledger.release(self.db, str(reservation_id), utcnow())

    @domain_rpc
    def release_stored(self, tenant_id: str, nbytes: int, ref: str | None = None) -> dict[str, Any]:
        return ledger.release_stored(self.db, str(tenant_id), nbytes, utcnow(), ref)

    @domain_rpc
    def storage_usage(self, tenant_id: str) -> dict[str, int]:
        return ledger.usage(self.db, str(tenant_id), utcnow())

    # -- housekeeping --------------------------------------------------------------------------
    @setting_job_timer("AUTH_HOUSEKEEPING_SECONDS")
    def housekeeping(self) -> None:
        now = utcnow()
        sessions.end_idle(self.db, now)
        sessions.purge(self.db, now)
        throttle.purge(self.db, self.conf.throttle, now)
        ledger.purge(self.db, now)


SERVICE = AuthService
