"""Change schedules in the database: the waves of each scheduled change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import canonical, changes
from changegate.domain.scheduling import Wave
from changegate.errors import Conflict
from changegate.store import changes as change_store
from changegate.store.schema import change_waves as table
from changegate.store.schema import changes as changes_table
from changegate.store.schema import consents


def _wave(row: sa.Row[Any]) -> Wave:
    return Wave(
        index=row.wave,
        start=canonical.as_utc(row.start),
        end=canonical.as_utc(row.end),
        tenants=tuple(row.tenants),
        reasons=dict(row.reasons),
    )


def replace(
    conn: sa.Connection,
    number: int,
    waves: Sequence[Wave],
    *,
    scheduled_at: datetime,
    scheduled_by: str,
) -> None:
    """Store the change's waves, replacing any earlier schedule."""
    conn.execute(sa.delete(table).where(table.c.change_id == number))
    if waves:
        conn.execute(
            sa.insert(table),
            [
                {
                    "change_id": number,
                    "wave": wave.index,
                    "start": canonical.as_utc(wave.start),
                    "end": canonical.as_utc(wave.end),
                    "tenants": list(wave.tenants),
                    "reasons": {t: wave.reasons[t] for t in wave.tenants},
                    "scheduled_at": canonical.as_utc(scheduled_at),
                    "scheduled_by": scheduled_by,
                }
                for wave in waves
            ],
        )


def of_change(conn: sa.Connection, number: int) -> list[Wave]:
    """The change's waves in order; empty when it was never scheduled."""
    rows = conn.execute(
        sa.select(table).where(table.c.change_id == number).order_by(table.c.wave)
    ).all()
    return [_wave(row) for row in rows]


def booked(
    conn: sa.Connection,
    start: datetime,
    end: datetime,
    states: Sequence[changes.ChangeState],
) -> list[tuple[changes.ChangeRequest, list[Wave]]]:
    """Changes in `states` with a wave overlapping `[start, end)`, each with all its waves,
    in change id order."""
    overlapping = (
        sa.select(table.c.change_id)
        .where(table.c.start < canonical.as_utc(end), table.c.end > canonical.as_utc(start))
        .distinct()
    )
    rows = conn.execute(
        sa.select(changes_table)
        .where(
            changes_table.c.id.in_(overlapping),
            changes_table.c.state.in_([s.value for s in states]),
        )
        .order_by(changes_table.c.id)
    ).all()
    found = [change_store.from_row(row) for row in rows]
    if not found:
        return []
    waves: dict[int, list[Wave]] = {change.number: [] for change in found}
    for row in conn.execute(
        sa.select(table)
        .where(table.c.change_id.in_(list(waves)))
        .order_by(table.c.change_id, table.c.wave)
    ).all():
        waves[row.change_id].append(_wave(row))
    return [(change, waves[change.number]) for change in found]


# Any constant: the key of PostgreSQL's transaction-level advisory lock that serialises
# schedulers ("calendar" in ASCII).
CALENDAR_LOCK = 0x63616C656E646172


def lock_calendar(conn: sa.Connection) -> None:
    """Hold the calendar lock until the transaction ends, so concurrent schedulers see each
    other's bookings. SQLite's writers already hold the database's write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CALENDAR_LOCK)))


def consented_tenants(conn: sa.Connection, number: int, content_hash: str) -> set[str]:
    """The tenants whose customer approver consented to this content of the change."""
    rows = conn.execute(
        sa.select(consents.c.tenant).where(
            consents.c.change_id == number, consents.c.content_hash == content_hash
        )
    ).all()
    return {row.tenant for row in rows}


def add_consent(
    conn: sa.Connection,
    number: int,
    *,
    tenant: str,
    person: str,
    content_hash: str,
    given_at: datetime,
    comment: str,
) -> dict[str, Any]:
    """Record a consent; Conflict when this tenant already consented to this content."""
    if tenant in consented_tenants(conn, number, content_hash):
        raise Conflict(
            f"{changes.format_id(number)} already has tenant {tenant}'s consent at this content"
        )
    values = {
        "change_id": number,
        "tenant": tenant,
        "person": person,
        "content_hash": content_hash,
        "given_at": canonical.as_utc(given_at),
        "comment": comment,
    }
    conn.execute(sa.insert(consents), values)
    return {
        "change_id": changes.format_id(number),
        "tenant": tenant,
        "person": person,
        "content_hash": content_hash,
        "given_at": canonical.to_utc_text(given_at),
        "comment": comment,
    }
