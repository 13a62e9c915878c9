"""Two IKEv1 engines paired in memory (the IKEv2 harness's configs and
credentials, the IKEv1 engine), with a network that can drop and a NAT."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from secpath.ike.config import IkeConfig
from secpath.ike.engine import Datagram
from secpath.ike.events import Event
from secpath.ike.v1 import IkeV1Engine

from . import pki
from .harness import A_ADDR, B_ADDR, Clocked, make_config, seeded_rng

E = TypeVar("E")
NAT_ADDR = "192.0.2.100"


@dataclass
class Side:
    engine: IkeV1Engine
    address: str
    events: list[Event] = field(default_factory=list)
    sent: list[Datagram] = field(default_factory=list)

    def drain(self) -> None:
        while (ev := self.engine.next_event()) is not None:
            self.events.append(ev)

    def of(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]


@dataclass
class Pair(Clocked):
    a: Side
    b: Side
    now: float = pki.NOW
    drop: Callable[[Datagram, str], bool] | None = None
    nat: bool = False  # A is behind a NAT: B sees it as NAT_ADDR:40000+port

    def _deliver(self, src: Side, dst: Side) -> bool:
        moved = False
        for d in src.engine.datagrams_to_send():
            src.sent.append(d)
            if self.drop is not None and self.drop(d, src.address):
                continue
            moved = True
            addr, port = src.address, d.source_port
            local_port = d.destination[1]
            if self.nat and src is self.a:
                addr, port = NAT_ADDR, 40000 + d.source_port
            if self.nat and dst is self.a:
                local_port -= 40000
            dst.engine.receive_datagram(d.data, (addr, port), self.now, local_port=local_port)
        return moved


def make_pair(*, seed: int = 1, a_config: IkeConfig | None = None,
              b_config: IkeConfig | None = None, **kwargs: object) -> Pair:
    a_cfg = a_config or make_config(A_ADDR, B_ADDR, **kwargs)  # type: ignore[arg-type]
    b_cfg = b_config or make_config(B_ADDR, A_ADDR, **kwargs)  # type: ignore[arg-type]
    return Pair(Side(IkeV1Engine([a_cfg], seeded_rng(seed)), A_ADDR),
                Side(IkeV1Engine([b_cfg], seeded_rng(seed + 1000)), B_ADDR))


def handshake(pair: Pair, rule: str = "path") -> int:
    handle = pair.a.engine.initiate(rule, pair.now)
    pair.run()
    return handle
