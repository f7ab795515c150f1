"""Domain metrics of the mail service."""
from __future__ import annotations

from typing import Any

from crm_shared.metrics import METRICS


def polls() -> Any:
    return METRICS.counter("crm_mail_polls_total", "Account polls finished, by outcome (ok, error, "
                           "quota_exceeded) and trigger (schedule, user, idle).", ("outcome", "trigger"))


def poll_failures() -> Any:
    return METRICS.counter("crm_mail_poll_failures_total", "Failed polls by reason (dns, refused, timeout, tls, "
                           "auth, plaintext_refused, protocol, quota_exceeded, error).", ("reason",))


def ingested() -> Any:
    return METRICS.counter("crm_mail_messages_ingested_total", "Messages stored (once per tenant), by direction.",
                           ("direction",))


def poll_duration() -> Any:
    return METRICS.histogram("crm_mail_poll_seconds", "Time of one account poll (all its folders).",
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))


def accounts_behind() -> Any:
    return METRICS.gauge("crm_mail_accounts_behind", "Active accounts whose last poll left messages unfetched or "
                         "that are overdue by more than one poll period (all tenants).")


def reconcile_missing() -> Any:
    return METRICS.counter("crm_mail_reconcile_missing_total", "Messages a reconciliation found on the server but "
                           "not stored, and fetched.")


def checks() -> Any:
    return METRICS.counter("crm_mail_checks_total", "Account checks by side (imap, smtp) and result (ok or the "
                           "failure reason).", ("side", "result"))


def sent() -> Any:
    return METRICS.counter("crm_mail_sent_total", "Messages sent, by outcome (ok or the failure reason).",
                           ("outcome",))


def idle_connections() -> Any:
    return METRICS.gauge("crm_mail_idle_connections", "IMAP IDLE connections this replica holds.")
