"""The negotiation log — the guide's "Oakley log", made readable.

One JSON object per line: time, level, what happened (``kind``), the rule,
the peer, the IKE SA, the exchange, message ID and direction where there is
one, and a sentence that explains it.  Switched on and off at run time
(``secpath log enable|disable``), rotated by size.  Key material never gets
here: the events it is made from carry none (keys stay in ``Secret``s).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LogRecord", "NegotiationLog", "format_record", "read_records"]

LEVEL_NAMES = {1: "events", 2: "messages", 3: "payloads"}


@dataclass(frozen=True, slots=True)
class LogRecord:
    time: float
    level: int
    kind: str
    detail: str
    rule: str | None = None
    peer: str | None = None
    ike_sa: str | None = None
    exchange: str | None = None
    message_id: int | None = None
    direction: str | None = None  # "in" | "out"

    def as_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("time", self.time),
                ("level", self.level),
                ("kind", self.kind),
                ("rule", self.rule),
                ("peer", self.peer),
                ("ike_sa", self.ike_sa),
                ("exchange", self.exchange),
                ("message_id", self.message_id),
                ("direction", self.direction),
                ("detail", self.detail),
            )
            if v is not None
        }


class NegotiationLog:
    """Appends records at or below ``level`` to ``path``; rotates past
    ``max_bytes`` keeping ``backups`` files (``path.1`` is the newest)."""

    def __init__(self, path: Path, level: int = 1, *, max_bytes: int = 10 << 20, backups: int = 3) -> None:
        self.path = path
        self.level = level
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._open()

    def _open(self) -> Any:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def write(self, record: LogRecord) -> None:
        if record.level > self.level:
            return
        line = json.dumps(record.as_dict(), separators=(",", ":")) + "\n"
        if self._file.tell() + len(line) > self.max_bytes:
            self._rotate()
        self._file.write(line)

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = self._open()

    def close(self) -> None:
        self._file.close()


def format_record(data: dict[str, Any]) -> str:
    """One human line: ``03:52:04.120  rtr-a--lgr-a  10.0.0.2  IKE_AUTH #1 out  child-up  …``."""
    t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data.get("time", 0.0)))
    ms = int((data.get("time", 0.0) % 1) * 1000)
    parts = [f"{t}.{ms:03d}", f"{data.get('kind', '?'):<13}"]
    if data.get("rule"):
        parts.append(f"rule {data['rule']}")
    if data.get("peer"):
        parts.append(f"peer {data['peer']}")
    if data.get("ike_sa"):
        parts.append(f"SA {data['ike_sa']}")
    if data.get("exchange"):
        parts.append(
            f"{data['exchange']} #{data.get('message_id', '?')} {data.get('direction', '')}".rstrip()
        )
    parts.append(str(data.get("detail", "")))
    return "  ".join(parts)


def _lines(handle: Any) -> Iterator[dict[str, Any]]:
    """The whole lines now in ``handle`` (binary), as records; a partial last
    line is left for the next read."""
    while True:
        start = handle.tell()
        line = handle.readline()
        if not line.endswith(b"\n"):
            handle.seek(start)
            return
        try:
            data = json.loads(line.decode("utf-8", "replace"))
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            yield data


def read_records(path: Path, *, follow: bool = False, poll: float = 0.2) -> Iterator[dict[str, Any]]:
    """The records of ``path`` (then new ones as they come, with ``follow``).

    Following keeps the file open: after a rotation it finishes the rotated
    file through its open handle, then continues with the new one, so no
    record is lost or read twice."""
    handle: Any = None
    try:
        while True:
            if handle is None:
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    if not follow:
                        return
                    time.sleep(poll)
                    continue
            yield from _lines(handle)
            if not follow:
                return
            try:
                rotated = os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                rotated = True
            if rotated:
                yield from _lines(handle)  # what was written just before the rotation
                handle.close()
                handle = None
                continue
            time.sleep(poll)
    finally:
        if handle is not None:
            handle.close()
