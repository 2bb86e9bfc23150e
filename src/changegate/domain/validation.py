"""Strict validation of plain data against pydantic models, with errors as Problems.

Data from YAML or JSON is validated as JSON in strict mode: strings are accepted for
datetimes, dates and enums (as JSON has no such types), nothing else is coerced.

No string of validated data, key or value, may contain a NUL character: PostgreSQL text
cannot hold one, so it would be accepted on SQLite and fail on PostgreSQL. The JSON text
made for validation shows every NUL as `\\u0000`, so a single substring test per call
refuses them; the data is walked only when that test hits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from changegate.errors import InvalidInput, Problem

M = TypeVar("M", bound=BaseModel)

# Locates a field path inside a source document: (path) -> line number or None.
Locator = Callable[[tuple[str | int, ...]], int | None]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"unsupported value of type {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, default=_default, ensure_ascii=False)


NUL_MESSAGE = "NUL characters (\\0) are not allowed in text"
_NUL = "\x00"
# How json.dumps writes a NUL. Text holding a backslash then "u0000" contains it too (as
# `\\u0000`), so a hit is confirmed by walking the data.
_NUL_JSON = "\\u0000"


# A path as a chain of (parent, step) links, built in constant time per step.
_Link = tuple[Any, str | int] | None


def find_nul(data: Any) -> tuple[tuple[str | int, ...], bool] | None:
    """The path of the first string holding a NUL, in document order, and whether it is a key.

    For a key the path ends with the key itself. Iterative and linear, whatever the nesting.
    """
    stack: list[tuple[_Link, Any, bool]] = [(None, data, False)]
    while stack:
        link, value, is_key = stack.pop()
        if isinstance(value, str):
            if _NUL in value:
                return _path(link), is_key
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                stack.append(((link, key), item, False))
                stack.append(((link, key), key, True))
        elif isinstance(value, list | tuple):
            for index in range(len(value) - 1, -1, -1):
                stack.append(((link, index), value[index], False))
    return None


def _path(link: _Link) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    while link is not None:
        link, step = link
        steps.append(step)
    return tuple(reversed(steps))


def nul_problem(
    data: Any,
    *,
    source: str | None,
    locate: Locator | None = None,
    prefix: tuple[str | int, ...] = (),
) -> Problem | None:
    """A Problem naming the first string of data that holds a NUL, or None if none does."""
    found = find_nul(data)
    if found is None:
        return None
    path, is_key = found
    loc = prefix + path
    line = locate(loc) if locate else None
    shown = tuple(p.replace(_NUL, "\\0") if isinstance(p, str) else p for p in loc)
    message = NUL_MESSAGE + (" (in a key)" if is_key else "")
    return Problem(message, file=source, line=line, field=field_path(shown) or None)


def check_texts(limit: int = 100_000, **texts: str | None) -> None:
    """Free-text arguments (reasons, notes, comments): no NUL, bounded length, by field name."""
    problems = []
    for name, text in texts.items():
        if text is None:
            continue
        if _NUL in text:
            problems.append(Problem(NUL_MESSAGE, field=name))
        elif len(text) > limit:
            problems.append(Problem(f"longer than {limit:,} characters", field=name))
    if problems:
        raise InvalidInput(problems)


def field_path(loc: tuple[str | int, ...]) -> str:
    """('spec', 'contacts', 0, 'email') -> 'spec.contacts[0].email'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problems_from(
    exc: ValidationError,
    *,
    source: str | None,
    locate: Locator | None = None,
    prefix: tuple[str | int, ...] = (),
) -> list[Problem]:
    """Turn pydantic errors into Problems with file, line and a dotted field path."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(p for p in error["loc"] if isinstance(p, str | int))
        # A locator resolves as much of the path as exists, so union member names that
        # pydantic may add to loc only make the line point at the nearest real ancestor.
        line = locate(loc) if locate else None
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field is missing"
        problems.append(Problem(message, file=source, line=line, field=field_path(loc) or None))
    return problems


def validate_plain(
    model: type[M],
    data: Any,
    *,
    source: str | None,
    locate: Locator | None = None,
    prefix: tuple[str | int, ...] = (),
) -> M:
    """Validate data as strict JSON against model, raising InvalidInput with every problem.

    A NUL character anywhere in data is refused first, alone: such text cannot be stored.
    """
    text = to_json(data)
    if _NUL_JSON in text:
        nul = nul_problem(data, source=source, locate=locate, prefix=prefix)
        if nul is not None:
            raise InvalidInput([nul])
    try:
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise InvalidInput(
            problems_from(exc, source=source, locate=locate, prefix=prefix)
        ) from None
