"""/api/v1/changes/{id}/schedule and /start-check: booking a change into the calendar.

`POST .../schedule` finds the earliest slots (waves) inside every affected tenant's windows,
outside freezes and clear of blocking conflicts, and moves the change Authorize ->
Scheduled (or reschedules it); `GET .../schedule` shows the waves and the conflicts they
have now; `GET .../start-check` says whether a wave may start now; `POST .../consents` records a
customer's consent to an exempted change during their freeze (docs/scheduling.md).
`changegate change schedule|start-check --json` print the same JSON.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from changegate.api import auth, schemas
from changegate.api.problems import fields_under
from changegate.api.routes.changes import (
    _WRITE_ERRORS,
    AppDep,
    ChangeId,
    IfMatch,
    Moving,
    Reading,
    canonical_id,
    expected_version,
    precondition,
)
from changegate.services import calendar as calendar_service

router = APIRouter(prefix="/api/v1/changes", tags=["schedules"], route_class=auth.PermissionRoute)

_READ_ERRORS: dict[int | str, dict[str, Any]] = {**schemas.problem_responses(401, 403, 404, 422)}


@router.post(
    "/{change_id}/schedule",
    summary="Schedule (or reschedule) a change at its earliest slots",
    response_model=None,
    responses={200: {"description": "the schedule: waves and conflicts"}, **_WRITE_ERRORS},
)
def post_schedule(
    change_id: ChangeId,
    ctx: Moving,
    app: AppDep,
    body: schemas.ScheduleIn | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Book the change's waves and move it to scheduled (it must be authorized); a
    scheduled change is rescheduled. 403 when some tenant has no slot within the horizon."""
    given = body or schemas.ScheduleIn()
    expected, from_header = expected_version(if_match, given.version)
    with precondition(from_header), fields_under("body"):
        found = calendar_service.schedule(
            app.engine,
            app.catalog(),
            ctx,
            canonical_id(change_id),
            not_before=given.not_before,
            horizon=timedelta(days=given.horizon_days) if given.horizon_days else None,
            duration=(
                timedelta(minutes=given.duration_minutes) if given.duration_minutes else None
            ),
            expected_version=expected,
            reason=given.reason,
        )
    return JSONResponse(found.as_dict())


@router.get(
    "/{change_id}/schedule",
    summary="A change's waves and their conflicts now",
    response_model=None,
    responses={200: {"description": "the schedule: waves and conflicts"}, **_READ_ERRORS},
)
def get_schedule(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """The stored waves (none before scheduling) and the conflicts they have with the other
    booked changes and with the calendar as it is now (a freeze declared since shows)."""
    found = calendar_service.schedule_of(app.engine, app.catalog(), ctx, canonical_id(change_id))
    return JSONResponse(found.as_dict())


@router.get(
    "/{change_id}/start-check",
    summary="May a wave of the change start now",
    response_model=None,
    responses={200: {"description": "the start check"}, **_READ_ERRORS},
)
def get_start_check(
    change_id: ChangeId,
    ctx: Reading,
    app: AppDep,
    wave: Annotated[int, Query(ge=1, le=10_000, description="the wave (default 1)")] = 1,
    at: Annotated[
        datetime | None, Query(description="the instant (default now), with an offset")
    ] = None,
) -> JSONResponse:
    """Whether the calendar lets the wave start at `at`: per blocked tenant the deciding
    windows, and the roles that may override (null for a blackout)."""
    with fields_under("query"):
        found = calendar_service.may_start(
            app.engine, app.catalog(), ctx, canonical_id(change_id), wave=wave, at=at
        )
    return JSONResponse(found.as_dict())


@router.post(
    "/{change_id}/consents",
    summary="A customer approver consents to an exempted change during their freeze",
    status_code=201,
    response_model=None,
    responses={201: {"description": "the consent"}, **_WRITE_ERRORS},
)
def post_consent(
    change_id: ChangeId, ctx: Reading, app: AppDep, body: schemas.ConsentIn
) -> JSONResponse:
    """Record that a customer approver of `tenant` consents to this content of the change
    running during a freeze that lets it through only with consent (`exempt.consent`)."""
    with fields_under("body"):
        given = calendar_service.consent(
            app.engine, app.catalog(), ctx, canonical_id(change_id), body.tenant, body.comment
        )
    return JSONResponse(given, status_code=201)
