"""AES-XCBC in policies, proposals and key exports: the strongSwan names, IKE only."""

from __future__ import annotations

from typing import Any

import pytest

from secpath.errors import LocalError, SecpathError
from secpath.ike.constants import TransformType
from secpath.ike.engine import IkeKeyMaterial
from secpath.ike.proposal import describe, ike_proposals, ike_suites, parse_ike, select_ike
from secpath.monitor.wireshark import ike_table_row
from secpath.policy.loader import parse_policy
from secpath.policy.model import KeyExchange, KeyExchangeMethod, SecurityMethod
from secpath.secret import Secret


def _data(ike: dict[str, Any], esp: dict[str, Any]) -> dict[str, Any]:
    return {
        "policy": {"name": "p"},
        "local": {"addresses": ["10.0.0.1"]},
        "key_exchange": {"method": [ike]},
        "filter_list": [{"name": "f", "filter": [{"source": "me", "destination": "10.0.0.2"}]}],
        "filter_action": [{"name": "a", "behavior": "negotiate", "security_method": [esp]}],
        "rule": [{"name": "r", "filter_list": "f", "filter_action": "a", "tunnel_endpoint": "none",
                  "authentication": [{"method": "psk", "secret_file": "/nonexistent/psk"}]}],
    }


def test_policy_names_are_strongswans() -> None:
    p = parse_policy(_data({"integrity": "aesxcbc", "encryption": "aes128", "dh_group": 14},
                           {"encryption": "aes128", "integrity": "sha256"}))
    assert p.key_exchange.methods[0].proposal == "aes128-aesxcbc-modp2048"
    # with an AEAD cipher "aesxcbc" names only the PRF
    assert KeyExchangeMethod("aesxcbc", "aes128gcm", 19).proposal == "aes128gcm16-prfaesxcbc-ecp256"


def test_esp_has_no_xcbc() -> None:
    with pytest.raises(SecpathError):
        SecurityMethod("aes128", "aesxcbc")


def test_offered_selected_and_described() -> None:
    suites = ike_suites(KeyExchange((KeyExchangeMethod("sha256", "aes128", 14),
                                     KeyExchangeMethod("aesxcbc", "aes128", 14))))
    (offer,) = ike_proposals(suites[1:])
    # RFC 7296 §3.3.2: PRF_AES128_XCBC is PRF ID 4, AUTH_AES_XCBC_96 INTEG ID 5
    ids = {t.type: t.id for t in offer.transforms}
    assert ids[TransformType.PRF] == 4 and ids[TransformType.INTEG] == 5
    picked = select_ike([offer], suites)
    assert picked is not None and picked[1] == suites[1]
    assert parse_ike(picked[0]) == suites[1]
    assert describe([offer]) == ("aes128-aesxcbc-modp2048",)


def test_wireshark_table_has_no_xcbc() -> None:
    """Wireshark's ikev2_decryption_table lists no AES-XCBC integrity: refused by name."""
    key = Secret(bytes(16))
    km = IkeKeyMaterial(b"i" * 8, b"r" * 8, "aes128", "aesxcbc", key, key, key, key)
    with pytest.raises(LocalError, match="aesxcbc"):
        ike_table_row(km)
    assert '"HMAC_SHA2_256_128 [RFC4868]"' in ike_table_row(
        IkeKeyMaterial(b"i" * 8, b"r" * 8, "aes128", "sha256", key, key, key, key))
