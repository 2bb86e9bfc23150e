"""Configuration file formats, parsed from text: postgresql.conf, redis.conf, odoo.conf.

Pure text parsing, shared by the input adapter (files on disk, where a malformed line is an
input problem) and by the rules that find the same formats embedded in Kubernetes ConfigMaps
(where the rule reads what it can). Each parser gives the values by (lower-case) name, the
line each name is last written on, and the problems met, each with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(slots=True)
class Parsed:
    """Values by name, the line of each, and (line, message) problems."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)

    def set(self, key: str, value: str, line: int, *, join: bool = False) -> None:
        if join and key in self.values:
            self.values[key] = f"{self.values[key]}\n{value}"
        else:
            self.values[key] = value
            self.lines[key] = line


# --------------------------------------------------------------------------- postgresql.conf

_PG_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=\s*|\s+)(.*)$")
PG_INCLUDES = frozenset({"include", "include_if_exists", "include_dir"})


def _pg_value(rest: str) -> str:
    """A postgresql.conf value: quoted ('' and \\' escapes) or bare up to a comment."""
    rest = rest.strip()
    if not rest.startswith("'"):
        return rest.split("#", 1)[0].strip()
    out: list[str] = []
    index = 1
    while index < len(rest):
        char = rest[index]
        if char == "\\" and index + 1 < len(rest):
            out.append(rest[index + 1])
            index += 2
            continue
        if char == "'":
            if rest[index + 1 : index + 2] == "'":
                out.append("'")
                index += 2
                continue
            break
        out.append(char)
        index += 1
    return "".join(out)


def postgresql(text: str) -> Parsed:
    """`name = value` (or `name value`) lines; `include*` directives are not followed."""
    parsed = Parsed()
    for number, content in enumerate(text.splitlines(), start=1):
        stripped = content.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _PG_LINE.match(content)
        if match is None:
            parsed.problems.append((number, f"not a parameter line: {stripped[:80]!r}"))
            continue
        key = match.group(1).lower()
        if key not in PG_INCLUDES:
            parsed.set(key, _pg_value(match.group(3)), number)
    return parsed


# --------------------------------------------------------------------------- redis.conf

# Redis directives that may be written several times and all count.
REDIS_REPEATED = frozenset({"save", "rename-command", "user", "include", "loadmodule"})


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and text.count(text[0]) == 2:
        return text[1:-1]
    return text


def redis(text: str) -> Parsed:
    """`directive arguments` lines; repeated `save`, `user`... values joined with newlines."""
    parsed = Parsed()
    for number, content in enumerate(text.splitlines(), start=1):
        stripped = content.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(None, 1)
        key = parts[0].lower()
        value = _unquote(parts[1]) if len(parts) > 1 else ""
        parsed.set(key, value, number, join=key in REDIS_REPEATED)
    return parsed


# --------------------------------------------------------------------------- odoo.conf

_INI_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_INI_OPTION = re.compile(r"^\s*([^=:\s][^=:]*?)\s*[=:]\s?(.*)$")


def odoo(text: str) -> Parsed:
    """The [options] section, read as Odoo's ConfigParser reads it (raw values)."""
    parsed = Parsed()
    section: str | None = None
    seen_options = False
    for number, content in enumerate(text.splitlines(), start=1):
        stripped = content.strip()
        if not stripped or stripped[0] in "#;":
            continue
        header = _INI_SECTION.match(content)
        if header:
            section = header.group(1).strip()
            seen_options = seen_options or section == "options"
            continue
        option = _INI_OPTION.match(content)
        if option is None:
            parsed.problems.append((number, f"not an option line: {stripped[:80]!r}"))
        elif section is None:
            parsed.problems.append((number, "an option before any [section] header"))
        elif section == "options":
            parsed.set(option.group(1).strip().lower(), option.group(2).strip(), number)
    if not seen_options and not parsed.problems:
        parsed.problems.append((1, "no [options] section: not an odoo.conf"))
    return parsed
