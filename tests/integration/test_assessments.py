"""Risk assessment services on the real store, on SQLite and on PostgreSQL.

Over the sample platform: alice (requester) and carol are in team platform, judy in
customer-success; bob implements and moves changes through their lifecycle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain import impact, risk
from changegate.domain.changes import ChangeRequest, ChangeState
from changegate.errors import Conflict, InvalidInput, NotFound, Refused
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services.context import Context, actor_for
from changegate.store.schema import assessments as assessments_table
from changegate.store.schema import audit_events
from tests.factories import change_spec
from tests.lifecycle import drive

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
S = ChangeState


def at(catalog: catalog_model.Catalog, person: str, when: datetime = NOW) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: when)


def create(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    requester: str = "alice",
    when: datetime = NOW,
    **overrides: Any,
) -> ChangeRequest:
    return change_service.create(
        app.engine, catalog, at(catalog, requester, when), change_spec(**overrides)
    )


def close(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    code: str,
    when: datetime = NOW,
    incidents: tuple[str, ...] = (),
) -> ChangeRequest:
    bob = at(catalog, "bob", when)
    drive(app.engine, catalog, change.id, S.REVIEW, as_=lambda person: at(catalog, person, when))
    if incidents:
        change_service.edit(app.engine, catalog, bob, change.id, {"incidents": list(incidents)})
    return change_service.transition(app.engine, catalog, bob, change.id, S.CLOSED, close_code=code)


def assess(
    app: bootstrap.App, catalog: catalog_model.Catalog, change_id: str, when: datetime = NOW
) -> risk.Assessment:
    return assessment_service.assess(app.engine, catalog, at(catalog, "alice", when), change_id)


# ------------------------------------------------------------------ assess and store


def test_assessing_stores_the_breakdown_and_audits_it(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = create(app, catalog)
    result = assess(app, catalog, change.id)
    assert result.id == 1
    assert result.created_at == NOW
    assert result.assessed_by == "alice"
    assert result.change_id == change.id
    assert result.content_hash == change.content_hash
    assert result.catalog_digest == catalog.digest
    assert result.rule_version == risk.RiskPolicy.of(catalog).rule_version
    assert sum(f.points for f in result.factors) == result.score
    assert all(f.reason for f in result.factors)
    # The pure computation over the same inputs gives the same breakdown.
    expected = risk.assess(
        change,
        impact.analyze(catalog, change.spec),
        risk.RiskPolicy.of(catalog),
        risk.TeamHistory("platform", change.spec.category, NOW - timedelta(days=90)),
    )
    assert result.evolve(id=None, created_at=None, assessed_by=None) == expected

    stored = assessment_service.latest(app.engine, at(catalog, "frank"), change.id)
    assert stored == result
    assert stored.as_dict() == result.as_dict()
    with app.engine.connect() as conn:
        row = conn.execute(sa.select(assessments_table)).one()
    assert (row.change_id, row.score, row.risk_class) == (1, result.score, result.risk_class)
    assert row.factors == [f.as_dict() for f in result.factors]
    assert row.impact["scope"] == result.impact["scope"]

    events = audit_service.events(app.engine, at(catalog, "alice"), object_id=change.id)
    assert [e.action for e in events] == ["change.created", "change.assessed"]
    assert events[-1].actor == "alice"
    assert events[-1].before is None
    assert events[-1].after == {
        "assessment_id": 1,
        "score": result.score,
        "risk_class": result.risk_class.value,
        "content_hash": change.content_hash,
        "catalog_digest": catalog.digest,
        "rule_version": result.rule_version,
        "policy": {
            "passed": True,
            "summary": {
                "documents": 0,  # the change ships no artifact
                "rules_run": events[-1].after["policy"]["summary"]["rules_run"],
                "passed": events[-1].after["policy"]["summary"]["rules_run"],
                "failed": 0,
                "waived": 0,
                "expired": 0,
                "errors": 0,
                "warnings": 0,
                "infos": 0,
            },
        },
    }
    assert audit_service.verify(app.engine, at(catalog, "frank")).ok


def test_reassessing_keeps_every_run_and_the_latest_counts(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = create(app, catalog)
    first = assess(app, catalog, change.id)
    later = NOW + timedelta(hours=1)
    change_service.edit(
        app.engine, catalog, at(catalog, "alice"), change.id, {"test_evidence": ["junit.xml"]}
    )
    second = assess(app, catalog, change.id, later)
    assert second.id == 2
    assert second.factor("evidence").points < first.factor("evidence").points
    assert assessment_service.latest(app.engine, at(catalog, "alice"), change.id) == second
    (event,) = [
        e
        for e in audit_service.events(app.engine, at(catalog, "alice"), object_id=change.id)
        if e.action == "change.assessed" and e.after["assessment_id"] == 2
    ]
    assert event.before["assessment_id"] == 1
    assert event.before["score"] == first.score


def test_the_same_change_and_catalog_assess_the_same(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = create(app, catalog)
    first = assess(app, catalog, change.id)
    second = assess(app, catalog, change.id, NOW + timedelta(minutes=5))
    assert (first.score, first.factors, first.catalog_digest, first.rule_version) == (
        second.score,
        second.factors,
        second.catalog_digest,
        second.rule_version,
    )


# ------------------------------------------------------------------ refusals


def test_who_may_assess_and_what_cannot_be_assessed(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = create(app, catalog)
    with pytest.raises(Refused, match="may not changes:transition"):
        assessment_service.assess(app.engine, catalog, at(catalog, "frank"), change.id)
    with pytest.raises(NotFound, match="has not been assessed yet"):
        assessment_service.latest(app.engine, at(catalog, "frank"), change.id)
    with pytest.raises(NotFound, match="CHG-99 does not exist"):
        assess(app, catalog, "CHG-99")
    with pytest.raises(NotFound, match="CHG-99 does not exist"):
        assessment_service.latest(app.engine, at(catalog, "frank"), "CHG-99")
    with pytest.raises(InvalidInput, match="not a change id"):
        assess(app, catalog, "nope")
    canceled = change_service.transition(
        app.engine, catalog, at(catalog, "alice"), change.id, S.CANCELED
    )
    with pytest.raises(Refused, match="is canceled; a final change is not assessed again"):
        assess(app, catalog, canceled.id)


def test_an_edit_while_assessing_writes_nothing(
    app: bootstrap.App, catalog: catalog_model.Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = create(app, catalog)
    original: Callable[..., Any] = impact.analyze

    def edited_meanwhile(cat: catalog_model.Catalog, spec: Any, **kwargs: Any) -> Any:
        change_service.edit(app.engine, cat, at(cat, "alice"), change.id, {"title": "Other"})
        return original(cat, spec, **kwargs)

    monkeypatch.setattr(assessment_service.impact, "analyze", edited_meanwhile)
    with pytest.raises(Conflict, match="was edited while it was assessed"):
        assess(app, catalog, change.id)
    with app.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(assessments_table))
        assert stored.scalar_one() == 0
        actions = conn.execute(sa.select(audit_events.c.action)).scalars().all()
    assert "change.assessed" not in actions


# ------------------------------------------------------------------ history


def test_history_counts_the_teams_closed_changes_in_the_category_and_period(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    recent = NOW - timedelta(days=10)
    # Team platform, module-update, in the last 90 days: these count.
    ok = close(app, catalog, create(app, catalog, when=recent), "successful", recent)
    bad = close(
        app,
        catalog,
        create(app, catalog, "carol", recent),
        "unsuccessful",
        recent,
        incidents=("INC-7:P1", "INC-8"),
    )
    # Not counted: another category, another team, too long ago, not closed.
    close(app, catalog, create(app, catalog, when=recent, category="tenant-config"), "unsuccessful")
    close(app, catalog, create(app, catalog, "judy", recent), "unsuccessful", recent)
    old = NOW - timedelta(days=91)
    close(app, catalog, create(app, catalog, when=old), "unsuccessful", old)
    create(app, catalog)

    change = create(app, catalog)
    result = assess(app, catalog, change.id)
    history = result.inputs["history"]
    assert history["team"] == "platform"
    assert history["category"] == "module-update"
    assert history["since"] == "2026-08-04T09:00:00.000000Z"
    assert history["changes"] == [
        {"change_id": ok.id, "close_code": "successful", "incidents": [], "score": 3},
        {
            "change_id": bad.id,
            "close_code": "unsuccessful",
            "incidents": ["INC-7:P1", "INC-8"],
            "score": -15,
        },
    ]
    assert result.factor("history") == risk.Factor(
        "history",
        12,
        "team platform, module-update, the last 90 days: 2 closed changes, 1 successful (+3), "
        "1 unsuccessful (-5), 1 P1 incident (-10); success score -12 → +12; "
        "1 incident without a severity not scored (INC-8)",
    )


# ------------------------------------------------------------------ calibration


def test_risk_calibration_reports_failures_per_class_of_the_latest_assessment(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    reader = at(catalog, "frank")
    assert [row["changes"] for row in assessment_service.risk_calibration(app.engine, reader)] == [
        0,
        0,
        0,
        0,
        0,
    ]
    twin = next(t.id for t in catalog.tenants.values() if t.spec.environment == "staging")
    staging = {"environment": "staging", "targets": {"tenants": [twin]}}
    wide = {
        "category": "database-upgrade",
        "targets": {"services": ["pg-eu-west-prod-1"]},
        "rollback_plan": {"steps": "", "irreversible": True},
        "test_plan": "",
    }
    outcomes = [
        (staging, "successful"),
        (staging, "successful"),
        (staging, "successful-with-issues"),
        (wide, "unsuccessful"),
        (wide, "successful"),
    ]
    classes = []
    for overrides, code in outcomes:
        change = create(app, catalog, **overrides)
        classes.append(assess(app, catalog, change.id).risk_class)
        close(app, catalog, change, code)
    assert classes[:3] == [risk.RiskClass.LOW] * 3
    assert classes[3:] == [risk.RiskClass.CRITICAL] * 2
    # An emergency change skips Assess: closed without an assessment.
    close(app, catalog, create(app, catalog, type="emergency"), "unsuccessful")
    create(app, catalog)  # assessed but not closed: not reported
    assess(app, catalog, "CHG-7")

    report = assessment_service.risk_calibration(app.engine, reader)
    rows = {row["risk_class"]: row for row in report}
    assert list(rows) == ["low", "medium", "high", "critical", "unassessed"]
    assert rows["low"] == {
        "risk_class": "low",
        "changes": 3,
        "successful": 2,
        "with_issues": 1,
        "failed": 0,
        "failure_rate": 0.0,
        "with_issues_rate": 0.3333,
    }
    assert rows["medium"]["changes"] == rows["high"]["changes"] == 0
    assert rows["medium"]["failure_rate"] is None
    assert (rows["critical"]["changes"], rows["critical"]["failed"]) == (2, 1)
    assert rows["critical"]["failure_rate"] == 0.5
    assert (rows["unassessed"]["changes"], rows["unassessed"]["failed"]) == (1, 1)

    later = assessment_service.risk_calibration(
        app.engine, reader, since=NOW + timedelta(seconds=1)
    )
    assert sum(row["changes"] for row in later) == 0
    until = assessment_service.risk_calibration(app.engine, reader, until=NOW)
    assert sum(row["changes"] for row in until) == 0
    with pytest.raises(InvalidInput, match="needs a timezone offset"):
        assessment_service.risk_calibration(app.engine, reader, since=datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="until must be after since"):
        assessment_service.risk_calibration(app.engine, reader, since=NOW, until=NOW)
