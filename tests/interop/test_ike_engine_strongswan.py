"""secpath's IKE engine against strongSwan 5.9 (charon with kernel-libipsec)
in network namespaces the test creates: secpath initiates IKE_SA_INIT +
IKE_AUTH (PSK), floats to 4500 (libipsec always asks for UDP
encapsulation), installs the Child SA in ``secpath.esp`` and pings through
it; then rekeys the Child SA and the IKE SA, runs DPD and deletes — and
strongSwan initiates towards secpath as the responder.

The engine runs in this process on real UDP sockets opened inside the
test's namespace (``setns``); nothing here touches the host's network.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secpath.esp.sa import SecurityAssociation
from secpath.ike.config import Credentials, IkeConfig, Timing
from secpath.ike.engine import IkeEngine
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaInstalled,
    ChildSaRekeyed,
    EspSaParameters,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaRekeyed,
)
from secpath.policy.model import (
    Address,
    Filter,
    KeyExchangeMethod,
    SecurityMethod,
)
from secpath.secret import Secret
from tests.engine_host import EngineHost, checksum, icmp_echo
from tests.netns import namespaces, needs_root, run_in, veth
from tests.policies import one_rule_config
from tests.strongswan import Charon, charon, needs_strongswan

pytestmark = [pytest.mark.interop, needs_root, needs_strongswan]

ME, SW = "10.78.0.1", "10.78.0.2"
ME_INNER, SW_INNER = "10.78.1.1", "10.78.2.1"
PSK = "interop-psk-not-secret"

SW_CONF = """connections {{
  sp {{
    version = 2
    local_addrs = {sw}
    remote_addrs = {me}
    proposals = {ike}
    dpd_delay = 0
    local {{
      auth = psk
      id = sw.test
    }}
    remote {{
      auth = psk
      id = secpath.test
    }}
    children {{
      net {{
        local_ts = {sw_inner}/32
        remote_ts = {me_inner}/32
        esp_proposals = {esp}
        mode = tunnel
      }}
    }}
  }}
}}
secrets {{
  ike-sp {{
    id-1 = sw.test
    id-2 = secpath.test
    secret = "{psk}"
  }}
}}
"""




def config(ike: KeyExchangeMethod, esp: SecurityMethod, pfs: bool) -> IkeConfig:
    return one_rule_config(
        ME, SW, (ike,), (esp,), Credentials(psk=Secret(PSK.encode())), rule="net",
        filters=(Filter(Address.of(ME_INNER), Address.of(SW_INNER)),), pfs=pfs, tunnel=SW,
        remote_id="sw.test", local_id="secpath.test", timing=Timing(dpd_interval=None), esn=(False,),
    )


class Host(EngineHost[IkeEngine]):
    """The IKEv2 engine on UDP 500/4500 in the test's namespace."""

    def __init__(self, ns: str, cfg: IkeConfig, address: str = ME) -> None:
        super().__init__(ns, IkeEngine([cfg], os.urandom, local_address=address), address)


_ESP: dict[int, SecurityAssociation] = {}


def esp_sa(p: EspSaParameters) -> SecurityAssociation:
    """One SecurityAssociation per SPI: its sequence numbers and replay window
    carry on from one ping to the next."""
    if p.spi in _ESP:
        return _ESP[p.spi]
    _ESP[p.spi] = sa = SecurityAssociation(
        spi=p.spi, transform=p.transform, encryption_key=p.encryption_key,
        integrity_key=p.integrity_key if len(p.integrity_key) else None, mode=p.mode,
        tunnel=p.tunnel, udp_encapsulation=p.udp_encapsulation, esn=p.esn,
        replay_window=p.replay_window,
    )
    return sa


def ping_through(host: Host, child: ChildSaInstalled, ident: int) -> None:
    """Send an ICMP echo through the outbound SA; strongSwan answers through
    its own SA; our inbound SA must open the reply."""
    outbound, inbound = esp_sa(child.outbound), esp_sa(child.inbound)
    assert child.outbound.udp_encapsulation is not None
    wire = outbound.encapsulate(icmp_echo(ME_INNER, SW_INNER, ident))
    host.socks[4500].sendto(wire[28:], (SW, 4500))  # the ESP after outer IPv4 + UDP
    host.esp_in.clear()
    host.pump(lambda: bool(host.esp_in), timeout=10)
    esp = host.esp_in[0]
    udp = struct.pack("!HHHH", 4500, 4500, 8 + len(esp), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(esp), 0, 0, 64, 17, 0,
                     ipaddress.IPv4Address(SW).packed, ipaddress.IPv4Address(ME).packed)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    inner = inbound.decapsulate(ip + udp + esp)
    assert inner[9] == 1 and inner[20] == 0  # ICMP echo reply
    assert inner[12:16] == ipaddress.IPv4Address(SW_INNER).packed
    assert struct.unpack("!H", inner[24:26])[0] == ident


