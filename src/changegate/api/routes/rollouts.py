"""/api/v1 rollouts: see, start and steer the rollout that carries a change wave by wave.

- `GET /changes/{id}/rollout`: the rollout and its steps, `changes:read`,
- `GET /rollouts` (`status`, repeatable): every rollout, one line each, `changes:read`,
- `POST /changes/{id}/rollout` `{bake?: "10m"}`: start it (201; 200 with the rollout already
  there, whose bake stays as it was), `changes:transition`,
- `POST /changes/{id}/rollout/{action}` `{reason}`, action one of pause, resume, abort,
  promote: a person steers it, `rollouts:control` (the requester may not resume or promote).

The worker (`changegate worker`, or the one `serve` embeds) runs the steps; these routes only
read and write the rollout's rows, through `services.rollout`. Bodies are what
`changegate rollout ... --json` prints (docs/rollout.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from changegate.api import auth, schemas
from changegate.api.auth import requires
from changegate.api.problems import fields_under
from changegate.api.routes.changes import AppDep, ChangeId, Moving, Reading, canonical_id
from changegate.domain import canonical, changes, godurations
from changegate.domain import catalog as catalog_model
from changegate.domain.permissions import Permission
from changegate.domain.rollout import Action, RolloutStatus
from changegate.errors import InvalidInput, NotFound, Problem
from changegate.services import rollout as rollout_service
from changegate.services.context import Context
from changegate.store import rollouts as rollout_store

router = APIRouter(prefix="/api/v1", tags=["rollouts"], route_class=auth.PermissionRoute)

Controlling = Annotated[Context, Depends(requires(Permission.ROLLOUTS_CONTROL))]
ActionName = Annotated[Action, Path(description="pause, resume, abort or promote")]

# A bake longer than a week is a mistake, not a plan (a paused rollout waits without one).
MAX_BAKE = timedelta(days=7)
MAX_REASON = 2_000


class StartIn(BaseModel):
    """The optional body of POST /changes/{id}/rollout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bake: StrictStr | None = Field(
        default=None,
        max_length=64,
        description="how long each wave runs before the next starts, a Go duration (`10m`, "
        "`1h30m`); default: the catalog GitOpsRepository's `rollout.bake`",
        examples=["10m"],
    )


