"""IKE_AUTH with Kerberos V5 (docs/kerberos.md §3): two round trips, as
with EAP (RFC 7296 §2.16).

    I ─ IDi, IDr, N(GSS_TOKEN: AP-REQ), SAi2, TSi, TSr ─▶ R
    I ◀─ IDr, N(GSS_TOKEN: AP-REP) ─────────────────────── R
    I ─ AUTH(201) ─────────────────────────────────────▶ R
    I ◀─ AUTH(201), SAr2, TSi, TSr ──────────────────────── R

The AUTH payloads are bound to the GSS-API context in one of two ways
(docs/kerberos.md §5), offered by the initiator in GSS_BINDING and chosen by
the responder: AUTH = prf(prf(MSK, "Key Pad for IKEv2"), <SignedOctets>)
(§2.16) with the MSK from GSS_Pseudo_random (RFC 4401); or each side sends a
GSS MIC over its signed octets (N(GSS_MIC)) and AUTH is keyed with SK_pi /
SK_pr (§2.16, methods without a shared key).  The responder stays in
INIT_DONE and the initiator in AUTH_SENT between the round trips (the step
returns the state, :mod:`secpath.ike.state`).
"""

from __future__ import annotations

from dataclasses import dataclass

from secpath.errors import RemoteError
from secpath.ike import auth
from secpath.ike.auth import Identity, IdType
from secpath.ike.constants import ExchangeType
from secpath.ike.exchange_auth import _identity, finish_initiator, refused, responder_child
from secpath.ike.kerberos import (
    BINDING_MIC,
    BINDING_PRF,
    GSS_BINDING,
    GSS_MIC,
    GSS_TOKEN,
    KERBEROS_AUTH_METHOD,
    MSK_LENGTH,
    GssAcceptor,
    GssInitiator,
    KerberosCredentials,
    KerberosError,
    channel_bindings,
    msk_seed,
    principal_identity,
    principal_realm,
    provider_bindings,
    remote_id_matches,
    target_principal,
)
from secpath.ike.message import Header, Message
from secpath.ike.payloads import AuthPayload, IdiPayload, IdrPayload, NotifyPayload, Payload
from secpath.ike.sa import IkeSa
from secpath.ike.state import State
from secpath.secret import Secret

__all__ = ["KerberosExchange", "kerberos_request_step", "kerberos_response_step",
           "start_kerberos"]

_FAILED = auth.AUTHENTICATION_FAILED


@dataclass(slots=True)
class KerberosExchange:
    """Between the two IKE_AUTH round trips: the GSS context, the peer's
    identity, the key binding (offered, then chosen), the MSK of the PRF
    binding, and (responder) the first IKE_AUTH request, whose SA and TS the
    last response answers."""

    context: GssInitiator | GssAcceptor
    peer_id: Identity
    offered: tuple[int, ...] = (BINDING_PRF,)
    binding: int = BINDING_PRF
    established: bool = False  # the context is (both round trips' second half next)
    msk: Secret | None = None
    request: Message | None = None


_BINDING_NAMES = {BINDING_PRF: "prf", BINDING_MIC: "mic"}


def _names(bindings: tuple[int, ...] | bytes) -> str:
    return ", ".join(_BINDING_NAMES.get(b, str(b)) for b in bindings) or "none"


def _own_proof(sa: IkeSa, exchange: KerberosExchange, octets: bytes, sk_p: Secret) -> list[Payload]:
    """What proves us over our signed octets: AUTH(201) keyed with the MSK;
    or N(GSS_MIC) over them and AUTH(201) keyed with our SK_p."""
    if exchange.binding == BINDING_MIC:
        try:
            mic = exchange.context.get_mic(octets)
        except KerberosError as exc:
            raise RemoteError(f"Kerberos: {exc}", notify=_FAILED) from exc
        return [NotifyPayload(GSS_MIC, mic),
                AuthPayload(KERBEROS_AUTH_METHOD, auth.psk_auth_data(sa.prf, sk_p, octets))]
    assert exchange.msk is not None
    return [AuthPayload(KERBEROS_AUTH_METHOD, auth.psk_auth_data(sa.prf, exchange.msk, octets))]


