"""Load a policy TOML file into the frozen model, or report every problem.

Every problem names the file, the key path (``rule[2].filter_action``), the
bad value and what is accepted; all problems of a file are reported at once;
references between sections are checked; nothing is half-loaded — the caller
gets a whole :class:`~secpath.policy.model.Policy` or a
:class:`PolicyFileError`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from secpath.crypto.registry import DH_GROUP_ALIASES, ESP_ENCRYPTION
from secpath.errors import LocalError
from secpath.policy._reader import MISSING, ConfigIssue, PolicyFileError, TableReader, expected_text
from secpath.policy.fields import AUTH_KEYS, SECTIONS
from secpath.policy.model import (
    ANY_PORT,
    PROTOCOL_NAMES,
    Address,
    AddressKind,
    AuthMethod,
    Behavior,
    CertificateAuth,
    ConnectionType,
    Filter,
    FilterAction,
    FilterList,
    IpAddress,
    KerberosAuth,
    KeyExchange,
    KeyExchangeMethod,
    Local,
    MonitorSettings,
    Policy,
    PortRange,
    PskAuth,
    Rule,
    SecurityMethod,
)

__all__ = ["ConfigIssue", "PolicyFileError", "load_policy", "parse_policy"]

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(
            str(path), [ConfigIssue(str(path), "(file)", exc.strerror or str(exc))]
        ) from None
    except UnicodeDecodeError as exc:
        raise PolicyFileError(
            str(path), [ConfigIssue(str(path), "(file)", f"not UTF-8: {exc.reason}")]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(
            str(path), [ConfigIssue(str(path), "(syntax)", f"invalid TOML: {exc}")]
        ) from None
    return parse_policy(data, source=path)


def parse_policy(data: Mapping[str, Any], source: Path | None = None) -> Policy:
    """Validate already-parsed TOML data (paths are relative to ``source``'s folder)."""
    return _Loader(source).load(data)


class _Loader(TableReader):
    def load(self, data: Mapping[str, Any]) -> Policy:
        for name in data:
            if name not in (
                "policy",
                "local",
                "key_exchange",
                "filter_list",
                "filter_action",
                "rule",
                "monitor",
            ):
                self.problem(
                    name,
                    "unknown section",
                    None,
                    "policy, local, key_exchange, filter_list, filter_action, rule, monitor",
                )
        policy = self.section(data, "policy")
        local = self.local(self.section(data, "local"))
        key_exchange = self.key_exchange(self.section(data, "key_exchange"))
        filter_lists = self.filter_lists(data.get("filter_list", []))
        filter_actions = self.filter_actions(data.get("filter_action", []))
        for section_name, valid in (("filter_list", filter_lists), ("filter_action", filter_actions)):
            raw = data.get(section_name, [])
            if isinstance(raw, list):
                self.invalid_names |= {
                    item["name"]
                    for item in raw
                    if isinstance(item, dict) and isinstance(item.get("name"), str)
                } - set(valid)
        rules = self.rules(data.get("rule", []), filter_lists, filter_actions)
        monitor = self.monitor(data)
        if self.issues or local is None or key_exchange is None:
            raise PolicyFileError(self.file, self.issues)
        try:
            return Policy(
                name=policy["name"],
                description=policy["description"],
                default_response_rule=policy["default_response_rule"],
                local=local,
                key_exchange=key_exchange,
                filter_lists=tuple(filter_lists.values()),
                filter_actions=tuple(filter_actions.values()),
                rules=tuple(rules),
                monitor=monitor,
                source=self.source,
            )
        except LocalError as exc:  # a model invariant the checks above missed
            self.problem("policy", str(exc))
            raise PolicyFileError(self.file, self.issues) from None

    def monitor(self, data: Mapping[str, Any]) -> MonitorSettings:
        raw = data.get("monitor")
        if raw is None:
            return MonitorSettings()
        if not isinstance(raw, dict):
            self.problem("monitor", "must be a table", None, "[monitor]")
            return MonitorSettings()
        t = self.table(raw, "monitor", SECTIONS["monitor"])
        listen: tuple[str, int] | None = None
        if "prometheus" in t:
            host, _, port = str(t["prometheus"]).rpartition(":")
            try:
                ipaddress.ip_address(host.strip("[]"))
                number = int(port)
                if not 0 < number < 65536:
                    raise ValueError(port)
                listen = (host.strip("[]"), number)
            except ValueError:
                self.problem(
                    "monitor.prometheus", "not an address:port", t["prometheus"], "e.g. '127.0.0.1:9505'"
                )
        log_file = self.path_of(t["log_file"]) if "log_file" in t else None
        level = t.get("log_level", 0)
        if level and log_file is None:
            self.problem(
                "monitor.log_level", "a log level needs a log file", level, "monitor.log_file = 'PATH'"
            )
        return MonitorSettings(
            listen, log_file, level, t.get("log_max_bytes", 10 * 1024 * 1024), t.get("log_backups", 3)
        )

    def local(self, t: dict[str, Any]) -> Local | None:
        addrs: list[IpAddress] = []
        for i, text in enumerate(t.get("addresses", [])):
            try:
                addrs.append(ipaddress.ip_address(text))
            except ValueError:
                self.problem(f"local.addresses[{i}]", "not an IP address", text, "an IPv4 or IPv6 address")
        if "addresses" in t and not t["addresses"]:
            self.problem("local.addresses", "empty", [], "at least one address")
        if not t:
            return None
        ident = t.get("id")
        if ident is not None and not ident.strip():
            self.problem("local.id", "empty identity", ident, "an FQDN, address, e-mail or DN")
        return Local(addresses=tuple(addrs), id=ident)

    def key_exchange(self, t: dict[str, Any]) -> KeyExchange | None:
        if not t:
            return None
        methods: list[KeyExchangeMethod] = []
        allow1 = bool(t.get("allow_dh_group1", False))
        for where, raw in self.list_of(t.get("method", []), "key_exchange.method"):
            m = self.table(raw, where, SECTIONS["key_exchange.method"])
            group = self.dh_group(f"{where}.dh_group", m.get("dh_group", MISSING))
            if group == 1 and not allow1:
                self.problem(
                    f"{where}.dh_group",
                    "DH group 1 (768-bit) is refused",
                    1,
                    "14 (high) or stronger; set key_exchange.allow_dh_group1 = true to force it",
                )
                continue
            if group is None or "integrity" not in m or "encryption" not in m:
                continue
            methods.append(KeyExchangeMethod(m["integrity"], m["encryption"], group))
        return KeyExchange(
            methods=tuple(methods),
            lifetime_s=t.get("lifetime_s", 28800),
            master_key_pfs=t.get("master_key_pfs", False),
            allow_dh_group1=allow1,
        )

    def dh_group(self, where: str, value: Any) -> int | None:
        key = SECTIONS["key_exchange.method"].key("dh_group")
        assert key is not None
        if value is MISSING:
            return None
        if isinstance(value, str):
            alias = DH_GROUP_ALIASES.get(value.lower())
            if alias is None:
                self.problem(where, "unknown DH group name", value, expected_text(key))
            return alias
        if value not in key.int_choices:
            self.problem(where, "unknown DH group", value, expected_text(key))
            return None
        return int(value)

    # -- filter lists ------------------------------------------------------

    def filter_lists(self, raw: Any) -> dict[str, FilterList]:
        out: dict[str, FilterList] = {}
        for where, item in self.list_of(raw, "filter_list"):
            t = self.table(item, where, SECTIONS["filter_list"])
            filters: list[Filter] = []
            entries = self.list_of(t.get("filter", []), f"{where}.filter") if "filter" in t else []
            if "filter" in t and not entries and not t["filter"]:
                self.problem(f"{where}.filter", "empty", [], "at least one [[filter_list.filter]]")
            for fwhere, fraw in entries:
                f = self.filter(fwhere, fraw)
                if f is not None:
                    filters.append(f)
            name = t.get("name")
            if name is None:
                continue
            if name in out:
                self.problem(f"{where}.name", "duplicate filter list name", name, "a unique name")
                continue
            out[name] = FilterList(name=name, filters=tuple(filters), description=t.get("description", ""))
        return out

    def filter(self, where: str, raw: dict[str, Any]) -> Filter | None:
        t = self.table(raw, where, SECTIONS["filter_list.filter"])
        src = self.address(f"{where}.source", t.get("source"))
        dst = self.address(f"{where}.destination", t.get("destination"))
        proto = self.protocol(f"{where}.protocol", t.get("protocol", "any"))
        sport = self.port(f"{where}.source_port", t.get("source_port", "any"))
        dport = self.port(f"{where}.destination_port", t.get("destination_port", "any"))
        protocol = None if proto is True or proto is False else int(proto)
        if (
            proto is not False
            and protocol not in (6, 17)
            and not all(p is None or p.is_any for p in (sport, dport))
        ):
            self.problem(
                f"{where}.protocol",
                "ports are given but the protocol has none",
                t.get("protocol", "any"),
                "tcp or udp when source_port/destination_port are set",
            )
            return None
        if src is None or dst is None or sport is None or dport is None or proto is False:
            return None
        if src.kind is AddressKind.ME and dst.kind is AddressKind.ME:
            self.problem(where, "source and destination are both 'me'", None, "a remote address on one side")
            return None
        fam = {a.network.version for a in (src, dst) if a.network is not None}
        if len(fam) > 1:
            self.problem(
                where,
                "source and destination are of different IP versions",
                f"{src} -> {dst}",
                "both IPv4 or both IPv6",
            )
            return None
        return Filter(src, dst, protocol, sport, dport, t.get("mirrored", True), t.get("description", ""))

    def address(self, where: str, text: str | None) -> Address | None:
        if text is None:
            return None
        low = text.strip().lower()
        if low == "me":
            return Address.me()
        if low == "any":
            return Address.any()
        try:
            return Address.of(text.strip())
        except ValueError as exc:
            if "/" in text or any(c == ":" for c in text) or text.replace(".", "").isdigit():
                hint = str(exc)
                if "host bits set" in hint:
                    net = ipaddress.ip_network(text.strip(), strict=False)
                    hint = f"host bits set (did you mean {net}?)"
                self.problem(where, f"bad address: {hint}", text, "me | any | IP | CIDR | DNS name")
                return None
        labels = low.rstrip(".").split(".")
        if len(low) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            self.problem(where, "not an address, subnet or DNS name", text, "me | any | IP | CIDR | DNS name")
            return None
        return Address(AddressKind.DNS, dns_name=low.rstrip("."))

    def protocol(self, where: str, value: Any) -> int | bool:
        """An IP protocol number, True for any, False after a problem."""
        if isinstance(value, str):
            low = value.lower()
            if low == "any":
                return True
            if low in PROTOCOL_NAMES:
                return PROTOCOL_NAMES[low]
            if low.isdigit():
                value = int(low)
            else:
                self.problem(
                    where,
                    "unknown protocol",
                    value,
                    "any | " + " | ".join(PROTOCOL_NAMES) + " | 0-255",
                )
                return False
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
            return value
        self.problem(where, "protocol number out of range", value, "0-255")
        return False

    def port(self, where: str, value: Any) -> PortRange | None:
        if isinstance(value, str):
            low = value.strip().lower()
            if low == "any":
                return ANY_PORT
            parts = low.split("-")
            if len(parts) in (1, 2) and all(p.strip().isdigit() for p in parts):
                nums = [int(p) for p in parts]
                lo, hi = nums[0], nums[-1]
                if lo <= hi <= 65535:
                    return PortRange(lo, hi)
            self.problem(where, "bad port", value, "any | 0-65535 | 'low-high' with low <= high")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
            return PortRange(value, value)
        self.problem(where, "port out of range", value, "0-65535")
        return None

    # -- filter actions ----------------------------------------------------

    def filter_actions(self, raw: Any) -> dict[str, FilterAction]:
        out: dict[str, FilterAction] = {}
        for where, item in self.list_of(raw, "filter_action"):
            t = self.table(item, where, SECTIONS["filter_action"])
            methods: list[SecurityMethod] = []
            for mwhere, mraw in self.list_of(t.get("security_method", []), f"{where}.security_method"):
                m = self.security_method(mwhere, mraw)
                if m is not None:
                    methods.append(m)
            name, behavior = t.get("name"), t.get("behavior")
            if name is None or behavior is None:
                continue
            b = Behavior(behavior)
            if b is Behavior.NEGOTIATE and not methods and "security_method" not in item:
                self.problem(
                    f"{where}.security_method",
                    "negotiate needs at least one security method",
                    None,
                    "[[filter_action.security_method]]",
                )
                continue
            if b is not Behavior.NEGOTIATE and (
                "security_method" in item
                or t.get("allow_unsecured_fallback")
                or t.get("accept_unsecured_inbound")
                or t.get("pfs")
            ):
                self.problem(
                    where,
                    f"security settings given for behavior {behavior!r}",
                    None,
                    "security_method, pfs and the unsecured options only with negotiate",
                )
                continue
            if name in out:
                self.problem(f"{where}.name", "duplicate filter action name", name, "a unique name")
                continue
            if b is Behavior.NEGOTIATE and not methods:
                continue  # each bad method was reported
            out[name] = FilterAction(
                name=name,
                behavior=b,
                security_methods=tuple(methods),
                allow_unsecured_fallback=t.get("allow_unsecured_fallback", False),
                accept_unsecured_inbound=t.get("accept_unsecured_inbound", False),
                pfs=t.get("pfs", False),
                description=t.get("description", ""),
            )
        return out

    def security_method(self, where: str, raw: dict[str, Any]) -> SecurityMethod | None:
        t = self.table(raw, where, SECTIONS["filter_action.security_method"])
        enc = t.get("encryption")
        if enc is None:
            return None
        aead = ESP_ENCRYPTION[enc].aead
        integ = t.get("integrity", "none" if aead else None)
        if "integrity" in raw and "integrity" not in t:
            return None  # reported
        if aead and integ != "none":
            self.problem(
                f"{where}.integrity",
                f"{enc} is an AEAD cipher: it has its own integrity",
                integ,
                "'none' or leave it out",
            )
            return None
        if not aead and integ in (None, "none"):
            self.problem(
                f"{where}.integrity",
                f"{enc} needs an integrity algorithm",
                integ,
                "sha1 | sha256 | sha384 | sha512",
            )
            return None
        assert integ is not None
        return SecurityMethod(enc, integ, t.get("lifetime_kb", 100000), t.get("lifetime_s", 3600))

    # -- rules -------------------------------------------------------------

    def rules(self, raw: Any, lists: dict[str, FilterList], actions: dict[str, FilterAction]) -> list[Rule]:
        out: list[Rule] = []
        names: set[str] = set()
        for where, item in self.list_of(raw, "rule"):
            t = self.table(item, where, SECTIONS["rule"])
            fl_name, fa_name = t.get("filter_list"), t.get("filter_action")
            fl = lists.get(fl_name) if fl_name is not None else None
            fa = actions.get(fa_name) if fa_name is not None else None
            if fl_name is not None and fl is None and fl_name not in self.invalid_names:
                self.problem(
                    f"{where}.filter_list",
                    "no [[filter_list]] has this name",
                    fl_name,
                    "one of " + (", ".join(lists) or "(none defined)"),
                )
            if fa_name is not None and fa is None and fa_name not in self.invalid_names:
                self.problem(
                    f"{where}.filter_action",
                    "no [[filter_action]] has this name",
                    fa_name,
                    "one of " + (", ".join(actions) or "(none defined)"),
                )
            auth: list[AuthMethod] = []
            for awhere, araw in self.list_of(t.get("authentication", []), f"{where}.authentication"):
                a = self.auth(awhere, araw)
                if a is not None:
                    auth.append(a)
            tunnel = self.ip_or_none(
                f"{where}.tunnel_endpoint", t.get("tunnel_endpoint", "none"), allow_none=True
            )
            peer = self.ip_or_none(f"{where}.peer", t.get("peer"), allow_none=False)
            name = t.get("name") or fl_name
            if name is not None:
                if name in names:
                    self.problem(
                        f"{where}.name",
                        "duplicate rule name",
                        name,
                        "a unique name (set rule.name when two rules share a filter list)",
                    )
                names.add(name)
            if fl is None or fa is None or name is None or tunnel is False or peer is False:
                continue
            if fa.behavior is Behavior.NEGOTIATE and not auth:
                if "authentication" not in item:
                    self.problem(
                        f"{where}.authentication",
                        "negotiate needs an authentication method",
                        None,
                        "[[rule.authentication]] with method kerberos | certificate | psk",
                    )
                continue
            out.append(
                Rule(
                    name=name,
                    filter_list=fl,
                    filter_action=fa,
                    authentication=tuple(auth),
                    connection_type=ConnectionType(t.get("connection_type", "all")),
                    tunnel_endpoint=tunnel,
                    peer=peer,
                    remote_id=t.get("remote_id"),
                    start=cast(Literal["trap", "start", "none"], t.get("start", "trap")),
                    ike_version=cast(Literal[1, 2], t.get("ike_version", 2)),
                )
            )
        return out

    def ip_or_none(
        self, where: str, value: str | None, *, allow_none: bool
    ) -> IpAddress | Literal[False] | None:
        if value is None or (allow_none and value.strip().lower() == "none"):
            return None
        try:
            return ipaddress.ip_address(value.strip())
        except ValueError:
            self.problem(
                where,
                "not an IP address",
                value,
                "'none' or an IP address" if allow_none else "an IP address",
            )
            return False

    def auth(self, where: str, raw: dict[str, Any]) -> AuthMethod | None:
        method = raw.get("method")
        if "secret" in raw or "psk" in raw or "key" in raw:
            self.problem(
                f"{where}.secret",
                "the secret is never written in the policy",
                "<hidden>",
                "secret_file = 'path' (a file readable only by its owner)",
            )
            return None
        section = AUTH_KEYS.get(method) if isinstance(method, str) else None
        if section is None:
            self.problem(
                f"{where}.method",
                "unknown authentication method",
                method,
                "kerberos | certificate | psk",
            )
            return None
        t = self.table(raw, where, section)
        if any(k.required and k.name not in t for k in section.keys):
            return None  # reported by table()
        if method == "psk":
            return PskAuth(secret_file=self.path_of(t["secret_file"]))
        if method == "certificate":
            cert, key = t.get("certificate"), t.get("private_key")
            if (cert is None) != (key is None):
                self.problem(where, "certificate and private_key go together", None, "both or neither")
                return None
            return CertificateAuth(
                ca=self.path_of(t["ca"]),
                certificate=self.path_of(cert) if cert else None,
                private_key=self.path_of(key) if key else None,
            )
        return KerberosAuth(
            realm=t.get("realm"),
            service_principal=t.get("service_principal"),
            keytab=self.path_of(t["keytab"]) if "keytab" in t else None,
            ccache=t.get("ccache"),
            client_keytab=self.path_of(t["client_keytab"]) if "client_keytab" in t else None,
        )
