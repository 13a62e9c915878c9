"""The two key bindings of the Kerberos method (docs/kerberos.md §5) against
a real MIT KDC: AUTH keyed with GSS_Pseudo_random's MSK, or GSS MICs over the
signed octets with AUTH keyed by SK_pi/SK_pr — negotiated in GSS_BINDING,
the MIC binding forced by the provider option a GSS library without
gss_pseudo_random gets.  A modified IKE_SA_INIT makes the MIC binding fail
even with the channel bindings out of the way."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from secpath.ike.engine import Datagram, IkeEngine
from secpath.ike.events import IkeSaEstablished, IkeSaFailed
from secpath.ike.gss import GssapiProvider
from secpath.ike.kerberos import (
    BINDING_MIC,
    BINDING_PRF,
    GssAcceptor,
    GssInitiator,
    KerberosCredentials,
)
from secpath.ike.message import decode_message, encode_message
from secpath.ike.payloads import NotifyPayload
from secpath.secret import Secret

from ..kdc import Kdc, needs_kdc
from .harness import A_ADDR, B_ADDR, Pair, Side, seeded_rng
from .test_ike_handshake import check_child_pair, installed
from .test_kerberos_handshake import A_HOST, B_HOST, kerberos_config

pytestmark = needs_kdc


@dataclass
class Calls:
    prf: int = 0
    get_mic: int = 0
    verify_mic: int = 0
    channel: list[bytes] = field(default_factory=list)


class Watching:
    """A real provider whose contexts count their PRF and MIC calls;
    ``channel`` replaces the channel bindings (to take them out of a test)."""

    def __init__(self, inner: GssapiProvider, channel: bytes | None = None,
                 key_bindings: tuple[int, ...] | None = None) -> None:
        self.inner, self.channel, self.calls = inner, channel, Calls()
        self.key_bindings = key_bindings or inner.key_bindings

    @property
    def principal(self) -> str:
        return self.inner.principal

    @property
    def default_realm(self) -> str:
        return self.inner.default_realm

    def _wrap(self, real: GssInitiator | GssAcceptor) -> _Ctx:
        return _Ctx(real, self.calls)

    def initiator(self, target: str, bindings: bytes) -> GssInitiator:
        self.calls.channel.append(bindings)
        return self._wrap(self.inner.initiator(target, self.channel or bindings))

    def acceptor(self, bindings: bytes) -> GssAcceptor:
        self.calls.channel.append(bindings)
        return self._wrap(self.inner.acceptor(self.channel or bindings))


class _Ctx:
    def __init__(self, real: GssInitiator | GssAcceptor, calls: Calls) -> None:
        self.real, self.calls = real, calls

    @property
    def complete(self) -> bool:
        return self.real.complete

    @property
    def initiator_name(self) -> str:  # an acceptor's
        return str(self.real.initiator_name)  # type: ignore[union-attr]

    @property
    def target_name(self) -> str:  # an acceptor's
        return str(self.real.target_name)  # type: ignore[union-attr]

    def step(self, token: bytes | None) -> bytes | None:
        return self.real.step(token)  # type: ignore[arg-type]

    def prf(self, seed: bytes, length: int) -> Secret:
        self.calls.prf += 1
        return self.real.prf(seed, length)

    def get_mic(self, data: bytes) -> bytes:
        self.calls.get_mic += 1
        return self.real.get_mic(data)

    def verify_mic(self, data: bytes, token: bytes) -> None:
        self.calls.verify_mic += 1
        self.real.verify_mic(data, token)


def pair(realm: Kdc, a_prf: bool, b_prf: bool, seed: int, *, channel: bytes | None = None,
         a_offer: tuple[int, ...] | None = None) -> tuple[Pair, Watching, Watching]:
    a = Watching(GssapiProvider(keytab=realm.host(A_HOST), prf=a_prf), channel, a_offer)
    b = Watching(GssapiProvider(keytab=realm.host(B_HOST), prf=b_prf), channel)
    a_creds = KerberosCredentials(a, service_principal=realm.principal(B_HOST))
    b_creds = KerberosCredentials(b)
    side_a = Side(IkeEngine([kerberos_config(A_ADDR, B_ADDR, a_creds)], seeded_rng(seed)), A_ADDR)
    side_b = Side(IkeEngine([kerberos_config(B_ADDR, A_ADDR, b_creds)], seeded_rng(seed + 1)), B_ADDR)
    return Pair(side_a, side_b), a, b


@pytest.mark.parametrize(("a_prf", "b_prf", "binding"), [
    (True, True, BINDING_PRF),
    (False, True, BINDING_MIC),  # the initiator's library has no gss_pseudo_random
    (True, False, BINDING_MIC),  # the responder's has none
    (False, False, BINDING_MIC),
])
def test_both_bindings_authenticate(realm: Kdc, a_prf: bool, b_prf: bool, binding: int) -> None:
    p, a, b = pair(realm, a_prf, b_prf, seed=60 + 2 * a_prf + b_prf)
    p.a.engine.initiate("path", p.now)
    p.run()
    assert len(p.a.of(IkeSaEstablished)) == 1 and len(p.b.of(IkeSaEstablished)) == 1, \
        (p.a.events, p.b.events)
    check_child_pair(*installed(p))
    if binding == BINDING_PRF:
        assert (a.calls.prf, b.calls.prf) == (1, 1)
        assert a.calls.get_mic == a.calls.verify_mic == b.calls.get_mic == b.calls.verify_mic == 0
    else:
        assert a.calls.prf == b.calls.prf == 0
        # each side made one MIC over its signed octets and verified the peer's
        assert (a.calls.get_mic, a.calls.verify_mic, b.calls.get_mic, b.calls.verify_mic) == (1, 1, 1, 1)
    assert p.delivered == 6


def test_no_common_binding_is_refused(realm: Kdc) -> None:
    """An initiator that offers the PRF binding only (as before GSS_BINDING
    existed) and a responder that cannot do it: refused with both lists."""
    p, _, _ = pair(realm, True, False, seed=70, a_offer=(BINDING_PRF,))
    p.a.engine.initiate("path", p.now)
    p.run()
    fb = p.b.of(IkeSaFailed)
    assert fb and "no common key binding (the initiator offers prf, we can do mic)" in fb[0].reason, \
        p.b.events
    assert p.a.of(IkeSaFailed) and not p.a.of(IkeSaEstablished)


def _modify_ike_sa_init(d: Datagram, src: str) -> list[Datagram]:
    """A man in the middle changes the IKE_SA_INIT request: an extra
    (private-use, ignored) notify; keys do not change, RealMessage1 does."""
    if src == A_ADDR and d.data[18] == 34 and not d.data[19] & 0x20:
        m = decode_message(d.data)
        changed = type(m)(m.header, (*m.payloads, NotifyPayload(40999, b"spliced")))
        return [Datagram(encode_message(changed), d.destination, d.source_port)]
    return [d]


def test_modified_ike_sa_init_fails_the_mic_binding(realm: Kdc) -> None:
    # the channel bindings are the same constant at both ends here: only the
    # MIC binding stands between the two views of IKE_SA_INIT
    fixed = bytes(32)
    control, _, _ = pair(realm, False, False, seed=80, channel=fixed)
    control.a.engine.initiate("path", control.now)
    control.run()
    assert len(control.b.of(IkeSaEstablished)) == 1, control.b.events

    p, a, b = pair(realm, False, False, seed=82, channel=fixed)
    p.network = _modify_ike_sa_init
    p.a.engine.initiate("path", p.now)
    p.run()
    assert not p.a.of(IkeSaEstablished) and not p.b.of(IkeSaEstablished)
    fb = p.b.of(IkeSaFailed)
    assert fb and "initiator's MIC over its signed octets does not verify" in fb[0].reason, p.b.events
    assert b.calls.verify_mic == 1 and b.calls.get_mic == 0
    fa = p.a.of(IkeSaFailed)
    assert fa and "AUTHENTICATION_FAILED" in fa[0].reason, p.a.events
    # the two ends did see different IKE_SA_INIT requests (the real channel bindings differ)
    assert a.calls.channel[0] != b.calls.channel[0]
