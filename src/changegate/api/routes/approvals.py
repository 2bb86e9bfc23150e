"""/api/v1 approvals: approve or reject a change, read its decision, and a person's inbox.

- `POST /changes/{id}/approvals` approves (201, the decision),
- `GET /changes/{id}/approvals` reads the requirement and the decision,
- `POST /changes/{id}/reject` rejects back to Draft (the change),
- `GET /approvals/inbox?person=` lists the changes waiting for a person.

Every route declares `changes:read`, the permission the approvals service checks: who may
approve or reject is the approval rules' business (separation of duties, roles, tenants), so
the service refuses (403, with `override_by` naming who could) rather than a role permission.
Reading someone else's inbox also needs `audit:read`. Responses are the services' `as_dict()`
shapes, exactly what the CLI's `--json` prints (docs/approvals.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from changegate.api import auth, schemas
from changegate.api.routes.changes import (
    AppDep,
    ChangeId,
    Reading,
    canonical_id,
    change_response,
)
from changegate.errors import Refused
from changegate.services import approvals as approval_service
from changegate.services.lifecycle import Authorization

router = APIRouter(prefix="/api/v1", tags=["approvals"], route_class=auth.PermissionRoute)


class ApproveIn(BaseModel):
    """The optional body of POST /changes/{id}/approvals: narrow the approval, say why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: StrictStr | None = Field(
        default=None, max_length=128, description="count only as this role, e.g. `cab`"
    )
    tenant: StrictStr | None = Field(
        default=None, max_length=128, description="count only as this tenant's customer approval"
    )
    comment: StrictStr | None = Field(default=None, max_length=2_000)


class RejectIn(BaseModel):
    """The body of POST /changes/{id}/reject: why (required, kept in the audit trail)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: StrictStr = Field(max_length=2_000)


class NeedStatusOut(BaseModel):
    """One need and how far it is."""

    key: str = Field(examples=["cab", "tenant:globex"])
    role: str
    count: int
    tenant: str | None
    rules: list[str] = Field(description="the rules that asked for it")
    reason: str
    approved_by: list[str] = Field(description="who counts for it")
    missing: int
    satisfied: bool
    candidates: list[str] = Field(description="who could still approve by the catalog now")


class IgnoredOut(BaseModel):
    """An approval that does not count, and why."""

    person: str
    approval_id: int | None
    why: str = Field(
        description="other-change, requester, implementer, stale, expired, not-eligible, "
        "duplicate or not-needed"
    )
    reason: str


class DecisionOut(BaseModel):
    """Whether the approvals given authorize the change, need by need."""

    change_id: str = Field(examples=["CHG-12"])
    content_hash: str
    authorized: bool
    reason: str
    needs: list[NeedStatusOut]
    counted: dict[str, str] = Field(description="person -> need key, each person once")
    ignored: list[IgnoredOut]
    valid_until: str | None


class RequirementOut(BaseModel):
    """Who must approve the change's current content, and why."""

    change_id: str
    content_hash: str
    catalog_digest: str
    policy_digest: str
    policy_source: str
    risk_class: str | None
    rules: list[dict[str, Any]]
    needs: list[dict[str, Any]]
    approvals_needed: int
    reason: str
    expire_after_seconds: int
    retrospective: dict[str, Any] | None


class TemplateMatchOut(BaseModel):
    """Whether a standard template covers the change, and every reason."""

    ok: bool
    template: str | None
    version: int | None
    reasons: list[str]


class AuthorizationOut(BaseModel):
    """Whether the change may leave Authorize for Scheduled now, and on what grounds."""

    authorized: bool
    via: str | None = Field(description="template, approvals, or null when not authorized")
    reason: str
    valid_until: str | None = Field(description="when authorized by approvals: first expiry")
    template: TemplateMatchOut | None = Field(description="the template check (standard only)")


class ApprovalsOut(BaseModel):
    """A change's requirement, the decision on the approvals given, and its authorization."""

    requirement: RequirementOut
    decision: DecisionOut
    authorization: AuthorizationOut


