"""IKE SA rekey with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.18).

The new IKE SA takes the old one's Child SAs; the initiator of the rekey
becomes the new SA's original initiator and deletes the old SA.  When both
ends rekey at once, both new SAs are made and the one with the lowest nonce
is deleted by its initiator (§2.8.2).  A rekey request while Child SAs are
being rekeyed, or after the SA was replaced, gets TEMPORARY_FAILURE (§2.25).
"""

from __future__ import annotations

from secpath.crypto.dh import DhPrivateKey, generate_dh
from secpath.crypto.kdf import derive_ike_keys, rekey_skeyseed
from secpath.errors import ParseError, RemoteError
from secpath.ike.constants import ExchangeType, NotifyType
from secpath.ike.events import IkeSaFailed, IkeSaRekeyed
from secpath.ike.message import Message
from secpath.ike.payloads import KePayload, NoncePayload, NotifyPayload, Payload, SaPayload
from secpath.ike.proposal import IkeSuite, ike_proposals, ike_suites, parse_ike, select_ike
from secpath.ike.sa import IkeSa, Request
from secpath.ike.state import State
from secpath.secret import Secret

__all__ = ["accept_ike_rekey", "adopt", "ike_lifetimes", "request_rekey_ike"]

NONCE_BYTES = 32
_RETRY_MIN, _RETRY_SPAN = 2.0, 8.0


def ike_lifetimes(sa: IkeSa, now: float) -> None:
    timing = sa.config.timing
    hard = float(sa.config.key_exchange.lifetime_s)
    jitter = int.from_bytes(sa.ctx.rng(2), "big") / 65535 * timing.rekey_jitter
    sa.soft_at = now + hard * (timing.rekey_fraction - jitter)
    sa.hard_at = now + hard


def _new_sa(sa: IkeSa, *, initiator: bool, spi_i: bytes, spi_r: bytes, suite: IkeSuite,
            ni: bytes, nr: bytes, shared: Secret, now: float) -> IkeSa:
    """The new IKE SA: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (§2.18).
    Registered, without Child SAs yet (see :func:`_adopt`)."""
    from secpath.ike.exchange_init import install_keys

    assert sa.keys is not None and sa.suite is not None
    seed = rekey_skeyseed(sa.suite.prf, sa.keys.sk_d, shared, ni, nr)
    keys = derive_ike_keys(suite.prf, suite.encryption, suite.integrity, seed,
                           ni=ni, nr=nr, spi_i=spi_i, spi_r=spi_r)
    new = IkeSa(
        ctx=sa.ctx, configs=(sa.config,), initiator=initiator, spi_i=spi_i, spi_r=spi_r,
        peer=sa.peer, local_address=sa.local_address, local_port=sa.local_port,
        state=State.ESTABLISHED, created=now, suite=suite, ni=ni, nr=nr,
        nat_local=sa.nat_local, nat_remote=sa.nat_remote, local_id=sa.local_id,
        remote_id=sa.remote_id, peer_hashes=sa.peer_hashes, last_received=now,
        peer_fragmentation=sa.peer_fragmentation,
    )
    install_keys(new, keys)
    ike_lifetimes(new, now)
    sa.ctx.register(new)
    return new


def adopt(sa: IkeSa, new: IkeSa) -> None:
    """``new`` replaces ``sa``: the Child SAs move (RFC 7296 §2.18)."""
    assert new.suite is not None
    new.children = sa.children
    sa.children = {}
    sa.state = State.REKEYED
    sa.soft_at = float("inf")
    sa.successor = new
    sa.peer_rekey = None
    sa.ctx.emit(IkeSaRekeyed(sa.handle, new.handle, new.suite.name))


def _superseded(new: IkeSa) -> None:
    """A redundant new IKE SA its peer will delete: it goes quietly."""
    new.state = State.REKEYED
    new.soft_at = float("inf")


