"""Change requests in the database: thin functions over one connection (one transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import canonical, changes, validation
from changegate.errors import NotFound, StaleWrite
from changegate.store.schema import change_comments, change_targets
from changegate.store.schema import changes as table


def from_row(row: sa.Row[Any]) -> changes.ChangeRequest:
    spec = validation.validate_plain(changes.ChangeSpec, row.spec, source=f"CHG-{row.id}")
    return changes.ChangeRequest(
        number=row.id,
        spec=spec,
        requester=row.requester,
        state=changes.ChangeState(row.state),
        held_from=changes.ChangeState(row.held_from) if row.held_from else None,
        close_code=changes.CloseCode(row.close_code) if row.close_code else None,
        close_notes=row.close_notes,
        content_hash=row.content_hash,
        version=row.version,
        created_at=canonical.as_utc(row.created_at),
        updated_at=canonical.as_utc(row.updated_at),
        catalog_digest=row.catalog_digest,
    )


def _values(change: changes.ChangeRequest) -> dict[str, Any]:
    spec = change.spec
    return {
        "title": spec.title,
        "type": spec.type.value,
        "category": spec.category.value,
        "environment": spec.environment,
        "state": change.state.value,
        "held_from": change.held_from.value if change.held_from else None,
        "requester": change.requester,
        "implementer": spec.implementer,
        "spec": spec.model_dump(mode="json"),
        "close_code": change.close_code.value if change.close_code else None,
        "close_notes": change.close_notes,
        "content_hash": change.content_hash,
        "catalog_digest": change.catalog_digest,
        "version": change.version,
        "updated_at": change.updated_at,
    }


def _write_targets(conn: sa.Connection, number: int, spec: changes.ChangeSpec) -> None:
    conn.execute(sa.delete(change_targets).where(change_targets.c.change_id == number))
    rows = [
        {"change_id": number, "kind": kind, "target": target}
        for kind, ids in (
            ("tenant", spec.targets.tenants),
            ("service", spec.targets.services),
            ("cluster", spec.targets.clusters),
        )
        for target in dict.fromkeys(ids)
    ]
    if rows:
        conn.execute(sa.insert(change_targets), rows)


def insert(conn: sa.Connection, change: changes.ChangeRequest) -> changes.ChangeRequest:
    """Store a new change; its number comes from the database."""
    values = _values(change) | {"created_at": change.created_at}
    number = conn.execute(sa.insert(table).values(values).returning(table.c.id)).scalar_one()
    _write_targets(conn, number, change.spec)
    return change.evolve(number=number)


def get(conn: sa.Connection, number: int) -> changes.ChangeRequest:
    row = conn.execute(sa.select(table).where(table.c.id == number)).first()
    if row is None:
        raise NotFound(f"{changes.format_id(number)} does not exist")
    return from_row(row)


def update(conn: sa.Connection, change: changes.ChangeRequest, expected_version: int) -> None:
    """Write `change` only if the stored row still has `expected_version`.

    The guard is in SQL, so a concurrent writer that got there first makes this a no-op that
    raises StaleWrite; the caller's transaction then rolls back and nothing is half-written.
    """
    result = conn.execute(
        sa.update(table)
        .where(table.c.id == change.number, table.c.version == expected_version)
        .values(_values(change))
    )
    if result.rowcount != 1:
        current = conn.execute(
            sa.select(table.c.version).where(table.c.id == change.number)
        ).scalar_one_or_none()
        if current is None:
            raise NotFound(f"{change.id} does not exist")
        raise StaleWrite(change.id, expected_version, current)
    _write_targets(conn, change.number, change.spec)


def _filtered(query: sa.Select[Any], flt: changes.ChangeFilter) -> sa.Select[Any]:
    if flt.states:
        query = query.where(table.c.state.in_(flt.states))
    for column, value in (
        (table.c.type, flt.type),
        (table.c.category, flt.category),
        (table.c.environment, flt.environment),
        (table.c.requester, flt.requester),
    ):
        if value is not None:
            query = query.where(column == value)
    for kind, value in (("tenant", flt.tenant), ("service", flt.service), ("cluster", flt.cluster)):
        if value is not None:
            query = query.where(
                sa.exists().where(
                    change_targets.c.change_id == table.c.id,
                    change_targets.c.kind == kind,
                    change_targets.c.target == value,
                )
            )
    if flt.text:
        pattern = "%" + flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(table.c.title.ilike(pattern, escape="\\"))
    return query


def list_changes(
    conn: sa.Connection, flt: changes.ChangeFilter
) -> tuple[list[changes.ChangeRequest], int]:
    """One page of changes (newest first) and the total matching the filter."""
    total = conn.execute(_filtered(sa.select(sa.func.count()).select_from(table), flt)).scalar_one()
    rows = conn.execute(
        _filtered(sa.select(table), flt)
        .order_by(table.c.id.desc())
        .limit(flt.limit)
        .offset(flt.offset)
    ).all()
    return [from_row(row) for row in rows], int(total)


def add_comment(
    conn: sa.Connection, number: int, author: str, body: str, now: datetime
) -> dict[str, Any]:
    comment_id = conn.execute(
        sa.insert(change_comments)
        .values(change_id=number, author=author, body=body, created_at=now)
        .returning(change_comments.c.id)
    ).scalar_one()
    return {
        "id": comment_id,
        "change_id": changes.format_id(number),
        "author": author,
        "body": body,
        "created_at": now,
    }


def comments(conn: sa.Connection, number: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(change_comments)
        .where(change_comments.c.change_id == number)
        .order_by(change_comments.c.id)
    ).all()
    return [
        {
            "id": r.id,
            "change_id": changes.format_id(number),
            "author": r.author,
            "body": r.body,
            "created_at": canonical.as_utc(r.created_at),
        }
        for r in rows
    ]


def closed_successful(
    conn: sa.Connection, environment: str, *, limit: int = 10_000
) -> list[changes.ChangeRequest]:
    """Changes of an environment closed successful, newest first (promotion evidence)."""
    query = (
        sa.select(table)
        .where(table.c.environment == environment)
        .where(table.c.state == changes.ChangeState.CLOSED.value)
        .where(table.c.close_code == changes.CloseCode.SUCCESSFUL.value)
        .order_by(table.c.id.desc())
        .limit(limit)
    )
    return [from_row(row) for row in conn.execute(query)]
