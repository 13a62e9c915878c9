"""Prometheus metrics (``[monitor] prometheus = "127.0.0.1:9505"``): the
monitor's statistics as ``secpath_main_mode_*`` / ``secpath_quick_mode_*``
(counters end in ``_total``), per-rule bytes, packets and state, SA counts,
and the process collector (CPU, memory: the guide's Performance Monitor
counters).

The daemon publishes an immutable snapshot from its event loop; the HTTP
server's thread only reads the latest one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from secpath.monitor.stats import MAIN_MODE, QUICK_MODE, Kind

__all__ = ["MetricsServer", "SnapshotCollector"]

_STATES = ("up", "negotiating", "down")


class SnapshotCollector(Collector):
    """Metrics from the latest snapshot: ``{"main_mode": …, "quick_mode": …,
    "rules": {name: {...}}, "ike_sas": n, "child_sas": n}``."""

    def __init__(self) -> None:
        self.snapshot: Mapping[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        for prefix, table in (("main_mode", MAIN_MODE), ("quick_mode", QUICK_MODE)):
            values = snap.get(prefix, {})
            for stat in table:
                name = f"secpath_{prefix}_{stat.key}"
                help_ = f"{stat.name}: {stat.help}"
                value = float(values.get(stat.key, 0))
                if stat.kind is Kind.COUNTER:
                    yield CounterMetricFamily(name, help_, value=value)
                else:
                    yield GaugeMetricFamily(name, help_, value=value)
        rules = snap.get("rules", {})
        nbytes = CounterMetricFamily(
            "secpath_rule_bytes", "Bytes protected per rule", labels=["rule", "direction"]
        )
        packets = CounterMetricFamily(
            "secpath_rule_packets", "Packets protected per rule", labels=["rule", "direction"]
        )
        state = GaugeMetricFamily(
            "secpath_rule_state", "1 for the rule's current state", labels=["rule", "state"]
        )
        for name, r in sorted(rules.items()):
            nbytes.add_metric([name, "in"], float(r.get("bytes_in", 0)))
            nbytes.add_metric([name, "out"], float(r.get("bytes_out", 0)))
            packets.add_metric([name, "in"], float(r.get("packets_in", 0)))
            packets.add_metric([name, "out"], float(r.get("packets_out", 0)))
            for s in _STATES:
                state.add_metric([name, s], 1.0 if r.get("state") == s else 0.0)
        yield nbytes
        yield packets
        yield state
        yield GaugeMetricFamily("secpath_ike_sas", "IKE SAs established", value=float(snap.get("ike_sas", 0)))
        yield GaugeMetricFamily(
            "secpath_child_sas", "Child SAs installed", value=float(snap.get("child_sas", 0))
        )


class MetricsServer:
    """``/metrics`` over HTTP on ``listen`` (its own thread)."""

    def __init__(self, listen: tuple[str, int]) -> None:
        self.collector = SnapshotCollector()
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        server, thread = start_http_server(listen[1], listen[0], registry=self.registry)
        self._server: WSGIServer = server
        self._thread: Thread = thread

    def publish(self, snapshot: Mapping[str, Any]) -> None:
        self.collector.snapshot = snapshot

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
