"""Child SAs: creation in IKE_AUTH and CREATE_CHILD_SA, rekey with PFS and
the simultaneous-rekey rule (RFC 7296 §1.3, §2.8, §2.8.1, §2.17)."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence

from secpath.crypto.dh import DhPrivateKey, generate_dh
from secpath.crypto.kdf import child_keymat, esp_keymat_bytes, split_child_keymat
from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike.constants import (
    ExchangeType,
    NotifyType,
    ProtocolId,
    TransformType,
    notify_name,
)
from secpath.ike.events import ChildSaFailed, ChildSaRekeyed
from secpath.ike.message import Message
from secpath.ike.payloads import (
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TsiPayload,
    TsrPayload,
)
from secpath.ike.proposal import (
    EspSuite,
    describe,
    esp_chosen,
    esp_proposals,
    esp_suites,
    select_esp,
)
from secpath.ike.sa import ChildSa, IkeSa, Request
from secpath.ike.selectors import TrafficSelector, is_subset, narrow
from secpath.ike.state import State
from secpath.policy.model import IpAddress
from secpath.secret import Secret

__all__ = [
    "NONCE_BYTES",
    "accept_child",
    "child_request_step",
    "delete_unwanted",
    "finish_child",
    "request_child",
]

NONCE_BYTES = 32
_RETRY_AFTER = 10.0  # seconds before a refused rekey is tried again


def _spi(value: int) -> bytes:
    return value.to_bytes(4, "big")


def lifetimes(sa: IkeSa, suite: EspSuite, now: float) -> tuple[float, float]:
    """(soft, hard) expiry of a Child SA from its security method (§2.8)."""
    methods = sa.config.rule.filter_action.security_methods
    method = next((m for m in methods
                   if (m.encryption, m.integrity) == (suite.encryption, suite.integrity)),
                  methods[0])
    timing = sa.config.timing
    hard = float(method.lifetime_s)
    jitter = int.from_bytes(sa.ctx.rng(2), "big") / 65535 * timing.rekey_jitter
    return now + hard * (timing.rekey_fraction - jitter), now + hard


def make_child(
    sa: IkeSa, suite: EspSuite, *, inbound: int, outbound: int, nonces: tuple[bytes, bytes],
    shared: Secret | None, local_ts: tuple[TrafficSelector, ...],
    remote_ts: tuple[TrafficSelector, ...], exchange_initiator: bool, pair_index: int,
    now: float,
) -> ChildSa:
    """KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr), split per §2.17."""
    assert sa.keys is not None and sa.suite is not None
    length = esp_keymat_bytes(suite.encryption, suite.integrity)
    keymat = child_keymat(sa.suite.prf, sa.keys.sk_d, nonces[0], nonces[1], length,
                          shared_secret=shared)
    keys = split_child_keymat(keymat, suite.encryption, suite.integrity)
    soft, hard = lifetimes(sa, suite, now)
    return ChildSa(inbound, outbound, suite, keys, sa.config.rule.mode, local_ts, remote_ts,
                   exchange_initiator, nonces, pair_index, soft, hard)


def _pair_of(sa: IkeSa, local: Sequence[TrafficSelector], remote: Sequence[TrafficSelector]
             ) -> tuple[int, tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]] | None:
    for index, pair in enumerate(sa.config.selectors):
        got = narrow(local, remote, [pair])
        if got is not None:
            return index, got[0], got[1]
    return None


def accept_child(
    sa: IkeSa, message: Message, *, nonces: tuple[bytes, bytes] | None, now: float,
    dh_group: int | None, old: ChildSa | None = None,
) -> tuple[list[Payload], ChildSa | None]:
    """Responder side of a Child SA (IKE_AUTH or CREATE_CHILD_SA): the
    response payloads and the new Child SA.  Raises RemoteError with the
    notify that refuses it (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE,
    INVALID_KE_PAYLOAD …).  ``nonces`` None means: take Ni from the request
    and make Nr (CREATE_CHILD_SA)."""
    cfg = sa.config
    sa_p, tsi, tsr = message.get(SaPayload), message.get(TsiPayload), message.get(TsrPayload)
    if sa_p is None or tsi is None or tsr is None:
        raise RemoteError("Child SA request lacks SA, TSi or TSr", notify=NotifyType.INVALID_SYNTAX)
    methods = cfg.rule.filter_action.security_methods
    suites = esp_suites(methods, cfg.esn, dh_group)
    offered = sa_p.proposals
    if nonces is not None:
        # IKE_AUTH carries no KE: a DH transform in its proposals is ignored
        # (RFC 7296 §1.2, as strongSwan and Windows send it with PFS configured)
        offered = tuple(dataclasses.replace(p, transforms=tuple(
            t for t in p.transforms if t.type != TransformType.DH))
            if any(t.type == TransformType.DH for t in p.transforms) else p for p in offered)
    picked = select_esp(offered, suites)
    if picked is None:
        ours = describe(esp_proposals(methods, bytes(4), cfg.esn, dh_group))
        sa.ctx.emit(ChildSaFailed(sa.handle, cfg.name, "no acceptable ESP proposal",
                                  NotifyType.NO_PROPOSAL_CHOSEN, ours, describe(sa_p.proposals)))
        raise RemoteError("no acceptable ESP proposal", notify=NotifyType.NO_PROPOSAL_CHOSEN)
    proposal, suite = picked
    transport = message.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    if transport != (cfg.rule.mode == "transport"):
        sa.ctx.emit(ChildSaFailed(sa.handle, cfg.name,
                                  f"mode mismatch: we use {cfg.rule.mode} mode",
                                  NotifyType.NO_PROPOSAL_CHOSEN))
        raise RemoteError("mode mismatch", notify=NotifyType.NO_PROPOSAL_CHOSEN)
    peer_ts, original = tsi.selectors, None
    if transport and sa.nat_remote:
        peer_ts, original = _nat_substitute(tsi.selectors, sa.peer[0])
    found = _pair_of(sa, tsr.selectors, peer_ts)
    if found is None or (old is not None and found[0] != old.pair_index):
        sa.ctx.emit(ChildSaFailed(sa.handle, cfg.name, "traffic selectors unacceptable",
                                  NotifyType.TS_UNACCEPTABLE))
        raise RemoteError("TS_UNACCEPTABLE", notify=NotifyType.TS_UNACCEPTABLE)
    pair_index, local_ts, remote_ts = found
    shared: Secret | None = None
    extra: list[Payload] = []
    if nonces is None:
        nonce = message.get(NoncePayload)
        if nonce is None or not 16 <= len(nonce.data) <= 256:
            raise RemoteError("CREATE_CHILD_SA: bad nonce", notify=NotifyType.INVALID_SYNTAX)
        nonces = (nonce.data, sa.ctx.rng(NONCE_BYTES))
        extra.append(NoncePayload(nonces[1]))
        if suite.dh_group is not None:
            shared, ke_payload = _respond_ke(sa, message, suite.dh_group)
            extra.append(ke_payload)
    inbound = sa.ctx.child_spi()
    outbound = int.from_bytes(proposal.spi, "big")
    child = make_child(sa, suite, inbound=inbound, outbound=outbound, nonces=nonces,
                       shared=shared, local_ts=local_ts, remote_ts=remote_ts,
                       exchange_initiator=False, pair_index=pair_index, now=now)
    payloads: list[Payload] = [SaPayload((esp_chosen(proposal, suite, _spi(inbound)),)),
                               *extra, TsiPayload(_restore(remote_ts, original)),
                               TsrPayload(local_ts)]
    if transport:
        payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
    return payloads, child


def _nat_substitute(
    selectors: Sequence[TrafficSelector], observed: str
) -> tuple[tuple[TrafficSelector, ...], tuple[IpAddress, IpAddress] | None]:
    """RFC 7296 §2.23.1: in transport mode behind a NAT the initiator's TSi
    names its private address; the responder matches its policy against the
    address the IKE SA comes from instead.  Returns the substituted
    selectors and (observed, original) for the response."""
    seen = ipaddress.ip_address(observed)
    out: list[TrafficSelector] = []
    original: IpAddress | None = None
    for ts in selectors:
        if ts.start == ts.end and ts.start.version == seen.version and ts.start != seen:
            original = ts.start
            out.append(dataclasses.replace(ts, start=seen, end=seen))
        else:
            out.append(ts)
    return tuple(out), (seen, original) if original is not None else None


def _restore(
    selectors: tuple[TrafficSelector, ...], original: tuple[IpAddress, IpAddress] | None
) -> tuple[TrafficSelector, ...]:
    """The narrowed TSi with the initiator's own address put back, as it
    proposed it (§2.23.1): the initiator checks the answer against its offer."""
    if original is None:
        return selectors
    seen, own = original
    return tuple(
        dataclasses.replace(ts, start=own, end=own) if ts.start == ts.end == seen else ts for ts in selectors
    )


def _respond_ke(sa: IkeSa, message: Message, group: int) -> tuple[Secret, KePayload]:
    ke = message.get(KePayload)
    if ke is None or ke.dh_group != group:
        raise RemoteError(f"PFS: KE for group {group} needed",
                          notify=NotifyType.INVALID_KE_PAYLOAD)
    dh = generate_dh(group, sa.ctx.rng, allow_group1=sa.config.key_exchange.allow_dh_group1)
    try:
        shared = dh.shared_secret(ke.data)
    except ParseError as exc:
        raise RemoteError(str(exc), notify=NotifyType.INVALID_SYNTAX) from exc
    return shared, KePayload(group, dh.public_bytes)


def finish_child(
    sa: IkeSa, message: Message, *, spi: int, nonces: tuple[bytes, bytes],
    dh: DhPrivateKey | None, offered: Sequence[EspSuite], pair_index: int, now: float,
) -> ChildSa:
    """Initiator side: check the responder's choice and derive the Child SA.
    Raises RemoteError (notify None: we delete what the peer made)."""
    cfg = sa.config
    sa_p, tsi, tsr = message.get(SaPayload), message.get(TsiPayload), message.get(TsrPayload)
    error = next((n for n in message.all(NotifyPayload) if n.notify_type < 16384), None)
    if error is not None:
        code = error.notify_type
        raise RemoteError(f"Child SA refused by the peer: {notify_name(code)} ({code})",
                          notify=code)
    if sa_p is None or tsi is None or tsr is None or len(sa_p.proposals) != 1:
        raise RemoteError("Child SA response lacks SA, TSi or TSr", notify=None)
    chosen: Proposal = sa_p.proposals[0]
    picked = select_esp([chosen], offered)
    if picked is None or len(chosen.spi) != 4:
        raise RemoteError("responder chose an ESP proposal we did not offer", notify=None)
    suite = picked[1]
    pair = cfg.selectors[pair_index]
    if not (is_subset(tsi.selectors, pair.local) and is_subset(tsr.selectors, pair.remote)):
        raise RemoteError("responder widened the traffic selectors", notify=None)
    transport = message.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    if transport != (cfg.rule.mode == "transport"):
        raise RemoteError("responder did not accept our mode", notify=None)
    shared: Secret | None = None
    if suite.dh_group is not None:
        ke = message.get(KePayload)
        if dh is None or ke is None or ke.dh_group != dh.group:
            raise RemoteError("PFS: responder sent no matching KE", notify=None)
        try:
            shared = dh.shared_secret(ke.data)
        except ParseError as exc:
            raise RemoteError(str(exc), notify=None) from exc
    return make_child(sa, suite, inbound=spi, outbound=int.from_bytes(chosen.spi, "big"),
                      nonces=nonces, shared=shared, local_ts=tsi.selectors,
                      remote_ts=tsr.selectors, exchange_initiator=True,
                      pair_index=pair_index, now=now)


# -- CREATE_CHILD_SA, initiator ------------------------------------------------------


def request_child(sa: IkeSa, pair_index: int, now: float, old: ChildSa | None = None) -> None:
    """Queue a CREATE_CHILD_SA for a new Child SA, or to rekey ``old``."""
    cfg = sa.config
    fa = cfg.rule.filter_action
    made: dict[str, object] = {}

    def build() -> list[Payload]:
        assert sa.suite is not None
        group = sa.suite.dh_group if fa.pfs else None
        spi = sa.ctx.child_spi()
        ni = sa.ctx.rng(NONCE_BYTES)
        dh = generate_dh(group, sa.ctx.rng, allow_group1=cfg.key_exchange.allow_dh_group1) \
            if group is not None else None
        made.update(spi=spi, ni=ni, dh=dh, offered=esp_suites(fa.security_methods, cfg.esn, group))
        pair = cfg.selectors[pair_index]
        payloads: list[Payload] = []
        if old is not None:
            old.rekeying = True
            payloads.append(NotifyPayload(NotifyType.REKEY_SA, b"", ProtocolId.ESP,
                                          _spi(old.inbound_spi)))
        if cfg.rule.mode == "transport":
            payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
        payloads += [SaPayload(esp_proposals(fa.security_methods, _spi(spi), cfg.esn, group)),
                     NoncePayload(ni)]
        if dh is not None:
            payloads.append(KePayload(dh.group, dh.public_bytes))
        payloads += [TsiPayload(pair.local), TsrPayload(pair.remote)]
        return payloads

    def on_response(message: Message, now: float) -> None:
        from secpath.ike.exchange_info import request_delete_child

        if old is not None:
            old.rekeying = False
        nonce = message.get(NoncePayload)
        try:
            if nonce is None and not any(n.notify_type < 16384
                                         for n in message.all(NotifyPayload)):
                raise RemoteError("CREATE_CHILD_SA response without nonce", notify=None)
            ni = made["ni"]
            spi, dh, offered = made["spi"], made["dh"], made["offered"]
            assert isinstance(ni, bytes) and isinstance(spi, int)
            assert dh is None or isinstance(dh, DhPrivateKey)
            assert isinstance(offered, tuple)
            child = finish_child(sa, message, spi=spi, nonces=(ni, nonce.data if nonce else b""),
                                 dh=dh, offered=offered, pair_index=pair_index, now=now)
        except RemoteError as exc:
            sa.ctx.emit(ChildSaFailed(sa.handle, cfg.name, str(exc), exc.notify))
            if old is not None and exc.notify == NotifyType.TEMPORARY_FAILURE:
                old.soft_at = min(old.hard_at, now + _RETRY_AFTER)  # RFC 7296 §2.25
            elif exc.notify is None and message.get(SaPayload) is not None:
                delete_unwanted(sa, message, now)
            return
        if old is not None and old.peer_rekey is not None and _redundant(child, old.peer_rekey):
            # RFC 7296 §2.8.1: ours has the lowest nonce: we delete it, the peer
            # (initiator of the surviving SA) deletes the old one
            child.replaced, child.announced = True, False
            sa.children[child.inbound_spi] = child
            request_delete_child(sa, child, now)
            return
        sa.children[child.inbound_spi] = child
        if old is None:
            sa.ctx.emit(sa.installed(child))
            return
        sa.ctx.emit(ChildSaRekeyed(sa.handle, old.inbound_spi, sa.installed(child)))
        old.replaced = True
        request_delete_child(sa, old, now)  # RFC 7296 §2.8: the rekey initiator deletes

    sa.request(Request(ExchangeType.CREATE_CHILD_SA, "rekey-child" if old else "new-child",
                       build, on_response), now)


def _redundant(ours: ChildSa, theirs: ChildSa) -> bool:
    """Ours is redundant when the lowest of the four nonces is one of ours."""
    return min(ours.nonces) < min(theirs.nonces)


def delete_unwanted(sa: IkeSa, message: Message, now: float) -> None:
    """The responder made a Child SA we refuse: delete it (RFC 7296 §2.9)."""
    from secpath.ike.exchange_info import request_delete_spis

    sa_p = message.get(SaPayload)
    if sa_p is not None and sa_p.proposals and len(sa_p.proposals[0].spi) == 4:
        request_delete_spis(sa, [sa_p.proposals[0].spi], now)


# -- CREATE_CHILD_SA, responder ------------------------------------------------------


def child_request_step(sa: IkeSa, message: Message, now: float) -> None:
    from secpath.ike.exchange_rekey import accept_ike_rekey

    if sa.state is not State.ESTABLISHED:
        # RFC 7296 §2.25: this IKE SA is being replaced or deleted
        sa.respond(message.header, [NotifyPayload(NotifyType.TEMPORARY_FAILURE)])
        return
    sa_p = message.get(SaPayload)
    if sa_p is None or not sa_p.proposals:
        raise RemoteError("CREATE_CHILD_SA without SA", notify=NotifyType.INVALID_SYNTAX)
    if sa_p.proposals[0].protocol_id == ProtocolId.IKE:
        accept_ike_rekey(sa, message, now)
        return
    header = message.header
    rekey = message.notify(NotifyType.REKEY_SA)
    old: ChildSa | None = None
    if rekey is not None:
        wanted = int.from_bytes(rekey.spi, "big") if len(rekey.spi) == 4 else -1
        old = next((c for c in sa.children.values() if c.outbound_spi == wanted), None)
        if old is None or old.deleting:
            sa.respond(header, [NotifyPayload(NotifyType.CHILD_SA_NOT_FOUND, b"",
                                              ProtocolId.ESP, rekey.spi)])
            return
    assert sa.suite is not None
    group = sa.suite.dh_group if sa.config.rule.filter_action.pfs else None
    try:
        payloads, child = accept_child(sa, message, nonces=None, now=now, dh_group=group,
                                       old=old)
    except RemoteError as exc:
        if exc.notify == NotifyType.INVALID_KE_PAYLOAD and group is not None:
            sa.respond(header, [NotifyPayload(NotifyType.INVALID_KE_PAYLOAD,
                                              group.to_bytes(2, "big"))])
        else:
            sa.respond(header, [NotifyPayload(exc.notify or NotifyType.NO_PROPOSAL_CHOSEN)])
        return
    except LocalError:
        sa.respond(header, [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)])
        return
    assert child is not None
    sa.children[child.inbound_spi] = child
    sa.respond(header, payloads)
    if old is None:
        sa.ctx.emit(sa.installed(child))
        return
    if old.rekeying:
        old.peer_rekey = child  # RFC 7296 §2.8.1: decided when our response arrives
    old.soft_at = float("inf")  # the initiator of the rekey deletes it
    sa.ctx.emit(ChildSaRekeyed(sa.handle, old.inbound_spi, sa.installed(child)))
