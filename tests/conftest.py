"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import secpath.policy.audit

from .kdc import Kdc, kdc


@pytest.fixture(autouse=True)
def _kerberos_extra_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit results do not depend on whether this machine built the
    Kerberos extra; the one test of that finding switches it off itself."""
    monkeypatch.setattr(secpath.policy.audit, "kerberos_installed", lambda: True)


@pytest.fixture(scope="module")
def realm() -> Iterator[Kdc]:
    """A throwaway MIT realm (k5test) for the module's Kerberos tests."""
    with kdc() as k:
        yield k
