"""/api/v1 retrospectives: the after-the-fact review of an emergency change.

- `GET /changes/{id}/retrospective` reads it (its status told now),
- `POST /changes/{id}/retrospective` `{comment}` records the review (200, the record).

Both declare `changes:read`, the permission the retrospectives service checks: who may
review is the rule's business (the retrospective's role, never the change's requester or
implementer), so the service refuses (403, `override_by` naming who could) rather than a
role permission. The list of open and overdue ones is GET /api/v1/reports/retrospectives.
Responses are `RetrospectiveRecord.as_dict()`, exactly what the CLI's `--json` prints
(docs/retrospectives.md).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from changegate.api import auth, schemas
from changegate.api.problems import fields_under
from changegate.api.routes.changes import AppDep, ChangeId, Reading, canonical_id
from changegate.services import retrospectives as retrospective_service

router = APIRouter(prefix="/api/v1", tags=["retrospectives"], route_class=auth.PermissionRoute)


class ReviewIn(BaseModel):
    """The body of POST /changes/{id}/retrospective: the review itself (required)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: StrictStr = Field(
        max_length=20_000, description="what happened, and what follows; not blank"
    )


class RetrospectiveOut(BaseModel):
    """One emergency change's retrospective."""

    change_id: str = Field(examples=["CHG-12"])
    title: str
    requester: str
    state: str = Field(description="the change's lifecycle state")
    role: str = Field(description="who reviews it, e.g. `cab`")
    authorized_at: str
    due_at: str = Field(description="authorized_at + the policy's retrospective.within")
    done_at: str | None
    done_by: str | None
    comment: str
    status: str = Field(description="open, overdue, done or done-late")


PATH = "/changes/{change_id}/retrospective"


@router.get(
    PATH,
    summary="An emergency change's retrospective",
    response_model=None,
    responses={200: {"model": RetrospectiveOut}, **schemas.problem_responses(401, 403, 404, 422)},
)
def get_retrospective(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """The retrospective of an authorized emergency change: when it is due, whether it is
    done, by whom, and its status now. 404 for a change without one."""
    found = retrospective_service.get(app.engine, ctx, canonical_id(change_id))
    return JSONResponse(found.as_dict())


@router.post(
    PATH,
    summary="Review an emergency change after the fact",
    response_model=None,
    responses={
        200: {"model": RetrospectiveOut},
        **schemas.problem_responses(401, 403, 404, 409, 413, 422),
    },
)
def post_retrospective(
    change_id: ChangeId, ctx: Reading, app: AppDep, body: ReviewIn
) -> JSONResponse:
    """Record the acting person's review; answers the record, now `done` or `done-late`.

    Refused (403, `override_by` naming who can) unless the person holds the retrospective's
    role and is neither the requester nor the implementer; a blank comment is 422; a second
    review is a 409 conflict (it is done once); a change without a retrospective is 404.
    """
    number = canonical_id(change_id)
    with fields_under("body"):
        done = retrospective_service.review(app.engine, app.catalog(), ctx, number, body.comment)
    return JSONResponse(done.as_dict())
