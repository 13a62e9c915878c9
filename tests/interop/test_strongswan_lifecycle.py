"""secpath and strongSwan over time: Child SA and IKE SA rekeys started by
each side while traffic flows, deletes from each side, and strongSwan
restarted mid-flow (dead-peer detection notices, secpath re-establishes)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from tests.daemon import SecpathDaemon, secpath_daemon, write_policy
from tests.interop.test_strongswan_interop import PSK, S_IN, SWANCTL, W_IN, S, W
from tests.netns import namespaces, needs_root, run_in, veth, wait_until
from tests.strongswan import Charon, charon, needs_strongswan

CONF = SWANCTL.format(
    W=W,
    S=S,
    W_IN=W_IN,
    S_IN=S_IN,
    PSK=PSK,
    ike="aes128-sha256-modp2048",
    esp="aes128gcm16",
    auth="psk",
    s_id=S,
    w_id=W,
    w_cert="",
    start="none",
)


def ping(ns: str, count: int = 3) -> subprocess.CompletedProcess[str]:
    return run_in(ns, ["ping", "-c", str(count), "-i", "0.2", "-W", "2", "-I", S_IN, W_IN], check=False)


def children(d: SecpathDaemon) -> list[dict[str, object]]:
    hosts = d.status()["hosts"]
    return [c for h in hosts for c in h["child_sas"]]


def ike_sas(d: SecpathDaemon) -> list[dict[str, object]]:
    return [s for h in d.status()["hosts"] for s in h["ike_sas"]]


@needs_root
@needs_strongswan
def test_rekeys_deletes_and_restart(tmp_path: Path) -> None:
    psk = tmp_path / "psk"
    psk.write_text(PSK)
    psk.chmod(0o600)
    policy = write_policy(
        tmp_path / "sp.toml", me=S, peer=W, local_ts=S_IN, remote_ts=W_IN, tunnel=True, psk_file=psk
    )
    with namespaces("sp", "ss") as ns:
        veth(ns["sp"], f"{S}/24", ns["ss"], f"{W}/24")
        run_in(ns["sp"], ["ip", "addr", "add", f"{S_IN}/32", "dev", "lo"])
        run_in(ns["ss"], ["ip", "addr", "add", f"{W_IN}/32", "dev", "lo"])
        with (
            charon(ns["ss"], tmp_path / "charon") as c,
            secpath_daemon(
                ns["sp"],
                policy,
                tmp_path / "d",
                "--dpd",
                "1",
                "--retransmit-timeout",
                "0.5",
                "--retransmit-tries",
                "3",
            ) as d,
        ):
            c.load(CONF)
            assert ping(ns["sp"]).returncode == 0, d.log.read_text()

            # rekeys from both sides under a steady ping: nothing lost
            flow = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns["sp"],
                    "ping",
                    "-c",
                    "100",
                    "-i",
                    "0.05",
                    "-W",
                    "2",
                    "-I",
                    S_IN,
                    W_IN,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)
            spis_before = {c["spi_in"] for c in children(d)}
            c.swanctl("--rekey", "--child", "net")
            time.sleep(0.8)
            d.cli("rekey", "path")
            time.sleep(0.8)
            ike_before = {s["ike_sa"] for s in ike_sas(d)}
            c.swanctl("--rekey", "--ike", "sp")
            time.sleep(0.8)
            d.cli("rekey", "path", "--ike")
            out, _ = flow.communicate(timeout=60)
            received = int(re.search(r"(\d+) received", out).group(1))  # type: ignore[union-attr]
            assert received == 100, out + d.log.read_text()[-3000:]
            assert wait_until(
                lambda: len(children(d)) == 1 and {c["spi_in"] for c in children(d)}.isdisjoint(spis_before)
            )
            assert wait_until(
                lambda: len(ike_sas(d)) == 1 and {s["ike_sa"] for s in ike_sas(d)}.isdisjoint(ike_before)
            )
            stats = d.cli("stats", "--json")
            assert re.search(r'"rekeys": [2-9]', stats), stats

            # delete from strongSwan: secpath follows; traffic negotiates again
            c.swanctl("--terminate", "--ike", "sp")
            assert wait_until(lambda: not children(d) and not ike_sas(d))
            assert ping(ns["sp"]).returncode == 0
            assert len(children(d)) == 1

            # delete from secpath: strongSwan follows
            d.cli("terminate", "path")
            assert wait_until(lambda: "ESTABLISHED" not in c.swanctl("--list-sas"))
            assert ping(ns["sp"]).returncode == 0

            # strongSwan restarted: DPD notices, the old SAs go, traffic re-establishes
            c.stop()
            restarted = Charon(ns["ss"], tmp_path / "charon2")
            restarted.start()
            try:
                restarted.load(CONF)
                assert wait_until(lambda: not ike_sas(d), timeout=20), d.status()
                assert any(e["kind"] == "ike-down" for e in d.status()["events"])
                assert ping(ns["sp"], 5).returncode == 0, d.log.read_text()[-2000:]
                assert "ESTABLISHED" in restarted.swanctl("--list-sas")
            finally:
                restarted.stop()
