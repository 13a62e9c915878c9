"""Links, routes and policy-routing rules of the daemon, through netlink
(``pyroute2``), and their removal — on exit, and at the next start after a
crash.

Protected traffic is routed into the TUN device by a dedicated routing table;
an ``ip rule`` sends every packet *not* carrying the daemon's firewall mark to
that table, and the daemon marks its own IKE and ESP sockets (``SO_MARK``) so
they bypass it — the scheme strongSwan's ``kernel-libipsec`` uses.
Everything secpath adds is recognisable (its table, its rule priority, its
link name prefix), so cleanup removes exactly that.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from secpath.errors import LocalError
from secpath.policy.model import IpNetwork

__all__ = ["FIB_RULE_INVERT", "NetSetup", "RoutingConfig"]

FIB_RULE_INVERT = 0x2  # linux/fib_rules.h: "not fwmark ..."


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    table: int = 1516
    priority: int = 1516
    fwmark: int = 0x5EC
    link_prefix: str = "secpath"


class NetSetup:
    """Owns the daemon's netlink state; use as a context manager."""

    def __init__(self, config: RoutingConfig | None = None) -> None:
        self.config = config or RoutingConfig()
        self._ipr = IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> NetSetup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _index(self, name: str) -> int:
        found = self._ipr.link_lookup(ifname=name)
        if not found:
            raise LocalError(f"no network interface {name!r}")
        return int(found[0])

    def link_up(self, name: str, mtu: int) -> None:
        self._ipr.link("set", index=self._index(name), state="up", mtu=mtu)

    def install_rules(self) -> None:
        """``not fwmark MARK lookup TABLE`` for IPv4 and IPv6 (idempotent)."""
        c = self.config
        for family in (socket.AF_INET, socket.AF_INET6):
            if self._our_rules(family):
                continue
            self._ipr.rule(
                "add",
                family=family,
                table=c.table,
                priority=c.priority,
                fwmark=c.fwmark,
                fwmask=0xFFFFFFFF,
                flags=FIB_RULE_INVERT,
            )

    def add_routes(self, link: str, destinations: Iterable[IpNetwork]) -> None:
        """Route ``destinations`` into ``link`` in the daemon's table."""
        index = self._index(link)
        for dst in destinations:
            try:
                self._ipr.route("add", dst=str(dst), oif=index, table=self.config.table)
            except NetlinkError as exc:
                if exc.code != 17:  # EEXIST: already there
                    raise LocalError(f"cannot route {dst} into {link}: {exc}") from None

    def remove_routes(self, destinations: Iterable[IpNetwork]) -> None:
        for dst in destinations:
            try:
                self._ipr.route("del", dst=str(dst), table=self.config.table)
            except NetlinkError as exc:
                if exc.code != 3:  # ESRCH: already gone
                    raise LocalError(f"cannot remove the route to {dst}: {exc}") from None

    def routes(self) -> list[IpNetwork]:
        out: list[IpNetwork] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in self._ipr.route("dump", family=family, table=self.config.table):
                dst = r.get_attr("RTA_DST")
                if dst is not None:
                    out.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}"))
        return out

    def _our_rules(self, family: int) -> list[Any]:
        return [
            r
            for r in self._ipr.rule("dump", family=family)
            if r.get_attr("FRA_PRIORITY") == self.config.priority
            and r.get_attr("FRA_TABLE") == self.config.table
        ]

    def cleanup(self) -> list[str]:
        """Remove every rule, route and link secpath may have left; say what went."""
        removed: list[str] = []
        c = self.config
        for family in (socket.AF_INET, socket.AF_INET6):
            for _ in self._our_rules(family):
                self._ipr.rule("del", family=family, table=c.table, priority=c.priority)
                removed.append(f"rule {c.priority} (IPv{4 if family == socket.AF_INET else 6})")
        for dst in self.routes():
            self.remove_routes([dst])
            removed.append(f"route {dst} table {c.table}")
        for link in self._ipr.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith(c.link_prefix):
                try:
                    self._ipr.link("del", index=link["index"])
                except NetlinkError as exc:
                    if exc.code != 19:  # ENODEV: gone with its file descriptor
                        raise
                removed.append(f"link {name}")
        return removed
