"""Tenants: creation (provisioning), the tariff and its usage.

Creating an instance spans two services: auth stores the tenant (product
code, tariff), users creates the default instance (organisation,
department, position, the "Администратор" role and the ``admin`` user).
The tenant row is written first with status ``provisioning``; it turns
``active`` only after ``users.bootstrap_tenant`` succeeded. A provisioning
tenant cannot be logged into and holds no seats.

Retrying: a client identifies a creation with an ``Idempotency-Key``
header (the gateway makes one up when absent and names it in the error).
The same key with the same body finds the same tenant and finishes it:
``bootstrap_tenant`` is idempotent and (re)sets the admin password, so
each completing call generates a fresh password and answers it. Because
the password is stored nowhere in plain text, a replay after success is
answered the same way (a new password, the old one stops working) as long
as nobody has signed in to the instance yet; after the first login a
replay answers 409 ``tenant_exists`` naming the product code. The same
key with a different body is a 409 ``idempotency_key_reused``.

Concurrent retries of one key serialize on the tenant row lock, held
across the bootstrap call."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session as DbSession

from contracts.tenants import TenantCreate, TenantPatch
from services.auth import ledger, product_codes, sessions
from services.auth.exceptions import Conflict, tenant_not_found
from services.auth.models import StorageLedger, Tenant

# for generated passwords: letters and digits a person can copy without doubt
_LOWER = "abcdefghijkmnpqrstuvwxyz"
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DIGITS = "23456789"
PASSWORD_LENGTH = 16


def generate_admin_password(length: int = PASSWORD_LENGTH) -> str:
    """≥ 10 characters with digits, upper- and lower-case letters (the password policy); ~93 bits."""
    alphabet = _LOWER + _UPPER + _DIGITS
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c in _LOWER for c in password) and any(c in _UPPER for c in password)
                and any(c in _DIGITS for c in password)):
            return password


def fingerprint(request: TenantCreate) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_by_code(db: DbSession, code_text: str, lock: bool = False) -> Tenant | None:
    try:
        code = product_codes.normalize(code_text)
    except product_codes.InvalidProductCode:
        return None
    query = sa.select(Tenant).where(Tenant.product_code == code)
    return db.scalars(query.with_for_update() if lock else query).first()


def get_by_code(db: DbSession, code_text: str, lock: bool = False) -> Tenant:
    tenant = find_by_code(db, code_text, lock)
    if tenant is None:
        raise tenant_not_found()
    return tenant


def start_provisioning(db: DbSession, request: TenantCreate, idempotency_key: str, now: dt.datetime) -> Tenant:
    """The tenant row of this creation (made now, or found by its key). Commits,
    so the row survives a failing bootstrap and a retry finds it."""
    digest = fingerprint(request)
    for _ in range(5):
        existing = db.scalars(sa.select(Tenant).where(Tenant.idempotency_key == idempotency_key)).first()
        if existing is not None:
            if existing.request_fingerprint != digest:
                raise Conflict("this Idempotency-Key was used for a different request",
                               code="idempotency_key_reused")
            return existing
        tenant_id = uuid.uuid4().hex
        inserted = db.execute(insert(Tenant).values(
            tenant_id=tenant_id, product_code=product_codes.generate(), status="provisioning",
            company_name=request.company_name, owner_email=request.owner_email,
            max_sessions=request.tariff.max_sessions, disk_quota_mb=request.tariff.disk_quota_mb,
            idempotency_key=idempotency_key, request_fingerprint=digest, created_at=now, updated_at=now,
        ).on_conflict_do_nothing().returning(Tenant.tenant_id)).first()
        if inserted is not None:
            db.execute(insert(StorageLedger).values(tenant_id=tenant_id, used_bytes=0, updated_at=now)
                       .on_conflict_do_nothing())
            db.commit()
            return db.scalars(sa.select(Tenant).where(Tenant.tenant_id == tenant_id)).one()
        db.rollback()  # another request took the key (found next round) or, rarely, the product code
    raise Conflict("could not allocate a product code, retry", code="product_code_collision")


def lock(db: DbSession, tenant_id: str) -> Tenant:
    return db.scalars(sa.select(Tenant).where(Tenant.tenant_id == tenant_id).with_for_update()).one()


def ensure_replayable(tenant: Tenant) -> None:
    if tenant.status == "active" and tenant.first_login_at is not None:
        raise Conflict("this instance was created already and is in use; its admin sets passwords now",
                       code="tenant_exists", details={"product_code": product_codes.display(tenant.product_code)})


def activate(tenant: Tenant, admin_user_id: str, now: dt.datetime) -> bool:
    """Marks the tenant active; True the first time."""
    first = tenant.status != "active"
    tenant.status = "active"
    tenant.admin_user_id = admin_user_id
    tenant.activated_at = tenant.activated_at or now
    tenant.updated_at = now
    return first


def describe(db: DbSession, tenant: Tenant, now: dt.datetime) -> dict[str, Any]:
    usage = ledger.usage(db, tenant.tenant_id, now)
    return {
        "product_code": product_codes.display(tenant.product_code),
        "tenant_id": tenant.tenant_id,
        "status": tenant.status,
        "company_name": tenant.company_name,
        "owner_email": tenant.owner_email,
        "tariff": {"max_sessions": tenant.max_sessions, "disk_quota_mb": tenant.disk_quota_mb},
        "usage": {
            "active_sessions": sessions.seats_in_use(db, tenant.tenant_id, now),
            "live_sessions": sessions.live_sessions(db, tenant.tenant_id, now),
            **usage,
        },
        "created_at": tenant.created_at.isoformat(),
        "activated_at": tenant.activated_at.isoformat() if tenant.activated_at else None,
    }


def update(tenant: Tenant, patch: TenantPatch, now: dt.datetime) -> None:
    """Changes the tariff (and contact data). Lowering ``max_sessions`` below the seats
    in use ends no session: new users wait until enough leave. Lowering the quota below
    what is stored deletes nothing: new reservations fail until usage drops."""
    if patch.company_name is not None:
        tenant.company_name = patch.company_name
    if patch.owner_email is not None:
        tenant.owner_email = patch.owner_email
    if patch.tariff is not None:
        if patch.tariff.max_sessions is not None:
            tenant.max_sessions = patch.tariff.max_sessions
        if patch.tariff.disk_quota_mb is not None:
            tenant.disk_quota_mb = patch.tariff.disk_quota_mb
    tenant.updated_at = now
