"""What ``secpath status`` shows of one agent: IKE SAs, Child SAs and the
state of every rule, as JSON-ready data (no key material)."""

from __future__ import annotations

from typing import Any

from secpath.agent.agent import PolicyAgent
from secpath.policy.model import Behavior

__all__ = ["agent_keys", "agent_status"]


def agent_status(agent: PolicyAgent, now: float) -> dict[str, Any]:
    ike_sas = []
    for handle, ev in sorted(agent.ike_sas.items()):
        ike_sas.append(
            {
                "ike_sa": f"{handle:016x}",
                "local": agent.local_address,
                "remote": f"{ev.peer[0]}:{ev.peer[1]}",
                "local_id": ev.local_id,
                "remote_id": ev.remote_id,
                "proposal": ev.proposal,
                "auth_method": ev.auth_method,
                "initiator": ev.initiator,
                "nat_local": ev.nat_local,
                "nat_remote": ev.nat_remote,
                "children": sorted(f"{c.handle:08x}" for c in agent.children.values() if c.ike_sa == handle),
            }
        )
    child_sas = []
    for child in agent.children.values():
        p = child.parameters
        counters = child.outbound.counters
        inbound = child.inbound.counters
        child_sas.append(
            {
                "rule": child.rule,
                "ike_sa": f"{child.ike_sa:016x}",
                "peer": child.peer,
                "mode": p.mode,
                "encapsulation": f"UDP {p.udp_encapsulation[0]}->{p.udp_encapsulation[1]}"
                if p.udp_encapsulation
                else "ESP",
                "transform": p.transform,
                "esn": p.esn,
                "spi_in": f"{child.inbound.spi:08x}",
                "spi_out": f"{child.outbound.spi:08x}",
                "local_ts": [_ts(t) for t in child.local_ts],
                "remote_ts": [_ts(t) for t in child.remote_ts],
                "bytes_in": inbound.bytes_in,
                "bytes_out": counters.bytes_out,
                "packets_in": inbound.packets_in,
                "packets_out": counters.packets_out,
                "age_s": round(now - child.installed_at, 1),
            }
        )
    rules = []
    for rule in agent.policy.rules:
        totals = agent.stats.rule(rule.name)
        secured = rule.filter_action.behavior is Behavior.NEGOTIATE
        rules.append(
            {
                "rule": rule.name,
                "behavior": rule.filter_action.behavior.value,
                "mode": rule.mode,
                "state": agent.rule_state(rule.name).value if secured else "n/a",
                "last_failure": totals.last_failure,
                "bytes_in": totals.bytes_in,
                "bytes_out": totals.bytes_out,
                "packets_in": totals.packets_in,
                "packets_out": totals.packets_out,
            }
        )
    return {
        "local_address": agent.local_address,
        "ike_sas": ike_sas,
        "child_sas": child_sas,
        "rules": rules,
        "nat_keepalives_sent": agent.keepalives_sent,
    }


def agent_keys(agent: PolicyAgent) -> tuple[list[str], list[str], list[str]]:
    """(ikev2_decryption_table rows, esp_sa rows, ikev1_decryption_table rows)
    of the agent's live SAs — key material: for ``secpath keys`` only."""
    from secpath.esp.wireshark import esp_sa_row
    from secpath.monitor.wireshark import ike_table_row, ikev1_table_row

    engine = agent.engine
    ike_rows = [ike_table_row(km) for km in engine.key_material()] if engine is not None else []
    ikev1_rows = [ikev1_table_row(km) for km in engine.ikev1_key_material()] if engine is not None else []
    esp_rows = []
    for child in agent.children.values():
        # the addresses as a capture on this host sees them
        for p, (src, dst) in (
            (child.parameters, (agent.local_address, child.peer)),
            (child.inbound_parameters, (child.peer, agent.local_address)),
        ):
            key = p.encryption_key
            esp_rows.append(
                esp_sa_row(
                    src,
                    dst,
                    p.spi,
                    p.transform,
                    key if len(key) else None,
                    p.integrity_key if len(p.integrity_key) else None,
                )
            )
    return ike_rows, esp_rows, ikev1_rows


def _ts(ts: object) -> str:
    from secpath.ike.selectors import TrafficSelector

    assert isinstance(ts, TrafficSelector)
    addr = str(ts.start) if ts.start == ts.end else f"{ts.start}-{ts.end}"
    proto = "" if ts.protocol == 0 else f" proto {ts.protocol}"
    ports = "" if (ts.start_port, ts.end_port) == (0, 65535) else f" ports {ts.start_port}-{ts.end_port}"
    return addr + proto + ports
