"""Negotiation paths: proposal mismatch, INVALID_KE_PAYLOAD retry, COOKIE,
NAT detection and the float to 4500, ESN, modes, narrowing, authentication
failures, lifetimes and the simultaneous Child SA rekey."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress

import pytest

from secpath.ike.config import Timing
from secpath.ike.constants import NotifyType
from secpath.ike.engine import Datagram
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaFailed,
    ChildSaInstalled,
    ChildSaRekeyed,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
    IkeSaRekeyed,
)
from secpath.ike.message import decode_header, decode_message
from secpath.ike.payloads import NotifyPayload
from secpath.policy.model import (
    Address,
    Filter,
    KeyExchangeMethod,
    PortRange,
    SecurityMethod,
)

from . import pki
from .harness import A_ADDR, B_ADDR, Pair, Side, credentials, make_config, make_pair
from .test_ike_handshake import check_child_pair, installed


def established(pair: Pair) -> bool:
    return bool(pair.a.of(IkeSaEstablished)) and bool(pair.b.of(IkeSaEstablished))


def test_no_proposal_chosen_reports_both_sides() -> None:
    pair = make_pair(
        a_config=make_config(A_ADDR, B_ADDR, suite="aes128-sha256-modp2048"),
        b_config=make_config(B_ADDR, A_ADDR, suite="aes256gcm16-prfsha384-ecp384"),
    )
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    fa = pair.a.of(IkeSaFailed)
    fb = pair.b.of(IkeSaFailed)
    assert len(fa) == 1 and len(fb) == 1
    assert fa[0].notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert fa[0].local_proposals == ("aes128-sha256-modp2048",)
    assert fb[0].local_proposals == ("aes256gcm16-prfsha384-ecp384",)
    assert fb[0].remote_proposals == ("aes128-sha256-modp2048",)
    assert "NO_PROPOSAL_CHOSEN" in fb[0].reason
    assert pair.a.engine.ike_sas() == () and pair.b.engine.ike_sas() == ()


def test_invalid_ke_payload_retry_with_peer_group() -> None:
    a = make_config(A_ADDR, B_ADDR, ike_methods=(
        KeyExchangeMethod("sha256", "aes128", 14), KeyExchangeMethod("sha256", "aes128", 19)))
    b = make_config(B_ADDR, A_ADDR, ike_methods=(KeyExchangeMethod("sha256", "aes128", 19),))
    pair = make_pair(a_config=a, b_config=b)
    pair.a.engine.initiate("path", pair.now)
    first = pair.a.engine.datagrams_to_send()
    assert len(first) == 1
    pair.b.engine.receive_datagram(first[0].data, (A_ADDR, 500), pair.now)
    reply = pair.b.engine.datagrams_to_send()
    msg = decode_message(reply[0].data)
    n = msg.notify(NotifyType.INVALID_KE_PAYLOAD)
    assert n is not None and n.data == (19).to_bytes(2, "big")
    assert pair.b.engine.ike_sas() == ()  # stateless
    pair.a.engine.receive_datagram(reply[0].data, (B_ADDR, 500), pair.now)
    pair.run()
    assert established(pair)
    assert pair.a.of(IkeSaEstablished)[0].proposal == "aes128-sha256-ecp256"


def test_cookie_demanded_over_the_half_open_threshold() -> None:
    timing = Timing(half_open_threshold=0)
    pair = make_pair(timing=timing)
    pair.a.engine.initiate("path", pair.now)
    first = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(first[0].data, (A_ADDR, 500), pair.now)
    reply = pair.b.engine.datagrams_to_send()
    cookie = decode_message(reply[0].data).notify(NotifyType.COOKIE)
    assert cookie is not None and pair.b.engine.ike_sas() == ()
    pair.a.engine.receive_datagram(reply[0].data, (B_ADDR, 500), pair.now)
    again = pair.a.engine.datagrams_to_send()
    retry = decode_message(again[0].data)
    assert isinstance(retry.payloads[0], NotifyPayload)
    assert retry.payloads[0].notify_type == NotifyType.COOKIE  # RFC 7296 §2.6: first
    pair.b.engine.receive_datagram(again[0].data, (A_ADDR, 500), pair.now)
    pair.run()
    assert established(pair)


def test_cookie_from_another_address_is_refused() -> None:
    pair = make_pair(timing=Timing(half_open_threshold=0))
    pair.a.engine.initiate("path", pair.now)
    first = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(first[0].data, (A_ADDR, 500), pair.now)
    reply = pair.b.engine.datagrams_to_send()
    pair.a.engine.receive_datagram(reply[0].data, (B_ADDR, 500), pair.now)
    again = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(again[0].data, ("10.9.9.9", 500), pair.now)
    out = pair.b.engine.datagrams_to_send()
    assert decode_message(out[0].data).notify(NotifyType.COOKIE) is not None
    assert pair.b.engine.ike_sas() == ()


def test_nat_detected_floats_to_4500() -> None:
    pair = make_pair(
        a_config=make_config(A_ADDR, B_ADDR),
        b_config=make_config(B_ADDR, A_ADDR, filters=(Filter(Address.me(), Address.any()),)),
    )
    pair.nat = True
    ports: list[int] = []

    def watch(d: Datagram, src: str) -> list[Datagram]:
        if src == A_ADDR:
            ports.append(d.destination[1])
        return [d]

    pair.network = watch
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert established(pair)
    ea = pair.a.of(IkeSaEstablished)[0]
    eb = pair.b.of(IkeSaEstablished)[0]
    assert ea.nat_local and not ea.nat_remote
    assert eb.nat_remote and not eb.nat_local
    assert ports[0] == 500 and ports[1] == 4500
    a, b = installed(pair)
    assert a.outbound.udp_encapsulation == (4500, 4500)
    assert b.outbound.udp_encapsulation == (4500, 44500)  # the NAT's mapping
    check_child_pair(a, b)


def test_forced_udp_encapsulation_without_nat() -> None:
    pair = make_pair(
        a_config=make_config(A_ADDR, B_ADDR, force_udp_encapsulation=True),
        b_config=make_config(B_ADDR, A_ADDR),
    )
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    a, b = installed(pair)
    assert a.outbound.udp_encapsulation == (4500, 4500)
    assert b.outbound.udp_encapsulation == (4500, 4500)
    check_child_pair(a, b)


@pytest.mark.parametrize(("a_esn", "b_esn", "expect"), [
    ((True,), (False, True), True),
    ((False, True), (False, True), False),
    ((True, False), (True,), True),
    ((False,), (False,), False),
])
def test_esn_negotiation(a_esn: tuple[bool, ...], b_esn: tuple[bool, ...], expect: bool) -> None:
    pair = make_pair(a_config=make_config(A_ADDR, B_ADDR, esn=a_esn),
                     b_config=make_config(B_ADDR, A_ADDR, esn=b_esn))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    a, b = installed(pair)
    assert a.outbound.esn is expect and b.inbound.esn is expect
    check_child_pair(a, b)


def test_esn_mismatch_fails_the_child_only() -> None:
    pair = make_pair(a_config=make_config(A_ADDR, B_ADDR, esn=(True,)),
                     b_config=make_config(B_ADDR, A_ADDR, esn=(False,)))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert established(pair)
    assert not pair.a.of(ChildSaInstalled)
    fa = pair.a.of(ChildSaFailed)
    assert fa and fa[0].notify == NotifyType.NO_PROPOSAL_CHOSEN
    fb = pair.b.of(ChildSaFailed)
    assert fb and fb[0].remote_proposals == ("aes128-sha256-esn",)


def test_mode_mismatch_refused() -> None:
    pair = make_pair(a_config=make_config(A_ADDR, B_ADDR, mode="transport"),
                     b_config=make_config(B_ADDR, A_ADDR, mode="tunnel"))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert established(pair) and not pair.a.of(ChildSaInstalled)
    assert pair.b.of(ChildSaFailed)


def test_traffic_selectors_narrowed() -> None:
    """A asks for its /24 to anything; B allows only TCP 443 between the hosts."""
    a = make_config(A_ADDR, B_ADDR, mode="tunnel", filters=(
        Filter(Address.of("10.0.0.0/24"), Address.any()),))
    b = make_config(B_ADDR, A_ADDR, mode="tunnel", filters=(
        Filter(Address.me(), Address.of(A_ADDR), protocol=6, source_port=PortRange(443, 443)),))
    pair = make_pair(a_config=a, b_config=b)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    a_ev, b_ev = installed(pair)
    ts = a_ev.local_ts[0]
    assert (str(ts.start), str(ts.end), ts.protocol) == (A_ADDR, A_ADDR, 6)
    rts = a_ev.remote_ts[0]
    assert (str(rts.start), rts.protocol, rts.start_port, rts.end_port) == (B_ADDR, 6, 443, 443)
    assert b_ev.local_ts == a_ev.remote_ts and b_ev.remote_ts == a_ev.local_ts


def test_traffic_selectors_disjoint_ts_unacceptable() -> None:
    a = make_config(A_ADDR, B_ADDR, filters=(Filter(Address.me(), Address.of("10.5.0.0/16")),))
    pair = make_pair(a_config=a)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert established(pair)
    assert [e.notify for e in pair.a.of(ChildSaFailed)] == [
        NotifyType.TS_UNACCEPTABLE]


def test_several_filters_give_several_child_sas() -> None:
    filters = (Filter(Address.me(), Address.of(B_ADDR), protocol=6),
               Filter(Address.me(), Address.of(B_ADDR), protocol=17))
    pair = make_pair(filters=None, a_config=make_config(A_ADDR, B_ADDR, filters=filters),
                     b_config=make_config(B_ADDR, A_ADDR, filters=tuple(
                         Filter(Address.me(), Address.of(A_ADDR), protocol=p) for p in (6, 17))))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    protos = sorted(e.local_ts[0].protocol for e in pair.a.of(ChildSaInstalled))
    assert protos == [6, 17]
    assert len(pair.b.of(ChildSaInstalled)) == 2


# -- authentication failures ------------------------------------------------------


def _auth_fails(pair: Pair) -> None:
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert not pair.b.of(IkeSaEstablished)
    assert not pair.a.of(IkeSaEstablished)
    fa = pair.a.of(IkeSaFailed)
    fb = pair.b.of(IkeSaFailed)
    assert fa and fa[0].notify == NotifyType.AUTHENTICATION_FAILED
    assert fb and fb[0].notify == NotifyType.AUTHENTICATION_FAILED
    assert pair.a.engine.ike_sas() == () and pair.b.engine.ike_sas() == ()


def test_wrong_psk() -> None:
    from secpath.ike.config import Credentials
    from secpath.secret import Secret

    _auth_fails(make_pair(a_config=make_config(A_ADDR, B_ADDR,
                                               creds=Credentials(psk=Secret(b"wrong")))))


def test_certificate_from_another_ca() -> None:
    _auth_fails(make_pair(a_config=make_config(
        A_ADDR, B_ADDR, auth="ecdsa", creds=credentials("ecdsa", A_ADDR, ca_name="B"))))


def test_expired_certificate() -> None:
    creds = credentials("rsa", A_ADDR, not_after=datetime.datetime(2029, 1, 1,
                                                                   tzinfo=datetime.UTC))
    _auth_fails(make_pair(a_config=make_config(A_ADDR, B_ADDR, auth="rsa", creds=creds)))


def test_certificate_for_another_identity() -> None:
    creds = credentials("ecdsa", "10.7.7.7")
    a_cfg = make_config(A_ADDR, B_ADDR, auth="ecdsa", creds=creds)
    _auth_fails(make_pair(a_config=a_cfg))


def test_unexpected_remote_identity() -> None:
    _auth_fails(make_pair(b_config=make_config(B_ADDR, A_ADDR, remote_id="10.0.0.99")))


def test_psk_against_certificate_rule() -> None:
    pair = make_pair(a_config=make_config(A_ADDR, B_ADDR, auth="psk"),
                     b_config=make_config(B_ADDR, A_ADDR, auth="rsa"))
    _auth_fails(pair)


def test_fqdn_and_email_identities_with_certificates() -> None:
    a_creds = credentials("ecdsa", A_ADDR, dns="a.example.com")
    b_creds = credentials("rsa", B_ADDR, email="b@example.com")
    pair = make_pair(
        a_config=make_config(A_ADDR, B_ADDR, auth="ecdsa", creds=a_creds,
                             local_id="a.example.com", remote_id="b@example.com"),
        b_config=make_config(B_ADDR, A_ADDR, auth="rsa", creds=b_creds,
                             local_id="b@example.com", remote_id="a.example.com"),
    )
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert pair.a.of(IkeSaEstablished)[0].remote_id == "b@example.com"
    assert pair.b.of(IkeSaEstablished)[0].remote_id == "a.example.com"


def test_dn_identity_with_certificate() -> None:
    a_creds = credentials("ecdsa", A_ADDR)
    assert a_creds.certificate is not None
    dn = ", ".join(r.rfc4514_string() for r in a_creds.certificate.subject.rdns)
    pair = make_pair(
        a_config=make_config(A_ADDR, B_ADDR, auth="ecdsa", creds=a_creds, local_id=dn),
        b_config=make_config(B_ADDR, A_ADDR, auth="ecdsa", remote_id=dn),
    )
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert pair.b.of(IkeSaEstablished)[0].remote_id == dn


def test_ipv6_peers() -> None:
    a6, b6 = "2001:db8::1", "2001:db8::2"
    pair = make_pair(a_config=make_config(a6, b6, auth="ecdsa"),
                     b_config=make_config(b6, a6, auth="ecdsa"))
    pair.a.address, pair.b.address = a6, b6
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    a, _ = installed(pair)
    assert str(a.local_ts[0].start) == a6
    assert ipaddress.ip_address(pair.b.of(IkeSaEstablished)[0].remote_id) == \
        ipaddress.ip_address(a6)


# -- lifetimes and collisions ---------------------------------------------------------


def test_soft_lifetime_rekeys_and_hard_lifetime_deletes() -> None:
    esp = SecurityMethod("aes128gcm", "none", lifetime_s=100)
    timing = Timing(dpd_interval=None, rekey_jitter=0.0)
    pair = make_pair(esp_methods=(esp,), timing=timing)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    start = pair.now
    pair.advance(95)  # soft lifetime at 90 s: one rekey, by whoever is first
    rekeyed = pair.a.of(ChildSaRekeyed) + pair.b.of(ChildSaRekeyed)
    assert rekeyed and pair.now - start == 95
    a_children = [c for h in pair.a.engine.ike_sas() for c in pair.a.engine.child_sas(h)]
    b_children = [c for h in pair.b.engine.ike_sas() for c in pair.b.engine.child_sas(h)]
    assert len(a_children) == 1 and len(b_children) == 1


def test_ike_lifetime_soft_rekeys() -> None:
    from secpath.policy.model import KeyExchange  # noqa: F401

    timing = Timing(dpd_interval=None, rekey_jitter=0.0)
    a = make_config(A_ADDR, B_ADDR, timing=timing)
    b = make_config(B_ADDR, A_ADDR, timing=timing)
    a = type(a)(**{**{f: getattr(a, f) for f in a.__dataclass_fields__},
                   "key_exchange": type(a.key_exchange)(a.key_exchange.methods, lifetime_s=200)})
    pair = make_pair(a_config=a, b_config=b)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    pair.advance(190)
    assert pair.a.of(IkeSaRekeyed) and pair.b.of(IkeSaRekeyed)
    assert len(pair.a.engine.ike_sas()) == 1 and len(pair.b.engine.ike_sas()) == 1
    (h,) = pair.a.engine.ike_sas()
    assert len(pair.a.engine.child_sas(h)) == 1


def test_hard_lifetime_deletes_child() -> None:
    esp = SecurityMethod("aes128gcm", "none", lifetime_s=100)
    pair = make_pair(esp_methods=(esp,), timing=Timing(dpd_interval=None, rekey_jitter=0.0))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    # drop everything: the rekey cannot complete, the hard lifetime deletes
    pair.network = lambda d, src: []
    pair.advance(101)
    deleted = pair.a.of(ChildSaDeleted)
    assert [d.reason for d in deleted] == ["hard lifetime expired"]
    assert not pair.a.of(IkeSaFailed)  # the IKE SA is still retrying


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_simultaneous_child_rekey(seed: int) -> None:
    """RFC 7296 §2.8.1: both ends rekey at once; one redundant SA is deleted
    and both ends end with the same single pair."""
    pair = make_pair(seed=seed, pfs=True)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    a_ev, b_ev = installed(pair)
    ha = pair.a.of(IkeSaEstablished)[0].ike_sa
    hb = pair.b.of(IkeSaEstablished)[0].ike_sa
    pair.a.engine.rekey_child(ha, a_ev.child_sa, pair.now)
    pair.b.engine.rekey_child(hb, b_ev.child_sa, pair.now)
    pair.run()
    a_children = pair.a.engine.child_sas(ha)
    b_children = pair.b.engine.child_sas(hb)
    assert len(a_children) == 1 and len(b_children) == 1, (pair.a.events, pair.b.events)
    a_sa = pair.a.engine._sas[ha.to_bytes(8, "big")].children[a_children[0]]
    b_sa = pair.b.engine._sas[hb.to_bytes(8, "big")].children[b_children[0]]
    assert a_sa.outbound_spi == b_sa.inbound_spi and b_sa.outbound_spi == a_sa.inbound_spi
    assert a_sa.inbound_spi not in (a_ev.child_sa,)
    assert pair.a.engine._sas[ha.to_bytes(8, "big")].installed(a_sa).outbound.encryption_key \
        == pair.b.engine._sas[hb.to_bytes(8, "big")].installed(b_sa).inbound.encryption_key


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_simultaneous_ike_rekey_settles(seed: int) -> None:
    pair = make_pair(seed=seed, timing=Timing(dpd_interval=None))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    ha = pair.a.of(IkeSaEstablished)[0].ike_sa
    hb = pair.b.of(IkeSaEstablished)[0].ike_sa
    pair.a.engine.rekey_ike(ha, pair.now)
    pair.b.engine.rekey_ike(hb, pair.now)
    pair.run()
    # RFC 7296 §2.8.2: both new SAs were made, the redundant one is gone
    assert len(pair.a.engine.ike_sas()) == 1 and len(pair.b.engine.ike_sas()) == 1
    assert len(pair.a.of(IkeSaRekeyed)) == 1 and len(pair.b.of(IkeSaRekeyed)) == 1
    new_a = pair.a.of(IkeSaRekeyed)[0].new_ike_sa
    new_b = pair.b.of(IkeSaRekeyed)[0].new_ike_sa
    assert pair.a.engine.ike_sas() == (new_a,) and pair.b.engine.ike_sas() == (new_b,)
    sa_a = pair.a.engine._sas[new_a.to_bytes(8, "big")]
    sa_b = pair.b.engine._sas[new_b.to_bytes(8, "big")]
    assert (sa_a.spi_i, sa_a.spi_r) == (sa_b.spi_i, sa_b.spi_r)
    assert len(sa_a.children) == 1 and len(sa_b.children) == 1
    assert not pair.a.of(IkeSaDeleted) and not pair.b.of(IkeSaFailed)
    # the survivor works: a DPD and a Child SA rekey on it
    pair.a.engine.dpd(new_a, pair.now)
    (child,) = pair.b.engine.child_sas(new_b)
    pair.b.engine.rekey_child(new_b, child, pair.now)
    pair.run()
    assert pair.a.of(ChildSaRekeyed) and pair.b.of(ChildSaRekeyed)


def test_delete_child_only() -> None:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    a_ev, _ = installed(pair)
    pair.a.engine.delete(a_ev.ike_sa, pair.now, child_sa=a_ev.child_sa)
    pair.run()
    assert len(pair.a.of(ChildSaDeleted)) == 1 and len(pair.b.of(ChildSaDeleted)) == 1
    assert len(pair.a.engine.ike_sas()) == 1
    assert pair.a.engine.child_sas(a_ev.ike_sa) == ()


def test_dead_peer_detected() -> None:
    pair = make_pair(timing=Timing(dpd_interval=10.0, retransmit_tries=3))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    pair.network = lambda d, src: [] if src == B_ADDR else [d]
    pair.advance(60)
    fa = pair.a.of(IkeSaFailed)
    assert fa and "retransmissions" in fa[0].reason
    assert pair.a.engine.ike_sas() == ()
    assert pair.a.of(ChildSaDeleted)


def test_events_carry_no_key_material_in_repr() -> None:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    a, _ = installed(pair)
    text = repr(pair.a.events) + repr(pair.b.events)
    assert a.outbound.encryption_key.reveal().hex() not in text
    assert "Secret(<" in text


def test_now_dates_certificates() -> None:
    """The same handshake fails when ``now`` is past the certificates' validity."""
    pair = make_pair(auth="ecdsa")
    pair.now = datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC).timestamp()
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert pair.b.of(IkeSaFailed) and not pair.b.of(IkeSaEstablished)
    assert pair.now > pki.NOW


