"""secpath's IKEv1 engine against strongSwan 5.9 (``version = 1``
connections, kernel-libipsec, tunnel mode) in network namespaces the test
creates: main mode with PSK and with RSA certificates, quick mode with PFS,
for the guide's 3DES/SHA-1/group 2 suite and AES/SHA-256/group 14, with
secpath as initiator and as responder; quick-mode rekey, DPD, delete, and
a real NAT (nftables masquerade) in between.  Pings go through the ESP
SAs built from the engine's events.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives import serialization

from secpath.esp.sa import SecurityAssociation
from secpath.ike.auth import Identity
from secpath.ike.config import Credentials, IkeConfig, Timing
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaInstalled,
    ChildSaRekeyed,
    EspSaParameters,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
)
from secpath.ike.v1 import IkeV1Engine
from secpath.policy.model import (
    Address,
    Filter,
    KeyExchangeMethod,
    SecurityMethod,
)
from secpath.secret import Secret
from tests.engine_host import EngineHost, icmp_echo
from tests.netns import namespaces, needs_root, run_in, veth
from tests.policies import one_rule_config
from tests.sans_io import pki
from tests.strongswan import Charon, charon, needs_strongswan

pytestmark = [pytest.mark.interop, needs_root, needs_strongswan]

ME, SW = "10.81.0.1", "10.81.0.2"
ME_INNER, SW_INNER = "10.81.1.1", "10.81.2.1"
PSK = "ikev1-interop-psk-not-secret"
E = TypeVar("E")
NO_DPD = Timing(dpd_interval=None)

SUITES = {
    "3des-sha1-modp1024": (KeyExchangeMethod("sha1", "3des", 2), SecurityMethod("3des", "sha1"),
                           "3des-sha1-modp1024", "3des-sha1-modp1024"),
    "aes128-sha256-modp2048": (KeyExchangeMethod("sha256", "aes128", 14),
                               SecurityMethod("aes128", "sha256"),
                               "aes128-sha256-modp2048", "aes128-sha256-modp2048"),
}

SW_CONF = """connections {{
  v1 {{
    version = 1
    aggressive = no
    local_addrs = {sw}
    remote_addrs = {me}
    proposals = {ike}
    dpd_delay = {dpd}
    local {{
      auth = {auth}
      id = {sw_id}
      {certs}
    }}
    remote {{
      auth = {auth}
      id = {me_id}
      {cacerts}
    }}
    children {{
      net {{
        local_ts = {sw_inner}/32
        remote_ts = {me_inner}/32
        esp_proposals = {esp}
        mode = tunnel
        rekey_time = 0
      }}
    }}
  }}
}}
secrets {{
  ike-v1 {{
    id-1 = {sw_id}
    id-2 = {me_id}
    secret = "{psk}"
  }}
}}
"""


def sw_conf(sw_ike: str, sw_esp: str, *, me: str = ME, auth: str = "psk", dpd: int = 0) -> str:
    cert = auth == "pubkey"
    return SW_CONF.format(
        sw=SW, me=me, ike=sw_ike, esp=sw_esp, dpd=dpd, auth=auth,
        sw_id=SW if cert else "sw.test", me_id=ME if cert else "secpath.test",
        certs="certs = sw.pem" if cert else "", cacerts="cacerts = ca.pem" if cert else "",
        sw_inner=SW_INNER, me_inner=ME_INNER, psk=PSK)


def config(ike: KeyExchangeMethod, esp: SecurityMethod, *, pfs: bool = True,
           creds: Credentials | None = None, local: str = ME,
           timing: Timing = NO_DPD) -> IkeConfig:
    cert = creds is not None
    return one_rule_config(
        local, SW, (ike,), (esp,), creds or Credentials(psk=Secret(PSK.encode())), rule="net",
        filters=(Filter(Address.of(ME_INNER), Address.of(SW_INNER)),), pfs=pfs, tunnel=SW,
        remote_id=SW if cert else "sw.test", local_id=ME if cert else "secpath.test", ike_version=1,
        timing=timing, esn=(False,),
    )


class Host(EngineHost[IkeV1Engine]):
    """The IKEv1 engine on UDP 500/4500 in the test's namespace."""

    def __init__(self, ns: str, cfg: IkeConfig, address: str = ME) -> None:
        super().__init__(ns, IkeV1Engine([cfg], os.urandom, local_address=address), address)
        self.esp: dict[int, SecurityAssociation] = {}

    def establish(self, sw: Charon, secpath_initiates: bool) -> IkeSaEstablished:
        """Main mode + quick mode for the child ``net``, started by us or by
        strongSwan (swanctl --initiate); the one IKE SA that came up."""
        if secpath_initiates:
            self.engine.initiate("net", time.time())
            self.pump(lambda: bool(self.of(ChildSaInstalled)), log=sw.log)
        else:
            proc = swanctl_async(sw, "--initiate", "--child", "net")
            self.pump(lambda: bool(self.of(ChildSaInstalled)), log=sw.log)
            proc.wait(timeout=20)
        (est,) = self.of(IkeSaEstablished)
        return est

    def sa(self, p: EspSaParameters) -> SecurityAssociation:
        if p.spi not in self.esp:
            self.esp[p.spi] = SecurityAssociation(
                spi=p.spi, transform=p.transform, encryption_key=p.encryption_key,
                integrity_key=p.integrity_key if len(p.integrity_key) else None, mode=p.mode,
                tunnel=p.tunnel, udp_encapsulation=p.udp_encapsulation, esn=p.esn,
                replay_window=p.replay_window)
        return self.esp[p.spi]

    def ping(self, child: ChildSaInstalled, ident: int) -> None:
        """An ICMP echo out through our SA, strongSwan's reply in through ours."""
        outbound, inbound = self.sa(child.outbound), self.sa(child.inbound)
        assert child.outbound.udp_encapsulation is not None  # libipsec: ESP in UDP
        self.esp_in.clear()
        # strongSwan installs its SAs once it has processed HASH(3): a first
        # echo may arrive before that and is dropped, so try a few times
        for attempt in range(5):
            wire = outbound.encapsulate(icmp_echo(ME_INNER, SW_INNER, ident))
            self.socks[4500].sendto(wire[28:], (SW, child.outbound.udp_encapsulation[1]))
            with contextlib.suppress(AssertionError):
                self.pump(lambda: bool(self.esp_in), timeout=1.0 if attempt < 4 else 5.0)
            if self.esp_in:
                break
        assert self.esp_in, "no ESP answer from strongSwan"
        esp = self.esp_in[0]
        udp = struct.pack("!HHHH", 4500, 4500, 8 + len(esp), 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(esp), 0, 0, 64, 17, 0,
                         ipaddress.IPv4Address(SW).packed,
                         ipaddress.IPv4Address(self.address).packed)
        inner = inbound.decapsulate(ip + udp + esp)
        assert inner[9] == 1 and inner[20] == 0  # ICMP echo reply
        assert inner[12:16] == ipaddress.IPv4Address(SW_INNER).packed
        assert struct.unpack("!H", inner[24:26])[0] == ident


