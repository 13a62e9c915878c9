"""The IKE engines of one host behind one face: the IKEv2 engine for rules
with ``ike_version = 2`` and the IKEv1 engine for ``ike_version = 1``.

Incoming datagrams go by the version in their header (RFC 2408 §3.1 /
RFC 7296 §3.1: byte 17, 0x10 for ISAKMP/IKEv1, 0x20 for IKEv2); API calls
go to the engine that owns the handle or the rule.  Both engines emit the
same events (:mod:`secpath.ike.events`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from secpath.errors import LocalError
from secpath.ike.config import IkeConfig
from secpath.ike.engine import Datagram, IkeEngine, IkeKeyMaterial
from secpath.ike.events import Event
from secpath.ike.v1 import IkeV1Engine, is_ikev1
from secpath.ike.v1.keys import IkeV1KeyMaterial

__all__ = ["IkeEngines"]

Address = tuple[str, int]
NAT_T_PORT = 4500


class IkeEngines:
    """IKEv2 and IKEv1 engines for the rules in ``configs`` (either may be absent)."""

    def __init__(
        self, configs: Sequence[IkeConfig], rng: Callable[[int], bytes], *, local_address: str
    ) -> None:
        v2 = [c for c in configs if c.rule.ike_version == 2]
        v1 = [c for c in configs if c.rule.ike_version == 1]
        self.v2 = IkeEngine(v2, rng, local_address=local_address) if v2 else None
        self.v1 = IkeV1Engine(v1, rng, local_address=local_address) if v1 else None
        self._by_rule: dict[str, IkeEngine | IkeV1Engine] = {}
        for c in configs:
            engine = self.v1 if c.rule.ike_version == 1 else self.v2
            assert engine is not None
            self._by_rule[c.name] = engine
        self._unrouted = 0  # datagrams of a version no rule speaks

    def _engines(self) -> list[IkeEngine | IkeV1Engine]:
        return [e for e in (self.v2, self.v1) if e is not None]

    def _owner(self, ike_sa: int) -> IkeEngine | IkeV1Engine:
        for e in self._engines():
            if e.ike_sa_state(ike_sa) is not None:
                return e
        raise LocalError(f"no IKE SA {ike_sa:#018x}")

    # -- outputs -----------------------------------------------------------------

    def datagrams_to_send(self) -> list[Datagram]:
        return [d for e in self._engines() for d in e.datagrams_to_send()]

    def next_event(self) -> Event | None:
        for e in self._engines():
            event = e.next_event()
            if event is not None:
                return event
        return None

    def next_timer(self) -> float | None:
        times = [t for e in self._engines() if (t := e.next_timer()) is not None]
        return min(times) if times else None

    # -- API -----------------------------------------------------------------------

    def initiate(self, rule: str, now: float, peer: Address | None = None, *,
                 method: str | None = None) -> int:
        engine = self._by_rule.get(rule)
        if engine is None:
            raise LocalError(f"no rule {rule!r} in this engine")
        if method is not None and isinstance(engine, IkeEngine):
            return engine.initiate(rule, now, peer, method=method)
        return engine.initiate(rule, now, peer)

    def rekey_child(self, ike_sa: int, child_sa: int, now: float) -> None:
        self._owner(ike_sa).rekey_child(ike_sa, child_sa, now)

    def rekey_ike(self, ike_sa: int, now: float) -> None:
        self._owner(ike_sa).rekey_ike(ike_sa, now)

    def delete(self, ike_sa: int, now: float, child_sa: int | None = None) -> None:
        self._owner(ike_sa).delete(ike_sa, now, child_sa)

    def expire_child(self, ike_sa: int, child_sa: int, now: float, reason: str) -> None:
        """A hard lifetime in bytes passed: IKEv2 drops the Child SA at once;
        IKEv1 deletes it."""
        owner = self._owner(ike_sa)
        if isinstance(owner, IkeEngine):
            owner.expire_child(ike_sa, child_sa, now, reason)
        else:
            owner.delete(ike_sa, now, child_sa)

    def dpd(self, ike_sa: int, now: float) -> None:
        self._owner(ike_sa).dpd(ike_sa, now)

    def invalid_spi(self, ike_sa: int, spi: int, now: float) -> bool:
        """INVALID_SPI over an IKEv2 SA (RFC 7296 §1.5); IKEv1 SAs send none."""
        if self.v2 is None or self.v2.ike_sa_state(ike_sa) is None:
            return False
        return self.v2.invalid_spi(ike_sa, spi, now)

    # -- input -----------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float, local_port: int = 500) -> None:
        header = data[4:] if local_port == NAT_T_PORT else data
        engine = self.v1 if is_ikev1(header) else self.v2
        if engine is None:
            self._unrouted += 1
            return
        engine.receive_datagram(data, addr, now, local_port)

    def handle_timer(self, now: float) -> None:
        for e in self._engines():
            e.handle_timer(now)

    # -- introspection ------------------------------------------------------------

    def ike_sa_state(self, ike_sa: int) -> object | None:
        return next((s for e in self._engines() if (s := e.ike_sa_state(ike_sa)) is not None), None)

    def ike_sas(self) -> tuple[int, ...]:
        return tuple(sorted(h for e in self._engines() for h in e.ike_sas()))

    def child_sas(self, ike_sa: int) -> tuple[int, ...]:
        return tuple(c for e in self._engines() for c in e.child_sas(ike_sa))

    def negotiations(self) -> tuple[int, int]:
        pairs = [e.negotiations() for e in self._engines()]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    def fragments_waiting(self) -> int:
        return sum(e.fragments_waiting() for e in self._engines())

    def key_material(self) -> tuple[IkeKeyMaterial, ...]:
        """IKEv2 SAs' keys (IKEv1's are :meth:`ikev1_key_material`)."""
        return self.v2.key_material() if self.v2 is not None else ()

    def ikev1_key_material(self) -> tuple[IkeV1KeyMaterial, ...]:
        """ISAKMP SAs' encryption keys."""
        return self.v1.key_material() if self.v1 is not None else ()

    @property
    def counters(self) -> dict[str, int]:
        total = {"invalid_packets": self._unrouted, "invalid_spis": 0, "invalid_cookies": 0}
        for e in self._engines():
            for key, n in e.counters.items():
                total[key] = total.get(key, 0) + n
        return total
