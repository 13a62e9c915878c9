"""Two IKE engines authenticate with Kerberos V5 against a real MIT KDC
(docs/kerberos.md): the two IKE_AUTH round trips, the Child SA carrying
traffic, and the failures — wrong keytab, expired ticket, a principal of
another realm, a replayed AP-REQ, a spliced exchange — each with a clear
reason and AUTHENTICATION_FAILED."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from secpath.ike.auth import AUTHENTICATION_FAILED
from secpath.ike.config import Credentials, IkeConfig
from secpath.ike.engine import IkeEngine
from secpath.ike.events import IkeSaEstablished, IkeSaFailed
from secpath.ike.gss import GssapiProvider
from secpath.ike.kerberos import GssAcceptor, GssInitiator, KerberosCredentials
from secpath.ike.state import State
from secpath.policy.model import (
    Address,
    Behavior,
    Filter,
    FilterAction,
    FilterList,
    KerberosAuth,
    KeyExchange,
    Local,
    Policy,
    Rule,
)
from secpath.secret import Secret

from ..kdc import Kdc, needs_kdc
from .harness import A_ADDR, B_ADDR, SUITES, Pair, Side, seeded_rng
from .test_ike_handshake import check_child_pair, installed

pytestmark = needs_kdc

A_HOST, B_HOST = "alpha.example", "beta.example"


def kerberos_config(me: str, peer: str, creds: KerberosCredentials, *,
                    remote_id: str | None = None,
                    suite: str = "aes128-sha256-modp2048") -> IkeConfig:
    ike_m, esp_m = SUITES[suite]
    fa = FilterAction("secure", Behavior.NEGOTIATE, (esp_m,))
    rule = Rule("path", FilterList("to-peer", (Filter(Address.me(), Address.of(peer)),)), fa,
                (KerberosAuth(),), peer=ipaddress.ip_address(peer), remote_id=remote_id)
    policy = Policy("p", Local((ipaddress.ip_address(me),)), KeyExchange((ike_m,)), (rule,))
    return IkeConfig.from_policy(policy, rule, Credentials(kerberos=creds))


@dataclass
class Hosts:
    a: KerberosCredentials
    b: KerberosCredentials


def hosts(realm: Kdc, *, a_keytab: Path | None = None, b_keytab: Path | None = None,
          b_realm: str | None = None, a_ccache: str | None = None,
          a_service: str | None = None) -> Hosts:
    a_kt = a_keytab or realm.host(A_HOST)
    b_kt = b_keytab or realm.host(B_HOST)
    a = KerberosCredentials(GssapiProvider(keytab=a_kt, ccache=a_ccache),
                            service_principal=a_service or realm.principal(B_HOST))
    b = KerberosCredentials(GssapiProvider(keytab=b_kt), realm=b_realm)
    return Hosts(a, b)


def pair_of(h: Hosts, seed: int = 7) -> Pair:
    a = Side(IkeEngine([kerberos_config(A_ADDR, B_ADDR, h.a)], seeded_rng(seed)), A_ADDR)
    b = Side(IkeEngine([kerberos_config(B_ADDR, A_ADDR, h.b)], seeded_rng(seed + 1)), B_ADDR)
    return Pair(a, b)


def failures(side: Side) -> list[IkeSaFailed]:
    return side.of(IkeSaFailed)


def test_two_hosts_authenticate_and_carry_traffic(realm: Kdc) -> None:
    pair = pair_of(hosts(realm))
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    est_a, est_b = pair.a.of(IkeSaEstablished), pair.b.of(IkeSaEstablished)
    assert len(est_a) == 1 and len(est_b) == 1, (pair.a.events, pair.b.events)
    # docs/kerberos.md §4: principals are the IKE identities
    assert est_a[0].local_id == est_b[0].remote_id == realm.principal(A_HOST)
    assert est_a[0].remote_id == est_b[0].local_id == realm.principal(B_HOST)
    a, b = installed(pair)
    check_child_pair(a, b)
    assert pair.a.engine.ike_sa_state(handle) is State.ESTABLISHED
    # IKE_SA_INIT + two IKE_AUTH round trips (as EAP, RFC 7296 §2.16)
    assert pair.delivered == 6


def test_rekey_and_second_sa_after_kerberos(realm: Kdc) -> None:
    pair = pair_of(hosts(realm), seed=11)
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    pair.a.engine.rekey_ike(handle, pair.now)
    pair.run()
    assert not failures(pair.a) and not failures(pair.b)
    # a new IKE SA authenticates with a new AP-REQ (the replay cache is not hit)
    second = pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert pair.a.engine.ike_sa_state(second) is State.ESTABLISHED
    assert not failures(pair.a) and not failures(pair.b)


def _refused(pair: Pair) -> tuple[IkeSaFailed, IkeSaFailed | None]:
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert not pair.a.of(IkeSaEstablished) and not pair.b.of(IkeSaEstablished)
    fa = failures(pair.a)
    fb = failures(pair.b)
    assert len(fa) == 1, pair.a.events
    assert fa[0].notify == AUTHENTICATION_FAILED
    return fa[0], fb[0] if fb else None


def test_wrong_keytab_is_refused(realm: Kdc) -> None:
    # the responder holds gamma's keys, not the beta key the ticket is sealed with
    pair = pair_of(hosts(realm, b_keytab=realm.host("gamma.example")))
    fa, fb = _refused(pair)
    assert fb is not None and fb.notify == AUTHENTICATION_FAILED
    assert "AP-REQ refused" in fb.reason and "beta.example" in fb.reason, fb.reason
    assert "AUTHENTICATION_FAILED" in fa.reason


def test_stale_keytab_after_rekey_of_the_principal_is_refused(realm: Kdc) -> None:
    old = realm.tmpdir / "delta-old.keytab"
    realm.host("delta.example").rename(old)
    realm.kadmin("cpw", "-randkey", realm.principal("delta.example"))
    pair = pair_of(hosts(realm, b_keytab=old, a_service=realm.principal("delta.example")))
    _, fb = _refused(pair)
    assert fb is not None and "AP-REQ refused" in fb.reason
    assert "key" in fb.reason.lower(), fb.reason


def test_expired_ticket_is_refused(realm: Kdc) -> None:
    keytab = realm.host("epsilon.example")
    ccache = realm.tmpdir / "epsilon.ccache"
    realm.kinit(realm.principal("epsilon.example"), keytab, ccache, "-l", "1s")
    time.sleep(2.2)  # let the 1-second ticket expire (the KDC's clock, not an assertion)
    pair = pair_of(hosts(realm, a_keytab=keytab, a_ccache=f"FILE:{ccache}"))
    fa, fb = _refused(pair)
    assert fb is None  # no AP-REQ left the initiator
    assert "no AP-REQ" in fa.reason and "expired" in fa.reason.lower(), fa.reason


def test_principal_of_another_realm_is_refused(realm: Kdc) -> None:
    pair = pair_of(hosts(realm, b_realm="OTHER.EXAMPLE"))
    _, fb = _refused(pair)
    assert fb is not None
    assert "is of realm KRBTEST.COM, the rule accepts OTHER.EXAMPLE" in fb.reason, fb.reason


def test_service_in_a_realm_without_kdc_is_refused(realm: Kdc) -> None:
    pair = pair_of(hosts(realm, a_service="host/beta.example@OTHER.EXAMPLE"))
    fa, fb = _refused(pair)
    assert fb is None and "no AP-REQ" in fa.reason and "OTHER.EXAMPLE" in fa.reason, fa.reason


class _Tapped:
    """A real provider whose initiator's first token (the AP-REQ) goes
    through ``tap``: recorded, or swapped for a recorded one."""

    def __init__(self, inner: GssapiProvider, tap: Callable[[bytes], bytes]) -> None:
        self.inner, self.tap = inner, tap

    @property
    def principal(self) -> str:
        return self.inner.principal

    @property
    def default_realm(self) -> str:
        return self.inner.default_realm

    def initiator(self, target: str, bindings: bytes) -> GssInitiator:
        real = self.inner.initiator(target, bindings)
        tap = self.tap

        class Ctx:
            @property
            def complete(self) -> bool:
                return real.complete

            def step(self, t: bytes | None) -> bytes | None:
                out = real.step(t)
                return tap(out) if t is None and out is not None else out

            def prf(self, seed: bytes, length: int) -> Secret:
                return real.prf(seed, length)

            def get_mic(self, data: bytes) -> bytes:
                return real.get_mic(data)

            def verify_mic(self, data: bytes, token: bytes) -> None:
                real.verify_mic(data, token)

        return Ctx()

    def acceptor(self, bindings: bytes) -> GssAcceptor:
        return self.inner.acceptor(bindings)


def _record(tokens: list[bytes]) -> Callable[[bytes], bytes]:
    def tap(token: bytes) -> bytes:
        tokens.append(token)
        return token

    return tap


def test_replayed_ap_req_is_refused(realm: Kdc) -> None:
    h = hosts(realm)
    assert isinstance(h.a.provider, GssapiProvider)
    tokens: list[bytes] = []
    recorder = _Tapped(h.a.provider, _record(tokens))
    first = Hosts(KerberosCredentials(recorder, service_principal=h.a.service_principal), h.b)
    pair = pair_of(first, seed=21)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    assert len(pair.b.of(IkeSaEstablished)) == 1 and len(tokens) == 1
    # an attacker (here: a rogue initiator) sends the recorded AP-REQ in a new IKE SA
    replaying = _Tapped(h.a.provider, lambda _own: tokens[0])
    attack = Hosts(KerberosCredentials(replaying, service_principal=h.a.service_principal), h.b)
    a2 = Side(IkeEngine([kerberos_config(A_ADDR, B_ADDR, attack.a)], seeded_rng(22)), A_ADDR)
    pair2 = Pair(a2, pair.b)
    pair.b.events.clear()
    _, fb = _refused(pair2)
    assert fb is not None and "AP-REQ refused" in fb.reason
    assert "replay" in fb.reason.lower(), fb.reason


class _Tampering:
    """An initiator provider that changes one thing of a real context:
    the AP-REQ is made for other channel bindings (a man in the middle
    relaying it from another IKE SA), or the MSK is not the context's."""

    def __init__(self, inner: GssapiProvider, *, bindings: bytes | None = None,
                 msk: Secret | None = None) -> None:
        self.inner, self.bindings, self.msk = inner, bindings, msk

    @property
    def principal(self) -> str:
        return self.inner.principal

    @property
    def default_realm(self) -> str:
        return self.inner.default_realm

    def initiator(self, target: str, bindings: bytes) -> GssInitiator:
        real = self.inner.initiator(target, self.bindings or bindings)
        msk = self.msk

        class Ctx:
            @property
            def complete(self) -> bool:
                return real.complete

            def step(self, t: bytes | None) -> bytes | None:
                return real.step(t)

            def prf(self, seed: bytes, length: int) -> Secret:
                return msk if msk is not None else real.prf(seed, length)
            def get_mic(self, data: bytes) -> bytes:
                return real.get_mic(data)

            def verify_mic(self, data: bytes, token: bytes) -> None:
                real.verify_mic(data, token)

        return Ctx()

    def acceptor(self, bindings: bytes) -> GssAcceptor:
        return self.inner.acceptor(bindings)