class InboxItemOut(BaseModel):
    """A change waiting in Authorize for the person, with the needs they could fill."""

    change_id: str
    title: str
    requester: str
    environment: str
    risk_class: str | None
    needs: list[NeedStatusOut]
    reason: str


class InboxOut(BaseModel):
    """The changes waiting for one person's approval, oldest first."""

    person: str
    items: list[InboxItemOut]


def approvals_body(found: Authorization) -> dict[str, Any]:
    """The JSON of GET /changes/{id}/approvals (and `changegate change approvals --json`).

    A change whose requirement cannot be computed (assessed before its last edit) is
    Refused, with the reason: assess it again.
    """
    if found.requirement is None or found.decision is None:
        raise Refused(found.reason)
    return {
        "requirement": found.requirement.as_dict(),
        "decision": found.decision.as_dict(),
        "authorization": found.as_dict(),
    }


@router.post(
    "/changes/{change_id}/approvals",
    summary="Approve a change",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": DecisionOut},
        **schemas.problem_responses(401, 403, 404, 409, 413, 422),
    },
)
def post_approval(
    change_id: ChangeId, ctx: Reading, app: AppDep, body: ApproveIn | None = None
) -> JSONResponse:
    """Approve the change's current content as the acting person; the decision after it.

    Refused (403, `override_by` naming who can approve) for the requester, the implementer,
    or someone holding no role or tenant the change needs; a second approval of the same
    content while the first stands is a 409 conflict (nothing written). The change stays in
    Authorize; `authorized` says whether it may now be scheduled.
    """
    given = body or ApproveIn()
    decision = approval_service.approve(
        app.engine,
        app.catalog(),
        ctx,
        canonical_id(change_id),
        role=given.role,
        tenant=given.tenant,
        comment=given.comment,
    )
    return JSONResponse(decision.as_dict(), status_code=201)


@router.get(
    "/changes/{change_id}/approvals",
    summary="A change's approval requirement and decision",
    response_model=None,
    responses={200: {"model": ApprovalsOut}, **schemas.problem_responses(401, 403, 404, 422)},
)
def get_approvals(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """Who must approve and why, who approved, what is missing and who could still approve;
    and whether the change may be scheduled now (by its standard template or its approvals).
    """
    found = approval_service.authorization(app.engine, app.catalog(), ctx, canonical_id(change_id))
    return JSONResponse(approvals_body(found))


@router.post(
    "/changes/{change_id}/reject",
    summary="Reject a change back to Draft",
    response_model=None,
    responses={
        200: {"model": schemas.ChangeOut},
        **schemas.problem_responses(401, 403, 404, 409, 413, 422),
    },
)
def post_reject(change_id: ChangeId, ctx: Reading, app: AppDep, body: RejectIn) -> JSONResponse:
    """Move the change from Authorize back to Draft, saying why (`comment`, required).

    Whoever may approve may reject; anyone else is refused (403). The approvals given stay
    recorded. Answers the change, as GET /changes/{id} does.
    """
    moved = approval_service.reject(
        app.engine, app.catalog(), ctx, canonical_id(change_id), body.comment
    )
    return change_response(moved)


@router.get(
    "/approvals/inbox",
    summary="The changes waiting for a person's approval",
    response_model=None,
    responses={200: {"model": InboxOut}, **schemas.problem_responses(401, 403, 404, 422)},
)
def get_inbox(
    ctx: Reading,
    app: AppDep,
    person: Annotated[
        str | None,
        Query(max_length=128, description="whose inbox; the acting person when absent"),
    ] = None,
) -> JSONResponse:
    """Changes in Authorize with an unsatisfied need this person could approve for.

    Your own inbox needs `changes:read`; someone else's also needs `audit:read` (an unknown
    person is 404).
    """
    catalog = app.catalog()
    whose = approval_service.inbox_person(catalog, ctx, person)
    items = approval_service.inbox(app.engine, catalog, ctx, whose)
    return JSONResponse({"person": whose, "items": [item.as_dict() for item in items]})
