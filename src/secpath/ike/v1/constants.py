"""ISAKMP (RFC 2408) and IKEv1 (RFC 2409, IPsec DOI RFC 2407) numbers."""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "DPD_VENDOR_ID",
    "ISAKMP_VERSION",
    "NAT_T_VENDOR_ID",
    "AuthenticationMethod",
    "EncapsulationMode",
    "ExchangeType",
    "Flag",
    "HashAlgorithm",
    "IpsecAttribute",
    "NotifyType",
    "OakleyAttribute",
    "OakleyEncryption",
    "PayloadType",
    "ProtocolId",
]

ISAKMP_VERSION = 0x10  # major 1, minor 0 (RFC 2408 §3.1)
DOI_IPSEC = 1  # RFC 2407 §4.2
SIT_IDENTITY_ONLY = 1  # RFC 2407 §4.2
KEY_IKE = 1  # RFC 2407 §4.4.2: the transform ID of a phase-1 transform
CERT_X509_SIGNATURE = 4  # RFC 2408 §3.9

DPD_VENDOR_ID = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")  # RFC 3706 §5.1
NAT_T_VENDOR_ID = bytes.fromhex("4a131c81070358455c5728f20e95452f")  # RFC 3947 §3.1: MD5("RFC 3947")


class PayloadType(IntEnum):
    """RFC 2408 §3.1, RFC 3947 §3.2 and §5.2."""

    NONE = 0
    SA = 1
    P = 2
    T = 3
    KE = 4
    ID = 5
    CERT = 6
    CR = 7
    HASH = 8
    SIG = 9
    NONCE = 10
    N = 11
    D = 12
    VID = 13
    NAT_D = 20
    NAT_OA = 21


class ExchangeType(IntEnum):
    """RFC 2408 §3.1, RFC 2409 §5."""

    BASE = 1
    IDENTITY_PROTECTION = 2  # main mode
    AUTHENTICATION_ONLY = 3
    AGGRESSIVE = 4
    INFORMATIONAL = 5
    QUICK_MODE = 32
    NEW_GROUP_MODE = 33


class Flag(IntEnum):
    """RFC 2408 §3.1."""

    ENCRYPTION = 1
    COMMIT = 2
    AUTHENTICATION_ONLY = 4


class ProtocolId(IntEnum):
    """RFC 2407 §4.4.1."""

    ISAKMP = 1
    IPSEC_AH = 2
    IPSEC_ESP = 3


class OakleyAttribute(IntEnum):
    """RFC 2409 Appendix A (phase-1 attribute classes)."""

    ENCRYPTION_ALGORITHM = 1
    HASH_ALGORITHM = 2
    AUTHENTICATION_METHOD = 3
    GROUP_DESCRIPTION = 4
    LIFE_TYPE = 11
    LIFE_DURATION = 12
    KEY_LENGTH = 14


class OakleyEncryption(IntEnum):
    """RFC 2409 Appendix A, RFC 3602 §5 (AES-CBC = 7)."""

    DES_CBC = 1
    TRIPLE_DES_CBC = 5
    AES_CBC = 7


class HashAlgorithm(IntEnum):
    """RFC 2409 Appendix A, RFC 4868 §2.4 (IKEv1 phase-1 hashes)."""

    MD5 = 1
    SHA = 2
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class AuthenticationMethod(IntEnum):
    """RFC 2409 Appendix A."""

    PRE_SHARED_KEY = 1
    DSS_SIGNATURES = 2
    RSA_SIGNATURES = 3
    RSA_ENCRYPTION = 4
    REVISED_RSA_ENCRYPTION = 5
    ECDSA_SHA256 = 9  # RFC 4754 §8
    ECDSA_SHA384 = 10
    ECDSA_SHA512 = 11


class IpsecAttribute(IntEnum):
    """RFC 2407 §4.5 (phase-2 SA attributes)."""

    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTHENTICATION_ALGORITHM = 5
    KEY_LENGTH = 6


class EncapsulationMode(IntEnum):
    """RFC 2407 §4.5, RFC 3947 §5 (UDP-encapsulated modes)."""

    TUNNEL = 1
    TRANSPORT = 2
    UDP_TUNNEL = 3
    UDP_TRANSPORT = 4


LIFE_SECONDS = 1  # RFC 2407 §4.5 / RFC 2409 Appendix A: Life Type
LIFE_KILOBYTES = 2


class NotifyType(IntEnum):
    """RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 §5."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578
    R_U_THERE = 36136
    R_U_THERE_ACK = 36137
