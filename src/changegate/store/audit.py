"""The audit trail in the database: append under the head lock, read in sequence order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import audit, canonical
from changegate.store.schema import audit_events, audit_head, catalog_state


def append(
    conn: sa.Connection,
    *,
    occurred_at: datetime,
    actor: str,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    request_id: str | None,
) -> audit.AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Bumping the head row first takes its row lock (PostgreSQL) or the write lock (SQLite),
    so concurrent transactions append one after another and never fork the chain.
    """
    conn.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
    seq, prev_hash = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).one()
    event = audit.seal(
        audit.AuditEvent(
            seq=int(seq),
            # Microseconds survive every backend; the hash is taken over exactly this value.
            occurred_at=occurred_at.astimezone(UTC),
            actor=actor,
            actor_name=actor_name,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
            request_id=request_id,
            prev_hash=prev_hash,
        )
    )
    conn.execute(
        sa.insert(audit_events).values(
            seq=event.seq,
            occurred_at=event.occurred_at,
            actor=event.actor,
            actor_name=event.actor_name,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            before=event.before,
            after=event.after,
            request_id=event.request_id,
            prev_hash=event.prev_hash,
            hash=event.hash,
        )
    )
    conn.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(hash=event.hash))
    return event


def _from_row(row: sa.Row[Any]) -> audit.AuditEvent:
    return audit.AuditEvent(
        seq=int(row.seq),
        occurred_at=canonical.as_utc(row.occurred_at),
        actor=row.actor,
        actor_name=row.actor_name,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        before=row.before,
        after=row.after,
        request_id=row.request_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def iter_events(
    conn: sa.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    object_id: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
    batch: int = 2000,
) -> Iterator[audit.AuditEvent]:
    """Events in sequence order, read in batches so memory stays flat for any chain length."""
    last = after_seq
    yielded = 0
    while True:
        query = sa.select(audit_events).where(audit_events.c.seq > last)
        # Stored instants are UTC; SQLite compares the digits, so bounds must be UTC too.
        if since is not None:
            query = query.where(audit_events.c.occurred_at >= canonical.as_utc(since))
        if until is not None:
            query = query.where(audit_events.c.occurred_at < canonical.as_utc(until))
        if object_id is not None:
            query = query.where(audit_events.c.object_id == object_id)
        size = batch if limit is None else min(batch, limit - yielded)
        if size <= 0:
            return
        rows = conn.execute(query.order_by(audit_events.c.seq).limit(size)).all()
        if not rows:
            return
        for row in rows:
            yield _from_row(row)
        yielded += len(rows)
        last = int(rows[-1].seq)


def latest_of_objects(
    conn: sa.Connection, object_type: str, object_ids: Sequence[str]
) -> dict[str, audit.AuditEvent]:
    """The latest event of each of these objects of one type (by the indexed object id)."""
    found: dict[str, audit.AuditEvent] = {}
    wanted = sorted(set(object_ids))
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            sa.select(audit_events)
            .where(audit_events.c.object_id.in_(wanted[start : start + 500]))
            .where(audit_events.c.object_type == object_type)
            .order_by(audit_events.c.seq)
        ).all()
        for row in rows:
            found[row.object_id] = _from_row(row)
    return found


def hash_at(conn: sa.Connection, seq: int) -> str | None:
    return conn.execute(
        sa.select(audit_events.c.hash).where(audit_events.c.seq == seq)
    ).scalar_one_or_none()


def head(conn: sa.Connection) -> tuple[int, str]:
    """(count, head hash) as the head row records them."""
    seq, hash_ = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one()
    return int(seq), str(hash_)


def last_catalog(conn: sa.Connection) -> str | None:
    """The catalog digest last recorded, or None before the first load."""
    digest = conn.execute(
        sa.select(catalog_state.c.digest).where(catalog_state.c.id == 1)
    ).scalar_one_or_none()
    return digest or None


def record_catalog(conn: sa.Connection, digest: str, commit: str | None, now: datetime) -> None:
    """Remember the catalog just recorded (the row is seeded by the first migration)."""
    conn.execute(
        sa.update(catalog_state)
        .where(catalog_state.c.id == 1)
        .values(digest=digest, git_commit=commit, loaded_at=now)
    )
