"""IKEv2 handshakes per second with Kerberos V5 authentication (issue 9),
both engines in one process, against a real MIT KDC on loopback (the lab's
realm: needs Debian krb5-kdc and ``secpath[kerberos]``).

Each handshake is IKE_SA_INIT + the two Kerberos IKE_AUTH round trips with
the first Child SA (x25519, aes128gcm16).  Baseline, measured in the same
run: the same handshake with a PSK (one IKE_AUTH round trip).  Also shown:
the GSS-API part alone (AP-REQ, AP-REP, two GSS_Pseudo_random calls), whose
share explains the difference.

Run: ``.venv/bin/python bench/bench_kerberos.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.policies import one_rule_config

from secpath.ike.config import Credentials, IkeConfig
from secpath.ike.engine import IkeEngine
from secpath.ike.events import ChildSaInstalled
from secpath.ike.gss import GssapiProvider
from secpath.ike.kerberos import KerberosCredentials
from secpath.lab.kdc import LabRealm, missing_reason
from secpath.policy.model import (
    AuthMethod,
    KerberosAuth,
    KeyExchangeMethod,
    PskAuth,
    SecurityMethod,
)
from secpath.secret import Secret

A, B = "10.0.0.1", "10.0.0.2"
ROUNDS = 200
REPEATS = 3


def _config(me: str, peer: str, auth: AuthMethod, creds: Credentials) -> IkeConfig:
    return one_rule_config(me, peer, (KeyExchangeMethod("sha256", "aes128gcm", 31),),
                           (SecurityMethod("aes128gcm", "none"),), creds, auth=auth)


def _handshake(a_cfg: IkeConfig, b_cfg: IkeConfig) -> None:
    a = IkeEngine([a_cfg], os.urandom)
    b = IkeEngine([b_cfg], os.urandom)
    a.initiate("path", 0.0)
    for _ in range(20):
        moved = False
        for src, dst, addr in ((a, b, A), (b, a, B)):
            for d in src.datagrams_to_send():
                moved = True
                dst.receive_datagram(d.data, (addr, 500), 0.0, local_port=d.destination[1])
        if not moved:
            break
    installed = 0
    while (ev := a.next_event()) is not None:
        installed += isinstance(ev, ChildSaInstalled)
    if installed != 1:
        raise RuntimeError("handshake did not complete")


def _rate(fn: Callable[[], None], rounds: int) -> float:
    best = 0.0
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = max(best, rounds / (time.perf_counter() - start))
    return best


def main() -> None:
    why = missing_reason()
    if why is not None:
        print(f"bench_kerberos: skipped — {why}")
        return
    realm = LabRealm()
    try:
        a_prov = GssapiProvider(keytab=realm.host("alpha.bench"))
        b_prov = GssapiProvider(keytab=realm.host("beta.bench"))
        target = realm.principal("beta.bench")
        a_krb = _config(A, B, KerberosAuth(), Credentials(
            kerberos=KerberosCredentials(a_prov, service_principal=target)))
        b_krb = _config(B, A, KerberosAuth(), Credentials(kerberos=KerberosCredentials(b_prov)))
        psk = Credentials(psk=Secret(b"a benchmark shared secret, 32 b."))
        a_psk = _config(A, B, PskAuth(secret_file=Path("/dev/null")), psk)
        b_psk = _config(B, A, PskAuth(secret_file=Path("/dev/null")), psk)

        def gss_only() -> None:
            i = a_prov.initiator(target, b"\x00" * 32)
            r = b_prov.acceptor(b"\x00" * 32)
            i.step(r.step(i.step(None) or b""))
            i.prf(b"seed", 64)
            r.prf(b"seed", 64)

        _handshake(a_krb, b_krb)  # first ticket from the KDC, then cached
        rows = [
            ("x25519 + PSK (baseline)", _rate(lambda: _handshake(a_psk, b_psk), ROUNDS)),
            ("x25519 + Kerberos V5", _rate(lambda: _handshake(a_krb, b_krb), ROUNDS)),
            ("GSS-API alone (AP-REQ/AP-REP/PRF)", _rate(gss_only, ROUNDS)),
        ]
    finally:
        realm.close()
    base = rows[0][1]
    print(f"{'profile':<36} {'per second':>12} {'vs PSK':>8}")
    for name, rate in rows:
        print(f"{name:<36} {rate:>12.0f} {rate / base:>8.2f}")


if __name__ == "__main__":
    main()
