"""What one IKE connection needs, taken from the policy model.

:class:`IkeConfig` is built from a :class:`~secpath.policy.model.Policy` and
one of its rules (:meth:`IkeConfig.from_policy`), plus :class:`Credentials`
already loaded into memory (the engine reads no files:
:mod:`secpath.ike.credentials` does that for the daemon).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from cryptography import x509

from secpath.crypto.prf import prf
from secpath.errors import LocalError
from secpath.ike.auth import Identity, PrivateKey, psk_pad
from secpath.ike.kerberos import KerberosCredentials, principal_identity
from secpath.ike.selectors import SelectorPair, rule_selectors
from secpath.policy.model import (
    Behavior,
    CertificateAuth,
    IpAddress,
    KerberosAuth,
    KeyExchange,
    Policy,
    PskAuth,
    Rule,
)
from secpath.secret import Secret

__all__ = ["Credentials", "IkeConfig", "Timing"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Loaded authentication material for one rule.

    ``psk`` for PSK rules; ``certificate`` + ``private_key`` (+
    ``intermediates``) for certificate rules, whose peers are validated
    against ``trust_anchors`` (the rule's CA); ``kerberos`` for Kerberos
    rules (docs/kerberos.md), which take precedence over the others."""

    psk: Secret | None = None
    certificate: x509.Certificate | None = None
    private_key: PrivateKey | None = field(default=None, repr=False)
    intermediates: tuple[x509.Certificate, ...] = ()
    trust_anchors: tuple[x509.Certificate, ...] = ()
    kerberos: KerberosCredentials | None = None
    # methods of the rule tried before this one and why they cannot be used
    skipped: tuple[str, ...] = ()
    # prf(psk, "Key Pad for IKEv2") by PRF name, made on first use (RFC 7296
    # §2.15: it depends on the PSK and the PRF only, not on the IKE SA)
    _psk_pads: dict[str, Secret] = field(default_factory=dict, init=False, repr=False,
                                         compare=False)

    def psk_pad(self, prf_name: str) -> Secret:
        """:func:`secpath.ike.auth.psk_pad` of ``psk`` with the PRF ``prf_name``."""
        pad = self._psk_pads.get(prf_name)
        if pad is None:
            if self.psk is None:
                raise LocalError("psk_pad: these credentials have no PSK")
            pad = self._psk_pads[prf_name] = psk_pad(partial(prf, prf_name), self.psk)
        return pad

    @property
    def method(self) -> str:
        if self.kerberos is not None:
            return "kerberos"
        return "psk" if self.psk is not None else "certificate"


@dataclass(frozen=True, slots=True)
class Timing:
    """Retransmission, liveness and rekey timing (seconds)."""

    retransmit_timeout: float = 2.0  # first wait, RFC 7296 §2.1
    retransmit_base: float = 1.8  # back-off factor (strongSwan's default)
    retransmit_tries: int = 5  # sends before the peer is declared dead
    dpd_interval: float | None = 30.0  # liveness check after this idle time, §2.4
    rekey_fraction: float = 0.9  # soft lifetime = fraction × hard lifetime
    rekey_jitter: float = 0.05  # random part of the soft lifetime (fraction)
    half_open_threshold: int = 16  # COOKIE demanded beyond this many half-open SAs, §2.6
    half_open_timeout: float = 30.0  # a responder's IKE SA must authenticate by then
    # unprotected INVALID_IKE_SPI answers (§2.21.4, one bucket per engine) and
    # INVALID_SPI notifications (§1.5, one bucket per IKE SA): burst, then per second
    notify_burst: int = 5
    notify_rate: float = 1.0

    def __post_init__(self) -> None:
        if self.retransmit_timeout <= 0 or self.retransmit_base < 1 or self.retransmit_tries < 1:
            raise LocalError("Timing: retransmission needs timeout > 0, base >= 1, tries >= 1")
        if not 0 < self.rekey_fraction < 1 or not 0 <= self.rekey_jitter < self.rekey_fraction:
            raise LocalError("Timing: need 0 < rekey_fraction < 1 and 0 <= jitter < fraction")
        if self.notify_burst < 0 or self.notify_rate < 0:
            raise LocalError("Timing: need notify_burst >= 0 and notify_rate >= 0 (0 sends none)")