def _tampered(realm: Kdc, seed: int, **change: object) -> Pair:
    h = hosts(realm)
    assert isinstance(h.a.provider, GssapiProvider)
    rogue = _Tampering(h.a.provider, **change)  # type: ignore[arg-type]
    return pair_of(Hosts(KerberosCredentials(rogue, service_principal=h.a.service_principal),
                         h.b), seed=seed)


def test_ap_req_of_another_ike_sa_is_refused(realm: Kdc) -> None:
    """docs/kerberos.md §5: the AP-REQ carries channel bindings over this IKE
    SA's IKE_SA_INIT messages; one made for another SA (spliced by a man in
    the middle) is refused on its first use."""
    _, fb = _refused(_tampered(realm, 31, bindings=bytes(32)))
    assert fb is not None and "AP-REQ refused" in fb.reason
    assert "binding" in fb.reason.lower(), fb.reason


def test_auth_not_from_the_gss_key_is_refused(realm: Kdc) -> None:
    """RFC 7296 §2.16: AUTH is keyed with the MSK from GSS_Pseudo_random;
    an AUTH under any other key fails even after a valid AP-REQ/AP-REP."""
    _, fb = _refused(_tampered(realm, 41, msk=Secret(bytes(64))))
    assert fb is not None
    assert "initiator's AUTH does not match the GSS-API key" in fb.reason, fb.reason


