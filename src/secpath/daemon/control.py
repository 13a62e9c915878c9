"""The daemon's control socket: newline-delimited JSON over a Unix socket.

A request is ``{"command": NAME, "args": {...}}``; the answer is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": TEXT}``.  The
socket is created mode 0600 in a 0700 directory: whoever can talk to it can
ask for keys (``secpath keys``), so it is root's (or the user's) alone.

A live socket is never taken over; a stale one (no listener) is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from secpath.errors import LocalError

__all__ = [
    "DEFAULT_CONTROL_PATH",
    "ControlError",
    "ControlServer",
    "Handler",
    "request",
]

DEFAULT_CONTROL_PATH = Path("/run/secpath/control.sock")
MAX_LINE = 1 << 20  # a request larger than 1 MiB is refused

Handler = Callable[[Mapping[str, Any]], Awaitable[Any]]


class ControlError(LocalError):
    """The control socket could not be used, or the daemon refused the request."""


def _is_live(path: Path) -> bool:
    """True when something accepts connections on ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError as exc:
            raise ControlError(f"{path}: cannot probe the control socket: {exc.strerror}") from None
        return True


class ControlServer:
    """Serves ``handlers`` on ``path`` until :meth:`close`."""

    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self.handlers = dict(handlers)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            mode = self.path.lstat().st_mode
            if not stat.S_ISSOCK(mode):
                raise ControlError(f"{self.path} exists and is not a socket: refusing to replace it")
            if _is_live(self.path):
                raise ControlError(
                    f"a daemon is already running on {self.path} (stop it with `secpath down`)"
                )
            self.path.unlink()  # stale: its daemon died without cleaning up
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._send(writer, {"ok": False, "error": f"request larger than {MAX_LINE} bytes"})
                    return
                if not line:
                    return
                await self._send(writer, await self._dispatch(line))
        except ConnectionError:
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            message = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return {"ok": False, "error": f"not JSON: {exc}"}
        if not isinstance(message, dict) or not isinstance(message.get("command"), str):
            return {"ok": False, "error": 'expected {"command": NAME, "args": {...}}'}
        command = message["command"]
        args = message.get("args", {})
        if not isinstance(args, dict):
            return {"ok": False, "error": "args must be an object"}
        handler = self.handlers.get(command)
        if handler is None:
            return {
                "ok": False,
                "error": f"unknown command {command!r}; known: {', '.join(sorted(self.handlers))}",
            }
        try:
            return {"ok": True, "result": await handler(args)}
        except LocalError as exc:  # a refused request (bad rule name, invalid policy ...)
            return {"ok": False, "error": str(exc)}

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, answer: Mapping[str, Any]) -> None:
        writer.write(json.dumps(answer, default=str).encode() + b"\n")
        await writer.drain()


def request(path: Path, command: str, args: Mapping[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
    """Send one request and return its result (blocking; for the CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except FileNotFoundError:
            raise ControlError(f"no daemon at {path}: start one with `secpath up POLICY.toml`") from None
        except ConnectionRefusedError:
            raise ControlError(
                f"no daemon listens on {path} (a stale socket): run `secpath up` again"
            ) from None
        except PermissionError:
            raise ControlError(
                f"{path}: permission denied (the control socket is its owner's only)"
            ) from None
        s.sendall(json.dumps({"command": command, "args": dict(args or {})}).encode() + b"\n")
        buf = bytearray()
        while not buf.endswith(b"\n"):
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                raise ControlError(f"{path}: no answer to {command!r} within {timeout:g} s") from None
            if not chunk:
                raise ControlError(f"{path}: the daemon closed the connection during {command!r}")
            buf += chunk
    answer = json.loads(buf)
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "request failed")))
    return answer.get("result")
