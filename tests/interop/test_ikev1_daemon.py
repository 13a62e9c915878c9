"""The ``secpath up`` daemon with an ``ike_version = 1`` rule against
strongSwan 5.9 (``version = 1``, kernel-libipsec: tunnel mode in UDP 4500)
in namespaces of the test's own: the agent routes the rule to the IKEv1
engine, main mode and quick mode complete in both directions, and a ping
and a 2 MiB TCP transfer go through the daemon's ESP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.daemon import secpath_daemon, write_policy
from tests.interop.test_daemon_secpath import transfer
from tests.interop.test_strongswan_interop import SWANCTL
from tests.netns import namespaces, needs_root, run_in, veth
from tests.strongswan import charon, needs_strongswan

pytestmark = [pytest.mark.interop, needs_root, needs_strongswan]

S, W = "10.83.0.1", "10.83.0.2"
S_IN, W_IN = "10.83.1.1", "10.83.2.1"
PSK = "secpath-ikev1-daemon-psk"


@pytest.mark.parametrize("secpath_initiates", [True, False])
@pytest.mark.parametrize(("ike", "ss_ike", "esp", "ss_esp"), [
    (("sha1", "3des", 2), "3des-sha1-modp1024", ("3des", "sha1"), "3des-sha1"),
    (("sha256", "aes128", 14), "aes128-sha256-modp2048", ("aes128", "sha256"), "aes128-sha256"),
])
def test_daemon_ikev1_with_strongswan(tmp_path: Path, secpath_initiates: bool,
                                      ike: tuple[str, str, int], ss_ike: str,
                                      esp: tuple[str, str], ss_esp: str) -> None:
    psk = tmp_path / "psk"
    psk.write_text(PSK + "\n")
    psk.chmod(0o600)
    policy = write_policy(tmp_path / "secpath.toml", me=S, peer=W, local_ts=S_IN, remote_ts=W_IN,
                          tunnel=True, psk_file=psk, peer_id=W, ike=ike, esp=esp,
                          start="trap" if secpath_initiates else "none")
    text = policy.read_text()
    assert 'filter_action = "secure"\n' in text
    policy.write_text(text.replace('filter_action = "secure"\n',
                                   'filter_action = "secure"\nike_version = 1\n', 1))
    with namespaces("v1dsp", "v1dss") as ns:
        veth(ns["v1dsp"], f"{S}/24", ns["v1dss"], f"{W}/24", tag="v1d")
        run_in(ns["v1dsp"], ["ip", "addr", "add", f"{S_IN}/32", "dev", "lo"])
        run_in(ns["v1dss"], ["ip", "addr", "add", f"{W_IN}/32", "dev", "lo"])
        with (
            charon(ns["v1dss"], tmp_path / "charon") as c,
            secpath_daemon(ns["v1dsp"], policy, tmp_path / "d") as d,
        ):
            conf = SWANCTL.format(W=W, S=S, W_IN=W_IN, S_IN=S_IN, PSK=PSK, ike=ss_ike,
                                  esp=ss_esp, auth="psk", s_id=S, w_id=W, w_cert="",
                                  start="none").replace("version = 2", "version = 1")
            c.load(conf)
            if not secpath_initiates:
                out = c.swanctl("--initiate", "--child", "net", timeout=30)
                assert "initiate completed successfully" in out, out + d.log.read_text()
            ping = run_in(ns["v1dsp"], ["ping", "-c", "3", "-i", "0.3", "-W", "3", "-I", S_IN,
                                        W_IN], check=False)
            assert ping.returncode == 0, ping.stdout + d.log.read_text() + c.log.read_text()[-3000:]
            size = 2 * 1024 * 1024
            n, digest = transfer(ns["v1dss"], ns["v1dsp"], W_IN, size)
            assert (n, digest) == (size,
                                   hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest())
            sas = c.swanctl("--list-sas")
            assert "IKEv1" in sas and "ESTABLISHED" in sas and "TUNNEL-in-UDP" in sas, sas
            status = d.status()
            (child,) = status["hosts"][0]["child_sas"]
            assert child["mode"] == "tunnel" and child["transform"] == ss_esp
            ike_sa = status["hosts"][0]["ike_sas"][0]
            assert ike_sa["remote_id"] == W and ike_sa["proposal"] == ss_ike
