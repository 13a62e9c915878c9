"""The policy agent's decisions for traffic that never reaches the daemon.

Protected destinations are routed into the TUN device, so the agent sees
that traffic; but clear-text packets *from* a peer are delivered by the
kernel straight to the applications.  The guide's "Do not communicate with
computers that do not support IPsec" and the block rules must hold for
them too, so the daemon installs an nftables table (``inet secpath``) that
mirrors the SPD in its own order: every entry, most specific first, accepts
(permit; negotiate where clear text is allowed) or drops (block; negotiate
otherwise).  Decrypted traffic (from the TUN device), IKE, NAT-T and ESP,
the daemon's own marked packets and IPv6 neighbour discovery pass.  The table is replaced atomically
and removed on exit (and at the next start after a crash).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

from secpath.errors import LocalError
from secpath.policy.model import Behavior, Policy, PortRange
from secpath.policy.spd import Direction, Spd, SpdEntry

__all__ = ["Firewall", "ruleset"]

TABLE = "secpath"


def _match(entry: SpdEntry) -> str:
    s = entry.selector
    family = "ip" if s.source.version == 4 else "ip6"
    parts = []
    if s.source.prefixlen:
        parts.append(f"{family} saddr {s.source}")
    if s.destination.prefixlen:
        parts.append(f"{family} daddr {s.destination}")
    if s.source.prefixlen == 0 and s.destination.prefixlen == 0:
        parts.append(f"meta nfproto {'ipv4' if family == 'ip' else 'ipv6'}")
    if s.protocol is not None:
        parts.append(f"meta l4proto {s.protocol}")
        for name, ports in (("sport", s.source_port), ("dport", s.destination_port)):
            if not ports.is_any:
                parts.append(f"th {name} {_ports(ports)}")
    return " ".join(parts)


def _ports(p: PortRange) -> str:
    return str(p.low) if p.low == p.high else f"{p.low}-{p.high}"


def _verdict(entry: SpdEntry, direction: Direction) -> str:
    action = entry.ref.rule.filter_action
    if action.behavior is Behavior.PERMIT:
        return "accept"
    if action.behavior is Behavior.BLOCK:
        return "drop"
    if direction is Direction.OUTBOUND:
        return "accept"  # routed into the TUN device: the agent protects it
    clear_ok = action.accept_unsecured_inbound or action.allow_unsecured_fallback
    return "accept" if clear_ok else "drop"


# IPv6 neighbour discovery (RFC 4861) bypasses the policy, as RFC 4301 §4.4.1
# lets it and strongSwan's bypass policies do: dropping a peer's neighbour
# advertisements would cut the very path ESP travels on
_ND = "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect"


def ruleset(policies: Iterable[Policy], *, tun: str, fwmark: int, ports: tuple[int, int]) -> str:
    """The whole ``inet secpath`` table for the running policy, as nft input."""
    inbound: list[str] = []
    outbound: list[str] = []
    for policy in policies:
        for entry in Spd(policy).entries:
            match = _match(entry)
            comment = f'comment "{entry.ref.rule.name}"'[:120]
            inbound.append(f"    {match} {_verdict(entry, Direction.INBOUND)} {comment}")
            outbound.append(f"    {match} {_verdict(entry, Direction.OUTBOUND)} {comment}")
    ike, natt = ports
    return "\n".join(
        [
            f"table inet {TABLE} {{",
            "  chain input {",
            "    type filter hook input priority filter - 5; policy accept;",
            f'    iifname "{tun}" accept',
            '    iifname "lo" accept',
            f"    udp dport {{ {ike}, {natt} }} accept",
            "    meta l4proto esp accept",
            f"    icmpv6 type {{ {_ND} }} accept",
            *inbound,
            "  }",
            "  chain output {",
            "    type filter hook output priority filter - 5; policy accept;",
            f"    meta mark {fwmark:#x} accept",
            f'    oifname "{tun}" accept',
            '    oifname "lo" accept',
            f"    icmpv6 type {{ {_ND} }} accept",
            *outbound,
            "  }",
            "}",
            "",
        ]
    )


class Firewall:
    def __init__(self) -> None:
        nft = shutil.which("nft")
        if nft is None:
            raise LocalError("nft (Debian package nftables) is needed to enforce the policy on clear text")
        self.nft = nft

    def _run(self, script: str) -> None:
        result = subprocess.run(  # noqa: S603 - nft with our own ruleset on stdin
            [self.nft, "-f", "-"], input=script, capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:
            raise LocalError(f"nft refused the secpath table: {result.stderr.strip()}")

    def apply(self, policies: Iterable[Policy], *, tun: str, fwmark: int, ports: tuple[int, int]) -> None:
        """Replace the table atomically (one nft transaction)."""
        body = ruleset(policies, tun=tun, fwmark=fwmark, ports=ports)
        self._run(f"table inet {TABLE}\ndelete table inet {TABLE}\n{body}")

    def remove(self) -> bool:
        """Remove the table if it is there; True if it was."""
        result = subprocess.run(  # noqa: S603
            [self.nft, "delete", "table", "inet", TABLE],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return result.returncode == 0
