"""Use cases on emergency-change retrospectives: write one when an emergency change is
authorized, review it, read it, and report the open and overdue ones.

The row is written by `on_authorized`, which `services.approvals.approve` calls inside the
transaction of the approval that authorizes the change, so the retrospective exists exactly
when `change.authorized` does. Reviewing, like approving, needs only `changes:read` of the
actor: who may review is the rule's business (`domain.retrospectives.check_can_review`:
the retrospective's role, not the requester or the implementer).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from changegate.domain import approvals, canonical, changes, retrospectives, validation
from changegate.domain import catalog as catalog_model
from changegate.domain.approvals import Requirement
from changegate.domain.changes import ChangeRequest, ChangeType
from changegate.domain.permissions import Permission
from changegate.domain.retrospectives import Listing, RetrospectiveRecord, RetrospectiveReport
from changegate.errors import NotFound
from changegate.services import audit as audit_service
from changegate.services.context import Context
from changegate.store import changes as change_store
from changegate.store import db
from changegate.store import retrospectives as retrospective_store


def on_authorized(
    conn: sa.Connection,
    ctx: Context,
    change: ChangeRequest,
    requirement: Requirement,
    authorized_at: datetime,
) -> None:
    """Called in the authorizing transaction; records the retrospective an emergency needs.

    Nothing for a change whose requirement asks for no retrospective. For one that does, the
    row is due at `approvals.retrospective_due(requirement, authorized_at)`, and
    `change.retrospective-due` is appended when the row is written. A change authorized
    again (an edit sent it back) keeps its first deadline: no new row, no new event.
    """
    due = approvals.retrospective_due(requirement, authorized_at)
    if requirement.retrospective is None or due is None:
        return
    written = retrospective_store.insert(
        conn,
        change.number,
        role=requirement.retrospective.role,
        authorized_at=authorized_at,
        due_at=due,
    )
    if not written:
        return
    audit_service.record(
        conn,
        ctx,
        "change.retrospective-due",
        "change",
        change.id,
        None,
        {
            "role": requirement.retrospective.role,
            "within_seconds": int(requirement.retrospective.within.total_seconds()),
            "authorized_at": canonical.to_utc_text(authorized_at),
            "due_at": canonical.to_utc_text(due),
        },
    )


def _missing(change: ChangeRequest) -> NotFound:
    if change.spec.type is ChangeType.EMERGENCY:
        return NotFound(
            f"{change.id} is an emergency change not authorized yet: its retrospective is "
            "recorded when it is"
        )
    return NotFound(f"{change.id} is not an emergency change awaiting a retrospective")


def get(engine: sa.Engine, ctx: Context, change_id: str) -> RetrospectiveRecord:
    """The retrospective of a change, its status told now; NotFound when it has none."""
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        found = retrospective_store.get(conn, number, as_of=ctx.now())
    if found is None:
        raise _missing(change)
    return found


def review(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    comment: str,
) -> RetrospectiveRecord:
    """Record the acting person's retrospective review of an emergency change; the record.

    One transaction: read the change and lock its retrospective, `check_can_review`
    (Conflict when done already; a comment; the role, not the requester or implementer),
    mark it done (guarded: `done_at IS NULL`) and append `change.retrospective-done` with
    the comment, when it was due and whether it came late.
    """
    ctx.actor.require(Permission.CHANGES_READ)
    validation.check_texts(comment=comment)
    number = changes.parse_id(change_id)
    with db.transaction(engine) as conn:
        change = change_store.get(conn, number)
        now = ctx.now()
        found = retrospective_store.get(conn, number, as_of=now, lock=True)
        if found is None:
            raise _missing(change)
        done = retrospectives.review(ctx.actor.id, change, found, catalog, comment, now=now)
        retrospective_store.complete(
            conn, number, done_at=now, done_by=ctx.actor.id, comment=done.comment
        )
        audit_service.record(
            conn,
            ctx,
            "change.retrospective-done",
            "change",
            change.id,
            {"status": found.status.value},
            {
                "role": done.role,
                "comment": done.comment,
                "done_at": canonical.to_utc_text(now),
                "due_at": canonical.to_utc_text(done.due_at),
                "late": done.late,
            },
        )
    return done


def report(
    engine: sa.Engine, ctx: Context, *, status: Listing | str = Listing.OPEN
) -> RetrospectiveReport:
    """The retrospectives of a listing at `ctx.now()`, earliest deadline first.

    `open` (the default): every one not yet done, overdue ones included; `overdue`: past
    their deadline and not done; `all`: done ones too. Another value is InvalidInput naming
    `status`.
    """
    ctx.actor.require(Permission.CHANGES_READ)
    which = retrospectives.listing(status)
    now = ctx.now()
    with engine.connect() as conn:
        items = retrospective_store.list_(conn, which, now)
    return RetrospectiveReport(status=which, now=now, items=tuple(items))
