"""secpath against strongSwan 5.9 (charon with kernel-libipsec) in
namespaces of the test's own: both directions, PSK and certificates, the
guide's and today's suites; a ping and a TCP transfer checked by hash.

kernel-libipsec does tunnel mode only and always encapsulates ESP in UDP
4500 (it fakes its NAT detection hash), so secpath must float to 4500 and
use RFC 3948 framing; these tests prove it does."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.daemon import secpath_daemon, write_policy
from tests.interop.test_daemon_secpath import transfer
from tests.netns import namespaces, needs_root, run_in, veth
from tests.strongswan import charon, needs_strongswan

S, W = "10.77.0.1", "10.77.0.2"  # secpath, strongSwan
S_IN, W_IN = "10.77.1.1", "10.77.2.1"  # protected hosts behind each gateway
PSK = "secpath-strongswan-interop-psk"

SWANCTL = """connections {{
  sp {{
    version = 2
    local_addrs = {W}
    remote_addrs = {S}
    proposals = {ike}
    dpd_delay = 0
    local {{
      auth = {auth}
      id = {w_id}
{w_cert}
    }}
    remote {{
      auth = {auth}
      id = {s_id}
    }}
    children {{
      net {{
        local_ts = {W_IN}/32
        remote_ts = {S_IN}/32
        esp_proposals = {esp}
        start_action = {start}
      }}
    }}
  }}
}}
secrets {{
  ike-sp {{
    id-1 = {s_id}
    id-2 = {w_id}
    secret = "{PSK}"
  }}
}}
"""


def _pki(tmp: Path) -> dict[str, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secpath interop CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": tmp / "ca.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, fqdn in (("s", "secpath.test"), ("w", "strongswan.test")):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(fqdn)]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        out[f"{name}.pem"] = tmp / f"{name}.pem"
        out[f"{name}.key"] = tmp / f"{name}.key"
        out[f"{name}.pem"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{name}.key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out[f"{name}.key"].chmod(0o600)
    return out


CASES = [
    # (secpath initiates?, auth, IKE (secpath), IKE (strongSwan), ESP (secpath), ESP (strongSwan))
    (True, "psk", ("sha256", "aes128", 14), "aes128-sha256-modp2048", ("aes128gcm", "none"), "aes128gcm16"),
    (False, "psk", ("sha256", "aes128", 14), "aes128-sha256-modp2048", ("aes128", "sha256"), "aes128-sha256"),
    (True, "psk", ("sha1", "3des", 2), "3des-sha1-modp1024", ("3des", "sha1"), "3des-sha1"),
    (
        False,
        "certificate",
        ("sha256", "aes128gcm", 19),
        "aes128gcm16-prfsha256-ecp256",
        ("aes128gcm", "none"),
        "aes128gcm16",
    ),
    (
        True,
        "certificate",
        ("sha256", "aes128", 14),
        "aes128-sha256-modp2048",
        ("aes128", "sha256"),
        "aes128-sha256",
    ),
]


@needs_root
@needs_strongswan
@pytest.mark.parametrize(
    ("secpath_initiates", "auth", "ike", "ss_ike", "esp", "ss_esp"),
    CASES,
    ids=[f"{'secpath' if c[0] else 'strongswan'}-init-{c[1]}-{c[3]}-{c[5]}" for c in CASES],
)
def test_interop(
    tmp_path: Path,
    secpath_initiates: bool,
    auth: str,
    ike: tuple[str, str, int],
    ss_ike: str,
    esp: tuple[str, str],
    ss_esp: str,
) -> None:
    pki = _pki(tmp_path)
    psk = tmp_path / "psk"
    psk.write_text(PSK + "\n")
    psk.chmod(0o600)
    cert = auth == "certificate"
    s_id, w_id = ("secpath.test", "strongswan.test") if cert else (S, W)
    policy = write_policy(
        tmp_path / "secpath.toml",
        me=S,
        peer=W,
        local_ts=S_IN,
        remote_ts=W_IN,
        tunnel=True,
        psk_file=None if cert else psk,
        cert=(pki["ca"], pki["s.pem"], pki["s.key"]) if cert else None,
        peer_id=w_id,
        ike=ike,
        esp=esp,
        start="trap" if secpath_initiates else "none",
    )
    if cert:
        policy.write_text(policy.read_text().replace(f'id = "{S}"', 'id = "secpath.test"'))
    with namespaces("sp", "ss") as ns:
        veth(ns["sp"], f"{S}/24", ns["ss"], f"{W}/24")
        run_in(ns["sp"], ["ip", "addr", "add", f"{S_IN}/32", "dev", "lo"])
        run_in(ns["ss"], ["ip", "addr", "add", f"{W_IN}/32", "dev", "lo"])
        with (
            charon(ns["ss"], tmp_path / "charon") as c,
            secpath_daemon(ns["sp"], policy, tmp_path / "d") as d,
        ):
            if cert:
                conf_dir = tmp_path / "charon"
                for sub in ("x509ca", "x509", "private"):
                    (conf_dir / sub).mkdir(exist_ok=True)
                (conf_dir / "x509ca" / "ca.pem").write_bytes(pki["ca"].read_bytes())
                (conf_dir / "x509" / "w.pem").write_bytes(pki["w.pem"].read_bytes())
                (conf_dir / "private" / "w.key").write_bytes(pki["w.key"].read_bytes())
            conf = SWANCTL.format(
                W=W,
                S=S,
                W_IN=W_IN,
                S_IN=S_IN,
                PSK=PSK,
                ike=ss_ike,
                esp=ss_esp,
                auth="pubkey" if cert else "psk",
                s_id=s_id,
                w_id=w_id,
                w_cert="      certs = w.pem" if cert else "",
                start="none",
            )
            c.load(conf)
            if not secpath_initiates:
                out = c.swanctl("--initiate", "--child", "net", timeout=30)
                assert "initiate completed successfully" in out, out + d.log.read_text()
            ping = run_in(
                ns["sp"], ["ping", "-c", "3", "-i", "0.3", "-W", "3", "-I", S_IN, W_IN], check=False
            )
            assert ping.returncode == 0, ping.stdout + d.log.read_text() + c.log.read_text()[-3000:]
            size = 2 * 1024 * 1024
            n, digest = transfer(ns["ss"], ns["sp"], W_IN, size)
            assert (n, digest) == (size, hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest())
            sas = c.swanctl("--list-sas")
            assert "ESTABLISHED" in sas and "TUNNEL-in-UDP" in sas, sas
            status = d.status()
            (child,) = status["hosts"][0]["child_sas"]
            assert child["encapsulation"].startswith("UDP 4500") and child["mode"] == "tunnel"
            assert child["transform"] == ss_esp
            ike_sa = status["hosts"][0]["ike_sas"][0]
            assert ike_sa["remote_id"] == w_id and ike_sa["proposal"] == ss_ike
