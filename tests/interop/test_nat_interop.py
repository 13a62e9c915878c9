"""Through a real NAT: a middle namespace with nftables masquerade that also
rewrites UDP ports.  secpath behind the NAT initiates to strongSwan; NAT is
detected on secpath's side, keepalives are sent, traffic flows both ways."""

from __future__ import annotations

import time
from pathlib import Path

from tests.daemon import secpath_daemon, write_policy
from tests.interop.test_strongswan_interop import PSK, S_IN, SWANCTL, W_IN
from tests.netns import namespaces, nat_router, needs_root, run_in
from tests.strongswan import charon, needs_strongswan

INSIDE, ROUTER_IN, ROUTER_OUT, OUTSIDE = "10.99.0.66", "10.99.0.65", "10.99.0.1", "10.99.0.2"


@needs_root
@needs_strongswan
def test_secpath_behind_nat_to_strongswan(tmp_path: Path) -> None:
    psk = tmp_path / "psk"
    psk.write_text(PSK)
    psk.chmod(0o600)
    policy = write_policy(
        tmp_path / "sp.toml",
        me=INSIDE,
        peer=OUTSIDE,
        local_ts=S_IN,
        remote_ts=W_IN,
        tunnel=True,
        psk_file=psk,
    )
    with namespaces("sp", "nat", "ss") as ns:
        nat_router(
            ns["sp"],
            f"{INSIDE}/26",
            ns["nat"],
            f"{ROUTER_IN}/26",
            f"{ROUTER_OUT}/26",
            ns["ss"],
            f"{OUTSIDE}/26",
        )
        run_in(ns["sp"], ["ip", "addr", "add", f"{S_IN}/32", "dev", "lo"])
        run_in(ns["ss"], ["ip", "addr", "add", f"{W_IN}/32", "dev", "lo"])
        run_in(ns["ss"], ["ip", "route", "add", f"{S_IN}/32", "via", ROUTER_OUT])
        conf = SWANCTL.format(
            W=OUTSIDE,
            S="%any",
            W_IN=W_IN,
            S_IN=S_IN,
            PSK=PSK,
            ike="aes128-sha256-modp2048",
            esp="aes128gcm16",
            auth="psk",
            s_id=INSIDE,
            w_id=OUTSIDE,
            w_cert="",
            start="none",
        )
        with (
            charon(ns["ss"], tmp_path / "charon") as c,
            secpath_daemon(ns["sp"], policy, tmp_path / "d", "--nat-keepalive", "1") as d,
        ):
            c.load(conf)
            ping = run_in(
                ns["sp"], ["ping", "-c", "3", "-i", "0.3", "-W", "3", "-I", S_IN, W_IN], check=False
            )
            assert ping.returncode == 0, ping.stdout + d.log.read_text() + c.log.read_text()[-3000:]
            # and from the outside in, over the SA secpath made
            back = run_in(
                ns["ss"], ["ping", "-c", "3", "-i", "0.3", "-W", "3", "-I", W_IN, S_IN], check=False
            )
            assert back.returncode == 0, back.stdout
            sas = c.swanctl("--list-sas")
            # strongSwan sees secpath at the NAT's address and a rewritten port
            assert f"{ROUTER_OUT}[4" in sas and "TUNNEL-in-UDP" in sas, sas
            time.sleep(2.5)
            status = d.status()
            host = status["hosts"][0]
            (ike,) = host["ike_sas"]
            assert ike["nat_local"] is True  # secpath knows it is behind the NAT
            assert host["nat_keepalives_sent"] >= 1
            (child,) = host["child_sas"]
            assert child["encapsulation"].startswith("UDP 4500")