def sw_spis(sw: Charon) -> set[int]:
    """SPIs of strongSwan's INSTALLED Child SAs (it lists DELETED ones a while)."""
    spis: set[int] = set()
    installed = False
    for line in sw.swanctl("--list-sas").splitlines():
        state = re.match(r"\s+\w+: #\d+, reqid \d+, (\w+),", line)
        if state:
            installed = state.group(1) == "INSTALLED"
        spi = re.match(r"\s+(?:in|out)\s+([0-9a-f]{8})", line)
        if spi and installed:
            spis.add(int(spi.group(1), 16))
    return spis


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str, Charon]]:
    with namespaces("ikeme", "ikesw") as ns:
        veth(ns["ikeme"], f"{ME}/24", ns["ikesw"], f"{SW}/24")
        run_in(ns["ikesw"], ["ip", "addr", "add", f"{SW_INNER}/32", "dev", "lo"])
        with charon(ns["ikesw"], tmp_path / "sw") as sw:
            yield ns["ikeme"], ns["ikesw"], sw


SUITES = {
    "3des-sha1-modp1024": (KeyExchangeMethod("sha1", "3des", 2), SecurityMethod("3des", "sha1"),
                           "3des-sha1-modp1024", "3des-sha1-modp1024"),
    "aes256gcm16-prfsha384-ecp384": (
        KeyExchangeMethod("sha384", "aes256gcm", 20), SecurityMethod("aes256gcm", "none"),
        "aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384"),
    "chacha20poly1305-prfsha256-x25519": (
        KeyExchangeMethod("sha256", "chacha20poly1305", 31),
        SecurityMethod("chacha20poly1305", "none"),
        "chacha20poly1305-prfsha256-x25519", "chacha20poly1305-x25519"),
    "aes128-sha256-modp2048": (
        KeyExchangeMethod("sha256", "aes128", 14), SecurityMethod("aes128", "sha256"),
        "aes128-sha256-modp2048", "aes128-sha256-modp2048"),
    # AES-XCBC as PRF and IKE integrity (RFC 4434, RFC 3566): strongSwan's xcbc plugin
    "aes128-aesxcbc-modp2048": (
        KeyExchangeMethod("aesxcbc", "aes128", 14), SecurityMethod("aes128", "sha256"),
        "aes128-aesxcbc-modp2048", "aes128-sha256-modp2048"),
}


@pytest.mark.parametrize("suite", list(SUITES))
def test_secpath_initiates_to_strongswan(lab: tuple[str, str, Charon], suite: str) -> None:
    me_ns, _, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES[suite]
    sw.load(SW_CONF.format(sw=SW, me=ME, ike=sw_ike, esp=sw_esp, sw_inner=SW_INNER,
                           me_inner=ME_INNER, psk=PSK))
    host = Host(me_ns, config(ike, esp, pfs=True))
    try:
        handle = host.engine.initiate("net", time.time())
        host.pump(lambda: bool(host.of(ChildSaInstalled)))
        (est,) = host.of(IkeSaEstablished)
        assert est.remote_id == "sw.test"
        assert est.nat_remote  # libipsec fakes its NAT-D hash: UDP encapsulation
        log = sw.log.read_text(errors="replace")
        assert "faking NAT situation" in log
        assert "remote host is behind NAT" not in log  # our NAT-D hashes are right
        (child,) = host.of(ChildSaInstalled)
        assert isinstance(child, ChildSaInstalled)
        assert {child.inbound.spi, child.outbound.spi} <= sw_spis(sw)
        ping_through(host, child, 1)

        # Child SA rekey with PFS, initiated by secpath
        host.engine.rekey_child(handle, child.child_sa, time.time())
        host.pump(lambda: bool(host.of(ChildSaDeleted)))
        (rekeyed,) = host.of(ChildSaRekeyed)
        assert isinstance(rekeyed, ChildSaRekeyed)
        ping_through(host, rekeyed.new, 2)
        assert child.inbound.spi not in sw_spis(sw)

        # IKE SA rekey, then DPD and a Child SA rekey on the new IKE SA
        host.engine.rekey_ike(handle, time.time())
        host.pump(lambda: bool(host.of(IkeSaRekeyed)) and host.engine.ike_sa_state(handle)
                  is None)
        (ike_rekeyed,) = host.of(IkeSaRekeyed)
        new = ike_rekeyed.new_ike_sa
        host.engine.dpd(new, time.time())
        host.pump(lambda: host.engine._sas[new.to_bytes(8, "big")].outstanding is None)
        host.engine.rekey_child(new, rekeyed.new.child_sa, time.time())
        host.pump(lambda: len(host.of(ChildSaRekeyed)) == 2)
        latest = host.of(ChildSaRekeyed)[-1]
        assert isinstance(latest, ChildSaRekeyed)
        host.pump(lambda: len(host.of(ChildSaDeleted)) == 2)
        ping_through(host, latest.new, 3)

        host.engine.delete(new, time.time())
        host.pump(lambda: bool(host.of(IkeSaDeleted)))
        assert "sp" not in sw.swanctl("--list-sas")
    finally:
        host.close()


