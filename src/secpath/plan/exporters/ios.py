"""Export Cisco IOS site-to-site (tunnel mode) configuration for sites
joined over a WAN, as in the guide's tested IOS configuration: "Cisco IOS
IPsec in Tunnel Mode, meaning only the Cisco IP Routers (IPsec peers) between
the two sites were part of the secure channel establishment".

One configuration per site that has a ``gateway``: an ISAKMP policy per key
exchange method, transform sets in tunnel mode, one crypto-map entry per peer
site with an access list of the two sites' subnets, NAT transparency
keepalives (the guide: NAT-T "is autodetected and autonegotiated"; keepalives
keep the NAT mapping open) and ``qos pre-classify`` ("classify and apply QoS
features based on packet header information before traffic is tunnel
encapsulated and/or encrypted").  Routers authenticate with certificates
(``rsa-sig``) from a trustpoint, so no shared secret is written.

``crypto isakmp policy`` is IKEv1 (ISAKMP main mode, quick mode): the peers of
an IOS export negotiate IKEv1, so a secpath gateway's rule to an IOS site has
``ike_version = 1`` (:mod:`secpath.plan.gateways`), and the ISAKMP policies
are the profile's IKE proposals without AEAD (RFC 5282: IKEv2 only).
"""

from __future__ import annotations

from secpath.errors import LocalError
from secpath.plan.gateways import gateway_dn, peer_address, site_subnets, tunnel_pairs
from secpath.plan.planner import Plan
from secpath.plan.topology import Site
from secpath.policy.model import IpNetwork

__all__ = ["IosUnsupported", "plan_to_ios", "site_pairs"]

_ENCRYPTION = {"3des": "3des", "aes128": "aes 128", "aes192": "aes 192", "aes256": "aes 256"}
_HASH = {"sha1": "sha", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
_GROUPS = frozenset({2, 5, 14, 15, 16, 19, 20, 21})
_ESP_ENCRYPTION = {"3des": "esp-3des", "aes128": "esp-aes 128", "aes256": "esp-aes 256",
                   "aes128gcm": "esp-gcm 128", "aes256gcm": "esp-gcm 256"}
_ESP_HASH = {"sha1": "esp-sha-hmac", "sha256": "esp-sha256-hmac", "sha384": "esp-sha384-hmac",
             "sha512": "esp-sha512-hmac"}
NAT_KEEPALIVE_S = 20


class IosUnsupported(LocalError):
    """The plan's profile has an algorithm IOS ISAKMP/IPsec cannot use."""


def site_pairs(plan: Plan) -> list[tuple[Site, Site]]:
    """Pairs of sites, both with a gateway, that share at least one visible path."""
    return tunnel_pairs(plan.topology, ((p.a.site, p.b.site) for p in plan.paths))


def _acl_entry(net: IpNetwork) -> str:
    if net.num_addresses == 1:
        return f"host {net.network_address}"
    return f"{net.network_address} {net.hostmask}"


def _isakmp(plan: Plan) -> list[str]:
    kx = plan.profile.key_exchange
    lines: list[str] = []
    for i, m in enumerate(kx.methods):
        if m.encryption not in _ENCRYPTION or m.integrity not in _HASH or m.dh_group not in _GROUPS:
            raise IosUnsupported(f"IOS ISAKMP cannot negotiate {m.proposal}")
        lines += [f"crypto isakmp policy {10 * (i + 1)}",
                  f" encryption {_ENCRYPTION[m.encryption]}", f" hash {_HASH[m.integrity]}",
                  " authentication rsa-sig", f" group {m.dh_group}",
                  f" lifetime {kx.lifetime_s}"]
    # the identity is the certificate's subject (the trustpoint's subject-name), which is
    # what a secpath gateway expects of its IOS peer (ID_DER_ASN1_DN)
    lines += ["crypto isakmp identity dn", f"crypto isakmp nat keepalive {NAT_KEEPALIVE_S}"]
    return lines


def _transform_sets(plan: Plan) -> tuple[list[str], list[str]]:
    lines: list[str] = []
    names: list[str] = []
    for i, m in enumerate(plan.profile.security_methods):
        if m.encryption not in _ESP_ENCRYPTION or (
                m.integrity != "none" and m.integrity not in _ESP_HASH):
            raise IosUnsupported(f"IOS IPsec cannot use the transform {m.proposal}")
        transforms = _ESP_ENCRYPTION[m.encryption]
        if m.integrity != "none":
            transforms += " " + _ESP_HASH[m.integrity]
        name = f"SECPATH-TS{i + 1}"
        names.append(name)
        lines += [f"crypto ipsec transform-set {name} {transforms}", " mode tunnel"]
    return lines, names


def plan_to_ios(plan: Plan) -> dict[str, str]:
    """Site name → IOS configuration, for every site in a tunnelled pair whose
    gateway is an IOS router (a ``gateway_os = "secpath"`` site is a peer in
    the crypto map; its own policy is :attr:`Plan.gateways`)."""
    topology = plan.topology
    pairs = site_pairs(plan)
    if not pairs:
        return {}
    isakmp = _isakmp(plan)
    ts_lines, ts_names = _transform_sets(plan)
    method = plan.profile.security_methods[0]
    out: dict[str, str] = {}
    sites = {s.name: s for pair in pairs for s in pair}
    for name, site in sites.items():
        if site.gateway_os != "ios":
            continue
        peers = [b if a.name == name else a for a, b in pairs if name in (a.name, b.name)]
        lines = [f"! {name}: site-to-site IPsec (tunnel mode), deployment "
                 f"{topology.deployment.name}",
                 "! generated by secpath plan",
                 "crypto pki trustpoint SECPATH-CA",
                 " enrollment terminal",
                 f" subject-name {gateway_dn(topology, site)}",
                 " revocation-check crl",
                 "!", *isakmp, "!", *ts_lines, "!"]
        entries: list[str] = []
        for seq, peer in enumerate(peers, start=1):
            acl = f"SECPATH-{peer.name.upper()}"
            lines.append(f"ip access-list extended {acl}")
            for local in site_subnets(topology, site):
                for remote in site_subnets(topology, peer):
                    lines.append(f" permit ip {_acl_entry(local)} {_acl_entry(remote)}")
            lines.append("!")
            entries += [f"crypto map SECPATH {10 * seq} ipsec-isakmp",
                        f" description to site {peer.name}",
                        f" set peer {peer_address(peer)}",
                        f" set transform-set {' '.join(ts_names)}",
                        f" set security-association lifetime seconds {method.lifetime_s}",
                        f" set security-association lifetime kilobytes {method.lifetime_kb}",
                        f" match address {acl}",
                        " qos pre-classify", "!"]
        lines += entries
        lines += [f"interface {site.wan_interface}", " crypto map SECPATH", "!", "end"]
        out[name] = "\n".join(lines) + "\n"
    return out
