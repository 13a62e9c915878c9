"""Export a policy as a strongSwan ``swanctl.conf`` for a Linux server.

One IKE connection per rule, with one child (transport or tunnel mode);
``permit``/``block`` rules become ``pass``/``drop`` shunt policies.
strongSwan has no Kerberos authentication for IKE (RFC 7296 §2.15 defines
signatures and shared keys only; there is no GSS-API method), so a Kerberos
rule is written with certificates from the domain's PKI, and the file says so.
Preshared keys are never written: the ``secrets`` entry includes the
operator's file, which holds ``secret = ...``.
"""

from __future__ import annotations

from secpath.policy.model import (
    Address,
    AddressKind,
    AuthMethod,
    Behavior,
    CertificateAuth,
    Filter,
    IpAddress,
    KerberosAuth,
    Policy,
    PskAuth,
    Rule,
)

__all__ = ["policy_to_swanctl"]

_KERBEROS_NOTE = ("Kerberos is not available in strongSwan: this connection uses the "
                  "domain PKI's machine certificates")


def _ts(address: Address, f: Filter, local: bool) -> str:
    if address.kind is AddressKind.ME:
        base = "dynamic"
    elif address.kind is AddressKind.ANY:
        base = "0.0.0.0/0"
    elif address.kind is AddressKind.DNS:
        base = "dynamic"  # the remote end is reached by name: its IKE address
    else:
        assert address.network is not None
        base = str(address.network)
    if f.protocol is None:
        return base
    ports = f.source_port if local else f.destination_port
    if ports.is_any:
        return f"{base}[{f.protocol}]"
    return f"{base}[{f.protocol}/{ports}]"  # swanctl.conf: "[proto/port]" or "[proto/low-high]"


def _auth_lines(auth: AuthMethod, own_id: str, remote_id: str, name: str,
                host: str) -> tuple[list[str], list[str], list[str]]:
    """(local lines, remote lines, secrets lines)."""
    indent = "      "
    if isinstance(auth, PskAuth):
        secret = [f"ike-{name} {{", f"  id-1 = {own_id}", f"  id-2 = {remote_id}",
                  "  # secret = \"...\" lives in the included file, never here",
                  f"  include {auth.secret_file.as_posix()}.conf", "}"]
        return ([f"{indent}auth = psk", f"{indent}id = {own_id}"],
                [f"{indent}auth = psk", f"{indent}id = {remote_id}"], secret)
    local = [f"{indent}auth = pubkey", f"{indent}id = {own_id}"]
    remote = [f"{indent}auth = pubkey", f"{indent}id = {remote_id}"]
    if isinstance(auth, CertificateAuth):
        if auth.certificate is not None:
            local.append(f"{indent}certs = {auth.certificate.name}")
        remote.append(f"{indent}cacerts = {auth.ca.name}")
    else:
        assert isinstance(auth, KerberosAuth)
        local.insert(0, f"{indent}# {_KERBEROS_NOTE}")
        local.append(f"{indent}certs = {host}.pem")
    return local, remote, []


def _peer(rule: Rule) -> IpAddress | str:
    if rule.peer is not None:
        return rule.peer
    if rule.tunnel_endpoint is not None:
        return rule.tunnel_endpoint
    return "%any"


def _connection(policy: Policy, rule: Rule) -> tuple[list[str], list[str]]:
    kx = policy.key_exchange
    own_id = policy.local.identity
    remote_id = rule.remote_id or str(_peer(rule))
    action = rule.filter_action
    addrs = ",".join(str(a) for a in policy.local.addresses) or "%any"
    lines = [f"  {rule.name} {{", f"    version = {rule.ike_version}",
             f"    local_addrs = {addrs}", f"    remote_addrs = {_peer(rule)}"]
    secrets: list[str] = []
    if action.behavior is Behavior.NEGOTIATE:
        lines += [f"    proposals = {', '.join(m.proposal for m in kx.methods)}",
                  f"    rekey_time = {kx.lifetime_s}s"]
        auth = rule.authentication[0]
        local, remote, secrets = _auth_lines(auth, own_id, remote_id, rule.name, policy.name)
        lines += ["    local {", *local, "    }", "    remote {", *remote, "    }"]
    lines.append("    children {")
    for i, f in enumerate(rule.filter_list.filters):
        child = rule.name if len(rule.filter_list.filters) == 1 else f"{rule.name}-{i}"
        lines += [f"      {child} {{",
                  f"        local_ts = {_ts(f.source, f, True)}",
                  f"        remote_ts = {_ts(f.destination, f, False)}"]
        if action.behavior is Behavior.NEGOTIATE:
            start = rule.start if rule.peer is not None or rule.start != "trap" else "none"
            lines += [f"        mode = {rule.mode}",
                      "        esp_proposals = " + ", ".join(m.proposal for m in
                                                             action.security_methods),
                      f"        rekey_time = {action.security_methods[0].lifetime_s}s",
                      f"        rekey_bytes = {action.security_methods[0].lifetime_kb * 1024}",
                      f"        start_action = {start}"]
        else:
            mode = "pass" if action.behavior is Behavior.PERMIT else "drop"
            lines += [f"        mode = {mode}", "        start_action = trap"]
        lines.append("      }")
    lines += ["    }", "  }"]
    return lines, secrets


def policy_to_swanctl(policy: Policy) -> str:
    """``swanctl.conf`` text for ``policy`` (one key per line, as swanctl wants)."""
    out = [f"# {policy.name}: {policy.description}",
           "# generated by secpath plan; load with: swanctl --load-all", "connections {"]
    secrets: list[str] = []
    for rule in policy.rules:
        conn, sec = _connection(policy, rule)
        out += conn
        secrets += ["  " + s for s in sec]
    out.append("}")
    if secrets:
        out += ["secrets {", *secrets, "}"]
    return "\n".join(out) + "\n"

