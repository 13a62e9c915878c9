"""secpath.esp.wireshark: esp_sa rows (tshark itself reads them in
tests/interop/test_esp_tshark.py)."""

from __future__ import annotations

import pytest

from secpath.errors import LocalError
from secpath.esp import esp_sa_row, key_lengths
from secpath.secret import Secret


def test_row_format() -> None:
    row = esp_sa_row("192.0.2.1", "192.0.2.2", 0x1000, "aes128-sha256",
                     Secret(bytes(16)), Secret(b"\x01" * 32))
    assert row == ('"IPv4","192.0.2.1","192.0.2.2","0x00001000","AES-CBC [RFC3602]",'
                   f'"0x{"00" * 16}","HMAC-SHA-256-128 [RFC4868]","0x{"01" * 32}"')
    gcm = esp_sa_row("2001:db8::1", "2001:db8::2", 0xABCDEF01, "aes256gcm16",
                     Secret(bytes(36)), None)
    assert gcm.startswith('"IPv6","2001:db8::1","2001:db8::2","0xabcdef01",'
                          '"AES-GCM with 16 octet ICV [RFC4106]"')
    assert gcm.endswith('"NULL",""')


def test_chacha_is_refused() -> None:
    with pytest.raises(LocalError, match="Wireshark cannot decrypt"):
        esp_sa_row("192.0.2.1", "192.0.2.2", 0x1000, "chacha20poly1305", Secret(bytes(36)),
                   None)


@pytest.mark.parametrize(("name", "lengths"), [
    ("aes128gcm16", (20, 0)), ("aes256gcm16", (36, 0)), ("chacha20poly1305", (36, 0)),
    ("3des-sha1", (24, 20)), ("aes256-sha512", (32, 64)), ("null-sha256", (0, 32)),
])
def test_keymat_lengths(name: str, lengths: tuple[int, int]) -> None:
    # RFC 4106 §8.1 / RFC 7634 §2: AEAD keys carry a 4-octet salt
    assert key_lengths(name) == lengths
