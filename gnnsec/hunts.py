"""The hunting pack: ``cypher/hunts/*.cypher`` files, parsed so the CLI can list and run them.

Each file is plain Cypher that runs as is in Neo4j Browser; its header declares a name, a
description and parameters with defaults (see ``cypher/hunts/README.md``).  :meth:`Hunt.bind`
turns the literal defaults into ``$parameters`` so ``gnnsec query -p key=value`` can override them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnnsec.errors import InputError

HUNTS_DIR = Path(__file__).resolve().parent.parent / "cypher" / "hunts"

_PARAM = re.compile(r"^//\s*param:\s*(\w+)\s*=\s*(\S+)\s*(.*)$")
_FIELD = re.compile(r"^//\s*(name|description):\s*(.*)$")


@dataclass(frozen=True, slots=True)
class HuntParameter:
    name: str
    default: Any
    description: str


@dataclass(frozen=True, slots=True)
class Hunt:
    name: str
    description: str
    parameters: tuple[HuntParameter, ...]
    text: str
    path: Path

    def bind(self, overrides: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
        """The query with ``$parameters`` in place of literal defaults, and the parameter values."""
        overrides = dict(overrides or {})
        known = {p.name for p in self.parameters}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(
                f"hunt {self.name!r} has no parameter {', '.join(unknown)}; it takes: {', '.join(sorted(known))}"
            )
        values = {p.name: coerce(overrides[p.name], p.default, p.name) if p.name in overrides else p.default
                  for p in self.parameters}
        lines = []
        for line in self.text.splitlines():
            stripped = line.rstrip()
            if stripped.endswith("// @params"):
                names = [p.name for p in self.parameters if p.name != "limit"]
                line = "WITH " + ", ".join(f"${n} AS {n}" for n in names) if names else ""
            elif stripped.endswith("// @limit"):
                line = "LIMIT $limit"
            lines.append(line)
        return "\n".join(lines), values


MAX_INT_PARAMETER = 1_000_000_000
"""Whole-number parameters (limits, days, counts) must lie in [0, this]: Cypher's LIMIT and duration
arithmetic raise errors or overflow far beyond any sensible value."""


def coerce(text: str, default: Any, name: str = "value") -> Any:
    """Give a ``-p key=value`` string the type of the parameter's default, or a ``ValueError`` that says what
    the parameter takes."""
    import math

    if isinstance(default, bool):
        if text.lower() not in {"1", "true", "yes", "0", "false", "no"}:
            raise InputError(f"parameter {name} takes true or false, got {text!r}")
        return text.lower() in {"1", "true", "yes"}
    if isinstance(default, int):
        try:
            value = int(text)
        except ValueError as exc:
            raise InputError(f"parameter {name} takes a whole number, got {text!r}") from exc
        lowest = 1 if name == "limit" else 0
        if not lowest <= value <= MAX_INT_PARAMETER:
            raise InputError(f"parameter {name} takes a whole number from {lowest} to {MAX_INT_PARAMETER:,}, "
                             f"got {text!r}")
        return value
    if isinstance(default, float):
        try:
            number = float(text)
        except ValueError as exc:
            raise InputError(f"parameter {name} takes a number, got {text!r}") from exc
        if not math.isfinite(number):
            raise InputError(f"parameter {name} takes a finite number, got {text!r}")
        return number
    return text


def _literal(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    return text.strip("'\"")


def parse_hunt(path: Path) -> Hunt:
    text = path.read_text(encoding="utf-8")
    fields: dict[str, str] = {}
    params: list[HuntParameter] = []
    last_field: str | None = None
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        if match := _PARAM.match(line):
            params.append(HuntParameter(match.group(1), _literal(match.group(2)), match.group(3).strip()))
            last_field = None
        elif match := _FIELD.match(line):
            last_field = match.group(1)
            fields[last_field] = match.group(2).strip()
        elif last_field == "description":
            fields["description"] += " " + line.lstrip("/ ").strip()
    name = fields.get("name") or path.stem
    return Hunt(name, fields.get("description", ""), tuple(params), text, path)


def load_hunts(directory: Path = HUNTS_DIR) -> dict[str, Hunt]:
    """Every hunt in the pack, by name."""
    if not directory.is_dir():
        raise FileNotFoundError(f"the hunting pack is missing: {directory}")
    hunts = [parse_hunt(p) for p in sorted(directory.glob("*.cypher"))]
    return {h.name: h for h in hunts}
