"""What a lab run reports: per path and in total."""

from __future__ import annotations

from dataclasses import dataclass, field

from secpath.lab.network import Faults
from secpath.monitor.stats import Statistics

__all__ = ["LabOptions", "LabResult", "PathResult"]


@dataclass(frozen=True, slots=True)
class LabOptions:
    faults: Faults = field(default_factory=Faults)
    packets_per_direction: int = 3
    duration: float = 0.0  # keep sending traffic this long (seconds), after the first round
    negotiate_timeout: float = 45.0
    settle_timeout: float = 15.0  # how long traffic may take to arrive (with resends)
    retry_failed: bool = True  # initiate a failed path again until negotiate_timeout
    port_base: int = 30000
    seed: int | None = None


@dataclass(slots=True)
class PathResult:
    rule: str
    a: str
    b: str
    network: str
    authentication: str  # as planned
    used_authentication: str  # as run in the lab
    initiator: str
    established: bool = False
    ike_proposal: str = ""
    esp_transform: str = ""
    mode: str = ""
    encapsulation: str = ""
    nat: str = ""  # which end saw a NAT
    sent: int = 0
    verified: int = 0
    clear_probes_refused: int = 0
    failure: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.established
            and self.sent > 0
            and self.verified == self.sent
            and self.clear_probes_refused == 2
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "a": self.a,
            "b": self.b,
            "network": self.network,
            "authentication": self.authentication,
            "used_authentication": self.used_authentication,
            "initiator": self.initiator,
            "established": self.established,
            "ike_proposal": self.ike_proposal,
            "esp_transform": self.esp_transform,
            "mode": self.mode,
            "encapsulation": self.encapsulation,
            "nat": self.nat,
            "sent": self.sent,
            "verified": self.verified,
            "clear_probes_refused": self.clear_probes_refused,
            "failure": self.failure,
            "ok": self.ok,
        }


@dataclass(slots=True)
class LabResult:
    deployment: str
    paths: list[PathResult]
    hosts: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    totals: Statistics = field(default_factory=Statistics)
    network: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.paths) and all(p.ok for p in self.paths)

    def as_dict(self) -> dict[str, object]:
        snap = self.totals.snapshot()
        return {
            "deployment": self.deployment,
            "ok": self.ok,
            "hosts": self.hosts,
            "paths_total": len(self.paths),
            "paths_up": sum(1 for p in self.paths if p.established),
            "paths_verified": sum(1 for p in self.paths if p.ok),
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "paths": [p.as_dict() for p in self.paths],
            "main_mode": snap["main_mode"],
            "quick_mode": snap["quick_mode"],
            "network": self.network,
        }
