"""Main-mode signatures over HASH_I / HASH_R: RSA (RFC 2409 §5.1: PKCS #1
type 1 padding of the hash alone, no DigestInfo) and ECDSA (RFC 4754 §8:
methods 9/10/11 for P-256/P-384/P-521, the signature ``r | s`` at the
curve's length).  As with RSA, the ECDSA signature is made over HASH_I /
HASH_R itself, which is already a hash (as strongSwan does; checked
against it in tests/interop)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    NoDigestInfo,
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from secpath.errors import LocalError, RemoteError
from secpath.ike.auth import PrivateKey, PublicKey
from secpath.ike.v1.constants import AuthenticationMethod, NotifyType

__all__ = ["SIGNATURE_METHODS", "method_for_key", "sign_hash", "verify_hash"]

# RFC 4754 §8: the curve of each ECDSA method, and the length of r and s
_ECDSA: dict[AuthenticationMethod, tuple[str, int]] = {
    AuthenticationMethod.ECDSA_SHA256: ("secp256r1", 32),
    AuthenticationMethod.ECDSA_SHA384: ("secp384r1", 48),
    AuthenticationMethod.ECDSA_SHA512: ("secp521r1", 66),
}
SIGNATURE_METHODS = frozenset({AuthenticationMethod.RSA_SIGNATURES, *_ECDSA})
# HASH_I / HASH_R is the PRF's output: ECDSA takes it as a digest of that length
_PREHASHED: dict[int, hashes.HashAlgorithm] = {
    20: hashes.SHA1(), 32: hashes.SHA256(), 48: hashes.SHA384(), 64: hashes.SHA512()}  # noqa: S303


def _prehashed(digest: bytes) -> ec.ECDSA:
    alg = _PREHASHED.get(len(digest))
    if alg is None:
        raise LocalError(f"no ECDSA over a {len(digest)}-byte hash")
    return ec.ECDSA(Prehashed(alg))


def method_for_key(key: PrivateKey) -> AuthenticationMethod:
    if isinstance(key, rsa.RSAPrivateKey):
        return AuthenticationMethod.RSA_SIGNATURES
    for method, (curve, _) in _ECDSA.items():
        if key.curve.name == curve:
            return method
    raise LocalError(f"IKEv1 has no signature method for the curve {key.curve.name}")


def sign_hash(key: PrivateKey, method: AuthenticationMethod, digest: bytes) -> bytes:
    if method == AuthenticationMethod.RSA_SIGNATURES and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), NoDigestInfo())
    if method in _ECDSA and isinstance(key, ec.EllipticCurvePrivateKey):
        size = _ECDSA[method][1]
        r, s = decode_dss_signature(key.sign(digest, _prehashed(digest)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise LocalError(f"the private key cannot make {method.name} signatures")


def verify_hash(key: PublicKey, method: AuthenticationMethod, signature: bytes,
                digest: bytes) -> None:
    """Raise :class:`RemoteError` (AUTHENTICATION-FAILED) unless it verifies."""
    def fail(why: str) -> RemoteError:
        return RemoteError(f"main mode signature: {why}", notify=NotifyType.AUTHENTICATION_FAILED)

    try:
        if method == AuthenticationMethod.RSA_SIGNATURES:
            if not isinstance(key, rsa.RSAPublicKey):
                raise fail("RSA signature method but the certificate's key is not RSA")
            # cryptography's stub lists NoDigestInfo for sign() only; verify() takes it too
            key.verify(signature, digest, padding.PKCS1v15(), NoDigestInfo())  # type: ignore[arg-type]
            return
        if method in _ECDSA:
            curve, size = _ECDSA[method]
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve:
                raise fail(f"{method.name} but the certificate's key is not {curve}")
            if len(signature) != 2 * size:
                raise fail(f"{len(signature)} bytes, expected {2 * size}")
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), digest, _prehashed(digest))
            return
    except InvalidSignature as exc:
        raise fail("does not verify") from exc
    except (ValueError, LocalError) as exc:
        raise fail("malformed") from exc
    raise fail(f"unsupported method {method}")
