"""secpath.esp.udp: RFC 3948 demultiplexing on port 4500."""

from __future__ import annotations

import pytest

from secpath.esp import NAT_KEEPALIVE, EspParseError, UdpPayload, classify_udp_payload


def test_keepalive_ike_and_esp() -> None:
    assert classify_udp_payload(NAT_KEEPALIVE) is UdpPayload.NAT_KEEPALIVE  # RFC 3948 §2.3
    assert classify_udp_payload(bytes(4) + b"ike header....") is UdpPayload.IKE  # §2.2
    assert classify_udp_payload(b"\x00\x00\x10\x00\x00\x00\x00\x01") is UdpPayload.ESP


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xfe", b"\x00\x00\x10\x00\x00\x00\x00"])
def test_short_payloads_refused(data: bytes) -> None:
    with pytest.raises(EspParseError):
        classify_udp_payload(data)
