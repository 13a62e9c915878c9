"""The IP Security Monitor's statistics, with the names the guide's monitor
uses, counted where things happen (by the policy agent and the engines).

Counters only go up (``reset`` aside); gauges describe the current state
(SAs alive, queues) and are set, never reset.  Per-rule byte and packet
totals carry the counts of rekeyed and deleted SAs, so they are monotonic
across rekeys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

__all__ = ["MAIN_MODE", "QUICK_MODE", "Kind", "RuleTotals", "Statistic", "Statistics"]


class Kind(Enum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class Statistic:
    key: str  # snake_case identifier, used in JSON and Prometheus names
    name: str  # the guide's monitor name
    kind: Kind
    help: str


def _c(key: str, name: str, help_: str) -> Statistic:
    return Statistic(key, name, Kind.COUNTER, help_)


def _g(key: str, name: str, help_: str) -> Statistic:
    return Statistic(key, name, Kind.GAUGE, help_)


MAIN_MODE: tuple[Statistic, ...] = (
    _g("active_acquire", "Active Acquire", "negotiations started by outbound traffic, still in progress"),
    _g("active_receive", "Active Receive", "negotiations started by a peer, still in progress"),
    _c("acquire_failures", "Acquire Failures", "negotiations we started that failed"),
    _c("receive_failures", "Receive Failures", "negotiations a peer started that failed"),
    _c("send_failures", "Send Failures", "IKE datagrams the network refused to send"),
    _g("acquire_heap_size", "Acquire Heap Size", "packets queued while their SA is negotiated"),
    _g("receive_heap_size", "Receive Heap Size", "IKE datagrams received and not yet processed"),
    _c("negotiation_failures", "Negotiation Failures", "IKE or Child SA negotiations that failed"),
    _c("authentication_failures", "Authentication Failures", "peers that failed authentication"),
    _c("invalid_cookies_received", "Invalid Cookies Received", "IKE messages with a wrong cookie or SPI"),
    _c("total_acquire", "Total Acquire", "negotiations started by outbound traffic or a command"),
    _c("total_get_spi", "Total Get SPI", "inbound SPIs allocated"),
    _c("key_additions", "Key Additions", "outbound SAs installed"),
    _c("key_updates", "Key Updates", "inbound SAs installed"),
    _c("get_spi_failures", "Get SPI Failures", "inbound SPI allocations that failed"),
    _c("key_addition_failures", "Key Addition Failures", "outbound SAs that could not be installed"),
    _c("key_update_failures", "Key Update Failures", "inbound SAs that could not be installed"),
    _g("connection_list_size", "Connection List Size", "IKE peers known"),
    _g("main_mode_sas", "Main Mode SAs", "IKE SAs established"),
    _g("quick_mode_sas", "Quick Mode SAs", "Child SAs established"),
    _c("soft_associations", "Soft Associations", "clear-text associations: unsecured fallback used"),
    _c("invalid_packets_received", "Invalid Packets Received", "IKE datagrams that did not parse"),
)

QUICK_MODE: tuple[Statistic, ...] = (
    _g("active_security_associations", "Active Security Associations", "ESP SAs in use (both directions)"),
    _g(
        "offloaded_security_associations",
        "Offloaded Security Associations",
        "ESP SAs handed to a kernel backend",
    ),
    _g("pending_key_operations", "Pending Key Operations", "Child SA negotiations in progress"),
    _c("key_additions", "Key Additions", "Child SAs installed"),
    _c("key_deletions", "Key Deletions", "Child SAs deleted"),
    _c("rekeys", "Rekeys", "Child SAs rekeyed"),
    _g("active_tunnels", "Active Tunnels", "tunnel-mode Child SAs in use"),
    _c("bad_spi_packets", "Bad SPI Packets", "ESP packets for an unknown SPI"),
    _c("packets_not_decrypted", "Packets Not Decrypted", "ESP packets that failed to decrypt or unpad"),
    _c("packets_not_authenticated", "Packets Not Authenticated", "ESP packets with a bad ICV"),
    _c("packets_with_replay_detection", "Packets With Replay Detection", "replayed or too old ESP packets"),
    _c("confidential_bytes_sent", "Confidential Bytes Sent", "bytes sent encrypted"),
    _c("confidential_bytes_received", "Confidential Bytes Received", "bytes received encrypted"),
    _c("authenticated_bytes_sent", "Authenticated Bytes Sent", "bytes sent integrity-protected"),
    _c("authenticated_bytes_received", "Authenticated Bytes Received", "bytes received integrity-protected"),
    _c("transport_bytes_sent", "Transport Bytes Sent", "bytes sent in transport-mode SAs"),
    _c("transport_bytes_received", "Transport Bytes Received", "bytes received in transport-mode SAs"),
    _c("bytes_sent_in_tunnels", "Bytes Sent In Tunnels", "bytes sent in tunnel-mode SAs"),
    _c("bytes_received_in_tunnels", "Bytes Received In Tunnels", "bytes received in tunnel-mode SAs"),
)

Mode = Literal["main_mode", "quick_mode"]
_TABLES: dict[Mode, tuple[Statistic, ...]] = {"main_mode": MAIN_MODE, "quick_mode": QUICK_MODE}


@dataclass(slots=True)
class RuleTotals:
    """Per-rule totals, carried across rekeys and deletions."""

    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    packets_out: int = 0
    state: str = "down"  # "up" | "negotiating" | "down"
    last_failure: str = ""


@dataclass(slots=True)
class Statistics:
    """All statistics of one host."""

    main_mode: dict[str, int] = field(default_factory=lambda: {s.key: 0 for s in MAIN_MODE})
    quick_mode: dict[str, int] = field(default_factory=lambda: {s.key: 0 for s in QUICK_MODE})
    rules: dict[str, RuleTotals] = field(default_factory=dict)

    def _table(self, mode: Mode, key: str) -> dict[str, int]:
        table = self.main_mode if mode == "main_mode" else self.quick_mode
        if key not in table:
            raise KeyError(f"no {mode} statistic {key!r}")
        return table

    def inc(self, mode: Mode, key: str, n: int = 1) -> None:
        self._table(mode, key)[key] += n

    def set(self, mode: Mode, key: str, value: int) -> None:
        self._table(mode, key)[key] = value

    def rule(self, name: str) -> RuleTotals:
        totals = self.rules.get(name)
        if totals is None:
            totals = self.rules[name] = RuleTotals()
        return totals

    def reset(self) -> None:
        """Zero the counters (``secpath stats --reset``); gauges and rule states stay."""
        for mode, table in _TABLES.items():
            values = self.main_mode if mode == "main_mode" else self.quick_mode
            for s in table:
                if s.kind is Kind.COUNTER:
                    values[s.key] = 0
        for totals in self.rules.values():
            totals.bytes_in = totals.bytes_out = totals.packets_in = totals.packets_out = 0

    def snapshot(self) -> dict[str, object]:
        """JSON-ready: ``{"main_mode": {key: value}, "quick_mode": ..., "rules": ...}``."""
        return {
            "main_mode": dict(self.main_mode),
            "quick_mode": dict(self.quick_mode),
            "rules": {
                name: {
                    "bytes_in": t.bytes_in,
                    "bytes_out": t.bytes_out,
                    "packets_in": t.packets_in,
                    "packets_out": t.packets_out,
                    "state": t.state,
                    "last_failure": t.last_failure,
                }
                for name, t in sorted(self.rules.items())
            },
        }
