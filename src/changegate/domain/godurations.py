"""Go's duration strings (`1h30m`, `1.5h`, `500ms`, `90s`), as Argo CD and Argo Rollouts write
them: one exact parser for both (the Argo CD sync-window import and analysis templates)."""

from __future__ import annotations

import re
from fractions import Fraction

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def nanoseconds(text: str) -> Fraction | None:
    """The signed length of a Go duration in nanoseconds, exactly; None when it is not one.

    `0` alone is zero (Go allows it without a unit); a leading `+` or `-` is the sign.
    """
    body = text.strip()
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return Fraction(0)
    position, nanos = 0, Fraction(0)
    while position < len(body):
        found = _PART.match(body, position)
        if found is None:
            return None
        nanos += Fraction(found[1]) * _NANOS[found[2]]
        position = found.end()
    return sign * nanos if body else None
