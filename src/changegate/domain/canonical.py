"""Canonical JSON: one byte string per value, so hashes of the same content always agree."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not canonical JSON: {type(value).__name__}")


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (SQLite returns stored UTC so)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_utc_text(value: datetime) -> str:
    """An instant as ISO 8601 in UTC with a Z and microseconds, the one textual form we hash."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the form every hash is taken over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode("utf-8")


def sha256_hex(value: Any) -> str:
    """SHA-256 of the canonical JSON form of a value."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
