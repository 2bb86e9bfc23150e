"""Moving a change inside a transaction, with the gates its lifecycle needs.

`apply_transition` is the one place a change changes state (the change, approval and
assessment services all call it inside their own transactions). Two moves are gated on more
than the transition table:

    Assess -> Authorize     (normal and standard changes) needs an assessment of the change's
                            current content: the approval rules depend on its risk class.
    Authorize -> Scheduled  needs the change to be authorized now (`authorization`): by a
                            standard template that covers it, or by its approvals (quorum,
                            separation of duties, the current content hash, none expired),
                            and the policy gate of its current assessment has no unwaived
                            error (nor a waiver that expired or left the catalog since).

`authorization` is computed, not stored: from the change, its latest assessment, the
approvals given and the catalog, at an instant. Approvals are *used* when the change leaves
Authorize for Scheduled; from then on their expiry no longer matters (a material edit still
voids them and sends the change back, see `domain.changes.edit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import approvals, calendar, canonical, changes, impact
from changegate.domain import catalog as catalog_model
from changegate.domain import promotion as promotion_model
from changegate.domain.approvals import Decision, Requirement, TemplateMatch
from changegate.domain.changes import ChangeRequest, ChangeState, ChangeType, CloseCode
from changegate.domain.risk import Assessment
from changegate.errors import InvalidInput, Problem, Refused
from changegate.services import audit as audit_service
from changegate.services import policy as policy_gate
from changegate.services.context import Context
from changegate.store import approvals as approval_store
from changegate.store import assessments as assessment_store
from changegate.store import changes as change_store
from changegate.store import policy_reports as policy_store
from changegate.store import rollouts as rollout_store
from changegate.store import schedules as schedule_store

S = ChangeState

CONSENT_OVERRIDE = "cab"
"""Who may start an exempted change without the customer's consent (the customer cannot be
reached in an emergency): the CAB, recorded like any calendar override."""


def current_assessment(conn: sa.Connection, change: ChangeRequest) -> Assessment | None:
    """The latest assessment if it is of the change's current content, else None."""
    found = assessment_store.latest(conn, change.number)
    if found is None or found.content_hash != change.content_hash:
        return None
    return found


def usable_assessment(change: ChangeRequest, latest: Assessment | None) -> Assessment | None:
    """The assessment the approval rules see: the latest, except that an emergency change
    (which needs none) assessed before an edit is treated as not assessed. Any other change
    with an assessment of older content is refused by `approvals.required_approvals`."""
    if (
        change.spec.type is ChangeType.EMERGENCY
        and latest is not None
        and latest.content_hash != change.content_hash
    ):
        return None
    return latest


def requirement_for(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    analysed: impact.Impact | None = None,
) -> Requirement:
    """Who must approve the change's current content, from its `usable_assessment`
    (Refused when it is of older content: assess again)."""
    return _requirement(catalog, change, assessment_store.latest(conn, change.number), analysed)


def _requirement(
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    latest: Assessment | None,
    analysed: impact.Impact | None,
) -> Requirement:
    return approvals.required_approvals(
        change,
        usable_assessment(change, latest),
        analysed if analysed is not None else impact.analyze(catalog, change.spec),
        approvals.ApprovalPolicy.of(catalog),
        catalog,
    )


def template_match(
    catalog: catalog_model.Catalog, change: ChangeRequest, assessment: Assessment | None
) -> TemplateMatch | None:
    """For a standard change, whether a template covers it (the one it names, else any);
    None for other types."""
    if change.spec.type is not ChangeType.STANDARD:
        return None
    templates = catalog.standard_templates
    named = change.spec.template
    if named is not None:
        found = templates.get(named)
        if found is None:
            return TemplateMatch(
                False, None, None, (f"no standard template {named!r} in the catalog",)
            )
        return approvals.match_template(change, assessment, [found])
    return approvals.match_template(change, assessment, templates.values())


