"""Retransmission (RFC 7296 §2.1, §2.4): lost datagrams, duplicates and a
30 % lossy network still converge; duplicate requests are answered from the
cached response, never processed twice."""

from __future__ import annotations

import random

import pytest

from secpath.ike.config import Timing
from secpath.ike.engine import Datagram
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaInstalled,
    ChildSaRekeyed,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
)
from secpath.ike.message import decode_header

from .harness import A_ADDR, Pair, make_pair
from .test_ike_handshake import check_child_pair, installed


def settle(pair: Pair, done: object, limit: float = 600.0) -> None:
    """Advance the clock until ``done()`` or ``limit`` seconds passed."""
    assert callable(done)
    start = pair.now
    pair.run()
    while not done() and pair.now - start < limit:
        pair.advance(1.0)


def test_lost_first_message_is_retransmitted() -> None:
    pair = make_pair()
    dropped: list[Datagram] = []

    def drop_first(d: Datagram, src: str) -> list[Datagram]:
        if not dropped:
            dropped.append(d)
            return []
        return [d]

    pair.network = drop_first
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert not pair.a.of(IkeSaEstablished)
    timer = pair.a.engine.next_timer()
    assert timer is not None and timer == pair.now + Timing().retransmit_timeout
    pair.advance(Timing().retransmit_timeout)
    assert pair.a.of(IkeSaEstablished) and pair.b.of(IkeSaEstablished)


def test_backoff_is_exponential_and_bounded() -> None:
    timing = Timing(retransmit_timeout=1.0, retransmit_base=2.0, retransmit_tries=4)
    pair = make_pair(timing=timing)
    pair.network = lambda d, src: []
    sent: list[float] = []
    pair.a.engine.initiate("path", pair.now)
    start = pair.now
    sent.append(pair.now)
    pair.a.engine.datagrams_to_send()
    while (t := pair.a.engine.next_timer()) is not None:
        pair.now = t
        pair.a.engine.handle_timer(t)
        if pair.a.engine.datagrams_to_send():
            sent.append(t)
    assert [round(t - start, 6) for t in sent] == [0.0, 1.0, 3.0, 7.0]
    pair.a.drain()
    failed = pair.a.of(IkeSaFailed)
    assert len(failed) == 1 and "retransmissions" in failed[0].reason
    assert pair.a.engine.ike_sas() == ()


def test_duplicate_requests_answered_from_cache() -> None:
    pair = make_pair()

    def duplicate(d: Datagram, src: str) -> list[Datagram]:
        return [d, d]

    pair.network = duplicate
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert len(pair.a.of(IkeSaEstablished)) == 1 and len(pair.b.of(IkeSaEstablished)) == 1
    assert len(pair.a.of(ChildSaInstalled)) == 1 and len(pair.b.of(ChildSaInstalled)) == 1
    check_child_pair(*installed(pair))


def test_retransmitted_request_gets_identical_response() -> None:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    (init,) = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(init.data, (A_ADDR, 500), pair.now)
    (first,) = pair.b.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(init.data, (A_ADDR, 500), pair.now)
    (second,) = pair.b.engine.datagrams_to_send()
    assert first.data == second.data
    assert len(pair.b.engine.ike_sas()) == 1


def test_late_duplicate_init_after_auth_is_dropped() -> None:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    (init,) = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(init.data, (A_ADDR, 500), pair.now)
    pair.a.engine.receive_datagram(pair.b.engine.datagrams_to_send()[0].data,
                                   ("10.0.0.2", 500), pair.now)
    pair.run()
    assert pair.b.of(IkeSaEstablished)
    pair.b.engine.receive_datagram(init.data, (A_ADDR, 500), pair.now)
    assert pair.b.engine.datagrams_to_send() == []
    assert len(pair.b.engine.ike_sas()) == 1


def _lossy(seed: int, rate: float) -> object:
    r = random.Random(seed)

    def net(d: Datagram, src: str) -> list[Datagram]:
        return [] if r.random() < rate else [d]

    return net


