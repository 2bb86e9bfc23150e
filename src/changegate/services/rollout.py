"""Rollouts: start one for a change in Implementing, and run its steps one at a time.

`start` creates the rollout of a change in Implementing from its booked waves (idempotent:
a second call returns the rollout already there). `run_next` is one turn of a worker: claim
the next due step under a lease (one transaction), do its outside effect with no transaction
open (the wave's commit, found again by its trailers when a previous attempt pushed it), then
record it and its audit event in one transaction, guarded by the claim. The last step
completes the rollout and moves the change to Review through `lifecycle.apply_transition`,
in that same transaction (docs/rollout.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from changegate.adapters import git as git_adapter
from changegate.domain import catalog as catalog_model
from changegate.domain import changes, impact
from changegate.domain import rollout as plan_model
from changegate.domain.changes import ChangeRequest, ChangeState
from changegate.domain.permissions import Permission
from changegate.domain.rollout import RolloutStatus, StepKind
from changegate.errors import ChangegateError, NotFound, Refused
from changegate.services import audit as audit_service
from changegate.services import lifecycle
from changegate.services.context import Context
from changegate.store import changes as change_store
from changegate.store import db
from changegate.store import rollouts as rollout_store
from changegate.store import schedules as schedule_store

DEFAULT_LEASE = timedelta(seconds=60)
RETRY_AFTER = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class RolloutView:
    """A rollout and its steps, as `rollout status` and the API show it."""

    change_id: str
    rollout: rollout_store.Rollout
    steps: tuple[rollout_store.Step, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "status": self.rollout.status.value,
            "waves": self.rollout.waves,
            "position": self.rollout.position,
            "bake_seconds": self.rollout.bake_seconds,
            "steps": [step.as_dict() for step in self.steps],
        }


@dataclass(frozen=True, slots=True)
class GitTarget:
    """Where the waves are committed: a clone of the GitOps repository and its branch."""

    clone: git_adapter.Clone
    branch: str = "main"


@dataclass(frozen=True, slots=True)
class Turn:
    """What one worker turn did: `done`, `retry` (the effect failed; released), or `lost`
    (the lease expired and another worker took the step; nothing recorded)."""

    change_id: str
    wave: int
    waves: int
    kind: StepKind
    outcome: str
    detail: dict[str, Any]


def _view(conn: sa.Connection, number: int) -> RolloutView | None:
    found = rollout_store.get(conn, number)
    if found is None:
        return None
    steps = tuple(rollout_store.steps_of(conn, number))
    return RolloutView(changes.format_id(number), found, steps)


def start(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    *,
    bake: timedelta = timedelta(0),
) -> RolloutView:
    """The rollout of a change in Implementing, created from its booked waves (a change with
    none is one wave of all its tenants); the existing one when it was started before."""
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    number = changes.parse_id(change_id)
    with db.transaction(engine) as conn:
        existing = _view(conn, number)
        if existing is not None:
            return existing
        change = change_store.get(conn, number)
        if change.state is not ChangeState.IMPLEMENTING:
            raise Refused(
                f"{change.id} is {change.state.value}: a rollout starts when it is implementing"
            )
        waves = schedule_store.of_change(conn, number)
        count = len(waves) if waves else 1
        steps = plan_model.plan(count)
        bake_seconds = int(bake.total_seconds())
        rollout_store.create(
            conn, number, steps, now=ctx.now(), by=ctx.actor.id, bake_seconds=bake_seconds
        )
        audit_service.record(
            conn,
            ctx,
            "rollout.started",
            "change",
            change.id,
            None,
            {"waves": count, "steps": len(steps), "bake_seconds": bake_seconds},
        )
        view = _view(conn, number)
        assert view is not None
        return view


def status(engine: sa.Engine, ctx: Context, change_id: str) -> RolloutView:
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        found = _view(conn, number)
    if found is None:
        raise NotFound(f"{changes.format_id(number)} has no rollout")
    return found


def _wave_tenants(
    conn: sa.Connection, catalog: catalog_model.Catalog, change: ChangeRequest, wave: int
) -> tuple[str, ...]:
    waves = schedule_store.of_change(conn, change.number)
    if waves:
        return waves[wave - 1].tenants
    return tuple(impact.analyze(catalog, change.spec).tenants)


def _commit(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    step: rollout_store.Step,
    target: GitTarget,
) -> dict[str, Any]:
    with engine.connect() as conn:
        change = change_store.get(conn, step.change_number)
        tenants = _wave_tenants(conn, catalog, change, step.wave)
    images = [image.model_dump(mode="json") for image in change.spec.artifacts.images]
    document = plan_model.wave_document(change.id, step.wave, step.waves, tenants, images)
    content = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    path = plan_model.wave_path(change.id, step.wave)
    message = plan_model.commit_message(
        change.id, change.spec.title, step.wave, step.waves, len(tenants)
    )
    pushed = target.clone.commit_file(
        target.branch,
        path,
        content,
        message,
        trailers=plan_model.trailers(change.id, step.wave, step.waves),
    )
    return {
        "commit": pushed.sha,
        "created": pushed.created,
        "branch": target.branch,
        "path": path,
        "tenants": len(tenants),
    }


def _effect(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    step: rollout_store.Step,
    target: GitTarget,
    bake_seconds: int,
) -> dict[str, Any]:
    if step.kind is StepKind.COMMIT:
        return _commit(engine, catalog, step, target)
    if step.kind is StepKind.SYNC:
        # Until the sync/health port exists (Argo CD, kubectl): succeeds at once, and says so.
        return {"placeholder": True, "synced": True, "healthy": True}
    return {"baked_seconds": bake_seconds}


def run_next(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    target: GitTarget,
    *,
    worker: str,
    lease: timedelta = DEFAULT_LEASE,
    retry_after: timedelta = RETRY_AFTER,
) -> Turn | None:
    """Claim, run and record one due step; None when no step is due."""
    with db.transaction(engine) as conn:
        now = ctx.now()
        step = rollout_store.claim_next(conn, worker, now, now + lease)
        if step is None:
            return None
        found = rollout_store.get(conn, step.change_number)
        assert found is not None
        bake_seconds = found.bake_seconds
    change_id = changes.format_id(step.change_number)
    try:
        result = _effect(engine, catalog, step, target, bake_seconds)
    except (ChangegateError, git_adapter.PushRejected) as exc:
        with db.transaction(engine) as conn:
            rollout_store.release(conn, step, error=str(exc), retry_at=ctx.now() + retry_after)
        return Turn(change_id, step.wave, step.waves, step.kind, "retry", {"error": str(exc)})
    with db.transaction(engine) as conn:
        now = ctx.now()
        following = plan_model.due_after(step.planned, now, timedelta(seconds=bake_seconds))
        if not rollout_store.finish(conn, step, now=now, result=result, next_due=following):
            return Turn(change_id, step.wave, step.waves, step.kind, "lost", result)
        audit_service.record(
            conn,
            ctx,
            f"rollout.{step.kind.value}",
            "change",
            change_id,
            None,
            {
                "wave": step.wave,
                "waves": step.waves,
                "step": step.kind.value,
                "attempt": step.attempts,
                "worker": worker,
                "result": result,
            },
        )
        if step.seq == len(plan_model.plan(step.waves)) - 1:
            _complete(conn, catalog, ctx, step)
    return Turn(change_id, step.wave, step.waves, step.kind, "done", result)


def _complete(
    conn: sa.Connection, catalog: catalog_model.Catalog, ctx: Context, step: rollout_store.Step
) -> None:
    """The last step is done: the rollout is complete and the change moves to Review."""
    now = ctx.now()
    rollout_store.complete(conn, step.change_number, now)
    change = change_store.get(conn, step.change_number)
    audit_service.record(
        conn,
        ctx,
        "rollout.completed",
        "change",
        change.id,
        {"status": RolloutStatus.RUNNING.value},
        {"status": RolloutStatus.COMPLETE.value, "waves": step.waves},
    )
    if change.state is ChangeState.IMPLEMENTING:
        lifecycle.apply_transition(
            conn,
            catalog,
            ctx,
            change,
            ChangeState.REVIEW,
            reason=f"rollout complete: {step.waves} wave(s) committed, synced and baked",
        )