def request_rekey_ike(sa: IkeSa, now: float) -> None:
    if sa.rekeying or sa.state is not State.ESTABLISHED:
        return
    sa.rekeying = True
    made: dict[str, object] = {}

    def build() -> list[Payload]:
        assert sa.suite is not None
        spi = sa.ctx.rng(8)
        ni = sa.ctx.rng(NONCE_BYTES)
        dh = generate_dh(sa.suite.dh_group, sa.ctx.rng,
                         allow_group1=sa.config.key_exchange.allow_dh_group1)
        made.update(spi=spi, ni=ni, dh=dh)
        suites = ike_suites(sa.config.key_exchange)
        return [SaPayload(ike_proposals(suites, spi, first_group=sa.suite.dh_group)),
                NoncePayload(ni), KePayload(dh.group, dh.public_bytes)]

    def on_response(message: Message, now: float) -> None:
        from secpath.ike.exchange_info import request_delete_ike

        sa.rekeying = False
        spi, ni, dh = made["spi"], made["ni"], made["dh"]
        assert isinstance(spi, bytes) and isinstance(ni, bytes)
        assert isinstance(dh, DhPrivateKey)
        theirs = sa.peer_rekey
        error = next((n for n in message.all(NotifyPayload) if n.notify_type < 16384), None)
        if error is not None:
            if theirs is not None:
                adopt(sa, theirs)  # the peer's rekey stands; it deletes this SA
                return
            # TEMPORARY_FAILURE (§2.25), NO_PROPOSAL_CHOSEN …: try again later
            delay = _RETRY_MIN + int.from_bytes(sa.ctx.rng(2), "big") / 65535 * _RETRY_SPAN
            sa.soft_at = min(sa.hard_at, now + delay)
            return
        sa_p, ke, nonce = message.get(SaPayload), message.get(KePayload), message.get(NoncePayload)
        suite = parse_ike(sa_p.proposals[0]) if sa_p and len(sa_p.proposals) == 1 else None
        if (suite is None or sa_p is None or ke is None or nonce is None
                or suite not in ike_suites(sa.config.key_exchange)
                or ke.dh_group != dh.group or len(sa_p.proposals[0].spi) != 8):
            sa.ctx.emit(IkeSaFailed(sa.handle, sa.peer, "IKE rekey: bad response", None))
            return
        try:
            shared = dh.shared_secret(ke.data)
        except ParseError:
            return
        ours = _new_sa(sa, initiator=True, spi_i=spi, spi_r=sa_p.proposals[0].spi,
                       suite=suite, ni=ni, nr=nonce.data, shared=shared, now=now)
        if theirs is not None and min(ours.ni, ours.nr) < min(theirs.ni, theirs.nr):
            # RFC 7296 §2.8.2: ours has the lowest nonce, it is redundant: we
            # delete it, the peer (initiator of the survivor) deletes the old SA
            adopt(sa, theirs)
            _superseded(ours)
            request_delete_ike(ours, now, "redundant rekey")
            return
        if theirs is not None:
            _superseded(theirs)  # the peer deletes its redundant one
        adopt(sa, ours)
        request_delete_ike(sa, now, "rekeyed")

    sa.request(Request(ExchangeType.CREATE_CHILD_SA, "rekey-ike", build, on_response), now)


def accept_ike_rekey(sa: IkeSa, message: Message, now: float) -> None:
    """Responder of an IKE SA rekey."""
    header = message.header
    if sa.state is not State.ESTABLISHED or sa.peer_rekey is not None or any(
        c.rekeying for c in sa.children.values()
    ):
        sa.respond(header, [NotifyPayload(NotifyType.TEMPORARY_FAILURE)])  # §2.25
        return
    sa_p, ke, nonce = message.get(SaPayload), message.get(KePayload), message.get(NoncePayload)
    if sa_p is None or ke is None or nonce is None or not 16 <= len(nonce.data) <= 256:
        raise RemoteError("IKE rekey lacks SA, KE or Nonce", notify=NotifyType.INVALID_SYNTAX)
    picked = select_ike(sa_p.proposals, ike_suites(sa.config.key_exchange))
    if picked is None or len(picked[0].spi) != 8:
        sa.respond(header, [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)])
        return
    proposal, suite = picked
    if ke.dh_group != suite.dh_group:
        sa.respond(header, [NotifyPayload(NotifyType.INVALID_KE_PAYLOAD,
                                          suite.dh_group.to_bytes(2, "big"))])
        return
    dh = generate_dh(suite.dh_group, sa.ctx.rng,
                     allow_group1=sa.config.key_exchange.allow_dh_group1)
    try:
        shared = dh.shared_secret(ke.data)
    except ParseError as exc:
        raise RemoteError(str(exc), notify=NotifyType.INVALID_SYNTAX) from exc
    spi_r = sa.ctx.rng(8)
    nr = sa.ctx.rng(NONCE_BYTES)
    chosen = type(proposal)(proposal.number, proposal.protocol_id, spi_r, proposal.transforms)
    sa.respond(header, [SaPayload((chosen,)), NoncePayload(nr),
                        KePayload(dh.group, dh.public_bytes)])
    new = _new_sa(sa, initiator=False, spi_i=proposal.spi, spi_r=spi_r, suite=suite,
                  ni=nonce.data, nr=nr, shared=shared, now=now)
    if sa.rekeying:
        sa.peer_rekey = new  # RFC 7296 §2.8.2: decided when our own response arrives
    else:
        adopt(sa, new)
