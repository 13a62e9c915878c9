"""IKE_SA_INIT (RFC 7296 §1.2): proposals, KE, nonces, COOKIE (§2.6),
INVALID_KE_PAYLOAD (§1.2), NAT detection (§2.23)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import struct

from secpath.crypto.dh import generate_dh
from secpath.crypto.kdf import IkeSaKeys, derive_ike_keys, skeyseed
from secpath.crypto.sk import SkCipher
from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike import auth
from secpath.ike.constants import CertEncoding, ExchangeType, NotifyType, notify_name
from secpath.ike.message import Header, Message, encode_message
from secpath.ike.payloads import (
    CertReqPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
)
from secpath.ike.proposal import IkeSuite, describe, ike_proposals, ike_suites, parse_ike
from secpath.ike.sa import NAT_T_PORT, IkeSa
from secpath.ike.state import State
from secpath.secret import Secret

__all__ = [
    "NONCE_BYTES",
    "derive_keys",
    "init_response_step",
    "nat_detection_hash",
    "start_initiator",
]

NONCE_BYTES = 32  # RFC 7296 §2.10: at least half the PRF key size, 16..256
_MAX_COOKIE_TRIES = 3
_MAX_KE_RETRIES = 2


@functools.lru_cache(maxsize=1024)
def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def nat_detection_hash(spi_i: bytes, spi_r: bytes, address: str, port: int) -> bytes:
    """SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 §2.23)."""
    packed = _packed(address)
    return hashlib.sha1(spi_i + spi_r + packed + struct.pack("!H", port)).digest()  # noqa: S324


def nat_notifies(sa: IkeSa, spi_r: bytes) -> list[Payload]:
    source = nat_detection_hash(sa.spi_i, spi_r, sa.local_address, sa.local_port)
    if sa.config.force_udp_encapsulation:
        # RFC 7296 §2.23: a host may pretend to be behind a NAT to force UDP
        # encapsulation; a hash that matches no address does that
        source = hashlib.sha1(sa.ctx.rng(16)).digest()  # noqa: S324
    dest = nat_detection_hash(sa.spi_i, spi_r, sa.peer[0], sa.peer[1])
    return [NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, source),
            NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, dest)]


def check_nat(sa: IkeSa, message: Message, spi_r: bytes) -> None:
    """Set ``nat_local``/``nat_remote`` from the peer's NAT_DETECTION notifies."""
    sources = [p.data for p in message.all(NotifyPayload)
               if p.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dest = message.notify(NotifyType.NAT_DETECTION_DESTINATION_IP)
    if not sources or dest is None:
        return  # the peer does not support NAT traversal
    expected_src = nat_detection_hash(sa.spi_i, spi_r, sa.peer[0], sa.peer[1])
    sa.nat_remote = expected_src not in sources
    expected_dst = nat_detection_hash(sa.spi_i, spi_r, sa.local_address, sa.local_port)
    sa.nat_local = dest.data != expected_dst


def hash_algorithms_notify() -> NotifyPayload:
    data = b"".join(struct.pack("!H", int(h)) for h in auth.SUPPORTED_HASH_ALGORITHMS)
    return NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS, data)


