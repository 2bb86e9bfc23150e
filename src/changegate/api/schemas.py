"""HTTP schemas: request bodies the API validates, and the response shapes it documents.

Change bodies (POST and PATCH) are not declared as pydantic parameters: FastAPI validates
parameters in Python mode, where the strict change spec would refuse enum and datetime
strings. The routes take the JSON object as it came and validate it with
`changes.validate_spec` (strict JSON rules, the same as change files); `ChangeIn` and
the PATCH schema only describe that body in the OpenAPI document.

Response models here are documentation: routes return the stable `as_dict()` shapes the CLI's
`--json` prints, and these classes say what is in them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from changegate.domain.changes import ChangeSpec, ChangeState, CloseCode

Version = StrictInt
REF = "#/components/schemas/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangeIn(ChangeSpec):
    """The body of POST /changes: the `spec` of a change file."""


class TransitionIn(_In):
    """The body of POST /changes/{id}/transitions."""

    to: ChangeState
    version: Version | None = Field(
        default=None, ge=1, description="the version you read; a stale one is refused (409)"
    )
    close_code: CloseCode | None = Field(default=None, description="only when closing")
    close_notes: StrictStr | None = Field(default=None, max_length=100_000)
    reason: StrictStr | None = Field(
        default=None, max_length=2_000, description="recorded in the audit trail"
    )
    override_calendar: StrictStr | None = Field(
        default=None,
        min_length=1,
        max_length=2_000,
        description=(
            "only when starting (scheduled -> implementing): why the calendar is overridden; "
            "given by someone holding the roles the refusal names"
        ),
    )


class ScheduleIn(_In):
    """The optional body of POST /changes/{id}/schedule."""

    version: Version | None = Field(default=None, ge=1)
    not_before: AwareDatetime | None = Field(
        default=None, description="the earliest start (default now; never before now)"
    )
    horizon_days: int | None = Field(
        default=None, ge=1, le=366, description="how far to look (default the policy's, 90)"
    )
    duration_minutes: int | None = Field(
        default=None,
        ge=1,
        le=366 * 24 * 60,
        description="each wave's length (default planned end - planned start, else 60)",
    )
    reason: StrictStr | None = Field(default=None, max_length=2_000)


class ConsentIn(_In):
    """The body of POST /changes/{id}/consents."""

    tenant: StrictStr = Field(min_length=1, max_length=128, description="the tenant consenting")
    comment: StrictStr | None = Field(default=None, max_length=20_000)


class ActionIn(_In):
    """The optional body of the submit, cancel, hold and resume actions."""

    version: Version | None = Field(default=None, ge=1)
    reason: StrictStr | None = Field(default=None, max_length=2_000)


class CommentIn(_In):
    """The body of POST /changes/{id}/comments."""

    body: StrictStr = Field(max_length=20_000)


class ChangeOut(ChangeSpec):
    """A change request: its spec plus lifecycle bookkeeping (`ChangeRequest.as_dict()`)."""

    model_config = ConfigDict(strict=False)

    id: str = Field(examples=["CHG-12"])
    requester: str
    state: ChangeState
    held_from: ChangeState | None
    close_code: CloseCode | None
    close_notes: str
    content_hash: str
    version: int
    catalog_digest: str | None
    created_at: str | None
    updated_at: str | None
    allowed_next: list[ChangeState] = Field(description="the states it may move to now")


class ChangePage(BaseModel):
    """One page of changes, newest first."""

    items: list[ChangeOut]
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="the next page's URL, or null on the last page")


class TransitionsOut(BaseModel):
    """Where a change is and where it may go next."""

    id: str
    state: ChangeState
    held_from: ChangeState | None
    version: int
    allowed_next: list[ChangeState]


class CommentOut(BaseModel):
    """A comment in a change's discussion."""

    id: int
    change_id: str
    author: str
    body: str
    created_at: str


class CommentList(BaseModel):
    """A change's discussion, oldest first."""

    items: list[CommentOut]


class AuditEventOut(BaseModel):
    """One event of the hash-chained audit trail (`AuditEvent.as_dict()`)."""

    seq: int
    occurred_at: str
    actor: str
    actor_name: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    request_id: str | None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """A page of audit events in sequence order."""

    items: list[AuditEventOut]
    next_after_seq: int | None = Field(description="pass as after_seq for the next page")
    next: str | None


class ChainReportOut(BaseModel):
    """What verifying the audit chain found (`ChainReport.as_dict()`)."""

    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None
    problem: str | None
    checkpoint: dict[str, Any] | None


class CatalogSummary(BaseModel):
    """The loaded catalog: its digest, Git commit and how many entities of each kind."""

    digest: str
    commit: str | None
    dirty: bool = Field(description="the catalog folder had uncommitted changes when loaded")
    root: str
    counts: dict[str, int]


class Entity(BaseModel):
    """One catalog entity and where it was defined (`Entity.as_dict()`)."""

    kind: str
    id: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]
    file: str
    line: int


class EntityList(BaseModel):
    """The catalog entities of one kind, in file order."""

    kind: str
    items: list[Entity]


class Problem(BaseModel):
    """An RFC 9457 problem; extension members depend on the problem type."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://changegate.dev/problems/invalid-transition"])
    title: str
    status: int
    detail: str = Field(description="the same message the CLI prints")
    instance: str


class Health(BaseModel):
    """Liveness: the process answers."""

    status: str
    version: str


class Readiness(BaseModel):
    """Readiness: database reachable, schema current, catalog loaded."""

    status: str
    checks: dict[str, str]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problem statuses a route may answer with."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"{REF}Problem"}}},
        }
        for status in statuses
    }


def body_schema(name: str) -> dict[str, Any]:
    """An OpenAPI requestBody naming a schema that `openapi.document` adds to components."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"{REF}{name}"}}},
        }
    }
