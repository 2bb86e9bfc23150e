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
from changegate.store.schema import changes as changes_table
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
    config: dict[str, Any]
    reason: str | None


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
    progress: dict[str, Any] | None = None

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
            "progress": self.progress,
        }


ACTIVE = tuple(status.value for status in RolloutStatus if status.active)


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
        config=dict(row.config or {}),
        reason=row.reason,
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
        progress=dict(row.progress) if row.progress is not None else None,
    )


def create(
    conn: sa.Connection,
    number: int,
    steps: Sequence[PlannedStep],
    *,
    now: datetime,
    by: str,
    bake_seconds: int,
    config: dict[str, Any],
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
            config=config,
            reason=None,
        )
    )
    _insert_steps(conn, number, steps, now)
    found = get(conn, number)
    assert found is not None
    return found


def _insert_steps(
    conn: sa.Connection, number: int, steps: Sequence[PlannedStep], now: datetime
) -> None:
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
                "progress": None,
            }
            for step in steps
        ],
    )


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
            table.c.status.in_(ACTIVE),
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
    return _done(conn, step, _held(step), now=now, result=result, next_due=next_due)


def _done(
    conn: sa.Connection,
    step: Step,
    guard: sa.ColumnElement[bool],
    *,
    now: datetime,
    result: dict[str, Any],
    next_due: datetime,
) -> bool:
    done = conn.execute(
        sa.update(steps_table)
        .where(guard)
        .values(
            status=StepStatus.DONE.value,
            claimed_by=step.claimed_by if step.status is StepStatus.RUNNING else None,
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


def renew(conn: sa.Connection, step: Step, lease_until: datetime) -> bool:
    """Extend the lease of a step this worker still holds; False when it no longer does."""
    done = conn.execute(
        sa.update(steps_table).where(_held(step)).values(lease_until=canonical.as_utc(lease_until))
    )
    return done.rowcount == 1


def release(conn: sa.Connection, step: Step, *, error: str, retry_at: datetime) -> bool:
    """Give a claimed step back after a failure, to be retried at `retry_at`."""
    return _give_back(conn, step, until=retry_at, note=error)


def wait(
    conn: sa.Connection,
    step: Step,
    *,
    until: datetime,
    progress: dict[str, Any],
    note: str | None = None,
) -> bool:
    """Give a claimed step back to be run again at `until`, keeping its progress; False when
    the claim is no longer this worker's."""
    return _give_back(conn, step, until=until, note=note, progress=progress)


def _give_back(
    conn: sa.Connection, step: Step, *, until: datetime, note: str | None, **values: Any
) -> bool:
    done = conn.execute(
        sa.update(steps_table)
        .where(_held(step))
        .values(
            status=StepStatus.PENDING.value,
            claimed_by=None,
            lease_until=None,
            due_at=canonical.as_utc(until),
            last_error=note[:2000] if note else None,
            **values,
        )
    )
    return done.rowcount == 1


def fail(
    conn: sa.Connection,
    step: Step,
    *,
    now: datetime,
    result: dict[str, Any],
    reason: str,
    status: RolloutStatus,
    rollback: Sequence[PlannedStep],
) -> bool:
    """Record the claimed step FAILED (`step` may also be the current pending step of a
    rollout a person aborts: then it is not held), skip the forward steps left, append the
    rollback steps and move the rollout to them; False when the claim was lost."""
    guard = _held(step) if step.status is StepStatus.RUNNING else _at(step)
    done = conn.execute(
        sa.update(steps_table)
        .where(guard)
        .values(
            status=StepStatus.FAILED.value,
            lease_until=None,
            finished_at=canonical.as_utc(now),
            result=result,
        )
    )
    if done.rowcount != 1:
        return False
    conn.execute(
        sa.update(steps_table)
        .where(
            steps_table.c.change_id == step.change_number,
            steps_table.c.seq > step.seq,
            steps_table.c.status == StepStatus.PENDING.value,
        )
        .values(status=StepStatus.SKIPPED.value, finished_at=canonical.as_utc(now))
    )
    _insert_steps(conn, step.change_number, rollback, now)
    conn.execute(
        sa.update(table)
        .where(table.c.change_id == step.change_number)
        .values(status=status.value, position=rollback[0].seq, reason=reason[:4000])
    )
    return True


def _at(step: Step) -> sa.ColumnElement[bool]:
    return sa.and_(
        steps_table.c.change_id == step.change_number,
        steps_table.c.seq == step.seq,
        steps_table.c.status == step.status.value,
        steps_table.c.attempts == step.attempts,
    )


def last_seq(conn: sa.Connection, number: int) -> int:
    found = conn.execute(
        sa.select(sa.func.max(steps_table.c.seq)).where(steps_table.c.change_id == number)
    ).scalar_one()
    return int(found)


def current_step(conn: sa.Connection, number: int) -> Step | None:
    """The step at the rollout's position (None when it is past the last)."""
    found = get(conn, number)
    if found is None:
        return None
    row = conn.execute(
        sa.select(steps_table).where(
            steps_table.c.change_id == number, steps_table.c.seq == found.position
        )
    ).first()
    return _step(row, found.waves) if row is not None else None


def lock(conn: sa.Connection, number: int) -> Rollout | None:
    """The rollout, its row locked for the transaction (PostgreSQL; SQLite holds the write
    lock of a BEGIN IMMEDIATE transaction already)."""
    row = conn.execute(
        sa.select(table).where(table.c.change_id == number).with_for_update()
    ).first()
    return _rollout(row) if row is not None else None


def set_status(
    conn: sa.Connection,
    number: int,
    status: RolloutStatus,
    *,
    reason: str | None,
    now: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"status": status.value, "reason": reason}
    if status.finished:
        values["completed_at"] = canonical.as_utc(now) if now else None
    conn.execute(sa.update(table).where(table.c.change_id == number).values(**values))


def reset_step(conn: sa.Connection, step: Step, *, due_at: datetime) -> None:
    """Make the step pending again from scratch (a person resumed it): no lease, no progress."""
    conn.execute(
        sa.update(steps_table)
        .where(steps_table.c.change_id == step.change_number, steps_table.c.seq == step.seq)
        .values(
            status=StepStatus.PENDING.value,
            claimed_by=None,
            lease_until=None,
            progress=None,
            due_at=canonical.as_utc(due_at),
        )
    )


def skip_step(
    conn: sa.Connection, step: Step, *, now: datetime, result: dict[str, Any], next_due: datetime
) -> bool:
    """Record the current (not claimed) step done on a person's word (promote) and move on;
    False, with nothing changed, when a worker claimed it meanwhile."""
    return _done(conn, step, _at(step), now=now, result=result, next_due=next_due)


def changes_without_rollout(conn: sa.Connection, states: Sequence[str]) -> list[int]:
    """Numbers of changes in `states` that have no rollout yet."""
    rows = conn.execute(
        sa.select(changes_table.c.id)
        .outerjoin(table, table.c.change_id == changes_table.c.id)
        .where(changes_table.c.state.in_(states), table.c.change_id.is_(None))
        .order_by(changes_table.c.id)
    ).all()
    return [row.id for row in rows]


def list_rollouts(conn: sa.Connection, statuses: Sequence[str] = ()) -> list[Rollout]:
    query = sa.select(table).order_by(table.c.change_id)
    if statuses:
        query = query.where(table.c.status.in_(statuses))
    return [_rollout(row) for row in conn.execute(query).all()]


def complete_among(conn: sa.Connection, numbers: Sequence[int]) -> set[int]:
    """Which of these changes have a complete rollout."""
    if not numbers:
        return set()
    rows = conn.execute(
        sa.select(table.c.change_id).where(
            table.c.change_id.in_(list(numbers)),
            table.c.status == RolloutStatus.COMPLETE.value,
        )
    ).all()
    return {row.change_id for row in rows}
