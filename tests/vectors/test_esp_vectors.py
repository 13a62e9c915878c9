"""Known-answer tests for the ESP transforms, each beside its source.

- RFC 3602 §4, Cases #5-#8: ESP packets with AES-CBC (transport and tunnel)
- draft-mcgrew-gcm-test-01 (the GCM ESP vectors for RFC 4106), Packets 2 & 3
  and Packet 1 (extended sequence numbers, RFC 4106 §5 AAD)
- RFC 7634 Appendix A: ChaCha20-Poly1305 ESP example
- RFC 4868 §2.7.2.1-§2.7.2.3 and RFC 2202 §3 (RFC 2404): HMAC truncations

The transform is given the RFC's IV as "sequence number" where the sequence
number only chooses the IV (non-ESN AEAD: the AAD is the header bytes), so
the sealed bytes can be compared with the RFC's packet exactly.
"""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives import hashes, hmac

from secpath.esp import SecurityAssociation
from secpath.esp.ip import checksum
from secpath.esp.transforms import AeadTransform, NullHmacTransform, make_transform
from secpath.secret import Secret

h = bytes.fromhex


def ipv4(payload: bytes, proto: int, src: str = "c0a87b64", dst: str = "c0a87b03") -> bytes:
    """An IPv4 header (no options) in front of ``payload``."""
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64,
                                   proto, 0, h(src), h(dst)))
    header[10:12] = struct.pack("!H", checksum(header))
    return bytes(header) + payload


def hmac_sha1_96(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA1())
    mac.update(data)
    return mac.finalize()[:12]


# RFC 3602 §4 — Case #5: "Sending 64-byte ping request (transport mode)"
# Key 0x90d382b4 10eeba7a d938c46c ec1a82bf, SPI 4321, seq 1
RFC3602_CASE5 = dict(
    key="90d382b410eeba7ad938c46cec1a82bf", spi=0x4321, next_header=1,
    esp="0000432100000001e96e8c08ab465763fd098d45dd3ff893f663c25d325c18c6a9453e194e120849"
        "a4870b66cc6b9965330013b4898dc856a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c"
        "538ab50c551b874aa269add047ad2d5913ac19b7cfbad4a6",
    payload="08000ebda70a00008e9c083db95b070008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
            "202122232425262728292a2b2c2d2e2f3031323334353637",
)
# RFC 3602 §4 — Case #6: "Sending 20-byte ping request (transport mode)", seq 8
RFC3602_CASE6 = dict(
    key="90d382b410eeba7ad938c46cec1a82bf", spi=0x4321, next_header=1,
    esp="000043210000000869d08df7d203329db093fc4924e5bd80f51995881ec4e0c4488987ce742e8109"
        "689bb379d2d750c0d915dca346a89f75",
    payload="0800b5e8a80a0500a69c083d0b660e00777777777777777777777777",
)
# RFC 3602 §4 — Case #7: "Sending 64-byte ping request (tunnel mode)"
# Key 0x01234567 89abcdef 01234567 89abcdef, SPI 8765, seq 2
RFC3602_CASE7 = dict(
    key="0123456789abcdef0123456789abcdef", spi=0x8765, next_header=4,
    esp="0000876500000002f4e765244f6407adf13dc1380f673f37773b5241a4c449225e4f3ce5ed611b0c"
        "237ca96cf74a93013c1b0ea1a0cf70f8e4ecaec78ac53aad7a0f022b859243c647752e94a859352b"
        "8a4d4d2decd136e5c177f132ad3fbfb2201ac9904c74ee0a109e0ca1e4dfe9d5a100b842f1c22f0d",
    payload="45000054090400004001f988c0a87b03c0a87bc808009f76a90a0100b49c083d02a2040008090a0b"
            "0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30313233"
            "34353637",
)
# RFC 3602 §4 — Case #8: "Sending 20-byte ping request (tunnel mode)", seq 5
RFC3602_CASE8 = dict(
    key="0123456789abcdef0123456789abcdef", spi=0x8765, next_header=4,
    esp="000087650000000585d47224b5f3dd5d2101d4ea8dffab2215b92683819596a8047232cc00f7048f"
        "e45318e11f8a0f62ede3c3fc61203bb50f980a08c9843fd3a1b06d5c07ff9639b7eb7dfb3512e5de"
        "435e7207ed971ef3d2726d9b5ef6affc6d17a0decbb13892",
    payload="45000044090c00004001f990c0a87b03c0a87bc80800d63caa0a0200c69c083da3de0300ffffffff"
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
)