def swanctl_async(sw: Charon, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ip", "netns", "exec", sw.ns, "swanctl", *args,
                             "--uri", f"unix://{sw.vici}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Charon]]:
    with namespaces("v1me", "v1sw") as ns:
        veth(ns["v1me"], f"{ME}/24", ns["v1sw"], f"{SW}/24", tag="v1")
        run_in(ns["v1sw"], ["ip", "addr", "add", f"{SW_INNER}/32", "dev", "lo"])
        with charon(ns["v1sw"], tmp_path / "sw") as sw:
            yield ns["v1me"], sw


@pytest.mark.parametrize(("suite", "pfs"), [(s, p) for s in SUITES for p in (True, False)])
def test_secpath_initiates_main_and_quick_mode(lab: tuple[str, Charon], suite: str,
                                               pfs: bool) -> None:
    me_ns, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES[suite]
    sw.load(sw_conf(sw_ike, sw_esp if pfs else sw_esp.rsplit("-", 1)[0]))
    host = Host(me_ns, config(ike, esp, pfs=pfs))
    try:
        handle = host.engine.initiate("net", time.time())
        host.pump(lambda: bool(host.of(ChildSaInstalled)), log=sw.log)
        (est,) = host.of(IkeSaEstablished)
        assert est.remote_id == "sw.test" and est.proposal == suite
        (child,) = host.of(ChildSaInstalled)
        assert child.outbound.mode == "tunnel" and child.outbound.tunnel == (ME, SW)
        listing = sw.swanctl("--list-sas")
        assert "IKEv1" in listing and "ESTABLISHED" in listing, listing
        host.ping(child, 1)
        host.engine.delete(handle, time.time())
        host.pump(lambda: bool(host.of(IkeSaDeleted)))
        deadline = time.monotonic() + 5
        while "v1:" in sw.swanctl("--list-sas") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "v1:" not in sw.swanctl("--list-sas")
    finally:
        host.close()


@pytest.mark.parametrize("suite", list(SUITES))
def test_strongswan_initiates_to_secpath(lab: tuple[str, Charon], suite: str) -> None:
    """secpath as the responder: strongSwan's main mode and quick mode with
    PFS, its quick-mode rekey (the old SA deleted), its new main mode taking
    the IPsec SA over, and its delete."""
    me_ns, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES[suite]
    sw.load(sw_conf(sw_ike, sw_esp))
    host = Host(me_ns, config(ike, esp, pfs=True))
    try:
        est = host.establish(sw, secpath_initiates=False)
        assert not est.initiator and est.remote_id == "sw.test"
        (child,) = host.of(ChildSaInstalled)
        host.ping(child, 7)

        rekey = swanctl_async(sw, "--rekey", "--child", "net")
        host.pump(lambda: len(host.of(ChildSaInstalled)) == 2, log=sw.log)
        rekey.wait(timeout=20)
        new = host.of(ChildSaInstalled)[-1]
        assert new.child_sa != child.child_sa
        host.ping(new, 8)  # strongSwan sends on the newest SA (the old one expires later)

        term = swanctl_async(sw, "--terminate", "--ike", "v1")
        host.pump(lambda: bool(host.of(IkeSaDeleted)), log=sw.log)
        term.wait(timeout=20)
        assert host.engine.ike_sas() == ()
        assert {child.child_sa, new.child_sa} <= {e.child_sa for e in host.of(ChildSaDeleted)}
    finally:
        host.close()


def test_secpath_rekeys_quick_mode_with_pfs(lab: tuple[str, Charon]) -> None:
    me_ns, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES["aes128-sha256-modp2048"]
    sw.load(sw_conf(sw_ike, sw_esp))
    host = Host(me_ns, config(ike, esp, pfs=True))
    try:
        handle = host.engine.initiate("net", time.time())
        host.pump(lambda: bool(host.of(ChildSaInstalled)), log=sw.log)
        (child,) = host.of(ChildSaInstalled)
        host.ping(child, 31)
        host.engine.rekey_child(handle, child.child_sa, time.time())
        host.pump(lambda: bool(host.of(ChildSaRekeyed)) and bool(host.of(ChildSaDeleted)),
                  log=sw.log)
        (rekeyed,) = host.of(ChildSaRekeyed)
        assert rekeyed.old_child_sa == child.child_sa
        host.ping(rekeyed.new, 32)
        log = sw.log.read_text(errors="replace")
        assert log.count("CHILD_SA net{") >= 2
        deadline = time.monotonic() + 5
        while f"{child.inbound.spi:08x}" in sw.swanctl("--list-sas") \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"{child.inbound.spi:08x}" not in sw.swanctl("--list-sas")
    finally:
        host.close()


def test_dpd_finds_a_restarted_peer(lab: tuple[str, Charon]) -> None:
    """strongSwan crashes and is restarted (it forgets every SA without a
    Delete): our R-U-THERE goes
    unanswered, the ISAKMP SA and its IPsec SAs are declared dead (RFC
    3706), and a new main mode brings the path back."""
    me_ns, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES["3des-sha1-modp1024"]
    conf = sw_conf(sw_ike, sw_esp, dpd=1)
    sw.load(conf)
    timing = Timing(dpd_interval=1.0, retransmit_timeout=0.3, retransmit_base=1.5,
                    retransmit_tries=3)
    host = Host(me_ns, config(ike, esp, timing=timing))
    try:
        host.engine.initiate("net", time.time())
        host.pump(lambda: bool(host.of(ChildSaInstalled)), log=sw.log)
        # alive: DPD is answered for a few intervals
        alive_until = time.monotonic() + 2.5
        host.pump(lambda: time.monotonic() >= alive_until)
        assert not host.of(IkeSaFailed)
        assert "[ HASH N(DPD_ACK) ]" in sw.log.read_text(errors="replace")  # we answer
        # a crash, not a clean stop (which would send Deletes): SIGKILL by its pid
        assert sw.process is not None
        os.killpg(sw.process.pid, signal.SIGKILL)
        sw.process.wait(timeout=10)
        sw.process = None
        sw.start()
        sw.load(conf)
        host.pump(lambda: bool(host.of(IkeSaFailed)), timeout=15, log=sw.log)
        (failed,) = host.of(IkeSaFailed)
        assert "dead peer" in failed.reason
        assert host.of(ChildSaDeleted)
        host.engine.initiate("net", time.time())
        host.pump(lambda: len(host.of(ChildSaInstalled)) == 2, log=sw.log)
        host.ping(host.of(ChildSaInstalled)[-1], 41)
    finally:
        host.close()



def _certificates(sw: Charon, kind: str = "rsa") -> Credentials:
    """A CA, our certificate and strongSwan's (RSA or ECDSA P-256), written to
    its swanctl folders."""
    ca = pki.make_ca("ikev1-interop")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    keys: dict[str, pki.PrivateKey] = {
        ip: pki.rsa_key(f"ikev1-{ip}") if kind == "rsa" else pki.ec_key(f"ikev1-{ip}")
        for ip in (ME, SW)}
    certs = {ip: pki.make_leaf(ca, keys[ip], ip=ip, not_before=now - datetime.timedelta(hours=1),
                               not_after=now + datetime.timedelta(days=1)) for ip in (ME, SW)}
    pem = serialization.Encoding.PEM
    for sub in ("x509", "x509ca", "private"):
        (sw.dir / sub).mkdir(parents=True, exist_ok=True)
    (sw.dir / "x509ca" / "ca.pem").write_bytes(ca.cert.public_bytes(pem))
    (sw.dir / "x509" / "sw.pem").write_bytes(certs[SW].public_bytes(pem))
    (sw.dir / "private" / "sw.key").write_bytes(keys[SW].private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Credentials(certificate=certs[ME], private_key=keys[ME], trust_anchors=(ca.cert,))


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
@pytest.mark.parametrize("secpath_initiates", [True, False])
def test_certificates_with_strongswan(lab: tuple[str, Charon], secpath_initiates: bool,
                                      kind: str) -> None:
    """Main mode with RSA (RFC 2409 §5.1) or ECDSA (RFC 4754) signatures both
    ways: strongSwan checks our signature and certificate, we check its own
    against the same CA."""
    me_ns, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES["aes128-sha256-modp2048"]
    creds = _certificates(sw, kind)
    sw.load(sw_conf(sw_ike, sw_esp, auth="pubkey"))
    cfg = config(ike, esp, creds=creds)
    assert cfg.local_id == Identity.parse(ME)
    host = Host(me_ns, cfg)
    try:
        est = host.establish(sw, secpath_initiates)
        assert est.remote_id == SW and est.initiator is secpath_initiates
        host.ping(host.of(ChildSaInstalled)[0], 51)
        log = sw.log.read_text(errors="replace")
        scheme = "RSA" if kind == "rsa" else "ECDSA"
        assert re.search(rf"authentication of '{ME}' with {scheme}\S* successful", log), \
            log[-3000:]
    finally:
        host.close()


NAT_RULES = """table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "%s" meta l4proto udp masquerade to :40000-40999
    oifname "%s" masquerade
  }
}
"""


def test_secpath_behind_a_real_nat(tmp_path: Path) -> None:
    """nftables masquerade (ports too) between secpath and strongSwan:
    NAT-D shows our address translated (RFC 3947 §3), main mode floats to
    4500, quick mode asks for UDP-encapsulated tunnel mode, and ESP-in-UDP
    passes the NAT both ways."""
    inside = "10.82.0.2"
    with namespaces("v1natme", "v1natbox", "v1natsw") as ns:
        veth(ns["v1natme"], f"{inside}/24", ns["v1natbox"], "10.82.0.1/24", tag="v1in")
        veth(ns["v1natbox"], f"{ME}/24", ns["v1natsw"], f"{SW}/24", tag="v1out")
        run_in(ns["v1natme"], ["ip", "route", "add", "default", "via", "10.82.0.1"])
        run_in(ns["v1natbox"], ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        rules = tmp_path / "nat.nft"
        rules.write_text(NAT_RULES % ("vav1out", "vav1out"))
        run_in(ns["v1natbox"], ["nft", "-f", str(rules)])
        run_in(ns["v1natsw"], ["ip", "addr", "add", f"{SW_INNER}/32", "dev", "lo"])
        with charon(ns["v1natsw"], tmp_path / "sw") as sw:
            ike, esp, sw_ike, sw_esp = SUITES["3des-sha1-modp1024"]
            sw.load(sw_conf(sw_ike, sw_esp, me="%any"))
            host = Host(ns["v1natme"], config(ike, esp, local=inside), address=inside)
            try:
                host.engine.initiate("net", time.time())
                host.pump(lambda: bool(host.of(ChildSaInstalled)), log=sw.log)
                (est,) = host.of(IkeSaEstablished)
                assert est.nat_local  # our address is translated
                log = sw.log.read_text(errors="replace")
                assert "remote host is behind NAT" in log
                (child,) = host.of(ChildSaInstalled)
                assert child.outbound.udp_encapsulation == (4500, 4500)
                assert child.outbound.tunnel == (inside, SW)
                host.ping(child, 61)
            finally:
                host.close()


def test_strongswan_behind_a_real_nat_initiates_to_secpath(tmp_path: Path) -> None:
    """The other direction: strongSwan inside the NAT initiates; secpath (the
    responder) sees the peer translated, follows its float to 4500 and
    answers in UDP-encapsulated tunnel mode."""
    inside = "10.84.0.2"
    with namespaces("v1rsw", "v1rbox", "v1rme") as ns:
        veth(ns["v1rsw"], f"{inside}/24", ns["v1rbox"], "10.84.0.1/24", tag="v1rin")
        veth(ns["v1rbox"], f"{SW}/24", ns["v1rme"], f"{ME}/24", tag="v1rout")
        run_in(ns["v1rsw"], ["ip", "route", "add", "default", "via", "10.84.0.1"])
        run_in(ns["v1rsw"], ["ip", "addr", "add", f"{SW_INNER}/32", "dev", "lo"])
        run_in(ns["v1rbox"], ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        rules = tmp_path / "nat.nft"
        rules.write_text(NAT_RULES % ("vav1rout", "vav1rout"))
        run_in(ns["v1rbox"], ["nft", "-f", str(rules)])
        with charon(ns["v1rsw"], tmp_path / "sw") as sw:
            ike, esp, sw_ike, sw_esp = SUITES["aes128-sha256-modp2048"]
            sw.load(sw_conf(sw_ike, sw_esp).replace(f"local_addrs = {SW}",
                                                    f"local_addrs = {inside}"))
            # the peer is known by its translated address (the NAT box's)
            host = Host(ns["v1rme"], config(ike, esp))
            try:
                est = host.establish(sw, secpath_initiates=False)
                assert est.nat_remote and not est.initiator
                assert est.peer[0] == SW and est.peer[1] != 500
                (child,) = host.of(ChildSaInstalled)
                assert child.outbound.udp_encapsulation == (4500, est.peer[1])
                host.ping(child, 71)
            finally:
                host.close()
