"""A TUN device (Linux ``/dev/net/tun``): whole IP packets in and out, the
way strongSwan's ``kernel-libipsec`` carries traffic to userspace ESP."""

from __future__ import annotations

import fcntl
import os
import struct
from typing import Final

from secpath.errors import LocalError

__all__ = ["TunDevice"]

_TUNSETIFF: Final = 0x400454CA
_IFF_TUN: Final = 0x0001
_IFF_NO_PI: Final = 0x1000
_IFNAMSIZ: Final = 16


class TunDevice:
    """An open TUN interface; non-blocking, no packet-information header."""

    def __init__(self, name: str) -> None:
        if not name or len(name.encode()) >= _IFNAMSIZ or "/" in name or " " in name:
            raise LocalError(f"bad interface name {name!r}: 1-15 characters, no '/' or space")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise LocalError(
                f"cannot open /dev/net/tun: {exc.strerror} (root or CAP_NET_ADMIN needed)"
            ) from None
        try:
            answer = fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
        except OSError as exc:
            os.close(fd)
            raise LocalError(f"cannot create TUN device {name!r}: {exc.strerror}") from None
        self.fd: int = fd
        self.name: str = answer[:_IFNAMSIZ].rstrip(b"\0").decode()

    def read(self, size: int = 65535) -> bytes | None:
        """One packet, or ``None`` when none is waiting."""
        try:
            return os.read(self.fd, size)
        except BlockingIOError:
            return None

    def write(self, packet: bytes) -> None:
        os.write(self.fd, packet)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