def test_header_of_first_message() -> None:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    (d,) = pair.a.engine.datagrams_to_send()
    h = decode_header(d.data)
    assert h.initiator and not h.response and h.message_id == 0 and h.spi_r == bytes(8)
    assert d.destination == (B_ADDR, 500) and d.source_port == 500


def test_side_helper() -> None:
    side = Side(make_pair().a.engine, A_ADDR)
    side.drain()
    assert side.events == []


def test_crossing_ike_rekey_where_one_side_finishes_first() -> None:
    """B's rekey completes before A's request reaches it: B answers A's with
    TEMPORARY_FAILURE and A adopts B's new SA (RFC 7296 §2.8.2, §2.25)."""
    pair = make_pair(timing=Timing(dpd_interval=None))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    ha = pair.a.of(IkeSaEstablished)[0].ike_sa
    hb = pair.b.of(IkeSaEstablished)[0].ike_sa
    pair.a.engine.rekey_ike(ha, pair.now)
    pair.b.engine.rekey_ike(hb, pair.now)
    (a_req,) = pair.a.engine.datagrams_to_send()
    (b_req,) = pair.b.engine.datagrams_to_send()
    pair.a.engine.receive_datagram(b_req.data, (B_ADDR, 500), pair.now)  # A answers B
    (a_resp,) = pair.a.engine.datagrams_to_send()
    pair.b.engine.receive_datagram(a_resp.data, (A_ADDR, 500), pair.now)  # B is done
    pair.b.engine.receive_datagram(a_req.data, (A_ADDR, 500), pair.now)  # A's arrives late
    pair.run()
    pair.a.drain()
    pair.b.drain()
    assert len(pair.a.engine.ike_sas()) == 1 and len(pair.b.engine.ike_sas()) == 1
    (new_a,) = pair.a.engine.ike_sas()
    (new_b,) = pair.b.engine.ike_sas()
    sa_a = pair.a.engine._sas[new_a.to_bytes(8, "big")]
    sa_b = pair.b.engine._sas[new_b.to_bytes(8, "big")]
    assert (sa_a.spi_i, sa_a.spi_r) == (sa_b.spi_i, sa_b.spi_r)
    assert len(sa_a.children) == 1 and len(sa_b.children) == 1
    assert [e.new_ike_sa for e in pair.a.of(IkeSaRekeyed)] == [new_a]


