"""/api/v1/audit: read, verify and export the hash-chained audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from changegate import bootstrap
from changegate.api import auth, pages, schemas
from changegate.api.auth import application, requires
from changegate.api.problems import fields_under
from changegate.domain.permissions import Permission
from changegate.services import audit as audit_service
from changegate.services.context import Context

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=auth.PermissionRoute)

AppDep = Annotated[bootstrap.App, Depends(application)]
Auditing = Annotated[Context, Depends(requires(Permission.AUDIT_READ))]

EXPORT_MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
_ERRORS = schemas.problem_responses(401, 403, 422)


@router.get(
    "",
    summary="A page of audit events",
    response_model=None,
    responses={200: {"model": schemas.AuditPage}, **_ERRORS},
)
def events(
    request: Request,
    ctx: Auditing,
    app: AppDep,
    after_seq: Annotated[int, Query(ge=0, le=2**62, description="events after this one")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Events in sequence order, starting after `after_seq`."""
    found = audit_service.events(app.engine, ctx, after_seq=after_seq, limit=limit)
    return JSONResponse(pages.audit_page(request, [e.as_dict() for e in found], limit))


@router.get(
    "/verify",
    summary="Verify the audit chain",
    response_model=None,
    responses={200: {"model": schemas.ChainReportOut}, **_ERRORS},
)
def verify(ctx: Auditing, app: AppDep) -> JSONResponse:
    """Walk the whole chain and report the first event that breaks it, if any."""
    return JSONResponse(audit_service.verify(app.engine, ctx).as_dict())


@router.get(
    "/export",
    summary="Export audit events of a period",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON lines or CSV, streamed",
            "content": {media: {} for media in EXPORT_MEDIA_TYPES.values()},
        },
        **_ERRORS,
    },
)
def export(
    ctx: Auditing,
    app: AppDep,
    since: Annotated[datetime | None, Query(description="from this instant (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="to this instant (exclusive)")] = None,
    fmt: Annotated[Literal["jsonl", "csv"], Query(alias="format")] = "jsonl",
) -> StreamingResponse:
    """The events of `[since, until)` as JSON lines or CSV; the export itself is audited.

    The service decides what a valid period is (an offset on each instant, `until` after
    `since`), for every door alike; its fields are named here as the query parameters.
    """
    with fields_under("query"):
        lines = audit_service.export(app.engine, ctx, since=since, until=until, fmt=fmt)
    return StreamingResponse(
        lines,
        media_type=EXPORT_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="changegate-audit.{fmt}"'},
    )
