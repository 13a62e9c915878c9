"""The lab's own Kerberos realm: an MIT KDC on loopback, started without
root in a temporary directory, with a host principal and keytab per
server — so the planner's default (Kerberos for servers in the domain)
runs end to end in ``secpath lab`` (docs/kerberos.md §7).

Used only when the MIT KDC programs and the ``gssapi`` package are present;
otherwise the lab uses certificates on those paths and says why.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from secpath.errors import LocalError

__all__ = ["LabRealm", "missing_reason"]

_PROGRAMS = ("kdb5_util", "kadmin.local", "krb5kdc")
_SBIN = (Path("/usr/sbin"), Path("/usr/local/sbin"))
# variables the realm sets for this process (libkrb5 reads them per context)
_ENV = ("KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5RCACHEDIR", "KRB5CCNAME", "KRB5_KTNAME")


def _program(name: str) -> str | None:
    found = shutil.which(name)
    if found is not None:
        return found
    for d in _SBIN:
        if (d / name).exists():
            return str(d / name)
    return None


def missing_reason() -> str | None:
    """Why the lab cannot run its own realm here, or ``None``."""
    absent = [p for p in _PROGRAMS if _program(p) is None]
    if absent:
        return f"MIT KDC programs not found ({', '.join(absent)}; Debian krb5-kdc)"
    from secpath.ike.gss import missing_reason as gss_missing

    return gss_missing()


def _free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise LocalError("lab realm: no free port on 127.0.0.1 for the KDC")


class LabRealm:
    """A throwaway realm; :meth:`close` stops the KDC and removes its files."""

    def __init__(self, realm: str = "LAB.SECPATH.TEST") -> None:
        reason = missing_reason()
        if reason is not None:
            raise LocalError(f"lab realm: {reason}")
        self.realm = realm
        self.dir = Path(tempfile.mkdtemp(prefix="secpath-lab-kdc-"))
        self.port = _free_port()
        self._saved = {k: os.environ.get(k) for k in _ENV}
        self._kdc: subprocess.Popen[bytes] | None = None
        try:
            self._configure()
            self._run("kdb5_util", "create", "-s", "-W", "-P", secrets.token_hex(16))
            self._start()
        except BaseException:
            self.close()
            raise

    def _configure(self) -> None:
        d = self.dir
        (d / "krb5.conf").write_text(
            "[libdefaults]\n"
            f" default_realm = {self.realm}\n dns_lookup_kdc = false\n rdns = false\n"
            " dns_canonicalize_hostname = false\n udp_preference_limit = 1\n"
            f"[realms]\n {self.realm} = {{\n  kdc = 127.0.0.1:{self.port}\n }}\n"
        )
        (d / "kdc.conf").write_text(
            f"[realms]\n {self.realm} = {{\n  database_name = {d}/db\n"
            f"  key_stash_file = {d}/stash\n  acl_file = {d}/acl\n }}\n"
            # loopback only: the lab's hosts bind their own 127.x addresses
            f"[kdcdefaults]\n kdc_listen = 127.0.0.1:{self.port}\n"
            f" kdc_tcp_listen = 127.0.0.1:{self.port}\n"
            f"[logging]\n kdc = FILE:{d}/kdc.log\n default = FILE:{d}/others.log\n"
        )
        (d / "acl").write_text("")
        os.environ["KRB5_CONFIG"] = str(d / "krb5.conf")
        os.environ["KRB5_KDC_PROFILE"] = str(d / "kdc.conf")
        os.environ["KRB5RCACHEDIR"] = str(d)
        os.environ["KRB5CCNAME"] = f"FILE:{d}/ccache"
        os.environ["KRB5_KTNAME"] = f"FILE:{d}/default.keytab"

    def _run(self, program: str, *args: str) -> None:
        path = _program(program)
        assert path is not None
        done = subprocess.run([path, *args], capture_output=True, check=False, timeout=60)  # noqa: S603
        if done.returncode != 0:
            raise LocalError(f"lab realm: {program} failed: {done.stderr.decode(errors='replace').strip()}")

    def _start(self) -> None:
        path = _program("krb5kdc")
        assert path is not None
        self._kdc = subprocess.Popen(  # noqa: S603 - the KDC program found above
            [path, "-n"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._kdc.poll() is not None:
                raise LocalError(f"lab realm: krb5kdc exited at start (see {self.dir}/kdc.log)")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise LocalError("lab realm: krb5kdc did not start listening")

    def principal(self, fqdn: str) -> str:
        return f"host/{fqdn}@{self.realm}"

    def host(self, fqdn: str) -> Path:
        """``host/<fqdn>@REALM`` with a random key, and its keytab (mode 600)."""
        keytab = self.dir / f"{fqdn}.keytab"
        if not keytab.exists():
            self._run("kadmin.local", "-r", self.realm, "-q", f"addprinc -randkey {self.principal(fqdn)}")
            self._run("kadmin.local", "-r", self.realm, "-q", f"ktadd -k {keytab} {self.principal(fqdn)}")
            keytab.chmod(0o600)
        return keytab

    def close(self) -> None:
        if self._kdc is not None:
            self._kdc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._kdc.wait(timeout=5)
            if self._kdc.poll() is None:
                self._kdc.kill()
                self._kdc.wait()
            self._kdc = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.dir, ignore_errors=True)
