"""Change requests: their fields, their content hash and their lifecycle.

The transition table below is the only place that says which state may follow which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from changegate.domain import canonical, validation
from changegate.errors import InvalidInput, InvalidTransition, Problem, Refused

API_VERSION = "changegate.io/v1"
KIND = "ChangeRequest"


class ChangeType(StrEnum):
    """ITIL change types: standard (pre-approved), normal, emergency."""

    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"


class Category(StrEnum):
    """What a change touches; drives inherent risk and approval rules."""

    APPLICATION_RELEASE = "application-release"
    MODULE_UPDATE = "module-update"
    ODOO_UPGRADE = "odoo-upgrade"
    INFRASTRUCTURE = "infrastructure"
    KUBERNETES = "kubernetes"
    SECURITY_PATCH = "security-patch"
    DATABASE_CONFIG = "database-config"
    DATABASE_MIGRATION = "database-migration"
    DATABASE_UPGRADE = "database-upgrade"
    REDIS_CONFIG = "redis-config"
    INGRESS_CONFIG = "ingress-config"
    SECRETS_ROTATION = "secrets-rotation"
    BACKUP_POLICY = "backup-policy"
    MONITORING = "monitoring"
    TENANT_CONFIG = "tenant-config"


class ChangeState(StrEnum):
    """Where a change is in its lifecycle."""

    DRAFT = "draft"
    ASSESS = "assess"
    AUTHORIZE = "authorize"
    SCHEDULED = "scheduled"
    IMPLEMENTING = "implementing"
    REVIEW = "review"
    CLOSED = "closed"
    CANCELED = "canceled"
    ON_HOLD = "on-hold"


class CloseCode(StrEnum):
    """How a change ended; feeds the change success score and DORA."""

    SUCCESSFUL = "successful"
    SUCCESSFUL_WITH_ISSUES = "successful-with-issues"
    UNSUCCESSFUL = "unsuccessful"


S = ChangeState

# The lifecycle. Each state maps to the states any change may move to next; type-specific
# shortcuts are in SHORTCUTS, and on-hold returns to the state it was held from.
TRANSITIONS: dict[ChangeState, tuple[ChangeState, ...]] = {
    S.DRAFT: (S.ASSESS, S.ON_HOLD, S.CANCELED),
    S.ASSESS: (S.AUTHORIZE, S.DRAFT, S.ON_HOLD, S.CANCELED),
    S.AUTHORIZE: (S.SCHEDULED, S.DRAFT, S.ON_HOLD, S.CANCELED),
    S.SCHEDULED: (S.IMPLEMENTING, S.ON_HOLD, S.CANCELED),
    S.IMPLEMENTING: (S.REVIEW, S.CANCELED),
    S.REVIEW: (S.CLOSED,),
    S.CLOSED: (),
    S.CANCELED: (),
    S.ON_HOLD: (S.CANCELED,),  # plus the state it was held from
}

# Emergency changes skip Assess. Standard changes go through Assess like normal ones: their
# assessment checks the template, and a covered change moves on to Authorize already
# authorized (services.assessments); an uncovered one is approved like a normal change.
SHORTCUTS: dict[ChangeType, dict[ChangeState, tuple[ChangeState, ...]]] = {
    ChangeType.EMERGENCY: {S.DRAFT: (S.AUTHORIZE,)},
}

# Where `submit` takes a draft, by change type.
SUBMIT_TARGET: dict[ChangeType, ChangeState] = {
    ChangeType.NORMAL: S.ASSESS,
    ChangeType.EMERGENCY: S.AUTHORIZE,
    ChangeType.STANDARD: S.ASSESS,  # assessed at once; a matching template authorizes it
}

# A move back to Draft from these states ends pending approvals: a rejection (through the
# approval rules, with a comment) or the requester's withdrawal (a plain transition).
REOPENED_TO_DRAFT_STATES = frozenset({S.ASSESS, S.AUTHORIZE})
FINAL_STATES = frozenset({S.CLOSED, S.CANCELED})
# Material fields change freely in Draft. In these states a material edit voids what was
# assessed and approved, so it sends the change back (`reopened_state`); in the others
# (on hold, implementing, review) it is refused.
EDITABLE_MATERIAL_STATES = frozenset({S.DRAFT})
REOPENING_STATES = frozenset({S.ASSESS, S.AUTHORIZE, S.SCHEDULED})

_CHANGE_ID = re.compile(r"^CHG-([1-9][0-9]{0,17})$")

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=100_000)]
Id = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/*?\[\]-]*$"
    ),
]
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TargetSelector(_Strict):
    """Selects tenants by their attributes; all given attributes must match."""

    tier: Id | None = None
    odoo_series: Id | None = None
    deployment_model: Literal["multi-tenant", "dedicated-namespace", "dedicated-cluster"] | None = (
        None
    )
    cluster: Id | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> TargetSelector:
        if not any((self.tier, self.odoo_series, self.deployment_model, self.cluster)):
            raise ValueError(
                "a selector needs at least one of tier, odoo_series, deployment_model, cluster"
            )
        return self


class Targets(_Strict):
    """What the change touches: tenants, shared services and clusters by id, or selectors."""

    tenants: list[Id] = Field(default_factory=list, max_length=100_000)
    services: list[Id] = Field(default_factory=list, max_length=10_000)
    clusters: list[Id] = Field(default_factory=list, max_length=10_000)
    selectors: list[TargetSelector] = Field(default_factory=list, max_length=100)

    def is_empty(self) -> bool:
        return not (self.tenants or self.services or self.clusters or self.selectors)


class ImageArtifact(_Strict):
    """A container image, by reference and (for anything beyond dev) digest."""

    ref: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    digest: Digest | None = None


class GitArtifact(_Strict):
    """A Git repository and the commit range the change ships."""

    repo: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    from_commit: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{7,64}$")] | None = None
    to_commit: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{7,64}$")]


PathText = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Artifacts(_Strict):
    """What the change delivers, so gates and promotion can check the very same bytes."""

    images: list[ImageArtifact] = Field(default_factory=list, max_length=1000)
    git: list[GitArtifact] = Field(default_factory=list, max_length=100)
    manifests: list[PathText] = Field(default_factory=list, max_length=10_000)
    terraform_plans: list[PathText] = Field(default_factory=list, max_length=100)
    reports: list[PathText] = Field(default_factory=list, max_length=1000)


class RollbackPlan(_Strict):
    """How to undo the change, and whether that was rehearsed."""

    steps: Text = ""
    tested: bool = False
    irreversible: bool = False  # e.g. a data migration that only a restore can undo
    # What a failed wave reverts in the GitOps repository: that wave, or every wave so far.
    revert: Literal["wave", "all"] = "wave"


class ChangeSpec(_Strict):
    """The fields a requester writes: the body of a change file and of POST /changes."""

    title: Name
    justification: Text = ""
    type: ChangeType = ChangeType.NORMAL
    category: Category
    environment: Id
    targets: Targets = Field(default_factory=Targets)
    artifacts: Artifacts = Field(default_factory=Artifacts)
    implementation_plan: Text = ""
    test_plan: Text = ""
    test_evidence: list[Text] = Field(default_factory=list, max_length=1000)
    rollback_plan: RollbackPlan = Field(default_factory=RollbackPlan)
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    implementer: Id | None = None
    incidents: list[Id] = Field(default_factory=list, max_length=1000)
    template: Id | None = None  # the standard template a standard change is filed from

    @field_validator("planned_start", "planned_end")
    @classmethod
    def _utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        # Stored and hashed in UTC: the same instant written with another offset must give
        # the same content hash, or a harmless rewrite would invalidate approvals.
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"{info.field_name} needs a timezone offset, e.g. 2026-12-01T22:00:00Z"
            )
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _times(self) -> ChangeSpec:
        if self.planned_start and self.planned_end and self.planned_end <= self.planned_start:
            raise ValueError("planned_end must be after planned_start")
        if self.template is not None and self.type is not ChangeType.STANDARD:
            raise ValueError(
                f"only a standard change names a template (this one is {self.type.value})"
            )
        return self


# Fields an approval binds to: changing one after submission changes what was approved.
MATERIAL_FIELDS: tuple[str, ...] = (
    "title",
    "justification",
    "type",
    "category",
    "environment",
    "targets",
    "artifacts",
    "implementation_plan",
    "test_plan",
    "rollback_plan",
    "planned_start",
    "planned_end",
    "implementer",
    "template",
)
# Fields that may be edited in any non-final state: they record what happened.
NON_MATERIAL_FIELDS: tuple[str, ...] = ("test_evidence", "incidents")


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    """Which changes to list: one filter spec shared by the API, the CLI and the web UI."""

    states: tuple[str, ...] = ()
    type: str | None = None
    category: str | None = None
    environment: str | None = None
    requester: str | None = None
    tenant: str | None = None
    service: str | None = None
    cluster: str | None = None
    text: str | None = None
    limit: int = 50
    offset: int = 0


def content_hash(spec: ChangeSpec) -> str:
    """SHA-256 over the material fields; approvals name it, so an edit invalidates them."""
    data = spec.model_dump(mode="json", include=set(MATERIAL_FIELDS))
    if data["template"] is None:
        # Hashed only when set, so changes filed before templates keep their hash.
        del data["template"]
    return "sha256:" + canonical.sha256_hex(data)


def format_id(number: int) -> str:
    return f"CHG-{number}"


def parse_id(text: str) -> int:
    """`CHG-12` (or `12`) to 12; anything else is invalid input."""
    candidate = text.strip()
    if candidate.isdigit():
        candidate = f"CHG-{candidate}"
    match = _CHANGE_ID.match(candidate.upper())
    if not match:
        raise InvalidInput([Problem(f"not a change id: {text!r} (expected CHG-<n>)", field="id")])
    return int(match.group(1))


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    """A change request as stored: the requester's spec plus lifecycle bookkeeping."""

    number: int
    spec: ChangeSpec
    requester: str
    state: ChangeState = ChangeState.DRAFT
    held_from: ChangeState | None = None
    close_code: CloseCode | None = None
    close_notes: str = ""
    content_hash: str = ""
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    catalog_digest: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return format_id(self.number)

    def evolve(self, **changes: Any) -> ChangeRequest:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape shared by the API, the CLI's --json and the audit trail."""
        return {
            "id": self.id,
            **self.spec.model_dump(mode="json"),
            "requester": self.requester,
            "state": self.state.value,
            "held_from": self.held_from.value if self.held_from else None,
            "close_code": self.close_code.value if self.close_code else None,
            "close_notes": self.close_notes,
            "content_hash": self.content_hash,
            "version": self.version,
            "catalog_digest": self.catalog_digest,
            "created_at": canonical.to_utc_text(self.created_at) if self.created_at else None,
            "updated_at": canonical.to_utc_text(self.updated_at) if self.updated_at else None,
        }


