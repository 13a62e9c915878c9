"""IKEv1 main mode + quick mode per second, against IKEv2 in the same run.

Each IKEv1 handshake is main mode (PSK) and one quick mode between two
:class:`secpath.ike.v1.IkeV1Engine` objects paired in memory; the baseline
is the IKEv2 engine's IKE_SA_INIT + IKE_AUTH with its first Child SA for the
same suite and PSK (its first Child SA comes from IKE_AUTH: no PFS KE
even in the PFS rows), and the public-key floor (two DH key generations and
two shared secrets, plus two more with PFS).  Ratios are against IKEv2.

Run: ``.venv/bin/python bench/bench_ikev1.py``.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable

from tests.policies import one_rule_config

from secpath.crypto.dh import generate_dh
from secpath.ike.config import Credentials, IkeConfig, Timing
from secpath.ike.engine import IkeEngine
from secpath.ike.events import ChildSaInstalled
from secpath.ike.v1 import IkeV1Engine
from secpath.policy.model import (
    KeyExchangeMethod,
    SecurityMethod,
)
from secpath.secret import Secret

A, B = "10.0.0.1", "10.0.0.2"
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC).timestamp()
SUITES = {
    "aes128-sha256-modp2048": (KeyExchangeMethod("sha256", "aes128", 14),
                               SecurityMethod("aes128", "sha256")),
    "3des-sha1-modp1024": (KeyExchangeMethod("sha1", "3des", 2), SecurityMethod("3des", "sha1")),
}
ROUNDS = 20
REPEATS = 2
Engine = IkeEngine | IkeV1Engine


def _config(me: str, peer: str, suite: str, version: int, pfs: bool) -> IkeConfig:
    ike, esp = SUITES[suite]
    return one_rule_config(me, peer, (ike,), (esp,), Credentials(psk=Secret(b"bench psk")), pfs=pfs,
                           ike_version=1 if version == 1 else 2, timing=Timing(dpd_interval=None))


def _handshake(version: int, suite: str, pfs: bool) -> None:
    make: Callable[..., Engine] = IkeV1Engine if version == 1 else IkeEngine
    a = make([_config(A, B, suite, version, pfs)], os.urandom)
    b = make([_config(B, A, suite, version, pfs)], os.urandom)
    a.initiate("path", NOW)
    for _ in range(20):
        moved = False
        for src, dst, addr in ((a, b, A), (b, a, B)):
            for d in src.datagrams_to_send():
                moved = True
                dst.receive_datagram(d.data, (addr, d.source_port), NOW, d.destination[1])
        if not moved:
            break
    events = []
    while (e := a.next_event()) is not None:
        events.append(e)
    if not any(isinstance(e, ChildSaInstalled) for e in events):
        raise SystemExit(f"IKEv{version} {suite}: no Child SA ({events})")


def _dh_floor(suite: str, pfs: bool) -> None:
    group = SUITES[suite][0].dh_group
    for _ in range(2 if pfs else 1):
        x, y = generate_dh(group, os.urandom), generate_dh(group, os.urandom)
        x.shared_secret(y.public_bytes)
        y.shared_secret(x.public_bytes)


def _rate(fn: Callable[[], None]) -> float:
    best = 0.0
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(ROUNDS):
            fn()
        best = max(best, ROUNDS / (time.perf_counter() - start))
    return best


def main() -> None:
    print(f"{'suite':<24} {'PFS':<4} {'IKEv2/s':>9} {'IKEv1/s':>9} {'v1/v2':>7} "
          f"{'DH floor/s':>11} {'v1/floor':>9}")
    for suite in SUITES:
        for pfs in (False, True):
            v2 = _rate(lambda s=suite, p=pfs: _handshake(2, s, p))  # type: ignore[misc]
            v1 = _rate(lambda s=suite, p=pfs: _handshake(1, s, p))  # type: ignore[misc]
            floor = _rate(lambda s=suite, p=pfs: _dh_floor(s, p))  # type: ignore[misc]
            print(f"{suite:<24} {'yes' if pfs else 'no':<4} {v2:>9.1f} {v1:>9.1f} "
                  f"{v1 / v2:>7.2f} {floor:>11.1f} {v1 / floor:>9.2f}")


if __name__ == "__main__":
    main()
