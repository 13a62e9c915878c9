"""The Prometheus collector and the example Grafana dashboard agree on names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from secpath.monitor.metrics import SnapshotCollector
from secpath.monitor.stats import MAIN_MODE, QUICK_MODE, Kind, Statistics

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def exposition() -> str:
    stats = Statistics()
    stats.inc("quick_mode", "confidential_bytes_sent", 1234)
    stats.set("main_mode", "main_mode_sas", 3)
    stats.rule("rtr-a--lgr-a").bytes_out = 99
    stats.rule("rtr-a--lgr-a").state = "up"
    snap = stats.snapshot()
    snap["ike_sas"], snap["child_sas"] = 3, 4
    collector = SnapshotCollector()
    collector.snapshot = snap
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_every_statistic_is_exported_with_its_guide_name() -> None:
    text = exposition()
    for prefix, table in (("main_mode", MAIN_MODE), ("quick_mode", QUICK_MODE)):
        for stat in table:
            name = f"secpath_{prefix}_{stat.key}" + ("_total" if stat.kind is Kind.COUNTER else "")
            assert re.search(rf"^{name} ", text, re.M), name
            assert stat.name in text  # the monitor's own name is in the HELP line
    assert "secpath_quick_mode_confidential_bytes_sent_total 1234.0" in text
    assert "secpath_main_mode_main_mode_sas 3.0" in text
    assert 'secpath_rule_bytes_total{direction="out",rule="rtr-a--lgr-a"} 99.0' in text
    assert 'secpath_rule_state{rule="rtr-a--lgr-a",state="up"} 1.0' in text
    assert "secpath_child_sas 4.0" in text


def test_dashboard_uses_exported_metrics() -> None:
    dash = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    text = exposition()
    exported = set(re.findall(r"^(secpath_\w+?)(?:\{| )", text, re.M)) | {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    for panel in dash["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\b(secpath_\w+|process_\w+)", target["expr"]):
                assert name in exported, (panel["title"], name)
