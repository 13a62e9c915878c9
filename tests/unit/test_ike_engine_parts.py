"""secpath.ike engine parts: the transition table, proposals, traffic
selectors, configuration and credential loading."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from secpath.errors import LocalError
from secpath.ike.config import Credentials, IkeConfig, Timing
from secpath.ike.constants import ExchangeType, ProtocolId, TransformType
from secpath.ike.credentials import load_credentials, load_psk
from secpath.ike.payloads import Proposal, Transform
from secpath.ike.proposal import (
    EspSuite,
    IkeSuite,
    describe,
    esp_proposals,
    esp_suites,
    ike_proposals,
    ike_suites,
    parse_ike,
    select_esp,
    select_ike,
)
from secpath.ike.selectors import TrafficSelector, intersect, is_subset, narrow, rule_selectors
from secpath.ike.state import TRANSITIONS, State, Step, lookup
from secpath.policy.model import (
    Address,
    Behavior,
    CertificateAuth,
    Filter,
    FilterAction,
    FilterList,
    KeyExchange,
    KeyExchangeMethod,
    Local,
    Policy,
    PortRange,
    PskAuth,
    Rule,
    SecurityMethod,
)
from secpath.secret import Secret
from tests.sans_io import pki

# -- the transition table -------------------------------------------------------


@given(st.sampled_from(list(State)), st.integers(0, 255), st.booleans())
def test_lookup_is_total_and_fail_closed(state: State, exchange: int, response: bool) -> None:
    t = lookup(state, exchange, response)
    if t is None:
        return
    assert (state, ExchangeType(exchange), response) in TRANSITIONS


def test_table_shape() -> None:
    # nothing is legal once closed, and only IKE_SA_INIT/IKE_AUTH before establishment
    assert not [k for k in TRANSITIONS if k[0] is State.CLOSED]
    early = {k[1] for k in TRANSITIONS if k[0] in (State.INIT_SENT, State.INIT_DONE,
                                                    State.AUTH_SENT)}
    assert early <= {ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH}
    assert lookup(State.INIT_DONE, ExchangeType.IKE_AUTH, False) is not None
    assert lookup(State.INIT_DONE, ExchangeType.CREATE_CHILD_SA, False) is None
    assert lookup(State.ESTABLISHED, ExchangeType.IKE_AUTH, False) is None
    every_step = {t.step for t in TRANSITIONS.values()}
    assert every_step == set(Step)


def test_every_step_has_a_handler() -> None:
    from secpath.ike.steps import STEPS

    assert set(STEPS) == set(Step)


# -- proposals -----------------------------------------------------------------------


KE = KeyExchange((KeyExchangeMethod("sha256", "aes128", 14),
                  KeyExchangeMethod("sha384", "aes256gcm", 20),
                  KeyExchangeMethod("sha256", "chacha20poly1305", 31)))


def test_ike_suites_and_names() -> None:
    suites = ike_suites(KE)
    assert [s.name for s in suites] == [
        "aes128-sha256-modp2048", "aes256gcm16-prfsha384-ecp384",
        "chacha20poly1305-prfsha256-curve25519"]
    assert suites[1].integrity is None and suites[1].prf == "sha384"


def test_ike_proposals_wire_shape() -> None:
    props = ike_proposals(ike_suites(KE))
    assert [p.number for p in props] == [1, 2, 3]
    cbc = props[0].transforms
    assert [t.type for t in cbc] == [TransformType.ENCR, TransformType.PRF, TransformType.INTEG,
                                     TransformType.DH]
    assert cbc[0].key_length == 128 and cbc[0].id == 12
    gcm = props[1].transforms
    assert TransformType.INTEG not in [t.type for t in gcm]  # RFC 5282 §8
    reordered = ike_proposals(ike_suites(KE), first_group=31)
    assert describe(reordered)[0] == "chacha20poly1305-prfsha256-curve25519"


def test_select_ike_prefers_our_order_and_roundtrips() -> None:
    ours = ike_suites(KE)
    theirs = ike_proposals(tuple(reversed(ours)))
    chosen, suite = select_ike(theirs, ours) or (None, None)
    assert suite == ours[0] and chosen is not None
    assert chosen.number == 3  # the peer's number for that proposal
    assert parse_ike(chosen) == suite


def test_select_ike_needs_every_transform_type_matched() -> None:
    ours = ike_suites(KE)
    bad = Proposal(1, ProtocolId.IKE, b"", (
        Transform(TransformType.ENCR, 12, ike_proposals(ours)[0].transforms[0].attributes),
        Transform(TransformType.PRF, 5), Transform(TransformType.INTEG, 12),
        Transform(TransformType.DH, 14), Transform(TransformType.ESN, 0)))
    assert select_ike([bad], ours) is None
    wrong_keylen = Proposal(1, ProtocolId.IKE, b"", (
        Transform(TransformType.ENCR, 12), Transform(TransformType.PRF, 5),
        Transform(TransformType.INTEG, 12), Transform(TransformType.DH, 14)))
    assert select_ike([wrong_keylen], ours) is None


def test_parse_ike_rejects_ambiguous_or_unknown() -> None:
    p = ike_proposals(ike_suites(KE))[0]
    twice = Proposal(1, ProtocolId.IKE, b"", (*p.transforms, Transform(TransformType.DH, 19)))
    assert parse_ike(twice) is None
    unknown = Proposal(1, ProtocolId.IKE, b"", (
        Transform(TransformType.ENCR, 99), *p.transforms[1:]))
    assert parse_ike(unknown) is None
    assert describe([unknown])[0].startswith("encr99-")


ESP = (SecurityMethod("aes256gcm", "none"), SecurityMethod("3des", "sha1"))


def test_esp_proposals_and_selection() -> None:
    props = esp_proposals(ESP, b"\x00\x00\x01\x00", (False, True), None)
    assert describe(props) == ("aes256gcm16-noesn/esn", "3des-sha1-noesn/esn")
    got = select_esp(props, esp_suites(ESP[1:], (True,), None))
    assert got is not None
    chosen, suite = got
    assert suite == EspSuite("3des", "sha1", None, True)
    assert [t.type for t in chosen.transforms] == [TransformType.ENCR, TransformType.INTEG,
                                                   TransformType.ESN]
    assert suite.transform == "3des-sha1" and suite.name == "3des-sha1-esn"


def test_esp_without_esn_transform_means_no_esn() -> None:
    props = esp_proposals(ESP[:1], b"\x00\x00\x01\x00", (), None)
    assert select_esp(props, esp_suites(ESP, (False,), None)) is not None
    assert select_esp(props, esp_suites(ESP, (True,), None)) is None


def test_esp_pfs_group_must_match() -> None:
    props = esp_proposals(ESP, b"\x00\x00\x01\x00", (False,), 14)
    assert select_esp(props, esp_suites(ESP, (False,), None)) is None
    assert select_esp(props, esp_suites(ESP, (False,), 19)) is None
    got = select_esp(props, esp_suites(ESP, (False,), 14))
    assert got is not None and got[1].name == "aes256gcm16-modp2048-noesn"
    bad_spi = Proposal(1, ProtocolId.ESP, b"\x01", props[0].transforms)
    assert select_esp([bad_spi], esp_suites(ESP, (False,), 14)) is None


def test_ike_suite_name_matches_policy_spelling() -> None:
    for m in KE.methods:
        aead = m.encryption in ("aes256gcm", "chacha20poly1305")
        suite = IkeSuite(m.encryption, None if aead else m.integrity, m.integrity, m.dh_group)
        assert suite.name == m.proposal


# -- traffic selectors -----------------------------------------------------------------


def ts(a: str, b: str | None = None, proto: int = 0, lo: int = 0, hi: int = 65535
       ) -> TrafficSelector:
    return TrafficSelector(ipaddress.ip_address(a), ipaddress.ip_address(b or a), proto, lo, hi)


def test_intersect() -> None:
    assert intersect(ts("10.0.0.0", "10.0.0.255"), ts("10.0.0.7")) == ts("10.0.0.7")
    assert intersect(ts("10.0.0.0", "10.0.0.255", 6), ts("10.0.0.7", None, 0, 443, 443)) == \
        ts("10.0.0.7", None, 6, 443, 443)
    assert intersect(ts("10.0.0.1"), ts("10.0.0.2")) is None
    assert intersect(ts("10.0.0.1", None, 6), ts("10.0.0.1", None, 17)) is None
    assert intersect(ts("10.0.0.1"), ts("::1")) is None
    assert intersect(ts("10.0.0.1", None, 0, 10, 20), ts("10.0.0.1", None, 0, 30, 40)) is None


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1))
def test_intersect_is_inside_both(a: int, b: int, c: int, d: int) -> None:
    x = TrafficSelector(ipaddress.IPv4Address(min(a, b)), ipaddress.IPv4Address(max(a, b)))
    y = TrafficSelector(ipaddress.IPv4Address(min(c, d)), ipaddress.IPv4Address(max(c, d)))
    z = intersect(x, y)
    if z is None:
        assert max(a, b) < min(c, d) or max(c, d) < min(a, b)
    else:
        assert is_subset([z], [x]) and is_subset([z], [y])
        assert intersect(y, x) == z


def _rule(filters: tuple[Filter, ...]) -> Rule:
    return Rule("r", FilterList("f", filters),
                FilterAction("s", Behavior.NEGOTIATE, (SecurityMethod("aes128gcm", "none"),)),
                (PskAuth(Path("/x")),))


def test_rule_selectors_sides() -> None:
    me = (ipaddress.ip_address("10.0.0.1"),)
    pairs = rule_selectors(_rule((
        Filter(Address.me(), Address.of("10.1.0.0/16"), protocol=6,
               destination_port=PortRange(443, 443)),
        Filter(Address.of("10.2.0.5"), Address.me()),  # written towards me: turned around
        Filter(Address.me(), Address.any()),
    )), me)
    assert pairs[0].local == (ts("10.0.0.1", None, 6),)
    assert pairs[0].remote == (ts("10.1.0.0", "10.1.255.255", 6, 443, 443),)
    assert pairs[1].local == (ts("10.0.0.1"),) and pairs[1].remote == (ts("10.2.0.5"),)
    assert len(pairs[2].remote) == 2  # any = all of IPv4 and all of IPv6


def test_narrow_picks_first_overlapping_filter() -> None:
    me = (ipaddress.ip_address("10.0.0.1"),)
    pairs = rule_selectors(_rule((
        Filter(Address.me(), Address.of("10.9.0.0/16")),
        Filter(Address.me(), Address.of("10.1.0.0/16"), protocol=17),
    )), me)
    got = narrow([ts("10.0.0.0", "10.0.0.255")], [ts("10.1.2.3")], pairs)
    assert got == ((ts("10.0.0.1", None, 17),), (ts("10.1.2.3", None, 17),))
    assert narrow([ts("10.0.0.1")], [ts("192.0.2.1")], pairs) is None


# -- configuration -----------------------------------------------------------------------


def _policy(rule: Rule) -> Policy:
    return Policy("p", Local((ipaddress.ip_address("10.0.0.1"),)),
                  KeyExchange((KeyExchangeMethod("sha256", "aes128", 14),)), (rule,))


def test_config_from_policy() -> None:
    rule = _rule((Filter(Address.me(), Address.of("10.0.0.2")),))
    cfg = IkeConfig.from_policy(_policy(rule), "r", Credentials(psk=Secret(b"k")))
    assert cfg.name == "r" and str(cfg.peer) == "10.0.0.2"
    assert str(cfg.local_id) == "10.0.0.1" and cfg.remote_id is None
    assert cfg.credentials.method == "psk"


def test_config_refusals() -> None:
    rule = _rule((Filter(Address.me(), Address.of("10.0.0.2")),))
    with pytest.raises(LocalError):
        IkeConfig.from_policy(_policy(rule), rule, Credentials())  # no certificate either
    with pytest.raises(LocalError):
        IkeConfig.from_policy(_policy(rule), rule, Credentials(psk=Secret(b"k")), esn=())
    permit = Rule("r", rule.filter_list, FilterAction("p", Behavior.PERMIT))
    with pytest.raises(LocalError):
        IkeConfig.from_policy(_policy(permit), permit, Credentials(psk=Secret(b"k")))
    with pytest.raises(LocalError):
        Timing(retransmit_tries=0)
    with pytest.raises(LocalError):
        Timing(rekey_fraction=1.5)


# -- credentials from files ------------------------------------------------------------


def test_load_psk(tmp_path: Path) -> None:
    f = tmp_path / "psk"
    f.write_bytes(b"s3cret\n")
    f.chmod(0o600)
    assert load_psk(PskAuth(f)) == Secret(b"s3cret")
    f.chmod(0o644)
    with pytest.raises(LocalError, match="readable by others"):
        load_psk(PskAuth(f))
    with pytest.raises(LocalError):
        load_psk(PskAuth(tmp_path / "missing"))


def test_load_certificate_credentials(tmp_path: Path) -> None:
    ca = pki.make_ca("A")
    key = pki.ec_key("cred")
    leaf = pki.make_leaf(ca, key, ip="10.0.0.1")
    (tmp_path / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "me.der").write_bytes(leaf.public_bytes(serialization.Encoding.DER))
    (tmp_path / "me.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    rule = Rule("r", FilterList("f", (Filter(Address.me(), Address.of("10.0.0.2")),)),
                FilterAction("s", Behavior.NEGOTIATE, (SecurityMethod("aes128gcm", "none"),)),
                (CertificateAuth(tmp_path / "ca.pem", tmp_path / "me.der", tmp_path / "me.key"),))
    creds = load_credentials(rule)
    assert creds.certificate == leaf and creds.trust_anchors == (ca.cert,)
    assert creds.private_key is not None and creds.method == "certificate"
    (tmp_path / "me.key").write_bytes(b"junk")
    with pytest.raises(LocalError, match="unreadable key"):
        load_credentials(rule)


def test_docs_quote_the_current_table() -> None:
    from secpath.ike.state import diagram

    docs = Path(__file__).resolve().parents[2] / "docs" / "ike.md"
    assert diagram() in docs.read_text()
