"""The security audit of a policy: findings with a severity and the reason
(the guide's words or the RFC that says so).

``audit_policy`` looks at one policy; ``audit_pair`` at the two ends of a
path, for proposals that can never match each other.  File permissions are
read through an injected ``stat`` so the audit can be tested without root.
"""

from __future__ import annotations

import importlib.util
import os
import stat as stat_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from secpath.crypto.registry import (
    DH_GROUPS,
    ESP_ENCRYPTION,
    ESP_INTEGRITY,
    IKE_ENCRYPTION,
    IKE_INTEGRITY,
    Strength,
)
from secpath.policy.model import (
    AddressKind,
    Behavior,
    CertificateAuth,
    KerberosAuth,
    Policy,
    PskAuth,
    Rule,
)
from secpath.policy.spd import Spd
from secpath.policy.spd_conflicts import ConflictKind, find_conflicts

__all__ = ["Finding", "Severity", "StatFn", "audit_pair", "audit_policy", "exit_code"]

StatFn = Callable[[Path], os.stat_result]


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    code: str  # stable identifier, e.g. "dh-group-2"
    where: str  # key path in the policy, e.g. "key_exchange.method[1].dh_group"
    message: str  # what is wrong, with the value
    reason: str  # why: the guide's or the RFC's words

    def as_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "where": self.where,
            "message": self.message,
            "reason": self.reason,
        }


_GUIDE_PSK = (
    "the guide: preshared key authentication is not recommended because it is a "
    "relatively weak authentication method; preshared keys are stored in plain text; "
    "use them only for testing"
)
_GUIDE_DRR = "the guide's wizard step: 'Do not activate the default response rule'"
_GUIDE_FALLBACK = "the guide's filter action: 'Do not communicate with computers that do not support IPsec'"


def exit_code(findings: list[Finding], *, strict: bool) -> int:
    """0 clean, 1 warnings only (with ``strict``), 2 errors."""
    if any(f.severity is Severity.ERROR for f in findings):
        return 2
    if strict and any(f.severity is Severity.WARNING for f in findings):
        return 1
    return 0


def audit_policy(policy: Policy, *, stat: StatFn | None = None) -> list[Finding]:
    """Every finding for ``policy``, errors first, in file order within a severity."""
    st: StatFn = stat if stat is not None else _stat
    findings = [
        *_key_exchange(policy),
        *_rules(policy, st),
        *_filters(policy),
    ]
    if policy.default_response_rule:
        findings.append(
            Finding(
                Severity.WARNING,
                "default-response-rule",
                "policy.default_response_rule",
                "the default response rule is active: the host answers any IPsec request",
                _GUIDE_DRR,
            )
        )
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def _filters(policy: Policy) -> Iterator[Finding]:
    """Conflicting and shadowed filters (RFC 4301 §4.4.1: the SPD is ordered;
    an entry that can never be reached is a configuration error)."""
    spd = Spd(policy)
    for c in find_conflicts(spd):
        where = f"filter_list[{c.loser.rule.filter_list.name}].filter[{c.loser.filter_index}]"
        if c.kind is ConflictKind.CONFLICTING:
            yield Finding(
                Severity.WARNING,
                "conflicting-filters",
                where,
                f"{c.loser} and {c.winner} select the same traffic with different actions; "
                f"the first always wins",
                "RFC 4301 §4.4.1: the most specific entry decides; identical selectors with "
                "different actions mean one action is never applied",
            )
        elif c.loser_never_matches:
            yield Finding(
                Severity.WARNING,
                "shadowed-filter",
                where,
                f"{c.loser} can never match: {c.winner} always takes its traffic",
                "RFC 4301 §4.4.1: an SPD entry that is never reached is dead configuration",
            )


def _stat(path: Path) -> os.stat_result:
    return path.stat()


def _strength(severity_of: Strength, code: str, where: str, message: str, reason: str) -> Iterator[Finding]:
    if severity_of is Strength.BROKEN:
        yield Finding(Severity.ERROR, code, where, message, reason)
    elif severity_of is Strength.LEGACY:
        yield Finding(Severity.WARNING, code, where, message, reason)