@dataclass(frozen=True, slots=True)
class Authorization:
    """Whether the change may leave Authorize for Scheduled now, and on what grounds.

    `via` is `template` (a standard template covers it), `approvals` (its decision is
    authorized) or None. `template` is the template check of a standard change (also when
    it failed: the reasons it is approved like a normal change); `requirement` and
    `decision` are None only when the requirement could not be computed (an assessment of
    older content: `reason` says so).
    """

    authorized: bool
    via: str | None
    reason: str
    requirement: Requirement | None
    decision: Decision | None
    template: TemplateMatch | None
    # The production change's promotion evidence (the same digests shipped by staging).
    promotion: promotion_model.Promotion | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (the decision and requirement are reported beside it)."""
        until = self.decision.valid_until if self.decision is not None else None
        if self.via != "approvals":
            until = None
        return {
            "authorized": self.authorized,
            "via": self.via,
            "reason": self.reason,
            "valid_until": canonical.to_utc_text(until) if until is not None else None,
            "template": self.template.as_dict() if self.template is not None else None,
            "promotion": self.promotion.as_dict() if self.promotion is not None else None,
        }


def authorization(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    now: datetime,
    analysed: impact.Impact | None = None,
) -> Authorization:
    """Whether the change is authorized at `now` (see the module docstring)."""
    latest = assessment_store.latest(conn, change.number)
    current = latest if latest is not None and latest.content_hash == change.content_hash else None
    match = template_match(catalog, change, current)
    try:
        required = _requirement(catalog, change, latest, analysed)
    except Refused as exc:
        if match is not None and match.ok:
            required = None
        else:
            return Authorization(False, None, str(exc), None, None, match)
    decision = None
    if required is not None:
        given = approval_store.of_change(conn, change.number)
        decision = approvals.evaluate(required, given, change=change, catalog=catalog, now=now)
    # The policy gate and promotion come before templates and approvals: neither overrides
    # them.
    promoted = promotion_of(conn, catalog, change)
    blocked = _policy_block(conn, catalog, current, now)
    if blocked is not None:
        return Authorization(False, None, blocked, required, decision, match, promoted)
    if promoted.applies and not promoted.promoted:
        return Authorization(False, None, promoted.reason, required, decision, match, promoted)
    if match is not None and match.ok:
        reason = f"pre-approved: standard template {match.template} v{match.version} covers it"
        return Authorization(True, "template", reason, required, decision, match, promoted)
    assert required is not None
    assert decision is not None
    if decision.authorized:
        return Authorization(
            True, "approvals", decision.reason, required, decision, match, promoted
        )
    reason = decision.reason
    if match is not None:
        reason += "; no standard template covers it: " + "; ".join(match.reasons)
    return Authorization(False, None, reason, required, decision, match, promoted)


def promotion_of(
    conn: sa.Connection, catalog: catalog_model.Catalog, change: ChangeRequest
) -> promotion_model.Promotion:
    """The production change's promotion from the environment before it (domain.promotion)."""
    source = promotion_model.applies(catalog, change)
    candidates = change_store.closed_successful(conn, source) if source is not None else []
    if catalog.gitops_repository is not None:
        # Changes are delivered by rollouts here: only a rollout that completed (every wave
        # synced, verified and baked) makes a staging change verified evidence.
        complete = rollout_store.complete_among(conn, [c.number for c in candidates])
        candidates = [c for c in candidates if c.number in complete]
    return promotion_model.evaluate(catalog, change, candidates)


def _policy_block(
    conn: sa.Connection, catalog: catalog_model.Catalog, current: Assessment | None, now: datetime
) -> str | None:
    """Why the policy gate of the current assessment blocks authorization, or None."""
    if current is None or current.id is None:
        return None
    stored = policy_store.of_assessment(conn, current.id)
    if stored is None:
        return None
    reasons = policy_gate.gate_problems(stored.report, catalog, now)
    if not reasons:
        return None
    shown = "; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else "")
    return (
        f"the policy gate blocks it: {len(reasons)} unwaived error-level "
        f"{'finding' if len(reasons) == 1 else 'findings'} ({shown}); fix the artifacts or add "
        "waivers to the catalog, then assess again"
    )


