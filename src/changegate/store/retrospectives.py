"""Retrospectives of emergency changes in the database: one row per change, done once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from changegate.domain import canonical, changes
from changegate.domain.retrospectives import Listing, RetrospectiveRecord
from changegate.errors import Conflict
from changegate.store.schema import changes as changes_table
from changegate.store.schema import retrospectives as table


def from_row(row: sa.Row[Any], as_of: datetime) -> RetrospectiveRecord:
    """A record from a row of `_joined()`, its status told at `as_of`."""
    return RetrospectiveRecord(
        change_id=changes.format_id(row.change_id),
        title=row.title,
        requester=row.requester,
        state=changes.ChangeState(row.state),
        role=row.role,
        authorized_at=canonical.as_utc(row.authorized_at),
        due_at=canonical.as_utc(row.due_at),
        as_of=canonical.as_utc(as_of),
        done_at=canonical.as_utc(row.done_at) if row.done_at is not None else None,
        done_by=row.done_by,
        comment=row.comment,
    )


def _joined() -> sa.Select[Any]:
    return sa.select(
        table, changes_table.c.title, changes_table.c.requester, changes_table.c.state
    ).join(changes_table, changes_table.c.id == table.c.change_id)


def insert(
    conn: sa.Connection, number: int, *, role: str, authorized_at: datetime, due_at: datetime
) -> bool:
    """Write the retrospective of change `number` unless it has one; True when written.

    Idempotent on purpose: an emergency change authorized again (after an edit sent it back)
    keeps the deadline of its first authorization.
    """
    values = {
        "change_id": number,
        "role": role,
        "authorized_at": canonical.as_utc(authorized_at),
        "due_at": canonical.as_utc(due_at),
        "comment": "",
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=[table.c.change_id])
        .returning(table.c.change_id)
    )
    # A row back means it was written (rowcount is not reliable for this on every driver).
    return conn.execute(statement).first() is not None


def get(
    conn: sa.Connection, number: int, *, as_of: datetime, lock: bool = False
) -> RetrospectiveRecord | None:
    """The retrospective of change `number`, or None when it has none.

    `lock` reads it `FOR UPDATE` (PostgreSQL; SQLite writers already hold the write lock).
    """
    query = _joined().where(table.c.change_id == number)
    if lock:
        query = query.with_for_update(of=table)
    row = conn.execute(query).first()
    return from_row(row, as_of) if row is not None else None


def complete(
    conn: sa.Connection, number: int, *, done_at: datetime, done_by: str, comment: str
) -> None:
    """Mark the retrospective of change `number` done; Conflict when it already is.

    Guarded in SQL (`WHERE done_at IS NULL`) as well as in code: of two concurrent reviews,
    the second updates no row.
    """
    result = conn.execute(
        sa.update(table)
        .where(table.c.change_id == number, table.c.done_at.is_(None))
        .values(done_at=canonical.as_utc(done_at), done_by=done_by, comment=comment)
    )
    if result.rowcount != 1:
        raise Conflict(
            f"the retrospective of {changes.format_id(number)} was already done; it is done once"
        )


def list_(
    conn: sa.Connection,
    which: Listing,
    now: datetime,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[RetrospectiveRecord]:
    """The retrospectives `which` selects at `now`, earliest deadline first."""
    query = _joined()
    if which is not Listing.ALL:
        query = query.where(table.c.done_at.is_(None))
    if which is Listing.OVERDUE:
        query = query.where(table.c.due_at <= canonical.as_utc(now))
    query = query.order_by(table.c.due_at, table.c.change_id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [from_row(row, now) for row in conn.execute(query).all()]