def _key_exchange(policy: Policy) -> Iterator[Finding]:
    kx = policy.key_exchange
    negotiates = any(r.filter_action.behavior is Behavior.NEGOTIATE for r in policy.rules)
    if not kx.methods:
        yield Finding(
            Severity.ERROR if negotiates else Severity.WARNING,
            "no-key-exchange-method",
            "key_exchange.method",
            "no key exchange security method is configured",
            "RFC 7296 §3.3: an IKE SA needs at least one proposal; "
            + ("negotiate rules cannot start" if negotiates else "no rule negotiates yet"),
        )
    seen: dict[tuple[str, str, int], int] = {}
    for i, m in enumerate(kx.methods):
        where = f"key_exchange.method[{i}]"
        group = DH_GROUPS[m.dh_group]
        yield from _strength(
            group.strength,
            f"dh-group-{group.number}",
            f"{where}.dh_group",
            f"Diffie-Hellman group {group.number} ({group.bits}-bit {group.kind.upper()})",
            group.reason,
        )
        enc = IKE_ENCRYPTION[m.encryption]
        yield from _strength(
            enc.strength,
            f"ike-{enc.name}",
            f"{where}.encryption",
            f"IKE encryption {enc.name}",
            enc.reason,
        )
        integ = IKE_INTEGRITY[m.integrity]
        yield from _strength(
            integ.strength,
            f"ike-{integ.name}",
            f"{where}.integrity",
            f"IKE integrity/PRF {integ.name}",
            integ.reason,
        )
        key = (m.encryption, m.integrity, m.dh_group)
        if key in seen:
            yield Finding(
                Severity.WARNING,
                "duplicate-proposal",
                where,
                f"the same as key_exchange.method[{seen[key]}]: it can never be chosen",
                "RFC 7296 §2.7: the responder picks the first acceptable proposal",
            )
        else:
            seen[key] = i


def _rules(policy: Policy, st: StatFn) -> Iterator[Finding]:
    for i, rule in enumerate(policy.rules):
        where = f"rule[{i}]"
        action = rule.filter_action
        if action.behavior is Behavior.NEGOTIATE:
            yield from _security_methods(rule)
            if action.allow_unsecured_fallback:
                yield Finding(
                    Severity.WARNING,
                    "unsecured-fallback",
                    f"{where}.filter_action",
                    f"filter action {action.name!r} falls back to clear text when the peer "
                    f"does not negotiate (rule {rule.name!r})",
                    _GUIDE_FALLBACK,
                )
            if action.accept_unsecured_inbound:
                yield Finding(
                    Severity.WARNING,
                    "accept-unsecured-inbound",
                    f"{where}.filter_action",
                    f"filter action {action.name!r} accepts clear-text inbound traffic",
                    "an attacker can send clear text that the host accepts; " + _GUIDE_FALLBACK,
                )
            if rule.ike_version == 1:
                for j, m in enumerate(policy.key_exchange.methods):
                    if IKE_ENCRYPTION[m.encryption].aead:
                        yield Finding(
                            Severity.ERROR,
                            "ikev1-aead",
                            f"key_exchange.method[{j}].encryption",
                            f"{m.encryption} cannot protect an IKEv1 SA (rule {rule.name!r} uses IKEv1)",
                            "RFC 5282 defines AEAD for IKEv2 only: an IKEv1 peer can never "
                            "accept this proposal",
                        )
        for j, flt in enumerate(rule.filter_list.filters):
            fwhere = f"filter_list[{rule.filter_list.name}].filter[{j}]"
            for end, addr in (("source", flt.source), ("destination", flt.destination)):
                if addr.kind is AddressKind.DNS:
                    yield Finding(
                        Severity.WARNING,
                        "dns-name-filter",
                        f"{fwhere}.{end}",
                        f"filter uses the DNS name {addr.dns_name!r}",
                        "a DNS name is resolved once, when the policy is applied: later "
                        "changes are missed and a spoofed answer redirects the filter",
                    )
            if (
                action.behavior is Behavior.NEGOTIATE
                and flt.source.kind is AddressKind.ANY
                and flt.destination.kind is AddressKind.ANY
            ):
                yield Finding(
                    Severity.WARNING,
                    "negotiate-any-any",
                    fwhere,
                    "negotiate rule for any <-> any traffic",
                    "the guide secures selected communication paths; any <-> any also "
                    "captures DNS, DHCP and domain controller traffic needed to negotiate",
                )
        for k, auth in enumerate(rule.authentication):
            awhere = f"{where}.authentication[{k}]"
            if isinstance(auth, PskAuth):
                yield from _psk(auth, awhere, st)
            elif isinstance(auth, CertificateAuth):
                yield from _certificate(auth, awhere, st)
            elif isinstance(auth, KerberosAuth):
                yield from _kerberos(auth, awhere, st)


