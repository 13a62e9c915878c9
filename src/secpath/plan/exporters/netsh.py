"""Export a policy as a ``netsh ipsec static`` script for Windows Server 2008 R2.

The script does the guide's IP Security Policy Wizard steps, in order:
the policy ("Do not Activate the default response rule", the key exchange
security methods), then per rule a filter list, its filter ("IP Protocol
type: Any", mirrored), the filter action ("Negotiate security", "Do not
communicate with computers that do not support IPsec" = ``soft=no``,
``qmsecmethods``) and the rule with its authentication method, and finally
assigns the policy.

``netsh ipsec static`` offers only DES/3DES with MD5/SHA1 and Diffie-Hellman
groups 1, 2 and 2048 ("ConfAlg can be DES or 3DES", "HashAlg is MD5 or
SHA1"); a policy using anything else cannot be written in it and
:class:`NetshUnsupported` says why (the PowerShell export has no such limit).
The file is a ``.cmd`` script so a preshared key is read from its file at run
time (``set /p``) and never written in the script.
"""

from __future__ import annotations

from secpath.errors import LocalError
from secpath.policy.model import (
    Address,
    AddressKind,
    AuthMethod,
    Behavior,
    CertificateAuth,
    ConnectionType,
    Filter,
    FilterAction,
    KerberosAuth,
    Policy,
    PskAuth,
    Rule,
)

__all__ = ["NetshUnsupported", "policy_to_netsh"]

_CONF = {"3des": "3DES"}  # netsh ipsec static ConfAlg (DES is refused: RFC 8221 §5 MUST NOT)
_HASH = {"sha1": "SHA1"}
_GROUP = {2: "2", 14: "3"}  # GroupNum: 2 = Medium (DH group 2), 3 = DH2048 ("high")
_CONNTYPE = {ConnectionType.ALL: "all", ConnectionType.LAN: "lan",
             ConnectionType.REMOTE_ACCESS: "dialup"}
_PROTOCOL = {None: "ANY", 1: "ICMP", 6: "TCP", 17: "UDP"}
_PSK_VAR = "SECPATH_PSK"


class NetshUnsupported(LocalError):
    """The policy uses something ``netsh ipsec static`` cannot express."""


def _q(text: str) -> str:
    if '"' in text or "%" in text:
        raise NetshUnsupported(f"netsh: {text!r} holds a quote or a percent sign")
    return f'"{text}"'


def _mmsecmethods(policy: Policy) -> str:
    out = []
    for m in policy.key_exchange.methods:
        if m.encryption not in _CONF or m.integrity not in _HASH or m.dh_group not in _GROUP:
            raise NetshUnsupported(
                f"netsh ipsec static cannot express the key exchange method {m.proposal}: "
                "it offers DES/3DES, MD5/SHA1 and DH groups 1, 2, 2048 only; use the "
                "powershell export")
        out.append(f"{_CONF[m.encryption]}-{_HASH[m.integrity]}-{_GROUP[m.dh_group]}")
    return " ".join(out)


def _qmsecmethods(action: FilterAction) -> str:
    out = []
    for m in action.security_methods:
        if m.encryption not in _CONF or m.integrity not in _HASH:
            raise NetshUnsupported(
                f"netsh ipsec static cannot express the security method {m.proposal}: "
                "ESP[ConfAlg,AuthAlg] takes DES/3DES and MD5/SHA1 only; use the powershell "
                "export")
        out.append(f"ESP[{_CONF[m.encryption]},{_HASH[m.integrity]}]:"
                   f"{m.lifetime_kb}k/{m.lifetime_s}s")
    return " ".join(out)


def _address(address: Address) -> tuple[str, str | None]:
    """(addr, mask) for srcaddr/dstaddr and srcmask/dstmask."""
    if address.kind is AddressKind.ME:
        return "me", None
    if address.kind is AddressKind.ANY:
        return "any", None
    if address.kind is AddressKind.DNS:
        assert address.dns_name is not None
        return address.dns_name, None
    assert address.network is not None
    return str(address.network.network_address), str(address.network.prefixlen)


