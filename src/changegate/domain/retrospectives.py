"""Retrospectives: the after-the-fact review every emergency change gets.

An emergency change is authorized by one emergency approver, fast; the CAB (by default, the
role is the ApprovalPolicy's `retrospective.role`) reviews it afterwards, within a deadline
(`retrospective.within`, 48 hours by default) counted from the moment it was authorized.
This module holds the pure rules (no I/O, no clock: `now` is an argument):

    status(record, now) -> Status
        open (not yet due), overdue (due and not done), done, done-late (done at or after
        the deadline). The deadline is half-open like every interval here: on time means
        done in [authorized_at, due_at).
    check_can_review(person, change, record, catalog, comment) -> None, or an error
        Conflict when it is done already; InvalidInput without a comment; Refused unless the
        person holds the record's role in the catalog now and is neither the change's
        requester nor its implementer (separation of duties, as for approvals).
    review(...) checks, then builds the done record.

docs/retrospectives.md describes the whole feature: when the row is written, the report,
the doors and the JSON shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from changegate.domain import canonical
from changegate.domain.catalog import Catalog
from changegate.domain.changes import ChangeRequest, ChangeState
from changegate.errors import Conflict, InvalidInput, Problem, Refused

# How many names a "who can review" list shows before "and N more".
_NAMED = 5


class Status(StrEnum):
    """Where one retrospective stands at an instant."""

    OPEN = "open"
    OVERDUE = "overdue"
    DONE = "done"
    DONE_LATE = "done-late"


class Listing(StrEnum):
    """Which retrospectives a report lists.

    `open`: every one not yet done, overdue ones included (they are still open, and listed
    first since the report is ordered by deadline); `overdue`: only those past their
    deadline; `all`: done ones too.
    """

    OPEN = "open"
    OVERDUE = "overdue"
    ALL = "all"


def listing(value: Listing | str, field: str = "status") -> Listing:
    """The listing named by `value`; InvalidInput naming `field` for anything else."""
    try:
        return Listing(value)
    except ValueError:
        allowed = ", ".join(item.value for item in Listing)
        raise InvalidInput(
            [Problem(f"{str(value)[:80]!r} is not one of: {allowed}", field=field)]
        ) from None


@dataclass(frozen=True, slots=True)
class RetrospectiveRecord:
    """One emergency change's retrospective, as stored, with what the report shows of the
    change (title, requester, state) and the instant `as_of` its status is told at."""

    change_id: str
    title: str
    requester: str
    state: ChangeState
    role: str
    authorized_at: datetime
    due_at: datetime
    as_of: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    comment: str = ""

    def evolve(self, **changes: Any) -> RetrospectiveRecord:
        return replace(self, **changes)

    @property
    def done(self) -> bool:
        return self.done_at is not None

    @property
    def status(self) -> Status:
        """The status at `as_of`."""
        return status(self, self.as_of)

    @property
    def late(self) -> bool:
        """Done at or after its deadline."""
        return self.done_at is not None and self.done_at >= self.due_at

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape shared by the API, the CLI's --json and the report."""
        return {
            "change_id": self.change_id,
            "title": self.title,
            "requester": self.requester,
            "state": self.state.value,
            "role": self.role,
            "authorized_at": canonical.to_utc_text(self.authorized_at),
            "due_at": canonical.to_utc_text(self.due_at),
            "done_at": canonical.to_utc_text(self.done_at) if self.done_at else None,
            "done_by": self.done_by,
            "comment": self.comment,
            "status": self.status.value,
        }


@dataclass(frozen=True, slots=True)
class RetrospectiveReport:
    """The retrospectives of one listing, ordered by deadline, with the instant it was made
    (the one every item's status is told at)."""

    status: Listing
    now: datetime
    items: tuple[RetrospectiveRecord, ...]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of the report (API and `--json`)."""
        return {
            "status": self.status.value,
            "now": canonical.to_utc_text(self.now),
            "items": [item.as_dict() for item in self.items],
        }


def status(record: RetrospectiveRecord, now: datetime) -> Status:
    """open, overdue, done or done-late at `now`; overdue from `due_at` on (half-open)."""
    if record.done_at is not None:
        return Status.DONE_LATE if record.done_at >= record.due_at else Status.DONE
    return Status.OVERDUE if now >= record.due_at else Status.OPEN


def _excluded(change: ChangeRequest) -> dict[str, str]:
    """Who separation of duties keeps from reviewing the change, and why."""
    excluded = {change.requester: "requester"}
    if change.spec.implementer is not None:
        excluded.setdefault(change.spec.implementer, "implementer")
    return excluded


def reviewers(catalog: Catalog, change: ChangeRequest, role: str) -> tuple[str, ...]:
    """Who may review the change's retrospective by the catalog now, in catalog order."""
    excluded = _excluded(change)
    return tuple(
        person.id
        for person in catalog.people.values()
        if person.id not in excluded and any(r.value == role for r in person.spec.roles)
    )


def _names(items: Sequence[str]) -> str:
    if not items:
        return "nobody in the catalog"
    shown = ", ".join(items[:_NAMED])
    if len(items) > _NAMED:
        shown += f" and {len(items) - _NAMED} more"
    return shown


def check_can_review(
    person: str,
    change: ChangeRequest,
    record: RetrospectiveRecord,
    catalog: Catalog,
    comment: str,
) -> None:
    """Raise unless `person` may record the retrospective of `change` now.

    Conflict when it is done already (it is done once); InvalidInput (field `comment`)
    without a comment, since the comment is the retrospective; Refused, naming who can
    review, unless the person is in the catalog, holds the record's role now, and is
    neither the requester nor the implementer of the change: an after-the-fact review is
    worth something only when it is not the authors grading their own work.
    """
    if record.change_id != change.id:
        raise ValueError(f"the retrospective of {record.change_id} is not {change.id}'s")
    if record.done_at is not None:
        raise Conflict(
            f"the retrospective of {change.id} was already done by {record.done_by} at "
            f"{canonical.to_utc_text(record.done_at)}; it is done once"
        )
    if not comment.strip():
        raise InvalidInput(
            [
                Problem(
                    "a retrospective needs a comment: what happened, and what follows",
                    field="comment",
                )
            ]
        )
    who_can = _names(reviewers(catalog, change, record.role))

    def refuse(message: str) -> Refused:
        return Refused(f"{message}. Who can review: {who_can}", override_by=who_can)

    entity = catalog.person(person)
    if entity is None:
        raise refuse(f"{person!r} is not a person in the catalog; only catalog people review")
    duty = _excluded(change).get(person)
    if duty is not None:
        raise refuse(
            f"{person} is the {duty} of {change.id}; the {duty} never reviews their own "
            "emergency change (separation of duties)"
        )
    held = sorted(r.value for r in entity.spec.roles)
    if record.role not in held:
        raise refuse(
            f"{person} (roles: {', '.join(held)}) cannot review {change.id}: its "
            f"retrospective is for the role {record.role}"
        )


def review(
    person: str,
    change: ChangeRequest,
    record: RetrospectiveRecord,
    catalog: Catalog,
    comment: str,
    *,
    now: datetime,
) -> RetrospectiveRecord:
    """Check that the person may review (`check_can_review`), then the record done by them
    at `now`, with the comment (stripped)."""
    check_can_review(person, change, record, catalog, comment)
    return record.evolve(
        done_at=now, done_by=person, comment=comment.strip(), as_of=now, state=change.state
    )