def test_ike_hard_lifetime_ends_the_sa() -> None:
    """The rekey cannot get through: at the hard lifetime the IKE SA and its
    Child SAs are gone at once, and the peer is told (one Delete)."""
    timing = Timing(dpd_interval=None, rekey_jitter=0.0, retransmit_tries=50)
    a = make_config(A_ADDR, B_ADDR, timing=timing)
    a = dataclasses.replace(a, key_exchange=dataclasses.replace(a.key_exchange, lifetime_s=200))
    b_timing = Timing(dpd_interval=None, rekey_jitter=0.0, retransmit_tries=3)
    pair = make_pair(a_config=a, b_config=make_config(B_ADDR, A_ADDR, timing=b_timing))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    blocked = True

    def net(d: Datagram, src: str) -> list[Datagram]:
        return [] if blocked and src == B_ADDR else [d]

    pair.network = net
    pair.advance(199)
    assert len(pair.a.engine.ike_sas()) == 1 and not pair.a.of(IkeSaDeleted)
    blocked = False
    pair.advance(2)
    assert [e.reason for e in pair.a.of(IkeSaDeleted)] == ["IKE SA lifetime expired"]
    assert pair.a.of(ChildSaDeleted) and pair.a.engine.ike_sas() == ()
    # B had answered the rekey (the answer was lost): its new SA is a ghost
    # that its own liveness check ends
    (ghost,) = pair.b.engine.ike_sas()
    pair.b.engine.dpd(ghost, pair.now)
    pair.advance(120)
    assert pair.b.engine.ike_sas() == () and pair.b.of(IkeSaFailed)


