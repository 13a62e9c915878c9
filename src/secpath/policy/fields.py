"""The policy file format as data: every section and key, its type, what it
accepts and what it means.

One table drives both the loader (unknown keys, type checks) and the JSON
Schema (``secpath schema``), so the two cannot drift apart.  Accepted values
come from the model's enums and the transforms registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from secpath.crypto.registry import (
    DH_GROUP_ALIASES,
    DH_GROUPS,
    ESP_ENCRYPTION,
    ESP_INTEGRITY,
    IKE_ENCRYPTION,
    IKE_INTEGRITY,
)
from secpath.policy.model import PROTOCOL_NAMES, Behavior, ConnectionType

__all__ = ["AUTH_KEYS", "SECTIONS", "Key", "Section"]

Kind = Literal["str", "bool", "int", "str_list", "int_or_str", "table_list"]


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    kind: Kind
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()  # accepted strings (enums), if closed
    int_choices: tuple[int, ...] = ()  # accepted integers, if closed
    minimum: int | None = None
    maximum: int | None = None
    default: object = None
    items: str | None = None  # for table_list: the section of its items


@dataclass(frozen=True, slots=True)
class Section:
    name: str  # key path shown to the user
    help: str
    keys: tuple[Key, ...]
    is_list: bool = False  # [[array of tables]]
    required: bool = False
    extra: dict[str, Key] = field(default_factory=dict)

    def key(self, name: str) -> Key | None:
        for k in self.keys:
            if k.name == name:
                return k
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)


_ADDRESS_HELP = "me | any | an IP address | a CIDR subnet | a DNS name"
_PORT_HELP = "any | a port 0-65535 | a range 'low-high' (tcp and udp only)"
_PROTOCOL_HELP = "any | " + " | ".join(PROTOCOL_NAMES) + " | an IP protocol number 0-255"

SECTIONS: dict[str, Section] = {
    s.name: s
    for s in (
        Section(
            "policy",
            "The IP Security Policy: its name and whether the default response rule is on.",
            (
                Key("name", "str", "Policy name, as in the wizard.", required=True),
                Key("description", "str", "Optional description.", default=""),
                Key(
                    "default_response_rule",
                    "bool",
                    "Activate the default response rule (the guide: do not).",
                    default=False,
                ),
            ),
            required=True,
        ),
        Section(
            "local",
            "This host: its IKE identity and the addresses 'me' stands for.",
            (
                Key(
                    "id",
                    "str",
                    "IKE identity (FQDN, address, e-mail or DN); default: the first address.",
                ),
                Key("addresses", "str_list", "This host's IP addresses.", required=True),
            ),
            required=True,
        ),
        Section(
            "monitor",
            "How the daemon shows what it does: Prometheus metrics and the negotiation log.",
            (
                Key("prometheus", "str", "Serve /metrics on this host:port, e.g. '127.0.0.1:9505'."),
                Key("log_file", "str", "The negotiation ('Oakley') log file, rotated."),
                Key(
                    "log_level",
                    "int",
                    "0 off, 1 SA events, 2 + every IKE message, 3 + payloads.",
                    minimum=0,
                    maximum=3,
                    default=0,
                ),
                Key(
                    "log_max_bytes",
                    "int",
                    "Rotate the log past this size.",
                    minimum=4096,
                    default=10 * 1024 * 1024,
                ),
                Key("log_backups", "int", "Rotated files kept.", minimum=0, maximum=100, default=3),
            ),
        ),
        Section(
            "key_exchange",
            "IKE ('main mode') settings: key lifetime, master key PFS, ordered methods.",
            (
                Key("lifetime_s", "int", "IKE SA lifetime in seconds.", minimum=60, default=28800),
                Key(
                    "master_key_pfs",
                    "bool",
                    "New Diffie-Hellman for every IKE SA rekey.",
                    default=False,
                ),
                Key(
                    "allow_dh_group1",
                    "bool",
                    "Allow DH group 1 (768-bit, broken). Refused unless true.",
                    default=False,
                ),
                Key(
                    "method",
                    "table_list",
                    "Ordered key exchange security methods.",
                    items="key_exchange.method",
                ),
            ),
            required=True,
        ),
        Section(
            "key_exchange.method",
            "One key exchange security method (an IKE proposal).",
            (
                Key(
                    "integrity",
                    "str",
                    "Integrity (and PRF) algorithm.",
                    required=True,
                    choices=tuple(IKE_INTEGRITY),
                ),
                Key(
                    "encryption",
                    "str",
                    "Encryption algorithm.",
                    required=True,
                    choices=tuple(IKE_ENCRYPTION),
                ),
                Key(
                    "dh_group",
                    "int_or_str",
                    "Diffie-Hellman group: IANA number or low/medium/high.",
                    required=True,
                    choices=tuple(DH_GROUP_ALIASES),
                    int_choices=tuple(DH_GROUPS),
                ),
            ),
            is_list=True,
        ),
        Section(
            "filter_list",
            "A named IP filter list.",
            (
                Key("name", "str", "Unique name, referenced by rules.", required=True),
                Key("description", "str", "Optional description.", default=""),
                Key(
                    "filter",
                    "table_list",
                    "The filters (at least one).",
                    required=True,
                    items="filter_list.filter",
                ),
            ),
            is_list=True,
        ),
        Section(
            "filter_list.filter",
            "One IP filter: traffic from source to destination.",
            (
                Key("source", "str", _ADDRESS_HELP, required=True),
                Key("destination", "str", _ADDRESS_HELP, required=True),
                Key(
                    "protocol",
                    "int_or_str",
                    _PROTOCOL_HELP,
                    default="any",
                    choices=("any", *PROTOCOL_NAMES),
                    minimum=0,
                    maximum=255,
                ),
                Key("source_port", "int_or_str", _PORT_HELP, default="any", minimum=0, maximum=65535),
                Key(
                    "destination_port",
                    "int_or_str",
                    _PORT_HELP,
                    default="any",
                    minimum=0,
                    maximum=65535,
                ),
                Key("mirrored", "bool", "Also match the exact opposite direction.", default=True),
                Key("description", "str", "Optional description.", default=""),
            ),
            is_list=True,
        ),
        Section(
            "filter_action",
            "A named filter action: permit, block or negotiate security.",
            (
                Key("name", "str", "Unique name, referenced by rules.", required=True),
                Key("description", "str", "Optional description.", default=""),
                Key(
                    "behavior",
                    "str",
                    "What to do with matching traffic.",
                    required=True,
                    choices=tuple(b.value for b in Behavior),
                ),
                Key(
                    "allow_unsecured_fallback",
                    "bool",
                    "Allow unsecured communication if the peer does not support IPsec "
                    "(false = 'do not communicate with computers that do not support IPsec').",
                    default=False,
                ),
                Key(
                    "accept_unsecured_inbound",
                    "bool",
                    "Accept unsecured communication, but always respond using IPsec.",
                    default=False,
                ),
                Key(
                    "pfs",
                    "bool",
                    "Session key perfect forward secrecy for Child SAs.",
                    default=False,
                ),
                Key(
                    "security_method",
                    "table_list",
                    "Ordered ESP security methods.",
                    items="filter_action.security_method",
                ),
            ),
            is_list=True,
        ),
        Section(
            "filter_action.security_method",
            "One ESP security method (proposal).",
            (
                Key(
                    "encryption",
                    "str",
                    "ESP encryption.",
                    required=True,
                    choices=tuple(ESP_ENCRYPTION),
                ),
                Key(
                    "integrity",
                    "str",
                    "ESP integrity; 'none' with an AEAD cipher (default for AEAD).",
                    choices=tuple(ESP_INTEGRITY),
                ),
                Key(
                    "lifetime_kb",
                    "int",
                    "Child SA lifetime in kilobytes.",
                    minimum=1,
                    default=100000,
                ),
                Key("lifetime_s", "int", "Child SA lifetime in seconds.", minimum=30, default=3600),
            ),
            is_list=True,
        ),
        Section(
            "rule",
            "An IP Security Rule: filter list, filter action, authentication, network type, tunnel.",
            (
                Key("name", "str", "Unique rule name; default: the filter list's name."),
                Key("filter_list", "str", "Name of a [[filter_list]].", required=True),
                Key("filter_action", "str", "Name of a [[filter_action]].", required=True),
                Key(
                    "connection_type",
                    "str",
                    "Network type.",
                    default="all",
                    choices=tuple(c.value for c in ConnectionType),
                ),
                Key(
                    "tunnel_endpoint",
                    "str",
                    "'none' for transport mode, or the tunnel's remote IP address.",
                    default="none",
                ),
                Key(
                    "peer",
                    "str",
                    "IKE peer address; default: the tunnel endpoint or the filters' remote host.",
                ),
                Key("remote_id", "str", "Identity expected of the peer; default: its address."),
                Key(
                    "start",
                    "str",
                    "trap: negotiate on first packet; start: at load; none: respond only.",
                    default="trap",
                    choices=("trap", "start", "none"),
                ),
                Key("ike_version", "int", "IKE version.", default=2, int_choices=(1, 2)),
                Key(
                    "authentication",
                    "table_list",
                    "Ordered authentication methods.",
                    items="rule.authentication",
                ),
            ),
            is_list=True,
        ),
    )
}

# [[rule.authentication]]: the keys accepted depend on ``method``.
AUTH_KEYS: dict[str, Section] = {
    "kerberos": Section(
        "rule.authentication",
        "Active Directory Kerberos V5 (the guide's default).",
        (
            Key("method", "str", "kerberos", required=True, choices=("kerberos",)),
            Key("realm", "str", "Kerberos realm; default: the system's."),
            Key("service_principal", "str", "Peer's service principal; default host/<fqdn>@REALM."),
            Key("keytab", "str", "Keytab path; default: the system's."),
            Key("ccache", "str", "Initiator credential cache."),
            Key("client_keytab", "str", "Initiator client keytab."),
        ),
        is_list=True,
    ),
    "certificate": Section(
        "rule.authentication",
        "X.509 certificates.",
        (
            Key("method", "str", "certificate", required=True, choices=("certificate",)),
            Key(
                "ca",
                "str",
                "PEM file of the CA that issues the peers' certificates.",
                required=True,
            ),
            Key("certificate", "str", "PEM file of this host's certificate."),
            Key("private_key", "str", "PEM file of this host's private key."),
        ),
        is_list=True,
    ),
    "psk": Section(
        "rule.authentication",
        "Preshared key (testing only: weak, stored in plain text).",
        (
            Key("method", "str", "psk", required=True, choices=("psk",)),
            Key("secret_file", "str", "File holding the key (never the key inline).", required=True),
        ),
        is_list=True,
    ),
}
