"""Pagination helpers: links to the next page that keep the caller's other query parameters."""

from __future__ import annotations

from typing import Any

from fastapi import Request


def url_with(request: Request, **params: int) -> str:
    """This request's path and query with some parameters replaced (repeated ones kept)."""
    url = request.url.include_query_params(**params)
    return f"{url.path}?{url.query}"


def audit_page(request: Request, items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page of audit events with the cursor (and URL) of the next one while pages are full."""
    next_after = items[-1]["seq"] if len(items) == limit else None
    return {
        "items": items,
        "next_after_seq": next_after,
        "next": url_with(request, after_seq=next_after, limit=limit) if next_after else None,
    }