@dataclass(frozen=True, slots=True)
class IkeConfig:
    """One rule's IKE connection: proposals, identities, credentials, selectors."""

    rule: Rule
    key_exchange: KeyExchange
    local_addresses: tuple[IpAddress, ...]
    local_id: Identity
    remote_id: Identity | None  # None: the peer's IKE address (ID_IPV4/IPV6_ADDR)
    credentials: Credentials
    selectors: tuple[SelectorPair, ...]
    timing: Timing = Timing()
    esn: tuple[bool, ...] = (False, True)  # ESN choices offered, preferred first
    replay_window: int = 64
    force_udp_encapsulation: bool = False  # RFC 7296 §2.23: as if behind a NAT
    fragment_size: int = 1280  # larger encrypted messages are fragmented (RFC 7383 §2.5.1)

    @classmethod
    def from_policy(
        cls,
        policy: Policy,
        rule: Rule | str,
        credentials: Credentials,
        *,
        timing: Timing = Timing(),
        esn: tuple[bool, ...] = (False, True),
        replay_window: int = 64,
        force_udp_encapsulation: bool = False,
        fragment_size: int = 1280,
    ) -> IkeConfig:
        r = policy.rule(rule) if isinstance(rule, str) else rule
        if r.filter_action.behavior is not Behavior.NEGOTIATE:
            raise LocalError(f"rule {r.name!r}: only 'negotiate' rules have IKE connections")
        kinds = [type(a) for a in r.authentication]
        if credentials.psk is not None and PskAuth not in kinds:
            raise LocalError(f"rule {r.name!r}: a PSK was given but the rule has no psk method")
        if credentials.kerberos is not None:
            if KerberosAuth not in kinds:
                raise LocalError(f"rule {r.name!r}: Kerberos credentials but no kerberos method")
        elif credentials.psk is None:
            if CertificateAuth not in kinds:
                raise LocalError(f"rule {r.name!r}: no psk or certificate method usable here")
            if credentials.certificate is None or credentials.private_key is None:
                raise LocalError(f"rule {r.name!r}: certificate method needs a cert and key")
            if not credentials.trust_anchors:
                raise LocalError(f"rule {r.name!r}: certificate method needs the CA")
        if not policy.key_exchange.methods:
            raise LocalError(f"policy {policy.name!r}: no key-exchange method")
        if not esn:
            raise LocalError("esn: offer at least one of False/True")
        local_id = Identity.parse(policy.local.identity)
        if credentials.kerberos is not None:
            # docs/kerberos.md §4: the initiator's principal is its IKE identity
            local_id = principal_identity(credentials.kerberos.provider.principal)
        remote_id = Identity.parse(r.remote_id) if r.remote_id is not None else None
        return cls(
            rule=r,
            key_exchange=policy.key_exchange,
            local_addresses=policy.local.addresses,
            local_id=local_id,
            remote_id=remote_id,
            credentials=credentials,
            selectors=rule_selectors(r, policy.local.addresses),
            timing=timing,
            esn=esn,
            replay_window=replay_window,
            force_udp_encapsulation=force_udp_encapsulation,
            fragment_size=fragment_size,
        )

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def peer(self) -> IpAddress | None:
        """The IKE peer of the rule: ``peer``, else the tunnel endpoint, else
        the single remote host of its filters."""
        if self.rule.peer is not None:
            return self.rule.peer
        if self.rule.tunnel_endpoint is not None:
            return self.rule.tunnel_endpoint
        hosts = {
            ts.start for pair in self.selectors for ts in pair.remote if ts.start == ts.end
        }
        return next(iter(hosts)) if len(hosts) == 1 else None
