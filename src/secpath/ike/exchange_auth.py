"""IKE_AUTH (RFC 7296 §1.2, §2.15): identities, PSK or certificate AUTH,
CERT/CERTREQ, and the first Child SA."""

from __future__ import annotations

from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike import auth
from secpath.ike.auth import Identity, IdType
from secpath.ike.config import IkeConfig
from secpath.ike.constants import CertEncoding, ExchangeType, NotifyType, notify_name
from secpath.ike.events import ChildSaFailed, IkeSaEstablished
from secpath.ike.exchange_child import accept_child, finish_child, request_child
from secpath.ike.exchange_init import certreq
from secpath.ike.exchange_rekey import ike_lifetimes
from secpath.ike.kerberos import GSS_TOKEN
from secpath.ike.message import Header, Message
from secpath.ike.payloads import (
    AuthPayload,
    CertPayload,
    IdiPayload,
    IdPayload,
    IdrPayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TsiPayload,
    TsrPayload,
)
from secpath.ike.proposal import esp_proposals, esp_suites
from secpath.ike.sa import IkeSa
from secpath.ike.state import State

__all__ = ["auth_request_step", "auth_response_step", "finish_initiator", "refused",
           "responder_child", "start_auth"]

_FAILED = NotifyType.AUTHENTICATION_FAILED


def _identity(p: IdPayload) -> Identity:
    try:
        ident = Identity(IdType(p.id_type), p.data)
        ident.check()
    except (ValueError, ParseError) as exc:
        raise RemoteError(f"unusable identity type {p.id_type}", notify=_FAILED) from exc
    return ident


def _own_auth(sa: IkeSa, cfg: IkeConfig, octets: bytes) -> list[Payload]:
    """CERT payloads (if any) and our AUTH over ``octets``."""
    creds = cfg.credentials
    if creds.psk is not None:
        assert sa.suite is not None
        return [AuthPayload(auth.AuthMethod.SHARED_KEY_MIC, auth.psk_auth_data(
            sa.prf, creds.psk, octets, pad=creds.psk_pad(sa.suite.prf)))]
    assert creds.certificate is not None and creds.private_key is not None
    certs: list[Payload] = [CertPayload(CertEncoding.X509_SIGNATURE,
                                        auth.certificate_der(c))
                            for c in (creds.certificate, *creds.intermediates)]
    method, data = auth.sign(creds.private_key, octets, sa.peer_hashes)
    return [*certs, AuthPayload(method, data)]


def _verify_peer(sa: IkeSa, cfg: IkeConfig, message: Message, *, ident: Identity,
                 octets: bytes, now: float) -> None:
    """RFC 7296 §2.15: check the peer's AUTH; RemoteError(AUTHENTICATION_FAILED)."""
    auth_p = message.get(AuthPayload)
    if auth_p is None:
        raise RemoteError("no AUTH payload", notify=_FAILED)
    if cfg.remote_id is not None and ident != cfg.remote_id:
        raise RemoteError(f"peer identity {ident} is not the expected {cfg.remote_id}",
                          notify=_FAILED)
    creds = cfg.credentials
    if creds.psk is not None:
        if auth_p.method != auth.AuthMethod.SHARED_KEY_MIC:
            raise RemoteError(f"AUTH method {auth_p.method}, the rule uses a PSK", notify=_FAILED)
        assert sa.suite is not None
        auth.verify_psk(sa.prf, creds.psk, octets, auth_p.data, pad=creds.psk_pad(sa.suite.prf))
        return
    certs = [c.data for c in message.all(CertPayload)
             if c.encoding == CertEncoding.X509_SIGNATURE]
    if not certs:
        raise RemoteError("certificate rule: the peer sent no X.509 certificate", notify=_FAILED)
    key = auth.validate_certificate(certs[0], certs[1:], creds.trust_anchors, ident, now)
    auth.verify_signature(key, auth_p.method, auth_p.data, octets)


# -- initiator -------------------------------------------------------------------


def start_auth(sa: IkeSa, now: float) -> None:
    cfg = sa.config
    assert sa.keys is not None
    sa.local_id = cfg.local_id
    if cfg.credentials.kerberos is not None:
        from secpath.ike.exchange_kerberos import start_kerberos

        first = start_kerberos(sa)  # docs/kerberos.md §3: IDi, IDr, GSS_TOKEN(AP-REQ)
        if first is None:
            return
        payloads = first
    else:
        octets = auth.signed_octets(sa.prf, sa.keys.sk_pi, sa.init_request, sa.nr, cfg.local_id)
        payloads = [IdiPayload(cfg.local_id.id_type, cfg.local_id.data)]
        own = _own_auth(sa, cfg, octets)
        payloads += [p for p in own if isinstance(p, CertPayload)]
        if cfg.credentials.psk is None:
            payloads.append(certreq(sa))
        if cfg.remote_id is not None:
            payloads.append(IdrPayload(cfg.remote_id.id_type, cfg.remote_id.data))
        payloads += [p for p in own if isinstance(p, AuthPayload)]
    if cfg.rule.mode == "transport":
        payloads.append(NotifyPayload(NotifyType.USE_TRANSPORT_MODE))
    spi = sa.ctx.child_spi()
    sa.first_child_spi = spi
    fa = cfg.rule.filter_action
    sa.offered_esp = esp_suites(fa.security_methods, cfg.esn, None)
    pair = cfg.selectors[0]
    payloads += [
        SaPayload(esp_proposals(fa.security_methods, spi.to_bytes(4, "big"), cfg.esn, None)),
        TsiPayload(pair.local),
        TsrPayload(pair.remote),
    ]
    header = Header(sa.spi_i, sa.spi_r, ExchangeType.IKE_AUTH, sa.next_request_id,
                    initiator=True, response=False)
    sa.send_request(sa.encode(header, payloads), None, now)


