"""ops/grafana-dashboard.json imports as it is, shows what the README's metrics table promises,
and every expression in it and in ops/alerts.yml names a metric that deploy-monitor exports
(here from the collectors in this process; tests/e2e/test_ops_files.py scrapes real ones)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.unit.ops.promql import (
    DASHBOARD,
    SCRAPE_SERIES,
    alert_expressions,
    dashboard_expressions,
    every_expression,
    metric_names,
    sample_names,
)
from workers import metrics


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (route, status) (rate(a_total{status=~"error|5.."}[$__rate_interval]))',
            {"a_total"},
        ),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
        ("max(g) > 0 unless on () sum(rate(c_total[10m] offset 1h)) > 0", {"g", "c_total"}),
        ('up{job="x"} == 0 or absent(up{job="x"})', {"up"}),
        ("sum(rate(s_sum[1m])) / sum without (instance) (rate(s_count[1m]))", {"s_sum", "s_count"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_dashboard_imports_as_it_is() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "deploy-monitor" and dashboard["uid"]
    assert "id" not in dashboard  # Grafana assigns it on import
    assert isinstance(dashboard["schemaVersion"], int)
    # One data source variable: the import asks for nothing, any Prometheus can be picked.
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    # No two panels on the same spot.
    cells = Counter(
        (x, y)
        for panel in dashboard["panels"]
        for x in range(panel["gridPos"]["x"], panel["gridPos"]["x"] + panel["gridPos"]["w"])
        for y in range(panel["gridPos"]["y"], panel["gridPos"]["y"] + panel["gridPos"]["h"])
    )
    assert max(cells.values()) == 1


def test_the_dashboard_shows_every_family_the_issue_asks_for() -> None:
    shown = set().union(*(metric_names(e) for es in dashboard_expressions().values() for e in es))
    for family in (
        "deploy_monitor_active_monitors",
        "deploy_monitor_ticks_total",
        "deploy_monitor_tick_duration_seconds_bucket",
        "deploy_monitor_concourse_requests_total",
        "deploy_monitor_github_requests_total",
        "deploy_monitor_slack_calls_total",
        "deploy_monitor_decisions_total",
        "deploy_monitor_slash_commands_total",
    ):
        assert family in shown
    by_route = [e for es in dashboard_expressions().values() for e in es if "route" in e]
    assert any("concourse" in e for e in by_route) and any("github" in e for e in by_route)


def test_every_alert_has_a_summary_and_a_runbook() -> None:
    import yaml

    from tests.unit.ops.promql import ALERTS

    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert len(rules) == len(alert_expressions()) == 8
    for rule in rules:
        assert rule["annotations"]["summary"], rule["alert"]
        assert "deploy-monitor check" in rule["annotations"]["runbook"], rule["alert"]


def test_every_expression_names_an_exported_metric() -> None:
    exported = sample_names(metrics.exposed(lambda: ({}, 0)).collect()) | SCRAPE_SERIES
    for where, expr in every_expression().items():
        names = metric_names(expr)
        assert names, f"{where} names no metric"
        unknown = names - exported
        assert not unknown, f"{where} names {sorted(unknown)}, which deploy-monitor does not export"
