"""Operator assets under ops/: the Prometheus rules, their unit tests and the example scrape
config go through promtool itself; the Grafana dashboard is checked for structure, for
PromQL that parses, and for metric and label names from the metrics contract only.

There is no YAML parser in the project (and none is added for this): promtool validates the
YAML, and the few facts read here in Python (alert names, which alerts the unit tests fire,
metric names in input series) come from small line-based readers of files we write.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ops_readers import block_items, list_items, promql_names, scalar

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "ops" / "prometheus" / "alerts.test.yml"
PROMETHEUS_CONFIG = ROOT / "ops" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "ielts-service.json"

PROMTOOL_MISSING = "promtool not found: run `make test`, which installs Debian's prometheus package"

# The metrics contract: name -> label names. Nothing else may appear in ops/.
CONTRACT: dict[str, frozenset[str]] = {
    "ielts_http_requests_total": frozenset({"method", "route", "status"}),
    "ielts_ai_requests_total": frozenset({"provider", "model", "part", "outcome"}),
    "ielts_ai_retries_total": frozenset({"reason"}),
    "ielts_ai_tokens_total": frozenset({"model", "kind"}),
    "ielts_cache_requests_total": frozenset({"result"}),
    "ielts_inflight_requests": frozenset(),
}
HISTOGRAMS: dict[str, frozenset[str]] = {
    "ielts_http_request_duration_seconds": frozenset({"method", "route"}),
    "ielts_ai_request_duration_seconds": frozenset({"provider", "model", "part", "outcome"}),
}
# Series names as Prometheus stores them (histograms as _bucket/_sum/_count), plus `up`.
SERIES: dict[str, frozenset[str]] = {
    **CONTRACT,
    **{f"{name}_bucket": labels | {"le"} for name, labels in HISTOGRAMS.items()},
    **{f"{name}_sum": labels for name, labels in HISTOGRAMS.items()},
    **{f"{name}_count": labels for name, labels in HISTOGRAMS.items()},
    "up": frozenset(),
}
TARGET_LABELS = frozenset({"job", "instance"})  # added by Prometheus to every scraped series
KNOWN_LABELS = frozenset().union(*SERIES.values()) | TARGET_LABELS


# ------------------------------------------------------------------------------- promtool


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(PROMTOOL_MISSING)
    return path


def run_promtool(*args: str) -> str:
    proc = subprocess.run(
        [promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, (
        f"`promtool {' '.join(args)}` exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout + proc.stderr


def test_promtool_check_rules() -> None:
    out = run_promtool("check", "rules", "ops/prometheus/alerts.yml")
    # The line readers below must see every rule promtool sees.
    found = re.search(r"SUCCESS: (\d+) rules found", out)
    assert found, out
    assert int(found.group(1)) == len(alert_rules()), out


def test_promtool_test_rules() -> None:
    run_promtool("test", "rules", "ops/prometheus/alerts.test.yml")


def test_promtool_check_config() -> None:
    out = run_promtool("check", "config", "ops/prometheus/prometheus.yml")
    assert "1 rule files found" in out, out


def alert_rules() -> dict[str, list[str]]:
    lines = ALERTS.read_text().splitlines()
    rules: dict[str, list[str]] = {}
    for item in list_items(lines, "alert"):
        name = scalar(item, "alert")
        assert name and name not in rules, f"missing or duplicate alert name: {name!r}"
        rules[name] = item
    return rules


def test_promql_names_reader() -> None:
    metrics, labels = promql_names(
        'histogram_quantile(0.95, sum by (le, part) (rate(ielts_ai_request_duration_seconds_bucket'
        '{model=~"$model", part!="x}"}[5m]))) / on() group_left sum(up offset 1e3m) > bool 0.5'
    )
    assert metrics == {"ielts_ai_request_duration_seconds_bucket", "up"}
    assert labels == {"le", "part", "model"}


def assert_contract_names(expr: str, where: str) -> None:
    metrics, labels = promql_names(expr)
    assert metrics, f"{where}: no metric in {expr!r}"
    unknown = metrics - SERIES.keys()
    assert not unknown, f"{where}: metrics outside the contract {sorted(unknown)} in {expr!r}"
    unknown = labels - KNOWN_LABELS
    assert not unknown, f"{where}: labels outside the contract {sorted(unknown)} in {expr!r}"


# ------------------------------------------------------------------------------- alerts


def test_alert_rules_have_for_severity_and_annotations() -> None:
    text = ALERTS.read_text()
    assert re.search(r"^\s*-\s+name:\s*['\"]?ielts-service['\"]?\s*$", text, re.M)
    rules = alert_rules()
    assert set(rules) == {
        "IeltsModelLatencyHigh", "IeltsErrorRatioHigh", "IeltsModelRetryStorm",
        "IeltsCacheHitRatioCollapsed", "IeltsTargetDown",
    }
    for name, item in rules.items():
        expr = scalar(item, "expr")
        assert expr, f"{name}: no expr"
        assert_contract_names(expr, name)
        assert scalar(item, "for"), f"{name}: no `for`"
        assert scalar(item, "severity") in ("warning", "critical"), f"{name}: severity"
        for annotation in ("summary", "description"):
            assert scalar(item, annotation), f"{name}: no {annotation} annotation"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    rules = alert_rules()
    fired: set[str] = set()
    quiet: set[str] = set()
    for item in block_items(ALERT_TESTS.read_text().splitlines(), "alert_rule_test"):
        text = "\n".join(item)
        name = scalar(item, "alertname")
        assert name in rules, f"alerts.test.yml tests an unknown alert {name!r}"
        if re.search(r"^\s*-\s+exp_(labels|annotations):", text, re.M):
            assert "exp_labels:" in text and "exp_annotations:" in text, (
                f"{name}: a firing case must give exp_labels and exp_annotations\n{text}")
            for annotation in ("summary", "description"):
                assert scalar(item, annotation), f"{name}: no expected {annotation}\n{text}"
            fired.add(name)
        else:
            assert re.search(r"exp_alerts:\s*\[\s*\]", text), f"unreadable test case\n{text}"
            quiet.add(name)
    assert set(rules) - fired == set(), "alerts never fired by alerts.test.yml"
    assert set(rules) - quiet == set(), "alerts never tested to stay quiet in alerts.test.yml"


def test_alert_test_series_use_the_contract() -> None:
    series = [scalar(item, "series")
              for item in list_items(ALERT_TESTS.read_text().splitlines(), "series")]
    assert series
    buckets: dict[str, set[str]] = {}
    for selector in series:
        assert selector
        m = re.fullmatch(r"([A-Za-z_:][\w:]*)\{(.*)\}", selector)
        assert m, f"unreadable input series {selector!r}"
        name, body = m.groups()
        labels = dict(re.findall(r'([A-Za-z_]\w*)="([^"]*)"', body))
        assert name in SERIES, f"input series outside the contract: {selector}"
        assert set(labels) - TARGET_LABELS == SERIES[name], (
            f"{selector}: labels must be exactly {sorted(SERIES[name])} (plus job/instance)")
        if name.endswith("_bucket"):
            key = name + str(sorted((k, v) for k, v in labels.items() if k != "le"))
            buckets.setdefault(key, set()).add(labels["le"])
    for key, les in buckets.items():
        assert "+Inf" in les, f"histogram series without le=\"+Inf\": {key}"


# ----------------------------------------------------------------------------- dashboard


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside a collapsed row


def query_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(board) if p.get("type") != "row"]


def test_dashboard_loads_with_datasource_and_variables() -> None:
    board = dashboard()
    assert board["schemaVersion"] == 39
    assert board["title"] and board["uid"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    for name in ("model", "part"):
        var = variables[name]
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        assert var["type"] == "query"
        assert re.fullmatch(rf"label_values\((\w+), {name}\)", query), query
        assert name in SERIES[re.findall(r"\((\w+),", query)[0]]
    ids = [p["id"] for p in all_panels(board)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"


def test_dashboard_panels_have_titles_units_and_targets() -> None:
    board = dashboard()
    panels = query_panels(board)
    assert {p["type"] for p in panels} >= {"timeseries", "stat"}
    for panel in all_panels(board):
        assert panel.get("title", "").strip(), f"panel {panel.get('id')} has no title"
    for panel in panels:
        title = panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", title
        targets = panel.get("targets") or []
        assert targets, f"{title}: no target"
        for target in targets:
            assert target.get("expr", "").strip(), f"{title}: target without expr"
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", title


def test_dashboard_expressions_use_only_contract_metrics() -> None:
    for panel in query_panels(dashboard()):
        for target in panel["targets"]:
            assert_contract_names(target["expr"], panel["title"])


def test_dashboard_expressions_parse(tmp_path: Path) -> None:
    """Every panel query, with Grafana's variables filled in, as a recording rule."""
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for panel in query_panels(dashboard()):
        for target in panel["targets"]:
            expr = re.sub(r"\$\{?__(?:rate_)?interval\}?|\$\{?__range\}?", "5m", target["expr"])
            expr = re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", expr)
            lines += [f"      - record: dashboard:panel_{panel['id']}:{target['refId']}",
                      f"        expr: {json.dumps(expr)}"]
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text("\n".join(lines) + "\n")
    run_promtool("check", "rules", str(rules))
