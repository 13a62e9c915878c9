"""Events out of the IKEv2 engine (STYLE.md habit 3: frozen, slotted, no behaviour).

A Child SA event carries everything needed to build the two
``secpath.esp.SecurityAssociation`` objects (inbound and outbound) of the
pair: SPIs, the strongSwan transform name, keys (as :class:`Secret`), mode,
tunnel endpoints, UDP encapsulation, ESN and the replay window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from secpath._frozen import fast_init
from secpath.ike.selectors import TrafficSelector
from secpath.secret import Secret

__all__ = [
    "ChildSaDeleted",
    "ChildSaFailed",
    "ChildSaInstalled",
    "ChildSaRekeyed",
    "EspSaParameters",
    "Event",
    "IkeSaDeleted",
    "IkeSaEstablished",
    "IkeSaFailed",
    "IkeSaRekeyed",
]

Address = tuple[str, int]


@fast_init
@dataclass(frozen=True, slots=True)
class EspSaParameters:
    """One direction of a Child SA: the arguments of
    ``secpath.esp.SecurityAssociation``."""

    spi: int
    transform: str  # strongSwan ESP name: "aes128gcm16", "3des-sha1"
    encryption_key: Secret  # AEAD: key || 4-byte salt (RFC 4106 §8.1)
    integrity_key: Secret  # empty for AEAD
    mode: Literal["tunnel", "transport"]
    tunnel: tuple[str, str] | None  # (outer source, outer destination) in tunnel mode
    udp_encapsulation: tuple[int, int] | None  # (source port, destination port), RFC 3948
    esn: bool
    replay_window: int
    # the lifetime the peers agreed on, when the exchange negotiates one (IKEv1 quick
    # mode: the shorter of the two, RFC 2407 §4.6.3.1); None = the rule's security method
    lifetime_s: int | None = None
    lifetime_kb: int | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class IkeSaEstablished:
    ike_sa: int  # the engine's handle: our SPI of the IKE SA
    peer: Address
    local_id: str
    remote_id: str
    proposal: str  # strongSwan spelling of the chosen IKE proposal
    initiator: bool
    nat_local: bool  # our address is translated (RFC 7296 §2.23)
    nat_remote: bool
    auth_method: str = ""  # how the peer was authenticated: "kerberos", "certificate", "psk"


@dataclass(frozen=True, slots=True)
class IkeSaRekeyed:
    old_ike_sa: int
    new_ike_sa: int
    proposal: str


@dataclass(frozen=True, slots=True)
class IkeSaDeleted:
    ike_sa: int
    reason: str


@dataclass(frozen=True, slots=True)
class IkeSaFailed:
    """The IKE SA could not be set up (or died): ``reason`` says why.

    On a proposal mismatch both sides' proposals are given in strongSwan
    spelling (``local_proposals`` are ours, ``remote_proposals`` the peer's
    when we saw them)."""

    ike_sa: int
    peer: Address
    reason: str
    notify: int | None = None
    local_proposals: tuple[str, ...] = ()
    remote_proposals: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class ChildSaInstalled:
    ike_sa: int
    child_sa: int  # the engine's handle: our inbound SPI
    rule: str
    inbound: EspSaParameters
    outbound: EspSaParameters
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    initiator: bool


@dataclass(frozen=True, slots=True)
class ChildSaRekeyed:
    """``new`` replaces ``old_child_sa``; the old pair is deleted by a later
    :class:`ChildSaDeleted` once the peer confirmed (RFC 7296 §2.8)."""

    ike_sa: int
    old_child_sa: int
    new: ChildSaInstalled


@dataclass(frozen=True, slots=True)
class ChildSaDeleted:
    ike_sa: int
    child_sa: int
    inbound_spi: int
    outbound_spi: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChildSaFailed:
    """A Child SA could not be negotiated; the IKE SA itself stays up."""

    ike_sa: int
    rule: str
    reason: str
    notify: int | None = None
    local_proposals: tuple[str, ...] = ()
    remote_proposals: tuple[str, ...] = ()


Event = (
    IkeSaEstablished
    | IkeSaRekeyed
    | IkeSaDeleted
    | IkeSaFailed
    | ChildSaInstalled
    | ChildSaRekeyed
    | ChildSaDeleted
    | ChildSaFailed
)
