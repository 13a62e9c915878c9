"""TCP throughput through the tunnel between two network namespaces (root):
secpath <-> secpath, strongSwan <-> strongSwan (kernel-libipsec), and clear
text, aes128gcm16, measured in the same run with iperf3.  Prints Mbit/s and
the ratio of secpath to strongSwan, and the CPU time the two secpath daemons
spent per GB received (a figure that depends less on what else the machine
runs than the throughput does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.daemon import secpath_daemon, write_policy
from tests.netns import namespaces, run_in, veth
from tests.strongswan import charon_pair

A, B = "10.77.0.1", "10.77.0.2"
A_IN, B_IN = "10.77.1.1", "10.77.2.1"
SECONDS = 5


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (proc(5): fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def iperf(ns_client: str, ns_server: str, server: str, source: str) -> tuple[float, int]:
    """Mbit/s and bytes received."""
    srv = subprocess.Popen(
        ["ip", "netns", "exec", ns_server, "iperf3", "-s", "-1", "-B", server],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        # warm up: the first packets negotiate the SAs
        run_in(ns_client, ["ping", "-c", "2", "-W", "3", "-I", source, server], check=False)
        out = run_in(
            ns_client, ["iperf3", "-c", server, "-B", source, "-t", str(SECONDS), "-J"], timeout=60
        ).stdout
    finally:
        srv.wait(timeout=30)
    received = json.loads(out)["end"]["sum_received"]
    return float(received["bits_per_second"]) / 1e6, int(received["bytes"])


def topology(ns: dict[str, str]) -> None:
    veth(ns["a"], f"{A}/24", ns["b"], f"{B}/24")
    run_in(ns["a"], ["ip", "addr", "add", f"{A_IN}/32", "dev", "lo"])
    run_in(ns["b"], ["ip", "addr", "add", f"{B_IN}/32", "dev", "lo"])


def clear() -> float:
    with namespaces("a", "b") as ns:
        topology(ns)
        run_in(ns["a"], ["ip", "route", "add", f"{B_IN}/32", "via", B])
        run_in(ns["b"], ["ip", "route", "add", f"{A_IN}/32", "via", A])
        return iperf(ns["a"], ns["b"], B_IN, A_IN)[0]


def secpath(tmp: Path) -> tuple[float, float]:
    """Mbit/s and the daemons' CPU seconds per GB received (the SA
    negotiation on the first packets included)."""
    tmp.mkdir(parents=True, exist_ok=True)
    psk = tmp / "psk"
    psk.write_text("bench-psk-not-secret")
    psk.chmod(0o600)
    with namespaces("a", "b") as ns:
        topology(ns)
        pa = write_policy(
            tmp / "a.toml", me=A, peer=B, local_ts=A_IN, remote_ts=B_IN, tunnel=True, psk_file=psk
        )
        pb = write_policy(
            tmp / "b.toml", me=B, peer=A, local_ts=B_IN, remote_ts=A_IN, tunnel=True, psk_file=psk
        )
        with (
            secpath_daemon(ns["a"], pa, tmp / "da", "--force-udp-encapsulation") as da,
            secpath_daemon(ns["b"], pb, tmp / "db", "--force-udp-encapsulation") as db,
        ):
            # ``ip netns exec`` execs the daemon: the process is the interpreter
            pids = [d.process.pid for d in (da, db) if d.process is not None]
            start = sum(cpu_seconds(pid) for pid in pids)
            mbps, received = iperf(ns["a"], ns["b"], B_IN, A_IN)
            used = sum(cpu_seconds(pid) for pid in pids) - start
            return mbps, used / (received / 1e9)


def strongswan(tmp: Path) -> float:
    with namespaces("a", "b") as ns, charon_pair(ns["a"], ns["b"], tmp) as (a, _):
        a.swanctl("--initiate", "--child", "net", timeout=30)
        return iperf(ns["a"], ns["b"], "10.77.2.1", "10.77.1.1")[0]


def main() -> None:
    if os.geteuid() != 0:
        print("bench_daemon needs root (network namespaces)")
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results = {
            "clear text": clear(),
            "strongSwan kernel-libipsec": strongswan(tmp / "ss"),
        }
        results["secpath"], cpu_per_gb = secpath(tmp / "sp")
    base = results["strongSwan kernel-libipsec"]
    print(f"TCP throughput, iperf3 {SECONDS} s, aes128gcm16 tunnel mode, ESP in UDP 4500, 2 namespaces")
    print(f"{'':<28}{'Mbit/s':>10}{'vs strongSwan':>16}")
    for name, mbps in results.items():
        print(f"{name:<28}{mbps:>10.1f}{mbps / base:>15.2f}x")
    print(f"secpath daemons (both): {cpu_per_gb:.1f} CPU s per GB received")


if __name__ == "__main__":
    main()