@dataclass(frozen=True, slots=True)
class StartCheck:
    """May the change (one wave of it) start at `at`: the calendar's decision for each of
    its tenants that blocks it, and the roles that may override (None: cannot be
    overridden, a blackout)."""

    change_id: str
    wave: int
    waves: int
    at: datetime
    tenants: tuple[str, ...]
    blocked: tuple[calendar.CalendarDecision, ...]
    # Tenants let through by a freeze that asks for their consent (`exempt.consent`), not
    # given yet for this content, with those windows.
    missing_consent: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.blocked and not self.missing_consent

    @property
    def override_roles(self) -> tuple[str, ...] | None:
        """Every role an override needs (one per kind of block), or None when some block
        (a blackout) has no override. A missing consent: the CAB stands in for a customer
        who cannot be reached."""
        if any(decision.override_by is None for decision in self.blocked):
            return None
        roles = {d.override_by for d in self.blocked if d.override_by}
        if self.missing_consent:
            roles.add(CONSENT_OVERRIDE)
        return tuple(sorted(roles))

    @property
    def reason(self) -> str:
        if self.allowed:
            return f"the calendar allows all {len(self.tenants)} tenant(s) of wave {self.wave}"
        parts = [f"{d.tenant}: {d.reason}" for d in self.blocked]
        parts += [
            f"{tenant}: {', '.join(windows)} let this change through only with the consent "
            f"of the tenant's customer approver (changegate change consent {self.change_id} "
            f"--tenant {tenant})"
            for tenant, windows in self.missing_consent
        ]
        shown = "; ".join(parts[:5])
        more = len(parts) - 5
        return shown + (f"; and {more} more" if more > 0 else "")

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        roles = self.override_roles
        return {
            "change_id": self.change_id,
            "wave": self.wave,
            "waves": self.waves,
            "at": canonical.to_utc_text(self.at),
            "allowed": self.allowed,
            "tenants": len(self.tenants),
            "blocked": [decision.as_dict() for decision in self.blocked],
            "missing_consent": [
                {"tenant": tenant, "windows": list(windows)}
                for tenant, windows in self.missing_consent
            ],
            "override_roles": list(roles) if roles is not None else None,
            "reason": self.reason,
        }


def start_check(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    at: datetime,
    wave: int = 1,
) -> StartCheck:
    """Whether the calendar lets wave `wave` of the change start at `at`, decided now, with
    the catalog as it is now: a freeze declared after the change was approved and scheduled
    still holds it back. A change with no stored waves is checked on all its tenants."""
    waves = schedule_store.of_change(conn, change.number)
    if waves:
        if not 1 <= wave <= len(waves):
            raise InvalidInput(
                [Problem(f"{change.id} has waves 1-{len(waves)}, not {wave}", field="wave")]
            )
        tenants = waves[wave - 1].tenants
    else:
        tenants = tuple(impact.analyze(catalog, change.spec).tenants)
    blocked = []
    missing = []
    consented = schedule_store.consented_tenants(conn, change.number, change.content_hash)
    for tenant in tenants:
        if tenant not in catalog.tenants:
            continue  # removed from the catalog since: nothing left to protect
        decided = calendar.decide(
            catalog,
            tenant,
            at,
            change_type=change.spec.type.value,
            category=change.spec.category.value,
        )
        if not decided.allowed:
            blocked.append(decided)
        # An override of the block (outside the allow windows, say) does not stand in for
        # the customer's consent a freeze asks for: that is its own line of the check.
        asking = tuple(
            window
            for window in decided.exempted
            if window in catalog.windows and catalog.windows[window].spec.exempt.consent
        )
        if asking and tenant not in consented:
            missing.append((tenant, asking))
    return StartCheck(
        change.id,
        wave,
        max(len(waves), 1),
        at,
        tuple(tenants),
        tuple(blocked),
        tuple(missing),
    )


def _calendar_gate(
    catalog: catalog_model.Catalog,
    ctx: Context,
    current: ChangeRequest,
    found: StartCheck,
    override: str | None,
) -> dict[str, Any]:
    """Refuse a start the calendar does not allow, unless overridden (with a reason) by a
    person who holds, now, every role the blocks name and is neither the change's requester
    nor its implementer. What the audit event records of it."""
    record = found.as_dict()
    if found.allowed:
        return record
    roles = found.override_roles
    if not override:
        who = (
            f"; {', '.join(roles)} may override (with a reason)"
            if roles
            else "; nobody may override a blackout"
        )
        raise Refused(
            f"{current.id} may not start now: {found.reason}{who}",
            override_by=", ".join(roles) if roles else None,
        )
    if roles is None:
        raise Refused(f"{current.id} may not start now: {found.reason}; a blackout has no override")
    person = catalog.person(ctx.actor.id)
    held = set(person.spec.roles) if person is not None else set()
    missing = [role for role in roles if role not in held]
    if missing or ctx.actor.id in (current.requester, current.spec.implementer):
        why = (
            f"{ctx.actor.id} is the requester or implementer of {current.id}"
            if ctx.actor.id in (current.requester, current.spec.implementer)
            else f"{ctx.actor.id} does not hold {', '.join(missing)}"
        )
        raise Refused(
            f"{current.id} may not start now: {found.reason}; {why}, so cannot override",
            override_by=", ".join(roles),
        )
    record["override"] = {"by": ctx.actor.id, "roles": list(roles), "reason": override}
    return record


