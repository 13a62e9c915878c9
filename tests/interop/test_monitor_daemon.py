"""What the monitor shows, driven by real failures between two daemons:
the matching counters move, the path shows down with the reason, the
negotiation log explains it, /metrics agrees with `secpath stats --json`,
and `secpath monitor` draws it all."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.daemon import SecpathDaemon, psk_file, secpath_daemon, write_policy
from tests.netns import namespaces, needs_root, run_in, veth, wait_until

A, B = "10.77.0.1", "10.77.0.2"
PSK = "monitor-test-psk-not-secret"
SCRAPE = "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
SEND = (
    "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "s.sendto(bytes.fromhex(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))"
)


def with_monitor(policy: Path, log: Path, port: int) -> Path:
    policy.write_text(
        policy.read_text()
        + f'\n[monitor]\nprometheus = "127.0.0.1:{port}"\nlog_file = "{log}"\nlog_level = 2\n'
    )
    return policy


def metrics(ns: str, port: int) -> dict[str, float]:
    text = run_in(ns, [sys.executable, "-c", SCRAPE, f"http://127.0.0.1:{port}/metrics"]).stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def log_records(d: SecpathDaemon) -> list[dict[str, Any]]:
    return [json.loads(x) for x in d.cli("log", "show", "--json").splitlines() if x.strip()]


@needs_root
def test_counters_log_metrics_and_view(tmp_path: Path) -> None:
    key = psk_file(tmp_path / "a.psk", PSK)
    port = 9505
    with namespaces("ma", "mb") as ns:
        veth(ns["ma"], f"{A}/24", ns["mb"], f"{B}/24")
        pa = with_monitor(
            write_policy(tmp_path / "a.toml", me=A, peer=B, psk_file=key), tmp_path / "a.log", port
        )
        pb = write_policy(tmp_path / "b.toml", me=B, peer=A, psk_file=key)
        with (
            secpath_daemon(ns["ma"], pa, tmp_path / "da") as da,
            secpath_daemon(ns["mb"], pb, tmp_path / "db") as db,
        ):
            assert (
                run_in(ns["ma"], ["ping", "-c", "3", "-i", "0.2", "-W", "3", B], check=False).returncode == 0
            )
            # garbage and an unknown SPI on port 4500, from the peer's address
            run_in(ns["mb"], [sys.executable, "-c", SEND, A, "4500", "deadbeef" * 6])
            run_in(ns["mb"], [sys.executable, "-c", SEND, A, "4500", "00000001"])
            stats: dict[str, Any] = {}

            def settled() -> bool:
                nonlocal stats
                stats = json.loads(da.cli("stats", "--json"))
                return bool(
                    stats["quick_mode"]["bad_spi_packets"] and stats["quick_mode"]["packets_not_decrypted"]
                )

            assert wait_until(settled), stats
            assert stats["main_mode"]["main_mode_sas"] == 1 and stats["main_mode"]["quick_mode_sas"] == 1
            assert stats["quick_mode"]["confidential_bytes_sent"] > 0
            assert stats["rules"]["path"]["state"] == "up"
            time.sleep(1.0)  # the metrics snapshot is refreshed twice a second
            stats = json.loads(da.cli("stats", "--json"))
            m = metrics(ns["ma"], port)
            for key_name, value in stats["quick_mode"].items():
                suffix = (
                    "_total"
                    if key_name
                    not in (
                        "active_security_associations",
                        "offloaded_security_associations",
                        "pending_key_operations",
                        "active_tunnels",
                    )
                    else ""
                )
                assert m[f"secpath_quick_mode_{key_name}{suffix}"] == value, key_name
            assert m["secpath_main_mode_main_mode_sas"] == 1
            assert m['secpath_rule_state{rule="path",state="up"}'] == 1
            assert "process_cpu_seconds_total" in m
            records = log_records(da)
            kinds = [r["kind"] for r in records]
            assert "ike-out" in kinds and "child-up" in kinds
            assert any(r.get("exchange") == "IKE_SA_INIT" and r.get("direction") == "out" for r in records)
            # switched at run time, no restart
            da.cli("log", "disable")
            n = len(log_records(da))
            da.cli("terminate", "path")
            time.sleep(0.5)
            assert len(log_records(da)) == n
            da.cli("log", "enable", "--level", "1")
            # --reset zeroes the counters (gauges describe the present and stay)
            before = json.loads(da.cli("stats", "--json", "--reset"))
            after = json.loads(da.cli("stats", "--json"))
            assert before["quick_mode"]["bad_spi_packets"] >= 1
            assert after["quick_mode"]["bad_spi_packets"] == 0
            assert after["quick_mode"]["key_deletions"] == 0
            view = da.cli("monitor", "--once")
            for text in (
                "IP Security Monitor",
                "Main Mode statistics",
                "Quick Mode statistics",
                "Bad SPI Packets",
                "Packets Not Decrypted",
                "path",
            ):
                assert text in view, text
            whole_log = (tmp_path / "a.log").read_text() + da.log.read_text() + db.log.read_text()
            assert PSK not in whole_log


@needs_root
def test_wrong_psk_and_no_common_proposal_are_explained(tmp_path: Path) -> None:
    with namespaces("fa", "fb") as ns:
        veth(ns["fa"], f"{A}/24", ns["fb"], f"{B}/24")
        pa = with_monitor(
            write_policy(tmp_path / "a.toml", me=A, peer=B, psk_file=psk_file(tmp_path / "a", PSK)),
            tmp_path / "a.log",
            9506,
        )
        pb = write_policy(
            tmp_path / "b.toml", me=B, peer=A, psk_file=psk_file(tmp_path / "b", "another secret")
        )
        with (
            secpath_daemon(ns["fa"], pa, tmp_path / "da", "--retransmit-timeout", "0.5") as da,
            secpath_daemon(ns["fb"], pb, tmp_path / "db") as db,
        ):
            run_in(ns["fa"], ["ping", "-c", "2", "-W", "1", B], check=False)
            assert wait_until(
                lambda: "AUTHENTICATION_FAILED" in da.status()["hosts"][0]["rules"][0]["last_failure"]
            )
            stats = json.loads(da.cli("stats", "--json"))
            assert stats["main_mode"]["authentication_failures"] >= 1
            assert stats["rules"]["path"]["state"] == "down"
            assert any("AUTHENTICATION_FAILED" in r["detail"] for r in log_records(da))
            db.stop()
        pc = write_policy(
            tmp_path / "c.toml",
            me=B,
            peer=A,
            psk_file=psk_file(tmp_path / "c", PSK),
            ike=("sha512", "aes256", 16),
        )
        with (
            secpath_daemon(ns["fa"], pa, tmp_path / "da2", "--retransmit-timeout", "0.5") as da,
            secpath_daemon(ns["fb"], pc, tmp_path / "dc"),
        ):
            run_in(ns["fa"], ["ping", "-c", "2", "-W", "1", B], check=False)
            assert wait_until(
                lambda: "NO_PROPOSAL_CHOSEN" in da.status()["hosts"][0]["rules"][0]["last_failure"]
            )
            failure = da.status()["hosts"][0]["rules"][0]["last_failure"]
            assert "we offered aes128-sha256-modp2048" in failure
            assert json.loads(da.cli("stats", "--json"))["main_mode"]["negotiation_failures"] >= 1
