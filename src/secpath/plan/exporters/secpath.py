"""Export a policy as a secpath policy file (the format of issue 2), which
``secpath check`` validates and ``secpath up`` runs."""

from __future__ import annotations

from pathlib import Path

from secpath.plan.exporters._toml import Value, table
from secpath.policy.model import (
    PROTOCOL_NAMES,
    AuthMethod,
    CertificateAuth,
    Filter,
    FilterAction,
    KerberosAuth,
    Policy,
    PskAuth,
    Rule,
)

__all__ = ["policy_to_toml"]

_PROTOCOLS = {number: name for name, number in PROTOCOL_NAMES.items()}


def _path(p: Path | None) -> str | None:
    return None if p is None else p.as_posix()


def _filter(f: Filter) -> dict[str, Value | None]:
    protocol: Value = "any" if f.protocol is None else _PROTOCOLS.get(f.protocol, f.protocol)
    return {
        "source": str(f.source),
        "destination": str(f.destination),
        "protocol": protocol,
        "source_port": str(f.source_port),
        "destination_port": str(f.destination_port),
        "mirrored": f.mirrored,
        "description": f.description or None,
    }


def _action(a: FilterAction) -> str:
    negotiate = a.behavior.value == "negotiate"
    out = table("[[filter_action]]", {
        "name": a.name,
        "description": a.description or None,
        "behavior": a.behavior.value,
        "allow_unsecured_fallback": a.allow_unsecured_fallback if negotiate else None,
        "accept_unsecured_inbound": a.accept_unsecured_inbound if negotiate else None,
        "pfs": a.pfs if negotiate else None,
    })
    for m in a.security_methods:
        out += table("[[filter_action.security_method]]", {
            "encryption": m.encryption, "integrity": m.integrity,
            "lifetime_kb": m.lifetime_kb, "lifetime_s": m.lifetime_s,
        })
    return out


def _auth(a: AuthMethod) -> dict[str, Value | None]:
    if isinstance(a, KerberosAuth):
        return {"method": "kerberos", "realm": a.realm, "service_principal": a.service_principal,
                "keytab": _path(a.keytab), "ccache": a.ccache,
                "client_keytab": _path(a.client_keytab)}
    if isinstance(a, CertificateAuth):
        return {"method": "certificate", "ca": _path(a.ca), "certificate": _path(a.certificate),
                "private_key": _path(a.private_key)}
    assert isinstance(a, PskAuth)
    return {"method": "psk", "secret_file": _path(a.secret_file)}


def _rule(r: Rule) -> str:
    out = table("[[rule]]", {
        "name": r.name,
        "filter_list": r.filter_list.name,
        "filter_action": r.filter_action.name,
        "connection_type": r.connection_type.value,
        "tunnel_endpoint": "none" if r.tunnel_endpoint is None else str(r.tunnel_endpoint),
        "peer": None if r.peer is None else str(r.peer),
        "remote_id": r.remote_id,
        "start": r.start,
        "ike_version": r.ike_version,
    })
    for a in r.authentication:
        out += table("[[rule.authentication]]", _auth(a))
    return out


def policy_to_toml(policy: Policy, header: str = "") -> str:
    """The policy as a policy file; relative paths stay relative (to the file)."""
    parts = [header] if header else []
    parts.append(table("[policy]", {
        "name": policy.name,
        "description": policy.description,
        "default_response_rule": policy.default_response_rule,
    }))
    parts.append(table("[local]", {
        "id": policy.local.id,
        "addresses": [str(a) for a in policy.local.addresses],
    }))
    kx = policy.key_exchange
    parts.append(table("[key_exchange]", {
        "lifetime_s": kx.lifetime_s, "master_key_pfs": kx.master_key_pfs,
        "allow_dh_group1": kx.allow_dh_group1 or None,
    }))
    for m in kx.methods:
        parts.append(table("[[key_exchange.method]]", {
            "integrity": m.integrity, "encryption": m.encryption, "dh_group": m.dh_group,
        }))
    lists = policy.filter_lists or tuple({r.filter_list.name: r.filter_list
                                          for r in policy.rules}.values())
    for fl in lists:
        parts.append(table("[[filter_list]]", {"name": fl.name,
                                               "description": fl.description or None}))
        for f in fl.filters:
            parts.append(table("[[filter_list.filter]]", _filter(f)))
    actions = policy.filter_actions or tuple({r.filter_action.name: r.filter_action
                                              for r in policy.rules}.values())
    parts += [_action(a) for a in actions]
    parts += [_rule(r) for r in policy.rules]
    return "\n".join(parts)
