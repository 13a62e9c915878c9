"""Two `secpath up` daemons in namespaces of the test's own authenticate
with Kerberos V5 (docs/kerberos.md) against a real MIT KDC, which runs in
A's namespace and is reached over the veth by both: traffic goes through,
the SAs name the host principals; a wrong keytab is refused and counted."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.daemon import SecpathDaemon, secpath_daemon, write_policy
from tests.kdc import REALM, Kdc, kdc, needs_kdc
from tests.netns import namespaces, needs_root, run_in, stop_process, veth, wait_until

from .test_daemon_secpath import transfer

A, B = "10.79.0.1", "10.79.0.2"
HOSTS = {A: "alpha.example", B: "beta.example"}

pytestmark = [needs_root, needs_kdc]


@contextmanager
def kdc_in(ns: str, realm: Kdc, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The realm's KDC (stopped in the host namespace) started in ``ns`` and
    the process's krb5.conf pointed at it on A's address."""
    realm.realm.stop_kdc()
    port = realm.realm.portbase
    conf = realm.tmpdir / "krb5-netns.conf"
    conf.write_text(f"[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n"
                    f" rdns = false\n udp_preference_limit = 1\n"
                    f"[realms]\n {REALM} = {{\n  kdc = {A}:{port}\n }}\n")
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    env = {**os.environ, "KRB5_KDC_PROFILE": realm.realm.env["KRB5_KDC_PROFILE"]}
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "krb5kdc", "-n"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert wait_until(lambda: "LISTEN" in run_in(
            ns, ["ss", "-ltn", f"sport = :{port}"], check=False).stdout, timeout=10)
        yield
    finally:
        stop_process(proc)


def policy(tmp: Path, realm: Kdc, me: str, peer: str, keytab: Path) -> Path:
    placeholder = tmp / "unused.psk"
    path = write_policy(tmp / f"{HOSTS[me]}.toml", me=me, peer=peer, psk_file=placeholder,
                        peer_id=realm.principal(HOSTS[peer]))
    text = path.read_text().replace(
        f'method = "psk"\nsecret_file = "{placeholder}"',
        f'method = "kerberos"\nkeytab = "{keytab}"\n'
        f'service_principal = "{realm.principal(HOSTS[peer])}"')
    assert 'method = "kerberos"' in text
    path.write_text(text)
    return path


@pytest.fixture
def realm() -> Iterator[Kdc]:
    with kdc() as k:
        yield k


def test_daemons_secure_a_path_with_kerberos(tmp_path: Path, realm: Kdc,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with namespaces("ka", "kb") as ns:
        veth(ns["ka"], f"{A}/24", ns["kb"], f"{B}/24")
        with kdc_in(ns["ka"], realm, monkeypatch):
            pa = policy(tmp_path, realm, A, B, realm.host(HOSTS[A]))
            pb = policy(tmp_path, realm, B, A, realm.host(HOSTS[B]))
            with (secpath_daemon(ns["ka"], pa, tmp_path / "da") as da,
                  secpath_daemon(ns["kb"], pb, tmp_path / "db") as db):
                ping = run_in(ns["ka"], ["ping", "-c", "3", "-i", "0.2", "-W", "3", B],
                              check=False)
                assert ping.returncode == 0, ping.stdout + da.log.read_text() + db.log.read_text()
                size = 512 * 1024
                n, digest = transfer(ns["kb"], ns["ka"], B, size)
                expected = hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest()
                assert (n, digest) == (size, expected)
                (host,) = db.status()["hosts"]
                assert host["rules"][0]["state"] == "up"
                text = db.cli("status", "--json")
                assert realm.principal(HOSTS[A]) in text, text


def test_daemon_with_a_wrong_keytab_refuses_and_counts(tmp_path: Path, realm: Kdc,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with namespaces("kc", "kd") as ns:
        veth(ns["kc"], f"{A}/24", ns["kd"], f"{B}/24")
        with kdc_in(ns["kc"], realm, monkeypatch):
            pa = policy(tmp_path, realm, A, B, realm.host(HOSTS[A]))
            realm.host(HOSTS[B])  # the principal exists; B holds another one's keys
            pb = policy(tmp_path, realm, B, A, realm.host("gamma.example"))
            with (secpath_daemon(ns["kc"], pa, tmp_path / "da") as da,
                  secpath_daemon(ns["kd"], pb, tmp_path / "db") as db):
                ping = run_in(ns["kc"], ["ping", "-c", "2", "-i", "0.2", "-W", "2", B],
                              check=False)
                assert ping.returncode != 0

                def failures(d: SecpathDaemon) -> int:
                    stats = json.loads(d.cli("stats", "--json"))
                    return int(stats["main_mode"]["authentication_failures"])

                assert wait_until(lambda: failures(db) >= 1, timeout=15), db.log.read_text()
                # the initiator is told (AUTHENTICATION_FAILED) and counts it too
                assert wait_until(lambda: failures(da) >= 1, timeout=15), da.log.read_text()
                (host,) = db.status()["hosts"]
                reason = host["rules"][0]["last_failure"]
                assert "AP-REQ refused" in reason and "not found in keytab" in reason, reason


def test_daemon_falls_back_to_the_next_method_and_logs_why(tmp_path: Path, realm: Kdc,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A's rule lists Kerberos then a PSK; B's rule has the PSK only (no
    method 201): B refuses A's AP-REQ, A's daemon starts a new IKE SA with
    the PSK, and its negotiation log says so (docs/kerberos.md §6)."""
    psk = tmp_path / "path.psk"
    psk.write_bytes(b"the fallback secret of the path\n")
    psk.chmod(0o600)
    log = tmp_path / "a-negotiation.log"
    with namespaces("ke", "kf") as ns:
        veth(ns["ke"], f"{A}/24", ns["kf"], f"{B}/24")
        with kdc_in(ns["ke"], realm, monkeypatch):
            realm.host(HOSTS[B])  # A gets a ticket; B's rule does not use it
            pa = write_policy(tmp_path / "a.toml", me=A, peer=B, psk_file=psk)
            text = pa.read_text().replace(
                "[[rule.authentication]]\n",
                f'[[rule.authentication]]\nmethod = "kerberos"\nkeytab = "{realm.host(HOSTS[A])}"\n'
                f'service_principal = "{realm.principal(HOSTS[B])}"\n[[rule.authentication]]\n')
            pa.write_text(f'{text}\n[monitor]\nlog_file = "{log}"\nlog_level = 1\n')
            pb = write_policy(tmp_path / "b.toml", me=B, peer=A, psk_file=psk)
            with (secpath_daemon(ns["ke"], pa, tmp_path / "da") as da,
                  secpath_daemon(ns["kf"], pb, tmp_path / "db") as db):
                ping = run_in(ns["ke"], ["ping", "-c", "3", "-i", "0.3", "-W", "3", B], check=False)
                assert ping.returncode == 0, ping.stdout + da.log.read_text() + db.log.read_text()
                (host,) = da.status()["hosts"]
                assert [s["auth_method"] for s in host["ike_sas"]] == ["psk"], host
                records = [json.loads(line) for line in log.read_text().splitlines()]
                up = [r["detail"] for r in records if r["kind"] == "ike-up"]
                assert len(up) == 1, records
                assert ("authenticated by psk (kerberos failed: IKE_AUTH refused by the peer: "
                        "AUTHENTICATION_FAILED") in up[0], up
                assert [r["kind"] for r in records].count("auth-fallback") == 1, records