def read_hash_algorithms(sa: IkeSa, message: Message) -> None:
    sa.peer_fragmentation = (
        message.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None)
    n = message.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
    if n is not None:
        data = n.data[: len(n.data) // 2 * 2]
        sa.peer_hashes = tuple(struct.unpack(f"!{len(data) // 2}H", data))


def certreq(sa: IkeSa) -> CertReqPayload:
    """CERTREQ with the SHA-1 key hashes of the CAs we trust (RFC 7296 §3.7)."""
    # a responder's candidates may start with another method of the rule
    anchors = next((c.credentials.trust_anchors for c in sa.configs
                    if c.credentials.trust_anchors), ())
    return CertReqPayload(CertEncoding.X509_SIGNATURE,
                          b"".join(auth.ca_key_hash(c) for c in anchors))


def derive_keys(sa: IkeSa, shared: Secret) -> None:
    """SKEYSEED and SK_* (RFC 7296 §2.14), then the SK payload ciphers."""
    suite = sa.suite
    assert suite is not None
    seed = skeyseed(suite.prf, sa.ni, sa.nr, shared)
    keys = derive_ike_keys(suite.prf, suite.encryption, suite.integrity, seed,
                           ni=sa.ni, nr=sa.nr, spi_i=sa.spi_i, spi_r=sa.spi_r)
    install_keys(sa, keys)


def install_keys(sa: IkeSa, keys: IkeSaKeys) -> None:
    assert sa.suite is not None
    sa.keys = keys
    enc, integ = sa.suite.encryption, sa.suite.integrity
    to_r = SkCipher(enc, integ, keys.sk_ei, keys.sk_ai)
    to_i = SkCipher(enc, integ, keys.sk_er, keys.sk_ar)
    sa.sk_out, sa.sk_in = (to_r, to_i) if sa.initiator else (to_i, to_r)


# -- initiator -------------------------------------------------------------------


def start_initiator(sa: IkeSa, now: float, group: int | None = None) -> None:
    """Send (or resend, after COOKIE/INVALID_KE_PAYLOAD) the IKE_SA_INIT request."""
    cfg = sa.config
    suites = ike_suites(cfg.key_exchange)
    group = group if group is not None else suites[0].dh_group
    if sa.dh is None or sa.dh.group != group:
        sa.dh = generate_dh(group, sa.ctx.rng, allow_group1=cfg.key_exchange.allow_dh_group1)
    if not sa.ni:
        sa.ni = sa.ctx.rng(NONCE_BYTES)
    payloads: list[Payload] = []
    if sa.cookie:
        payloads.append(NotifyPayload(NotifyType.COOKIE, sa.cookie))  # §2.6: first
    payloads += [
        SaPayload(ike_proposals(suites, first_group=group)),
        KePayload(group, sa.dh.public_bytes),
        NoncePayload(sa.ni),
        *nat_notifies(sa, bytes(8)),
    ]
    if cfg.credentials.psk is None:
        payloads.append(hash_algorithms_notify())  # RFC 7427 §4
    payloads.append(NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))  # RFC 7383 §2.3
    header = Header(sa.spi_i, bytes(8), ExchangeType.IKE_SA_INIT, 0,
                    initiator=True, response=False)
    data = encode_message(Message(header, tuple(payloads)))
    sa.init_request = data
    sa.next_request_id = 0
    sa.send_request((data,), None, now)


def _names(suites: tuple[IkeSuite, ...]) -> tuple[str, ...]:
    return tuple(s.name for s in suites)


def init_response_step(sa: IkeSa, message: Message, now: float) -> State | None:
    from secpath.ike.exchange_auth import start_auth

    cfg = sa.config
    suites = ike_suites(cfg.key_exchange)
    cookie = message.notify(NotifyType.COOKIE)
    if cookie is not None:
        if sa.cookie_tries >= _MAX_COOKIE_TRIES or not 1 <= len(cookie.data) <= 64:
            raise RemoteError("IKE_SA_INIT: COOKIE loop", notify=None)
        sa.cookie, sa.cookie_tries = cookie.data, sa.cookie_tries + 1
        start_initiator(sa, now, sa.dh.group if sa.dh else None)  # RFC 7296 §2.6
        return State.INIT_SENT
    invalid_ke = message.notify(NotifyType.INVALID_KE_PAYLOAD)
    if invalid_ke is not None:
        group = int.from_bytes(invalid_ke.data[:2], "big") if len(invalid_ke.data) >= 2 else 0
        if (sa.ke_retries >= _MAX_KE_RETRIES or group not in {s.dh_group for s in suites}
                or (sa.dh is not None and group == sa.dh.group)):
            sa.fail(f"INVALID_KE_PAYLOAD asks for group {group}, which we do not offer",
                    NotifyType.INVALID_KE_PAYLOAD, _names(suites))
            return None
        sa.ke_retries += 1
        start_initiator(sa, now, group)  # RFC 7296 §1.2: retry with the peer's group
        return State.INIT_SENT
    for n in message.all(NotifyPayload):
        if n.notify_type < 16384:
            reason = "NO_PROPOSAL_CHOSEN: the responder accepts none of our proposals" \
                if n.notify_type == NotifyType.NO_PROPOSAL_CHOSEN \
                else f"IKE_SA_INIT refused by the peer: {notify_name(n.notify_type)} ({n.notify_type})"
            sa.fail(reason, n.notify_type, _names(suites))
            return None
    sa_p, ke, nonce = message.get(SaPayload), message.get(KePayload), message.get(NoncePayload)
    if sa_p is None or ke is None or nonce is None or len(sa_p.proposals) != 1:
        raise RemoteError("IKE_SA_INIT response lacks SA, KE or Nonce", notify=None)
    chosen = parse_ike(sa_p.proposals[0])
    if chosen is None or chosen not in suites or sa.dh is None or ke.dh_group != chosen.dh_group \
            or chosen.dh_group != sa.dh.group:
        sa.fail("IKE_SA_INIT: the responder chose a proposal we did not offer",
                NotifyType.NO_PROPOSAL_CHOSEN, _names(suites), describe(sa_p.proposals))
        return None
    if not 16 <= len(nonce.data) <= 256 or message.header.spi_r == bytes(8):
        raise RemoteError("IKE_SA_INIT response: bad nonce or SPI", notify=None)
    try:
        shared = sa.dh.shared_secret(ke.data)
    except ParseError as exc:
        raise RemoteError(f"IKE_SA_INIT response: {exc}", notify=None) from exc
    sa.suite, sa.nr, sa.spi_r = chosen, nonce.data, message.header.spi_r
    sa.init_response = sa.raw_in
    derive_keys(sa, shared)
    sa.dh = None  # RFC 7296 §2.12: the private value is not needed once g^ir is made
    check_nat(sa, message, sa.spi_r)
    read_hash_algorithms(sa, message)
    if sa.udp_encapsulated and sa.local_port != NAT_T_PORT:
        # RFC 7296 §2.23: float to port 4500 after IKE_SA_INIT
        sa.local_port = NAT_T_PORT
        sa.peer = (sa.peer[0], NAT_T_PORT)
    start_auth(sa, now)
    return State.AUTH_SENT


