"""/api/v1/reports: read-only reports over the stored changes.

`risk-calibration` answers what `changegate report risk-calibration --json` prints: the
period asked for and one row per risk class from the assessments service (docs/risk.md).
`retrospectives` answers what `changegate report retrospectives --json` prints: the emergency
changes' retrospectives of a listing (open, overdue or all) at an instant
(docs/retrospectives.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from changegate.api import auth, schemas
from changegate.api.problems import fields_under
from changegate.api.routes.changes import AppDep, Reading
from changegate.api.routes.retrospectives import RetrospectiveOut
from changegate.domain import canonical
from changegate.domain.retrospectives import Listing
from changegate.services import assessments as assessment_service
from changegate.services import retrospectives as retrospective_service

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], route_class=auth.PermissionRoute)


class CalibrationRowOut(BaseModel):
    """How the closed changes of one risk class ended."""

    risk_class: str = Field(description="low, medium, high, critical, then unassessed")
    changes: int
    successful: int
    with_issues: int = Field(description="successful with issues: not counted as failed")
    failed: int = Field(description="closed unsuccessful")
    failure_rate: float | None = Field(description="failed / changes; null for no change")
    with_issues_rate: float | None


class CalibrationOut(BaseModel):
    """Closed changes per risk class of their latest assessment."""

    since: str | None = Field(description="closed at or after this instant (UTC), if given")
    until: str | None = Field(description="closed before this instant (UTC), if given")
    items: list[CalibrationRowOut] = Field(
        description="always five rows: low, medium, high, critical, unassessed"
    )


@router.get(
    "/risk-calibration",
    summary="Failure rate per risk class",
    response_model=None,
    responses={200: {"model": CalibrationOut}, **schemas.problem_responses(401, 403, 422)},
)
def risk_calibration(
    ctx: Reading,
    app: AppDep,
    since: Annotated[
        datetime | None, Query(description="closed at or after this instant, with an offset")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="closed before this instant, with an offset")
    ] = None,
) -> JSONResponse:
    """For changes closed in `[since, until)`, per class of their latest assessment: how
    many there were, succeeded, succeeded with issues and failed, and the failure rate.

    The service decides what a valid period is (an offset on each instant, `until` after
    `since`) for every door; its fields are named here as the query parameters.
    """
    with fields_under("query"):
        rows = assessment_service.risk_calibration(app.engine, ctx, since=since, until=until)
    return JSONResponse(
        {
            "since": canonical.to_utc_text(since) if since else None,
            "until": canonical.to_utc_text(until) if until else None,
            "items": rows,
        }
    )


class RetrospectivesOut(BaseModel):
    """Emergency changes' retrospectives, earliest deadline first."""

    status: str = Field(description="the listing asked for: open, overdue or all")
    now: str = Field(description="the instant each item's status is told at (UTC)")
    items: list[RetrospectiveOut]


@router.get(
    "/retrospectives",
    summary="Emergency changes' retrospectives: open, overdue or all",
    response_model=None,
    responses={200: {"model": RetrospectivesOut}, **schemas.problem_responses(401, 403, 422)},
)
def retrospectives(
    ctx: Reading,
    app: AppDep,
    status: Annotated[
        Listing,
        Query(
            description="open: not yet done (overdue ones included); overdue: past their "
            "deadline and not done; all: done ones too"
        ),
    ] = Listing.OPEN,
) -> JSONResponse:
    """The retrospectives of the listing, ordered by deadline, each with its status now
    (`open`, `overdue`, `done`, `done-late`)."""
    with fields_under("query"):
        found = retrospective_service.report(app.engine, ctx, status=status)
    return JSONResponse(found.as_dict())
