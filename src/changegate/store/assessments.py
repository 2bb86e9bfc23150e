"""Risk assessments in the database, and the closed changes history and calibration read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import canonical, changes, risk
from changegate.store.schema import assessments as table
from changegate.store.schema import changes as changes_table


def from_row(row: sa.Row[Any]) -> risk.Assessment:
    return risk.Assessment(
        change_id=changes.format_id(row.change_id),
        content_hash=row.content_hash,
        catalog_digest=row.catalog_digest,
        rule_version=row.rule_version,
        policy_digest=row.policy_digest,
        score=row.score,
        risk_class=risk.RiskClass(row.risk_class),
        class_reason=row.class_reason,
        factors=tuple(
            risk.Factor(item["name"], int(item["points"]), item["reason"]) for item in row.factors
        ),
        impact=row.impact,
        inputs=row.inputs,
        id=row.id,
        created_at=canonical.as_utc(row.created_at),
        assessed_by=row.assessed_by,
    )


def insert(
    conn: sa.Connection,
    number: int,
    assessment: risk.Assessment,
    *,
    assessed_by: str,
    created_at: datetime,
) -> risk.Assessment:
    """Store an assessment of change `number`; returns it with its id, time and assessor."""
    ident = conn.execute(
        sa.insert(table)
        .values(
            change_id=number,
            created_at=canonical.as_utc(created_at),
            assessed_by=assessed_by,
            content_hash=assessment.content_hash,
            catalog_digest=assessment.catalog_digest,
            rule_version=assessment.rule_version,
            policy_digest=assessment.policy_digest,
            score=assessment.score,
            risk_class=assessment.risk_class.value,
            class_reason=assessment.class_reason,
            factors=[item.as_dict() for item in assessment.factors],
            impact=dict(assessment.impact),
            inputs=dict(assessment.inputs),
        )
        .returning(table.c.id)
    ).scalar_one()
    return assessment.evolve(
        id=ident, created_at=canonical.as_utc(created_at), assessed_by=assessed_by
    )


def latest(conn: sa.Connection, number: int) -> risk.Assessment | None:
    """The newest assessment of change `number`, or None if it was never assessed."""
    row = conn.execute(
        sa.select(table).where(table.c.change_id == number).order_by(table.c.id.desc()).limit(1)
    ).first()
    return from_row(row) if row is not None else None


def history(
    conn: sa.Connection,
    *,
    requesters: Sequence[str],
    category: changes.Category,
    since: datetime,
) -> list[risk.HistoryRecord]:
    """Changes of these requesters in the category, closed at or after `since`, oldest first.

    A closed change is final (never edited again), so its `updated_at` is when it closed.
    """
    if not requesters:
        return []
    c = changes_table.c
    rows = conn.execute(
        sa.select(c.id, c.close_code, c.spec, c.updated_at)
        .where(
            c.state == changes.ChangeState.CLOSED.value,
            c.category == category.value,
            c.requester.in_(sorted(set(requesters))),
            c.updated_at >= canonical.as_utc(since),
        )
        .order_by(c.id)
    ).all()
    return [
        risk.HistoryRecord(
            change_id=changes.format_id(row.id),
            close_code=changes.CloseCode(row.close_code),
            incidents=tuple(row.spec.get("incidents", ())),
            closed_at=canonical.as_utc(row.updated_at),
        )
        for row in rows
    ]


def calibration_samples(
    conn: sa.Connection, *, since: datetime | None = None, until: datetime | None = None
) -> list[risk.CalibrationSample]:
    """Closed changes (closed in [since, until)) with the class of their latest assessment.

    A final change cannot be assessed, so the latest assessment was made before it closed.
    """
    c = changes_table.c
    newest = (
        sa.select(sa.func.max(table.c.id))
        .where(table.c.change_id == c.id)
        .correlate(changes_table)
        .scalar_subquery()
    )
    query = (
        sa.select(c.id, c.close_code, table.c.risk_class)
        .select_from(changes_table.outerjoin(table, table.c.id == newest))
        .where(c.state == changes.ChangeState.CLOSED.value)
        .order_by(c.id)
    )
    if since is not None:
        query = query.where(c.updated_at >= canonical.as_utc(since))
    if until is not None:
        query = query.where(c.updated_at < canonical.as_utc(until))
    return [
        risk.CalibrationSample(
            change_id=changes.format_id(row.id),
            close_code=changes.CloseCode(row.close_code),
            risk_class=risk.RiskClass(row.risk_class) if row.risk_class else None,
        )
        for row in conn.execute(query).all()
    ]
