"""IKEv1 SA proposals from the policy model, and their selection.

Phase 1 (RFC 2409 Appendix A): one ISAKMP proposal whose transforms are
the policy's key-exchange methods (KEY_IKE with Oakley attributes).
Phase 2 (RFC 2407 §4.4.4, §4.5): one ESP proposal per security method of
the filter action, with mode, lifetimes and the PFS group as attributes.
The responder picks the first of *its* suites that the peer offers and
answers with the peer's transform unchanged (RFC 2408 §4.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secpath.crypto.registry import (
    DH_GROUPS,
    ESP_ENCRYPTION,
    IKE_ENCRYPTION,
    esp_proposal_name,
    ike_proposal_name,
)
from secpath.ike.v1.codec import Attribute, Proposal, Transform, attribute_int
from secpath.ike.v1.constants import (
    KEY_IKE,
    LIFE_KILOBYTES,
    LIFE_SECONDS,
    AuthenticationMethod,
    EncapsulationMode,
    IpsecAttribute,
    OakleyAttribute,
    OakleyEncryption,
    ProtocolId,
)
from secpath.policy.model import KeyExchange, SecurityMethod

__all__ = [
    "Phase1Suite",
    "Phase2Suite",
    "describe_phase1",
    "describe_phase2",
    "phase1_proposal",
    "phase1_suites",
    "phase2_proposals",
    "phase2_suites",
    "select_phase1",
    "select_phase2",
]

# RFC 2409 Appendix A / RFC 4868 §2.4: Oakley hash IDs of the registry's hashes
_OAKLEY_HASH = {"sha1": 2, "sha256": 4, "sha384": 5, "sha512": 6}
# RFC 2407 §4.5 / RFC 4868 §2.4: phase-2 Authentication Algorithm IDs
_ESP_AUTH = {"sha1": 2, "sha256": 5, "sha384": 6, "sha512": 7}
# ESP transform IDs (RFC 2407 §4.4.4, RFC 3602, RFC 4106 §8.4) shared with IKEv2's table
_ESP_IDS = {"3des": 3, "null": 11, "aes128": 12, "aes256": 12, "aes128gcm": 20, "aes256gcm": 20}


@dataclass(frozen=True, slots=True)
class Phase1Suite:
    encryption: str  # registry name: "3des", "aes128"
    hash: str  # registry name of the hash (and HMAC PRF): "sha1"
    dh_group: int
    auth: AuthenticationMethod
    lifetime_s: int

    @property
    def name(self) -> str:
        return ike_proposal_name(self.encryption, self.hash, self.dh_group)


@dataclass(frozen=True, slots=True)
class Phase2Suite:
    encryption: str  # ESP_ENCRYPTION name
    integrity: str  # ESP_INTEGRITY name ("none" with AES-GCM)
    dh_group: int | None  # PFS group
    mode: EncapsulationMode
    lifetime_s: int
    lifetime_kb: int

    @property
    def transform(self) -> str:
        return esp_proposal_name(self.encryption, self.integrity)

    @property
    def name(self) -> str:
        group = f"-{DH_GROUPS[self.dh_group].name}" if self.dh_group is not None else ""
        return f"{self.transform}{group}"


def phase1_suites(key_exchange: KeyExchange, auth: AuthenticationMethod) -> tuple[Phase1Suite, ...]:
    """The policy's methods usable in IKEv1 (no AEAD in phase 1, RFC 2409)."""
    out: list[Phase1Suite] = []
    for m in key_exchange.methods:
        if IKE_ENCRYPTION[m.encryption].aead or m.integrity not in _OAKLEY_HASH:
            continue
        s = Phase1Suite(m.encryption, m.integrity, m.dh_group, auth, key_exchange.lifetime_s)
        if s not in out:
            out.append(s)
    return tuple(out)


def _oakley_encryption(name: str) -> list[Attribute]:
    if name == "3des":
        return [Attribute(OakleyAttribute.ENCRYPTION_ALGORITHM, OakleyEncryption.TRIPLE_DES_CBC)]
    return [Attribute(OakleyAttribute.ENCRYPTION_ALGORITHM, OakleyEncryption.AES_CBC),
            Attribute(OakleyAttribute.KEY_LENGTH, IKE_ENCRYPTION[name].key_bytes * 8)]


def phase1_proposal(suites: Sequence[Phase1Suite]) -> Proposal:
    transforms = []
    for i, s in enumerate(suites):
        attrs = [*_oakley_encryption(s.encryption),
                 Attribute(OakleyAttribute.HASH_ALGORITHM, _OAKLEY_HASH[s.hash]),
                 Attribute(OakleyAttribute.AUTHENTICATION_METHOD, s.auth),
                 Attribute(OakleyAttribute.GROUP_DESCRIPTION, s.dh_group),
                 Attribute(OakleyAttribute.LIFE_TYPE, LIFE_SECONDS),
                 Attribute(OakleyAttribute.LIFE_DURATION, s.lifetime_s)]
        transforms.append(Transform(i + 1, KEY_IKE, tuple(attrs)))
    return Proposal(1, ProtocolId.ISAKMP, b"", tuple(transforms))


