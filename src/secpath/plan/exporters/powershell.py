"""Export a policy as a PowerShell script using the NetSecurity cmdlets of
current Windows (connection security rules of Windows Firewall with Advanced
Security).

Per policy: a main mode crypto set (``New-NetIPsecMainModeCryptoSet``), a
quick mode crypto set per filter action (``New-NetIPsecQuickModeCryptoSet``),
a phase 1 authentication set per method (``New-NetIPsecPhase1AuthSet``); per
rule and filter a main mode rule binding the crypto set and an IPsec rule
(``New-NetIPsecRule``) requiring security inbound and outbound.  Permit
rules are exemptions (``-InboundSecurity None -OutboundSecurity None``);
block rules are firewall block rules.  Windows negotiates Kerberos with
AuthIP/IKEv1 only, so rules use ``-KeyModule Default``.  A preshared key is
read from its file when the script runs.
"""

from __future__ import annotations

from secpath.errors import LocalError
from secpath.policy.model import (
    Address,
    AddressKind,
    AuthMethod,
    Behavior,
    CertificateAuth,
    Filter,
    FilterAction,
    KerberosAuth,
    Policy,
    PskAuth,
    Rule,
)

__all__ = ["PowershellUnsupported", "policy_to_powershell"]

# New-NetIPsecMainModeCryptoProposal -Encryption / -Hash / -KeyExchange
_MM_ENCRYPTION = {"3des": "DES3", "aes128": "AES128", "aes192": "AES192", "aes256": "AES256"}
_MM_HASH = {"sha1": "SHA1", "sha256": "SHA256", "sha384": "SHA384"}
_MM_GROUP = {1: "DH1", 2: "DH2", 14: "DH14", 19: "DH19", 20: "DH20"}
# New-NetIPsecQuickModeCryptoProposal -Encryption / -ESPHash (AES-GCM: the same for both)
_QM_ENCRYPTION = {"3des": "DES3", "aes128": "AES128", "aes256": "AES256",
                  "aes128gcm": "AESGCM128", "aes256gcm": "AESGCM256", "null": "None"}
_QM_HASH = {"sha1": "SHA1", "sha256": "SHA256"}
_PROTOCOL = {None: "Any", 1: "ICMPv4", 6: "TCP", 17: "UDP", 58: "ICMPv6"}


class PowershellUnsupported(LocalError):
    """The policy uses something the NetSecurity cmdlets cannot express."""


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _mm_proposals(policy: Policy) -> list[str]:
    out = []
    for m in policy.key_exchange.methods:
        try:
            enc, hsh, grp = (_MM_ENCRYPTION[m.encryption], _MM_HASH[m.integrity],
                             _MM_GROUP[m.dh_group])
        except KeyError:
            raise PowershellUnsupported(
                f"Windows main mode cannot negotiate {m.proposal}") from None
        out.append(f"  (New-NetIPsecMainModeCryptoProposal -Encryption {enc} -Hash {hsh} "
                   f"-KeyExchange {grp})")
    return out


def _qm_proposals(action: FilterAction) -> list[str]:
    out = []
    for m in action.security_methods:
        enc = _QM_ENCRYPTION.get(m.encryption)
        hsh = enc if m.integrity == "none" else _QM_HASH.get(m.integrity)
        if enc is None or hsh is None:
            raise PowershellUnsupported(f"Windows quick mode cannot negotiate {m.proposal}")
        out.append(f"  (New-NetIPsecQuickModeCryptoProposal -Encapsulation ESP -ESPHash {hsh} "
                   f"-Encryption {enc} -MaxKilobytes {m.lifetime_kb} "
                   f"-MaxMinutes {max(1, m.lifetime_s // 60)})")
    return out


def _auth_proposal(auth: AuthMethod, ca_subject: str) -> tuple[str, str]:
    """(a name for the set, the New-NetIPsecAuthProposal call)."""
    if isinstance(auth, KerberosAuth):
        return "kerberos", "New-NetIPsecAuthProposal -Machine -Kerberos"
    if isinstance(auth, CertificateAuth):
        return "certificate", (f"New-NetIPsecAuthProposal -Machine -Cert -Authority "
                               f"{_q(ca_subject)} -AuthorityType Root")
    assert isinstance(auth, PskAuth)
    secret_file = str(auth.secret_file).replace("/", "\\")
    return ("psk-" + auth.secret_file.stem, "New-NetIPsecAuthProposal -Machine -PreSharedKey "
            f"(Get-Content -Raw -LiteralPath {_q(secret_file)}).Trim()")


def _address(address: Address) -> str:
    if address.kind is AddressKind.ME:
        return "Any"  # the rule applies to this computer's own addresses
    if address.kind is AddressKind.ANY:
        return "Any"
    if address.kind is AddressKind.DNS:
        raise PowershellUnsupported(
            f"NetSecurity rules take addresses, not the DNS name {address.dns_name!r}")
    assert address.network is not None
    return str(address.network.network_address) if address.is_host else str(address.network)