def refused(sa: IkeSa, message: Message) -> None:
    """The IKE_AUTH response carries an error notify instead of what we wait for."""
    error = next((n for n in message.all(NotifyPayload) if n.notify_type < 16384), None)
    code = error.notify_type if error is not None else _FAILED
    sa.fail(f"IKE_AUTH refused by the peer: {notify_name(code)} ({code})", code)


def auth_response_step(sa: IkeSa, message: Message, now: float) -> State | None:
    if sa.kerberos is not None:
        from secpath.ike.exchange_kerberos import kerberos_response_step

        return kerberos_response_step(sa, message, now)
    cfg = sa.config
    assert sa.keys is not None
    idr = message.get(IdrPayload)
    if idr is None:
        refused(sa, message)
        return None
    ident = _identity(idr)
    octets = auth.signed_octets(sa.prf, sa.keys.sk_pr, sa.init_response, sa.ni, ident)
    _verify_peer(sa, cfg, message, ident=ident, octets=octets, now=now)
    sa.remote_id = ident
    return finish_initiator(sa, message, now)


def finish_initiator(sa: IkeSa, message: Message, now: float) -> State:
    """The peer is authenticated: the IKE SA is up, then the first Child SA."""
    cfg = sa.config
    _established(sa, now)
    try:
        child = finish_child(sa, message, spi=sa.first_child_spi, nonces=(sa.ni, sa.nr),
                             dh=None, offered=sa.offered_esp, pair_index=0, now=now)
    except RemoteError as exc:
        sa.ctx.emit(ChildSaFailed(sa.handle, cfg.name, str(exc), exc.notify))
        if exc.notify is None and message.get(SaPayload) is not None:
            from secpath.ike.exchange_child import delete_unwanted

            sa.state = State.ESTABLISHED
            delete_unwanted(sa, message, now)
    else:
        sa.children[child.inbound_spi] = child
        sa.ctx.emit(sa.installed(child))
    sa.state = State.ESTABLISHED
    for index in range(1, len(cfg.selectors)):
        request_child(sa, index, now)  # one Child SA per further filter of the rule
    return State.ESTABLISHED


def _established(sa: IkeSa, now: float) -> None:
    ike_lifetimes(sa, now)
    assert sa.suite is not None and sa.local_id is not None and sa.remote_id is not None
    sa.ctx.emit(IkeSaEstablished(
        sa.handle, sa.peer, str(sa.local_id), str(sa.remote_id), sa.suite.name,
        sa.initiator, sa.nat_local, sa.nat_remote, sa.config.credentials.method,
    ))


# -- responder -------------------------------------------------------------------


def _pick_config(sa: IkeSa, ident: Identity, method: int) -> IkeConfig:
    psk = method == auth.AuthMethod.SHARED_KEY_MIC
    for cfg in sa.configs:
        if cfg.remote_id is not None and cfg.remote_id != ident:
            continue
        if cfg.credentials.kerberos is None and (cfg.credentials.psk is not None) == psk:
            return cfg
    raise RemoteError(f"no rule for identity {ident} with AUTH method {method}", notify=_FAILED)


def auth_request_step(sa: IkeSa, message: Message, now: float) -> State | None:
    assert sa.keys is not None
    if sa.kerberos is not None or (message.get(AuthPayload) is None
                                   and message.notify(GSS_TOKEN) is not None):
        from secpath.ike.exchange_kerberos import kerberos_request_step

        return kerberos_request_step(sa, message, now)
    header = message.header
    idi, auth_p = message.get(IdiPayload), message.get(AuthPayload)
    if idi is None or auth_p is None:
        raise RemoteError("IKE_AUTH without IDi or AUTH", notify=_FAILED)
    ident = _identity(idi)
    cfg = _pick_config(sa, ident, auth_p.method)
    octets = auth.signed_octets(sa.prf, sa.keys.sk_pi, sa.init_request, sa.nr, ident)
    _verify_peer(sa, cfg, message, ident=ident, octets=octets, now=now)
    sa.configs = (cfg,)
    sa.remote_id = ident
    sa.local_id = cfg.local_id
    ours = auth.signed_octets(sa.prf, sa.keys.sk_pr, sa.init_response, sa.ni, cfg.local_id)
    payloads: list[Payload] = [IdrPayload(cfg.local_id.id_type, cfg.local_id.data),
                               *_own_auth(sa, cfg, ours)]
    responder_child(sa, header, message, payloads, now)
    return State.ESTABLISHED


def responder_child(sa: IkeSa, header: Header, request: Message, payloads: list[Payload],
                    now: float) -> None:
    """The peer is authenticated: the IKE SA is up; answer the request of
    ``header`` with ``payloads`` and the first Child SA that ``request``
    asked for (RFC 7296 §1.2; §2.16 when they are not the same message)."""
    _established(sa, now)
    try:
        child_payloads, child = accept_child(sa, request, nonces=(sa.ni, sa.nr), now=now,
                                             dh_group=None)
    except RemoteError as exc:
        payloads.append(NotifyPayload(exc.notify or NotifyType.NO_PROPOSAL_CHOSEN))
        child = None
    except LocalError:
        payloads.append(NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN))
        child = None
    else:
        payloads += child_payloads
    sa.respond(header, payloads)
    if child is not None:
        sa.children[child.inbound_spi] = child
        sa.ctx.emit(sa.installed(child))
