"""JSON Schema (draft 2020-12) of the policy file, generated from the same
format table the loader uses (:mod:`secpath.policy.fields`)."""

from __future__ import annotations

from typing import Any

from secpath.policy.fields import AUTH_KEYS, SECTIONS, Key, Section

__all__ = ["policy_json_schema"]

_TOP = ("policy", "local", "key_exchange", "filter_list", "filter_action", "rule", "monitor")


def _key_schema(key: Key) -> dict[str, Any]:
    out: dict[str, Any] = {"description": key.help}
    if key.kind == "str":
        out["type"] = "string"
        if key.choices:
            out["enum"] = list(key.choices)
    elif key.kind == "bool":
        out["type"] = "boolean"
    elif key.kind == "int":
        out["type"] = "integer"
        if key.int_choices:
            out["enum"] = list(key.int_choices)
    elif key.kind == "str_list":
        out["type"] = "array"
        out["items"] = {"type": "string"}
    elif key.kind == "int_or_str":
        integer: dict[str, Any] = {"type": "integer"}
        if key.int_choices:
            integer["enum"] = list(key.int_choices)
        string: dict[str, Any] = {"type": "string"}
        if key.choices and key.name == "dh_group":
            string["enum"] = list(key.choices)
        out["anyOf"] = [integer, string]
    elif key.kind == "table_list":
        assert key.items is not None
        ref = "rule.authentication" if key.items == "rule.authentication" else key.items
        out["type"] = "array"
        out["items"] = {"$ref": f"#/$defs/{ref}"}
        if key.required:
            out["minItems"] = 1
    if key.minimum is not None and key.kind == "int":
        out["minimum"] = key.minimum
    if key.maximum is not None and key.kind == "int":
        out["maximum"] = key.maximum
    if key.default is not None:
        out["default"] = key.default
    return out


def _section_schema(section: Section) -> dict[str, Any]:
    return {
        "type": "object",
        "description": section.help,
        "properties": {k.name: _key_schema(k) for k in section.keys},
        "required": [k.name for k in section.keys if k.required],
        "additionalProperties": False,
    }


def policy_json_schema() -> dict[str, Any]:
    """The whole schema, ready for ``json.dumps``."""
    defs: dict[str, Any] = {name: _section_schema(sec) for name, sec in SECTIONS.items()}
    defs["rule.authentication"] = {
        "description": "One authentication method; the keys depend on 'method'.",
        "oneOf": [_section_schema(sec) for sec in AUTH_KEYS.values()],
    }
    properties: dict[str, Any] = {}
    for name in _TOP:
        sec = SECTIONS[name]
        if sec.is_list:
            properties[name] = {"type": "array", "items": {"$ref": f"#/$defs/{name}"}}
        else:
            properties[name] = {"$ref": f"#/$defs/{name}"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://secpath.invalid/schema/policy.json",
        "title": "secpath IPsec policy",
        "type": "object",
        "properties": properties,
        "required": [n for n in _TOP if SECTIONS[n].required],
        "additionalProperties": False,
        "$defs": defs,
    }