class ControlIn(BaseModel):
    """The body of POST /changes/{id}/rollout/{action}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: StrictStr = Field(
        max_length=MAX_REASON, description="why; recorded in the audit trail (not blank)"
    )


class StepOut(BaseModel):
    """One step of a rollout."""

    seq: int
    wave: int
    kind: str = Field(description="gate, backup, commit, sync, verify, bake; revert, ...")
    status: str = Field(description="pending, running, done, failed, skipped")
    due_at: str | None
    claimed_by: str | None
    lease_until: str | None
    attempts: int
    last_error: str | None = Field(description="the last error, or a waiting step's note")
    finished_at: str | None
    result: dict[str, Any] | None
    progress: dict[str, Any] | None


class RolloutOut(BaseModel):
    """A rollout and its steps (`changegate rollout status --json`)."""

    change_id: str
    status: str = Field(description="running, paused, rolling-back, complete, failed, aborted")
    reason: str | None = Field(description="why it is paused, or why it rolled back")
    waves: int
    position: int = Field(description="the seq of the current step")
    current: str | None = Field(examples=["wave 1/3 bake"])
    bake_seconds: int
    config: dict[str, Any] = Field(description="the delivery settings frozen at the start")
    steps: list[StepOut]


class RolloutLine(BaseModel):
    """One rollout in the list (no steps)."""

    change_id: str
    status: str
    reason: str | None
    waves: int
    position: int
    bake_seconds: int
    created_at: str
    created_by: str
    completed_at: str | None


class RolloutList(BaseModel):
    """Rollouts, by change."""

    items: list[RolloutLine]


def rollout_line(rollout: rollout_store.Rollout) -> dict[str, Any]:
    """One item of GET /rollouts (and of `changegate rollout list --json`)."""
    completed = rollout.completed_at
    return {
        "change_id": changes.format_id(rollout.change_number),
        "status": rollout.status.value,
        "reason": rollout.reason,
        "waves": rollout.waves,
        "position": rollout.position,
        "bake_seconds": rollout.bake_seconds,
        "created_at": canonical.to_utc_text(rollout.created_at),
        "created_by": rollout.created_by,
        "completed_at": canonical.to_utc_text(completed) if completed is not None else None,
    }


def parse_bake(text: str, *, field: str) -> timedelta:
    """A bake time from a Go duration (`10m`, `1h30m`, `0s`): whole seconds, 0 to 7 days."""
    nanos = godurations.nanoseconds(text) if text.strip() else None
    why = None
    if nanos is None:
        why = f"{text!r} is not a duration: write it as Go does, e.g. 10m, 1h30m, 90s"
    elif nanos < 0:
        why = f"{text!r} is negative: a bake is 0s or longer"
    elif nanos % 10**9:
        why = f"{text!r} is not a whole number of seconds"
    elif nanos > MAX_BAKE.total_seconds() * 10**9:
        why = f"{text!r} is longer than {int(MAX_BAKE.total_seconds() // 3600)}h"
    if why is not None:
        raise InvalidInput([Problem(why, field=field)])
    assert nanos is not None
    return timedelta(seconds=int(nanos // 10**9))


def start(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    bake: timedelta | None,
) -> tuple[rollout_service.RolloutView, bool]:
    """Start the change's rollout (the one already there, if any); whether it was made now.

    Both doors answer the same: the API with 201 or 200, the CLI with `started` or `already`.
    """
    try:
        rollout_service.status(engine, ctx, change_id)
        existed = True
    except NotFound:
        existed = False
    view = rollout_service.start(engine, catalog, ctx, change_id, bake=bake)
    return view, not existed


def statuses_of(given: list[RolloutStatus] | None) -> tuple[str, ...]:
    """The status filter, each once."""
    return tuple(dict.fromkeys(status.value for status in given or ()))


_READ_ERRORS = schemas.problem_responses(401, 403, 404, 422)
_WRITE_ERRORS = schemas.problem_responses(401, 403, 404, 413, 422)


@router.get(
    "/changes/{change_id}/rollout",
    summary="A change's rollout and its steps",
    response_model=None,
    responses={200: {"model": RolloutOut}, **_READ_ERRORS},
)
def get_rollout(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """Status, reason, the current step and every step (404 before it is started)."""
    view = rollout_service.status(app.engine, ctx, canonical_id(change_id))
    return JSONResponse(view.as_dict())


@router.get(
    "/rollouts",
    summary="Rollouts, by change",
    response_model=None,
    responses={200: {"model": RolloutList}, **schemas.problem_responses(401, 403, 422)},
)
def list_rollouts(
    ctx: Reading,
    app: AppDep,
    status: Annotated[list[RolloutStatus] | None, Query(description="repeatable")] = None,
) -> JSONResponse:
    """Every rollout (of the given statuses), oldest change first, without its steps."""
    found = rollout_service.list_rollouts(app.engine, ctx, statuses=statuses_of(status))
    return JSONResponse({"items": [rollout_line(rollout) for rollout in found]})


@router.post(
    "/changes/{change_id}/rollout",
    summary="Start a change's rollout",
    status_code=201,
    response_model=None,
    responses={
        200: {"model": RolloutOut, "description": "it was started before; nothing changed"},
        201: {"model": RolloutOut},
        **_WRITE_ERRORS,
    },
)
def post_rollout(
    change_id: ChangeId, ctx: Moving, app: AppDep, body: StartIn | None = None
) -> JSONResponse:
    """Create the rollout of a change in implementing from its booked waves (a worker then
    runs it); 403 in any other state."""
    with fields_under("body"):
        bake = parse_bake(body.bake, field="bake") if body and body.bake is not None else None
    view, created = start(app.engine, app.catalog(), ctx, canonical_id(change_id), bake)
    return JSONResponse(view.as_dict(), status_code=201 if created else 200)


@router.post(
    "/changes/{change_id}/rollout/{action}",
    summary="Pause, resume, abort or promote a change's rollout",
    response_model=None,
    responses={200: {"model": RolloutOut}, **_WRITE_ERRORS},
)
def post_control(
    change_id: ChangeId, action: ActionName, ctx: Controlling, app: AppDep, body: ControlIn
) -> JSONResponse:
    """pause: stop claiming steps; resume: run the current step again; abort: roll back as a
    failure would; promote: skip a bake or accept a verification. The requester may not
    resume or promote (403), nor may anyone do what the rollout's status does not allow."""
    number = canonical_id(change_id)
    with fields_under("body"):
        view = rollout_service.control(
            app.engine, app.catalog(), ctx, number, action, reason=body.reason
        )
    return JSONResponse(view.as_dict())