@pytest.mark.parametrize("seed", range(8))
def test_thirty_percent_loss_converges(seed: int) -> None:
    timing = Timing(retransmit_timeout=1.0, retransmit_base=1.5, retransmit_tries=12,
                    dpd_interval=None)
    pair = make_pair(seed=seed, timing=timing, pfs=True)
    pair.network = _lossy(seed, 0.3)  # type: ignore[assignment]
    pair.a.engine.initiate("path", pair.now)
    settle(pair, lambda: bool(pair.a.of(ChildSaInstalled) and pair.b.of(ChildSaInstalled)))
    check_child_pair(*installed(pair))
    assert not pair.a.of(IkeSaFailed) and not pair.b.of(IkeSaFailed)

    ha = pair.a.of(IkeSaEstablished)[0].ike_sa
    child = pair.a.of(ChildSaInstalled)[0].child_sa
    pair.a.engine.rekey_child(ha, child, pair.now)
    settle(pair, lambda: bool(pair.b.of(ChildSaDeleted) and pair.a.of(ChildSaDeleted)))
    check_child_pair(pair.a.of(ChildSaRekeyed)[0].new, pair.b.of(ChildSaRekeyed)[0].new)

    pair.a.engine.delete(ha, pair.now)
    settle(pair, lambda: not pair.a.engine.ike_sas())
    assert pair.a.of(IkeSaDeleted)
    # the responder learns it, or (if every retransmitted answer was lost)
    # its own liveness check ends it: never a half-dead pair
    settle(pair, lambda: not pair.b.engine.ike_sas())
    assert pair.b.engine.ike_sas() == ()


def test_reordered_datagrams_converge() -> None:
    """Hold back every other datagram and deliver it after the next one."""
    pair = make_pair(timing=Timing(dpd_interval=None))
    held: list[Datagram] = []

    def reorder(d: Datagram, src: str) -> list[Datagram]:
        if not held:
            held.append(d)
            return []
        return [d, held.pop()]

    pair.network = reorder
    pair.a.engine.initiate("path", pair.now)
    settle(pair, lambda: bool(pair.a.of(ChildSaInstalled) and pair.b.of(ChildSaInstalled)))
    check_child_pair(*installed(pair))


def test_responses_only_for_outstanding_requests() -> None:
    """A replayed old response is dropped (RFC 7296 §2.3)."""
    pair = make_pair()
    log: list[Datagram] = []

    def record(d: Datagram, src: str) -> list[Datagram]:
        log.append(d)
        return [d]

    pair.network = record
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    responses = [d for d in log if decode_header(d.data).response]
    before = list(pair.a.events)
    for d in responses:
        pair.a.engine.receive_datagram(d.data, ("10.0.0.2", 500), pair.now)
    pair.a.drain()
    assert pair.a.events == before
    assert pair.a.engine.datagrams_to_send() == []


@pytest.mark.parametrize("seed", range(3))
def test_fragmented_ike_auth_with_loss(seed: int) -> None:
    """RFC 7383: RSA certificates in IKE_AUTH travel in SKF fragments of at
    most ``fragment_size`` bytes, reassembled, even when some are lost."""
    from secpath.ike.constants import PayloadType

    timing = Timing(retransmit_timeout=1.0, retransmit_base=1.5, retransmit_tries=12,
                    dpd_interval=None)
    pair = make_pair(seed=seed, auth="rsa", fragment_size=400, timing=timing)
    sizes: list[int] = []
    fragments: list[int] = []
    lossy = _lossy(seed, 0.2)
    assert callable(lossy)

    def net(d: Datagram, src: str) -> list[Datagram]:
        if d.data[18] != 34:  # IKE_SA_INIT is never fragmented (RFC 7383 §2.5)
            sizes.append(len(d.data))
        if d.data[16] == PayloadType.SKF:
            fragments.append(int.from_bytes(d.data[32:34], "big"))
        out: list[Datagram] = lossy(d, src)
        return out

    pair.network = net
    pair.a.engine.initiate("path", pair.now)
    settle(pair, lambda: bool(pair.a.of(ChildSaInstalled) and pair.b.of(ChildSaInstalled)))
    check_child_pair(*installed(pair))
    assert max(sizes) <= 400
    assert max(fragments) >= 3


def test_no_fragments_when_the_peer_does_not_announce_them() -> None:
    pair = make_pair(auth="rsa", fragment_size=400)
    log: list[Datagram] = []

    def strip(d: Datagram, src: str) -> list[Datagram]:
        log.append(d)
        return [d]

    pair.network = strip
    pair.a.engine.initiate("path", pair.now)
    (init,) = pair.a.engine.datagrams_to_send()
    from secpath.ike.constants import NotifyType
    from secpath.ike.message import Message, decode_message, encode_message
    from secpath.ike.payloads import NotifyPayload

    msg = decode_message(init.data)
    kept = tuple(p for p in msg.payloads if not (
        isinstance(p, NotifyPayload)
        and p.notify_type == NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    # B sees no IKEV2_FRAGMENTATION_SUPPORTED: it must not fragment
    pair.b.engine.receive_datagram(encode_message(Message(msg.header, kept)), (A_ADDR, 500),
                                   pair.now)
    (resp,) = pair.b.engine.datagrams_to_send()
    assert decode_message(resp.data).notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is None