def test_responder_picks_the_rule_by_identity() -> None:
    """One responder, two rules: a PSK peer and a certificate peer."""
    c_addr = "10.0.0.3"
    b_psk = make_config(B_ADDR, A_ADDR, remote_id=A_ADDR)
    b_cert = dataclasses.replace(
        make_config(B_ADDR, c_addr, auth="ecdsa", remote_id=c_addr),
        rule=dataclasses.replace(make_config(B_ADDR, c_addr).rule, name="to-c"))
    from secpath.ike.engine import IkeEngine

    from .harness import Side, seeded_rng

    b = Side(IkeEngine([b_psk, b_cert], seeded_rng(7)), B_ADDR)
    for peer, cfg in ((A_ADDR, make_config(A_ADDR, B_ADDR)),
                      (c_addr, make_config(c_addr, B_ADDR, auth="ecdsa"))):
        a = Side(IkeEngine([cfg], seeded_rng(hash(peer) % 1000)), peer)
        pair = Pair(a, b)
        a.engine.initiate("path", pair.now)
        pair.run()
        assert a.of(ChildSaInstalled), peer
    rules = sorted(e.rule for e in b.of(ChildSaInstalled))
    assert rules == ["path", "to-c"]


def test_initiator_rejects_the_responder_and_tells_it() -> None:
    """RFC 7296 §2.21.2: A does not accept B's identity; B learns it from an
    INFORMATIONAL AUTHENTICATION_FAILED and drops its half of the SA."""
    pair = make_pair(a_config=make_config(A_ADDR, B_ADDR, remote_id="10.0.0.99"))
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    fa = pair.a.of(IkeSaFailed)
    assert fa and fa[0].notify == NotifyType.AUTHENTICATION_FAILED
    assert pair.b.of(IkeSaEstablished)  # B had accepted A ...
    fb = pair.b.of(IkeSaFailed)
    assert fb and fb[0].notify == NotifyType.AUTHENTICATION_FAILED  # ... until told
    assert pair.a.engine.ike_sas() == () and pair.b.engine.ike_sas() == ()
    assert pair.b.of(ChildSaDeleted)


def test_dh_transform_in_ike_auth_proposal_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that lists its PFS group in the IKE_AUTH SA payload still gets
    its first Child SA (RFC 7296 §1.2: IKE_AUTH has no KE)."""
    from secpath.ike import exchange_auth, proposal
    from secpath.ike.payloads import Proposal

    def with_group(methods: tuple[SecurityMethod, ...], spi: bytes, esn: tuple[bool, ...],
                   dh_group: int | None) -> tuple[Proposal, ...]:
        return proposal.esp_proposals(methods, spi, esn, 14)

    monkeypatch.setattr(exchange_auth, "esp_proposals", with_group)
    pair = make_pair(pfs=True)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert pair.b.of(ChildSaInstalled) and pair.a.of(ChildSaInstalled)