def test_each_ike_auth_message_lost_once_is_retransmitted(realm: Kdc) -> None:
    """RFC 7296 §2.1: the four Kerberos IKE_AUTH messages each lost once; the
    requests are resent, the responder answers a resent request from its
    cache (the AP-REQ is not presented to the GSS-API twice)."""
    from secpath.ike.engine import Datagram

    seen: set[bytes] = set()
    dropped: list[int] = []

    def lose_first_copy(d: Datagram, src: str) -> list[Datagram]:
        if d.data[18] == 35 and d.data not in seen:  # IKE_AUTH (RFC 7296 §3.1)
            seen.add(d.data)
            dropped.append(int.from_bytes(d.data[20:24], "big"))  # message ID
            return []
        return [d]

    pair = pair_of(hosts(realm), seed=51)
    pair.network = lose_first_copy
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    for _ in range(6):
        if pair.a.engine.ike_sa_state(handle) is State.ESTABLISHED and pair.b.of(IkeSaEstablished):
            break
        pair.advance(3.0)
    assert len(pair.a.of(IkeSaEstablished)) == 1 and len(pair.b.of(IkeSaEstablished)) == 1, \
        (pair.a.events, pair.b.events)
    assert not failures(pair.a) and not failures(pair.b)
    assert sorted(dropped) == [1, 1, 2, 2]  # both round trips, request and response
    check_child_pair(*installed(pair))
