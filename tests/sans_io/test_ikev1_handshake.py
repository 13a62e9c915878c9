"""Two IKEv1 engines paired in memory: main mode × quick mode for every
suite and authentication, PFS, rekeys, lifetimes, DPD, Delete, NAT-T,
loss, the commit bit, refusals (aggressive mode, wrong PSK, no proposal)."""

from __future__ import annotations

import dataclasses

import pytest

from secpath.ike.config import Credentials, Timing
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaInstalled,
    ChildSaRekeyed,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
    IkeSaRekeyed,
)
from secpath.ike.v1 import AGGRESSIVE_MODE_REFUSED
from secpath.ike.v1.codec import (
    Header,
    NotifyPayload,
    SaPayload,
    decode_message,
    encode_message,
)
from secpath.ike.v1.constants import ExchangeType, Flag, NotifyType
from secpath.ike.v1.sa import State
from secpath.policy.model import KeyExchangeMethod, SecurityMethod
from secpath.secret import Secret

from .harness import A_ADDR, B_ADDR, make_config
from .ikev1_harness import NAT_ADDR, Pair, handshake, make_pair

SUITES = ["3des-sha1-modp1024", "aes128-sha256-modp2048"]


def _installed(pair: Pair) -> tuple[ChildSaInstalled, ChildSaInstalled]:
    (a,) = pair.a.of(ChildSaInstalled)
    (b,) = pair.b.of(ChildSaInstalled)
    return a, b


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("auth", ["psk", "rsa", "ecdsa"])
@pytest.mark.parametrize("mode", ["tunnel", "transport"])
@pytest.mark.parametrize("pfs", [False, True])
def test_main_mode_and_quick_mode(suite: str, auth: str, mode: str, pfs: bool) -> None:
    pair = make_pair(suite=suite, auth=auth, mode=mode, pfs=pfs)
    handle = handshake(pair)
    (ea,) = pair.a.of(IkeSaEstablished)
    (eb,) = pair.b.of(IkeSaEstablished)
    assert ea.ike_sa == handle and ea.initiator and not eb.initiator
    assert ea.proposal == eb.proposal == suite
    assert (ea.remote_id, eb.remote_id) == (B_ADDR, A_ADDR)
    a, b = _installed(pair)
    assert a.outbound.spi == b.inbound.spi and b.outbound.spi == a.inbound.spi
    assert a.outbound.encryption_key == b.inbound.encryption_key
    assert a.outbound.integrity_key == b.inbound.integrity_key
    assert a.inbound.encryption_key == b.outbound.encryption_key
    assert a.inbound.encryption_key != a.outbound.encryption_key
    assert a.outbound.mode == b.outbound.mode == mode
    assert a.outbound.transform == ("3des-sha1" if suite.startswith("3des") else "aes128-sha256")
    assert a.outbound.udp_encapsulation is None
    assert pair.a.engine.ike_sa_state(handle) is State.ESTABLISHED
    assert pair.a.engine.child_sas(handle) == (a.child_sa,)


def test_quick_mode_keys_differ_with_pfs() -> None:
    """Same rng seeds, PFS or not: the KEYMAT includes g(qm)^xy (RFC 2409 §5.5)."""
    keys = []
    for pfs in (False, True):
        pair = make_pair(pfs=pfs)
        handshake(pair)
        keys.append(_installed(pair)[0].outbound.encryption_key)
    assert keys[0] != keys[1]


def test_rekey_with_pfs_replaces_and_deletes_the_old_pair() -> None:
    pair = make_pair(pfs=True, suite="3des-sha1-modp1024")
    handle = handshake(pair)
    a, b = _installed(pair)
    pair.a.engine.rekey_child(handle, a.child_sa, pair.now)
    pair.run()
    (rekeyed,) = pair.a.of(ChildSaRekeyed)
    assert rekeyed.old_child_sa == a.child_sa
    assert rekeyed.new.outbound.encryption_key != a.outbound.encryption_key
    assert [e.child_sa for e in pair.a.of(ChildSaDeleted)] == [a.child_sa]
    assert [e.child_sa for e in pair.b.of(ChildSaDeleted)] == [b.child_sa]
    b_new = pair.b.of(ChildSaInstalled)[-1]
    assert b_new.inbound.spi == rekeyed.new.outbound.spi
    assert pair.a.engine.child_sas(handle) == (rekeyed.new.child_sa,)


