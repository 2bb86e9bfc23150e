"""Use cases on approvals: approve, reject, a change's decision, a person's inbox.

Approving and rejecting lock the change row first (`SELECT ... FOR UPDATE` on PostgreSQL;
SQLite's `BEGIN IMMEDIATE` already serialises writers), so the deciders of one change take
turns: each sees every approval committed before it, a duplicate is caught before it is
written, and only the approval that completes the requirement appends `change.authorized`.
The impact analysis (the only costly part) runs before the lock; the requirement is computed
inside it from the change and its latest assessment as they are then.

Who may approve is the approval rules' business (`domain.approvals.check_can_approve`), not a
role permission: a customer approver holds only `changes:read`, so that is what approving and
rejecting require of the actor, on top of separation of duties and the needs.

Approving does not move the change: `change.authorized` marks the moment the lifecycle gate
(Authorize -> Scheduled, `services.lifecycle`) opens; scheduling is its own step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from changegate.domain import approvals, canonical, changes, impact, validation
from changegate.domain import catalog as catalog_model
from changegate.domain.approvals import Decision, NeedStatus, Requirement
from changegate.domain.changes import ChangeRequest, ChangeState
from changegate.domain.permissions import Permission
from changegate.errors import Conflict, NotFound, Refused
from changegate.services import audit as audit_service
from changegate.services import lifecycle
from changegate.services import retrospectives as retrospective_service
from changegate.services.context import Context
from changegate.store import approvals as approval_store
from changegate.store import assessments as assessment_store
from changegate.store import changes as change_store
from changegate.store import db


def _analysed_before_lock(
    engine: sa.Engine, catalog: catalog_model.Catalog, number: int
) -> tuple[str, impact.Impact]:
    """The change's content hash and impact, computed outside any write lock."""
    with engine.connect() as conn:
        change = change_store.get(conn, number)
    return change.content_hash, impact.analyze(catalog, change.spec)


def _locked(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    number: int,
    seen: tuple[str, impact.Impact],
) -> tuple[ChangeRequest, Requirement]:
    change = approval_store.lock_change(conn, number)
    content_hash, analysed = seen
    if change.content_hash != content_hash:
        # Edited between the read and the lock: analyse what is there now.
        analysed = impact.analyze(catalog, change.spec)
    return change, lifecycle.requirement_for(conn, catalog, change, analysed)


def approve(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    *,
    role: str | None = None,
    tenant: str | None = None,
    comment: str | None = None,
) -> Decision:
    """Record the acting person's approval of the change's current content; the decision.

    One transaction: lock the change, compute its requirement, check separation of duties
    and eligibility (`Refused`, naming who can approve), store the approval, evaluate, and
    append `change.approved` and, when this approval is the one that authorizes the change,
    `change.authorized` (with the requirement and the decision).

    A second approval of the same content by the same person, while the first stands, is a
    `Conflict` ("already approved"): nothing is written, no event appended, so a retried
    request is harmless. After their approval expired the person may approve again; the
    expired row is replaced. The change stays in Authorize either way.
    """
    ctx.actor.require(Permission.CHANGES_READ)
    validation.check_texts(comment=comment)
    number = changes.parse_id(change_id)
    person = ctx.actor.id
    seen = _analysed_before_lock(engine, catalog, number)
    with db.transaction(engine) as conn:
        change, requirement = _locked(conn, catalog, number, seen)
        now = ctx.now()
        approval = approvals.record(
            person,
            change,
            requirement,
            catalog,
            now=now,
            role=role,
            tenant=tenant,
            comment=(comment or "").strip(),
        )
        given = approval_store.of_change(conn, number)
        before = approvals.evaluate(requirement, given, change=change, catalog=catalog, now=now)
        existing = next(
            (a for a in given if a.person == person and a.content_hash == change.content_hash),
            None,
        )
        if existing is not None and existing.id is not None:
            if not existing.is_expired(now):
                until = (
                    f"; it stands until {canonical.to_utc_text(existing.expires_at)}"
                    if existing.expires_at is not None
                    else ""
                )
                raise Conflict(
                    f"{person} already approved {change.id} at this content "
                    f"({canonical.to_utc_text(existing.decided_at)}){until}"
                )
            stored = approval_store.replace(conn, existing.id, approval)
            given = [stored if a.id == existing.id else a for a in given]
        else:
            stored = approval_store.insert(conn, number, approval)
            given = [*given, stored]
        after = approvals.evaluate(requirement, given, change=change, catalog=catalog, now=now)
        audit_service.record(
            conn,
            ctx,
            "change.approved",
            "change",
            change.id,
            {"authorized": before.authorized},
            {
                "approval_id": stored.id,
                "person": person,
                "role": role,
                "tenant": tenant,
                "content_hash": stored.content_hash,
                "expires_at": (
                    canonical.to_utc_text(stored.expires_at) if stored.expires_at else None
                ),
                "replaced_expired": existing is not None,
                "counts_for": after.counted.get(person),
                "authorized": after.authorized,
            },
        )
        if after.authorized and not before.authorized:
            audit_service.record(
                conn,
                ctx,
                "change.authorized",
                "change",
                change.id,
                None,
                {"requirement": requirement.as_dict(), "decision": after.as_dict()},
            )
            retrospective_service.on_authorized(conn, ctx, change, requirement, now)
    return after


