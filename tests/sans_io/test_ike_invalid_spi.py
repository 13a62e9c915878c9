"""Messages the engine cannot place: INVALID_IKE_SPI for requests to an IKE SA
it does not know (RFC 7296 §2.21.4), INVALID_SPI for ESP with an unknown SPI
(§1.5), both rate-limited; unprotected messages on a keyed IKE SA are dropped."""

from __future__ import annotations

import pytest

from secpath.errors import LocalError
from secpath.ike.config import Timing
from secpath.ike.constants import ExchangeType, NotifyType
from secpath.ike.events import ChildSaDeleted, ChildSaInstalled, IkeSaDeleted, IkeSaEstablished
from secpath.ike.message import Header, Message, decode_message, encode_message
from secpath.ike.payloads import DeletePayload, NotifyPayload
from secpath.ike.ratelimit import TokenBucket
from secpath.ike.state import State

from .harness import A_ADDR, Pair, make_pair

SPI_I, SPI_R = b"\x11" * 8, b"\x22" * 8
PEER = (A_ADDR, 500)


def raw(exchange: int, message_id: int, *, response: bool, initiator: bool = True,
        spi_r: bytes = SPI_R) -> bytes:
    return encode_message(Message(Header(SPI_I, spi_r, exchange, message_id,
                                         initiator=initiator, response=response), ()))


def established(timing: Timing | None = None) -> tuple[Pair, int, int]:
    pair = make_pair(timing=timing) if timing is not None else make_pair()
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    (b_est,) = pair.b.of(IkeSaEstablished)
    return pair, handle, b_est.ike_sa


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(10.4) is False  # 0.8 of a token back
    assert bucket.take(10.5) is True
    assert bucket.take(5.0) is False  # time going back gives nothing
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst
    never = TokenBucket(rate=0.0, burst=0)
    assert never.take(0.0) is False and never.take(1e9) is False
    with pytest.raises(LocalError):
        TokenBucket(rate=-1.0, burst=1)
    with pytest.raises(LocalError):
        Timing(notify_burst=-1)


@pytest.mark.parametrize("exchange", [ExchangeType.INFORMATIONAL, ExchangeType.CREATE_CHILD_SA,
                                      ExchangeType.IKE_AUTH])
@pytest.mark.parametrize("initiator", [True, False])
def test_request_for_unknown_ike_sa_gets_invalid_ike_spi(exchange: int, initiator: bool) -> None:
    engine = make_pair().b.engine
    engine.receive_datagram(raw(exchange, 7, response=False, initiator=initiator), PEER, 1.0)
    (out,) = engine.datagrams_to_send()
    assert out.destination == PEER and out.source_port == 500
    reply = decode_message(out.data)  # no SK payload: decodes without keys
    # RFC 7296 §2.21.4: same SPIs, Message ID copied, a response, unprotected
    h = reply.header
    assert (h.spi_i, h.spi_r, h.exchange_type, h.message_id) == (SPI_I, SPI_R, exchange, 7)
    assert h.response and h.initiator is not initiator and not reply.encrypted
    assert reply.payloads == (NotifyPayload(NotifyType.INVALID_IKE_SPI),)
    assert engine.counters["invalid_spis"] == 1 and engine.counters["invalid_ike_spi_sent"] == 1


def test_invalid_ike_spi_answers_4500_with_the_marker() -> None:
    engine = make_pair().b.engine
    engine.receive_datagram(bytes(4) + raw(ExchangeType.INFORMATIONAL, 3, response=False),
                            (A_ADDR, 4500), 1.0, local_port=4500)
    (out,) = engine.datagrams_to_send()
    assert out.source_port == 4500 and out.destination == (A_ADDR, 4500)
    assert out.data[:4] == bytes(4)
    assert decode_message(out.data[4:]).notify(NotifyType.INVALID_IKE_SPI) is not None


def test_responses_and_init_requests_for_unknown_sas_get_nothing() -> None:
    engine = make_pair().b.engine
    engine.receive_datagram(raw(ExchangeType.INFORMATIONAL, 3, response=True), PEER, 1.0)
    engine.receive_datagram(raw(ExchangeType.CREATE_CHILD_SA, 4, response=True), PEER, 1.0)
    # an IKE_SA_INIT with a responder SPI is not a request to start an IKE SA
    engine.receive_datagram(raw(ExchangeType.IKE_SA_INIT, 0, response=False), PEER, 1.0)
    assert engine.datagrams_to_send() == []
    assert engine.counters["invalid_spis"] == 3 and engine.counters["invalid_ike_spi_sent"] == 0


def test_invalid_ike_spi_is_rate_limited() -> None:
    timing = Timing(notify_burst=2, notify_rate=0.5)
    engine = make_pair(timing=timing).b.engine

    def burst(now: float, n: int) -> int:
        for i in range(n):
            engine.receive_datagram(raw(ExchangeType.INFORMATIONAL, i, response=False), PEER, now)
        return len(engine.datagrams_to_send())

    assert burst(100.0, 10) == 2
    assert engine.counters["notifies_limited"] == 8
    assert burst(101.0, 3) == 0  # half a token back
    assert burst(102.0, 3) == 1
    assert burst(200.0, 10) == 2  # refilled to the burst, no more
    assert engine.counters["invalid_ike_spi_sent"] == 5


