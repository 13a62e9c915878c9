"""`secpath lab` runs the planner's default — Kerberos for servers in the
domain — with its own MIT KDC on loopback (no root), and falls back to
certificates, saying why, when the KDC programs or gssapi are missing."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

import secpath.lab.lab as lab_module
from secpath.ike.events import IkeSaEstablished
from secpath.lab.lab import Lab
from secpath.lab.results import LabOptions, LabResult
from secpath.lab.topology import load_lab_topology

from ..kdc import needs_kdc


def _run() -> tuple[Lab, LabResult, list[IkeSaEstablished]]:
    async def go() -> tuple[Lab, LabResult, list[IkeSaEstablished]]:
        lab = Lab(load_lab_topology(None),
                  LabOptions(port_base=20000 + random.randrange(40) * 1000 + 500))
        try:
            await lab.start()
            await lab.negotiate()
            lab.send_round()
            await lab.settle()
            lab.probe_clear()
            established = [e for h in lab.hosts.values() for e in h.ike.values()]
            return lab, lab.result(), established
        finally:
            lab.close()

    return asyncio.run(go())


@needs_kdc
def test_lab_runs_kerberos_paths_with_its_own_realm() -> None:
    before = os.environ.get("KRB5_CONFIG")
    lab, result, established = _run()
    assert result.ok, [(p.rule, p.failure) for p in result.paths if not p.ok]
    kerberos = [p for p in result.paths if p.authentication == "kerberos"]
    assert kerberos and all(p.used_authentication == "kerberos" for p in kerberos)
    assert all(p.verified == p.sent > 0 for p in kerberos)
    assert any("lab's own realm" in n and "127.0.0.1:" in n for n in result.notes), result.notes
    # the IKE identities of those SAs are host principals of the lab realm
    principals = {e.local_id for e in established if e.local_id.startswith("host/")}
    assert principals and all(p.endswith("@LAB.SECPATH.TEST") for p in principals)
    assert result.totals.main_mode["authentication_failures"] == 0
    # the realm is gone: KDC stopped, files removed, environment restored
    assert lab.realm is None and os.environ.get("KRB5_CONFIG") == before


def test_lab_without_kdc_uses_certificates_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_module, "kdc_missing",
                        lambda: "MIT KDC programs not found (krb5kdc; Debian krb5-kdc)")
    _, result, _ = _run()
    assert result.ok, [(p.rule, p.failure) for p in result.paths if not p.ok]
    kerberos = [p for p in result.paths if p.authentication == "kerberos"]
    assert kerberos and all(p.used_authentication == "certificate" for p in kerberos)
    assert any("use certificates from the lab CA: MIT KDC programs not found" in n
               for n in result.notes), result.notes