def _security_methods(rule: Rule) -> Iterator[Finding]:
    seen: dict[tuple[str, str], int] = {}
    for j, sm in enumerate(rule.filter_action.security_methods):
        mwhere = f"filter_action[{rule.filter_action.name}].security_method[{j}]"
        enc = ESP_ENCRYPTION[sm.encryption]
        if enc.name == "null":
            yield Finding(
                Severity.WARNING,
                "esp-null",
                f"{mwhere}.encryption",
                "ESP with NULL encryption: integrity only, traffic is readable",
                enc.reason,
            )
        else:
            yield from _strength(
                enc.strength,
                f"esp-{enc.name}",
                f"{mwhere}.encryption",
                f"ESP encryption {enc.name}",
                enc.reason,
            )
        integ = ESP_INTEGRITY[sm.integrity]
        if integ is not None:
            yield from _strength(
                integ.strength,
                f"esp-{integ.name}",
                f"{mwhere}.integrity",
                f"ESP integrity {integ.name}",
                integ.reason,
            )
        key = (sm.encryption, sm.integrity)
        if key in seen:
            yield Finding(
                Severity.WARNING,
                "duplicate-proposal",
                mwhere,
                f"the same algorithms as security_method[{seen[key]}]: it can never be chosen",
                "RFC 7296 §2.7: the responder picks the first acceptable proposal",
            )
        else:
            seen[key] = j