def test_peer_that_forgot_the_ike_sa_answers_and_we_keep_ours() -> None:
    """B restarts and forgets the IKE SA: A's liveness check gets an unprotected
    INVALID_IKE_SPI, which proves nothing (anyone could send it), so A keeps
    waiting for an authenticated answer and decides by its retransmissions."""
    pair, handle, _ = established()
    fresh = make_pair(seed=9).b.engine
    pair.b.engine = fresh
    pair.a.engine.dpd(handle, pair.now)
    pair.run()
    assert fresh.counters["invalid_ike_spi_sent"] == 1
    assert pair.a.engine.ike_sa_state(handle) is State.ESTABLISHED
    assert pair.a.engine._sas[handle.to_bytes(8, "big")].outstanding is not None
    pair.advance(120.0)
    assert pair.a.engine.ike_sa_state(handle) is None  # the retransmissions ran out


def test_unprotected_message_on_a_keyed_ike_sa_is_dropped() -> None:
    """Past IKE_SA_INIT every message is in an SK payload (RFC 7296 §3.14):
    a clear-text Delete with the right SPIs and Message ID does nothing."""
    pair, _, b_handle = established()
    sa = pair.b.engine._sas[b_handle.to_bytes(8, "big")]
    forged = Message(Header(sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, sa.peer_next_id,
                            initiator=True, response=False), (DeletePayload(1),))
    pair.b.engine.receive_datagram(encode_message(forged), (A_ADDR, 500), pair.now)
    pair.b.drain()
    assert pair.b.engine.ike_sa_state(b_handle) is State.ESTABLISHED
    assert pair.b.of(IkeSaDeleted) == [] and pair.b.engine.datagrams_to_send() == []


def test_invalid_spi_deletes_the_child_sa_the_peer_lost() -> None:
    """A got ESP on an SPI it does not have: INVALID_SPI over the IKE SA makes B
    drop the Child SA that sends on it and Delete its other half (RFC 7296 §1.5)."""
    pair, handle, b_handle = established()
    (a_child,) = pair.a.of(ChildSaInstalled)
    (b_child,) = pair.b.of(ChildSaInstalled)
    lost = a_child.inbound.spi  # B's outbound SPI
    assert pair.a.engine.invalid_spi(handle, lost, pair.now)
    (out,) = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(out.data, (A_ADDR, 500), pair.now)
    pair.b.drain()
    (gone,) = pair.b.of(ChildSaDeleted)
    assert gone.child_sa == b_child.child_sa and gone.outbound_spi == lost
    assert "INVALID_SPI" in gone.reason
    pair.run()
    (a_gone,) = pair.a.of(ChildSaDeleted)
    assert a_gone.child_sa == a_child.child_sa
    assert pair.a.engine.child_sas(handle) == () and pair.b.engine.child_sas(b_handle) == ()
    # both IKE SAs stay
    assert pair.a.engine.ike_sa_state(handle) is State.ESTABLISHED
    assert pair.b.engine.ike_sa_state(b_handle) is State.ESTABLISHED
    assert pair.a.engine.counters["invalid_spi_sent"] == 1


def test_invalid_spi_for_an_spi_nobody_has_changes_nothing() -> None:
    pair, handle, b_handle = established()
    assert pair.a.engine.invalid_spi(handle, 0x0BADC0DE, pair.now)
    pair.run()
    assert pair.b.of(ChildSaDeleted) == [] and len(pair.b.engine.child_sas(b_handle)) == 1


def test_invalid_spi_is_rate_limited_per_ike_sa() -> None:
    pair, handle, _ = established(timing=Timing(notify_burst=1, notify_rate=0.1, dpd_interval=None))
    assert pair.a.engine.invalid_spi(handle, 0x1000, pair.now)
    assert not pair.a.engine.invalid_spi(handle, 0x1001, pair.now + 1)
    assert pair.a.engine.invalid_spi(handle, 0x1002, pair.now + 10)
    assert pair.a.engine.counters["notifies_limited"] == 1
    assert not pair.a.engine.invalid_spi(0x1234, 0x1000, pair.now + 100)  # no such IKE SA


def test_no_invalid_spi_while_a_child_sa_is_being_made() -> None:
    """The peer may send on a new SPI before its CREATE_CHILD_SA answer reaches us."""
    pair, handle, _ = established()
    (a_child,) = pair.a.of(ChildSaInstalled)
    pair.a.engine.rekey_child(handle, a_child.child_sa, pair.now)
    assert not pair.a.engine.invalid_spi(handle, 0x4242, pair.now)
    pair.run()
    assert pair.a.engine.invalid_spi(handle, 0x4242, pair.now)



def test_invalid_spi_reaches_a_child_sa_of_another_ike_sa_with_the_peer() -> None:
    """A made a second IKE SA with B (say after losing the first one's IKE_AUTH
    answer): its INVALID_SPI on the new IKE SA drops B's Child SA of the old one."""
    pair, first, _ = established()
    second = pair.a.engine.initiate("path", pair.now)
    pair.run()
    old_a, new_a = pair.a.of(ChildSaInstalled)
    assert (old_a.ike_sa, new_a.ike_sa) == (first, second)
    old_b = next(e for e in pair.b.of(ChildSaInstalled) if e.outbound.spi == old_a.inbound.spi)
    assert pair.a.engine.invalid_spi(second, old_a.inbound.spi, pair.now)
    pair.run()
    (gone,) = [e for e in pair.b.of(ChildSaDeleted) if "INVALID_SPI" in e.reason]
    assert gone.child_sa == old_b.child_sa and gone.ike_sa == old_b.ike_sa
    assert len(pair.b.engine.child_sas(old_b.ike_sa)) == 0
    assert pair.a.engine.child_sas(second) == (new_a.child_sa,)  # the new pair is untouched