def _check_proof(sa: IkeSa, exchange: KerberosExchange, message: Message, octets: bytes,
                 sk_p: Secret, who: str) -> None:
    """The peer's AUTH(201) (and GSS_MIC) over its signed octets as we see them."""
    auth_p = message.get(AuthPayload)
    if auth_p is None or auth_p.method != KERBEROS_AUTH_METHOD:
        method = "no AUTH" if auth_p is None else f"AUTH method {auth_p.method}"
        raise RemoteError(f"Kerberos: the {who} sent {method}, not AUTH(201)", notify=_FAILED)
    if exchange.binding == BINDING_MIC:
        mic = message.notify(GSS_MIC)
        if mic is None:
            raise RemoteError(f"Kerberos: the {who} sent no GSS_MIC (MIC binding)", notify=_FAILED)
        try:
            exchange.context.verify_mic(octets, mic.data)
        except KerberosError as exc:
            raise RemoteError(f"Kerberos: the {who}'s MIC over its signed octets does not "
                              f"verify: {exc}", notify=_FAILED) from exc
        key, what = sk_p, "SK_p key"
    else:
        assert exchange.msk is not None
        key, what = exchange.msk, "GSS-API key"
    try:
        auth.verify_psk(sa.prf, key, octets, auth_p.data)  # RFC 7296 §2.16
    except RemoteError as exc:
        raise RemoteError(f"Kerberos: the {who}'s AUTH does not match the {what}",
                          notify=_FAILED) from exc


def _msk(sa: IkeSa, context: GssInitiator | GssAcceptor) -> Secret:
    # RFC 4401 §2, docs/kerberos.md §5
    return context.prf(msk_seed(sa.spi_i, sa.spi_r, sa.ni, sa.nr), MSK_LENGTH)


def _bindings(sa: IkeSa) -> bytes:
    return channel_bindings(sa.init_request, sa.init_response)


# -- initiator -------------------------------------------------------------------


def start_kerberos(sa: IkeSa) -> list[Payload] | None:
    """IDi, IDr and the AP-REQ of the first IKE_AUTH request; ``None`` when
    we cannot make one (the SA is failed with the GSS-API's reason)."""
    cfg = sa.config
    creds = cfg.credentials.kerberos
    assert creds is not None
    try:
        target = target_principal(creds, cfg.remote_id)
        peer_id = principal_identity(target)
        context = creds.provider.initiator(target, _bindings(sa))
        token = context.step(None)
        if token is None:
            raise KerberosError("GSS_Init_sec_context made no AP-REQ")
    except KerberosError as exc:
        sa.fail(f"Kerberos: no AP-REQ for {cfg.name!r}: {exc}", _FAILED)
        return None
    offered = provider_bindings(creds.provider)
    sa.kerberos = KerberosExchange(context, peer_id, offered)
    own = cfg.local_id
    return [IdiPayload(own.id_type, own.data), IdrPayload(peer_id.id_type, peer_id.data),
            NotifyPayload(GSS_TOKEN, token), NotifyPayload(GSS_BINDING, bytes(offered))]


def kerberos_response_step(sa: IkeSa, message: Message, now: float) -> State | None:
    exchange = sa.kerberos
    assert exchange is not None and sa.keys is not None and sa.local_id is not None
    if not exchange.established:
        return _ap_rep(sa, exchange, message, now)
    if message.get(AuthPayload) is None:
        refused(sa, message)
        return None
    assert sa.remote_id is not None
    octets = auth.signed_octets(sa.prf, sa.keys.sk_pr, sa.init_response, sa.ni, sa.remote_id)
    _check_proof(sa, exchange, message, octets, sa.keys.sk_pr, "responder")
    sa.kerberos = None
    return finish_initiator(sa, message, now)


def _ap_rep(sa: IkeSa, exchange: KerberosExchange, message: Message, now: float) -> State | None:
    idr, token = message.get(IdrPayload), message.notify(GSS_TOKEN)
    if idr is None or token is None:
        refused(sa, message)
        return None
    ident = _identity(idr)
    if ident != exchange.peer_id:
        raise RemoteError(f"Kerberos: the responder is {ident}, the ticket is for "
                          f"{exchange.peer_id}", notify=_FAILED)
    chosen = message.notify(GSS_BINDING)
    binding = BINDING_PRF if chosen is None else chosen.data[0] if len(chosen.data) == 1 else 0
    if binding not in exchange.offered:
        what = _names(chosen.data) if chosen is not None else "prf (no GSS_BINDING)"
        raise RemoteError(f"Kerberos: the responder chose key binding {what}, we offered "
                          f"{_names(exchange.offered)}", notify=_FAILED)
    exchange.binding = binding
    context = exchange.context
    try:
        context.step(token.data)  # RFC 4121 §4.1: AP-REP, mutual authentication
        if not context.complete:
            raise KerberosError("the context is not established after the AP-REP")
        if binding == BINDING_PRF:
            exchange.msk = _msk(sa, context)
    except KerberosError as exc:
        raise RemoteError(f"Kerberos: AP-REP refused: {exc}", notify=_FAILED) from exc
    exchange.established = True
    sa.remote_id = ident
    assert sa.keys is not None and sa.local_id is not None
    octets = auth.signed_octets(sa.prf, sa.keys.sk_pi, sa.init_request, sa.nr, sa.local_id)
    payloads = _own_proof(sa, exchange, octets, sa.keys.sk_pi)
    header = Header(sa.spi_i, sa.spi_r, ExchangeType.IKE_AUTH, sa.next_request_id,
                    initiator=True, response=False)
    sa.send_request(sa.encode(header, payloads), None, now)
    return State.AUTH_SENT