def test_soft_lifetime_rekeys_before_the_hard_one() -> None:
    esp = (SecurityMethod("aes128", "sha256", lifetime_s=100),)
    pair = make_pair(esp_methods=esp)
    handshake(pair)
    pair.advance(95)
    assert len(pair.a.of(ChildSaRekeyed)) == 1
    assert not pair.a.of(IkeSaDeleted)
    pair.advance(100)
    assert len(pair.a.of(ChildSaRekeyed)) == 2


def test_responder_lifetime_shortens_the_initiators() -> None:
    """RFC 2407 §4.6.3.1: B's shorter quick-mode lifetime reaches A in a
    RESPONDER-LIFETIME notify, and A rekeys before B's hard lifetime."""
    a_cfg = make_config(A_ADDR, B_ADDR, esp_methods=(SecurityMethod("aes128", "sha256",
                                                                    lifetime_s=3600),))
    b_cfg = make_config(B_ADDR, A_ADDR, esp_methods=(SecurityMethod("aes128", "sha256",
                                                                    lifetime_s=600),))
    pair = make_pair(a_config=a_cfg, b_config=b_cfg)
    handshake(pair)
    pair.advance(590)
    assert len(pair.a.of(ChildSaRekeyed)) == 1
    # B never saw its own hard lifetime pass with the old pair still in use
    assert all(e.reason != "hard lifetime expired" for e in pair.b.of(ChildSaDeleted))


def test_hard_lifetime_deletes_at_both_ends() -> None:
    esp = (SecurityMethod("aes128", "sha256", lifetime_s=100),)
    pair = make_pair(esp_methods=esp)
    handshake(pair)
    # take the pair away from the rekeys at both ends: only the hard lifetime remains
    for side in (pair.a, pair.b):
        for sa in side.engine._sas.values():
            for child in sa.children.values():
                child.soft_at = float("inf")
    pair.advance(101)
    assert [e.reason for e in pair.a.of(ChildSaDeleted)] == ["hard lifetime expired"]
    assert pair.b.of(ChildSaDeleted)


def test_phase1_replaced_children_move() -> None:
    pair = make_pair(pfs=True)
    handle = handshake(pair)
    a, _ = _installed(pair)
    pair.a.engine.rekey_ike(handle, pair.now)
    pair.run()
    (ra,) = pair.a.of(IkeSaRekeyed)
    (rb,) = pair.b.of(IkeSaRekeyed)
    assert ra.old_ike_sa == handle
    assert pair.a.engine.ike_sas() == (ra.new_ike_sa,)
    assert pair.b.engine.ike_sas() == (rb.new_ike_sa,)
    assert pair.a.engine.child_sas(ra.new_ike_sa) == (a.child_sa,)
    assert not pair.a.of(ChildSaDeleted) and not pair.b.of(ChildSaDeleted)
    pair.a.engine.rekey_child(ra.new_ike_sa, a.child_sa, pair.now)
    pair.run()
    assert len(pair.a.of(ChildSaRekeyed)) == 1


def test_phase1_soft_lifetime_starts_a_new_main_mode() -> None:
    pair = make_pair()
    handle = handshake(pair)
    sa = pair.a.engine._sas[handle.to_bytes(8, "big")]
    sa.soft_at = pair.now + 10
    pair.advance(11)
    assert len(pair.a.of(IkeSaRekeyed)) == 1


def test_delete_isakmp_sa_and_ipsec_sas() -> None:
    pair = make_pair()
    handle = handshake(pair)
    pair.a.engine.delete(handle, pair.now)
    pair.run()
    assert pair.b.of(IkeSaDeleted)[0].reason == "deleted by the peer"
    assert pair.b.of(ChildSaDeleted)
    assert pair.a.engine.ike_sas() == () and pair.b.engine.ike_sas() == ()


