"""Webhook deliveries and the changes webhooks filed, in the database.

A delivery is claimed by inserting its row (unique by provider and delivery id, and by provider
and body digest): the insert that wins processes it, a repeat finds the row and its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.store.schema import webhook_changes as changes_table
from changegate.store.schema import webhook_deliveries as table


@dataclass(frozen=True, slots=True)
class Delivery:
    """A recorded delivery; `status_code` and `response` are None while it is processed."""

    id: int
    provider: str
    delivery_id: str
    body_sha256: str
    event: str
    status_code: int | None
    response: dict[str, Any] | None


def _delivery(row: sa.Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        provider=row.provider,
        delivery_id=row.delivery_id,
        body_sha256=row.body_sha256,
        event=row.event,
        status_code=row.status_code,
        response=dict(row.response) if row.response is not None else None,
    )


def find(conn: sa.Connection, provider: str, delivery_id: str, body_sha256: str) -> Delivery | None:
    """The delivery recorded under this id, or with this body, if any (the first one)."""
    row = conn.execute(
        sa.select(table)
        .where(
            table.c.provider == provider,
            sa.or_(table.c.delivery_id == delivery_id, table.c.body_sha256 == body_sha256),
        )
        .order_by(table.c.id)
        .limit(1)
    ).first()
    return _delivery(row) if row is not None else None


def claim(
    conn: sa.Connection,
    *,
    provider: str,
    delivery_id: str,
    body_sha256: str,
    event: str,
    received_at: datetime,
) -> int:
    """Record a new delivery (no answer yet); IntegrityError when it is already recorded."""
    result = conn.execute(
        sa.insert(table).values(
            provider=provider,
            delivery_id=delivery_id,
            body_sha256=body_sha256,
            event=event[:64],
            received_at=received_at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def answer(conn: sa.Connection, row_id: int, status_code: int, response: dict[str, Any]) -> None:
    """Store the answer given to the delivery, for its repeats."""
    conn.execute(
        sa.update(table)
        .where(table.c.id == row_id)
        .values(status_code=status_code, response=response)
    )


def forget(conn: sa.Connection, row_id: int) -> None:
    """Drop an unanswered delivery (processing failed unexpectedly): a redelivery retries."""
    conn.execute(sa.delete(table).where(table.c.id == row_id, table.c.status_code.is_(None)))


def change_for_head(conn: sa.Connection, repository: str, head_sha: str) -> int | None:
    """The change a webhook filed (or updated) for this head commit, the latest if several."""
    return conn.execute(
        sa.select(changes_table.c.change_id)
        .where(changes_table.c.repository == repository, changes_table.c.head_sha == head_sha)
        .order_by(changes_table.c.id.desc())
        .limit(1)
    ).scalar()


def change_for_request(
    conn: sa.Connection, provider: str, repository: str, request_key: str
) -> tuple[int, str] | None:
    """The change and last head of a pull/merge request (`pr:<n>`), if one was filed."""
    row = conn.execute(
        sa.select(changes_table.c.change_id, changes_table.c.head_sha)
        .where(
            changes_table.c.provider == provider,
            changes_table.c.repository == repository,
            changes_table.c.request_key == request_key,
        )
        .order_by(changes_table.c.id.desc())
        .limit(1)
    ).first()
    return (int(row.change_id), str(row.head_sha)) if row is not None else None


def link(
    conn: sa.Connection,
    *,
    change_number: int,
    provider: str,
    repository: str,
    request_key: str,
    head_sha: str,
    at: datetime,
) -> None:
    """Remember that this request's head is (now) the content of that change."""
    conn.execute(
        sa.insert(changes_table).values(
            change_id=change_number,
            provider=provider,
            repository=repository,
            request_key=request_key[:300],
            head_sha=head_sha,
            created_at=at,
        )
    )