def reject(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    comment: str,
) -> ChangeRequest:
    """Reject the change back to Draft, saying why; whoever may approve may reject.

    One transaction: lock the change, `check_can_reject` (a comment, and the same checks as
    approving), then the lifecycle move Authorize -> Draft of `changes.transition`, audited
    as `change.rejected` with the comment as its reason. The approvals given stay recorded;
    they stop counting once the content changes (and the change must come back through
    Assess and Authorize anyway).
    """
    ctx.actor.require(Permission.CHANGES_READ)
    validation.check_texts(comment=comment)
    number = changes.parse_id(change_id)
    seen = _analysed_before_lock(engine, catalog, number)
    with db.transaction(engine) as conn:
        change, requirement = _locked(conn, catalog, number, seen)
        approvals.check_can_reject(ctx.actor.id, change, requirement, catalog, comment)
        return lifecycle.apply_transition(
            conn, catalog, ctx, change, ChangeState.DRAFT, reason=comment.strip(), rejection=True
        )


def _load(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, change_id: str
) -> tuple[ChangeRequest, Requirement, list[approvals.Approval]]:
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        required = lifecycle.requirement_for(conn, catalog, change)
        given = approval_store.of_change(conn, number)
    return change, required, given


def requirement(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, change_id: str
) -> Requirement:
    """Who must approve the change's current content, and why (a read)."""
    return _load(engine, catalog, ctx, change_id)[1]


def decision(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, change_id: str
) -> Decision:
    """Whether the approvals given authorize the change now, need by need (a read)."""
    change, required, given = _load(engine, catalog, ctx, change_id)
    return approvals.evaluate(required, given, change=change, catalog=catalog, now=ctx.now())


def authorization(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, change_id: str
) -> lifecycle.Authorization:
    """Whether the change may be scheduled now: by its template or its approvals (a read)."""
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        return lifecycle.authorization(conn, catalog, change, ctx.now())


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A change waiting in Authorize for this person, and the needs they could fill."""

    change: ChangeRequest
    requirement: Requirement
    decision: Decision
    needs: tuple[NeedStatus, ...]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "change_id": self.change.id,
            "title": self.change.spec.title,
            "requester": self.change.requester,
            "environment": self.change.spec.environment,
            "risk_class": self.requirement.risk_class,
            "needs": [status.as_dict() for status in self.needs],
            "reason": self.decision.reason,
        }


def inbox_person(catalog: catalog_model.Catalog, ctx: Context, person: str | None) -> str:
    """Whose inbox: the acting person by default; someone else's needs audit:read.

    An unknown person is NotFound (their inbox would be empty for the wrong reason).
    """
    if person is None or person == ctx.actor.id:
        return ctx.actor.id
    ctx.actor.require(Permission.AUDIT_READ)
    if catalog.person(person) is None:
        raise NotFound(f"no person {person!r} in the catalog")
    return person


def inbox(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, person: str | None = None
) -> list[InboxItem]:
    """The changes in Authorize that wait for `person` (default: the acting person): an
    unsatisfied need they could approve for (`Decision.waiting_for`), oldest change first.
    Left out: a change whose latest assessment is of older content (it waits for a new
    assessment, not for an approver), and a standard change its template authorizes."""
    ctx.actor.require(Permission.CHANGES_READ)
    person = inbox_person(catalog, ctx, person)
    with engine.connect() as conn:
        waiting = approval_store.in_state(conn, ChangeState.AUTHORIZE)
        given = approval_store.of_changes(conn, [change.number for change in waiting])
        assessed = {
            change.number: assessment_store.latest(conn, change.number) for change in waiting
        }
    policy = approvals.ApprovalPolicy.of(catalog)
    now = ctx.now()
    items = []
    for change in waiting:
        latest = lifecycle.usable_assessment(change, assessed[change.number])
        covered = lifecycle.template_match(catalog, change, latest)
        if covered is not None and covered.ok:
            continue
        try:
            required = approvals.required_approvals(
                change,
                latest,
                impact.analyze(catalog, change.spec),
                policy,
                catalog,
            )
        except Refused:
            continue
        status = approvals.evaluate(
            required, given[change.number], change=change, catalog=catalog, now=now
        )
        needs = status.waiting_for(person)
        if needs:
            items.append(InboxItem(change, required, status, needs))
    return items
