"""Quick mode (RFC 2409 §5.5) with and without PFS, NAT-T's UDP-encapsulated
modes and NAT-OA (RFC 3947 §5), responder lifetimes (RFC 2407 §4.6.3.1)::

    I -> R  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] [, NAT-OAi, NAT-OAr]
    R -> I  HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N(RESPONDER-LIFETIME)]
    I -> R  HDR*, HASH(3)

The responder installs its SA pair only once HASH(3) arrived, and never
sends CONNECTED: the commit bit (RFC 2408 §3.1) is ignored, which is safe
because nothing is used before HASH(3).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from secpath._wire import Reader
from secpath.crypto.dh import generate_dh
from secpath.crypto.prf import prf
from secpath.crypto.registry import ESP_ENCRYPTION, ESP_INTEGRITY
from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike.events import ChildSaFailed, ChildSaInstalled, ChildSaRekeyed
from secpath.ike.selectors import TrafficSelector, is_subset
from secpath.ike.v1.codec import (
    HashPayload,
    Header,
    IdPayload,
    KePayload,
    NatOaPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    RawPayload,
    SaPayload,
    decode_attributes,
    encode_attributes,
    maybe_payload,
    one_payload,
)
from secpath.ike.v1.constants import EncapsulationMode, ExchangeType, NotifyType, ProtocolId
from secpath.ike.v1.keys import quick_keymat
from secpath.ike.v1.proposals import (
    Phase2Suite,
    describe_phase2,
    lifetime_attributes,
    parse_phase2,
    phase2_proposals,
    phase2_suites,
    responder_lifetime,
    select_phase2,
)
from secpath.ike.v1.sa import Child, Phase1Sa, QuickMode
from secpath.secret import Secret

__all__ = ["handle_quick", "id_of_selector", "initiate_quick", "selector_of_id"]

QM = ExchangeType.QUICK_MODE
NONCE_BYTES = 32

# RFC 2407 §4.6.2.1 identification types
_ADDR = {4: 1, 6: 5}
_SUBNET = {4: 4, 6: 6}
_RANGE = {4: 7, 6: 8}


def id_of_selector(ts: TrafficSelector) -> IdPayload:
    """RFC 2407 §4.6.2: a host, a subnet when the range is one, else a range."""
    v = ts.version
    port = ts.start_port if ts.protocol and ts.start_port == ts.end_port else 0
    if ts.start == ts.end:
        return IdPayload(_ADDR[v], ts.start.packed, ts.protocol, port)
    bits = 32 if v == 4 else 128
    span = int(ts.end) - int(ts.start) + 1
    if span & (span - 1) == 0 and int(ts.start) % span == 0:
        mask = ((1 << bits) - 1) ^ (span - 1)
        return IdPayload(_SUBNET[v], ts.start.packed + mask.to_bytes(bits // 8, "big"),
                         ts.protocol, port)
    return IdPayload(_RANGE[v], ts.start.packed + ts.end.packed, ts.protocol, port)


def selector_of_id(p: IdPayload) -> TrafficSelector:
    """The traffic selector of a quick-mode ID; ParseError for other ID types."""
    size = 4 if p.id_type in (1, 4, 7) else 16 if p.id_type in (5, 6, 8) else 0
    if size == 0:
        raise ParseError(f"quick-mode ID type {p.id_type} is not an address")
    r = Reader(p.data, "quick-mode ID")
    make = ipaddress.IPv4Address if size == 4 else ipaddress.IPv6Address
    first = int.from_bytes(r.bytes(size, "address"), "big")
    if p.id_type in (1, 5):
        last = first
    elif p.id_type in (4, 6):
        mask = int.from_bytes(r.bytes(size, "mask"), "big")
        first &= mask
        last = first | (~mask & ((1 << (8 * size)) - 1))
    else:
        last = int.from_bytes(r.bytes(size, "end address"), "big")
    start, end = make(first), make(last)
    r.expect_end()
    if int(end) < int(start):
        raise ParseError("quick-mode ID range ends before it starts")
    low, high = (p.port, p.port) if p.port else (0, 65535)
    return TrafficSelector(start, end, p.protocol, low, high)


def _host(address: str) -> TrafficSelector:
    a = ipaddress.ip_address(address)
    return TrafficSelector(a, a)


def _mode(sa: Phase1Sa) -> EncapsulationMode:
    tunnel = sa.config.rule.tunnel_endpoint is not None
    if sa.udp_encapsulated:  # RFC 3947 §5: the UDP-encapsulated modes
        return EncapsulationMode.UDP_TUNNEL if tunnel else EncapsulationMode.UDP_TRANSPORT
    return EncapsulationMode.TUNNEL if tunnel else EncapsulationMode.TRANSPORT


def _suites(sa: Phase1Sa) -> tuple[Phase2Suite, ...]:
    assert sa.suite is not None
    fa = sa.config.rule.filter_action
    return phase2_suites(fa.security_methods, sa.suite.dh_group if fa.pfs else None, _mode(sa))


def _nat_oa(sa: Phase1Sa) -> list[Payload]:
    """RFC 3947 §5.2: NAT-OAi and NAT-OAr in transport mode behind a NAT."""
    if not sa.udp_encapsulated or sa.config.rule.tunnel_endpoint is not None:
        return []
    out: list[Payload] = []
    for address in ((sa.local_address, sa.peer[0]) if sa.initiator else (sa.peer[0], sa.local_address)):
        a = ipaddress.ip_address(address)
        out.append(NatOaPayload(_ADDR[a.version], a.packed))
    return out


def initiate_quick(sa: Phase1Sa, pair_index: int, now: float, old: Child | None = None) -> None:
    assert sa.suite is not None
    pair = sa.config.selectors[pair_index]
    version = ipaddress.ip_address(sa.peer[0]).version
    local = next((t for t in pair.local if t.version == version), pair.local[0])
    remote = next((t for t in pair.remote if t.version == version), pair.remote[0])
    mid = sa.new_message_id()
    qm = QuickMode(mid, True, sa.phase2_iv(mid), nonce_i=sa.ctx.rng(NONCE_BYTES),
                   spi=sa.ctx.child_spi(), suites=_suites(sa), local_ts=local, remote_ts=remote,
                   pair_index=pair_index, old=old.inbound_spi if old is not None else None)
    if not qm.suites:
        sa.ctx.emit(ChildSaFailed(sa.handle, sa.config.name,
                                  "no security method of the filter action is usable in IKEv1"))
        return
    payloads: list[Payload] = [SaPayload(phase2_proposals(qm.suites, qm.spi.to_bytes(4, "big"))),
                               NoncePayload(qm.nonce_i)]
    group = qm.suites[0].dh_group
    if group is not None:
        qm.dh = generate_dh(group, sa.ctx.rng, allow_group1=sa.config.key_exchange.allow_dh_group1)
        payloads.append(KePayload(qm.dh.public_bytes))
    payloads += [id_of_selector(local), id_of_selector(remote), *_nat_oa(sa)]
    data, qm.iv = sa.seal_hashed(QM, mid, payloads, qm.iv)
    sa.quick[mid] = qm
    sa.send_quick(qm, data, now, expect_reply=True)


def _keymat(sa: Phase1Sa, qm: QuickMode, suite: Phase2Suite, peer_spi: int,
            gxy: Secret | None) -> tuple[Secret, Secret, Secret, Secret]:
    """(inbound enc, inbound integ, outbound enc, outbound integ): each
    direction keyed with the SPI its receiver chose (RFC 2409 §5.5)."""
    assert sa.suite is not None and sa.keys is not None
    enc = ESP_ENCRYPTION[suite.encryption]
    integ = ESP_INTEGRITY[suite.integrity]
    enc_len = enc.key_bytes + enc.salt_bytes
    length = enc_len + (integ.key_bytes if integ else 0)
    out: list[Secret] = []
    for spi in (qm.spi, peer_spi):
        raw = quick_keymat(sa.suite.hash, sa.keys.skeyid_d, ProtocolId.IPSEC_ESP,
                           spi.to_bytes(4, "big"), qm.nonce_i, qm.nonce_r, length, gxy).reveal()
        out += [Secret(raw[:enc_len]), Secret(raw[enc_len:])]
    return out[0], out[1], out[2], out[3]


def _child(sa: Phase1Sa, qm: QuickMode, suite: Phase2Suite, peer_spi: int, gxy: Secret | None,
           now: float) -> Child:
    assert qm.local_ts is not None and qm.remote_ts is not None
    timing = sa.config.timing
    jitter = int.from_bytes(sa.ctx.rng(2), "big") / 65535 * timing.rekey_jitter
    # the initiator rekeys first; the responder only if the initiator has not
    # by halfway between the initiator's soft lifetime and the hard one
    fraction = timing.rekey_fraction if qm.initiator else (1 + timing.rekey_fraction) / 2
    soft = now + suite.lifetime_s * (fraction - jitter)
    return Child(qm.spi, peer_spi, suite, _keymat(sa, qm, suite, peer_spi, gxy), qm.local_ts,
                 qm.remote_ts, qm.initiator, qm.pair_index, soft, now + suite.lifetime_s)


def _install(sa: Phase1Sa, child: Child, old: int | None, now: float) -> None:
    from secpath.ike.v1.informational import send_delete_esp

    for other in sa.children.values():
        if (other.local_ts, other.remote_ts) == (child.local_ts, child.remote_ts):
            other.soft_at = float("inf")  # the new pair is the one to rekey
    sa.children[child.inbound_spi] = child
    inbound, outbound = sa.esp_parameters(child)
    event = ChildSaInstalled(sa.handle, child.inbound_spi, sa.config.name, inbound, outbound,
                             (child.local_ts,), (child.remote_ts,), child.initiator)
    previous = sa.children.get(old) if old is not None else None
    if previous is None:
        sa.ctx.emit(event)
        return
    sa.ctx.emit(ChildSaRekeyed(sa.handle, previous.inbound_spi, event))
    previous.replaced = True
    send_delete_esp(sa, [previous], now)
    sa.drop_child(previous, "rekeyed")


def handle_quick(sa: Phase1Sa, data: bytes, header: Header, now: float) -> None:
    qm = sa.quick.get(header.message_id)
    if qm is not None and data == qm.last_in:
        if qm.last_out:
            sa.send_once(qm.last_out)  # our answer was lost: the peer resent its message
        return
    if qm is not None and qm.finished is not None:
        return
    try:
        if qm is None:
            if header.message_id in sa.used_message_ids:
                return  # a finished exchange: its message is a late duplicate
            _respond(sa, data, header, now)
        elif qm.initiator:
            _initiator_reply(sa, qm, data, header, now)
        else:
            _responder_final(sa, qm, data, header, now)
    except (RemoteError, LocalError) as exc:
        sa.quick.pop(header.message_id, None)
        reason = f"quick mode: {exc}"
        local = tuple(s.name for s in _suites(sa))
        notify = exc.notify if isinstance(exc, RemoteError) else None
        sa.ctx.emit(ChildSaFailed(sa.handle, sa.config.name, reason, notify, local))


def _ids(payloads: Sequence[RawPayload]) -> tuple[IdPayload, IdPayload] | None:
    ids = [p.payload for p in payloads if isinstance(p.payload, IdPayload)]
    if not ids:
        return None
    if len(ids) != 2:
        raise RemoteError("quick mode needs both IDci and IDcr or neither",
                          notify=NotifyType.INVALID_ID_INFORMATION)
    return ids[0], ids[1]


def _respond(sa: Phase1Sa, data: bytes, header: Header, now: float) -> None:
    mid = header.message_id
    iv = sa.phase2_iv(mid)
    payloads, next_iv = sa.open(data, header, iv)
    sa.check_hash(payloads, mid)
    sa.used_message_ids.add(mid)
    sa_p = one_payload(payloads, SaPayload)
    ni = one_payload(payloads, NoncePayload).data
    ids = _ids(payloads)
    try:
        remote, local = (selector_of_id(ids[0]), selector_of_id(ids[1])) if ids else \
            (_host(sa.peer[0]), _host(sa.local_address))
    except ParseError as exc:
        raise RemoteError(str(exc), notify=NotifyType.INVALID_ID_INFORMATION) from exc
    remotes = [remote]
    if sa.nat_remote and remote.start == remote.end and sa.config.rule.tunnel_endpoint is None:
        # RFC 3947 §5.2: in transport mode the peer's ID is its original
        # address (NAT-OAi); its packets reach us from the translated one
        seen = ipaddress.ip_address(sa.peer[0])
        remotes.insert(0, TrafficSelector(seen, seen, remote.protocol, remote.start_port,
                                          remote.end_port))
    match = next(((i, r) for r in remotes for i, pair in enumerate(sa.config.selectors)
                  if is_subset([local], pair.local) and is_subset([r], pair.remote)), None)
    if match is None:
        raise RemoteError(f"proposed selectors {remote} <-> {local} are not in rule "
                          f"{sa.config.name!r}", notify=NotifyType.INVALID_ID_INFORMATION)
    index, remote = match
    ours = _suites(sa)
    picked = select_phase2(sa_p.proposals, ours)
    if picked is None:
        raise RemoteError(
            "NO-PROPOSAL-CHOSEN: no quick-mode proposal matches ours "
            f"(peer: {', '.join(describe_phase2(sa_p.proposals))})",
            notify=NotifyType.NO_PROPOSAL_CHOSEN)
    chosen, use, theirs = picked
    qm = QuickMode(mid, False, next_iv, nonce_i=ni, nonce_r=sa.ctx.rng(NONCE_BYTES),
                   spi=sa.ctx.child_spi(), suites=(use,), local_ts=local, remote_ts=remote,
                   pair_index=index)
    gxy = None
    reply: list[Payload] = [SaPayload((type(chosen)(chosen.number, chosen.protocol,
                                                    qm.spi.to_bytes(4, "big"),
                                                    chosen.transforms),)),
                            NoncePayload(qm.nonce_r)]
    if use.dh_group is not None:
        ke = one_payload(payloads, KePayload)
        qm.dh = generate_dh(use.dh_group, sa.ctx.rng,
                            allow_group1=sa.config.key_exchange.allow_dh_group1)
        try:
            gxy = qm.dh.shared_secret(ke.data)
        except ParseError as exc:
            raise RemoteError(str(exc), notify=NotifyType.INVALID_KEY_INFORMATION) from exc
        reply.append(KePayload(qm.dh.public_bytes))
    if ids is not None:
        reply += [ids[0], ids[1]]
    if (use.lifetime_s, use.lifetime_kb) != (theirs.lifetime_s, theirs.lifetime_kb):
        reply.append(NotifyPayload(NotifyType.RESPONDER_LIFETIME, ProtocolId.IPSEC_ESP,
                                   chosen.spi, encode_attributes(lifetime_attributes(use))))
    reply += _nat_oa(sa)
    qm.child = _child(sa, qm, use, int.from_bytes(chosen.spi, "big"), gxy, now)
    out, qm.iv = sa.seal_hashed(QM, mid, reply, qm.iv, prefix=ni)
    qm.last_in = data
    sa.quick[mid] = qm
    sa.send_quick(qm, out, now, expect_reply=True)


def _initiator_reply(sa: Phase1Sa, qm: QuickMode, data: bytes, header: Header, now: float
                     ) -> None:
    mid = header.message_id
    payloads, next_iv = sa.open(data, header, qm.iv)
    sa.check_hash(payloads, mid, prefix=qm.nonce_i)
    sa_p = one_payload(payloads, SaPayload)
    if len(sa_p.proposals) != 1 or len(sa_p.proposals[0].transforms) != 1 \
            or len(sa_p.proposals[0].spi) != 4:
        raise RemoteError("the responder must choose one transform with a 4-byte SPI",
                          notify=NotifyType.BAD_PROPOSAL_SYNTAX)
    chosen = sa_p.proposals[0]
    theirs = parse_phase2(chosen.transforms[0])
    mine = next((s for s in qm.suites if theirs is not None
                 and (s.encryption, s.integrity, s.dh_group, s.mode)
                 == (theirs.encryption, theirs.integrity, theirs.dh_group, theirs.mode)), None)
    if mine is None or theirs is None:
        raise RemoteError("the responder chose a transform we did not offer",
                          notify=NotifyType.NO_PROPOSAL_CHOSEN)
    qm.nonce_r = one_payload(payloads, NoncePayload).data
    seconds, kilobytes = mine.lifetime_s, mine.lifetime_kb
    for p in payloads:
        n = p.payload
        if isinstance(n, NotifyPayload) and n.notify_type == NotifyType.RESPONDER_LIFETIME:
            # RFC 2407 §4.6.3.1: the responder's shorter lifetime applies
            s, kb = responder_lifetime(decode_attributes(Reader(n.data, "RESPONDER-LIFETIME")))
            seconds = min(seconds, s) if s else seconds
            kilobytes = min(kilobytes, kb) if kb else kilobytes
    use = Phase2Suite(mine.encryption, mine.integrity, mine.dh_group, mine.mode, seconds, kilobytes)
    gxy = None
    if qm.dh is not None:
        ke = maybe_payload(payloads, KePayload)
        if ke is None:
            raise RemoteError("PFS was asked but the responder sent no KE",
                              notify=NotifyType.PAYLOAD_MALFORMED)
        try:
            gxy = qm.dh.shared_secret(ke.data)
        except ParseError as exc:
            raise RemoteError(str(exc), notify=NotifyType.INVALID_KEY_INFORMATION) from exc
    # RFC 2409 §5.5: HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
    assert sa.keys is not None and sa.suite is not None
    digest = prf(sa.suite.hash, sa.keys.skeyid_a,
                 b"\x00" + mid.to_bytes(4, "big") + qm.nonce_i + qm.nonce_r)
    out, _ = sa.seal(QM, mid, [HashPayload(digest)], next_iv)
    # kept a while: a resent message 2 means our HASH(3) was lost
    qm.last_in, qm.last_out, qm.finished, qm.retransmit_at = data, out, now, float("inf")
    sa.send_once(out)
    child = _child(sa, qm, use, int.from_bytes(chosen.spi, "big"), gxy, now)
    _install(sa, child, qm.old, now)


def _responder_final(sa: Phase1Sa, qm: QuickMode, data: bytes, header: Header, now: float
                     ) -> None:
    mid = header.message_id
    payloads, _ = sa.open(data, header, qm.iv)
    assert sa.keys is not None and sa.suite is not None and qm.child is not None
    want = prf(sa.suite.hash, sa.keys.skeyid_a,
               b"\x00" + mid.to_bytes(4, "big") + qm.nonce_i + qm.nonce_r)
    got = maybe_payload(payloads, HashPayload)
    if got is None or got.data != want:
        raise RemoteError("HASH(3) does not verify", notify=NotifyType.INVALID_HASH_INFORMATION)
    del sa.quick[mid]
    _install(sa, qm.child, None, now)
