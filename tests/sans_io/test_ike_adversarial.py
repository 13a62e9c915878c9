"""Hostile input: wrong SPIs and message IDs, truncation, corruption,
unknown critical payloads, and a Hypothesis state machine that delivers
datagrams out of order, duplicated, truncated or corrupted while API calls
and timers interleave.  Every case ends in the right notify or a silent
drop; nothing raises out of the engine."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from secpath.errors import LocalError
from secpath.ike.constants import ExchangeType, NotifyType
from secpath.ike.engine import Datagram, IkeEngine
from secpath.ike.events import IkeSaEstablished
from secpath.ike.message import Header, Message, decode_header, decode_message
from secpath.ike.payloads import NotifyPayload, UnknownPayload
from secpath.ike.sa import IkeSa

from .harness import A_ADDR, B_ADDR, Pair, make_pair


def established_pair() -> Pair:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert pair.b.of(IkeSaEstablished)
    return pair


def sa_of(engine: IkeEngine) -> IkeSa:
    (handle,) = engine.ike_sas()
    return engine._sas[handle.to_bytes(8, "big")]


def a_request(pair: Pair) -> Datagram:
    """A's next encrypted request (a DPD), captured, not delivered."""
    (handle,) = pair.a.engine.ike_sas()
    pair.a.engine.dpd(handle, pair.now)
    (d,) = pair.a.engine.datagrams_to_send()
    return d


def test_wrong_spi_gets_only_invalid_ike_spi() -> None:
    pair = established_pair()
    d = a_request(pair)
    data = bytearray(d.data)
    data[8] ^= 0xFF  # responder SPI
    pair.b.engine.receive_datagram(bytes(data), (A_ADDR, 500), pair.now)
    # RFC 7296 §2.21.4: not processed, answered unprotected with INVALID_IKE_SPI
    (answer,) = pair.b.engine.datagrams_to_send()
    reply = decode_message(answer.data)
    assert not reply.encrypted and reply.header.spi_r == bytes(data[8:16])
    assert [p.notify_type for p in reply.all(NotifyPayload)] == [NotifyType.INVALID_IKE_SPI]
    pair.b.engine.receive_datagram(d.data, (A_ADDR, 500), pair.now)
    assert len(pair.b.engine.datagrams_to_send()) == 1  # the genuine one is answered


def test_wrong_message_id_dropped_silently() -> None:
    pair = established_pair()
    d = a_request(pair)
    h = decode_header(d.data)
    for mid in (h.message_id + 1, h.message_id + 1000, 0):
        data = d.data[:20] + mid.to_bytes(4, "big") + d.data[24:]
        pair.b.engine.receive_datagram(data, (A_ADDR, 500), pair.now)
        assert pair.b.engine.datagrams_to_send() == [], mid


def test_truncated_and_corrupted_dropped_silently() -> None:
    pair = established_pair()
    d = a_request(pair)
    for n in range(len(d.data)):
        pair.b.engine.receive_datagram(d.data[:n], (A_ADDR, 500), pair.now)
    for pos in range(28, len(d.data)):
        data = bytearray(d.data)
        data[pos] ^= 0x01
        pair.b.engine.receive_datagram(bytes(data), (A_ADDR, 500), pair.now)
    assert pair.b.engine.datagrams_to_send() == []
    pair.b.drain()
    assert len(pair.b.events) == 2  # only the establishment events
    pair.b.engine.receive_datagram(d.data, (A_ADDR, 500), pair.now)
    assert len(pair.b.engine.datagrams_to_send()) == 1


def test_unknown_critical_payload_answered() -> None:
    """RFC 7296 §2.5: UNSUPPORTED_CRITICAL_PAYLOAD with the payload type."""
    pair = established_pair()
    sa = sa_of(pair.a.engine)
    header = Header(sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, sa.next_request_id,
                    initiator=True, response=False)
    data = sa._encode(header, [UnknownPayload(200, b"x", critical=True)], encrypted=True)
    pair.b.engine.receive_datagram(data, (A_ADDR, 500), pair.now)
    (reply,) = pair.b.engine.datagrams_to_send()
    msg = decode_message(reply.data, sa.sk_in)
    n = msg.notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD)
    assert n is not None and n.data == bytes((200,))


def test_unknown_noncritical_payload_ignored() -> None:
    pair = established_pair()
    sa = sa_of(pair.a.engine)
    header = Header(sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, sa.next_request_id,
                    initiator=True, response=False)
    data = sa._encode(header, [UnknownPayload(200, b"x", critical=False)], encrypted=True)
    pair.b.engine.receive_datagram(data, (A_ADDR, 500), pair.now)
    (reply,) = pair.b.engine.datagrams_to_send()
    msg = decode_message(reply.data, sa.sk_in)
    assert msg.header.response and msg.payloads == ()


def test_request_with_responders_i_flag_dropped() -> None:
    pair = established_pair()
    sa = sa_of(pair.a.engine)
    header = Header(sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, sa.next_request_id,
                    initiator=False, response=False)
    data = sa._encode(header, [], encrypted=True)
    pair.b.engine.receive_datagram(data, (A_ADDR, 500), pair.now)
    assert pair.b.engine.datagrams_to_send() == []