@pytest.mark.parametrize(
    "case", [RFC3602_CASE5, RFC3602_CASE6, RFC3602_CASE7, RFC3602_CASE8],
    ids=["rfc3602-case5", "rfc3602-case6", "rfc3602-case7", "rfc3602-case8"],
)
def test_rfc3602_aes_cbc_esp_packets_decapsulate(case: dict[str, object]) -> None:
    # RFC 3602 §4 gives ESP without an ICV; HMAC-SHA1-96 (RFC 2404) is
    # appended here so the packet passes secpath's integrity check first.
    integrity_key = bytes(range(20))
    esp = h(str(case["esp"]))
    esp += hmac_sha1_96(integrity_key, esp)
    tunnel = case["next_header"] == 4
    sa = SecurityAssociation(
        int(str(case["spi"])), "aes128-sha1", h(str(case["key"])), integrity_key,
        mode="tunnel" if tunnel else "transport",
        tunnel=("192.168.123.100", "192.168.123.3") if tunnel else None,
    )
    inner = sa.decapsulate(ipv4(esp, 50))
    payload = h(str(case["payload"]))
    if tunnel:
        assert inner == payload
    else:
        assert inner == ipv4(payload, int(str(case["next_header"])))
    assert sa.counters.packets_in == 1


# draft-mcgrew-gcm-test-01 (test vectors for RFC 4106), Packet 2:
# 128-bit key, SPI 0000a5f8, seq 0000000a, nonce = salt cafebabe || IV facedbaddecaf888
GCM_PACKET2 = dict(
    key="feffe9928665731c6d6a8f9467308308", salt="cafebabe", spi=0x0000A5F8, seq=0x0A,
    iv="facedbaddecaf888",
    plaintext="4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d00100"
              "00010000000000000373697009637962 65726369747902646b00000100010001",
    packet="0000a5f80000000afacedbaddecaf888deb22cd9b07c72c16e3a65beeb8df304"
           "a5a5897d33ae530f1ba76d5d114d2a5c3de81827c10e9a4f51330d0eec416642"
           "cfbb85a5b47e48a4ec3b9ba95d918bd183b70d3aa8bc6ee4c309e9d85a41ad4a",
)
# draft-mcgrew-gcm-test-01, Packet 3: 256-bit key, SPI 4a2cbfe3, seq 2
GCM_PACKET3 = dict(
    key="abbccddef00112233445566778899aababbccddef00112233445566778899aab", salt="11223344",
    spi=0x4A2CBFE3, seq=2, iv="0102030405060708",
    plaintext="4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
              "7002400020bf0000020405b40101040201020201",
    packet="4a2cbfe3000000020102030405060708ff425c9b724599df7a3bcd510194e00d"
           "6a78107f1b0b1cbf06efae9d65a5d763748a637985771d347f0545659f14e99d"
           "ef842d8eb335f4eecfdbf831824b4c4915956c96",
)


@pytest.mark.parametrize("case", [GCM_PACKET2, GCM_PACKET3], ids=["gcm-packet2", "gcm-packet3"])
def test_gcm_esp_packets_seal_and_open(case: dict[str, object]) -> None:
    key = h(str(case["key"]))
    name = "aes128gcm16" if len(key) == 16 else "aes256gcm16"
    spi, seq = int(str(case["spi"])), int(str(case["seq"]))
    transform = make_transform(name, spi=spi, esn=False,
                               encryption_key=Secret(key + h(str(case["salt"]))),
                               integrity_key=None)
    assert isinstance(transform, AeadTransform)
    header = struct.pack("!II", spi, seq)
    plaintext = h(str(case["plaintext"]).replace(" ", ""))
    packet = h(str(case["packet"]))
    # RFC 4106 §3.1: the IV is what the sender chose; the transform uses its
    # sequence argument as the IV, the AAD is the header (RFC 4106 §5)
    assert transform.seal(header, int(str(case["iv"]), 16), plaintext) == packet
    assert transform.open(packet, 0, len(packet), seq) == plaintext


def test_gcm_packet2_decapsulates_in_transport_mode() -> None:
    # Next Header 1 and Pad Length 0 close GCM_PACKET2's plaintext
    case = GCM_PACKET2
    sa = SecurityAssociation(0x0000A5F8, "aes128gcm16",
                             h(str(case["key"])) + h(str(case["salt"])), mode="transport")
    inner = sa.decapsulate(ipv4(h(str(case["packet"])), 50))
    plaintext = h(str(case["plaintext"]).replace(" ", ""))
    assert inner == ipv4(plaintext[:-2], 1)


