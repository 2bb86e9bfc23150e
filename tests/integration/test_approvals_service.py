"""Approval services on the real store, on SQLite and on PostgreSQL.

The sample change (`tests.factories.change_spec`: requested by alice, implemented by bob,
gold tenants in prod) assesses as high risk, so the default rules ask for 1 platform-lead
(carol) and 1 cab (dave, ivan, peggy).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain.approvals import Decision
from changegate.domain.changes import ChangeState
from changegate.errors import Conflict, InvalidInput, Refused
from changegate.services import approvals as approval_service
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services.context import Context
from changegate.settings import Settings
from changegate.store.schema import approvals as approvals_table
from tests.conftest import ctx_for
from tests.factories import change_spec
from tests.integration.test_change_service import _race


def _waiting(app: bootstrap.App, catalog: catalog_model.Catalog) -> str:
    """A high-risk change filed by alice, assessed, waiting in Authorize."""
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.submit(app.engine, catalog, alice, change.id)
    assessment = assessment_service.assess(app.engine, catalog, alice, change.id)
    assert assessment.risk_class.value == "high"
    change_service.transition(
        app.engine, catalog, ctx_for(catalog, "carol"), change.id, "authorize"
    )
    return change.id


def _actions(app: bootstrap.App, catalog: catalog_model.Catalog, change_id: str) -> list[str]:
    events = audit_service.events(app.engine, ctx_for(catalog, "frank"), object_id=change_id)
    return [event.action for event in events]


def _rows(app: bootstrap.App) -> list[tuple[str, str]]:
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(approvals_table.c.person, approvals_table.c.content_hash).order_by(
                approvals_table.c.id
            )
        ).all()
    return [(row.person, row.content_hash) for row in rows]


def test_eligible_people_approve_until_authorized(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = _waiting(app, catalog)
    first = approval_service.approve(
        app.engine, catalog, ctx_for(catalog, "dave"), change_id, comment="looks fine"
    )
    assert not first.authorized
    assert first.counted == {"dave": "cab"}
    assert [status.need.key for status in first.missing] == ["platform-lead"]
    second = approval_service.approve(app.engine, catalog, ctx_for(catalog, "carol"), change_id)
    assert second.authorized
    assert second.counted == {"carol": "platform-lead", "dave": "cab"}
    assert second.valid_until is not None
    # A third, valid but not needed, is recorded; the change is not authorized twice.
    third = approval_service.approve(app.engine, catalog, ctx_for(catalog, "ivan"), change_id)
    assert third.authorized
    assert [item.why.value for item in third.ignored] == ["not-needed"]
    actions = _actions(app, catalog, change_id)
    assert actions[-4:] == [
        "change.approved",
        "change.approved",
        "change.authorized",
        "change.approved",
    ]
    events = audit_service.events(app.engine, ctx_for(catalog, "frank"), object_id=change_id)
    approved = [event for event in events if event.action == "change.approved"]
    assert approved[0].after["person"] == "dave"
    assert approved[0].after["authorized"] is False
    assert approved[1].after["authorized"] is True
    authorized = next(event for event in events if event.action == "change.authorized")
    assert authorized.after["decision"]["authorized"] is True
    assert authorized.after["requirement"]["risk_class"] == "high"
    # Approving does not move the change (lifecycle gating comes later).
    stored = change_service.get(app.engine, ctx_for(catalog, "alice"), change_id)
    assert stored.state is ChangeState.AUTHORIZE
    assert [person for person, _ in _rows(app)] == ["dave", "carol", "ivan"]
    read = approval_service.decision(app.engine, catalog, ctx_for(catalog, "alice"), change_id)
    assert read.authorized and read.counted == second.counted
    assert audit_service.verify(app.engine, ctx_for(catalog, "frank")).ok


def test_requester_implementer_and_ineligible_are_refused(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = _waiting(app, catalog)
    before = _actions(app, catalog, change_id)
    with pytest.raises(Refused, match="requester") as caught:
        approval_service.approve(app.engine, catalog, ctx_for(catalog, "alice"), change_id)
    assert caught.value.override_by and "carol" in caught.value.override_by
    with pytest.raises(Refused, match="implementer"):
        approval_service.approve(app.engine, catalog, ctx_for(catalog, "bob"), change_id)
    with pytest.raises(Refused, match="cannot approve"):
        approval_service.approve(app.engine, catalog, ctx_for(catalog, "heidi"), change_id)
    with pytest.raises(Refused, match="does not hold the role"):
        approval_service.approve(
            app.engine, catalog, ctx_for(catalog, "dave"), change_id, role="platform-lead"
        )
    assert _rows(app) == []
    assert _actions(app, catalog, change_id) == before


def test_approval_outside_authorize_is_refused(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.submit(app.engine, catalog, alice, change.id)
    with pytest.raises(Refused, match="waits in authorize"):
        approval_service.approve(app.engine, catalog, ctx_for(catalog, "dave"), change.id)
    assert _rows(app) == []


def test_duplicate_approval_is_a_conflict_and_writes_nothing(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = _waiting(app, catalog)
    dave = ctx_for(catalog, "dave")
    approval_service.approve(app.engine, catalog, dave, change_id)
    before = _actions(app, catalog, change_id)
    with pytest.raises(Conflict, match="already approved"):
        approval_service.approve(app.engine, catalog, dave, change_id)
    with pytest.raises(Conflict, match="already approved"):
        approval_service.approve(app.engine, catalog, dave, change_id, role="cab")
    assert [person for person, _ in _rows(app)] == ["dave"]
    assert _actions(app, catalog, change_id) == before


def test_expired_approval_stops_counting_and_may_be_given_again(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = _waiting(app, catalog)
    dave, carol = ctx_for(catalog, "dave"), ctx_for(catalog, "carol")
    approval_service.approve(app.engine, catalog, dave, change_id)
    later = dave.now() + timedelta(days=15)

    def at(ctx: Context) -> Context:
        return Context(actor=ctx.actor, clock=lambda: later)

    decision = approval_service.approve(app.engine, catalog, at(carol), change_id)
    assert not decision.authorized
    assert [item.why.value for item in decision.ignored] == ["expired"]
    again = approval_service.approve(app.engine, catalog, at(dave), change_id)
    assert again.authorized
    assert [person for person, _ in _rows(app)] == ["dave", "carol"]  # replaced, not added
    events = audit_service.events(app.engine, ctx_for(catalog, "frank"), object_id=change_id)
    assert events[-2].action == "change.approved"
    assert events[-2].after["replaced_expired"] is True
    assert events[-1].action == "change.authorized"


def test_reject_needs_a_comment_and_returns_to_draft(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = _waiting(app, catalog)
    dave = ctx_for(catalog, "dave")
    approval_service.approve(app.engine, catalog, ctx_for(catalog, "carol"), change_id)
    before = _actions(app, catalog, change_id)
    with pytest.raises(InvalidInput, match="comment"):
        approval_service.reject(app.engine, catalog, dave, change_id, "  ")
    with pytest.raises(Refused, match="requester"):
        approval_service.reject(app.engine, catalog, ctx_for(catalog, "alice"), change_id, "no")
    with pytest.raises(Refused, match="cannot approve"):
        approval_service.reject(app.engine, catalog, ctx_for(catalog, "heidi"), change_id, "no")
    assert _actions(app, catalog, change_id) == before
    rejected = approval_service.reject(
        app.engine, catalog, dave, change_id, "the rollback was never rehearsed"
    )
    assert rejected.state is ChangeState.DRAFT
    events = audit_service.events(app.engine, ctx_for(catalog, "frank"), object_id=change_id)
    assert events[-1].action == "change.rejected"
    assert events[-1].actor == "dave"
    assert events[-1].after["reason"] == "the rollback was never rehearsed"
    assert events[-1].after["state"] == "draft"
    with pytest.raises(Refused, match="waits in authorize"):
        approval_service.approve(app.engine, catalog, dave, change_id)
    assert audit_service.verify(app.engine, ctx_for(catalog, "frank")).ok


def test_inbox_lists_what_waits_for_a_person(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = _waiting(app, catalog)
    reader = ctx_for(catalog, "grace")  # reading others' inboxes needs audit:read

    def inbox(person: str) -> dict[str, list[str]]:
        items = approval_service.inbox(app.engine, catalog, reader, person)
        return {item.change.id: [status.need.key for status in item.needs] for item in items}

    assert inbox("dave") == {change_id: ["cab"]}
    assert inbox("carol") == {change_id: ["platform-lead"]}
    assert inbox("alice") == {}
    assert inbox("bob") == {}
    assert inbox("heidi") == {}
    approval_service.approve(app.engine, catalog, ctx_for(catalog, "ivan"), change_id)
    assert inbox("dave") == {}  # the cab need is filled
    assert inbox("ivan") == {}
    assert inbox("carol") == {change_id: ["platform-lead"]}
    item = approval_service.inbox(app.engine, catalog, reader, "carol")[0]
    assert item.as_dict()["needs"][0]["key"] == "platform-lead"
    assert item.as_dict()["risk_class"] == "high"
    approval_service.approve(app.engine, catalog, ctx_for(catalog, "carol"), change_id)
    assert inbox("carol") == {}
    alice = ctx_for(catalog, "alice")
    assert approval_service.inbox(app.engine, catalog, alice) == []  # her own, by default
    with pytest.raises(Refused, match="audit:read"):
        approval_service.inbox(app.engine, catalog, alice, "dave")


@pytest.mark.postgres
def test_fifty_concurrent_approvals_on_postgres(pg_url: str, sample_dir: Path) -> None:
    """Real concurrent sessions: 50 approval requests for one change, by eligible people
    (each many times), the requester, the implementer and someone not eligible."""
    app = bootstrap.create(Settings(database_url=pg_url, catalog_dir=sample_dir))
    catalog = app.catalog()
    change_id = _waiting(app, catalog)
    people = ["carol", "dave", "ivan", "peggy", "heidi", "alice", "bob"]
    contexts = {person: ctx_for(catalog, person) for person in people}
    calls = [people[index % len(people)] for index in range(50)]
    results = _race(
        [
            lambda person=person: approval_service.approve(
                app.engine, catalog, contexts[person], change_id
            )
            for person in calls
        ]
    )
    outcomes: Counter[tuple[str, str]] = Counter(
        (person, type(result).__name__) for person, result in zip(calls, results, strict=True)
    )
    for person in ("carol", "dave", "ivan", "peggy"):
        assert outcomes[(person, "Decision")] == 1, outcomes
        assert outcomes[(person, "Conflict")] == calls.count(person) - 1, outcomes
    for person in ("heidi", "alice", "bob"):
        assert outcomes[(person, "Refused")] == calls.count(person), outcomes
    assert sum(outcomes.values()) == 50
    assert sorted(person for person, _ in _rows(app)) == ["carol", "dave", "ivan", "peggy"]
    actions = Counter(_actions(app, catalog, change_id))
    assert actions["change.approved"] == 4
    assert actions["change.authorized"] == 1
    # Exactly one approval found the change unauthorized and left it authorized.
    events = audit_service.events(app.engine, contexts["alice"], object_id=change_id)
    flips = [
        event
        for event in events
        if event.action == "change.approved"
        and event.before == {"authorized": False}
        and event.after["authorized"] is True
    ]
    assert len(flips) == 1
    assert any(isinstance(result, Decision) and result.authorized for result in results)
    final = approval_service.decision(app.engine, catalog, contexts["alice"], change_id)
    assert final.authorized
    assert audit_service.verify(app.engine, ctx_for(catalog, "frank")).ok
    app.engine.dispose()
