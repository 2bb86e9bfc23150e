"""/api/v1/changes/{id}/assessments: score a change's risk, and read its latest score.

Responses are `Assessment.as_dict()` from the assessments service, exactly what
`changegate change assess ID --json` prints (docs/risk.md). The models below only document
that shape in the OpenAPI document (as those in `api.schemas` do for the other routes).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from changegate.api import auth, schemas
from changegate.api.routes.changes import AppDep, ChangeId, Moving, Reading, canonical_id
from changegate.services import assessments as assessment_service

router = APIRouter(prefix="/api/v1/changes", tags=["changes"], route_class=auth.PermissionRoute)


class FactorOut(BaseModel):
    """One named part of the score; the points of all factors sum to the score."""

    name: str = Field(
        description="blast-radius, component-criticality, category, environment, rollback, "
        "evidence, policy-findings, calendar-conflicts, history; then cap or floor when the "
        "sum had to be brought into 0-100",
        examples=["blast-radius"],
    )
    points: int = Field(description="negative for a bonus, or for the cap")
    reason: str = Field(examples=["prod is production"])


class AssessmentImpactCountsOut(BaseModel):
    """How many of each the impact reached."""

    tenants: int
    by_tier: dict[str, int]
    by_deployment_model: dict[str, int]
    business_services: int
    services: int
    clusters: int


class AssessmentServiceOut(BaseModel):
    """An affected shared service (keyed by its id)."""

    type: str
    criticality: str


class AssessmentImpactOut(BaseModel):
    """A summary of the impact scored; the tenant list is the impact endpoint's."""

    scope: str
    scope_reason: str
    summary: str
    environment: str
    counts: AssessmentImpactCountsOut
    services: dict[str, AssessmentServiceOut]
    warnings: list[str]


class AssessmentOut(BaseModel):
    """A change's risk assessment: score, class and the factors that sum to the score."""

    id: int | None = Field(description="the assessment's id; every run is kept")
    change_id: str = Field(examples=["CHG-12"])
    created_at: str | None
    assessed_by: str | None
    score: int = Field(ge=0, le=100)
    risk_class: str = Field(description="low, medium, high or critical")
    class_reason: str = Field(examples=["score 62 is in 50-74 (high)"])
    factors: list[FactorOut]
    content_hash: str = Field(description="the change's content hash when it was assessed")
    catalog_digest: str = Field(description="the catalog the impact and the policy came from")
    rule_version: str = Field(examples=["v1-3f2a9c0d1e2b"])
    policy_digest: str
    impact: AssessmentImpactOut
    inputs: dict[str, Any] = Field(
        description="policy source and digest, the team history used, staging verification, "
        "policy findings and calendar conflicts"
    )


def _latest_url(change_id: str) -> str:
    return f"{router.prefix}/{change_id}/assessment"


@router.post(
    "/{change_id}/assessments",
    summary="Assess a change's risk",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": AssessmentOut},
        **schemas.problem_responses(401, 403, 404, 409, 422),
    },
)
def post_assessment(change_id: ChangeId, ctx: Moving, app: AppDep) -> JSONResponse:
    """Score the change against the catalog loaded now and keep the result (audited).

    Every run is kept and the latest counts; `Location` names the latest. A closed or
    canceled change is refused (403); an edit landing while it is assessed is a 409 conflict
    (nothing is written: assess it again). No body.
    """
    found = assessment_service.assess(
        app.engine, app.catalog(), ctx, canonical_id(change_id), gitops_workdir=app.gitops_workdir
    )
    return JSONResponse(
        found.as_dict(), status_code=201, headers={"Location": _latest_url(found.change_id)}
    )


@router.get(
    "/{change_id}/assessment",
    summary="A change's latest risk assessment",
    response_model=None,
    responses={200: {"model": AssessmentOut}, **schemas.problem_responses(401, 403, 404, 422)},
)
def get_assessment(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """The newest assessment; a 404 problem when the change was never assessed."""
    found = assessment_service.latest(app.engine, ctx, canonical_id(change_id))
    return JSONResponse(found.as_dict())
