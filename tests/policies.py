"""One-rule policies for engine tests and benchmarks: a host ``me`` that
negotiates with ``peer`` — the policy model built directly, the way a
loaded policy file would be, and turned into the engine's configuration."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from secpath.ike.config import Credentials, IkeConfig
from secpath.policy.model import (
    Address,
    AuthMethod,
    Behavior,
    CertificateAuth,
    Filter,
    FilterAction,
    FilterList,
    KeyExchange,
    KeyExchangeMethod,
    Local,
    Policy,
    PskAuth,
    Rule,
    SecurityMethod,
)

__all__ = ["one_rule_config"]


def one_rule_config(
    me: str,
    peer: str,
    ike: Sequence[KeyExchangeMethod],
    esp: Sequence[SecurityMethod],
    creds: Credentials,
    *,
    auth: AuthMethod | None = None,
    rule: str = "path",
    filters: tuple[Filter, ...] | None = None,
    pfs: bool = False,
    tunnel: str | None = None,
    remote_id: str | None = None,
    local_id: str | None = None,
    ike_version: Literal[1, 2] = 2,
    **from_policy: Any,
) -> IkeConfig:
    """The configuration of ``rule`` (filters default to me → peer; the
    authentication method, when not given, follows ``creds``: PSK or
    certificate; its files are never read, ``creds`` already holds them).
    ``from_policy`` goes to :meth:`IkeConfig.from_policy` (timing, esn, …)."""
    if auth is None:
        unread = Path("/nonexistent")
        auth = PskAuth(unread) if creds.psk is not None else CertificateAuth(unread)
    r = Rule(
        rule,
        FilterList("to-peer", filters or (Filter(Address.me(), Address.of(peer)),)),
        FilterAction("secure", Behavior.NEGOTIATE, tuple(esp), pfs=pfs),
        (auth,),
        tunnel_endpoint=ipaddress.ip_address(tunnel) if tunnel else None,
        peer=ipaddress.ip_address(peer),
        remote_id=remote_id,
        ike_version=ike_version,
    )
    policy = Policy("p", Local((ipaddress.ip_address(me),), local_id), KeyExchange(tuple(ike)), (r,))
    return IkeConfig.from_policy(policy, r, creds, **from_policy)
