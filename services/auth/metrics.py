"""Domain metrics of the auth service."""
from __future__ import annotations

from typing import Any

from crm_shared.metrics import METRICS


def logins() -> Any:
    return METRICS.counter("crm_auth_logins_total", "Login attempts by outcome: success, invalid_credentials, "
                           "throttled, seats_exhausted, unavailable.", ("outcome",))


def lockouts() -> Any:
    return METRICS.counter("crm_auth_lockouts_total", "Logins locked after repeated failures.")


def refreshes() -> Any:
    return METRICS.counter("crm_auth_refreshes_total", "Refresh attempts by outcome (reused = a spent token "
                           "came back and its session was revoked).", ("outcome",))


def revocations() -> Any:
    return METRICS.counter("crm_auth_sessions_revoked_total", "Sessions revoked, by reason.", ("reason",))


def tenants_created() -> Any:
    return METRICS.counter("crm_auth_tenant_provisioning_total", "Tenant creation attempts by outcome.",
                           ("outcome",))


def platform_mail() -> Any:
    return METRICS.counter("crm_auth_platform_mail_total", "Platform e-mails (new instance credentials) by "
                           "outcome.", ("outcome",))


def storage() -> Any:
    return METRICS.counter("crm_auth_storage_reservations_total", "Storage reservations by outcome "
                           "(granted, quota_exceeded).", ("outcome",))
