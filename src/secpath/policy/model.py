"""The policy model: the guide's IP Security Policy Wizard as frozen data.

    Policy → Rules; each Rule = filter list + filter action + ordered
    authentication methods + connection type + tunnel setting;
    plus the IKE key-exchange ("main mode") settings.

Objects are validated by :mod:`secpath.policy.loader`; constructing them by
hand is allowed (tests, the planner) and they check their own invariants.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal, TypeAlias

from secpath.crypto.registry import (
    DH_GROUPS,
    ESP_ENCRYPTION,
    ESP_INTEGRITY,
    IKE_ENCRYPTION,
    IKE_INTEGRITY,
    esp_proposal_name,
    ike_proposal_name,
)
from secpath.errors import LocalError

__all__ = [
    "ANY_PORT",
    "PROTOCOL_NAMES",
    "Address",
    "AddressKind",
    "AuthMethod",
    "Behavior",
    "CertificateAuth",
    "ConnectionType",
    "Filter",
    "FilterAction",
    "FilterList",
    "IpAddress",
    "IpNetwork",
    "KerberosAuth",
    "KeyExchange",
    "KeyExchangeMethod",
    "Local",
    "MonitorSettings",
    "Policy",
    "PortRange",
    "PskAuth",
    "Rule",
    "SecurityMethod",
]

IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

# IP protocol numbers by the names the guide's filter wizard offers
PROTOCOL_NAMES: dict[str, int] = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}


class AddressKind(Enum):
    ME = "me"  # "My IP address": the policy's local addresses
    ANY = "any"  # "Any IP address"
    NETWORK = "network"  # a specific IP address (a /32 or /128) or subnet
    DNS = "dns"  # "A specific DNS name": resolved when the policy is applied


@dataclass(frozen=True, slots=True)
class Address:
    """One end of a filter, as the filter wizard offers it."""

    kind: AddressKind
    network: IpNetwork | None = None
    dns_name: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is AddressKind.NETWORK) != (self.network is not None):
            raise LocalError("Address: a network is given exactly for kind NETWORK")
        if (self.kind is AddressKind.DNS) != (self.dns_name is not None):
            raise LocalError("Address: a DNS name is given exactly for kind DNS")

    @classmethod
    def me(cls) -> Address:
        return cls(AddressKind.ME)

    @classmethod
    def any(cls) -> Address:
        return cls(AddressKind.ANY)

    @classmethod
    def of(cls, text: str) -> Address:
        """An address or subnet: ``10.0.0.1``, ``10.0.0.0/24``, ``2001:db8::/32``."""
        return cls(AddressKind.NETWORK, ipaddress.ip_network(text, strict=True))

    @property
    def is_host(self) -> bool:
        n = self.network
        return n is not None and n.num_addresses == 1

    def __str__(self) -> str:
        if self.kind is AddressKind.NETWORK:
            assert self.network is not None
            return str(self.network.network_address) if self.is_host else str(self.network)
        if self.kind is AddressKind.DNS:
            assert self.dns_name is not None
            return self.dns_name
        return str(self.kind.value)


@dataclass(frozen=True, slots=True)
class PortRange:
    """Inclusive port range; ``ANY_PORT`` is 0–65535."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high <= 65535:
            raise LocalError(f"PortRange: need 0 <= low <= high <= 65535, got {self.low}-{self.high}")

    @property
    def is_any(self) -> bool:
        return self.low == 0 and self.high == 65535

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        if self.is_any:
            return "any"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


ANY_PORT = PortRange(0, 65535)


@dataclass(frozen=True, slots=True)
class Filter:
    """One IP filter: traffic from ``source`` to ``destination``.

    ``protocol`` is an IP protocol number or ``None`` for any.  ``mirrored``
    ("Mirrored. Match packets with the exact opposite source and destination
    addresses") makes it match the reverse direction too.
    """

    source: Address
    destination: Address
    protocol: int | None = None
    source_port: PortRange = ANY_PORT
    destination_port: PortRange = ANY_PORT
    mirrored: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if self.protocol is not None and not 0 <= self.protocol <= 255:
            raise LocalError(f"Filter: protocol must be 0-255, got {self.protocol}")
        if self.protocol not in (6, 17) and not (self.source_port.is_any and self.destination_port.is_any):
            raise LocalError("Filter: ports can be given only for tcp (6) or udp (17)")


