"""Domain metrics of the telephony service.

The engine workers are processes of their own without a metrics port: they
report each call's end and each INVITE-to-visible time on a pipe to the
service that started them (``EngineWorkers``), which counts them here. The
registration gauges are read from the database (the whole cluster's
accounts; every replica shows the same value, so rules take ``max``)."""
from __future__ import annotations

from typing import Any

from crm_shared.metrics import METRICS


def registrations() -> Any:
    return METRICS.gauge("crm_telephony_registrations", "Active SIP accounts by registration state (off, "
                         "registering, registered, failed), all tenants.", ("state",))


def accounts_unheld() -> Any:
    return METRICS.gauge("crm_telephony_accounts_unheld", "Active SIP accounts no engine worker holds (their "
                         "lease ran out and no worker had a free slot), all tenants.")


def checks() -> Any:
    return METRICS.counter("crm_telephony_checks_total", "Credential checks by result (ok, wrong_credentials, "
                           "unknown_user, timeout, dns, refused, error).", ("result",))


def calls() -> Any:
    return METRICS.counter("crm_telephony_calls_total", "Calls ended, by source (sip, mango), direction and "
                           "outcome (missed, answered_elsewhere, answered, transferred, no_answer, "
                           "transfer_failed, failed, engine_lost).", ("source", "direction", "outcome"))


def invite_visible() -> Any:
    return METRICS.histogram("crm_telephony_invite_visible_seconds", "From an incoming INVITE reaching the engine "
                             "to the call being visible in the active list (committed).",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def engine_restarts() -> Any:
    return METRICS.counter("crm_telephony_engine_restarts_total", "Engine worker processes that ended and were "
                           "started again.")


def mango_webhooks() -> Any:
    return METRICS.counter("crm_telephony_mango_webhooks_total", "Mango Office webhooks by kind (call, summary) "
                           "and result (ok, bad_signature, replayed, stale, malformed, unknown_key).",
                           ("kind", "result"))


def report(kind: str, labels: dict[str, str], value: float = 1.0) -> None:
    """One line an engine worker reported."""
    if kind == "call":
        calls().labels(labels.get("source", "sip"), labels.get("direction", ""), labels.get("outcome", "")).inc()
    elif kind == "visible":
        invite_visible().observe(value)
    elif kind == "restart":
        engine_restarts().inc()
