"""What secpath asks the Linux kernel's XFRM layer to hold, as data.

No I/O here: :mod:`secpath.xfrm.codec` turns these into netlink messages and
back, :mod:`secpath.xfrm.client` sends them.  The kernel data plane
(``secpath up --dataplane kernel``) builds them from the agent's Child SAs and
the SPD; the names follow ``include/uapi/linux/xfrm.h``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, TypeAlias

from secpath.secret import Secret

__all__ = [
    "Acquire",
    "Algorithm",
    "Encapsulation",
    "Expire",
    "IpAddress",
    "IpNetwork",
    "KernelEvent",
    "Lifetime",
    "Mapping",
    "Mode",
    "Policy",
    "PolicyAction",
    "PolicyDirection",
    "SaCounters",
    "SaId",
    "Selector",
    "State",
    "Template",
    "XfrmApi",
]

IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

IPPROTO_ESP = 50


class Mode(IntEnum):
    """XFRM_MODE_*."""

    TRANSPORT = 0
    TUNNEL = 1


class PolicyDirection(IntEnum):
    """XFRM_POLICY_IN / OUT / FWD."""

    IN = 0
    OUT = 1
    FWD = 2


class PolicyAction(IntEnum):
    """XFRM_POLICY_ALLOW / BLOCK."""

    ALLOW = 0
    BLOCK = 1


@dataclass(frozen=True, slots=True)
class Selector:
    """``struct xfrm_selector``: which packets a policy (or an SA) covers.
    ``protocol`` 0 and ports 0 mean any."""

    source: IpNetwork
    destination: IpNetwork
    protocol: int = 0
    source_port: int = 0
    destination_port: int = 0


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One transform with its key (``XFRMA_ALG_AEAD`` / ``_CRYPT`` / ``_AUTH_TRUNC``).

    ``name`` is the kernel's crypto name (``rfc4106(gcm(aes))``,
    ``rfc7539esp(chacha20,poly1305)``, ``cbc(aes)``, ``cbc(des3_ede)``,
    ``ecb(cipher_null)``, ``hmac(sha256)``, ``hmac(sha1)``, ``xcbc(aes)`` …).
    ``bits``: the ICV length of an AEAD, the truncation of an integrity
    algorithm (RFC 4868: 128 for HMAC-SHA-256), 0 for a cipher.  For AEADs
    ``key`` includes the 4-byte salt (RFC 4106 §8.1, RFC 7634 §2).
    """

    name: str
    key: Secret
    bits: int = 0


@dataclass(frozen=True, slots=True)
class Encapsulation:
    """RFC 3948 UDP encapsulation of an SA (``XFRMA_ENCAP``, UDP_ENCAP_ESPINUDP)."""

    source_port: int
    destination_port: int
    original_address: IpAddress | None = None


@dataclass(frozen=True, slots=True)
class Lifetime:
    """``struct xfrm_lifetime_cfg``; 0 means no limit (the kernel's XFRM_INF)."""

    soft_bytes: int = 0
    hard_bytes: int = 0
    soft_packets: int = 0
    hard_packets: int = 0
    soft_seconds: int = 0  # since the SA was added
    hard_seconds: int = 0


@dataclass(frozen=True, slots=True)
class SaId:
    """``struct xfrm_usersa_id``: how the kernel names an SA."""

    destination: IpAddress
    spi: int
    protocol: int = IPPROTO_ESP


@dataclass(frozen=True, slots=True)
class State:
    """One ESP SA (``XFRM_MSG_NEWSA`` / ``UPDSA``).

    Exactly one of ``aead`` or ``encryption`` is set; ``integrity`` only with
    ``encryption``.  ``decap_dscp`` / ``no_ecn`` are the XFRM_STATE flags
    for RFC 4301 §5.1.2 (tunnel mode).
    """

    source: IpAddress
    destination: IpAddress
    spi: int
    mode: Mode
    reqid: int
    aead: Algorithm | None = None
    encryption: Algorithm | None = None
    integrity: Algorithm | None = None
    encapsulation: Encapsulation | None = None
    replay_window: int = 32
    esn: bool = False
    lifetime: Lifetime = Lifetime()
    selector: Selector | None = None
    decap_dscp: bool = False
    no_ecn: bool = False

    @property
    def id(self) -> SaId:
        return SaId(self.destination, self.spi)


@dataclass(frozen=True, slots=True)
class Template:
    """``struct xfrm_user_tmpl``: the SA a policy needs.  Addresses are the
    tunnel endpoints (None in transport mode)."""

    mode: Mode
    reqid: int = 0
    source: IpAddress | None = None
    destination: IpAddress | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """``XFRM_MSG_NEWPOLICY``: a selector, a direction, an action, and for a
    protected path the templates of the SAs it needs.  A lower ``priority``
    value wins (the kernel's order)."""

    selector: Selector
    direction: PolicyDirection
    action: PolicyAction
    priority: int
    templates: tuple[Template, ...] = ()


@dataclass(frozen=True, slots=True)
class SaCounters:
    """An SA's use as the kernel counts it (``XFRM_MSG_GETSA``: curlft + stats)."""

    bytes: int
    packets: int
    replay_dropped: int  # stats.replay
    replay_window_dropped: int  # stats.replay_window
    integrity_failed: int


@dataclass(frozen=True, slots=True)
class Acquire:
    """``XFRM_MSG_ACQUIRE``: a packet hit a policy whose SA is missing."""

    selector: Selector
    source: IpAddress
    destination: IpAddress
    reqid: int


@dataclass(frozen=True, slots=True)
class Expire:
    """``XFRM_MSG_EXPIRE``: an SA passed its soft (``hard`` False) or hard lifetime."""

    sa: SaId
    hard: bool


@dataclass(frozen=True, slots=True)
class Mapping:
    """``XFRM_MSG_MAPPING``: the kernel saw ESP in UDP from a new address/port."""

    sa: SaId
    old_source: IpAddress
    old_port: int
    new_source: IpAddress
    new_port: int


KernelEvent: TypeAlias = Acquire | Expire | Mapping


class XfrmApi(Protocol):
    """What the kernel data plane needs of an XFRM client (the real one in
    :mod:`secpath.xfrm.client`; tests may record calls instead).  Everything
    it adds is marked as secpath's own, and only that is ever removed."""

    def add_state(self, state: State) -> None: ...

    def update_state(self, state: State) -> None: ...

    def delete_state(self, sa: SaId) -> None: ...

    def counters(self, sa: SaId) -> SaCounters: ...

    def add_policy(self, policy: Policy) -> None: ...

    def delete_policy(self, selector: Selector, direction: PolicyDirection) -> None: ...

    def remove_owned(self) -> int:
        """Delete every SA and policy secpath installed (this run or a crashed
        one); returns how many objects were removed."""
        ...

    def fileno(self) -> int:
        """The event socket, for the event loop's reader."""
        ...

    def read_events(self) -> list[KernelEvent]:
        """The kernel events ready now (never blocks)."""
        ...

    def close(self) -> None: ...