def _lifetimes(attrs: Sequence[Attribute], type_attr: int, duration_attr: int
               ) -> tuple[int | None, int | None]:
    """(seconds, kilobytes) from Life Type / Life Duration pairs (RFC 2407 §4.5)."""
    seconds = kilobytes = None
    kind = None
    for a in attrs:
        if a.type == type_attr:
            kind = attribute_int(a.value)
        elif a.type == duration_attr and kind is not None:
            if kind == LIFE_SECONDS:
                seconds = attribute_int(a.value)
            elif kind == LIFE_KILOBYTES:
                kilobytes = attribute_int(a.value)
    return seconds, kilobytes


def parse_phase1(t: Transform) -> Phase1Suite | None:
    """The suite a phase-1 transform describes, or None when we lack an algorithm."""
    if t.transform_id != KEY_IKE:
        return None
    enc_id = t.attribute(OakleyAttribute.ENCRYPTION_ALGORITHM)
    hash_id = t.attribute(OakleyAttribute.HASH_ALGORITHM)
    auth = t.attribute(OakleyAttribute.AUTHENTICATION_METHOD)
    group = t.attribute(OakleyAttribute.GROUP_DESCRIPTION)
    if enc_id is None or hash_id is None or auth is None or group is None:
        return None
    enc_id, auth, group = attribute_int(enc_id), attribute_int(auth), attribute_int(group)
    bits = t.attribute(OakleyAttribute.KEY_LENGTH)
    if enc_id == OakleyEncryption.TRIPLE_DES_CBC and bits is None:
        enc = "3des"
    elif enc_id == OakleyEncryption.AES_CBC:
        enc = {128: "aes128", 192: "aes192", 256: "aes256"}.get(
            attribute_int(bits) if bits is not None else 128, "")
    else:
        return None
    hash_name = next((n for n, i in _OAKLEY_HASH.items() if i == attribute_int(hash_id)), None)
    if not enc or hash_name is None or group not in DH_GROUPS \
            or auth not in AuthenticationMethod.__members__.values():
        return None
    seconds, _ = _lifetimes(t.attributes, OakleyAttribute.LIFE_TYPE, OakleyAttribute.LIFE_DURATION)
    return Phase1Suite(enc, hash_name, group, AuthenticationMethod(auth), seconds or 28800)


def select_phase1(proposals: Sequence[Proposal], ours: Sequence[Phase1Suite]
                  ) -> tuple[Proposal, Phase1Suite] | None:
    """Our first suite the peer offers: the peer's proposal cut down to that
    transform, and the suite with the shorter of the two lifetimes."""
    offered = [(p, t, s) for p in proposals if p.protocol == ProtocolId.ISAKMP
               for t in p.transforms if (s := parse_phase1(t)) is not None]
    for mine in ours:
        for p, t, theirs in offered:
            if (theirs.encryption, theirs.hash, theirs.dh_group, theirs.auth) == \
                    (mine.encryption, mine.hash, mine.dh_group, mine.auth):
                life = min(mine.lifetime_s, theirs.lifetime_s)
                chosen = Proposal(p.number, p.protocol, p.spi, (t,))
                return chosen, Phase1Suite(mine.encryption, mine.hash, mine.dh_group, mine.auth,
                                           life)
    return None


def phase2_suites(methods: Sequence[SecurityMethod], dh_group: int | None,
                  mode: EncapsulationMode) -> tuple[Phase2Suite, ...]:
    return tuple(Phase2Suite(m.encryption, m.integrity, dh_group, mode, m.lifetime_s,
                             m.lifetime_kb)
                 for m in methods if m.encryption in _ESP_IDS
                 and (m.integrity == "none" or m.integrity in _ESP_AUTH))


def _phase2_transform(number: int, s: Phase2Suite) -> Transform:
    enc = ESP_ENCRYPTION[s.encryption]
    attrs = [Attribute(IpsecAttribute.SA_LIFE_TYPE, LIFE_SECONDS),
             Attribute(IpsecAttribute.SA_LIFE_DURATION, s.lifetime_s),
             Attribute(IpsecAttribute.SA_LIFE_TYPE, LIFE_KILOBYTES),
             Attribute(IpsecAttribute.SA_LIFE_DURATION, s.lifetime_kb)]
    if s.dh_group is not None:
        attrs.append(Attribute(IpsecAttribute.GROUP_DESCRIPTION, s.dh_group))
    attrs.append(Attribute(IpsecAttribute.ENCAPSULATION_MODE, s.mode))
    if s.integrity != "none":
        attrs.append(Attribute(IpsecAttribute.AUTHENTICATION_ALGORITHM, _ESP_AUTH[s.integrity]))
    if enc.iana_id in (12, 20):  # RFC 3602 §5.3, RFC 4106 §8.4: Key Length is required
        attrs.append(Attribute(IpsecAttribute.KEY_LENGTH, enc.key_bytes * 8))
    return Transform(number, _ESP_IDS[s.encryption], tuple(attrs))


