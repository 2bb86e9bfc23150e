"""Rollouts and their steps in the database, and the claims workers take on them.

A claim is a guarded update: the step to claim is read with `FOR UPDATE SKIP LOCKED` on
PostgreSQL (two workers never wait on, nor take, the same step), and under SQLite's write
lock otherwise (the caller's transaction began IMMEDIATE). Completing a step is guarded by
the claimer and its attempt number, so a worker whose lease expired and whose step was
taken over cannot record it a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import canonical
from changegate.domain.rollout import PlannedStep, RolloutStatus, StepKind, StepStatus
from changegate.store.schema import rollout_steps as steps_table
from changegate.store.schema import rollouts as table


@dataclass(frozen=True, slots=True)
class Rollout:
    change_number: int
    status: RolloutStatus
    waves: int
    position: int
    bake_seconds: int
    created_at: datetime
    created_by: str
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Step:
    change_number: int
    seq: int
    wave: int
    waves: int
    kind: StepKind
    status: StepStatus
    due_at: datetime
    claimed_by: str | None
    lease_until: datetime | None
    attempts: int
    last_error: str | None
    finished_at: datetime | None
    result: dict[str, Any] | None

    @property
    def planned(self) -> PlannedStep:
        return PlannedStep(self.seq, self.wave, self.waves, self.kind)

    def as_dict(self) -> dict[str, Any]:
        def text(value: datetime | None) -> str | None:
            return canonical.to_utc_text(value) if value is not None else None

        return {
            "seq": self.seq,
            "wave": self.wave,
            "kind": self.kind.value,
            "status": self.status.value,
            "due_at": text(self.due_at),
            "claimed_by": self.claimed_by,
            "lease_until": text(self.lease_until),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "finished_at": text(self.finished_at),
            "result": self.result,
        }


def _utc(value: datetime | None) -> datetime | None:
    return canonical.as_utc(value) if value is not None else None


def _rollout(row: sa.Row[Any]) -> Rollout:
    return Rollout(
        change_number=row.change_id,
        status=RolloutStatus(row.status),
        waves=row.waves,
        position=row.position,
        bake_seconds=row.bake_seconds,
        created_at=canonical.as_utc(row.created_at),
        created_by=row.created_by,
        completed_at=_utc(row.completed_at),
    )


def _step(row: sa.Row[Any], waves: int) -> Step:
    return Step(
        change_number=row.change_id,
        seq=row.seq,
        wave=row.wave,
        waves=waves,
        kind=StepKind(row.kind),
        status=StepStatus(row.status),
        due_at=canonical.as_utc(row.due_at),
        claimed_by=row.claimed_by,
        lease_until=_utc(row.lease_until),
        attempts=row.attempts,
        last_error=row.last_error,
        finished_at=_utc(row.finished_at),
        result=dict(row.result) if row.result is not None else None,
    )


def create(
    conn: sa.Connection,
    number: int,
    steps: Sequence[PlannedStep],
    *,
    now: datetime,
    by: str,
    bake_seconds: int,
) -> Rollout:
    """Store a new rollout and its steps (the first due now)."""
    now = canonical.as_utc(now)
    waves = steps[-1].waves
    conn.execute(
        sa.insert(table).values(
            change_id=number,
            status=RolloutStatus.RUNNING.value,
            waves=waves,
            position=0,
            bake_seconds=bake_seconds,
            created_at=now,
            created_by=by,
            completed_at=None,
        )
    )
    conn.execute(
        sa.insert(steps_table),
        [
            {
                "change_id": number,
                "seq": step.seq,
                "wave": step.wave,
                "kind": step.kind.value,
                "status": StepStatus.PENDING.value,
                "due_at": now,
                "claimed_by": None,
                "lease_until": None,
                "attempts": 0,
                "last_error": None,
                "finished_at": None,
                "result": None,
            }
            for step in steps
        ],
    )
    found = get(conn, number)
    assert found is not None
    return found


def get(conn: sa.Connection, number: int) -> Rollout | None:
    row = conn.execute(sa.select(table).where(table.c.change_id == number)).first()
    return _rollout(row) if row is not None else None


def steps_of(conn: sa.Connection, number: int) -> list[Step]:
    found = get(conn, number)
    if found is None:
        return []
    rows = conn.execute(
        sa.select(steps_table).where(steps_table.c.change_id == number).order_by(steps_table.c.seq)
    ).all()
    return [_step(row, found.waves) for row in rows]


def claim_next(
    conn: sa.Connection, worker: str, now: datetime, lease_until: datetime
) -> Step | None:
    """Claim the next due step of any running rollout for `worker` until `lease_until`: a
    pending step, or a running one whose lease expired. None when nothing is due."""
    now = canonical.as_utc(now)
    query = (
        sa.select(steps_table, table.c.waves)
        .join(table, table.c.change_id == steps_table.c.change_id)
        .where(
            table.c.status == RolloutStatus.RUNNING.value,
            steps_table.c.seq == table.c.position,
            steps_table.c.due_at <= now,
            sa.or_(
                steps_table.c.status == StepStatus.PENDING.value,
                sa.and_(
                    steps_table.c.status == StepStatus.RUNNING.value,
                    sa.or_(steps_table.c.lease_until.is_(None), steps_table.c.lease_until <= now),
                ),
            ),
        )
        .order_by(steps_table.c.due_at, steps_table.c.change_id)
        .limit(1)
        .with_for_update(skip_locked=True, of=steps_table)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    attempts = row.attempts + 1
    conn.execute(
        sa.update(steps_table)
        .where(steps_table.c.change_id == row.change_id, steps_table.c.seq == row.seq)
        .values(
            status=StepStatus.RUNNING.value,
            claimed_by=worker,
            lease_until=canonical.as_utc(lease_until),
            attempts=attempts,
        )
    )
    claimed = _step(row, row.waves)
    return Step(
        **{
            **{name: getattr(claimed, name) for name in Step.__slots__},
            "status": StepStatus.RUNNING,
            "claimed_by": worker,
            "lease_until": canonical.as_utc(lease_until),
            "attempts": attempts,
        }
    )


def _held(step: Step) -> sa.ColumnElement[bool]:
    return sa.and_(
        steps_table.c.change_id == step.change_number,
        steps_table.c.seq == step.seq,
        steps_table.c.status == StepStatus.RUNNING.value,
        steps_table.c.claimed_by == step.claimed_by,
        steps_table.c.attempts == step.attempts,
    )


def finish(
    conn: sa.Connection,
    step: Step,
    *,
    now: datetime,
    result: dict[str, Any],
    next_due: datetime,
) -> bool:
    """Record the claimed step done and move its rollout to the next step (due `next_due`);
    False, changing nothing, when the claim is no longer this worker's (its lease expired
    and another worker took the step)."""
    done = conn.execute(
        sa.update(steps_table)
        .where(_held(step))
        .values(
            status=StepStatus.DONE.value,
            lease_until=None,
            finished_at=canonical.as_utc(now),
            result=result,
            last_error=None,
        )
    )
    if done.rowcount != 1:
        return False
    following = step.seq + 1
    conn.execute(
        sa.update(table).where(table.c.change_id == step.change_number).values(position=following)
    )
    conn.execute(
        sa.update(steps_table)
        .where(steps_table.c.change_id == step.change_number, steps_table.c.seq == following)
        .values(due_at=canonical.as_utc(next_due))
    )
    return True


def release(conn: sa.Connection, step: Step, *, error: str, retry_at: datetime) -> bool:
    """Give a claimed step back after a failure, to be retried at `retry_at`."""
    done = conn.execute(
        sa.update(steps_table)
        .where(_held(step))
        .values(
            status=StepStatus.PENDING.value,
            claimed_by=None,
            lease_until=None,
            last_error=error[:2000],
            due_at=canonical.as_utc(retry_at),
        )
    )
    return done.rowcount == 1


def complete(conn: sa.Connection, number: int, now: datetime) -> None:
    conn.execute(
        sa.update(table)
        .where(table.c.change_id == number)
        .values(status=RolloutStatus.COMPLETE.value, completed_at=canonical.as_utc(now))
    )