def require_authorized(
    conn: sa.Connection, catalog: catalog_model.Catalog, change: ChangeRequest, now: datetime
) -> Authorization:
    """The change's authorization, or Refused saying what is missing and who can approve."""
    found = authorization(conn, catalog, change, now)
    if not found.authorized:
        raise Refused(
            f"{change.id} is not authorized: {found.reason}",
            override_by=_who_can(found.decision),
        )
    return found


def _who_can(decision: Decision | None) -> str | None:
    if decision is None:
        return None
    names = sorted({person for status in decision.missing for person in status.candidates})
    return ", ".join(names) or None


def _gate(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    ctx: Context,
    current: ChangeRequest,
    target: ChangeState,
    override_calendar: str | None,
) -> tuple[str, dict[str, Any]] | None:
    """Refuse a gated move that is not allowed now; what the audit event records of it."""
    if current.state is S.SCHEDULED and target is S.IMPLEMENTING:
        check = start_check(conn, catalog, current, ctx.now())
        return "calendar", _calendar_gate(catalog, ctx, current, check, override_calendar)
    if override_calendar:
        raise InvalidInput(
            [
                Problem(
                    "a calendar override is given only when starting (scheduled -> implementing)",
                    field="override_calendar",
                )
            ]
        )
    if (
        current.state is S.ASSESS
        and target is S.AUTHORIZE
        and current.spec.type is not ChangeType.EMERGENCY
        and current_assessment(conn, current) is None
    ):
        raise Refused(
            f"{current.id} has no assessment of its current content; assess it first "
            f"(changegate change assess {current.id}): its approval rules depend on its risk"
        )
    if current.state is S.AUTHORIZE and target is S.SCHEDULED:
        found = require_authorized(conn, catalog, current, ctx.now())
        return "authorization", found.as_dict()
    return None


def apply_transition(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    ctx: Context,
    current: ChangeRequest,
    target: ChangeState,
    *,
    close_code: CloseCode | None = None,
    close_notes: str | None = None,
    reason: str | None = None,
    rejection: bool = False,
    override_calendar: str | None = None,
) -> ChangeRequest:
    """Move `current` (read in this transaction) to `target` and audit it, guarded by its
    version and the lifecycle gates. Permission and text checks are the caller's.

    A move back to Draft from Assess or Authorize is `change.rejected` when the approvals
    service rejects (`rejection`, after its checks) and `change.withdrawn` otherwise.
    Scheduled -> Implementing needs the calendar's leave (`start_check`) or
    `override_calendar`, the override's reason, from someone who may give it."""
    moved = changes.transition(
        current, target, ctx.now(), close_code=close_code, close_notes=close_notes
    )
    gated = _gate(conn, catalog, ctx, current, target, override_calendar)
    change_store.update(conn, moved, current.version)
    reopened = changes.returns_to_draft(current.state, moved.state)
    before = {"state": current.state.value, "version": current.version}
    after: dict[str, Any] = {"state": moved.state.value, "version": moved.version}
    if reason:
        after["reason"] = reason
    if close_code is not None:
        after["close_code"] = close_code.value
        after["close_notes"] = moved.close_notes
    if gated is not None:
        after[gated[0]] = gated[1]
    if reopened:
        # Where pending approvals end: they name the content they approved and count only
        # while the change waits in Authorize.
        after["pending_approvals_canceled"] = True
    action = "change.transitioned"
    if reopened:
        action = "change.rejected" if rejection else "change.withdrawn"
    audit_service.record(conn, ctx, action, "change", moved.id, before, after)
    return moved
