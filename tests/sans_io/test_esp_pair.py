"""Two ESP endpoints paired in memory: loss, reordering and duplication in
between; every packet arrives at most once, in any order the window allows."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from secpath.esp import ReplayError, SecurityAssociation


def endpoints(name: str, window: int, esn: bool = False) -> tuple[SecurityAssociation,
                                                                   SecurityAssociation]:
    from secpath.esp.transforms import parse_transform

    enc, integ = parse_transform(name)
    keys = (bytes(range(enc.key_bytes + enc.salt_bytes)),
            bytes(range(integ.key_bytes)) if integ else None)
    args = dict(tunnel=("192.0.2.1", "192.0.2.2"), udp_encapsulation=(4500, 4500),
                replay_window=window, esn=esn)
    return (SecurityAssociation(0x4242, name, *keys, **args),  # type: ignore[arg-type]
            SecurityAssociation(0x4242, name, *keys, **args))  # type: ignore[arg-type]


def payload(i: int) -> bytes:
    return bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=i % 65536) / UDP()
                 / Raw(i.to_bytes(4, "big")))


@pytest.mark.parametrize("name", ["aes128gcm16", "aes128-sha256", "3des-sha1"])
@pytest.mark.parametrize("esn", [False, True])
def test_reordering_within_the_window_loses_nothing(name: str, esn: bool) -> None:
    rng = random.Random(7)
    alice, bob = endpoints(name, 64, esn)
    wires = [alice.encapsulate(payload(i)) for i in range(400)]
    # shuffle inside blocks of 32 packets: every packet stays within the window
    order = []
    for start in range(0, len(wires), 32):
        block = list(range(start, min(start + 32, len(wires))))
        rng.shuffle(block)
        order += block
    delivered = [bob.decapsulate(wires[i]) for i in order]
    assert sorted(delivered) == sorted(payload(i) for i in range(400))
    assert bob.counters.replays == 0


def test_duplicates_and_stragglers_are_dropped_and_counted() -> None:
    rng = random.Random(11)
    alice, bob = endpoints("aes128gcm16", 32)
    wires = [alice.encapsulate(payload(i)) for i in range(300)]
    delivered: set[bytes] = set()
    refused = 0
    stream = [(i, w) for i, w in enumerate(wires)]
    stream += [stream[rng.randrange(len(stream))] for _ in range(100)]  # duplicates
    lost = set(rng.sample(range(300), 30))  # 10 % loss
    for i, wire in stream:
        if i in lost:
            continue
        try:
            inner = bob.decapsulate(wire)
        except ReplayError:
            refused += 1
            continue
        assert inner not in delivered  # never twice
        delivered.add(inner)
    assert len(delivered) == 270
    assert refused == 100 - sum(1 for i, _ in stream[300:] if i in lost)
    assert bob.counters.replays == refused
    assert bob.counters.packets_in == 270


def test_too_old_after_a_gap() -> None:
    alice, bob = endpoints("chacha20poly1305", 64)
    wires = [alice.encapsulate(payload(i)) for i in range(200)]
    bob.decapsulate(wires[199])
    for i in range(199 - 63, 199):  # inside the window: all accepted
        bob.decapsulate(wires[i])
    for i in range(0, 199 - 63):  # left of it: all refused
        with pytest.raises(ReplayError):
            bob.decapsulate(wires[i])
    assert bob.counters.replays == 199 - 63