def test_gcm_packet1_extended_sequence_number_aad() -> None:
    # draft-mcgrew-gcm-test-01 Packet 1: SPI 00004321, 64-bit sequence number
    # 0x87654321_00000000 (RFC 4106 §5: AAD = SPI || seq high || seq low)
    key, salt = h("4c80cdefbb5d10da906ac73c3613a634"), h("2e443b68")
    plaintext = h("45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000"
                  "00000000045f736970045f756470037369700963796265726369747902646b00"
                  "0021000101020201")
    packet = h("00004321000000004956ed7e3b244cfefecf537e729d5b07dc30df528dd22b76"
               "8d1b98736696a6fd348509fa13ceac34cfa2436f14a3f3cf65925bf1f4a13c5d"
               "15b21e1884f5ff6247aeabb786b93bce61bc17d768fd9732459018148f6cbe72"
               "2fd04796562dfdb4")
    seq = 0x87654321_00000000
    transform = make_transform("aes128gcm16", spi=0x4321, esn=True,
                               encryption_key=Secret(key + salt), integrity_key=None)
    assert transform.open(packet, 0, len(packet), seq) == plaintext
    # the same packet through an SA whose window has reached that subspace
    sa = SecurityAssociation(0x4321, "aes128gcm16", key + salt, mode="transport", esn=True)
    sa.replay_window.top = seq - 1
    inner = sa.decapsulate(ipv4(packet, 50))
    assert inner == ipv4(plaintext[:-4], 1)  # padding 01 02, Pad Length 2, Next Header 1
    assert sa.replay_window.top == seq


# RFC 7634 Appendix A: ESP example. Key 80..9f, salt a0a1a2a3, IV 1011121314151617,
# SPI 0x01020304, sequence number 5; the plaintext ends with padding 01 02,
# Pad Length 02 and Next Header 04 (tunnel mode)
CHACHA_KEY = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
CHACHA_SALT = h("a0a1a2a3")
CHACHA_PLAINTEXT = h(
    "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
    "0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
    "2425262728292a2b2c2d2e2f303132333435363701020204")
CHACHA_PACKET = h(
    "01020304000000051011121314151617"
    "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6"
    "14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3"
    "cbec163fac469b502773f6fb94e664da9165b82829f641e0"
    "76aaa8266b7fb0f7b11b369907e1ad43")


def test_rfc7634_appendix_a_seal() -> None:
    transform = make_transform("chacha20poly1305", spi=0x01020304, esn=False,
                               encryption_key=Secret(CHACHA_KEY + CHACHA_SALT),
                               integrity_key=None)
    header = struct.pack("!II", 0x01020304, 5)
    assert transform.seal(header, 0x1011121314151617, CHACHA_PLAINTEXT) == CHACHA_PACKET


def test_rfc7634_appendix_a_decapsulate_tunnel() -> None:
    sa = SecurityAssociation(0x01020304, "chacha20poly1305", CHACHA_KEY + CHACHA_SALT,
                             tunnel=("198.51.100.5", "192.0.2.5"))
    inner = sa.decapsulate(ipv4(CHACHA_PACKET, 50, "c6336405", "c0000205"))
    assert inner == CHACHA_PLAINTEXT[:-4]


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        # RFC 4868 §2.7.2.1, Test Case AUTH256-1 ("Hi There"): HMAC-SHA-256-128
        ("null-sha256", "0b" * 32, "198a607eb44bfbc69903a0f1cf2bbdc5"),
        # RFC 4868 §2.7.2.1, Test Case AUTH256-2 ("what do ya want for nothing?")
        ("null-sha256", "4a656665" * 8, "167f928588c5cc2eef8e3093caa0e87c"),
        # RFC 4868 §2.7.2.2, Test Case AUTH384-1: HMAC-SHA-384-192
        ("null-sha384", "0b" * 48, "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973"),
        # RFC 4868 §2.7.2.3, Test Case AUTH512-1: HMAC-SHA-512-256
        ("null-sha512", "0b" * 64,
         "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"),
        # RFC 2202 §3 test case 1 truncated to 96 bits (RFC 2404 §2): HMAC-SHA1-96
        ("null-sha1", "0b" * 20, "b617318655057264e28bc0b6"),
    ],
)
def test_hmac_truncation_vectors(name: str, key: str, expected: str) -> None:
    data = b"Hi There" if key.startswith("0b") else b"what do ya want for nothing?"
    transform = make_transform(name, spi=0x1000, esn=False, encryption_key=None,
                               integrity_key=Secret(h(key)))
    assert isinstance(transform, NullHmacTransform)
    assert transform.icv(data, seq=0) == h(expected)
