"""Use cases on risk assessments: assess a change, read its latest assessment, calibrate.

Assessing reads the change and its team's history, computes outside any write lock (impact
over thousands of tenants takes milliseconds, but a write transaction on SQLite blocks every
other writer), then stores the assessment and its audit event in one transaction, provided
the change was not edited or closed meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from changegate.domain import catalog as catalog_model
from changegate.domain import changes, impact, risk
from changegate.domain.approvals import TemplateMatch
from changegate.domain.changes import ChangeRequest
from changegate.domain.permissions import Permission
from changegate.errors import Conflict, InvalidInput, NotFound, Problem, Refused
from changegate.services import audit as audit_service
from changegate.services import calendar, lifecycle
from changegate.services import policy as policy_gate
from changegate.services.context import Context
from changegate.store import assessments as assessment_store
from changegate.store import changes as change_store
from changegate.store import db
from changegate.store import policy_reports as policy_store
from changegate.store import schedules as schedule_store


def _assessable(change: ChangeRequest) -> None:
    if change.state in changes.FINAL_STATES:
        raise Refused(
            f"{change.id} is {change.state.value}; a final change is not assessed again "
            "(its latest assessment stands for the calibration report)"
        )


def _summary(assessment: risk.Assessment) -> dict[str, Any]:
    """What the audit event records of an assessment."""
    return {
        "assessment_id": assessment.id,
        "score": assessment.score,
        "risk_class": assessment.risk_class.value,
        "content_hash": assessment.content_hash,
        "catalog_digest": assessment.catalog_digest,
        "rule_version": assessment.rule_version,
    }


def assess(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    *,
    gitops_workdir: Path | None = None,
) -> risk.Assessment:
    """Check the change's artifacts against the policy gates, score its risk, store both.

    Any state but closed and canceled may be assessed; every run is kept and the latest
    counts. The gate's report is stored with the assessment: its failing findings are the
    risk score's policy factor, its unwaived errors block authorization. Artifact paths are
    relative to the PolicyConfig's `artifacts_root` (docs/policy.md); the change's GitOps
    commit ranges are read from the clone at `gitops_workdir`. A standard change is
    checked against its templates too (the result is on the `change.assessed` event); one
    covered while in Assess, with a passing gate, moves on to Authorize, authorized by the
    template (`change.authorized` with `via: template`). Refused for final changes;
    Conflict when the change is edited or closed while being assessed (assess it again).
    """
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    number = changes.parse_id(change_id)
    now = ctx.now()
    policy = risk.RiskPolicy.of(catalog)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        _assessable(change)
        team = risk.team_of(catalog, change.requester)
        since = now - policy.period
        records = (
            assessment_store.history(
                conn,
                requesters=risk.team_members(catalog, team),
                category=change.spec.category,
                since=since,
            )
            if team is not None
            else []
        )
        # A booked change's conflicts (other changes, freezes declared since) raise its risk.
        analysed = impact.analyze(catalog, change.spec)
        clashes = calendar.current_conflicts(
            conn, catalog, change, schedule_store.of_change(conn, number), analysed
        )
        # Whether its very images were shipped by a successful staging change.
        promoted = lifecycle.promotion_of(conn, catalog, change)
    history = risk.TeamHistory(
        team=team, category=change.spec.category, since=since, records=tuple(records)
    )
    gate = policy_gate.check_change(catalog, change, now=now, gitops_workdir=gitops_workdir)
    result = risk.assess(
        change,
        analysed,
        policy,
        history,
        staging_verified=promoted.staging_verified,
        policy_findings=policy_gate.risk_findings(gate),
        calendar_conflicts=[risk.CalendarConflict(*clash.for_risk()) for clash in clashes],
    )
    with db.transaction(engine) as conn:
        current = change_store.get(conn, number)
        _assessable(current)
        if current.content_hash != change.content_hash:
            raise Conflict(f"{change.id} was edited while it was assessed; assess it again")
        previous = assessment_store.latest(conn, number)
        stored = assessment_store.insert(
            conn, number, result, assessed_by=ctx.actor.id, created_at=now
        )
        assert stored.id is not None
        policy_store.insert(
            conn,
            number,
            stored.id,
            gate,
            content_hash=stored.content_hash,
            catalog_digest=stored.catalog_digest,
            created_at=now,
        )
        summary = _summary(stored)
        summary["policy"] = {"passed": gate.passed, "summary": gate.summary.as_dict()}
        covered = lifecycle.template_match(catalog, current, stored)
        if covered is not None:
            summary["template"] = covered.as_dict()
        audit_service.record(
            conn,
            ctx,
            "change.assessed",
            "change",
            stored.change_id,
            _summary(previous) if previous is not None else None,
            summary,
        )
        if (
            covered is not None
            and covered.ok
            and gate.passed
            and current.state is changes.ChangeState.ASSESS
        ):
            _authorize_by_template(conn, catalog, ctx, current, covered)
    return stored


def _authorize_by_template(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change: ChangeRequest,
    covered: TemplateMatch,
) -> None:
    """A standard change its template covers: on to Authorize, authorized by the template."""
    label = f"standard template {covered.template} v{covered.version}"
    moved = lifecycle.apply_transition(
        conn, catalog, ctx, change, changes.ChangeState.AUTHORIZE, reason=f"{label} covers it"
    )
    audit_service.record(
        conn,
        ctx,
        "change.authorized",
        "change",
        moved.id,
        None,
        {"via": "template", "template": covered.as_dict()},
    )


def latest(engine: sa.Engine, ctx: Context, change_id: str) -> risk.Assessment:
    """The newest assessment of a change; NotFound when the change was never assessed."""
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        found = assessment_store.latest(conn, number)
    if found is None:
        raise NotFound(f"{change.id} has not been assessed yet: assess it first")
    return found


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(
            [Problem("needs a timezone offset, e.g. 2026-11-01T00:00:00Z", field=name)]
        )


def risk_calibration(
    engine: sa.Engine,
    ctx: Context,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """For changes closed in [since, until): per risk class, how many failed.

    One row per class (low, medium, high, critical), then `unassessed` for closed changes
    never assessed; the class is that of each change's latest assessment. `failed` counts
    unsuccessful changes, `with_issues` successful-with-issues ones (not failures).
    """
    ctx.actor.require(Permission.CHANGES_READ)
    _aware("since", since)
    _aware("until", until)
    if since is not None and until is not None and until <= since:
        raise InvalidInput([Problem("until must be after since", field="until")])
    with engine.connect() as conn:
        samples = assessment_store.calibration_samples(conn, since=since, until=until)
    return [row.as_dict() for row in risk.calibrate(samples)]