def new_change(number: int, spec: ChangeSpec, requester: str, now: datetime) -> ChangeRequest:
    """A fresh draft."""
    return ChangeRequest(
        number=number,
        spec=spec,
        requester=requester,
        content_hash=content_hash(spec),
        created_at=now,
        updated_at=now,
    )


def allowed_next(change: ChangeRequest) -> list[ChangeState]:
    """The states this change may move to now, in lifecycle order."""
    allowed = list(TRANSITIONS[change.state])
    allowed += SHORTCUTS.get(change.spec.type, {}).get(change.state, ())
    if change.state is S.ON_HOLD and change.held_from is not None:
        allowed.append(change.held_from)
    order = list(ChangeState)
    return sorted(set(allowed), key=order.index)


def transition(
    change: ChangeRequest,
    to: ChangeState,
    now: datetime,
    *,
    close_code: CloseCode | None = None,
    close_notes: str | None = None,
) -> ChangeRequest:
    """Move a change to `to`, or raise InvalidTransition naming the allowed next states."""
    allowed = allowed_next(change)
    if to not in allowed:
        raise InvalidTransition(change.id, change.state.value, to.value, [s.value for s in allowed])
    if to is S.CLOSED and close_code is None:
        raise InvalidInput(
            [
                Problem(
                    "closing a change needs a close code: " + ", ".join(c.value for c in CloseCode),
                    field="close_code",
                )
            ]
        )
    if close_code is not None and to is not S.CLOSED:
        raise InvalidInput([Problem("a close code is given only when closing", field="close_code")])
    if close_notes is not None and to is not S.CLOSED:
        raise InvalidInput(
            [Problem("close notes are given only when closing; use a reason", field="close_notes")]
        )
    held_from = change.state if to is S.ON_HOLD else None
    return change.evolve(
        state=to,
        held_from=held_from,
        close_code=close_code if to is S.CLOSED else change.close_code,
        close_notes=close_notes if close_notes is not None else change.close_notes,
        updated_at=now,
        version=change.version + 1,
    )


