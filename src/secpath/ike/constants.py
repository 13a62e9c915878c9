"""IKEv2 protocol numbers (RFC 7296 §3, IANA "IKEv2 Parameters").

Fields that may carry values this module does not name (notify types,
transform IDs) stay ``int`` in the payload dataclasses; the enums give names.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = [
    "IKE_HEADER_BYTES",
    "AuthMethod",
    "CertEncoding",
    "ExchangeType",
    "HeaderFlag",
    "IdType",
    "NotifyType",
    "PayloadType",
    "ProtocolId",
    "TransformAttributeType",
    "TransformType",
    "TsType",
    "notify_name",
]

IKE_HEADER_BYTES = 28  # RFC 7296 §3.1


class ExchangeType(IntEnum):
    """RFC 7296 §3.1."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37


class HeaderFlag(IntFlag):
    """RFC 7296 §3.1: Flags."""

    NONE = 0
    INITIATOR = 0x08
    VERSION = 0x10
    RESPONSE = 0x20


class PayloadType(IntEnum):
    """RFC 7296 §3.2; SKF from RFC 7383 §2.5."""

    NONE = 0
    SA = 33
    KE = 34
    IDI = 35
    IDR = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    VENDOR_ID = 43
    TSI = 44
    TSR = 45
    SK = 46
    CP = 47
    EAP = 48
    SKF = 53


class ProtocolId(IntEnum):
    """RFC 7296 §3.3.1."""

    NONE = 0
    IKE = 1
    AH = 2
    ESP = 3


class TransformType(IntEnum):
    """RFC 7296 §3.3.2."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    DH = 4
    ESN = 5


class TransformAttributeType(IntEnum):
    """RFC 7296 §3.3.5."""

    KEY_LENGTH = 14


class IdType(IntEnum):
    """RFC 7296 §3.5."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_RFC822_ADDR = 3
    ID_IPV6_ADDR = 5
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11


class CertEncoding(IntEnum):
    """RFC 7296 §3.6."""

    PKCS7_WRAPPED_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_SIGNATURE = 4
    KERBEROS_TOKEN = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTRIBUTE = 10
    RAW_RSA_KEY = 11
    HASH_URL_X509_CERT = 12
    HASH_URL_X509_BUNDLE = 13


class AuthMethod(IntEnum):
    """RFC 7296 §3.8; 9-11 RFC 4754; 14 RFC 7427."""

    RSA_DIGITAL_SIGNATURE = 1
    SHARED_KEY_MIC = 2
    DSS_DIGITAL_SIGNATURE = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    DIGITAL_SIGNATURE = 14


class TsType(IntEnum):
    """RFC 7296 §3.13.1."""

    TS_IPV4_ADDR_RANGE = 7
    TS_IPV6_ADDR_RANGE = 8


class NotifyType(IntEnum):
    """RFC 7296 §3.10.1 (all of it), plus RFC 7383 §2.3 and RFC 7427 §4."""

    # Error types
    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    # Status types
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    IKEV2_FRAGMENTATION_SUPPORTED = 16430  # RFC 7383 §2.3
    SIGNATURE_HASH_ALGORITHMS = 16431  # RFC 7427 §4

    @property
    def is_error(self) -> bool:
        """RFC 7296 §3.10.1: types below 16384 are errors."""
        return self.value < 16384


def notify_name(notify_type: int) -> str:
    """The RFC name of a Notify Message Type, or ``NOTIFY_<n>`` when unknown."""
    try:
        return NotifyType(notify_type).name
    except ValueError:
        return f"NOTIFY_{notify_type}"
