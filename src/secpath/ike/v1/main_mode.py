"""Main mode (RFC 2409 §5, the Identity Protection exchange of RFC 2408
§4.5) with pre-shared keys and RSA signatures, NAT-T discovery (RFC 3947
§3) and the DPD vendor ID (RFC 3706 §5.1)::

    I -> R  HDR, SA, VID*                      (1)
    R -> I  HDR, SA, VID*                      (2)
    I -> R  HDR, KE, Ni, [CR], NAT-D, NAT-D    (3)
    R -> I  HDR, KE, Nr, [CR], NAT-D, NAT-D    (4)
    I -> R  HDR*, IDii, [CERT], HASH_I | SIG_I (5)
    R -> I  HDR*, IDir, [CERT], HASH_R | SIG_R (6)
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence

from secpath.crypto.dh import generate_dh
from secpath.crypto.registry import IKE_INTEGRITY
from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike.auth import Identity, IdType, certificate_der, validate_certificate
from secpath.ike.config import IkeConfig
from secpath.ike.events import IkeSaEstablished, IkeSaFailed
from secpath.ike.v1.codec import (
    CertPayload,
    CertReqPayload,
    HashPayload,
    IdPayload,
    KePayload,
    NatDPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    RawPayload,
    SaPayload,
    SigPayload,
    VendorIdPayload,
    encode_sa_body,
)
from secpath.ike.v1.codec import (
    maybe_payload as _maybe,
)
from secpath.ike.v1.codec import (
    one_payload as _one,
)
from secpath.ike.v1.constants import (
    CERT_X509_SIGNATURE,
    DPD_VENDOR_ID,
    NAT_T_VENDOR_ID,
    AuthenticationMethod,
    ExchangeType,
    NotifyType,
    ProtocolId,
)
from secpath.ike.v1.fragments import FRAGMENTATION_VENDOR_ID, is_fragmentation_vendor_id
from secpath.ike.v1.keys import (
    Phase1Cipher,
    derive_phase1,
    hash_i,
    hash_r,
    initial_iv,
    skeyid_psk,
    skeyid_signature,
)
from secpath.ike.v1.proposals import (
    describe_phase1,
    phase1_proposal,
    phase1_suites,
    select_phase1,
)
from secpath.ike.v1.sa import NAT_T_PORT, Phase1Sa, State
from secpath.ike.v1.signatures import method_for_key, sign_hash, verify_hash

__all__ = ["auth_method", "fail", "handle_main", "respond_first", "start_main_mode"]

NONCE_BYTES = 32
MM = ExchangeType.IDENTITY_PROTECTION


def auth_method(cfg: IkeConfig) -> AuthenticationMethod:
    key = cfg.credentials.private_key
    if cfg.credentials.psk is not None or key is None:
        return AuthenticationMethod.PRE_SHARED_KEY
    return method_for_key(key)


def _vendor_ids() -> list[Payload]:
    return [VendorIdPayload(NAT_T_VENDOR_ID), VendorIdPayload(DPD_VENDOR_ID),
            VendorIdPayload(FRAGMENTATION_VENDOR_ID)]


def _note_vendor_ids(sa: Phase1Sa, payloads: Sequence[RawPayload]) -> None:
    for p in payloads:
        if isinstance(p.payload, VendorIdPayload):
            sa.peer_dpd |= p.payload.data == DPD_VENDOR_ID
            sa.peer_nat_t |= p.payload.data == NAT_T_VENDOR_ID
            sa.peer_fragmentation |= is_fragmentation_vendor_id(p.payload.data)


def fail(sa: Phase1Sa, reason: str, notify: int | None = None, *,
         local: tuple[str, ...] = (), remote: tuple[str, ...] = ()) -> None:
    sa.ctx.emit(IkeSaFailed(sa.handle, sa.peer, reason, notify, local, remote))
    sa.close(reason, emit=False)


def start_main_mode(sa: Phase1Sa, now: float) -> None:
    suites = phase1_suites(sa.config.key_exchange, auth_method(sa.config))
    if not suites:
        raise LocalError(f"rule {sa.config.name!r}: no key-exchange method usable in IKEv1 "
                         "(phase 1 has no AEAD ciphers)")
    sa_payload = SaPayload((phase1_proposal(suites),))
    sa.sai_b = encode_sa_body(sa_payload)
    sa.send_plain(MM, [sa_payload, *_vendor_ids()], now)


def respond_first(sa: Phase1Sa, payloads: Sequence[RawPayload], now: float) -> bool:
    """Message 1 at the responder: choose a suite and a rule; False when
    nothing matches (the caller answers NO-PROPOSAL-CHOSEN)."""
    sa_p = _one(payloads, SaPayload)
    _note_vendor_ids(sa, payloads)
    for cfg in sa.configs:
        ours = phase1_suites(cfg.key_exchange, auth_method(cfg))
        picked = select_phase1(sa_p.proposals, ours)
        if picked is not None:
            chosen, suite = picked
            sa.configs = (cfg, *(c for c in sa.configs if c is not cfg))
            sa.suite = suite
            sa.sai_b = encode_sa_body(sa_p)
            sa.hard_at = now + suite.lifetime_s
            reply: list[Payload] = [SaPayload((chosen,), sa_p.doi, sa_p.situation)]
            sa.send_plain(MM, [*reply, *_vendor_ids()], now)
            sa.disarm()  # the initiator resends message 1 if 2 is lost
            sa.state = State.MM_R2
            return True
    ours_all = tuple(s.name for c in sa.configs
                     for s in phase1_suites(c.key_exchange, auth_method(c)))
    fail(sa, "NO-PROPOSAL-CHOSEN: no main-mode proposal of the peer matches ours",
         NotifyType.NO_PROPOSAL_CHOSEN, local=ours_all, remote=describe_phase1(sa_p.proposals))
    return False


def _nat_d(sa: Phase1Sa, host: str, port: int) -> bytes:
    """RFC 3947 §3.2: ``HASH(CKY-I | CKY-R | IP | Port)`` with the negotiated hash."""
    assert sa.suite is not None
    data = sa.cky_i + sa.cky_r + ipaddress.ip_address(host).packed + port.to_bytes(2, "big")
    return hashlib.new(IKE_INTEGRITY[sa.suite.hash].hash_name, data).digest()


def _nat_d_payloads(sa: Phase1Sa) -> list[Payload]:
    if not sa.peer_nat_t:
        return []
    # RFC 3947 §3.2: the peer's address first, then ours
    force = sa.config.force_udp_encapsulation
    local = _nat_d(sa, sa.local_address, 0 if force else sa.local_port)
    return [NatDPayload(_nat_d(sa, *sa.peer)), NatDPayload(local)]


def _detect_nat(sa: Phase1Sa, payloads: Sequence[RawPayload]) -> None:
    hashes = [p.payload.data for p in payloads if isinstance(p.payload, NatDPayload)]
    if not sa.peer_nat_t or len(hashes) < 2:
        return
    sa.nat_local = hashes[0] != _nat_d(sa, sa.local_address, sa.local_port)
    sa.nat_remote = _nat_d(sa, *sa.peer) not in hashes[1:]


def _cert_request(sa: Phase1Sa) -> list[Payload]:
    if sa.config.credentials.psk is not None:
        return []
    return [CertReqPayload(CERT_X509_SIGNATURE, ca.subject.public_bytes())
            for ca in sa.config.credentials.trust_anchors]


def _key_exchange(sa: Phase1Sa, payloads: Sequence[RawPayload]) -> None:
    """Both KEs and nonces are known: SKEYID and the phase-1 keys (§5)."""
    assert sa.suite is not None and sa.dh is not None
    peer_ke = _one(payloads, KePayload).data
    peer_nonce = _one(payloads, NoncePayload).data
    if not 8 <= len(peer_nonce) <= 256:  # RFC 2409 §5
        raise RemoteError("nonce length out of 8..256", notify=NotifyType.PAYLOAD_MALFORMED)
    if sa.initiator:
        sa.gxr, sa.nr = peer_ke, peer_nonce
    else:
        sa.gxi, sa.ni = peer_ke, peer_nonce
    try:
        sa.gxy = sa.dh.shared_secret(peer_ke)
    except ParseError as exc:
        raise RemoteError(str(exc), notify=NotifyType.INVALID_KEY_INFORMATION) from exc
    h = sa.suite.hash
    psk = sa.config.credentials.psk
    skeyid = skeyid_psk(h, psk, sa.ni, sa.nr) if sa.suite.auth == AuthenticationMethod.PRE_SHARED_KEY \
        and psk is not None else skeyid_signature(h, sa.ni, sa.nr, sa.gxy)
    sa.keys = derive_phase1(h, skeyid, sa.gxy, sa.cky_i, sa.cky_r, sa.suite.encryption)
    sa.cipher = Phase1Cipher(sa.suite.encryption, sa.keys.encryption_key)
    sa.iv = initial_iv(h, sa.gxi, sa.gxr, sa.cipher.block)


def _id_payload(identity: Identity) -> IdPayload:
    return IdPayload(int(identity.id_type), identity.data)


def _id_body(p: IdPayload) -> bytes:
    return bytes((p.id_type, p.protocol)) + p.port.to_bytes(2, "big") + p.data


def _auth_payloads(sa: Phase1Sa, digest: bytes) -> list[Payload]:
    creds = sa.config.credentials
    if sa.suite is not None and sa.suite.auth == AuthenticationMethod.PRE_SHARED_KEY:
        return [HashPayload(digest)]
    key, cert = creds.private_key, creds.certificate
    if key is None or cert is None or sa.suite is None:
        raise LocalError(f"rule {sa.config.name!r}: signatures need a certificate and its key")
    sig = sign_hash(key, sa.suite.auth, digest)
    return [CertPayload(CERT_X509_SIGNATURE, certificate_der(cert)), SigPayload(sig)]


def _verify_peer(sa: Phase1Sa, payloads: Sequence[RawPayload], digest_of: bytes,
                 id_p: IdPayload, now: float) -> None:
    try:
        identity = Identity(IdType(id_p.id_type), id_p.data)
        identity.check()
    except (ValueError, ParseError) as exc:
        raise RemoteError(f"unusable ID payload type {id_p.id_type}",
                          notify=NotifyType.INVALID_ID_INFORMATION) from exc
    expected = sa.config.remote_id
    assert sa.suite is not None
    if sa.suite.auth == AuthenticationMethod.PRE_SHARED_KEY:
        got = _maybe(payloads, HashPayload)
        if got is None or got.data != digest_of:
            raise RemoteError("main mode HASH does not verify (wrong pre-shared key?)",
                              notify=NotifyType.AUTHENTICATION_FAILED)
        if expected is not None and identity != expected:
            raise RemoteError(f"peer identity {identity} is not the expected {expected}",
                              notify=NotifyType.AUTHENTICATION_FAILED)
    else:
        cert = _maybe(payloads, CertPayload)
        sig = _maybe(payloads, SigPayload)
        if cert is None or sig is None:
            raise RemoteError("signature authentication without CERT and SIG",
                              notify=NotifyType.AUTHENTICATION_FAILED)
        if expected is not None and identity != expected:
            raise RemoteError(f"peer identity {identity} is not the expected {expected}",
                              notify=NotifyType.AUTHENTICATION_FAILED)
        key = validate_certificate(cert.data, (), sa.config.credentials.trust_anchors,
                                   identity, now)
        verify_hash(key, sa.suite.auth, sig.data, digest_of)
    sa.remote_id = identity


def _established(sa: Phase1Sa, now: float) -> None:
    assert sa.suite is not None and sa.remote_id is not None
    sa.state = State.ESTABLISHED
    timing = sa.config.timing
    life = sa.suite.lifetime_s
    jitter = int.from_bytes(sa.ctx.rng(2), "big") / 65535 * timing.rekey_jitter
    sa.hard_at = now + life
    sa.soft_at = now + life * (timing.rekey_fraction - jitter)
    sa.dpd_seq = int.from_bytes(sa.ctx.rng(4), "big") >> 1  # RFC 3706 §5.5: a random start
    sa.ctx.emit(IkeSaEstablished(sa.handle, sa.peer, str(sa.config.local_id), str(sa.remote_id),
                                 sa.suite.name, sa.initiator, sa.nat_local, sa.nat_remote,
                                 sa.config.credentials.method))


def handle_main(sa: Phase1Sa, data: bytes, payloads: Sequence[RawPayload] | None, now: float
                ) -> None:
    """A main-mode message for an SA past message 1 (``payloads`` is None
    when the message is encrypted: it is opened here)."""
    assert sa.suite is not None or sa.state is State.MM_I1
    try:
        _step(sa, data, payloads, now)
    except RemoteError as exc:
        fail(sa, f"main mode: {exc}", exc.notify)
    except LocalError as exc:  # our own configuration cannot go on: never out of receive
        fail(sa, f"main mode: {exc}")


def _step(sa: Phase1Sa, data: bytes, payloads: Sequence[RawPayload] | None, now: float) -> None:
    from secpath.ike.v1.codec import decode_header

    if sa.state is State.MM_I1 and payloads is not None:
        sa_p = _one(payloads, SaPayload)
        _note_vendor_ids(sa, payloads)
        ours = phase1_suites(sa.config.key_exchange, auth_method(sa.config))
        if len(sa_p.proposals) != 1 or len(sa_p.proposals[0].transforms) != 1:
            raise RemoteError("the responder must choose one transform",
                              notify=NotifyType.BAD_PROPOSAL_SYNTAX)
        picked = select_phase1(sa_p.proposals, ours)
        if picked is None:
            raise RemoteError("the responder chose a transform we did not offer",
                              notify=NotifyType.NO_PROPOSAL_CHOSEN)
        sa.suite = picked[1]
        sa.dh = generate_dh(sa.suite.dh_group, sa.ctx.rng,
                            allow_group1=sa.config.key_exchange.allow_dh_group1)
        sa.gxi, sa.ni = sa.dh.public_bytes, sa.ctx.rng(NONCE_BYTES)
        sa.state = State.MM_I3
        sa.send_plain(MM, [KePayload(sa.gxi), NoncePayload(sa.ni), *_cert_request(sa),
                           *_nat_d_payloads(sa)], now)
    elif sa.state is State.MM_R2 and payloads is not None:
        assert sa.suite is not None
        sa.dh = generate_dh(sa.suite.dh_group, sa.ctx.rng,
                            allow_group1=sa.config.key_exchange.allow_dh_group1)
        sa.gxr, sa.nr = sa.dh.public_bytes, sa.ctx.rng(NONCE_BYTES)
        _key_exchange(sa, payloads)
        _detect_nat(sa, payloads)
        sa.state = State.MM_R4
        sa.send_plain(MM, [KePayload(sa.gxr), NoncePayload(sa.nr), *_cert_request(sa),
                           *_nat_d_payloads(sa)], now)
        sa.disarm()
    elif sa.state is State.MM_I3 and payloads is not None:
        _key_exchange(sa, payloads)
        _detect_nat(sa, payloads)
        if sa.nat_local or sa.nat_remote or sa.config.force_udp_encapsulation:
            # RFC 3947 §4: float to 4500 from message 5 on
            sa.local_port = NAT_T_PORT
            sa.peer = (sa.peer[0], NAT_T_PORT)
        assert sa.suite is not None and sa.keys is not None
        id_p = _id_payload(sa.config.local_id)
        digest = hash_i(sa.suite.hash, sa.keys.skeyid, sa.gxi, sa.gxr, sa.cky_i, sa.cky_r,
                        sa.sai_b, _id_body(id_p))
        out: list[Payload] = [id_p, *_auth_payloads(sa, digest)]
        if sa.ctx.first_contact(sa):  # RFC 2407 §4.6.3.3: only with no other SA to the peer
            out.append(NotifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP,
                                     sa.cky_i + sa.cky_r))
        message, sa.iv = sa.seal(MM, 0, out, sa.iv)
        sa.state = State.MM_I5
        sa.last_out = message
        sa.send_once(message)
        sa.sent_at, sa.tries = now, 1
        sa.retransmit_at = now + sa.config.timing.retransmit_timeout
    elif sa.state in (State.MM_R4, State.MM_I5) and payloads is None:
        assert sa.suite is not None and sa.keys is not None
        header = decode_header(data)
        try:
            got, next_iv = sa.open(data, header, sa.iv)
        except ParseError as exc:
            psk = sa.suite.auth == AuthenticationMethod.PRE_SHARED_KEY
            raise RemoteError(
                f"message {5 if sa.state is State.MM_R4 else 6} does not decrypt to valid "
                f"payloads{' (wrong pre-shared key?)' if psk else ''}: {exc}",
                notify=NotifyType.AUTHENTICATION_FAILED if psk
                else NotifyType.PAYLOAD_MALFORMED) from exc
        id_p = _one(got, IdPayload)
        args = (sa.suite.hash, sa.keys.skeyid, sa.gxi, sa.gxr, sa.cky_i, sa.cky_r, sa.sai_b,
                _id_body(id_p))
        if sa.state is State.MM_I5:
            _verify_peer(sa, got, hash_r(*args), id_p, now)
            sa.iv = next_iv
            sa.disarm()
            _established(sa, now)
            return
        _verify_peer(sa, got, hash_i(*args), id_p, now)
        sa.iv = next_iv
        if any(isinstance(p.payload, NotifyPayload)
               and p.payload.notify_type == NotifyType.INITIAL_CONTACT for p in got):
            sa.ctx.initial_contact(sa)  # RFC 2407 §4.6.3.3: the peer has no older SAs
        mine = _id_payload(sa.config.local_id)
        digest = hash_r(sa.suite.hash, sa.keys.skeyid, sa.gxi, sa.gxr, sa.cky_i, sa.cky_r,
                        sa.sai_b, _id_body(mine))
        message, sa.iv = sa.seal(MM, 0, [mine, *_auth_payloads(sa, digest)], sa.iv)
        sa.last_out = message
        sa.send_once(message)
        _established(sa, now)
    # anything else (a late or out-of-order message) is dropped
