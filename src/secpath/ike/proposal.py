"""SA proposals from the policy model, and their selection (RFC 7296 §2.7, §3.3).

IKE proposals come from the policy's key-exchange methods, ESP proposals
from the filter action's security methods.  The responder picks the first
of *its* suites (policy order) that one of the peer's proposals offers.
Names are the registry's; :func:`describe` spells proposals the strongSwan
way for logs and for the reason of a NO_PROPOSAL_CHOSEN failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from secpath.crypto.registry import (
    DH_GROUPS,
    ESP_ENCRYPTION,
    ESP_INTEGRITY,
    IKE_ENCRYPTION,
    IKE_INTEGRITY,
    Encryption,
    esp_proposal_name,
    ike_proposal_name,
)
from secpath.ike.constants import ProtocolId, TransformAttributeType, TransformType
from secpath.ike.payloads import Proposal, Transform, TransformAttribute
from secpath.policy.model import KeyExchange, SecurityMethod

__all__ = [
    "EspSuite",
    "IkeSuite",
    "describe",
    "esp_chosen",
    "esp_proposals",
    "esp_suites",
    "ike_proposals",
    "ike_suites",
    "parse_ike",
    "select_esp",
    "select_ike",
]


@dataclass(frozen=True, slots=True)
class IkeSuite:
    """A complete IKE transform set (registry names)."""

    encryption: str
    integrity: str | None  # None with an AEAD cipher
    prf: str  # PRF named by its hash: "sha256"
    dh_group: int

    @property
    def name(self) -> str:
        return ike_proposal_name(self.encryption, self.integrity or self.prf, self.dh_group)


@dataclass(frozen=True, slots=True)
class EspSuite:
    """A complete ESP transform set (registry names)."""

    encryption: str
    integrity: str  # "none" with an AEAD cipher
    dh_group: int | None  # PFS group of a CREATE_CHILD_SA, None otherwise
    esn: bool

    @property
    def transform(self) -> str:
        """strongSwan ESP name: ``aes128gcm16``, ``3des-sha1`` (ESP's constructor)."""
        return esp_proposal_name(self.encryption, self.integrity)

    @property
    def name(self) -> str:
        parts = [self.transform]
        if self.dh_group is not None:
            parts.append(DH_GROUPS[self.dh_group].name)
        parts.append("esn" if self.esn else "noesn")
        return "-".join(parts)


def _encr(enc: Encryption) -> Transform:
    attrs: tuple[TransformAttribute, ...] = ()
    if enc.iana_id in (12, 20):  # AES-CBC and AES-GCM carry Key Length, RFC 7296 §3.3.5
        attrs = (TransformAttribute(TransformAttributeType.KEY_LENGTH, enc.key_bytes * 8),)
    return Transform(TransformType.ENCR, enc.iana_id, attrs)


@lru_cache(maxsize=256)
def ike_suites(key_exchange: KeyExchange) -> tuple[IkeSuite, ...]:
    suites: list[IkeSuite] = []
    for m in key_exchange.methods:
        aead = IKE_ENCRYPTION[m.encryption].aead
        suite = IkeSuite(m.encryption, None if aead else m.integrity, m.integrity, m.dh_group)
        if suite not in suites:
            suites.append(suite)
    return tuple(suites)


@lru_cache(maxsize=256)
def _ike_transforms(s: IkeSuite) -> tuple[Transform, ...]:
    ts = [_encr(IKE_ENCRYPTION[s.encryption]),
          Transform(TransformType.PRF, IKE_INTEGRITY[s.prf].prf_iana_id)]
    if s.integrity is not None:
        ts.append(Transform(TransformType.INTEG, IKE_INTEGRITY[s.integrity].iana_id))
    ts.append(Transform(TransformType.DH, s.dh_group))
    return tuple(ts)


def ike_proposals(
    suites: Sequence[IkeSuite], spi: bytes = b"", first_group: int | None = None
) -> tuple[Proposal, ...]:
    """One proposal per suite (RFC 7296 §3.3.1).  ``first_group`` moves the
    suites of that DH group first (after INVALID_KE_PAYLOAD, §1.2)."""
    ordered = list(suites)
    if first_group is not None:
        ordered.sort(key=lambda s: s.dh_group != first_group)
    return tuple(
        Proposal(i + 1, ProtocolId.IKE, spi, _ike_transforms(s)) for i, s in enumerate(ordered)
    )


def esp_suites(
    methods: Sequence[SecurityMethod], esn: Sequence[bool], dh_group: int | None
) -> tuple[EspSuite, ...]:
    return _esp_suites(tuple(methods), tuple(esn), dh_group)


@lru_cache(maxsize=256)
def _esp_suites(methods: tuple[SecurityMethod, ...], esn: tuple[bool, ...], dh_group: int | None
                ) -> tuple[EspSuite, ...]:
    return tuple(
        EspSuite(m.encryption, m.integrity, dh_group, e) for m in methods for e in esn
    )


def esp_proposals(
    methods: Sequence[SecurityMethod], spi: bytes, esn: Sequence[bool], dh_group: int | None
) -> tuple[Proposal, ...]:
    """One ESP proposal per security method, each offering the ESN choices
    (Transform Type 5, RFC 7296 §3.3.2) and the PFS group if any."""
    return tuple(Proposal(i + 1, ProtocolId.ESP, spi, ts) for i, ts in
                 enumerate(_esp_transforms(tuple(methods), tuple(esn), dh_group)))


@lru_cache(maxsize=256)
def _esp_transforms(methods: tuple[SecurityMethod, ...], esn: tuple[bool, ...],
                    dh_group: int | None) -> tuple[tuple[Transform, ...], ...]:
    out: list[tuple[Transform, ...]] = []
    for m in methods:
        ts = [_encr(ESP_ENCRYPTION[m.encryption])]
        integ = ESP_INTEGRITY[m.integrity]
        if integ is not None:
            ts.append(Transform(TransformType.INTEG, integ.iana_id))
        if dh_group is not None:
            ts.append(Transform(TransformType.DH, dh_group))
        ts.extend(Transform(TransformType.ESN, 1 if e else 0) for e in esn)
        out.append(tuple(ts))
    return tuple(out)


def _encr_bits(enc: Encryption) -> int | None:
    return enc.key_bytes * 8 if enc.iana_id in (12, 20) else None


_Offer = tuple[int, int, int | None]  # (transform type, ID, Key Length or None)


def _offered(p: Proposal) -> tuple[frozenset[int], frozenset[_Offer]]:
    """The transform types of ``p``, and what it offers: ``(type, id, None)``
    for every transform, plus ``(type, id, key length)`` when it has one, so
    that a wanted ``(type, id, None)`` matches any key length."""
    items: set[_Offer] = set()
    for t in p.transforms:
        items.add((t.type, t.id, None))
        if t.attributes:
            bits = t.key_length
            if bits is not None:
                items.add((t.type, t.id, bits))
    return frozenset(t.type for t in p.transforms), frozenset(items)


@lru_cache(maxsize=256)
def _ike_wants(s: IkeSuite) -> tuple[frozenset[int], frozenset[_Offer]]:
    enc = IKE_ENCRYPTION[s.encryption]
    types = {int(TransformType.ENCR), int(TransformType.PRF), int(TransformType.DH)}
    wants: set[_Offer] = {
        (TransformType.ENCR, enc.iana_id, _encr_bits(enc)),
        (TransformType.PRF, IKE_INTEGRITY[s.prf].prf_iana_id, None),
        (TransformType.DH, s.dh_group, None),
    }
    if s.integrity is not None:
        types.add(TransformType.INTEG)
        wants.add((TransformType.INTEG, IKE_INTEGRITY[s.integrity].iana_id, None))
    return frozenset(types), frozenset(wants)


def _ike_match(p: Proposal, s: IkeSuite,
               offer: tuple[frozenset[int], frozenset[_Offer]] | None = None) -> bool:
    types, items = offer or _offered(p)
    wanted_types, wants = _ike_wants(s)
    # RFC 7296 §3.3.3: every transform type present must be matched
    return p.protocol_id == ProtocolId.IKE and types == wanted_types and wants <= items


def select_ike(
    offered: Sequence[Proposal], suites: Sequence[IkeSuite]
) -> tuple[Proposal, IkeSuite] | None:
    """Our first suite that a proposal offers: the chosen proposal (one
    transform per type, as the response carries it, §2.7) and the suite."""
    offers = [_offered(p) for p in offered]
    for s in suites:
        for p, offer in zip(offered, offers, strict=True):
            if _ike_match(p, s, offer):
                return Proposal(p.number, p.protocol_id, p.spi, _ike_transforms(s)), s
    return None


@lru_cache(maxsize=256)
def _esp_wants(s: EspSuite) -> tuple[frozenset[int], frozenset[_Offer]]:
    enc = ESP_ENCRYPTION[s.encryption]
    integ = ESP_INTEGRITY[s.integrity]
    required = {int(TransformType.ENCR)}
    wants: set[_Offer] = {(TransformType.ENCR, enc.iana_id, _encr_bits(enc))}
    if integ is not None:
        required.add(TransformType.INTEG)
        wants.add((TransformType.INTEG, integ.iana_id, None))
    if s.dh_group is not None:
        required.add(TransformType.DH)
        wants.add((TransformType.DH, s.dh_group, None))
    return frozenset(required), frozenset(wants)


_ESN = int(TransformType.ESN)


def _esp_match(p: Proposal, s: EspSuite,
               offer: tuple[frozenset[int], frozenset[_Offer]] | None = None) -> bool:
    types, items = offer or _offered(p)
    required, wants = _esp_wants(s)
    # RFC 7296 §3.3.3: every transform type present must be matched
    if not required <= types or not types - required <= {_ESN}:
        return False
    # RFC 7296 §3.3.2: no ESN transform means "no ESN"
    esn_ok = (_ESN, 1 if s.esn else 0, None) in items if _ESN in types else not s.esn
    return p.protocol_id == ProtocolId.ESP and len(p.spi) == 4 and esn_ok and wants <= items


def esp_chosen(p: Proposal, s: EspSuite, spi: bytes) -> Proposal:
    return Proposal(p.number, ProtocolId.ESP, spi, _esp_chosen_transforms(s))


@lru_cache(maxsize=256)
def _esp_chosen_transforms(s: EspSuite) -> tuple[Transform, ...]:
    enc = ESP_ENCRYPTION[s.encryption]
    integ = ESP_INTEGRITY[s.integrity]
    ts = [_encr(enc)]
    if integ is not None:
        ts.append(Transform(TransformType.INTEG, integ.iana_id))
    if s.dh_group is not None:
        ts.append(Transform(TransformType.DH, s.dh_group))
    ts.append(Transform(TransformType.ESN, 1 if s.esn else 0))
    return tuple(ts)


def select_esp(
    offered: Sequence[Proposal], suites: Sequence[EspSuite]
) -> tuple[Proposal, EspSuite] | None:
    """Our first ESP suite one of the peer's proposals offers; the returned
    proposal keeps the peer's SPI (the caller swaps in ours)."""
    offers = [_offered(p) for p in offered]
    for s in suites:
        for p, offer in zip(offered, offers, strict=True):
            if _esp_match(p, s, offer):
                return esp_chosen(p, s, p.spi), s
    return None


def parse_ike(p: Proposal) -> IkeSuite | None:
    """The suite of a proposal with exactly one transform per type (a
    responder's choice), or ``None``."""
    picks: dict[int, Transform] = {}
    for t in p.transforms:
        if t.type in picks:
            return None
        picks[t.type] = t
    enc_t, prf_t, dh_t = (picks.get(k) for k in (TransformType.ENCR, TransformType.PRF,
                                                  TransformType.DH))
    if enc_t is None or prf_t is None or dh_t is None or p.protocol_id != ProtocolId.IKE:
        return None
    enc = _find_encryption(IKE_ENCRYPTION.values(), enc_t)
    prf = next((i.name for i in IKE_INTEGRITY.values() if i.prf_iana_id == prf_t.id), None)
    integ_t = picks.get(TransformType.INTEG)
    integ = None
    if integ_t is not None:
        integ = next((i.name for i in IKE_INTEGRITY.values() if i.iana_id == integ_t.id), None)
        if integ is None:
            return None
    if enc is None or prf is None or dh_t.id not in DH_GROUPS or enc.aead != (integ is None):
        return None
    return IkeSuite(enc.name, integ, prf, dh_t.id)


def _find_encryption(table: Iterable[Encryption], t: Transform) -> Encryption | None:
    for enc in table:
        if enc.iana_id == t.id and (
            _encr_bits(enc) is None or _encr_bits(enc) == t.key_length
        ):
            return enc
    return None


def describe(proposals: Sequence[Proposal]) -> tuple[str, ...]:
    """Proposals in strongSwan spelling (``aes128-sha256-modp2048``), each
    transform type's alternatives joined with ``/``; unknown IDs as numbers."""
    out: list[str] = []
    for p in proposals:
        suite = parse_ike(p)
        if suite is not None:
            out.append(suite.name)
            continue
        by_type: dict[int, list[str]] = {}
        for t in p.transforms:
            by_type.setdefault(t.type, []).append(_transform_name(t))
        order = (TransformType.ENCR, TransformType.INTEG, TransformType.PRF,
                 TransformType.DH, TransformType.ESN)
        out.append("-".join("/".join(by_type[k]) for k in order if k in by_type))
    return tuple(out)


def _transform_name(t: Transform) -> str:
    if t.type == TransformType.ENCR:
        enc = _find_encryption(ESP_ENCRYPTION.values(), t) or _find_encryption(
            IKE_ENCRYPTION.values(), t)
        return enc.strongswan if enc else f"encr{t.id}"
    if t.type == TransformType.INTEG:
        return next((i.name for i in IKE_INTEGRITY.values() if i.iana_id == t.id),
                    f"integ{t.id}")
    if t.type == TransformType.PRF:
        return next((f"prf{i.name}" for i in IKE_INTEGRITY.values() if i.prf_iana_id == t.id),
                    f"prf{t.id}")
    if t.type == TransformType.DH:
        return DH_GROUPS[t.id].name if t.id in DH_GROUPS else f"dh{t.id}"
    if t.type == TransformType.ESN:
        return {0: "noesn", 1: "esn"}.get(t.id, f"esn{t.id}")
    return f"t{t.type}.{t.id}"