@dataclass(frozen=True, slots=True)
class FilterList:
    name: str
    filters: tuple[Filter, ...]
    description: str = ""


class Behavior(Enum):
    """Filter Action General Options."""

    PERMIT = "permit"
    BLOCK = "block"
    NEGOTIATE = "negotiate"  # "Negotiate security"


@dataclass(frozen=True, slots=True)
class SecurityMethod:
    """One ESP proposal of a filter action ("IP Traffic Security")."""

    encryption: str  # key of ESP_ENCRYPTION
    integrity: str  # key of ESP_INTEGRITY; "none" with an AEAD cipher
    lifetime_kb: int = 100_000
    lifetime_s: int = 3600

    def __post_init__(self) -> None:
        if self.encryption not in ESP_ENCRYPTION:
            raise LocalError(f"SecurityMethod: unknown encryption {self.encryption!r}")
        if self.integrity not in ESP_INTEGRITY:
            raise LocalError(f"SecurityMethod: unknown integrity {self.integrity!r}")
        aead = ESP_ENCRYPTION[self.encryption].aead
        if aead and self.integrity != "none":
            raise LocalError(f"SecurityMethod: {self.encryption} is AEAD: integrity must be 'none'")
        if not aead and self.integrity == "none":
            raise LocalError(f"SecurityMethod: {self.encryption} needs an integrity algorithm")
        if self.lifetime_kb <= 0 or self.lifetime_s <= 0:
            raise LocalError("SecurityMethod: lifetimes must be positive")

    @property
    def proposal(self) -> str:
        """strongSwan's spelling: ``aes128gcm16``, ``3des-sha1``, ``null-sha256``."""
        return esp_proposal_name(self.encryption, self.integrity)


@dataclass(frozen=True, slots=True)
class FilterAction:
    name: str
    behavior: Behavior
    security_methods: tuple[SecurityMethod, ...] = ()
    # False = "Do not communicate with computers that do not support IPsec"
    allow_unsecured_fallback: bool = False
    # "Accept unsecured communication, but always respond using IPsec"
    accept_unsecured_inbound: bool = False
    # "Use session key perfect forward secrecy (PFS)"
    pfs: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.behavior is Behavior.NEGOTIATE and not self.security_methods:
            raise LocalError(f"FilterAction {self.name!r}: negotiate needs a security method")


@dataclass(frozen=True, slots=True)
class KerberosAuth:
    """Active Directory Kerberos V5 (the guide's default)."""

    realm: str | None = None
    service_principal: str | None = None
    keytab: Path | None = None
    ccache: str | None = None
    client_keytab: Path | None = None
    method: Literal["kerberos"] = "kerberos"


@dataclass(frozen=True, slots=True)
class CertificateAuth:
    """X.509 certificates issued by ``ca``."""

    ca: Path
    certificate: Path | None = None
    private_key: Path | None = None
    method: Literal["certificate"] = "certificate"


@dataclass(frozen=True, slots=True)
class PskAuth:
    """Preshared key, read from ``secret_file`` (never inline)."""

    secret_file: Path
    method: Literal["psk"] = "psk"


AuthMethod: TypeAlias = KerberosAuth | CertificateAuth | PskAuth


class ConnectionType(Enum):
    """Network Type in the rule wizard."""

    ALL = "all"
    LAN = "lan"
    REMOTE_ACCESS = "remote-access"


