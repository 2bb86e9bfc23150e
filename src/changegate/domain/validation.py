"""Strict validation of plain data against pydantic models, with errors as Problems.

Data from YAML or JSON is validated as JSON in strict mode: strings are accepted for
datetimes, dates and enums (as JSON has no such types), nothing else is coerced.
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
    """Validate data as strict JSON against model, raising InvalidInput with every problem."""
    try:
        return model.model_validate_json(to_json(data), strict=True)
    except ValidationError as exc:
        raise InvalidInput(
            problems_from(exc, source=source, locate=locate, prefix=prefix)
        ) from None
