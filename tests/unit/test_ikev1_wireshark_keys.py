"""The ``ikev1_decryption_table`` row: Wireshark's UAT of packet-isakmp.c,
the initiator's cookie and the ISAKMP SA's encryption key in hex; the key
never shows in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from secpath.errors import LocalError
from secpath.ike.v1.keys import IkeV1KeyMaterial
from secpath.monitor.wireshark import ikev1_table_row, write_key_files
from secpath.secret import Secret


def test_row_is_cookie_and_key_in_hex() -> None:
    km = IkeV1KeyMaterial(bytes.fromhex("0102030405060708"), "aes128", Secret(bytes(range(16))))
    assert ikev1_table_row(km) == "0102030405060708,000102030405060708090a0b0c0d0e0f"
    assert "0a0b0c0d" not in repr(km) and "secret" in repr(km)


def test_a_cipher_wireshark_cannot_use_is_refused() -> None:
    km = IkeV1KeyMaterial(bytes(8), "aes128gcm", Secret(bytes(20)))
    with pytest.raises(LocalError, match="aes128gcm"):
        ikev1_table_row(km)


def test_the_table_file_is_private(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    written = write_key_files(directory, [], [], ["0102030405060708,00ff"])
    table = directory / "ikev1_decryption_table"
    assert table in written and table.read_text() == "0102030405060708,00ff\n"
    assert table.stat().st_mode & 0o777 == 0o600