def test_create_child_before_auth_dropped() -> None:
    """Out of order: a CREATE_CHILD_SA on a half-open SA is not in the table."""
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    (init,) = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(init.data, (A_ADDR, 500), pair.now)
    (resp,) = pair.b.engine.datagrams_to_send()
    h = decode_header(resp.data)
    msg = Message(Header(h.spi_i, h.spi_r, ExchangeType.CREATE_CHILD_SA, 1,
                         initiator=True, response=False), ())
    from secpath.ike.message import encode_message

    pair.b.engine.receive_datagram(encode_message(msg), (A_ADDR, 500), pair.now)
    assert pair.b.engine.datagrams_to_send() == []


def test_api_misuse_is_local_error() -> None:
    pair = established_pair()
    try:
        pair.a.engine.rekey_child(12345, 1, pair.now)
    except LocalError:
        pass
    else:
        raise AssertionError("expected LocalError")
    try:
        pair.a.engine.initiate("no-such-rule", pair.now)
    except LocalError:
        pass
    else:
        raise AssertionError("expected LocalError")


# -- the state machine ------------------------------------------------------------


class HostileNetwork(RuleBasedStateMachine):
    """Both engines run; the network is the adversary."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = make_pair(pfs=True)
        self.inflight: list[tuple[str, Datagram]] = []  # (sender address, datagram)
        self.started = False

    def _collect(self) -> None:
        for side in (self.pair.a, self.pair.b):
            for d in side.engine.datagrams_to_send():
                self.inflight.append((side.address, d))
            side.drain()

    def _deliver(self, src: str, data: bytes, port: int) -> None:
        dst = self.pair.b if src == A_ADDR else self.pair.a
        dst.engine.receive_datagram(data, (src, port), self.pair.now, local_port=port)
        self._collect()

    @rule()
    def initiate(self) -> None:
        self.pair.a.engine.initiate("path", self.pair.now)
        self.started = True
        self._collect()

    @precondition(lambda self: self.inflight)
    @rule(i=st.integers(min_value=0), keep=st.booleans())
    def deliver(self, i: int, keep: bool) -> None:
        src, d = self.inflight[i % len(self.inflight)]
        if not keep:
            self.inflight.remove((src, d))
        self._deliver(src, d.data, d.source_port)

    @rule()
    def flush(self) -> None:
        """An honest network for a while: deliver everything, in order."""
        for _ in range(20):
            if not self.inflight:
                return
            batch, self.inflight = self.inflight, []
            for src, d in batch:
                self._deliver(src, d.data, d.source_port)

    @precondition(lambda self: self.inflight)
    @rule(i=st.integers(min_value=0))
    def drop(self, i: int) -> None:
        del self.inflight[i % len(self.inflight)]

    @precondition(lambda self: self.inflight)
    @rule(i=st.integers(min_value=0), cut=st.integers(min_value=0, max_value=600))
    def truncate(self, i: int, cut: int) -> None:
        src, d = self.inflight[i % len(self.inflight)]
        self._deliver(src, d.data[: cut % max(1, len(d.data))], d.source_port)

    @precondition(lambda self: self.inflight)
    @rule(i=st.integers(min_value=0), pos=st.integers(min_value=0), xor=st.integers(1, 255))
    def corrupt(self, i: int, pos: int, xor: int) -> None:
        src, d = self.inflight[i % len(self.inflight)]
        data = bytearray(d.data)
        data[pos % len(data)] ^= xor
        self._deliver(src, bytes(data), d.source_port)

    @precondition(lambda self: self.inflight)
    @rule(i=st.integers(min_value=0), field=st.sampled_from([0, 8, 18, 19, 20]),
          value=st.integers(0, 255))
    def rewrite_header(self, i: int, field: int, value: int) -> None:
        """Wrong SPIs, exchange type, flags or message ID."""
        src, d = self.inflight[i % len(self.inflight)]
        offset = 4 if d.source_port == 4500 else 0
        data = bytearray(d.data)
        if offset + field < len(data):
            data[offset + field] = value
        self._deliver(src, bytes(data), d.source_port)

    @rule(data=st.binary(max_size=120), port=st.sampled_from([500, 4500]))
    def garbage(self, data: bytes, port: int) -> None:
        self._deliver(A_ADDR, data, port)
        self._deliver(B_ADDR, data, port)

    @rule(seconds=st.sampled_from([0.5, 2.0, 10.0, 40.0]))
    def advance(self, seconds: float) -> None:
        self.pair.now += seconds
        self.pair.a.engine.handle_timer(self.pair.now)
        self.pair.b.engine.handle_timer(self.pair.now)
        self._collect()

    @rule(side=st.booleans(), action=st.sampled_from(["rekey_child", "rekey_ike", "dpd",
                                                       "delete", "delete_child"]))
    def api(self, side: bool, action: str) -> None:
        engine = (self.pair.a if side else self.pair.b).engine
        for handle in engine.ike_sas():
            children = engine.child_sas(handle)
            try:
                if action == "rekey_child" and children:
                    engine.rekey_child(handle, children[0], self.pair.now)
                elif action == "rekey_ike":
                    engine.rekey_ike(handle, self.pair.now)
                elif action == "dpd":
                    engine.dpd(handle, self.pair.now)
                elif action == "delete":
                    engine.delete(handle, self.pair.now)
                elif action == "delete_child" and children:
                    engine.delete(handle, self.pair.now, child_sa=children[0])
            except LocalError:
                pass  # e.g. the SA is half-open: API misuse, not a crash
        self._collect()

    @invariant()
    def child_keys_agree(self) -> None:
        """Any Child SA both ends hold (matched by SPI) has the same keys."""
        a_children = {c.outbound_spi: (sa, c) for sa in self.pair.a.engine._sas.values()
                      for c in sa.children.values()}
        for sa_b in self.pair.b.engine._sas.values():
            for c in sa_b.children.values():
                if c.inbound_spi in a_children:
                    sa_a, ca = a_children[c.inbound_spi]
                    assert ca.inbound_spi == c.outbound_spi
                    out_a = sa_a.esp_parameters(ca)[1]
                    in_b = sa_b.esp_parameters(c)[0]
                    assert out_a.encryption_key == in_b.encryption_key
                    assert out_a.integrity_key == in_b.integrity_key

    def teardown(self) -> None:
        # reached states are recorded so the test can show it covers them
        for side in (self.pair.a, self.pair.b):
            for e in side.events:
                REACHED.add(type(e).__name__)

    @invariant()
    def timers_are_finite_or_none(self) -> None:
        for side in (self.pair.a, self.pair.b):
            t = side.engine.next_timer()
            assert t is None or t == t  # not NaN


REACHED: set[str] = set()
TestHostileNetwork = HostileNetwork.TestCase
TestHostileNetwork.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_authenticated_malformed_request_gets_invalid_syntax() -> None:
    """RFC 7296 §2.21.2: the SK payload verifies, its inner chain does not parse."""
    from secpath.ike.constants import PayloadType

    pair = established_pair()
    sa = sa_of(pair.a.engine)
    header = Header(sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, sa.next_request_id,
                    initiator=True, response=False)
    data = sa._encode(header, [UnknownPayload(PayloadType.TSI, b"\x01")], encrypted=True)
    pair.b.engine.receive_datagram(data, (A_ADDR, 500), pair.now)
    (reply,) = pair.b.engine.datagrams_to_send()
    msg = decode_message(reply.data, sa.sk_in)
    assert msg.notify(NotifyType.INVALID_SYNTAX) is not None


def test_hostile_network_rules_reach_the_interesting_states() -> None:
    """The machine's own rules, scripted: they do establish, rekey both SA
    kinds and delete, with the adversary's moves in between."""
    m = HostileNetwork()
    m.initiate()
    m.deliver(0, keep=True)  # a duplicate of the first IKE_SA_INIT on the way
    m.flush()
    m.api(True, "rekey_child")
    m.corrupt(0, 40, 0xFF)
    m.truncate(0, 30)
    m.flush()
    m.api(False, "rekey_ike")
    m.rewrite_header(0, 20, 7)
    m.flush()
    m.api(True, "dpd")
    m.garbage(b"\x00" * 40, 4500)
    m.flush()
    m.child_keys_agree()
    m.api(False, "delete")
    m.flush()
    m.advance(40.0)
    m.teardown()
    assert {"IkeSaEstablished", "ChildSaInstalled", "ChildSaRekeyed", "IkeSaRekeyed",
            "IkeSaDeleted", "ChildSaDeleted"} <= REACHED
    assert m.pair.a.engine.ike_sas() == () and m.pair.b.engine.ike_sas() == ()


