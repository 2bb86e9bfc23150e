"""/api/v1/windows/check and /api/v1/calendar/ics: the change calendar's decision and feeds.

`windows/check` answers what `changegate windows check --json` prints: may a change touch a
tenant at an instant, which windows decided it, when it would next be allowed and who may
override. `calendar/ics` serves the iCalendar feed `changegate windows ics` writes, for one
tenant or the whole platform (docs/windows.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from changegate import bootstrap
from changegate.api import auth, schemas
from changegate.api.auth import application, requires
from changegate.api.problems import fields_under
from changegate.domain.permissions import Permission
from changegate.services import calendar as calendar_service
from changegate.services.context import Context

router = APIRouter(prefix="/api/v1", tags=["calendar"], route_class=auth.PermissionRoute)

AppDep = Annotated[bootstrap.App, Depends(application)]
Reading = Annotated[Context, Depends(requires(Permission.CATALOG_READ))]
TenantId = Annotated[str, Query(description="a catalog tenant id", max_length=128)]

ICS_MEDIA_TYPE = "text/calendar"


class WindowOccurrenceOut(BaseModel):
    """One occurrence of a window: `[start, end)` in UTC."""

    window: str = Field(description="the window's id")
    type: str | None = Field(description="allow or deny")
    purpose: str | None = Field(description="maintenance, release, freeze or blackout")
    start: str
    end: str


class CalendarDecisionOut(BaseModel):
    """May a change touch the tenant at the instant, and why."""

    tenant: str
    at: str = Field(description="the instant asked about (UTC)")
    allowed: bool
    deciding: list[WindowOccurrenceOut] = Field(description="the windows that decided it")
    exempted: list[str] = Field(
        description="the active deny windows that let this change type or category through"
    )
    next_allowed_at: str | None = Field(
        description="when blocked: the next instant it would be allowed (null if none found)"
    )
    override_by: str | None = Field(description="when blocked: the role that may override")
    reason: str


@router.get(
    "/windows/check",
    summary="May a change touch a tenant at an instant?",
    response_model=None,
    responses={
        200: {"model": CalendarDecisionOut},
        **schemas.problem_responses(401, 403, 404, 422),
    },
)
def check(
    ctx: Reading,
    app: AppDep,
    tenant: TenantId,
    at: Annotated[datetime, Query(description="the instant, with an offset")],
    change_type: Annotated[
        str | None,
        Query(alias="type", description="the change type: standard, normal or emergency"),
    ] = None,
    category: Annotated[str | None, Query(description="the change category")] = None,
) -> JSONResponse:
    """The calendar's decision, with the windows that decided it; when blocked, the next
    instant it would be allowed and the role that may override. A 200 either way: `allowed`
    says which."""
    with fields_under("query"):
        decision = calendar_service.check(
            app.catalog(), ctx, tenant, at, change_type=change_type, category=category
        )
    return JSONResponse(decision.as_dict())


@router.get(
    "/calendar/ics",
    summary="The iCalendar feed of a tenant's windows, or of the platform",
    response_class=Response,
    responses={
        200: {
            "description": "An RFC 5545 VCALENDAR, one VEVENT per window occurrence",
            "content": {ICS_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **schemas.problem_responses(401, 403, 404, 422),
    },
)
def calendar_ics(
    ctx: Reading,
    app: AppDep,
    start: Annotated[
        datetime, Query(alias="from", description="from this instant (inclusive), with an offset")
    ],
    end: Annotated[
        datetime, Query(alias="to", description="up to this instant (exclusive), with an offset")
    ],
    tenant: Annotated[
        str | None,
        Query(description="one tenant's windows (default: every window)", max_length=128),
    ] = None,
) -> Response:
    """Every occurrence meeting [from, to) of the windows that apply to the tenant (all
    windows without one), and the booked waves touching it, in UTC with stable UIDs, for
    calendar applications."""
    with fields_under("query"):
        data = calendar_service.feed(
            app.engine, app.catalog(), ctx, start=start, end=end, tenant=tenant
        )
    name = f"changegate-{tenant}.ics" if tenant else "changegate-platform.ics"
    return Response(
        content=data,
        media_type=f"{ICS_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get(
    "/calendar",
    summary="The calendar: window occurrences and booked changes",
    response_model=None,
    responses={
        200: {"description": "the items in time order"},
        **schemas.problem_responses(401, 403, 404, 422),
    },
)
def calendar_view(
    ctx: Reading,
    app: AppDep,
    start: Annotated[
        datetime, Query(alias="from", description="from this instant (inclusive), with an offset")
    ],
    end: Annotated[
        datetime, Query(alias="to", description="up to this instant (exclusive), with an offset")
    ],
    tenant: Annotated[
        str | None,
        Query(description="one tenant's windows and changes (default: all)", max_length=128),
    ] = None,
) -> JSONResponse:
    """Window occurrences and booked waves meeting [from, to), in time order (at most 366
    days); what `changegate calendar --json` prints."""
    with fields_under("query"):
        body = calendar_service.view(
            app.engine, app.catalog(), ctx, start=start, end=end, tenant=tenant
        )
    return JSONResponse(body)
