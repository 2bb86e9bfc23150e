"""Approvals in the database, and the change-row lock that serialises deciding on a change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from changegate.domain import approvals, canonical, changes
from changegate.errors import Conflict, NotFound
from changegate.store import changes as change_store
from changegate.store.schema import approvals as table
from changegate.store.schema import changes as changes_table


def from_row(row: sa.Row[Any]) -> approvals.Approval:
    return approvals.Approval(
        change_id=changes.format_id(row.change_id),
        person=row.person,
        content_hash=row.content_hash,
        decided_at=canonical.as_utc(row.decided_at),
        expires_at=canonical.as_utc(row.expires_at) if row.expires_at is not None else None,
        roles=tuple(row.roles),
        tenants=tuple(row.tenants),
        role=row.role,
        tenant=row.tenant,
        catalog_digest=row.catalog_digest,
        comment=row.comment,
        id=row.id,
    )


def lock_change(conn: sa.Connection, number: int) -> changes.ChangeRequest:
    """Read change `number` and lock its row until the transaction ends.

    PostgreSQL: `SELECT ... FOR UPDATE`, so deciders of one change take turns (and each sees
    what the previous one committed). SQLite renders no lock clause: its writers already
    hold the database's write lock from `BEGIN IMMEDIATE` on.
    """
    row = conn.execute(
        sa.select(changes_table).where(changes_table.c.id == number).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"{changes.format_id(number)} does not exist")
    return change_store.from_row(row)


def _values(approval: approvals.Approval) -> dict[str, Any]:
    return {
        "person": approval.person,
        "role": approval.role,
        "tenant": approval.tenant,
        "content_hash": approval.content_hash,
        "catalog_digest": approval.catalog_digest,
        "roles": list(approval.roles),
        "tenants": list(approval.tenants),
        "decided_at": canonical.as_utc(approval.decided_at),
        "expires_at": (
            canonical.as_utc(approval.expires_at) if approval.expires_at is not None else None
        ),
        "comment": approval.comment,
    }


def insert(conn: sa.Connection, number: int, approval: approvals.Approval) -> approvals.Approval:
    """Store a new approval of change `number`; returns it with its id.

    Conflict when the person already approved this content (the unique constraint on
    change, person and content hash): the caller's transaction then rolls back whole.
    """
    try:
        with conn.begin_nested():
            ident = conn.execute(
                sa.insert(table).values(change_id=number, **_values(approval)).returning(table.c.id)
            ).scalar_one()
    except sa.exc.IntegrityError:
        raise Conflict(
            f"{approval.person} already approved {changes.format_id(number)} at content "
            f"{approval.content_hash}"
        ) from None
    return approval.evolve(id=ident)


def replace(conn: sa.Connection, ident: int, approval: approvals.Approval) -> approvals.Approval:
    """Overwrite approval `ident` (an expired one) with a new approval of the same content."""
    conn.execute(sa.update(table).where(table.c.id == ident).values(_values(approval)))
    return approval.evolve(id=ident)


def find(
    conn: sa.Connection, number: int, person: str, content_hash: str
) -> approvals.Approval | None:
    """The person's approval of this content of change `number`, if any."""
    row = conn.execute(
        sa.select(table).where(
            table.c.change_id == number,
            table.c.person == person,
            table.c.content_hash == content_hash,
        )
    ).first()
    return from_row(row) if row is not None else None


def of_change(conn: sa.Connection, number: int) -> list[approvals.Approval]:
    """Every approval recorded for change `number`, oldest first."""
    rows = conn.execute(
        sa.select(table).where(table.c.change_id == number).order_by(table.c.id)
    ).all()
    return [from_row(row) for row in rows]


def of_changes(conn: sa.Connection, numbers: Sequence[int]) -> dict[int, list[approvals.Approval]]:
    """The approvals of several changes, by change number (oldest first)."""
    found: dict[int, list[approvals.Approval]] = {number: [] for number in numbers}
    if not numbers:
        return found
    rows = conn.execute(
        sa.select(table).where(table.c.change_id.in_(sorted(set(numbers)))).order_by(table.c.id)
    ).all()
    for row in rows:
        found[row.change_id].append(from_row(row))
    return found


def in_state(conn: sa.Connection, state: changes.ChangeState) -> list[changes.ChangeRequest]:
    """Every change in `state`, oldest first."""
    rows = conn.execute(
        sa.select(changes_table)
        .where(changes_table.c.state == state.value)
        .order_by(changes_table.c.id)
    ).all()
    return [change_store.from_row(row) for row in rows]