def test_unknown_critical_payload_in_ike_sa_init() -> None:
    """RFC 7296 §2.5, before any state: a stateless UNSUPPORTED_CRITICAL_PAYLOAD."""
    from secpath.ike.message import encode_message

    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    (init,) = pair.a.engine.datagrams_to_send()
    msg = decode_message(init.data)
    bad = Message(msg.header, (*msg.payloads, UnknownPayload(222, b"?", critical=True)))
    pair.b.engine.receive_datagram(encode_message(bad), (A_ADDR, 500), pair.now)
    (reply,) = pair.b.engine.datagrams_to_send()
    n = decode_message(reply.data).notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD)
    assert n is not None and n.data == bytes((222,))
    assert pair.b.engine.ike_sas() == ()


def test_higher_major_version_answered_with_invalid_major_version() -> None:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    (init,) = pair.a.engine.datagrams_to_send()
    data = init.data[:17] + b"\x30" + init.data[18:]  # version 3.0
    pair.b.engine.receive_datagram(data, (A_ADDR, 500), pair.now)
    (reply,) = pair.b.engine.datagrams_to_send()
    msg = decode_message(reply.data)
    assert msg.header.major_version == 2
    assert msg.notify(NotifyType.INVALID_MAJOR_VERSION) is not None
    assert pair.b.engine.ike_sas() == ()