def test_delete_one_ipsec_sa() -> None:
    pair = make_pair()
    handle = handshake(pair)
    a, b = _installed(pair)
    pair.a.engine.delete(handle, pair.now, a.child_sa)
    pair.run()
    assert [e.child_sa for e in pair.b.of(ChildSaDeleted)] == [b.child_sa]
    assert pair.b.engine.ike_sas() != ()


def test_dpd_answered_while_alive_then_dead_peer() -> None:
    timing = Timing(dpd_interval=5.0, retransmit_timeout=1.0, retransmit_tries=3)
    pair = make_pair(timing=timing)
    handshake(pair)
    pair.advance(30)
    assert not pair.a.of(IkeSaFailed)
    pair.drop = lambda d, src: src == B_ADDR
    pair.advance(30)
    (failed,) = pair.a.of(IkeSaFailed)
    assert "dead peer" in failed.reason
    assert pair.a.of(ChildSaDeleted)


def test_nat_floats_to_4500_with_udp_encapsulated_modes() -> None:
    pair = make_pair(mode="transport")
    pair.nat = True
    handshake(pair)
    (ea,) = pair.a.of(IkeSaEstablished)
    (eb,) = pair.b.of(IkeSaEstablished)
    assert ea.nat_local and not ea.nat_remote
    assert eb.nat_remote and not eb.nat_local
    assert eb.peer == (NAT_ADDR, 44500)
    a, b = _installed(pair)
    assert a.outbound.udp_encapsulation == (4500, 4500)
    assert b.outbound.udp_encapsulation == (4500, 44500)
    assert a.outbound.mode == "transport"
    # from message 5 on, everything goes to 4500 with the non-ESP marker (RFC 3948 §2.2)
    late = pair.a.sent[2:]
    assert late and all(d.source_port == 4500 and d.data[:4] == bytes(4) for d in late)


def test_force_udp_encapsulation_without_a_nat() -> None:
    pair = make_pair(force_udp_encapsulation=True, mode="tunnel")
    handshake(pair)
    a, b = _installed(pair)
    assert a.outbound.udp_encapsulation == (4500, 4500)
    assert b.outbound.udp_encapsulation == (4500, 4500)


@pytest.mark.parametrize("lost", [1, 3, 5, 6, 7, 8, 9])
def test_one_lost_message_is_retransmitted(lost: int) -> None:
    """Main mode 1..6, quick mode 7..9: any one lost datagram is recovered."""
    count = 0

    def drop(_d: object, _src: str) -> bool:
        nonlocal count
        count += 1
        return count == lost

    pair = make_pair(pfs=True)
    pair.drop = drop
    handshake(pair)
    pair.advance(20)
    assert len(pair.a.of(ChildSaInstalled)) == 1 and len(pair.b.of(ChildSaInstalled)) == 1
    assert not pair.a.of(IkeSaFailed) and not pair.b.of(IkeSaFailed)


def test_commit_bit_is_ignored_safely() -> None:
    """RFC 2408 §3.1 commit flag on quick mode: B answers normally and only
    installs at HASH(3) (no CONNECTED notify is sent)."""
    pair = make_pair()
    handle = handshake(pair)
    a, _ = _installed(pair)
    pair.a.engine.rekey_child(handle, a.child_sa, pair.now)
    (qm1,) = pair.a.engine.datagrams_to_send()
    flagged = qm1.data[:19] + bytes((qm1.data[19] | Flag.COMMIT,)) + qm1.data[20:]
    pair.b.engine.receive_datagram(flagged, (A_ADDR, 500), pair.now)
    pair.b.drain()
    assert len(pair.b.of(ChildSaInstalled)) == 1  # not yet: HASH(3) is missing
    pair.run()
    assert len(pair.b.of(ChildSaInstalled)) == 2
    assert len(pair.a.of(ChildSaRekeyed)) == 1


