"""Errors as RFC 9457 problem details (`application/problem+json`), one shape for every failure.

The `detail` member is exactly the message the CLI prints for the same error (`str(exc)`), and
the error's `details()` (field errors, allowed states, current version...) become extension
members. Status codes come from the one table in `changegate.errors.shape`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from changegate import errors
from changegate.domain import validation
from changegate.errors import ChangegateError, InvalidInput, Problem, Refused, StaleWrite

log = logging.getLogger("changegate.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://changegate.dev/problems/"
# RFC 9110 wants a challenge with every 401; development mode's "scheme" is the header.
CHALLENGE = 'X-Changegate-User realm="changegate"'
_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


class Unauthenticated(Refused):
    """No acting person was named."""

    http_status = 401
    slug = "unauthenticated"


class PreconditionFailed(StaleWrite):
    """The version in If-Match is not the current one; nothing was written."""

    http_status = 412
    slug = "precondition-failed"

    @classmethod
    def from_stale(cls, stale: StaleWrite) -> PreconditionFailed:
        """The same stale write, reported as a failed If-Match precondition."""
        return cls(stale.object_id, stale.expected, stale.current)


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = MEDIA_TYPE


def _title(error: BaseException) -> str:
    doc = (type(error).__doc__ or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else HTTPStatus.INTERNAL_SERVER_ERROR.phrase


def document(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem document; extension members never override the standard ones."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    for key, value in (extra or {}).items():
        if key not in _STANDARD_MEMBERS:
            body[key] = value
    return body


def from_error(
    error: ChangegateError, instance: str, headers: Mapping[str, str] | None = None
) -> ProblemResponse:
    """The problem response for a changegate error: status, slug and members from `shape`."""
    shaped = errors.shape(error)
    extra_headers = dict(headers or {})
    if isinstance(error, errors.TemporaryError):
        extra_headers.setdefault("Retry-After", str(max(1, round(error.delay))))
    return ProblemResponse(
        document(
            status=shaped.http_status,
            slug=shaped.slug,
            title=_title(error),
            detail=str(error),
            instance=instance,
            extra=shaped.extra,
        ),
        status_code=shaped.http_status,
        headers=extra_headers,
    )


def internal(instance: str, request_id: str | None) -> ProblemResponse:
    """A 500 that says nothing about the internals, only how to find the log entry."""
    shaped = errors.shape(Exception())
    detail = "an internal error occurred; it was logged"
    if request_id:
        detail += f" with request id {request_id}"
    return ProblemResponse(
        document(
            status=shaped.http_status,
            slug=shaped.slug,
            title="Internal error",
            detail=detail,
            instance=instance,
            extra={"request_id": request_id} if request_id else None,
        ),
        status_code=shaped.http_status,
    )


def invalid_json(reason: str, position: int | None = None, field: str = "body") -> Problem:
    """The one wording of a body that is not JSON: `invalid JSON: <reason> (at character N)`."""
    message = f"invalid JSON: {reason}" if reason else "invalid JSON"
    if position is not None:
        message += f" (at character {position})"
    return Problem(message, field=field)


def problems_from_validation(raw: Sequence[Any]) -> list[Problem]:
    """FastAPI's validation errors as Problems naming the HTTP field (`body.x`, `query.limit`)."""
    problems = []
    for error in raw:
        loc = tuple(part for part in error.get("loc", ()) if isinstance(part, str | int))
        kind = error.get("type", "")
        message = str(error.get("msg", "invalid"))
        if kind == "json_invalid":
            position = loc[1] if len(loc) > 1 else None
            reason = (error.get("ctx") or {}).get("error", "")
            where = validation.field_path(loc[:1]) or "body"
            problems.append(
                invalid_json(reason, position if isinstance(position, int) else None, where)
            )
            continue
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required field is missing"
        problems.append(Problem(message, field=validation.field_path(loc) or None))
    return problems


@contextmanager
def fields_under(prefix: str) -> Iterator[None]:
    """Re-raise InvalidInput with its fields named from the HTTP request (`body.targets...`).

    Services name fields relative to the change spec; over HTTP the spec is the request body,
    so `targets.tenants[0]` becomes `body.targets.tenants[0]`.
    """
    try:
        yield
    except InvalidInput as exc:
        if type(exc) is not InvalidInput:
            raise
        moved = [
            replace(p, field=f"{prefix}.{p.field}" if p.field else prefix) for p in exc.problems
        ]
        raise InvalidInput(moved) from exc


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


async def _changegate_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ChangegateError)
    if isinstance(exc, Unauthenticated):
        return from_error(exc, request.url.path, headers={"WWW-Authenticate": CHALLENGE})
    if errors.shape(exc).http_status >= 500:
        log.error(
            "%s %s failed (request id %s): %s",
            request.method,
            request.url.path,
            _request_id(request),
            exc,
        )
    return from_error(exc, request.url.path)


async def _database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    # Driver errors carry hosts and SQL: log them, answer with a retryable 503 only.
    log.warning(
        "%s %s: the database is unavailable (request id %s): %s",
        request.method,
        request.url.path,
        _request_id(request),
        exc,
    )
    error = errors.TemporaryError("the database is unavailable; retry later", delay=5)
    return from_error(error, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    return from_error(InvalidInput(problems_from_validation(exc.errors())), request.url.path)


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    path = request.url.path
    if status == 404:
        detail = f"no such resource: {path}"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {path}"
        if allowed:
            detail += f" (allowed: {allowed})"
    else:
        detail = str(exc.detail) if exc.detail else phrase
    return ProblemResponse(
        document(status=status, slug=slug, title=phrase, detail=detail, instance=path),
        status_code=status,
        headers=exc.headers,
    )


def install(app: FastAPI) -> None:
    """Register the handlers turning every error into problem+json."""
    app.add_exception_handler(ChangegateError, _changegate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sa.exc.OperationalError, _database_unavailable)


class CrashGuard:
    """Pure ASGI middleware: an unexpected exception becomes a 500 problem, logged once.

    Starlette's own last-resort handler re-raises after responding, so the server logs the
    error a second time; this guard sits inside it and ends the matter.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; turn an exception raised before the response started into a 500."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            request_id = scope.get("state", {}).get("request_id")
            log.exception(
                "unhandled error in %s %s (request id %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            await internal(str(scope.get("path", "")), request_id)(scope, receive, send)