def _filter(list_name: str, f: Filter) -> str:
    src, srcmask = _address(f.source)
    dst, dstmask = _address(f.destination)
    protocol = _PROTOCOL.get(f.protocol, str(f.protocol))
    parts = [f"filterlist={_q(list_name)}", f"srcaddr={src}", f"dstaddr={dst}"]
    if srcmask is not None:
        parts.append(f"srcmask={srcmask}")
    if dstmask is not None:
        parts.append(f"dstmask={dstmask}")
    parts += [f"protocol={protocol}", f"mirrored={'yes' if f.mirrored else 'no'}"]
    if f.protocol in (6, 17):
        for key, ports in (("srcport", f.source_port), ("dstport", f.destination_port)):
            if ports.low != ports.high and not ports.is_any:
                raise NetshUnsupported(f"netsh filters take one port, not the range {ports}")
            parts.append(f"{key}={0 if ports.is_any else ports.low}")
    if f.description:
        parts.append(f"description={_q(f.description)}")
    return "netsh ipsec static add filter " + " ".join(parts)


def _filter_action(action: FilterAction) -> str:
    parts = [f"name={_q(action.name)}"]
    if action.description:
        parts.append(f"description={_q(action.description)}")
    if action.behavior is Behavior.NEGOTIATE:
        parts += [f"qmpfs={'yes' if action.pfs else 'no'}",
                  f"inpass={'yes' if action.accept_unsecured_inbound else 'no'}",
                  f"soft={'yes' if action.allow_unsecured_fallback else 'no'}",
                  "action=negotiate", f"qmsecmethods={_q(_qmsecmethods(action))}"]
    else:
        parts.append(f"action={action.behavior.value}")
    return "netsh ipsec static add filteraction " + " ".join(parts)


def _auth(methods: tuple[AuthMethod, ...], ca_subject: str) -> tuple[list[str], list[str]]:
    """(rule parameters, lines to run before the rule)."""
    params: list[str] = []
    before: list[str] = []
    for a in methods:
        if isinstance(a, KerberosAuth):
            params.append("kerberos=yes")
        elif isinstance(a, CertificateAuth):
            params.append(f'rootca="{ca_subject} certmap:no excludecaname:no"')
        else:
            assert isinstance(a, PskAuth)
            secret_file = str(a.secret_file).replace("/", "\\")
            before.append(f'set /p {_PSK_VAR}=<"{secret_file}"')
            params.append(f'psk="%{_PSK_VAR}%"')
    if methods and not any(isinstance(a, KerberosAuth) for a in methods):
        params.insert(0, "kerberos=no")
    return params, before


def _rule(policy: Policy, rule: Rule, ca_subject: str) -> list[str]:
    parts = [f"name={_q(rule.name)}", f"policy={_q(policy.name)}",
             f"filterlist={_q(rule.filter_list.name)}",
             f"filteraction={_q(rule.filter_action.name)}",
             f"conntype={_CONNTYPE[rule.connection_type]}", "activate=yes"]
    if rule.tunnel_endpoint is not None:
        parts.append(f"tunnel={rule.tunnel_endpoint}")
    auth, before = _auth(rule.authentication, ca_subject)
    return [*before, "netsh ipsec static add rule " + " ".join(parts + auth)]


def policy_to_netsh(policy: Policy, *, ca_subject: str) -> str:
    """The ``.cmd`` script; raises :class:`NetshUnsupported` if netsh cannot say it."""
    kx = policy.key_exchange
    lines = [f"@rem {policy.name}: {policy.description}",
             "@rem generated by secpath plan: the guide's IP Security Policy Wizard steps",
             "@echo off",
             "netsh ipsec static add policy " + " ".join([
                 f"name={_q(policy.name)}", f"description={_q(policy.description)}",
                 f"mmpfs={'yes' if kx.master_key_pfs else 'no'}",
                 f"mmlifetime={max(1, kx.lifetime_s // 60)}",
                 f"activatedefaultrule={'yes' if policy.default_response_rule else 'no'}",
                 "assign=no", f"mmsecmethods={_q(_mmsecmethods(policy))}"])]
    actions: dict[str, FilterAction] = {}
    for rule in policy.rules:
        lines.append(f"netsh ipsec static add filterlist name={_q(rule.filter_list.name)}"
                     + (f" description={_q(rule.filter_list.description)}"
                        if rule.filter_list.description else ""))
        lines += [_filter(rule.filter_list.name, f) for f in rule.filter_list.filters]
        if rule.filter_action.name not in actions:
            actions[rule.filter_action.name] = rule.filter_action
            lines.append(_filter_action(rule.filter_action))
        lines += _rule(policy, rule, ca_subject)
    lines.append(f"netsh ipsec static set policy name={_q(policy.name)} assign=yes")
    return "\r\n".join(lines) + "\r\n"