def test_wrong_psk_fails_authentication() -> None:
    a_cfg = make_config(A_ADDR, B_ADDR)
    b_cfg = dataclasses.replace(make_config(B_ADDR, A_ADDR),
                                credentials=Credentials(psk=Secret(b"another secret")))
    pair = make_pair(a_config=a_cfg, b_config=b_cfg)
    handshake(pair)
    pair.advance(60)
    (fb,) = pair.b.of(IkeSaFailed)
    assert fb.notify == NotifyType.AUTHENTICATION_FAILED and "pre-shared key" in fb.reason
    (fa,) = pair.a.of(IkeSaFailed)
    assert "no answer" in fa.reason or "did not complete" in fa.reason
    assert not pair.a.of(ChildSaInstalled)


def test_unexpected_peer_identity_is_refused() -> None:
    a_cfg = make_config(A_ADDR, B_ADDR)
    b_cfg = make_config(B_ADDR, A_ADDR, remote_id="someone.else.example")
    pair = make_pair(a_config=a_cfg, b_config=b_cfg)
    handshake(pair)
    (fb,) = pair.b.of(IkeSaFailed)
    assert fb.notify == NotifyType.AUTHENTICATION_FAILED and "someone.else" in fb.reason


def test_certificate_from_another_ca_is_refused() -> None:
    from .harness import credentials

    a_cfg = make_config(A_ADDR, B_ADDR, auth="rsa",
                        creds=credentials("rsa", A_ADDR, ca_name="other"))
    b_cfg = make_config(B_ADDR, A_ADDR, auth="rsa")
    pair = make_pair(a_config=a_cfg, b_config=b_cfg)
    handshake(pair)
    (fb,) = pair.b.of(IkeSaFailed)
    assert fb.notify == NotifyType.AUTHENTICATION_FAILED and "certificate" in fb.reason


def test_no_proposal_chosen_at_both_ends() -> None:
    a_cfg = make_config(A_ADDR, B_ADDR, suite="3des-sha1-modp1024")
    b_cfg = make_config(B_ADDR, A_ADDR, suite="aes128-sha256-modp2048")
    pair = make_pair(a_config=a_cfg, b_config=b_cfg)
    handshake(pair)
    (fb,) = pair.b.of(IkeSaFailed)
    assert fb.notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert fb.remote_proposals == ("3des-sha1-modp1024",)
    assert fb.local_proposals == ("aes128-sha256-modp2048",)
    (fa,) = pair.a.of(IkeSaFailed)
    assert fa.notify == NotifyType.NO_PROPOSAL_CHOSEN and "NO_PROPOSAL_CHOSEN" in fa.reason


def test_quick_mode_proposal_mismatch_keeps_the_isakmp_sa() -> None:
    a_cfg = make_config(A_ADDR, B_ADDR, esp_methods=(SecurityMethod("3des", "sha1"),))
    b_cfg = make_config(B_ADDR, A_ADDR, esp_methods=(SecurityMethod("aes128", "sha256"),))
    pair = make_pair(a_config=a_cfg, b_config=b_cfg)
    handshake(pair)
    assert pair.b.of(IkeSaEstablished) and not pair.b.of(ChildSaInstalled)
    from secpath.ike.events import ChildSaFailed

    (fb,) = pair.b.of(ChildSaFailed)
    assert fb.notify == NotifyType.NO_PROPOSAL_CHOSEN and "3des-sha1" in fb.reason


def test_aggressive_mode_is_refused_with_a_clear_reason() -> None:
    pair = make_pair()
    header = Header(b"\x11" * 8, bytes(8), ExchangeType.AGGRESSIVE, 0, 0)
    message = encode_message(header, [SaPayload(())])
    pair.b.engine.receive_datagram(message, (A_ADDR, 500), pair.now)
    pair.b.drain()
    (failed,) = pair.b.of(IkeSaFailed)
    assert failed.reason == AGGRESSIVE_MODE_REFUSED
    assert "offline" in failed.reason
    (reply,) = pair.b.engine.datagrams_to_send()
    h, payloads = decode_message(reply.data)
    assert h.exchange_type == ExchangeType.INFORMATIONAL
    notify = payloads[0].payload
    assert isinstance(notify, NotifyPayload)
    assert notify.notify_type == NotifyType.INVALID_EXCHANGE_TYPE
    assert pair.b.engine.ike_sas() == ()


