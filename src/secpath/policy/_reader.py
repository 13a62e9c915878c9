"""Reading TOML tables against the format table (:mod:`secpath.policy.fields`),
collecting every problem with its file, key path, value and what is accepted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from secpath.errors import LocalError
from secpath.policy.fields import SECTIONS, Key, Section

__all__ = ["MISSING", "ConfigIssue", "PolicyFileError", "TableReader", "expected_text"]

MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file."""

    file: str
    key: str
    message: str
    value: object = None
    expected: str = ""

    def __str__(self) -> str:
        text = f"{self.file}: {self.key}: {self.message}"
        if self.value is not None:
            text += f" (got {self.value!r})"
        if self.expected:
            text += f"; expected {self.expected}"
        return text


class PolicyFileError(LocalError):
    """The policy file is invalid; :attr:`issues` lists every problem."""

    def __init__(self, file: str, issues: list[ConfigIssue]) -> None:
        self.file = file
        self.issues = tuple(issues)
        lines = "\n".join(f"  {i}" for i in self.issues)
        super().__init__(f"{file}: {len(self.issues)} problem(s)\n{lines}")


def expected_text(key: Key) -> str:
    parts: list[str] = []
    if key.choices:
        parts.append(" | ".join(key.choices))
    if key.int_choices:
        parts.append(" | ".join(str(i) for i in key.int_choices))
    if not parts:
        parts.append(key.help)
    return " | ".join(parts)


class TableReader:
    """Reads TOML tables against the format table, collecting every problem."""

    def __init__(self, source: Path | None) -> None:
        self.source = source
        self.file = str(source) if source is not None else "<policy>"
        self.base = source.parent if source is not None else Path()
        self.issues: list[ConfigIssue] = []
        # names of filter lists/actions that exist but failed validation:
        # a rule referring to one is not reported a second time
        self.invalid_names: set[str] = set()

    # -- problem reporting -------------------------------------------------

    def problem(self, key: str, message: str, value: object = None, expected: str = "") -> None:
        self.issues.append(ConfigIssue(self.file, key, message, value, expected))

    # -- generic table reading --------------------------------------------

    def table(self, data: Mapping[str, Any], path: str, section: Section) -> dict[str, Any]:
        """Type-check a table against its section; unknown keys are problems.

        Returns the values that passed their type check (defaults filled in).
        """
        out: dict[str, Any] = {}
        for name in data:
            if section.key(name) is None:
                self.problem(f"{path}.{name}", "unknown key", None, "one of " + ", ".join(section.names))
        for key in section.keys:
            where = f"{path}.{key.name}"
            value = data.get(key.name, MISSING)
            if value is MISSING:
                if key.required:
                    self.problem(where, "missing", None, expected_text(key))
                elif key.default is not None:
                    out[key.name] = key.default
                continue
            checked = self.check(where, key, value)
            if checked is not MISSING:
                out[key.name] = checked
        return out

    def check(self, where: str, key: Key, value: Any) -> Any:
        kind = key.kind
        if kind == "str":
            if not isinstance(value, str):
                self.problem(where, "must be a string", value, expected_text(key))
                return MISSING
            if key.choices and value not in key.choices:
                self.problem(where, "not accepted", value, expected_text(key))
                return MISSING
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                self.problem(where, "must be true or false", value)
                return MISSING
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(where, "must be an integer", value, expected_text(key))
                return MISSING
            return self.check_int(where, key, value)
        if kind == "int_or_str":
            if isinstance(value, bool) or not isinstance(value, int | str):
                self.problem(where, "must be an integer or a string", value, expected_text(key))
                return MISSING
            return value  # the section's own code interprets it
        if kind == "str_list":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.problem(where, "must be a list of strings", value)
                return MISSING
            return value
        if kind == "table_list":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                self.problem(where, "must be an array of tables ([[...]])", None)
                return MISSING
            return value
        raise AssertionError(kind)

    def check_int(self, where: str, key: Key, value: int) -> Any:
        if key.int_choices and value not in key.int_choices:
            self.problem(where, "not accepted", value, expected_text(key))
            return MISSING
        if key.minimum is not None and value < key.minimum:
            self.problem(where, f"must be at least {key.minimum}", value)
            return MISSING
        if key.maximum is not None and value > key.maximum:
            self.problem(where, f"must be at most {key.maximum}", value)
            return MISSING
        return value

    def path_of(self, text: str) -> Path:
        p = Path(text)
        return p if p.is_absolute() else self.base / p

    # -- sections ----------------------------------------------------------

    def section(self, data: Mapping[str, Any], name: str) -> dict[str, Any]:
        raw = data.get(name, MISSING)
        sec = SECTIONS[name]
        if raw is MISSING:
            self.problem(f"[{name}]", "missing section", None, sec.help)
            return {}
        if not isinstance(raw, dict):
            self.problem(name, "must be a table", None, f"[{name}]")
            return {}
        return self.table(raw, name, sec)

    def list_of(self, raw: Any, name: str) -> list[tuple[str, dict[str, Any]]]:
        if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
            self.problem(name, "must be an array of tables", None, f"[[{name}]]")
            return []
        return [(f"{name}[{i}]", cast(dict[str, Any], v)) for i, v in enumerate(raw)]
