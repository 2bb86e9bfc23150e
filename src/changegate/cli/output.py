"""How the CLI talks: results on stdout, notices and errors on stderr, JSON when asked.

With `--json`, stdout carries exactly one JSON document (or, for `audit export`, the export
itself) and nothing else; everything meant for a person goes to stderr. Without it, a
command's result (a table, a detail view, the new state) goes to stdout.

Rich renders tables and detail views only; markup, emoji and highlighting are off, so a
change titled "[red]x" prints as written. One-line messages are written plainly (never
wrapped), so `file:line` locations stay greppable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from changegate.domain import canonical
from changegate.errors import ChangegateError, InvalidInput, Refused, shape

# Values never to print, whatever the message: the database password, for instance.
_SECRETS: set[str] = set()


def add_secret(value: str | None) -> None:
    """Remember a value that must never appear in output (replaced by ***)."""
    if value and len(value) >= 3:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """The text with every remembered secret replaced by ***."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


def console(*, stderr: bool = False) -> Console:
    """A Rich console for tables and detail views; width from COLUMNS, else the terminal."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=False)


def json_default(value: Any) -> Any:
    """Serialise what json cannot: instants as UTC text, dates, enums, paths, sets."""
    if isinstance(value, datetime):
        return canonical.to_utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def to_json(data: Any) -> str:
    """Indented JSON text, keys in the order the domain's as_dict() gives them."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=json_default)


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(to_json(data) + "\n")
    sys.stdout.flush()


def out(text: str = "") -> None:
    """A result line on stdout, written as is."""
    sys.stdout.write(redact(text) + "\n")


def note(text: str) -> None:
    """A line for the person at the terminal, on stderr."""
    sys.stderr.write(redact(text) + "\n")


def error_lines(exc: ChangegateError) -> list[str]:
    """`error: <message>` and then each problem, override hint or detail on its own line."""
    lines = exc.message.splitlines() or [exc.message]
    if isinstance(exc, InvalidInput) and exc.problems:
        head = lines[0]
        result = [f"error: {head}"]
        if len(exc.problems) > 1 or head != str(exc.problems[0]):
            result += [f"  {problem}" for problem in exc.problems]
        return result
    result = [f"error: {lines[0]}"] + [f"  {line.strip()}" for line in lines[1:]]
    if isinstance(exc, Refused) and exc.override_by:
        result.append(f"  who may: {exc.override_by}")
    return result


def report_error(exc: ChangegateError, *, as_json: bool) -> int:
    """Print a changegate error (stderr, and JSON on stdout with --json); its exit code."""
    form = shape(exc)
    for line in error_lines(exc):
        note(line)
    if as_json:
        emit_json({"error": _scrubbed({"type": form.slug, "message": exc.message, **form.extra})})
    return form.exit_code


def report_internal(message: str, *, as_json: bool, slug: str = "internal", code: int = 4) -> int:
    """Print an unexpected failure in one short line; its exit code."""
    note(f"error: {message}")
    if as_json:
        emit_json({"error": {"type": slug, "message": redact(message)}})
    return code


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


def joined(values: Iterable[Any], empty: str = "-") -> str:
    """A short comma-separated list for a table cell."""
    text = ", ".join(str(v) for v in values)
    return text or empty


# Between two columns of a SIMPLE_HEAD table without edges: padding, divider, padding.
_GAP = 3


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its header, how far it may shrink, and how soon it is dropped.

    Columns are dropped highest `drop` first when even their minimum widths do not fit the
    terminal (0 is never dropped); a column with `min_width` shrinks (ellipsis, or folding
    when `wrap`) before any column is dropped.
    """

    header: str
    drop: int = 0
    max_width: int | None = None
    min_width: int | None = None
    wrap: bool = False
    justify: str = "left"


def fit_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> Table:
    """A Rich table whose lines are never wider than `width`: shrink, then drop columns."""
    natural = []
    for index, column in enumerate(columns):
        size = max([cell_len(column.header)] + [cell_len(row[index]) for row in rows])
        natural.append(min(size, column.max_width) if column.max_width else size)
    least = [
        min(n, c.min_width) if c.min_width else n for n, c in zip(natural, columns, strict=True)
    ]
    visible = list(range(len(columns)))

    def width_of(sizes: Sequence[int]) -> int:
        """The table width with these column sizes."""
        return sum(sizes[i] for i in visible) + _GAP * (len(visible) - 1)

    while width_of(least) > width:
        candidates = [i for i in visible if columns[i].drop > 0]
        if not candidates:
            break
        visible.remove(max(candidates, key=lambda i: (columns[i].drop, i)))
    sizes = list(natural)
    excess = width_of(sizes) - width
    # Shrink the widest shrinkable column a step at a time, so they end up balanced.
    while excess > 0:
        shrinkable = [i for i in visible if sizes[i] > least[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: sizes[i] - least[i])
        sizes[widest] -= 1
        excess -= 1
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    for i in visible:
        column = columns[i]
        table.add_column(
            column.header,
            width=max(sizes[i], 1),
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
            justify="right" if column.justify == "right" else "left",
        )
    for row in rows:
        table.add_row(*(Text(row[i]) for i in visible))
    return table


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Fit a table to the terminal (COLUMNS, else its width, else 80) and print it on stdout."""
    target = console()
    target.print(fit_table(columns, rows, target.width))