# -- responder -------------------------------------------------------------------


def cookie_value(secret: bytes, ni: bytes, peer: str, spi_i: bytes) -> bytes:
    """Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>) (RFC 7296 §2.6)."""
    packed = _packed(peer)
    return b"\x00" + hmac.digest(secret, ni + packed + spi_i, "sha256")[:16]


def choose(message: Message) -> tuple[SaPayload, KePayload, NoncePayload]:
    """Responder: check the request and choose a suite; RemoteError with the
    notify to answer."""
    sa_p, ke, nonce = message.get(SaPayload), message.get(KePayload), message.get(NoncePayload)
    if sa_p is None or ke is None or nonce is None:
        raise RemoteError("IKE_SA_INIT request lacks SA, KE or Nonce",
                          notify=NotifyType.INVALID_SYNTAX)
    if not 16 <= len(nonce.data) <= 256:
        raise RemoteError("IKE_SA_INIT: nonce length", notify=NotifyType.INVALID_SYNTAX)
    return sa_p, ke, nonce


def respond_init(sa: IkeSa, message: Message, raw: bytes, ke: KePayload,
                 nonce: NoncePayload, chosen: Proposal) -> None:
    """Compute keys and send the IKE_SA_INIT response: the suite is chosen,
    ``chosen`` is the proposal that answers it (``select_ike``)."""
    assert sa.suite is not None
    cfg = sa.config
    try:
        sa.dh = generate_dh(sa.suite.dh_group, sa.ctx.rng,
                            allow_group1=cfg.key_exchange.allow_dh_group1)
    except LocalError as exc:
        raise RemoteError(str(exc), notify=NotifyType.NO_PROPOSAL_CHOSEN) from exc
    try:
        shared = sa.dh.shared_secret(ke.data)
    except ParseError as exc:
        raise RemoteError(f"IKE_SA_INIT: {exc}", notify=NotifyType.INVALID_SYNTAX) from exc
    sa.ni, sa.nr = nonce.data, sa.ctx.rng(NONCE_BYTES)
    sa.init_request = raw
    derive_keys(sa, shared)
    public = sa.dh.public_bytes
    sa.dh = None  # RFC 7296 §2.12: the private value is not needed once g^ir is made
    check_nat(sa, message, bytes(8))
    read_hash_algorithms(sa, message)
    payloads: list[Payload] = [
        SaPayload((chosen,)),
        KePayload(sa.suite.dh_group, public),
        NoncePayload(sa.nr),
        *nat_notifies_responder(sa),
    ]
    if any(c.credentials.psk is None for c in sa.configs):
        payloads += [certreq(sa), hash_algorithms_notify()]
    if sa.peer_fragmentation:
        payloads.append(NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    header = Header(sa.spi_i, sa.spi_r, ExchangeType.IKE_SA_INIT, 0,
                    initiator=False, response=True)
    data = encode_message(Message(header, tuple(payloads)))
    sa.init_response = data
    sa.last_response = (0, (data,))
    sa.peer_next_id = 1
    sa.transmit(data)


def nat_notifies_responder(sa: IkeSa) -> list[Payload]:
    return nat_notifies(sa, sa.spi_r)
