"""Every audit finding, with a policy that triggers it and one that does not."""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from secpath.policy.audit import Finding, Severity, audit_pair, audit_policy, exit_code
from secpath.policy.loader import parse_policy
from secpath.policy.model import Policy

from .test_policy_loader import BASE


def make(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d["key_exchange"]["method"] = [{"integrity": "sha256", "encryption": "aes128gcm", "dh_group": 19}]
    d["filter_action"][0]["security_method"] = [{"encryption": "aes128gcm"}]
    d["rule"][0]["authentication"] = [{"method": "kerberos"}]
    for k, v in changes.items():
        d[k] = v
    return d


def fake_stat(modes: dict[str, int]) -> Any:
    def st(path: Path) -> os.stat_result:
        name = path.name
        if name not in modes:
            raise FileNotFoundError(2, "No such file", str(path))
        return os.stat_result((stat.S_IFREG | modes[name], 0, 0, 1, 0, 0, 10, 0, 0, 0))

    return st


def audit(d: dict[str, Any], modes: dict[str, int] | None = None) -> list[Finding]:
    return audit_policy(parse_policy(d, source=Path("/etc/secpath/p.toml")), stat=fake_stat(modes or {}))


def codes(findings: list[Finding]) -> dict[str, Severity]:
    return {f.code: f.severity for f in findings}


def test_modern_policy_is_clean() -> None:
    assert audit(make()) == []


@pytest.mark.parametrize(
    ("group", "code", "severity"),
    [
        (2, "dh-group-2", Severity.WARNING),
        (5, "dh-group-5", Severity.WARNING),
        (1, "dh-group-1", Severity.ERROR),
    ],
)
def test_weak_dh_groups(group: int, code: str, severity: Severity) -> None:
    d = make()
    d["key_exchange"]["method"][0]["dh_group"] = group
    d["key_exchange"]["allow_dh_group1"] = True
    found = [f for f in audit(d) if f.code == code]
    assert found and found[0].severity is severity
    assert "bit" in found[0].message and found[0].reason


def test_guide_profile_3des_sha1_flagged_with_rfc8221() -> None:
    d = make()
    d["key_exchange"]["method"] = [{"integrity": "sha1", "encryption": "3des", "dh_group": 2}]
    d["filter_action"][0]["security_method"] = [{"encryption": "3des", "integrity": "sha1"}]
    c = codes(audit(d))
    for code in ("ike-3des", "ike-sha1", "esp-3des", "esp-sha1", "dh-group-2"):
        assert c[code] is Severity.WARNING
    assert all("RFC 8221" in f.reason for f in audit(d) if "3des" in f.code or "sha1" in f.code)


def test_esp_null_is_flagged() -> None:
    d = make()
    d["filter_action"][0]["security_method"] = [{"encryption": "null", "integrity": "sha256"}]
    assert codes(audit(d))["esp-null"] is Severity.WARNING


def test_psk_is_a_warning_and_its_permissions_an_error() -> None:
    d = make()
    d["rule"][0]["authentication"] = [{"method": "psk", "secret_file": "k.psk"}]
    private = audit(d, {"k.psk": 0o600})
    assert codes(private) == {"psk": Severity.WARNING}
    assert "plain text" in private[0].reason
    readable = codes(audit(d, {"k.psk": 0o640}))
    assert readable["file-permissions"] is Severity.ERROR
    assert codes(audit(d, {"k.psk": 0o604}))["file-permissions"] is Severity.ERROR
    assert codes(audit(d, {}))["file-missing"] is Severity.ERROR


def test_certificate_files_checked() -> None:
    d = make()
    d["rule"][0]["authentication"] = [
        {"method": "certificate", "ca": "ca.pem", "certificate": "me.pem", "private_key": "me.key"}
    ]
    assert audit(d, {"ca.pem": 0o644, "me.pem": 0o644, "me.key": 0o600}) == []
    c = audit(d, {"ca.pem": 0o644, "me.pem": 0o644, "me.key": 0o644})
    assert [f.where for f in c] == ["rule[0].authentication[0].private_key"]
    missing = audit(d, {"me.pem": 0o644, "me.key": 0o600})
    assert [f.code for f in missing] == ["file-missing"] and "ca" in missing[0].where


def test_kerberos_keytab_permissions() -> None:
    d = make()
    d["rule"][0]["authentication"] = [{"method": "kerberos", "keytab": "host.keytab"}]
    assert audit(d, {"host.keytab": 0o600}) == []
    assert codes(audit(d, {"host.keytab": 0o644}))["file-permissions"] is Severity.ERROR


def test_unsecured_fallback_and_inbound() -> None:
    d = make()
    d["filter_action"][0]["allow_unsecured_fallback"] = True
    d["filter_action"][0]["accept_unsecured_inbound"] = True
    found = audit(d)
    c = codes(found)
    assert c["unsecured-fallback"] is Severity.WARNING
    assert c["accept-unsecured-inbound"] is Severity.WARNING
    assert any("Do not communicate with computers that do not support IPsec" in f.reason for f in found)


def test_default_response_rule() -> None:
    d = make()
    d["policy"]["default_response_rule"] = True
    assert codes(audit(d)) == {"default-response-rule": Severity.WARNING}


def test_missing_key_exchange_method() -> None:
    d = make()
    d["key_exchange"]["method"] = []
    assert codes(audit(d))["no-key-exchange-method"] is Severity.ERROR
    d["filter_action"][0] = {"name": "require-security", "behavior": "permit"}
    del d["rule"][0]["authentication"]
    assert codes(audit(d))["no-key-exchange-method"] is Severity.WARNING


def test_duplicate_proposals_can_never_be_chosen() -> None:
    d = make()
    d["key_exchange"]["method"] *= 2
    d["filter_action"][0]["security_method"] *= 2
    found = [f for f in audit(d) if f.code == "duplicate-proposal"]
    assert {f.where for f in found} == {
        "key_exchange.method[1]",
        "filter_action[require-security].security_method[1]",
    }


def test_ikev1_with_aead_ike_proposal_can_never_match() -> None:
    d = make()
    d["rule"][0]["ike_version"] = 1
    assert codes(audit(d))["ikev1-aead"] is Severity.ERROR


def test_dns_name_and_any_any_filters() -> None:
    d = make()
    d["filter_list"][0]["filter"][0]["destination"] = "lgr-a.example.com"
    assert codes(audit(d)) == {"dns-name-filter": Severity.WARNING}
    d["filter_list"][0]["filter"][0]["source"] = "any"
    d["filter_list"][0]["filter"][0]["destination"] = "any"
    assert codes(audit(d)) == {"negotiate-any-any": Severity.WARNING}


def test_errors_sorted_first_and_exit_codes() -> None:
    d = make()
    d["policy"]["default_response_rule"] = True
    d["rule"][0]["authentication"] = [{"method": "psk", "secret_file": "k.psk"}]
    found = audit(d, {"k.psk": 0o666})
    assert found[0].severity is Severity.ERROR
    assert exit_code(found, strict=False) == 2
    warnings_only = [f for f in found if f.severity is not Severity.ERROR]
    assert exit_code(warnings_only, strict=False) == 0
    assert exit_code(warnings_only, strict=True) == 1
    assert exit_code([], strict=True) == 0


def _pair(**b_changes: Any) -> tuple[Policy, Policy]:
    a = parse_policy(make())
    d = make()
    for path, value in b_changes.items():
        node: Any = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[keys[-1]] = value
    return a, parse_policy(d)


def test_pair_agreeing_ends() -> None:
    a, b = _pair()
    assert audit_pair(a, "rtr-a-to-lgr-a", b, "rtr-a-to-lgr-a") == []


@pytest.mark.parametrize(
    ("change", "value", "code"),
    [
        (
            "key_exchange__method",
            [{"integrity": "sha384", "encryption": "aes256", "dh_group": 20}],
            "no-common-ike-proposal",
        ),
        ("filter_action__0__security_method", [{"encryption": "aes256gcm"}], "no-common-esp-proposal"),
        ("filter_action__0__pfs", True, "pfs-mismatch"),
        ("rule__0__tunnel_endpoint", "192.0.2.1", "mode-mismatch"),
        ("rule__0__authentication", [{"method": "psk", "secret_file": "x"}], "no-common-authentication"),
    ],
)
def test_pair_mismatches(change: str, value: Any, code: str) -> None:
    a, b = _pair(**{change: value})
    found = audit_pair(a, "rtr-a-to-lgr-a", b, "rtr-a-to-lgr-a")
    assert [f.code for f in found] == [code]
    assert found[0].severity is Severity.ERROR


def test_pair_action_mismatch() -> None:
    a, b = _pair(
        filter_action=[{"name": "require-security", "behavior": "permit"}],
        rule=[{"filter_list": "rtr-a-to-lgr-a", "filter_action": "require-security"}],
    )
    assert [f.code for f in audit_pair(a, "rtr-a-to-lgr-a", b, "rtr-a-to-lgr-a")] == ["action-mismatch"]


def test_conflicting_and_shadowed_filters_are_reported() -> None:
    d = make()
    d["filter_list"].append({"name": "same", "filter": [{"source": "me", "destination": "10.10.1.20"}]})
    d["filter_action"].append({"name": "block", "behavior": "block"})
    d["rule"].append({"name": "dup", "filter_list": "same", "filter_action": "block"})
    found = [f for f in audit(d) if f.code == "conflicting-filters"]
    assert found and found[0].severity is Severity.WARNING
    assert "RFC 4301" in found[0].reason
    d["rule"][-1]["filter_action"] = "require-security"
    d["rule"][-1]["authentication"] = [{"method": "kerberos"}]
    shadowed = [f for f in audit(d) if f.code == "shadowed-filter"]
    assert shadowed and "can never match" in shadowed[0].message


def test_kerberos_keytab_missing_unreadable_or_shared() -> None:
    d = make()
    d["rule"][0]["authentication"] = [{"method": "kerberos", "keytab": "host.keytab",
                                       "client_keytab": "client.keytab"}]
    assert audit(d, {"host.keytab": 0o600, "client.keytab": 0o400}) == []
    missing = audit(d, {"client.keytab": 0o600})
    assert [(f.code, f.where) for f in missing] == [
        ("file-missing", "rule[0].authentication[0].keytab")]
    assert "does not exist" in missing[0].message
    unreadable = audit(d, {"host.keytab": 0o200, "client.keytab": 0o600})
    assert [(f.code, f.severity) for f in unreadable] == [("keytab-unreadable", Severity.ERROR)]
    assert "not readable by its owner" in unreadable[0].message
    shared = audit(d, {"host.keytab": 0o600, "client.keytab": 0o644})
    assert [(f.code, f.where) for f in shared] == [
        ("file-permissions", "rule[0].authentication[0].client_keytab")]


def test_kerberos_keytab_directory_is_unreadable(tmp_path: Path) -> None:
    d = make()
    d["rule"][0]["authentication"] = [{"method": "kerberos", "keytab": str(tmp_path)}]
    found = audit_policy(parse_policy(d, source=Path("/etc/secpath/p.toml")))
    assert [f.code for f in found] == ["keytab-unreadable"]
    assert "not a regular file" in found[0].message


def test_kerberos_without_gssapi_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import secpath.policy.audit as audit_module

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gssapi" else real(name, *a))
    monkeypatch.setattr(audit_module, "kerberos_installed", audit_module.__dict__["_kerberos_probe"])
    found = audit(make())
    assert [(f.code, f.severity) for f in found] == [("kerberos-unavailable", Severity.WARNING)]
    assert "secpath[kerberos]" in found[0].reason
