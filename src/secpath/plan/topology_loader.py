"""Reading and validating ``topology.toml`` (STYLE.md habit 7).

Every problem names the file, the key path (``server[3].side``), the bad
value and what is accepted; all problems of a file are reported at once, and
nothing is half-loaded: :func:`load_topology` returns a whole
:class:`~secpath.plan.topology.Topology` or raises :class:`TopologyError`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from secpath.errors import LocalError
from secpath.plan.catalog import catalog_paths
from secpath.plan.topology import (
    KNOWN_OS,
    SIDED_ROLES,
    TIERED_ROLES,
    AuthKind,
    Deployment,
    Isolation,
    Network,
    Role,
    Server,
    Side,
    Site,
    Tier,
    Topology,
)
from secpath.policy.model import IpAddress, IpNetwork

__all__ = ["TopologyError", "TopologyIssue", "load_topology", "parse_topology"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*$")
_NAME_RULE = "a name of letters, digits, '-', '_' or '.', starting with a letter or digit"
_ROLES = " | ".join(r.value for r in Role)
_AUTHS = " | ".join(a.value for a in AuthKind)

_KEYS = {
    "top": {"deployment", "site", "server", "isolation"},
    "deployment": {"name", "domain", "profile", "authentication", "ca", "ca_subject", "pki_dir",
                   "secrets_dir"},
    "site": {"name", "behind_nat", "public_address", "gateway", "wan_interface", "subnets",
             "gateway_os"},
    "server": {"name", "role", "side", "tier", "site", "visible", "private", "pair",
               "unified_cm", "domain", "authentication", "nat_address", "os"},
    "isolation": {"servers", "domain_controllers", "dns", "dhcp"},
}


@dataclass(frozen=True, slots=True)
class TopologyIssue:
    file: str
    key: str  # key path: "server[3].side"
    value: str  # the bad value, as written (repr)
    expected: str  # what is accepted

    def __str__(self) -> str:
        return f"{self.file}: {self.key} = {self.value}: expected {self.expected}"


class TopologyError(LocalError):
    """The topology file is invalid; ``issues`` lists every problem."""

    def __init__(self, issues: list[TopologyIssue]) -> None:
        self.issues = issues
        lines = "\n  ".join(str(i) for i in issues)
        super().__init__(f"{len(issues)} problem(s) in the topology:\n  {lines}")


class _Reader:
    """Collects issues while reading typed values out of TOML tables."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.issues: list[TopologyIssue] = []

    def issue(self, key: str, value: object, expected: str) -> None:
        shown = "(missing)" if value is _MISSING else repr(value)
        self.issues.append(TopologyIssue(self.file, key, shown, expected))

    def keys(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                self.issue(f"{where}.{key}" if where else key, table[key],
                           "one of the keys " + ", ".join(sorted(allowed)))

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool,
               pattern: re.Pattern[str] | None = None, rule: str = "a string",
               choices: tuple[str, ...] = ()) -> str | None:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.issue(f"{where}.{key}", value, rule)
            return None
        ok = isinstance(value, str) and (pattern is None or pattern.match(value) is not None)
        if ok and choices and value not in choices:
            ok = False
        if not ok:
            self.issue(f"{where}.{key}", value, rule)
            return None
        return cast(str, value)

    def boolean(self, table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.issue(f"{where}.{key}", value, "true or false")
            return default
        return value

    def address(self, table: Mapping[str, Any], key: str, where: str, *,
                required: bool) -> IpAddress | None:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.issue(f"{where}.{key}", value, "an IPv4 or IPv6 address")
            return None
        return self._address(value, f"{where}.{key}")

    def _address(self, value: object, key: str) -> IpAddress | None:
        if isinstance(value, str):
            try:
                return ipaddress.ip_address(value)
            except ValueError:
                pass
        self.issue(key, value, "an IPv4 or IPv6 address")
        return None

    def addresses(self, table: Mapping[str, Any], key: str, where: str) -> tuple[IpAddress, ...]:
        value = table.get(key, [])
        if not isinstance(value, list):
            self.issue(f"{where}.{key}", value, "a list of IP addresses")
            return ()
        out = [self._address(v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        return tuple(a for a in out if a is not None)

    def networks(self, table: Mapping[str, Any], key: str, where: str) -> tuple[IpNetwork, ...]:
        value = table.get(key, [])
        if not isinstance(value, list):
            self.issue(f"{where}.{key}", value, "a list of subnets (CIDR)")
            return ()
        out: list[IpNetwork] = []
        for i, v in enumerate(value):
            try:
                if not isinstance(v, str):
                    raise TypeError(v)
                out.append(ipaddress.ip_network(v, strict=True))
            except (TypeError, ValueError):
                self.issue(f"{where}.{key}[{i}]", v, "a subnet in CIDR form, e.g. 10.30.0.0/16")
        return tuple(out)

    def names(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.issue(f"{where}.{key}", value, "a server name or a list of server names")
            return ()
        return tuple(value)


_MISSING: Any = object()


def load_topology(path: Path) -> Topology:
    """Read and validate a topology file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TopologyError([TopologyIssue(str(path), "(file)", repr(str(path)),
                                           f"a readable file ({e.strerror})")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TopologyError([TopologyIssue(str(path), "(syntax)", str(e),
                                           "valid UTF-8 TOML")]) from None
    return parse_topology(data, path)


def parse_topology(data: Mapping[str, Any], path: Path | None = None) -> Topology:
    """Validate a parsed TOML document; ``path`` names the file in issues."""
    r = _Reader(str(path) if path is not None else "<topology>")
    r.keys(data, _KEYS["top"], "")
    deployment = _deployment(r, data)
    sites = _sites(r, data)
    servers = _servers(r, data, {s.name for s in sites})
    isolation = _isolation(r, data)
    if deployment is None:
        raise TopologyError(r.issues)
    topology = Topology(deployment, tuple(sites), tuple(servers), isolation, source=path)
    if not r.issues:  # cross-checks need whole servers
        _check_references(r, data, topology)
        _check_paths(r, topology)
    if r.issues:
        raise TopologyError(r.issues)
    return topology


def _table(r: _Reader, data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key, _MISSING)
    if value is _MISSING:
        return None
    if not isinstance(value, dict):
        r.issue(key, value, "a table")
        return None
    return value


def _array(r: _Reader, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        r.issue(key, value, f"an array of tables ([[{key}]])")
        return []
    return value


def _deployment(r: _Reader, data: Mapping[str, Any]) -> Deployment | None:
    t = _table(r, data, "deployment")
    if t is None:
        r.issue("deployment", _MISSING, "a [deployment] table with name and domain")
        return None
    r.keys(t, _KEYS["deployment"], "deployment")
    name = r.string(t, "name", "deployment", required=True, pattern=_NAME, rule=_NAME_RULE)
    domain = r.string(t, "domain", "deployment", required=True, pattern=_DOMAIN,
                      rule="a DNS domain name, e.g. icm.example.com")
    profile = r.string(t, "profile", "deployment", required=False,
                       choices=("modern", "guide"), rule="modern | guide") or "modern"
    auth = r.string(t, "authentication", "deployment", required=False,
                    choices=tuple(a.value for a in AuthKind), rule=_AUTHS) or "kerberos"
    paths = {k: r.string(t, k, "deployment", required=False, rule="a relative path")
             for k in ("ca", "pki_dir", "secrets_dir")}
    ca_subject = r.string(t, "ca_subject", "deployment", required=False,
                          pattern=re.compile(r'^[^"%]+$'),
                          rule="the CA's distinguished name, e.g. 'CN=Example Root CA, "
                               "DC=example, DC=com' (no quote or percent sign)")
    if name is None or domain is None:
        return None
    return Deployment(
        name, domain, "guide" if profile == "guide" else "modern", AuthKind(auth),
        ca=paths["ca"] or "pki/ca.pem", pki_dir=paths["pki_dir"] or "pki",
        secrets_dir=paths["secrets_dir"] or "secrets",
        ca_subject=ca_subject or "CN=secpath deployment CA",
    )


def _sites(r: _Reader, data: Mapping[str, Any]) -> list[Site]:
    sites: list[Site] = []
    seen: set[str] = set()
    for i, t in enumerate(_array(r, data, "site")):
        where = f"site[{i}]"
        r.keys(t, _KEYS["site"], where)
        name = r.string(t, "name", where, required=True, pattern=_NAME, rule=_NAME_RULE)
        behind_nat = r.boolean(t, "behind_nat", where, False)
        public = r.address(t, "public_address", where, required=False)
        gateway = r.address(t, "gateway", where, required=False)
        wan = r.string(t, "wan_interface", where, required=False,
                       rule="an IOS interface name") or "GigabitEthernet0/0"
        subnets = r.networks(t, "subnets", where)
        gateway_os = r.string(t, "gateway_os", where, required=False, choices=("ios", "secpath"),
                              rule="ios | secpath") or "ios"
        if name is not None and name in seen:
            r.issue(f"{where}.name", name, "a site name not used by another site")
        if "gateway_os" in t and gateway is None and "gateway" not in t:
            r.issue(f"{where}.gateway", _MISSING, "the gateway's WAN address (gateway_os needs it)")
        if behind_nat and public is None and "public_address" not in t:
            r.issue(f"{where}.public_address", _MISSING,
                    "the site's NAT outside address (behind_nat = true needs it)")
        if name is not None:
            seen.add(name)
            sites.append(Site(name, behind_nat, public, gateway, wan, subnets,
                              "secpath" if gateway_os == "secpath" else "ios"))
    return sites


def _servers(r: _Reader, data: Mapping[str, Any], sites: set[str]) -> list[Server]:
    servers: list[Server] = []
    for i, t in enumerate(_array(r, data, "server")):
        server = _server(r, t, f"server[{i}]", sites)
        if server is not None:
            servers.append(server)
    return servers


def _server(r: _Reader, t: Mapping[str, Any], where: str, sites: set[str]) -> Server | None:
    r.keys(t, _KEYS["server"], where)
    before = len(r.issues)
    name = r.string(t, "name", where, required=True, pattern=_NAME, rule=_NAME_RULE)
    role_s = r.string(t, "role", where, required=True, rule=_ROLES,
                      choices=tuple(x.value for x in Role))
    site = r.string(t, "site", where, required=True, rule="the name of a [[site]]")
    if site is not None and site not in sites:
        r.issue(f"{where}.site", site, "the name of a [[site]]: " + (", ".join(sorted(sites))
                                                                    or "(none defined)"))
    visible = r.address(t, "visible", where, required=True)
    private = r.address(t, "private", where, required=False)
    nat_address = r.address(t, "nat_address", where, required=False)
    domain = r.string(t, "domain", where, required=False, pattern=_DOMAIN,
                      rule="a DNS domain name") or ""
    auth = r.string(t, "authentication", where, required=False, rule=_AUTHS,
                    choices=tuple(a.value for a in AuthKind))
    os_name = r.string(t, "os", where, required=False, choices=KNOWN_OS,
                       rule=" | ".join(KNOWN_OS)) or ""
    role = Role(role_s) if role_s is not None else None
    side: Side | None = None
    tier: Tier | None = None
    if role in SIDED_ROLES:
        s = r.string(t, "side", where, required=True, choices=("A", "B"), rule="A | B")
        side = "A" if s == "A" else "B" if s == "B" else None
        if "tier" in t:
            r.issue(f"{where}.tier", t["tier"], f"no tier for role {role_s} (it has a side)")
    elif role in TIERED_ROLES:
        tr = r.string(t, "tier", where, required=role is not Role.UNIFIED_CM,
                      choices=("primary", "secondary"), rule="primary | secondary")
        tier = "primary" if tr == "primary" else "secondary" if tr == "secondary" else None
        if "side" in t:
            r.issue(f"{where}.side", t["side"], f"no side for role {role_s} (it has a tier)")
        if "private" in t:
            r.issue(f"{where}.private", t["private"],
                    f"no private address for role {role_s} (it has no private network)")
            private = None
    pair = r.string(t, "pair", where, required=role is Role.PG, pattern=_NAME,
                    rule="the PG pair's name (a PG needs one)" if role is Role.PG else _NAME_RULE)
    if pair is not None and role not in (Role.PG, Role.NAM_ROUTER, Role.CICM_ROUTER):
        r.issue(f"{where}.pair", pair, "no pair: only pg, nam-router and cicm-router have one")
    unified_cm = r.names(t, "unified_cm", where)
    if unified_cm and role is not Role.PG:
        r.issue(f"{where}.unified_cm", t["unified_cm"], "no unified_cm: only a pg has one")
    if len(r.issues) > before or name is None or role is None or site is None or visible is None:
        return None
    return Server(name, role, site, visible, private, side, tier, pair, unified_cm, domain,
                  AuthKind(auth) if auth is not None else None, nat_address, os_name)


def _isolation(r: _Reader, data: Mapping[str, Any]) -> Isolation:
    t = _table(r, data, "isolation")
    if t is None:
        return Isolation()
    r.keys(t, _KEYS["isolation"], "isolation")
    return Isolation(r.names(t, "servers", "isolation"),
                     r.addresses(t, "domain_controllers", "isolation"),
                     r.addresses(t, "dns", "isolation"), r.addresses(t, "dhcp", "isolation"))


def _check_references(r: _Reader, data: Mapping[str, Any], topology: Topology) -> None:
    servers = topology.servers
    index = {s.name: i for i, s in enumerate(servers)}
    for name, n in Counter(s.name for s in servers).items():
        if n > 1:
            dup = [i for i, s in enumerate(servers) if s.name == name][1:]
            for i in dup:
                r.issue(f"server[{i}].name", name, "a server name not used by another server")
    owners: dict[IpAddress, str] = {}
    for i, s in enumerate(servers):
        for key, addr in (("visible", s.visible), ("private", s.private),
                          ("nat_address", s.nat_address)):
            if addr is None:
                continue
            other = owners.get(addr)
            if other is not None:
                r.issue(f"server[{i}].{key}", str(addr),
                        f"an address not already used (it is {other}'s)")
            else:
                owners[addr] = f"server[{i}] {s.name}"
    for i, s in enumerate(servers):
        for j, ref in enumerate(s.unified_cm):
            target = topology.server(ref) if ref in index else None
            if target is None or target.role is not Role.UNIFIED_CM:
                ucms = [x.name for x in servers if x.role is Role.UNIFIED_CM]
                listed = isinstance(data["server"][i].get("unified_cm"), list)
                key = f"server[{i}].unified_cm" + (f"[{j}]" if listed else "")
                r.issue(key, ref, "the name of a unified-cm server: " + (", ".join(ucms) or "(none)"))
    groups: dict[tuple[Role, str], dict[str, int]] = {}
    for i, s in enumerate(servers):
        if s.side is None:
            continue
        group = groups.setdefault((s.role, s.pair or s.role.value), {})
        if s.side in group:
            first = servers[group[s.side]].name
            r.issue(f"server[{i}].side", s.side,
                    f"one {s.role.value} side {s.side} per pair ({first} already is)")
        else:
            group[s.side] = i
    for (role, pair), group in groups.items():
        if "B" in group and "A" not in group:
            r.issue(f"server[{group['B']}].side", "B",
                    f"a side A for {role.value} pair {pair!r} (a side B needs its side A)")
    for name in topology.isolation.servers:
        if name not in index:
            r.issue("isolation.servers", name, "the name of a [[server]]")


def _check_paths(r: _Reader, topology: Topology) -> None:
    index = {s.name: i for i, s in enumerate(topology.servers)}
    missing: set[str] = set()
    for path in catalog_paths(topology):
        ends = (path.a, path.b)
        if path.network is Network.PRIVATE:
            for s in ends:
                if s.private is None and s.name not in missing:
                    missing.add(s.name)
                    peer = path.b if s is path.a else path.a
                    r.issue(f"server[{index[s.name]}].private", _MISSING,
                            f"a private address: the private path with {peer.name} needs one")
        auths = {s.authentication for s in ends if s.authentication is not None}
        if len(auths) > 1:
            i = index[path.b.name]
            r.issue(f"server[{i}].authentication", path.b.authentication.value
                    if path.b.authentication else "", f"the same method as {path.a.name} "
                    f"({path.a.authentication.value if path.a.authentication else ''}): they "
                    "share a path, and both ends must agree")