def test_strongswan_initiates_to_secpath(lab: tuple[str, str, Charon]) -> None:
    """secpath as the responder: strongSwan initiates, then rekeys the Child SA."""
    me_ns, _, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES["aes128-sha256-modp2048"]
    sw.load(SW_CONF.format(sw=SW, me=ME, ike=sw_ike, esp=sw_esp, sw_inner=SW_INNER,
                           me_inner=ME_INNER, psk=PSK))
    host = Host(me_ns, config(ike, esp, pfs=True))
    try:
        import subprocess

        proc = subprocess.Popen(
            ["ip", "netns", "exec", sw.ns, "swanctl", "--initiate", "--child", "net",
             "--uri", f"unix://{sw.vici}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        host.pump(lambda: bool(host.of(ChildSaInstalled)))
        proc.wait(timeout=20)
        (est,) = host.of(IkeSaEstablished)
        assert not est.initiator
        (child,) = host.of(ChildSaInstalled)
        assert isinstance(child, ChildSaInstalled)
        ping_through(host, child, 7)
        rekey = subprocess.Popen(
            ["ip", "netns", "exec", sw.ns, "swanctl", "--rekey", "--child", "net",
             "--uri", f"unix://{sw.vici}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        host.pump(lambda: bool(host.of(ChildSaDeleted)))
        rekey.wait(timeout=20)
        (rekeyed,) = host.of(ChildSaRekeyed)
        assert isinstance(rekeyed, ChildSaRekeyed)
        ping_through(host, rekeyed.new, 8)

        # strongSwan rekeys the IKE SA: the Child SA moves to the new one
        sw.swanctl("--rekey", "--ike", "sp")
        try:
            host.pump(lambda: bool(host.of(IkeSaRekeyed)) and len(host.engine.ike_sas()) == 1,
                      timeout=5)
        except AssertionError:
            raise AssertionError(sw.log.read_text(errors="replace")[-3000:]) from None
        (ike_rekeyed,) = host.of(IkeSaRekeyed)
        assert host.engine.child_sas(ike_rekeyed.new_ike_sa) == (rekeyed.new.child_sa,)
        ping_through(host, rekeyed.new, 9)

        # strongSwan deletes everything: we see the IKE SA and the Child SA go
        term = subprocess.Popen(
            ["ip", "netns", "exec", sw.ns, "swanctl", "--terminate", "--ike", "sp",
             "--uri", f"unix://{sw.vici}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        host.pump(lambda: bool(host.of(IkeSaDeleted)))
        term.wait(timeout=20)
        assert host.engine.ike_sas() == ()
        assert rekeyed.new.child_sa in {e.child_sa for e in host.of(ChildSaDeleted)}
    finally:
        host.close()


SW_CERT_CONF = """connections {{
  sp {{
    version = 2
    local_addrs = {sw}
    remote_addrs = {me}
    proposals = aes128-sha256-modp2048
    local {{
      auth = pubkey
      certs = {sw_cert}
      id = {sw}
    }}
    remote {{
      auth = pubkey
      id = {me}
      cacerts = {ca}
    }}
    children {{
      net {{
        local_ts = {sw_inner}/32
        remote_ts = {me_inner}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
}}
"""


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_certificates_with_strongswan(lab: tuple[str, str, Charon], tmp_path: Path,
                                      kind: str) -> None:
    """X.509 both ways: strongSwan checks our RFC 7427 signature (RSA-PSS or
    ECDSA) and chain; we check its signature and chain against the same CA."""
    import dataclasses

    from cryptography.hazmat.primitives import serialization

    from tests.sans_io import pki

    me_ns, _, sw = lab
    ca = pki.make_ca("interop")
    keys: dict[str, pki.PrivateKey] = {
        ip: pki.rsa_key(f"interop-{ip}") if kind == "rsa" else pki.ec_key(f"interop-{ip}")
        for ip in (ME, SW)}
    now = datetime_now()
    certs = {ip: pki.make_leaf(ca, keys[ip], ip=ip, not_before=now - datetime.timedelta(hours=1),
                               not_after=now + datetime.timedelta(days=1)) for ip in (ME, SW)}
    pem = serialization.Encoding.PEM
    swanctl = sw.dir  # swanctl --file reads credential folders beside the file
    for sub in ("x509", "x509ca", "private"):
        (swanctl / sub).mkdir(parents=True, exist_ok=True)
    (swanctl / "x509ca" / "ca.pem").write_bytes(ca.cert.public_bytes(pem))
    (swanctl / "x509" / "sw.pem").write_bytes(certs[SW].public_bytes(pem))
    (swanctl / "private" / "sw.key").write_bytes(keys[SW].private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    sw.load(SW_CERT_CONF.format(sw=SW, me=ME, sw_cert="sw.pem", ca="ca.pem",
                                sw_inner=SW_INNER, me_inner=ME_INNER))
    base = config(KeyExchangeMethod("sha256", "aes128", 14), SecurityMethod("aes128gcm", "none"),
                  pfs=False)
    from secpath.ike.auth import Identity

    cfg = dataclasses.replace(
        base, local_id=Identity.parse(ME), remote_id=Identity.parse(SW),
        credentials=Credentials(certificate=certs[ME], private_key=keys[ME],
                                trust_anchors=(ca.cert,)))
    host = Host(me_ns, cfg)
    try:
        host.engine.initiate("net", time.time())
        try:
            host.pump(lambda: bool(host.of(ChildSaInstalled)), timeout=5)
        except AssertionError:
            raise AssertionError(sw.log.read_text(errors="replace")[-4000:]) from None
        (child,) = host.of(ChildSaInstalled)
        assert isinstance(child, ChildSaInstalled)
        ping_through(host, child, 11)
        log = sw.log.read_text(errors="replace")
        scheme = "RSA_EMSA_PSS" if kind == "rsa" else "ECDSA"
        assert re.search(rf"authentication of '{ME}' with {scheme}\S* successful", log), \
            log[-3000:]
    finally:
        host.close()


def datetime_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


NAT_RULES = """table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "%s" meta l4proto udp masquerade to :40000-40999
    oifname "%s" masquerade
  }
}
"""


def test_secpath_behind_a_real_nat(tmp_path: Path) -> None:
    """nftables masquerade (ports translated too) between secpath and
    strongSwan: secpath finds its own address translated (RFC 7296 §2.23),
    floats to 4500 and its ESP-in-UDP goes through the NAT both ways."""
    import dataclasses

    inside = "10.79.0.2"
    with namespaces("natme", "natbox", "natsw") as ns:
        veth(ns["natme"], f"{inside}/24", ns["natbox"], "10.79.0.1/24", tag="nin")
        veth(ns["natbox"], f"{ME}/24", ns["natsw"], f"{SW}/24", tag="nout")
        run_in(ns["natme"], ["ip", "route", "add", "default", "via", "10.79.0.1"])
        run_in(ns["natbox"], ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        rules = tmp_path / "nat.nft"
        rules.write_text(NAT_RULES % ("vanout", "vanout"))
        run_in(ns["natbox"], ["nft", "-f", str(rules)])
        run_in(ns["natsw"], ["ip", "addr", "add", f"{SW_INNER}/32", "dev", "lo"])
        with charon(ns["natsw"], tmp_path / "sw") as sw:
            ike, esp, sw_ike, sw_esp = SUITES["aes256gcm16-prfsha384-ecp384"]
            sw.load(SW_CONF.format(sw=SW, me="%any", ike=sw_ike, esp=sw_esp,
                                   sw_inner=SW_INNER, me_inner=ME_INNER, psk=PSK))
            cfg = dataclasses.replace(config(ike, esp, pfs=False),
                                      local_addresses=(ipaddress.ip_address(inside),))
            host = Host(ns["natme"], cfg, address=inside)
            try:
                host.engine.initiate("net", time.time())
                host.pump(lambda: bool(host.of(ChildSaInstalled)))
                (est,) = host.of(IkeSaEstablished)
                assert est.nat_local  # our address is translated
                log = sw.log.read_text(errors="replace")
                assert "remote host is behind NAT" in log
                (child,) = host.of(ChildSaInstalled)
                assert child.outbound.udp_encapsulation == (4500, 4500)
                assert child.outbound.tunnel == (inside, SW)
                ping_through(host, child, 21)
            finally:
                host.close()