def _match(f: Filter) -> str:
    parts = [f"-LocalAddress {_address(f.source)}", f"-RemoteAddress {_address(f.destination)}"]
    protocol = _PROTOCOL.get(f.protocol, str(f.protocol))
    parts.append(f"-Protocol {protocol}")
    if f.protocol in (6, 17):
        if not f.source_port.is_any:
            parts.append(f"-LocalPort {f.source_port}")
        if not f.destination_port.is_any:
            parts.append(f"-RemotePort {f.destination_port}")
    return " ".join(parts)


def _rule(policy: Policy, rule: Rule, auth_sets: dict[str, str], qm_sets: dict[str, str],
          mm_set: str) -> list[str]:
    lines: list[str] = []
    action = rule.filter_action
    for i, f in enumerate(rule.filter_list.filters):
        name = f"secpath-{policy.name}-{rule.name}" + (f"-{i}" if i else "")
        display = _q(rule.name + (f" #{i}" if i else ""))
        if f.mirrored is False:
            lines.append("# not mirrored in the policy: connection security rules are always "
                         "bidirectional")
        if action.behavior is Behavior.BLOCK:
            lines.append(f"New-NetFirewallRule -Name {_q(name)} -DisplayName {display} "
                         f"-Direction Outbound -Action Block {_match(f)} | Out-Null")
            lines.append(f"New-NetFirewallRule -Name {_q(name + '-in')} -DisplayName {display} "
                         f"-Direction Inbound -Action Block {_match(f)} | Out-Null")
            continue
        if action.behavior is Behavior.PERMIT:
            lines.append(f"New-NetIPsecRule -IPsecRuleName {_q(name)} -DisplayName {display} "
                         f"-InboundSecurity None -OutboundSecurity None {_match(f)} | Out-Null")
            continue
        auth_set = auth_sets[rule.name]
        security = "Request" if action.allow_unsecured_fallback else "Require"
        inbound = "Request" if action.accept_unsecured_inbound else security
        mode = "Transport"
        tunnel = ""
        if rule.tunnel_endpoint is not None:
            mode = "Tunnel"
            local_ep = policy.local.addresses[0] if policy.local.addresses else "Any"
            tunnel = (f" -LocalTunnelEndpoint {local_ep} "
                      f"-RemoteTunnelEndpoint {rule.tunnel_endpoint}")
        lines.append(f"New-NetIPsecMainModeRule -Name {_q(name + '-mm')} -DisplayName {display} "
                     f"-MainModeCryptoSet {_q(mm_set)} -Phase1AuthSet {_q(auth_set)} "
                     f"-LocalAddress {_address(f.source)} "
                     f"-RemoteAddress {_address(f.destination)} | Out-Null")
        lines.append(f"New-NetIPsecRule -IPsecRuleName {_q(name)} -DisplayName {display} "
                     f"-Mode {mode} "
                     f"-InboundSecurity {inbound} -OutboundSecurity {security} "
                     f"-QuickModeCryptoSet {_q(qm_sets[action.name])} "
                     f"-Phase1AuthSet {_q(auth_set)} -KeyModule Default "
                     f"{_match(f)}{tunnel} | Out-Null")
    return lines


def policy_to_powershell(policy: Policy, *, ca_subject: str) -> str:
    """The ``.ps1`` script for ``policy``."""
    kx = policy.key_exchange
    mm_set = f"secpath-{policy.name}-mm"
    lines = [f"# {policy.name}: {policy.description}",
             "# generated by secpath plan; run as Administrator (NetSecurity module)",
             "$ErrorActionPreference = 'Stop'"]
    negotiates = [r for r in policy.rules if r.filter_action.behavior is Behavior.NEGOTIATE]
    qm_sets: dict[str, str] = {}
    auth_sets: dict[str, str] = {}
    if negotiates:
        lines += ["$mm = @(", *_mm_proposals(policy), ")",
                  f"New-NetIPsecMainModeCryptoSet -Name {_q(mm_set)} "
                  f"-DisplayName {_q(policy.name + ' main mode')} -Proposal $mm "
                  f"-MaxMinutes {max(1, kx.lifetime_s // 60)} | Out-Null"]
    for rule in negotiates:
        action = rule.filter_action
        if action.name not in qm_sets:
            qm_sets[action.name] = f"secpath-{policy.name}-{action.name}"
            pfs = "SameAsMainMode" if action.pfs else "None"
            lines += ["$qm = @(", *_qm_proposals(action), ")",
                      f"New-NetIPsecQuickModeCryptoSet -Name {_q(qm_sets[action.name])} "
                      f"-DisplayName {_q(action.name)} -Proposal $qm "
                      f"-PerfectForwardSecrecyGroup {pfs} | Out-Null"]
        calls = [_auth_proposal(a, ca_subject) for a in rule.authentication]
        key = "+".join(name for name, _ in calls)
        set_name = f"secpath-{policy.name}-{key}"
        if set_name not in auth_sets.values():
            lines += ["$auth = @(", *[f"  ({call})" for _, call in calls], ")",
                      f"New-NetIPsecPhase1AuthSet -Name {_q(set_name)} -DisplayName {_q(key)} "
                      "-Proposal $auth | Out-Null"]
        auth_sets[rule.name] = set_name
    for rule in policy.rules:
        lines += _rule(policy, rule, auth_sets, qm_sets, mm_set)
    return "\r\n".join(lines) + "\r\n"
