"""IKEv1 (RFC 2409) for peers that speak nothing newer: ISAKMP codec,
main mode (PSK and RSA signatures), quick mode, informational exchanges,
DPD and NAT traversal, in a sans-IO engine driven like the IKEv2 one."""

from secpath.ike.v1.engine import AGGRESSIVE_MODE_REFUSED, IkeV1Engine, is_ikev1

__all__ = ["AGGRESSIVE_MODE_REFUSED", "IkeV1Engine", "is_ikev1"]
