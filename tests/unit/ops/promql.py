"""What the operations files (ops/alerts.yml, ops/grafana-dashboard.json) ask Prometheus for:
their PromQL expressions and the metric names those name, and the sample names a process
exposes; shared by the unit test and the one that scrapes real processes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from prometheus_client.metrics_core import Metric

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "ops" / "alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana-dashboard.json"
# Made by Prometheus itself for every scrape target, not by deploy-monitor.
SCRAPE_SERIES = {"up"}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "inf", "nan"}
# Aggregations read `sum by (label) (expr)`: once the label list is gone, no parenthesis follows.
_KEYWORDS |= {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
_KEYWORDS |= {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords or label names)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # label values may hold any word
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, is_call = match.group(1), match.group(2)
        if not is_call and word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def alert_expressions() -> dict[str, str]:
    """Alert name → expression, from ops/alerts.yml."""
    data = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule["expr"] for group in data["groups"] for rule in group["rules"]}


def dashboard_expressions() -> dict[str, list[str]]:
    """Panel title → its targets' expressions, from ops/grafana-dashboard.json."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
    }


def every_expression() -> dict[str, str]:
    """Where → expression, for every alert rule and dashboard target."""
    found = {f"alert {name}": expr for name, expr in alert_expressions().items()}
    for title, exprs in dashboard_expressions().items():
        found.update({f"panel {title!r} #{i}": expr for i, expr in enumerate(exprs)})
    return found


def sample_names(families: Iterable[Metric]) -> set[str]:
    """The series names Prometheus stores for these families (counters get `_total`,
    histograms `_bucket`, `_sum` and `_count`), whether or not a sample was observed yet."""
    names: set[str] = set()
    for family in families:
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif family.type == "summary":
            names.update(f"{family.name}{suffix}" for suffix in ("", "_sum", "_count"))
        else:
            names.add(family.name)
    return names
