"""The nftables table mirrors the SPD: same order, same verdicts."""

from __future__ import annotations

from pathlib import Path

from secpath.daemon.firewall import ruleset
from secpath.policy.loader import load_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_ruleset_follows_the_spd_order_and_actions() -> None:
    text = ruleset([load_policy(EXAMPLES / "router-a.toml")], tun="secpath0", fwmark=0x5EC, ports=(500, 4500))
    inbound = text.split("chain input")[1].split("chain output")[0]
    outbound = text.split("chain output")[1]
    # decrypted traffic, IKE/NAT-T and ESP pass before any policy rule
    assert inbound.index('iifname "secpath0" accept') < inbound.index("udp dport { 500, 4500 } accept")
    assert "meta l4proto esp accept" in inbound
    # negotiate without fallback: clear text from the peer is dropped inbound...
    assert 'ip saddr 10.10.1.20/32 ip daddr 10.10.1.10/32 drop comment "rtr-a-to-lgr-a"' in inbound
    # ...and routed to the agent outbound
    assert 'ip saddr 10.10.1.10/32 ip daddr 10.10.1.20/32 accept comment "rtr-a-to-lgr-a"' in outbound
    # the DNS permit (udp 53) is accepted both ways
    assert (
        'ip saddr 10.10.0.0/24 ip daddr 10.10.1.10/32 meta l4proto 17 th sport 53 accept comment "dns"'
        in inbound
    )
    assert "meta mark 0x5ec accept" in outbound
