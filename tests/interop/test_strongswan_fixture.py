"""The strongSwan fixture itself: two charons in namespaces of the test's own
negotiate a PSK tunnel and carry a ping (kernel-libipsec, userspace ESP).
Everything secpath's interop tests build on is checked here once."""

from __future__ import annotations

import re
from pathlib import Path

from tests.netns import namespaces, needs_root, run_in
from tests.strongswan import charon_pair, needs_strongswan


@needs_root
@needs_strongswan
def test_two_charons_tunnel_a_ping(tmp_path: Path) -> None:
    with namespaces("ssa", "ssb") as ns, charon_pair(ns["ssa"], ns["ssb"], tmp_path) as (a, b):
        out = a.swanctl("--initiate", "--child", "net", timeout=30)
        assert "initiate completed successfully" in out, out
        ping = run_in(ns["ssa"], ["ping", "-c", "2", "-W", "2", "-I", "10.77.1.1", "10.77.2.1"], check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        sas = b.swanctl("--list-sas")
        assert "ESTABLISHED" in sas and "AES_GCM_16-128" in sas, sas
        assert re.search(r"in\s+[0-9a-f]{8},\s+\d+ bytes,\s+[1-9]\d* packets", sas), sas
    assert a.process is None and b.process is None
