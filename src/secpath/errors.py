"""The one exception tree of secpath (STYLE.md habit 4).

``LocalError`` is API misuse or bad local configuration; ``RemoteError`` is
peer misbehaviour and carries the IKE notify type that answers it, when there
is one.  Decoders raise only :class:`ParseError`.
"""

from __future__ import annotations


class SecpathError(Exception):
    """Root of every exception secpath raises on purpose."""


class LocalError(SecpathError):
    """The caller misused an API or gave a bad local setting."""


class RemoteError(SecpathError):
    """The peer (or the bytes it sent) misbehaved.

    ``notify`` is the IKEv2 Notify Message Type (RFC 7296 §3.10.1) that
    answers the error, or ``None`` when the right answer is a silent drop.
    """

    notify: int | None = None

    def __init__(self, message: str, *, notify: int | None = None) -> None:
        super().__init__(message)
        if notify is not None:
            self.notify = notify


class ParseError(RemoteError):
    """Malformed bytes: the only exception a decoder may raise."""

    notify = 7  # INVALID_SYNTAX, RFC 7296 §3.10.1
