"""The control socket: requests, errors, permissions, live and stale sockets."""

from __future__ import annotations

import asyncio
import socket
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from secpath.daemon.control import ControlError, ControlServer, request
from secpath.errors import LocalError


async def _status(args: Mapping[str, Any]) -> Any:
    return {"rules": 2, "echo": args.get("x")}


async def _refuse(args: Mapping[str, Any]) -> Any:
    raise LocalError(f"no rule named {args.get('rule')!r}")


def _run_with_server(path: Path, check: Any) -> None:
    async def main() -> None:
        server = ControlServer(path, {"status": _status, "initiate": _refuse})
        await server.start()
        try:
            await asyncio.to_thread(check)
        finally:
            await server.close()
        assert not path.exists()

    asyncio.run(main())


def test_request_and_answers(tmp_path: Path) -> None:
    path = tmp_path / "run" / "control.sock"

    def check() -> None:
        assert request(path, "status", {"x": 5}) == {"rules": 2, "echo": 5}
        with pytest.raises(ControlError, match="no rule named 'r9'"):
            request(path, "initiate", {"rule": "r9"})
        with pytest.raises(ControlError, match="unknown command 'frobnicate'; known: initiate, status"):
            request(path, "frobnicate")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    _run_with_server(path, check)


def test_malformed_requests_are_answered(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"

    def check() -> None:
        for raw, error in (
            (b"nope\n", "not JSON"),
            (b"[1]\n", "expected"),
            (b'{"command":"status","args":3}\n', "args"),
        ):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                s.sendall(raw)
                answer = s.makefile("rb").readline()
            assert b'"ok": false' in answer and error.encode() in answer

    _run_with_server(path, check)


def test_no_daemon_and_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    with pytest.raises(ControlError, match="no daemon at"):
        request(path, "status")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with pytest.raises(ControlError, match="stale"):
        request(path, "status")
    _run_with_server(path, lambda: request(path, "status"))  # the stale socket is replaced


def test_live_socket_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"

    async def main() -> None:
        first = ControlServer(path, {"status": _status})
        await first.start()
        try:
            with pytest.raises(ControlError, match="already running"):
                await ControlServer(path, {}).start()
        finally:
            await first.close()

    asyncio.run(main())


def test_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    path.write_text("important")

    async def main() -> None:
        with pytest.raises(ControlError, match="not a socket"):
            await ControlServer(path, {}).start()

    asyncio.run(main())
    assert path.read_text() == "important"