def returns_to_draft(before: ChangeState, after: ChangeState) -> bool:
    """A move back to Draft from Assess or Authorize: pending approvals end."""
    return after is S.DRAFT and before in REOPENED_TO_DRAFT_STATES


def reopened_state(change: ChangeRequest, spec: ChangeSpec) -> ChangeState:
    """Where a material edit in Assess, Authorize or Scheduled sends the change: back to
    where submitting it would (Assess; Authorize for an emergency change), never forward."""
    target = SUBMIT_TARGET[spec.type]
    order = list(ChangeState)
    return min(change.state, target, key=order.index)


def edit(change: ChangeRequest, patch: dict[str, Any], now: datetime) -> ChangeRequest:
    """Apply a partial update of the spec.

    Material fields change freely in Draft. In Assess, Authorize and Scheduled a material
    edit changes what was assessed and approved: the change goes back to `reopened_state`
    (its approvals, bound to the old content hash, no longer count). On hold, implementing
    and in review it is refused. Fields whose validated value does not change are not
    edits: re-sending a whole change file is fine as long as nothing really differs. When
    nothing changes at all, the change itself is returned and nothing needs writing.
    """
    if change.state in FINAL_STATES:
        raise Refused(f"{change.id} is {change.state.value}; a final change cannot be edited")
    unknown = sorted(set(patch) - set(ChangeSpec.model_fields))
    if unknown:
        raise InvalidInput(
            [
                Problem(
                    f"unknown field (allowed: {', '.join(ChangeSpec.model_fields)})",
                    field=f.replace("\x00", "\\0"),
                )
                for f in unknown
            ]
        )
    merged = change.spec.model_dump(mode="json")
    merged.update(patch)
    spec = validate_spec(merged, source=None)
    changed = changed_fields(change.spec, spec)
    if not changed:
        return change
    material = [f for f in changed if f in MATERIAL_FIELDS]
    state = change.state
    if material and state not in EDITABLE_MATERIAL_STATES:
        if state not in REOPENING_STATES:
            hint = "resume it first" if state is S.ON_HOLD else "file a new change"
            raise Refused(
                f"{change.id} is {state.value}; {', '.join(material)} cannot be edited now "
                f"(approvals bind to them): {hint}"
            )
        state = reopened_state(change, spec)
    return change.evolve(
        spec=spec,
        state=state,
        content_hash=content_hash(spec),
        updated_at=now,
        version=change.version + 1,
    )


def changed_fields(before: ChangeSpec, after: ChangeSpec) -> list[str]:
    """The spec fields whose values differ, in declaration order."""
    return [
        name for name in ChangeSpec.model_fields if getattr(before, name) != getattr(after, name)
    ]


def validate_spec(data: Any, source: str | None) -> ChangeSpec:
    """Validate a change spec from plain JSON-shaped data; errors name the field (and file).

    Validation is strict JSON validation: strings are accepted for datetimes and enums, but
    "3" is not a number, "yes" is not a boolean and a list is not a string.
    """
    return validation.validate_plain(ChangeSpec, data, source=source)