def _mode_bits(st: StatFn, path: Path) -> int | str:
    try:
        return st(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except PermissionError:
        return "cannot be read"
    except OSError as exc:
        return exc.strerror or "cannot be read"


def _psk(auth: PskAuth, where: str, st: StatFn) -> Iterator[Finding]:
    yield Finding(Severity.WARNING, "psk", f"{where}.method", "preshared key authentication", _GUIDE_PSK)
    yield from _private_file(auth.secret_file, f"{where}.secret_file", "preshared key file", st)


def _private_file(path: Path, where: str, what: str, st: StatFn) -> Iterator[Finding]:
    mode = _mode_bits(st, path)
    if isinstance(mode, str):
        yield Finding(
            Severity.ERROR,
            "file-missing",
            where,
            f"{what} {path} {mode}",
            "it is needed to authenticate",
        )
        return
    if mode & (stat_mod.S_IRWXG | stat_mod.S_IRWXO):
        yield Finding(
            Severity.ERROR,
            "file-permissions",
            where,
            f"{what} {path} is accessible by group or others (mode {stat_mod.filemode(mode)})",
            "secrets must be readable only by their owner: chmod 600",
        )


def _kerberos_probe() -> bool:
    """Whether the Kerberos extra (the gssapi package) is importable here."""
    return importlib.util.find_spec("gssapi") is not None


kerberos_installed = _kerberos_probe


def _kerberos(auth: KerberosAuth, where: str, st: StatFn) -> Iterator[Finding]:
    """docs/kerberos.md §6: keytabs hold the host's long-term keys."""
    for label, path in (("keytab", auth.keytab), ("client_keytab", auth.client_keytab)):
        if path is None:
            continue
        mode = _mode_bits(st, path)
        if isinstance(mode, int) and (not stat_mod.S_ISREG(mode) or not mode & stat_mod.S_IRUSR):
            kind = "not a regular file" if not stat_mod.S_ISREG(mode) else "not readable by its owner"
            yield Finding(
                Severity.ERROR,
                "keytab-unreadable",
                f"{where}.{label}",
                f"{label} {path} is {kind} (mode {stat_mod.filemode(mode)})",
                "the daemon reads its Kerberos keys from it: a regular file, mode 600",
            )
            continue
        yield from _private_file(path, f"{where}.{label}", label, st)
    if not kerberos_installed():
        yield Finding(
            Severity.WARNING,
            "kerberos-unavailable",
            f"{where}.method",
            "Kerberos method, but the gssapi package is not installed",
            "pip install 'secpath[kerberos]' (MIT Kerberos); until then the rule's next method is used",
        )


def _certificate(auth: CertificateAuth, where: str, st: StatFn) -> Iterator[Finding]:
    for label, path in (("ca", auth.ca), ("certificate", auth.certificate)):
        if path is None:
            continue
        mode = _mode_bits(st, path)
        if isinstance(mode, str):
            yield Finding(
                Severity.ERROR,
                "file-missing",
                f"{where}.{label}",
                f"{label} file {path} {mode}",
                "it is needed to authenticate",
            )
    if auth.private_key is not None:
        yield from _private_file(auth.private_key, f"{where}.private_key", "private key", st)


def audit_pair(a: Policy, rule_a: str, b: Policy, rule_b: str) -> list[Finding]:
    """Check that the two ends of a path can agree: a common IKE proposal, a
    common ESP proposal, the same mode, PFS and a common authentication method."""
    ra, rb = a.rule(rule_a), b.rule(rule_b)
    where = f"{a.name}:{rule_a} <-> {b.name}:{rule_b}"
    out: list[Finding] = []
    ike_a = {(m.encryption, m.integrity, m.dh_group) for m in a.key_exchange.methods}
    ike_b = {(m.encryption, m.integrity, m.dh_group) for m in b.key_exchange.methods}
    if not ike_a & ike_b:
        out.append(
            Finding(
                Severity.ERROR,
                "no-common-ike-proposal",
                where,
                "the two ends share no key exchange method: "
                f"{sorted(m.proposal for m in a.key_exchange.methods)} vs "
                f"{sorted(m.proposal for m in b.key_exchange.methods)}",
                "RFC 7296 §2.7: the exchange fails with NO_PROPOSAL_CHOSEN",
            )
        )
    if ra.filter_action.behavior is Behavior.NEGOTIATE and rb.filter_action.behavior is Behavior.NEGOTIATE:
        esp_a = {(m.encryption, m.integrity) for m in ra.filter_action.security_methods}
        esp_b = {(m.encryption, m.integrity) for m in rb.filter_action.security_methods}
        if not esp_a & esp_b:
            out.append(
                Finding(
                    Severity.ERROR,
                    "no-common-esp-proposal",
                    where,
                    "the two ends share no security method: "
                    f"{sorted(m.proposal for m in ra.filter_action.security_methods)} vs "
                    f"{sorted(m.proposal for m in rb.filter_action.security_methods)}",
                    "RFC 7296 §2.7: the Child SA fails with NO_PROPOSAL_CHOSEN",
                )
            )
        if ra.filter_action.pfs != rb.filter_action.pfs:
            out.append(
                Finding(
                    Severity.ERROR,
                    "pfs-mismatch",
                    where,
                    "one end requires PFS for Child SAs and the other does not",
                    "RFC 7296 §1.3.1: a KE payload one side requires and the other omits "
                    "fails the CREATE_CHILD_SA exchange",
                )
            )
        if ra.mode != rb.mode:
            out.append(
                Finding(
                    Severity.ERROR,
                    "mode-mismatch",
                    where,
                    f"{ra.mode} mode at one end, {rb.mode} at the other",
                    "RFC 7296 §1.3.1: USE_TRANSPORT_MODE must be requested and accepted by both",
                )
            )
        methods_a = {auth.method for auth in ra.authentication}
        methods_b = {auth.method for auth in rb.authentication}
        if not methods_a & methods_b:
            out.append(
                Finding(
                    Severity.ERROR,
                    "no-common-authentication",
                    where,
                    f"authentication {sorted(methods_a)} vs {sorted(methods_b)}",
                    "each end must be able to verify the other with one shared method",
                )
            )
    elif ra.filter_action.behavior != rb.filter_action.behavior:
        out.append(
            Finding(
                Severity.ERROR,
                "action-mismatch",
                where,
                f"{ra.filter_action.behavior.value} at one end, "
                f"{rb.filter_action.behavior.value} at the other",
                "the guide: a policy must be created for each path on each end, with the same action",
            )
        )
    return out
