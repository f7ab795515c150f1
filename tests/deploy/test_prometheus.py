"""Prometheus config, alert rules and the Grafana dashboard: promtool checks, rule
unit tests, and the metric naming conventions (units in names, _total counters,
bounded labels)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PROM = "deploy/prometheus"
DASHBOARD = "deploy/grafana/dashboards/crm-suite.json"

# Metrics the suite exports today, and those later issues add (alerts exist already).
COUNTERS = {
    "crm_entrypoint_calls_total", "crm_http_requests_total", "crm_outbox_published_total",
    "crm_outbox_publish_failures_total", "crm_events_retried_total", "crm_events_parked_total",
    "crm_events_duplicates_total", "crm_rpc_client_timeouts_total", "crm_onec_jobs_total",
    "crm_onec_import_rows_total", "crm_onec_export_rows_total", "crm_onec_exchange_objects_total",
    "crm_mail_polls_total", "crm_mail_poll_failures_total", "crm_mail_messages_ingested_total",
    "crm_mail_reconcile_missing_total", "crm_mail_checks_total", "crm_mail_sent_total",
    "crm_telephony_checks_total", "crm_telephony_calls_total", "crm_telephony_engine_restarts_total",
    "crm_telephony_mango_webhooks_total",
}
HISTOGRAMS = {"crm_entrypoint_duration_seconds", "crm_http_request_duration_seconds", "crm_onec_import_batch_seconds",
              "crm_onec_exchange_job_seconds", "crm_mail_poll_seconds", "crm_telephony_invite_visible_seconds"}
GAUGES = {
    "crm_outbox_pending_events", "crm_onec_open_jobs", "crm_onec_oldest_open_job_seconds",
    "crm_mail_accounts_behind", "crm_mail_idle_connections", "crm_telephony_registrations",
    "crm_telephony_accounts_unheld",
    # planned
    "crm_tenants_near_disk_quota", "crm_tenants_near_seat_limit",
}
# Exported by other components the rules may use.
FOREIGN = re.compile(r"^(up|ALERTS|kube_[a-z_]+)$")
UNBOUNDED_LABELS = {"tenant_id", "tenant", "user_id", "user", "session_id", "email", "login", "product_code"}
SEVERITIES = {"critical", "warning", "info"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "rate", "irate", "increase",
    "delta", "absent", "histogram_quantile", "vector", "max_over_time", "min_over_time", "avg_over_time",
    "label_values", "le", "inf",
}


def alert_rules(dt: Any) -> list[dict[str, Any]]:
    groups = yaml.safe_load((dt.ROOT / PROM / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs(dt: Any) -> list[str]:
    dash = json.loads((dt.ROOT / DASHBOARD).read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """Identifiers used as metric names: not PromQL keywords/functions, not label names inside {} or ()."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_matchers)
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_groupings)
    # (?<![\w.]) skips the unit of a duration (30m) and the parts of a number
    names = set(re.findall(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", without_ranges))
    return {n for n in names if n.lower() not in PROMQL_WORDS and not n.startswith("$") and not n.isdigit()}


def grouping_labels(expr: str) -> set[str]:
    labels = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    return labels


def test_promtool_check_rules(dt: Any) -> None:
    result = dt.run([dt.promtool(), "check", "rules", f"{PROM}/alerts.yml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests(dt: Any) -> None:
    result = dt.run([dt.promtool(), "test", "rules", "alerts.test.yml"], cwd=dt.ROOT / PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_compose_config(dt: Any) -> None:
    result = dt.run([dt.promtool(), "check", "config", f"{PROM}/prometheus.yml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheusrule_is_generated_from_alerts(dt: Any) -> None:
    result = dt.run([sys.executable, "deploy/prometheus/render_prometheusrule.py", "--check"])
    assert result.returncode == 0, result.stderr


def test_every_alert_has_severity_summary_and_a_runbook_section(dt: Any) -> None:
    docs = (dt.ROOT / "docs/operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", docs, flags=re.M)}
    rules = alert_rules(dt)
    assert len({r["alert"] for r in rules}) == len(rules), "alert names are unique"
    for rule in rules:
        assert re.fullmatch(r"Crm[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        runbook = rule["annotations"]["runbook"]
        assert runbook == f"docs/operations.md#{rule['alert'].lower()}", runbook
        assert runbook.split("#", 1)[1] in anchors, f"{rule['alert']}: no section for {runbook}"
    # each area the suite must alert on has at least one rule
    exprs = " ".join(r["expr"] for r in rules)
    for metric in ("up", "kube_deployment_status_replicas_available", "crm_entrypoint_calls_total",
                   "crm_entrypoint_duration_seconds_bucket", "crm_events_parked_total", "crm_outbox_pending_events",
                   "crm_mail_poll_failures_total", "crm_telephony_registrations",
                   "crm_telephony_invite_visible_seconds_bucket", "crm_onec_jobs_total",
                   "crm_tenants_near_disk_quota", "crm_tenants_near_seat_limit", "crm_rpc_client_timeouts_total"):
        assert re.search(rf"\b{metric}\b", exprs), metric


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_metric_naming_conventions(dt: Any, source: str) -> None:
    exprs = [r["expr"] for r in alert_rules(dt)] if source == "alerts" else dashboard_exprs(dt)
    known = COUNTERS | GAUGES | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "count", "sum")}
    for metric in COUNTERS:
        assert metric.endswith("_total")
    for metric in HISTOGRAMS:
        assert metric.endswith("_seconds"), "durations carry their unit"
    for expr in exprs:
        for name in metric_names(expr):
            if FOREIGN.match(name):
                continue
            assert name in known, f"unknown metric {name!r} in {expr!r}"
        # counters only under rate()/increase(), never compared raw
        for counter in re.findall(r"\b(crm_[a-z_]+_total)\b", expr):
            assert re.search(rf"(rate|increase)\(\s*{counter}\b", expr), f"{counter} used without rate(): {expr}"
        bad = grouping_labels(expr) & UNBOUNDED_LABELS
        assert not bad, f"unbounded label(s) {bad} in {expr!r}"


def test_dashboard_queries_are_valid_promql(dt: Any, tmp_path: Path) -> None:
    dash = json.loads((dt.ROOT / DASHBOARD).read_text())
    assert dash["uid"] == "crm-suite" and dash["panels"]
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "service"} <= variables
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    rules = []
    for i, expr in enumerate(dashboard_exprs(dt)):
        concrete = expr.replace("$__rate_interval", "5m").replace("$service", "auth")
        assert "$" not in concrete, f"unknown dashboard variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = dt.run([dt.promtool(), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    # suite health and per-service traffic are both there
    titles = {p["title"] for p in dash["panels"] if p["type"] == "row"}
    assert {"Suite health", "Gateway traffic"} <= titles and any("Per-service" in t for t in titles)


def test_grafana_provisioning_points_at_the_dashboard(dt: Any, compose_model: dict[str, Any]) -> None:
    mounts = {v["target"]: Path(v["source"]) for v in compose_model["services"]["grafana"]["volumes"]
              if v["type"] == "bind"}
    provider = yaml.safe_load((dt.ROOT / "deploy/grafana/provisioning/dashboards/crm.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path].resolve() == (dt.ROOT / DASHBOARD).parent
    datasource = yaml.safe_load((dt.ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
