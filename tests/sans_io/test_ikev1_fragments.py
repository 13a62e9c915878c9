"""IKEv1 fragmentation between two engines: with RSA certificates and a
small fragment size, main mode messages 5 and 6 travel as fragments (both
ends sent the FRAGMENTATION vendor ID), each datagram within the size, and
the SAs come up — also through a NAT on port 4500, with a fragment lost, and
not at all fragmented when the peer did not announce support."""

from __future__ import annotations

import pytest

from secpath.ike.engine import Datagram
from secpath.ike.events import ChildSaInstalled, IkeSaEstablished, IkeSaFailed
from secpath.ike.v1 import main_mode
from secpath.ike.v1.codec import VendorIdPayload
from secpath.ike.v1.constants import ExchangeType, Flag
from secpath.ike.v1.fragments import FRAGMENT_PAYLOAD, FRAGMENTATION_VENDOR_ID, decode_fragment

from .ikev1_harness import Pair, make_pair

SIZE = 300


def _isakmp(d: Datagram) -> bytes:
    return d.data[4:] if d.source_port == 4500 else d.data


def _fragments(sent: list[Datagram]) -> list[bytes]:
    return [_isakmp(d) for d in sent if _isakmp(d)[16] == FRAGMENT_PAYLOAD]


def _up(pair: Pair) -> None:
    for side in (pair.a, pair.b):
        assert len(side.of(IkeSaEstablished)) == 1 and len(side.of(ChildSaInstalled)) == 1
        assert not side.of(IkeSaFailed)


@pytest.mark.parametrize("nat", [False, True])
@pytest.mark.parametrize("auth", ["rsa", "ecdsa"])
def test_main_mode_5_and_6_travel_in_fragments(nat: bool, auth: str) -> None:
    pair = make_pair(auth=auth, mode="tunnel", fragment_size=SIZE)
    pair.nat = nat
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    _up(pair)
    for side in (pair.a, pair.b):
        frags = _fragments(side.sent)
        assert len(frags) >= 2, "message 5/6 was not fragmented"
        assert all(len(d.data) <= SIZE for d in side.sent if _isakmp(d)[16] == FRAGMENT_PAYLOAD)
        decoded = [decode_fragment(f) for f in frags]
        # one message: one fragment ID, numbers 1..n, the last one flagged
        assert len({f.fragment_id for _, f in decoded}) == 1
        assert [f.number for _, f in decoded] == list(range(1, len(decoded) + 1))
        assert [f.last for _, f in decoded] == [False] * (len(decoded) - 1) + [True]
        for header, _ in decoded:
            assert header.exchange_type == ExchangeType.IDENTITY_PROTECTION
            assert not header.flags & Flag.ENCRYPTION
        # the pieces are the encrypted message 5 (or 6) itself
        whole = b"".join(f.data for _, f in decoded)
        assert whole[19] & Flag.ENCRYPTION and len(whole) > SIZE
        # quick mode stays whole (only main mode is fragmented)
        assert all(_isakmp(d)[18] != ExchangeType.QUICK_MODE or _isakmp(d)[16] != FRAGMENT_PAYLOAD
                   for d in side.sent)
    assert pair.a.engine.fragments_waiting() == 0 == pair.b.engine.fragments_waiting()


def test_a_lost_fragment_is_recovered_by_the_retransmission() -> None:
    dropped: list[bytes] = []

    def drop(d: Datagram, _src: str) -> bool:
        data = _isakmp(d)
        if data[16] == FRAGMENT_PAYLOAD and not dropped and decode_fragment(data)[1].number == 2:
            dropped.append(data)
            return True
        return False

    pair = make_pair(auth="rsa", fragment_size=SIZE)
    pair.drop = drop
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert dropped and pair.b.engine.fragments_waiting() == 1  # B holds the others
    pair.advance(20)
    _up(pair)
    assert pair.b.engine.fragments_waiting() == 0


def test_no_fragments_to_a_peer_without_the_vendor_id(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = make_pair(auth="rsa", fragment_size=SIZE)
    pair.a.engine.initiate("path", pair.now)
    # B answers message 1 as a peer that does not announce fragmentation
    original = main_mode._vendor_ids
    monkeypatch.setattr(main_mode, "_vendor_ids", lambda: [
        p for p in original()
        if not (isinstance(p, VendorIdPayload) and p.data == FRAGMENTATION_VENDOR_ID)])
    pair._deliver(pair.a, pair.b)  # message 1 to B, whose message 2 lacks the vendor ID
    monkeypatch.undo()
    pair.run()
    _up(pair)
    # A may not fragment to B; B may fragment to A (A announced it)
    assert _fragments(pair.a.sent) == []
    assert len(_fragments(pair.b.sent)) >= 2


def test_large_fragment_size_sends_whole_messages() -> None:
    pair = make_pair(auth="rsa")
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    _up(pair)
    assert _fragments(pair.a.sent) == [] and _fragments(pair.b.sent) == []
