"""IKEv1 fragmentation against strongSwan 5.9 (``version = 1``, RSA
certificates, ``fragmentation = yes`` and ``force``): with small fragment
sizes at both ends, main mode 5 and 6 cross in fragments each way — we
reassemble strongSwan's, it reassembles ours — and a ping goes through the
quick-mode SAs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from secpath.ike.events import ChildSaInstalled
from secpath.ike.v1.fragments import FRAGMENT_PAYLOAD
from tests.interop.test_ikev1_strongswan import (
    ME,
    SUITES,
    SW,
    SW_INNER,
    Host,
    _certificates,
    config,
    sw_conf,
)
from tests.netns import namespaces, needs_root, run_in, veth
from tests.strongswan import Charon, needs_strongswan

pytestmark = [pytest.mark.interop, needs_root, needs_strongswan]

SW_FRAGMENT_SIZE = 600
OUR_FRAGMENT_SIZE = 400


class SmallFragments(Charon):
    def conf(self) -> str:
        return super().conf().replace("  load = ", f"  fragment_size = {SW_FRAGMENT_SIZE}\n  load = ", 1)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Charon]]:
    with namespaces("v1fme", "v1fsw") as ns:
        veth(ns["v1fme"], f"{ME}/24", ns["v1fsw"], f"{SW}/24", tag="v1f")
        run_in(ns["v1fsw"], ["ip", "addr", "add", f"{SW_INNER}/32", "dev", "lo"])
        sw = SmallFragments(ns["v1fsw"], tmp_path / "sw")
        sw.start()
        try:
            yield ns["v1fme"], sw
        finally:
            sw.stop()


@pytest.mark.parametrize("fragmentation", ["yes", "force"])
@pytest.mark.parametrize("secpath_initiates", [True, False])
def test_main_mode_in_fragments_with_strongswan(lab: tuple[str, Charon], fragmentation: str,
                                                secpath_initiates: bool) -> None:
    me_ns, sw = lab
    ike, esp, sw_ike, sw_esp = SUITES["aes128-sha256-modp2048"]
    creds = _certificates(sw, "rsa")
    conf = sw_conf(sw_ike, sw_esp, auth="pubkey")
    sw.load(conf.replace("    version = 1\n", f"    version = 1\n    fragmentation = {fragmentation}\n", 1))
    cfg = dataclasses.replace(config(ike, esp, creds=creds), fragment_size=OUR_FRAGMENT_SIZE)
    host = Host(me_ns, cfg)
    try:
        est = host.establish(sw, secpath_initiates)
        assert est.remote_id == SW
        host.ping(host.of(ChildSaInstalled)[0], 61)
        log = sw.log.read_text(errors="replace")
        # strongSwan sent its message 5/6 in fragments and we put them together
        assert any(d[16] == FRAGMENT_PAYLOAD for d in host.received), "no fragment from strongSwan"
        assert "splitting IKE message" in log, log[-3000:]
        # and it reassembled ours
        assert "reassembled fragmented IKE message" in log, log[-3000:]
        assert host.engine.fragments_waiting() == 0
    finally:
        host.close()
