"""Printing results: one JSON object for machines, aligned plain text for people (no colour, no TTY needed)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def emit_json(stream: Any, document: dict[str, Any] | list[Any]) -> None:
    """One JSON document (an object, or a list of them for a fleet) on one stream, keys sorted, so scripts
    can `jq` it."""
    stream.write(json.dumps(document, indent=2, sort_keys=True, default=_default) + "\n")
    stream.flush()


def emit_lines(stream: Any, lines: Iterable[str]) -> None:
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


def table(rows: Sequence[Sequence[str]], *, indent: str = "  ") -> list[str]:
    """Rows as left-aligned columns; the last column is left ragged."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(len(r) for r in rows))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def heading(text: str) -> str:
    return f"{text}\n{'-' * len(text)}"


def first_line(text: str, limit: int = 160) -> str:
    """The first line of a message, shortened for one-line displays."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
