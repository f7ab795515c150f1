"""Domain metrics of the onec service."""
from __future__ import annotations

from typing import Any

from crm_shared.metrics import METRICS


def jobs() -> Any:
    return METRICS.counter("crm_onec_jobs_total", "Jobs finished, by kind (csv_import, csv_revert, "
                           "exchange_import, exchange_export) and outcome: "
                           "done, expected_error (refused: rights, bad file) or error.", ("kind", "outcome"))


def import_rows() -> Any:
    return METRICS.counter("crm_onec_import_rows_total", "CSV rows imported, by entity and outcome (created, "
                           "updated, skipped, rejected).", ("entity", "outcome"))


def export_rows() -> Any:
    return METRICS.counter("crm_onec_export_rows_total", "CSV rows exported, by entity.", ("entity",))


def batch_duration() -> Any:
    return METRICS.histogram("crm_onec_import_batch_seconds", "Time of one import batch's round trip to the crm "
                             "service.", ("entity",))


def open_jobs() -> Any:
    return METRICS.gauge("crm_onec_open_jobs", "CSV and exchange jobs queued, running or reverting "
                         "(all tenants).")


def oldest_open_job() -> Any:
    return METRICS.gauge("crm_onec_oldest_open_job_seconds", "Age of the oldest import job not finished "
                         "(0 when there is none).")


def exchange_objects() -> Any:
    return METRICS.counter("crm_onec_exchange_objects_total", "1C exchange objects, by version, kind (counterparty, "
                           "product, offer, payment, unit…) and outcome (created, updated, skipped, rejected; "
                           "exported).", ("version", "kind", "outcome"))


def exchange_duration() -> Any:
    return METRICS.histogram("crm_onec_exchange_job_seconds", "Duration of a 1C exchange job's run, by version "
                             "and direction (import, export).", ("version", "direction"),
                             buckets=(0.5, 1, 5, 15, 60, 300, 900, 1800, 3600))
