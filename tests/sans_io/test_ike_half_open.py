"""The responder's count of half-open IKE SAs (RFC 7296 §2.6): kept as a
counter, not a scan per IKE_SA_INIT, it must follow every way out of
INIT_DONE (authenticated, failed, timed out, deleted) and never count a
retransmitted IKE_SA_INIT twice."""

from __future__ import annotations

from secpath.ike.config import Credentials, Timing
from secpath.ike.constants import NotifyType
from secpath.ike.engine import IkeEngine
from secpath.ike.events import IkeSaEstablished, IkeSaFailed
from secpath.ike.message import decode_message
from secpath.ike.payloads import SaPayload
from secpath.secret import Secret

from .harness import A_ADDR, B_ADDR, Pair, make_config, make_pair

THRESHOLD = 2
TIMING = Timing(half_open_threshold=THRESHOLD, dpd_interval=None)


def half_open(engine: IkeEngine) -> int:
    """The engine's counter, checked against the SAs themselves."""
    count = engine._half_open
    assert count == engine.negotiations()[1]
    return count


def first_init(pair: Pair) -> bytes:
    """A new IKE_SA_INIT request from A (not delivered)."""
    pair.a.engine.initiate("path", pair.now)
    out = pair.a.engine.datagrams_to_send()
    assert len(out) == 1
    return out[0].data


def answer(pair: Pair, data: bytes) -> list[bytes]:
    pair.b.engine.receive_datagram(data, (A_ADDR, 500), pair.now)
    return [d.data for d in pair.b.engine.datagrams_to_send()]


def is_cookie(reply: bytes) -> bool:
    return decode_message(reply).notify(NotifyType.COOKIE) is not None


def test_counted_once_per_sa_and_cookie_at_the_threshold() -> None:
    pair = make_pair(timing=TIMING)
    first = first_init(pair)
    assert not is_cookie(answer(pair, first)[0])
    assert not is_cookie(answer(pair, first)[0])  # retransmission (§2.1): the same SA
    assert half_open(pair.b.engine) == 1
    assert not is_cookie(answer(pair, first_init(pair))[0])
    assert half_open(pair.b.engine) == THRESHOLD
    assert is_cookie(answer(pair, first_init(pair))[0])  # §2.6
    assert half_open(pair.b.engine) == THRESHOLD


def test_timed_out_sas_leave_the_count() -> None:
    pair = make_pair(timing=TIMING)
    for _ in range(THRESHOLD):
        answer(pair, first_init(pair))
    assert half_open(pair.b.engine) == THRESHOLD
    pair.now += TIMING.half_open_timeout + 1
    pair.b.engine.handle_timer(pair.now)
    assert half_open(pair.b.engine) == 0
    reply = answer(pair, first_init(pair))[0]
    assert not is_cookie(reply) and decode_message(reply).get(SaPayload) is not None
    assert half_open(pair.b.engine) == 1


def test_established_and_failed_sas_leave_the_count() -> None:
    pair = make_pair(timing=TIMING)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert len(pair.b.of(IkeSaEstablished)) == 1
    assert half_open(pair.b.engine) == 0

    wrong = make_pair(timing=TIMING, a_config=make_config(
        A_ADDR, B_ADDR, timing=TIMING, creds=Credentials(psk=Secret(b"wrong"))))
    for _ in range(THRESHOLD + 1):
        wrong.a.engine.initiate("path", wrong.now)
        wrong.run()
        assert half_open(wrong.b.engine) == 0  # the AUTH failure closed it
    failed = wrong.b.of(IkeSaFailed)
    assert len(failed) == THRESHOLD + 1
    assert all(f.notify == NotifyType.AUTHENTICATION_FAILED for f in failed)


def test_deleted_half_open_sa_leaves_the_count() -> None:
    pair = make_pair(timing=TIMING)
    answer(pair, first_init(pair))
    (handle,) = pair.b.engine.ike_sas()
    assert half_open(pair.b.engine) == 1
    pair.b.engine.delete(handle, pair.now)  # queued: nothing is sent before IKE_AUTH
    assert half_open(pair.b.engine) == 1
    sa = pair.b.engine._sas[handle.to_bytes(8, "big")]
    sa.close("deleted")
    assert half_open(pair.b.engine) == 0
    sa.close("deleted again")  # once only
    assert half_open(pair.b.engine) == 0
