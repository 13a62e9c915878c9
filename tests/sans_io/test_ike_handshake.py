"""Two IKE engines paired in memory: IKE_SA_INIT + IKE_AUTH for every
{PSK, RSA cert, ECDSA cert} × {the issue's four suites}, then a packet
through the resulting ESP SAs, rekeys of both SA kinds, DPD and delete."""

from __future__ import annotations

import pytest

from secpath.esp.sa import SecurityAssociation
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaInstalled,
    ChildSaRekeyed,
    EspSaParameters,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaRekeyed,
)
from secpath.ike.state import State

from .harness import A_ADDR, B_ADDR, SUITES, Pair, make_pair


def esp(p: EspSaParameters) -> SecurityAssociation:
    return SecurityAssociation(
        spi=p.spi, transform=p.transform, encryption_key=p.encryption_key,
        integrity_key=p.integrity_key if len(p.integrity_key) else None, mode=p.mode,
        tunnel=p.tunnel, udp_encapsulation=p.udp_encapsulation, esn=p.esn,
        replay_window=p.replay_window,
    )


def ipv4_udp(src: str, dst: str, payload: bytes) -> bytes:
    import ipaddress
    import struct

    udp = struct.pack("!HHHH", 1234, 5678, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 17, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    words = sum(struct.unpack("!10H", header))
    while words > 0xFFFF:
        words = (words & 0xFFFF) + (words >> 16)
    header = header[:10] + struct.pack("!H", ~words & 0xFFFF) + header[12:]
    return header + udp


def installed(pair: Pair) -> tuple[ChildSaInstalled, ChildSaInstalled]:
    a = [e for e in pair.a.events if isinstance(e, ChildSaInstalled)]
    b = [e for e in pair.b.events if isinstance(e, ChildSaInstalled)]
    assert len(a) == 1 and len(b) == 1
    return a[0], b[0]


def check_child_pair(a: ChildSaInstalled, b: ChildSaInstalled) -> None:
    """Keys and SPIs agree crosswise, and a packet goes through both ways."""
    assert a.outbound.spi == b.inbound.spi and b.outbound.spi == a.inbound.spi
    assert a.outbound.encryption_key == b.inbound.encryption_key
    assert a.outbound.integrity_key == b.inbound.integrity_key
    assert a.inbound.encryption_key == b.outbound.encryption_key
    assert a.inbound.encryption_key != a.outbound.encryption_key
    assert a.outbound.transform == b.inbound.transform
    packet = ipv4_udp(A_ADDR, B_ADDR, b"hello through ESP")
    wire = esp(a.outbound).encapsulate(packet)
    assert packet[20:] not in wire
    assert esp(b.inbound).decapsulate(wire) == packet
    back = ipv4_udp(B_ADDR, A_ADDR, b"and back")
    assert esp(a.inbound).decapsulate(esp(b.outbound).encapsulate(back)) == back


@pytest.mark.parametrize("suite", list(SUITES))
@pytest.mark.parametrize("auth", ["psk", "rsa", "ecdsa"])
def test_handshake_every_suite_and_auth(suite: str, auth: str) -> None:
    pair = make_pair(suite=suite, auth=auth)
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    est_a = pair.a.of(IkeSaEstablished)
    est_b = pair.b.of(IkeSaEstablished)
    assert len(est_a) == 1 and len(est_b) == 1, (pair.a.events, pair.b.events)
    assert est_a[0].proposal == SUITES[suite][0].proposal == est_b[0].proposal
    assert est_a[0].ike_sa == handle and est_a[0].initiator and not est_b[0].initiator
    assert est_a[0].remote_id == B_ADDR and est_b[0].remote_id == A_ADDR
    a, b = installed(pair)
    assert a.outbound.transform == SUITES[suite][1].proposal
    assert a.outbound.mode == "transport" and a.outbound.udp_encapsulation is None
    check_child_pair(a, b)
    assert pair.a.engine.ike_sa_state(handle) is State.ESTABLISHED


@pytest.mark.parametrize("suite", ["3des-sha1-modp1024", "aes256gcm16-prfsha384-ecp384",
                                   "aes128-aesxcbc-modp2048"])
def test_tunnel_mode_and_lifecycle(suite: str) -> None:
    """Rekey the Child SA (with PFS) and the IKE SA, DPD, then delete."""
    pair = make_pair(suite=suite, auth="psk", mode="tunnel", pfs=True)
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    a, b = installed(pair)
    assert a.outbound.mode == "tunnel" and a.outbound.tunnel == (A_ADDR, B_ADDR)
    assert b.inbound.tunnel == (A_ADDR, B_ADDR)
    check_child_pair(a, b)

    # Child SA rekey, initiated by the responder of the IKE SA
    b_handle = pair.b.of(IkeSaEstablished)[0].ike_sa
    pair.b.engine.rekey_child(b_handle, b.child_sa, pair.now)
    pair.run()
    ra = pair.a.of(ChildSaRekeyed)
    rb = pair.b.of(ChildSaRekeyed)
    assert len(ra) == 1 and len(rb) == 1
    check_child_pair(ra[0].new, rb[0].new)
    assert ra[0].new.inbound.encryption_key != a.inbound.encryption_key
    # the rekey initiator deleted the old pair, on both sides
    assert {e.child_sa for e in pair.a.of(ChildSaDeleted)} == {a.child_sa}
    assert {e.child_sa for e in pair.b.of(ChildSaDeleted)} == {b.child_sa}
    assert pair.a.engine.child_sas(handle) == (ra[0].new.child_sa,)

    # IKE SA rekey: the Child SA moves to the new IKE SA
    pair.a.engine.rekey_ike(handle, pair.now)
    pair.run()
    rka = pair.a.of(IkeSaRekeyed)
    rkb = pair.b.of(IkeSaRekeyed)
    assert len(rka) == 1 and len(rkb) == 1
    new_a = rka[0].new_ike_sa
    new_b = rkb[0].new_ike_sa
    assert pair.a.engine.ike_sas() == (new_a,) and pair.b.engine.ike_sas() == (new_b,)
    assert pair.a.engine.child_sas(new_a) == (ra[0].new.child_sa,)
    assert not pair.a.of(IkeSaDeleted)  # the old SA went quietly, as rekeyed

    # a Child SA rekey on the new IKE SA still works (new SK_d)
    pair.a.engine.rekey_child(new_a, ra[0].new.child_sa, pair.now)
    pair.run()
    assert len(pair.a.of(ChildSaRekeyed)) == 2
    check_child_pair(pair.a.of(ChildSaRekeyed)[-1].new,
                     pair.b.of(ChildSaRekeyed)[-1].new)

    # DPD: one request, one response, nothing else happens
    before = pair.delivered
    pair.b.engine.dpd(new_b, pair.now)
    pair.run()
    assert pair.delivered == before + 2

    # delete the IKE SA: both sides drop it and its Child SA
    pair.a.engine.delete(new_a, pair.now)
    pair.run()
    assert [e.ike_sa for e in pair.a.of(IkeSaDeleted)] == [new_a]
    assert [e.ike_sa for e in pair.b.of(IkeSaDeleted)] == [new_b]
    assert pair.a.engine.ike_sas() == () and pair.b.engine.ike_sas() == ()
    assert len(pair.a.of(ChildSaDeleted)) == 3 and len(pair.b.of(ChildSaDeleted)) == 3
    assert pair.a.engine.next_timer() is None and pair.b.engine.next_timer() is None


def test_dh_private_values_are_dropped_once_the_keys_are_made() -> None:
    # RFC 7296 §2.12: nothing needs the private value after SKEYSEED
    pair = make_pair(suite="aes128-sha256-modp2048")
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    sas = [*pair.a.engine._sas.values(), *pair.b.engine._sas.values()]
    assert len(sas) == 2 and all(sa.state is State.ESTABLISHED for sa in sas)
    assert all(sa.dh is None and sa.keys is not None for sa in sas)