def phase2_proposals(suites: Sequence[Phase2Suite], spi: bytes) -> tuple[Proposal, ...]:
    """One ESP proposal per suite, each with one transform (RFC 2408 §4.2)."""
    return tuple(Proposal(i + 1, ProtocolId.IPSEC_ESP, spi, (_phase2_transform(1, s),))
                 for i, s in enumerate(suites))


def parse_phase2(t: Transform) -> Phase2Suite | None:
    bits = t.attribute(IpsecAttribute.KEY_LENGTH)
    key_bits = attribute_int(bits) if bits is not None else None
    enc = next((n for n, i in _ESP_IDS.items() if i == t.transform_id
                and (key_bits is None or ESP_ENCRYPTION[n].key_bytes * 8 == key_bits)), None)
    if enc is None:
        return None
    auth = t.attribute(IpsecAttribute.AUTHENTICATION_ALGORITHM)
    if ESP_ENCRYPTION[enc].aead:
        if auth is not None:
            return None
        integ = "none"
    else:
        found = next((n for n, i in _ESP_AUTH.items()
                      if auth is not None and i == attribute_int(auth)), None)
        if found is None:
            return None
        integ = found
    mode_v = t.attribute(IpsecAttribute.ENCAPSULATION_MODE)
    mode = attribute_int(mode_v) if mode_v is not None else EncapsulationMode.TRANSPORT
    if mode not in EncapsulationMode.__members__.values():
        return None
    group_v = t.attribute(IpsecAttribute.GROUP_DESCRIPTION)
    group = attribute_int(group_v) if group_v is not None else None
    if group is not None and group not in DH_GROUPS:
        return None
    # RFC 2407 §4.5: no lifetime attribute means 28800 seconds
    seconds, kilobytes = _lifetimes(t.attributes, IpsecAttribute.SA_LIFE_TYPE,
                                    IpsecAttribute.SA_LIFE_DURATION)
    return Phase2Suite(enc, integ, group, EncapsulationMode(mode), seconds or 28800,
                       kilobytes or 0)


def _same_mode(a: EncapsulationMode, b: EncapsulationMode) -> bool:
    tunnel = (EncapsulationMode.TUNNEL, EncapsulationMode.UDP_TUNNEL)
    return (a in tunnel) == (b in tunnel)


def select_phase2(proposals: Sequence[Proposal], ours: Sequence[Phase2Suite]
                  ) -> tuple[Proposal, Phase2Suite, Phase2Suite] | None:
    """Our first suite the peer offers (same cipher, integrity, PFS group and
    tunnel/transport): (the peer's proposal with that transform, the suite to
    use — our lifetimes when shorter —, the peer's suite as offered)."""
    offered = [(p, t, s) for p in proposals if p.protocol == ProtocolId.IPSEC_ESP
               and len(p.spi) == 4 for t in p.transforms if (s := parse_phase2(t)) is not None]
    for mine in ours:
        for p, t, theirs in offered:
            if (theirs.encryption, theirs.integrity, theirs.dh_group) != \
                    (mine.encryption, mine.integrity, mine.dh_group) \
                    or not _same_mode(theirs.mode, mine.mode):
                continue
            kb = min(x for x in (mine.lifetime_kb, theirs.lifetime_kb) if x) \
                if mine.lifetime_kb or theirs.lifetime_kb else 0
            use = Phase2Suite(mine.encryption, mine.integrity, mine.dh_group, theirs.mode,
                              min(mine.lifetime_s, theirs.lifetime_s), kb)
            return Proposal(p.number, p.protocol, p.spi, (t,)), use, theirs
    return None


def describe_phase1(proposals: Sequence[Proposal]) -> tuple[str, ...]:
    return tuple(s.name for p in proposals for t in p.transforms
                 if (s := parse_phase1(t)) is not None) or ("(nothing we know)",)


def describe_phase2(proposals: Sequence[Proposal]) -> tuple[str, ...]:
    return tuple(s.name for p in proposals for t in p.transforms
                 if (s := parse_phase2(t)) is not None) or ("(nothing we know)",)


def lifetime_attributes(s: Phase2Suite) -> tuple[Attribute, ...]:
    """The RESPONDER-LIFETIME notify data (RFC 2407 §4.6.3.1)."""
    attrs = [Attribute(IpsecAttribute.SA_LIFE_TYPE, LIFE_SECONDS),
             Attribute(IpsecAttribute.SA_LIFE_DURATION, s.lifetime_s)]
    if s.lifetime_kb:
        attrs += [Attribute(IpsecAttribute.SA_LIFE_TYPE, LIFE_KILOBYTES),
                  Attribute(IpsecAttribute.SA_LIFE_DURATION, s.lifetime_kb)]
    return tuple(attrs)


def responder_lifetime(attrs: Sequence[Attribute]) -> tuple[int | None, int | None]:
    """(seconds, kilobytes) of a RESPONDER-LIFETIME notify."""
    return _lifetimes(attrs, IpsecAttribute.SA_LIFE_TYPE, IpsecAttribute.SA_LIFE_DURATION)
