"""The generated JSON Schema accepts what the loader accepts and rejects what it rejects."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from secpath.policy.schema import policy_json_schema

from .test_policy_loader import BASE, EXAMPLES


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_json_serialisable() -> None:
    json.dumps(policy_json_schema())


def test_examples_validate(validator: Any) -> None:
    for path in (EXAMPLES / "router-a.toml", EXAMPLES / "guide-profile.toml"):
        validator.validate(tomllib.loads(path.read_text()))
    validator.validate(BASE)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("policy", "nmae"), "x"),
        (("key_exchange", "method", 0, "encryption"), "des"),
        (("filter_action", 0, "behavior"), "allow"),
        (("rule", 0, "connection_type"), "wifi"),
        (("rule", 0, "authentication", 0, "method"), "ntlm"),
        (("rule", 0, "authentication", 1, "secret"), "inline"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(validator: Any, path: tuple[Any, ...], value: Any) -> None:
    d: Any = copy.deepcopy(BASE)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    assert list(validator.iter_errors(d)), path


def test_schema_covers_every_loader_key() -> None:
    from secpath.policy.fields import AUTH_KEYS, SECTIONS

    defs = policy_json_schema()["$defs"]
    for name, sec in SECTIONS.items():
        assert set(defs[name]["properties"]) == set(sec.names)
    assert len(defs["rule.authentication"]["oneOf"]) == len(AUTH_KEYS)


def test_schema_written_by_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from secpath.cli import _register, app

    _register()
    out = tmp_path / "s.json"
    result = CliRunner().invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text()) == policy_json_schema()
