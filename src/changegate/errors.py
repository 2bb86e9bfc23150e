"""The exception tree of changegate, and how each error leaves through the CLI and the API.

    ChangegateError                 root; never raised bare
    ├── InvalidInput                bad file, field or argument      exit 1  HTTP 422
    │   └── PayloadTooLarge         input over a size limit          exit 1  HTTP 413
    ├── NotFound                    no such change, entity, event    exit 1  HTTP 404
    ├── Refused                     a rule says no (state, policy,   exit 2  HTTP 403
    │   │                           window, permission)
    │   └── InvalidTransition       the lifecycle forbids the move   exit 2  HTTP 409
    ├── Conflict                    someone else got there first     exit 3  HTTP 409
    │   └── StaleWrite              the version carried is old       exit 3  HTTP 409/412
    ├── TemporaryError              retrying later may help          exit 4  HTTP 503
    └── PermanentError              retrying will not help           exit 5  HTTP 500

This module is a leaf: every layer, the domain included, may import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where it is (file, line, field) and what is wrong."""

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


class ChangegateError(Exception):
    """changegate could not do what was asked."""

    exit_code: int = 4
    http_status: int = 500
    slug: str = "error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__class__.__doc__ or "error").strip().splitlines()[0]
        super().__init__(self.message)

    def details(self) -> dict[str, Any]:
        """Extra members for the problem+json body and the CLI's --json output."""
        return {}


class InvalidInput(ChangegateError):
    """The input is invalid."""

    exit_code = 1
    http_status = 422
    slug = "invalid-input"

    def __init__(self, problems: Iterable[Problem] | str, message: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: list[Problem] = list(problems)
        if message is None:
            if len(self.problems) == 1:
                message = str(self.problems[0])
            else:
                lines = "\n".join(f"  {p}" for p in self.problems)
                message = f"{len(self.problems)} problems:\n{lines}"
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        return {"errors": [p.as_dict() for p in self.problems]}


class PayloadTooLarge(InvalidInput):
    """The input is larger than allowed."""

    http_status = 413
    slug = "payload-too-large"


class NotFound(ChangegateError):
    """Not found."""

    exit_code = 1
    http_status = 404
    slug = "not-found"


class Refused(ChangegateError):
    """Refused by a rule."""

    exit_code = 2
    http_status = 403
    slug = "refused"

    def __init__(self, message: str | None = None, *, override_by: str | None = None) -> None:
        super().__init__(message)
        self.override_by = override_by

    def details(self) -> dict[str, Any]:
        return {"override_by": self.override_by} if self.override_by else {}


class InvalidTransition(Refused):
    """The change's lifecycle does not allow this move."""

    http_status = 409
    slug = "invalid-transition"

    def __init__(self, change_id: str, current: str, requested: str, allowed: Sequence[str]):
        self.change_id = change_id
        self.current = current
        self.requested = requested
        self.allowed = list(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (final state)"
        super().__init__(
            f"{change_id} is {current}; it cannot move to {requested}. "
            f"Allowed next states: {allowed_text}"
        )

    def details(self) -> dict[str, Any]:
        return {"current": self.current, "requested": self.requested, "allowed": self.allowed}


class Conflict(ChangegateError):
    """Conflict with the current state of the resource."""

    exit_code = 3
    http_status = 409
    slug = "conflict"


class StaleWrite(Conflict):
    """The object changed since it was read; reload it and try again."""

    slug = "stale-write"

    def __init__(self, object_id: str, expected: int, current: int | None) -> None:
        self.object_id = object_id
        self.expected = expected
        self.current = current
        now = f"version {current}" if current is not None else "a newer version"
        super().__init__(
            f"{object_id} changed since it was read: you sent version {expected}, it is now "
            f"{now}; nothing was written. Reload it and try again"
        )

    def details(self) -> dict[str, Any]:
        return {"expected_version": self.expected, "current_version": self.current}


class TemporaryError(ChangegateError):
    """A temporary failure; retrying later may help."""

    exit_code = 4
    http_status = 503
    slug = "temporary"

    def __init__(self, message: str | None = None, *, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(ChangegateError):
    """A permanent failure; retrying will not help."""

    exit_code = 5
    http_status = 500
    slug = "permanent"


@dataclass(frozen=True, slots=True)
class ErrorShape:
    """How an error leaves a door: exit code, HTTP status, problem type slug."""

    exit_code: int
    http_status: int
    slug: str
    extra: dict[str, Any] = field(default_factory=dict)


def shape(error: BaseException) -> ErrorShape:
    """The one table mapping errors to exit codes and HTTP statuses."""
    if isinstance(error, ChangegateError):
        return ErrorShape(error.exit_code, error.http_status, error.slug, error.details())
    return ErrorShape(4, 500, "internal")