# -- responder -------------------------------------------------------------------


def kerberos_request_step(sa: IkeSa, message: Message, now: float) -> State | None:
    exchange = sa.kerberos
    if exchange is None:
        return _ap_req(sa, message)
    assert sa.keys is not None and sa.local_id is not None and exchange.request is not None
    octets = auth.signed_octets(sa.prf, sa.keys.sk_pi, sa.init_request, sa.nr, exchange.peer_id)
    _check_proof(sa, exchange, message, octets, sa.keys.sk_pi, "initiator")
    ours = auth.signed_octets(sa.prf, sa.keys.sk_pr, sa.init_response, sa.ni, sa.local_id)
    payloads = _own_proof(sa, exchange, ours, sa.keys.sk_pr)
    sa.kerberos = None
    responder_child(sa, message.header, exchange.request, payloads, now)
    return State.ESTABLISHED


def _ap_req(sa: IkeSa, message: Message) -> State:
    idi, token = message.get(IdiPayload), message.notify(GSS_TOKEN)
    if idi is None or token is None:
        raise RemoteError("Kerberos IKE_AUTH without IDi or GSS_TOKEN", notify=_FAILED)
    ident = _identity(idi)
    if ident.id_type is not IdType.RFC822_ADDR or b"@" not in ident.data:
        raise RemoteError(f"Kerberos: IDi {ident} is not a principal (ID_RFC822_ADDR name@REALM)",
                          notify=_FAILED)
    client_text = str(ident)
    cfg = next((c for c in sa.configs if c.credentials.kerberos is not None
                and remote_id_matches(c.remote_id, client_text,
                                      c.credentials.kerberos.accepted_realm)), None)
    if cfg is None:
        raise RemoteError(f"Kerberos: no kerberos rule for identity {ident}", notify=_FAILED)
    creds: KerberosCredentials | None = cfg.credentials.kerberos
    assert creds is not None
    offer = message.notify(GSS_BINDING)
    theirs = tuple(offer.data) if offer is not None else (BINDING_PRF,)  # none: PRF only
    ours = provider_bindings(creds.provider)
    binding = next((b for b in theirs if b in ours), None)
    if binding is None:
        raise RemoteError(f"Kerberos: no common key binding (the initiator offers "
                          f"{_names(theirs)}, we can do {_names(ours)})", notify=_FAILED)
    try:
        context = creds.provider.acceptor(_bindings(sa))
        reply = context.step(token.data)  # RFC 4121 §4.1: AP-REQ
        if not context.complete or reply is None:
            raise KerberosError("no AP-REP: the initiator did not ask for mutual authentication")
        client, target = context.initiator_name, context.target_name
        if ident != principal_identity(client):
            raise RemoteError(f"Kerberos: IDi {ident} is not the ticket's client {client}",
                              notify=_FAILED)
        realm = creds.accepted_realm
        if principal_realm(client) != realm:
            raise RemoteError(f"Kerberos: {client} is of realm {principal_realm(client)}, "
                              f"the rule accepts {realm}", notify=_FAILED)
        msk = _msk(sa, context) if binding == BINDING_PRF else None
        local_id = principal_identity(target)
    except KerberosError as exc:
        raise RemoteError(f"Kerberos: AP-REQ refused: {exc}", notify=_FAILED) from exc
    sa.configs = (cfg,)
    sa.remote_id, sa.local_id = ident, local_id
    sa.kerberos = KerberosExchange(context, ident, theirs, binding, True, msk, message)
    payloads: list[Payload] = [IdrPayload(local_id.id_type, local_id.data),
                               NotifyPayload(GSS_TOKEN, reply)]
    if offer is not None:
        payloads.append(NotifyPayload(GSS_BINDING, bytes([binding])))
    sa.respond(message.header, payloads)
    return State.INIT_DONE
