"""/api/v1/changes/{id}/impact: who a change can hurt, and why (docs/impact.md).

The response is `ChangeImpact.as_dict()` from the impact service, exactly what
`changegate change impact ID --json` prints. The models below only document that shape in
the OpenAPI document (as those in `api.schemas` do for the other routes).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from changegate.api import auth, schemas
from changegate.api.routes.changes import AppDep, ChangeId, Reading, canonical_id
from changegate.services import impact as impact_service

router = APIRouter(prefix="/api/v1/changes", tags=["changes"], route_class=auth.PermissionRoute)


class ImpactPathOut(BaseModel):
    """One reason something is affected."""

    kind: str = Field(description="direct, service, cluster or selector")
    via: list[str] = Field(description="the chain of ids from the change's target inwards")
    reason: str = Field(examples=["database acme_prod lives on pg-eu-west-prod-1"])


class TenantImpactOut(BaseModel):
    """An affected tenant (keyed by its id) and every path that reaches it."""

    display_name: str
    tier: str
    deployment_model: str
    cluster: str
    environment: str
    business_services: list[str]
    paths: list[ImpactPathOut]


class ServiceImpactOut(BaseModel):
    """A shared service the change touches (keyed by its id)."""

    type: str
    criticality: str
    environment: str
    cluster: str | None
    shared: bool
    tenants: int = Field(description="tenants using it; all of them are affected")
    paths: list[ImpactPathOut]


class ClusterImpactOut(BaseModel):
    """A cluster targeted, running an affected tenant or hosting an affected service."""

    mode: str
    environment: str
    targeted: bool
    tenants: int
    services: list[str]


class ImpactCountsOut(BaseModel):
    """How many of each; by tier heaviest first, by deployment model in declared order."""

    tenants: int
    by_tier: dict[str, int]
    by_deployment_model: dict[str, int]
    business_services: int
    services: int
    clusters: int


class ImpactOut(BaseModel):
    """A change's impact over the catalog loaded now."""

    change_id: str = Field(examples=["CHG-12"])
    change_catalog_digest: str | None = Field(
        description="the catalog the change was filed against; compare with catalog_digest"
    )
    catalog_digest: str = Field(description="the catalog analysed: the one loaded now")
    category: str
    environment: str
    scope: str = Field(description="none, customer-specific, limited or platform-wide")
    scope_reason: str
    summary: str
    counts: ImpactCountsOut
    environments: list[str]
    tenants: dict[str, TenantImpactOut]
    business_services: dict[str, list[str]] = Field(
        description="each business service touched, with the affected tenants offering it"
    )
    services: dict[str, ServiceImpactOut]
    clusters: dict[str, ClusterImpactOut]
    warnings: list[str]


@router.get(
    "/{change_id}/impact",
    summary="Who a change can hurt, and why",
    response_model=None,
    responses={200: {"model": ImpactOut}, **schemas.problem_responses(401, 403, 404, 422)},
)
def get_impact(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """The affected tenants, business services, shared services and clusters, each with the
    paths that explain it; counts by tier and deployment model; the scope and its reason.

    Analysed against the catalog loaded now; `change_catalog_digest` names the catalog the
    change was filed against. Nothing is written.
    """
    found = impact_service.impact(app.engine, app.catalog(), ctx, canonical_id(change_id))
    return JSONResponse(found.as_dict())
