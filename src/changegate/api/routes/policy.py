"""/api/v1 policy gates: a change's stored report, the rules, the waivers, and a check.

- `GET /changes/{id}/policy` (`changes:read`): the report of the change's latest assessment,
  as JSON (what `change policy CHG --json` prints), or `?format=sarif|junit`.
- `GET /policy/rules`, `GET /policy/waivers` (`catalog:read`): what `policy rules --json`
  and `policy waivers --json` print.
- `POST /policy/check` (`changes:read`): documents sent in the body (`files: [{name,
  content}]`) checked like `changegate check` checks files: the name decides the format as a
  file name does; nothing touches the server's disk. 200 with the report, whether it passed
  or not (`passed` says so); inputs that cannot be read are in `problems`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from changegate import __version__
from changegate.api import auth, schemas
from changegate.api.auth import requires
from changegate.api.routes.changes import AppDep, ChangeId, Reading, canonical_id
from changegate.domain.permissions import Permission
from changegate.domain.policy import engine, formats
from changegate.services import policy as policy_service
from changegate.services.context import Context

router = APIRouter(prefix="/api/v1", tags=["policy"], route_class=auth.PermissionRoute)

CatalogReading = Annotated[Context, Depends(requires(Permission.CATALOG_READ))]


class ReportFormat(StrEnum):
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"


def _rendered(report: engine.Report, form: ReportFormat, data: dict[str, Any]) -> Response:
    if form is ReportFormat.SARIF:
        return JSONResponse(
            formats.sarif(report, tool_version=__version__),
            media_type="application/sarif+json",
        )
    if form is ReportFormat.JUNIT:
        return Response(formats.junit(report), media_type="application/xml")
    return JSONResponse(data)


@router.get(
    "/changes/{change_id}/policy",
    summary="The policy gate's report of a change",
    response_model=None,
    responses=schemas.problem_responses(401, 403, 404, 422),
)
def get_change_policy(
    change_id: ChangeId,
    ctx: Reading,
    app: AppDep,
    form: Annotated[
        ReportFormat, Query(alias="format", description="json (default), sarif or junit")
    ] = ReportFormat.JSON,
) -> Response:
    """The report stored by the change's latest assessment: findings (failed and waived),
    summary, expired and orphan waivers, notices. 404 before the change is assessed."""
    stored = policy_service.latest_report(app.engine, ctx, canonical_id(change_id))
    return _rendered(stored.report, form, stored.as_dict())


@router.get(
    "/policy/rules",
    summary="Every policy rule that applies",
    response_model=None,
    responses=schemas.problem_responses(401, 403),
)
def get_rules(ctx: CatalogReading, app: AppDep) -> JSONResponse:
    """Built-in, plugin and custom rules with their severity as the catalog grades them."""
    ruleset = policy_service.rules_of(app.catalog())
    return JSONResponse(
        [
            {
                **engine.rule_dict(each.info),
                "severity": ruleset.severity(each.info).value,
                "waivable": each.info.waivable and each.info.id not in ruleset.non_waivable,
            }
            for each in ruleset.rules
        ]
    )


@router.get(
    "/policy/waivers",
    summary="The catalog's policy waivers",
    response_model=None,
    responses=schemas.problem_responses(401, 403),
)
def get_waivers(ctx: CatalogReading, app: AppDep) -> JSONResponse:
    """Every waiver with `state` active or expired at the request's time."""
    now = ctx.now()
    return JSONResponse(
        [
            {**waiver.as_dict(), "state": "active" if waiver.spec.active(now) else "expired"}
            for waiver in policy_service.waivers_of(app.catalog())
        ]
    )


class FileIn(BaseModel):
    """One input: its name decides its format (`deploy.yaml`, `Dockerfile`, `odoo.conf`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StrictStr = Field(min_length=1, max_length=1024, examples=["apps/odoo.yaml"])
    content: StrictStr = Field(max_length=10_000_000)


class CheckIn(BaseModel):
    """The body of POST /policy/check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[FileIn] = Field(min_length=1, max_length=10_000)
    environment: StrictStr | None = Field(default=None, max_length=63)
    tenant: StrictStr | None = Field(default=None, max_length=63)


@router.post(
    "/policy/check",
    summary="Check documents against the policy gates",
    response_model=None,
    responses=schemas.problem_responses(401, 403, 413, 422),
)
def post_check(
    ctx: Reading,
    app: AppDep,
    body: CheckIn,
    form: Annotated[
        ReportFormat, Query(alias="format", description="json (default), sarif or junit")
    ] = ReportFormat.JSON,
) -> Response:
    """What `changegate check` does with files, for documents sent in the body."""
    report = policy_service.check_texts(
        app.catalog(),
        [(item.name, item.content) for item in body.files],
        now=ctx.now(),
        environment=body.environment,
        tenant=body.tenant,
    )
    return _rendered(report, form, report.as_dict())