@dataclass(frozen=True, slots=True)
class Rule:
    """An IP Security Rule: what traffic, what to do, how to authenticate."""

    name: str
    filter_list: FilterList
    filter_action: FilterAction
    authentication: tuple[AuthMethod, ...] = ()
    connection_type: ConnectionType = ConnectionType.ALL
    # None = transport mode ("do not specify a tunnel"); an address = tunnel mode
    tunnel_endpoint: IpAddress | None = None
    # IKE peer address; default: the tunnel endpoint, or the filters' single remote host
    peer: IpAddress | None = None
    # identity expected of the peer; default: its address
    remote_id: str | None = None
    # "trap": negotiate on the first matching packet; "start": at load; "none": respond only
    start: Literal["trap", "start", "none"] = "trap"
    ike_version: Literal[1, 2] = 2

    def __post_init__(self) -> None:
        if self.filter_action.behavior is Behavior.NEGOTIATE and not self.authentication:
            raise LocalError(f"Rule {self.name!r}: negotiate needs an authentication method")

    @property
    def mode(self) -> Literal["tunnel", "transport"]:
        return "transport" if self.tunnel_endpoint is None else "tunnel"


@dataclass(frozen=True, slots=True)
class KeyExchangeMethod:
    """One IKE proposal ("Key Exchange Security Method")."""

    integrity: str  # key of IKE_INTEGRITY; also picks the PRF (prf<hash>)
    encryption: str  # key of IKE_ENCRYPTION
    dh_group: int  # IANA number, key of DH_GROUPS

    def __post_init__(self) -> None:
        if self.integrity not in IKE_INTEGRITY:
            raise LocalError(f"KeyExchangeMethod: unknown integrity {self.integrity!r}")
        if self.encryption not in IKE_ENCRYPTION:
            raise LocalError(f"KeyExchangeMethod: unknown encryption {self.encryption!r}")
        if self.dh_group not in DH_GROUPS:
            raise LocalError(f"KeyExchangeMethod: unknown DH group {self.dh_group!r}")

    @property
    def proposal(self) -> str:
        """strongSwan's spelling: ``aes128-sha256-modp2048``."""
        return ike_proposal_name(self.encryption, self.integrity, self.dh_group)


@dataclass(frozen=True, slots=True)
class KeyExchange:
    """IKE ("main mode") settings."""

    methods: tuple[KeyExchangeMethod, ...]
    lifetime_s: int = 28800
    # "Master key perfect forward secrecy": a new DH for every IKE SA rekey
    master_key_pfs: bool = False
    # DH group 1 is refused unless this is set (DESIGN.md, security defaults)
    allow_dh_group1: bool = False

    def __post_init__(self) -> None:
        if self.lifetime_s <= 0:
            raise LocalError("KeyExchange: lifetime_s must be positive")
        if not self.allow_dh_group1 and any(m.dh_group == 1 for m in self.methods):
            raise LocalError("KeyExchange: DH group 1 needs allow_dh_group1 = true")


@dataclass(frozen=True, slots=True)
class Local:
    """This host: its IKE identity and addresses (what ``me`` means)."""

    addresses: tuple[IpAddress, ...]
    id: str | None = None  # default: the first address

    @property
    def identity(self) -> str:
        if self.id is not None:
            return self.id
        return str(self.addresses[0]) if self.addresses else ""


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """``[monitor]``: how the daemon shows what it does."""

    prometheus: tuple[str, int] | None = None  # listen address of /metrics
    log_file: Path | None = None  # the negotiation ("Oakley") log
    log_level: int = 0  # 0 off, 1 SA events, 2 + every IKE message, 3 + payloads
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 3


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    local: Local
    key_exchange: KeyExchange
    rules: tuple[Rule, ...]
    description: str = ""
    # "Activate the default response rule": the guide says do not
    default_response_rule: bool = False
    filter_lists: tuple[FilterList, ...] = ()
    filter_actions: tuple[FilterAction, ...] = ()
    monitor: MonitorSettings = MonitorSettings()
    source: Path | None = field(default=None, compare=False)

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise LocalError(f"policy {self.name!r} has no rule {name!r}")
