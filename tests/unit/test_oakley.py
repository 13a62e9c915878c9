"""The negotiation log: records at or below the level, rotation, reading back
(following across a rotation), and the human line."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

from secpath.monitor.oakley import LogRecord, NegotiationLog, format_record, read_records


def record(i: int, level: int = 1) -> LogRecord:
    return LogRecord(
        1_800_000_000.0 + i,
        level,
        "child-up",
        f"event {i}",
        "rtr-a--lgr-a",
        "10.0.0.2",
        "00112233aabbccdd",
        "IKE_AUTH",
        1,
        "out",
    )


def test_levels_and_reading_back(tmp_path: Path) -> None:
    log = NegotiationLog(tmp_path / "n.log", level=1)
    log.write(record(1))
    log.write(record(2, level=2))  # above the level: not written
    log.close()
    records = list(read_records(tmp_path / "n.log"))
    assert [r["detail"] for r in records] == ["event 1"]
    assert stat.S_IMODE((tmp_path / "n.log").stat().st_mode) == 0o600
    line = format_record(records[0])
    assert "rule rtr-a--lgr-a" in line and "IKE_AUTH #1 out" in line and line.endswith("event 1")


def test_rotation_keeps_backups(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    log = NegotiationLog(path, level=3, max_bytes=600, backups=2)
    for i in range(40):
        log.write(record(i))
    log.close()
    assert path.with_name("n.log.1").exists() and path.with_name("n.log.2").exists()
    assert not path.with_name("n.log.3").exists()
    assert path.stat().st_size <= 600
    last = list(read_records(path))[-1]
    assert last["detail"] == "event 39"


def test_follow_sees_new_records_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    log = NegotiationLog(path, level=1, max_bytes=500, backups=1)
    seen: list[str] = []

    def reader() -> None:
        for r in read_records(path, follow=True, poll=0.02):
            seen.append(str(r["detail"]))
            if len(seen) >= 12:
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    for i in range(12):
        log.write(record(i))
        time.sleep(0.03)
    t.join(timeout=10)
    log.close()
    assert seen[0] == "event 0" and seen[-1] == "event 11"