def test_ikev2_methods_unusable_in_ikev1_are_left_out() -> None:
    """AEAD ciphers have no IKEv1 phase-1 transform: only the CBC method is offered."""
    methods = (KeyExchangeMethod("sha384", "aes256gcm", 20),
               KeyExchangeMethod("sha256", "aes128", 14))
    pair = make_pair(ike_methods=methods)
    handshake(pair)
    assert pair.a.of(IkeSaEstablished)[0].proposal == "aes128-sha256-modp2048"


def test_duplicate_main_mode_message_is_answered_again() -> None:
    pair = make_pair()
    pair.a.engine.initiate("path", pair.now)
    (first,) = pair.a.engine.datagrams_to_send()
    for _ in range(2):
        pair.b.engine.receive_datagram(first.data, (A_ADDR, 500), pair.now)
    replies = pair.b.engine.datagrams_to_send()
    assert len(replies) == 2 and replies[0].data == replies[1].data
    assert len(pair.b.engine._sas) == 1


def test_responder_rekeys_only_when_the_initiator_does_not() -> None:
    esp = (SecurityMethod("aes128", "sha256", lifetime_s=1000),)
    pair = make_pair(esp_methods=esp)
    handle = handshake(pair)
    pair.advance(980)
    # the initiator rekeyed at ~90 %; the responder left it to it
    assert len(pair.a.of(ChildSaRekeyed)) == 1 and not pair.b.of(ChildSaRekeyed)
    # now an initiator that never rekeys (a peer without a soft lifetime)
    pair2 = make_pair(esp_methods=esp, seed=3)
    handle = handshake(pair2)
    (a,) = pair2.a.of(ChildSaInstalled)
    pair2.a.engine._sas[handle.to_bytes(8, "big")].children[a.child_sa].soft_at = float("inf")
    pair2.advance(980)
    assert len(pair2.b.of(ChildSaRekeyed)) == 1 and not pair2.a.of(ChildSaRekeyed)
    assert all(e.reason != "hard lifetime expired" for e in pair2.a.of(ChildSaDeleted))


def test_initial_contact_clears_stale_sas_of_a_restarted_peer() -> None:
    pair = make_pair()
    handshake(pair)
    (old_b,) = pair.b.of(IkeSaEstablished)
    # A restarts: a fresh engine with the same configuration and no SAs
    from secpath.ike.v1 import IkeV1Engine

    from .harness import seeded_rng

    pair.a.engine = IkeV1Engine([make_config(A_ADDR, B_ADDR)], seeded_rng(99))
    handshake(pair)
    assert [e.ike_sa for e in pair.b.of(IkeSaDeleted)] == [old_b.ike_sa]
    assert pair.b.of(IkeSaDeleted)[0].reason.startswith("INITIAL-CONTACT")
    assert len(pair.b.engine.ike_sas()) == 1


def test_no_initial_contact_when_replacing_the_isakmp_sa() -> None:
    pair = make_pair()
    handle = handshake(pair)
    pair.a.engine.rekey_ike(handle, pair.now)
    pair.run()
    assert not pair.b.of(IkeSaDeleted)
    assert len(pair.b.of(IkeSaRekeyed)) == 1


def test_a_kerberos_rule_is_refused_with_a_clear_reason() -> None:
    from typing import Any, cast

    from secpath.errors import LocalError
    from secpath.ike.v1 import IkeV1Engine

    from .harness import seeded_rng

    cfg = make_config(A_ADDR, B_ADDR)
    kerberos = dataclasses.replace(cfg, credentials=Credentials(kerberos=cast(Any, object())))
    with pytest.raises(LocalError, match="kerberos over IKEv1 is not implemented"):
        IkeV1Engine([kerberos], seeded_rng(1))
