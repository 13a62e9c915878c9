"""A throwaway MIT Kerberos realm on loopback (the ``k5test`` package, Debian
``krb5-kdc``/``krb5-admin-server``) with host principals and keytabs.

Tests that need it are skipped only when the KDC or ``gssapi`` is missing
*and* ``CI`` is unset (CI installs them and must run these).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from secpath.ike.gss import missing_reason

IN_CI = bool(os.environ.get("CI"))
REALM = "KRBTEST.COM"


def _why_not() -> str | None:
    if shutil.which("krb5kdc") is None and not Path("/usr/sbin/krb5kdc").exists():
        return "MIT KDC binaries (Debian krb5-kdc) not installed"
    try:
        import k5test  # noqa: F401
    except ImportError:
        return "the k5test package is not installed"
    return missing_reason()


_MISSING = _why_not()
needs_kdc = pytest.mark.skipif(
    _MISSING is not None and not IN_CI,
    reason=f"needs a real MIT KDC: {_MISSING} (CI installs it and runs these)",
)


def _free_portbase() -> int:
    """k5test uses ports portbase..portbase+9 (the KDC on portbase)."""
    for base in range(61000, 64000, 10):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", base))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", base))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range for the test KDC")


@dataclass
class Kdc:
    """The realm: ``host(name)`` makes ``host/<name>@REALM`` and its keytab."""

    realm: Any  # k5test.K5Realm
    name: str

    @property
    def tmpdir(self) -> Path:
        return Path(self.realm.tmpdir)

    def principal(self, host: str) -> str:
        return f"host/{host}@{self.name}"

    def host(self, host: str) -> Path:
        keytab = self.tmpdir / f"{host}.keytab"
        if not keytab.exists():
            self.realm.addprinc(self.principal(host))
            self.realm.extract_keytab(self.principal(host), str(keytab))
            keytab.chmod(0o600)
        return keytab

    def kadmin(self, *args: str) -> None:
        self.realm.run_kadminl(list(args))

    def kinit(self, principal: str, keytab: Path, ccache: Path, *flags: str) -> None:
        self.realm.run(["kinit", *flags, "-k", "-t", str(keytab), "-c", str(ccache), principal])


@contextmanager
def kdc() -> Iterator[Kdc]:
    """A realm with a running KDC; the process's Kerberos environment
    (KRB5_CONFIG, replay cache dir …) points at it until the end."""
    import k5test

    realm = k5test.K5Realm(realm=REALM, portbase=_free_portbase(), create_host=False,
                           create_user=False, get_creds=False)
    saved = {k: os.environ.get(k) for k in realm.env}
    try:
        for key in ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5RCACHEDIR"):
            os.environ[key] = realm.env[key]
        os.environ["KRB5CCNAME"] = f"FILE:{realm.tmpdir}/default-ccache"
        os.environ["KRB5_KTNAME"] = f"FILE:{realm.tmpdir}/default.keytab"
        yield Kdc(realm, REALM)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        realm.stop()
        shutil.rmtree(realm.tmpdir, ignore_errors=True)
