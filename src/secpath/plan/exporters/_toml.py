"""A small TOML emitter for the fixed shape of a policy file (no dependency)."""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["Value", "table", "value"]

Value = str | int | bool | list[str]


def value(v: Value) -> str:
    """A TOML value: JSON's string escapes are valid TOML basic-string escapes."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(json.dumps(x) for x in v) + "]"
    return json.dumps(v)


def table(header: str, items: Mapping[str, Value | None]) -> str:
    """``[header]`` or ``[[header]]`` (pass the brackets) with its keys; ``None`` values are left out."""
    lines = [header]
    lines += [f"{k} = {value(v)}" for k, v in items.items() if v is not None]
    return "\n".join(lines) + "\n"
