"""The strongSwan fixture itself: two charons in namespaces of the test's own
negotiate a PSK tunnel and carry a ping (kernel-libipsec, userspace ESP).
Everything secpath's interop tests build on is checked here once."""

from __future__ import annotations

import re
from pathlib import Path

from tests.netns import namespaces, needs_root, run_in, veth
from tests.strongswan import charon, needs_strongswan

CONF = """connections {{
  t {{
    version = 2
    local_addrs = {local}
    remote_addrs = {remote}
    proposals = aes128-sha256-modp2048
    local {{
      auth = psk
      id = {me}
    }}
    remote {{
      auth = psk
      id = {peer}
    }}
    children {{
      net {{
        local_ts = {inner_local}/32
        remote_ts = {inner_remote}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
}}
secrets {{
  ike-t {{
    id-1 = a.test
    id-2 = b.test
    secret = "fixture-psk-not-secret"
  }}
}}
"""


@needs_root
@needs_strongswan
def test_two_charons_tunnel_a_ping(tmp_path: Path) -> None:
    with namespaces("ssa", "ssb") as ns:
        veth(ns["ssa"], "10.77.0.1/24", ns["ssb"], "10.77.0.2/24")
        run_in(ns["ssa"], ["ip", "addr", "add", "10.77.1.1/32", "dev", "lo"])
        run_in(ns["ssb"], ["ip", "addr", "add", "10.77.2.1/32", "dev", "lo"])
        with charon(ns["ssa"], tmp_path / "a") as a, charon(ns["ssb"], tmp_path / "b") as b:
            a.load(
                CONF.format(
                    local="10.77.0.1",
                    remote="10.77.0.2",
                    me="a.test",
                    peer="b.test",
                    inner_local="10.77.1.1",
                    inner_remote="10.77.2.1",
                )
            )
            b.load(
                CONF.format(
                    local="10.77.0.2",
                    remote="10.77.0.1",
                    me="b.test",
                    peer="a.test",
                    inner_local="10.77.2.1",
                    inner_remote="10.77.1.1",
                )
            )
            out = a.swanctl("--initiate", "--child", "net", timeout=30)
            assert "initiate completed successfully" in out, out
            ping = run_in(
                ns["ssa"], ["ping", "-c", "2", "-W", "2", "-I", "10.77.1.1", "10.77.2.1"], check=False
            )
            assert ping.returncode == 0, ping.stdout + ping.stderr
            sas = b.swanctl("--list-sas")
            assert "ESTABLISHED" in sas and "AES_GCM_16-128" in sas, sas
            assert re.search(r"in\s+[0-9a-f]{8},\s+\d+ bytes,\s+[1-9]\d* packets", sas), sas
        assert a.process is None and b.process is None
