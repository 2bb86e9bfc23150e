"""Emergency-change retrospectives on the real store, on SQLite and on PostgreSQL.

An emergency change filed by alice (implemented by bob) goes straight to Authorize on
submit; erin (emergency approver) authorizes it alone. That approval writes the
retrospective, due 48 hours later for the cab (dave, ivan, peggy). Every context here runs
on a fixed clock: time moves only when a test says so.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeState
from changegate.domain.retrospectives import Listing, Status
from changegate.errors import Conflict, InvalidInput, NotFound, Refused
from changegate.services import approvals as approval_service
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services import retrospectives as retrospective_service
from changegate.services.context import Actor, Context, actor_for
from changegate.store.schema import retrospectives as retrospectives_table
from tests.factories import change_spec
from tests.integration.test_change_service import _race

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WITHIN = timedelta(hours=48)


def at(catalog: catalog_model.Catalog, person: str, when: datetime) -> Context:
    """A context acting as `person` whose clock always reads `when`."""
    return Context(actor=actor_for(catalog, person), clock=lambda: when)


def emergency(
    app: bootstrap.App, catalog: catalog_model.Catalog, when: datetime = T0, **spec: Any
) -> str:
    """An emergency change filed and submitted by alice at `when`: it waits in Authorize."""
    alice = at(catalog, "alice", when)
    change = change_service.create(
        app.engine, catalog, alice, change_spec(type="emergency", **spec)
    )
    moved = change_service.submit(app.engine, catalog, alice, change.id)
    assert moved.state is ChangeState.AUTHORIZE
    return change.id


def authorized(
    app: bootstrap.App, catalog: catalog_model.Catalog, when: datetime = T0, **spec: Any
) -> str:
    """An emergency change erin authorized at `when`."""
    change_id = emergency(app, catalog, when, **spec)
    decision = approval_service.approve(app.engine, catalog, at(catalog, "erin", when), change_id)
    assert decision.authorized
    return change_id


def actions(app: bootstrap.App, catalog: catalog_model.Catalog, change_id: str) -> list[str]:
    ctx = at(catalog, "frank", T0)
    return [e.action for e in audit_service.events(app.engine, ctx, object_id=change_id)]


def events(
    app: bootstrap.App, catalog: catalog_model.Catalog, change_id: str, action: str
) -> list[Any]:
    ctx = at(catalog, "frank", T0)
    found = audit_service.events(app.engine, ctx, object_id=change_id, limit=1000)
    return [event for event in found if event.action == action]


def row_count(app: bootstrap.App) -> int:
    with app.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(retrospectives_table)).scalar_one()
        )


def review(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    change_id: str,
    person: str,
    when: datetime,
    comment: str = "root cause: expired certificate; renewal is now monitored",
) -> Any:
    ctx = at(catalog, person, when)
    return retrospective_service.review(app.engine, catalog, ctx, change_id, comment)


def report(
    app: bootstrap.App, catalog: catalog_model.Catalog, when: datetime, status: str = "open"
) -> list[tuple[str, str]]:
    found = retrospective_service.report(app.engine, at(catalog, "frank", when), status=status)
    assert found.now == when
    return [(item.change_id, item.status.value) for item in found.items]


# ------------------------------------------------------------------ written on authorization


def test_the_authorizing_emergency_approval_writes_the_retrospective_due_in_48_hours(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = emergency(app, catalog)
    with pytest.raises(NotFound, match="emergency change not authorized yet"):
        retrospective_service.get(app.engine, at(catalog, "frank", T0), change_id)
    assert row_count(app) == 0

    approval_service.approve(app.engine, catalog, at(catalog, "erin", T0), change_id)

    found = retrospective_service.get(app.engine, at(catalog, "frank", T0), change_id)
    assert found.change_id == change_id
    assert found.role == "cab"
    assert found.authorized_at == T0
    assert found.due_at == T0 + WITHIN
    assert found.requester == "alice"
    assert found.state is ChangeState.AUTHORIZE
    assert found.done_at is None and found.done_by is None and found.comment == ""
    assert found.status is Status.OPEN
    assert actions(app, catalog, change_id)[-3:] == [
        "change.approved",
        "change.authorized",
        "change.retrospective-due",
    ]
    (due,) = events(app, catalog, change_id, "change.retrospective-due")
    assert due.actor == "erin"
    assert due.before is None
    assert due.after == {
        "role": "cab",
        "within_seconds": 48 * 3600,
        "authorized_at": "2026-11-02T09:00:00.000000Z",
        "due_at": "2026-11-04T09:00:00.000000Z",
    }


def test_a_normal_change_authorized_gets_no_retrospective(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = at(catalog, "alice", T0)
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.submit(app.engine, catalog, alice, change.id)
    assert assessment_service.assess(app.engine, catalog, alice, change.id).risk_class == "high"
    change_service.transition(app.engine, catalog, at(catalog, "carol", T0), change.id, "authorize")
    approval_service.approve(app.engine, catalog, at(catalog, "carol", T0), change.id)
    decision = approval_service.approve(app.engine, catalog, at(catalog, "dave", T0), change.id)
    assert decision.authorized
    assert "change.authorized" in actions(app, catalog, change.id)
    assert "change.retrospective-due" not in actions(app, catalog, change.id)
    assert row_count(app) == 0
    with pytest.raises(NotFound, match="is not an emergency change awaiting a retrospective"):
        retrospective_service.get(app.engine, at(catalog, "frank", T0), change.id)
    with pytest.raises(NotFound, match="is not an emergency change"):
        review(app, catalog, change.id, "dave", T0)
    with pytest.raises(NotFound, match="CHG-9999 does not exist"):
        review(app, catalog, "CHG-9999", "dave", T0)


def test_authorized_again_after_an_edit_keeps_the_first_deadline(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = authorized(app, catalog)
    later = T0 + timedelta(hours=5)
    # oscar (another emergency approver) rejects it; alice fixes it and submits it again.
    approval_service.reject(
        app.engine, catalog, at(catalog, "oscar", later), change_id, "wrong image"
    )
    alice = at(catalog, "alice", later)
    change_service.edit(app.engine, catalog, alice, change_id, {"title": "Hotfix, second try"})
    change_service.submit(app.engine, catalog, alice, change_id)
    again = approval_service.approve(app.engine, catalog, at(catalog, "erin", later), change_id)
    assert again.authorized
    assert actions(app, catalog, change_id).count("change.authorized") == 2

    found = retrospective_service.get(app.engine, at(catalog, "frank", later), change_id)
    assert found.authorized_at == T0
    assert found.due_at == T0 + WITHIN
    assert found.title == "Hotfix, second try"
    assert row_count(app) == 1
    assert len(events(app, catalog, change_id, "change.retrospective-due")) == 1


# ------------------------------------------------------------------ the report


def test_report_open_overdue_and_all_at_the_instant_asked(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    first = authorized(app, catalog, T0)
    second = authorized(app, catalog, T0 + timedelta(hours=10))
    third = authorized(app, catalog, T0 + timedelta(hours=20))
    assert report(app, catalog, T0 + timedelta(hours=21)) == [
        (first, "open"),
        (second, "open"),
        (third, "open"),
    ]
    assert report(app, catalog, T0 + timedelta(hours=21), "overdue") == []

    # Exactly at its deadline the first is overdue (half-open), the others still open.
    at_deadline = T0 + WITHIN
    assert report(app, catalog, at_deadline, "overdue") == [(first, "overdue")]
    assert report(app, catalog, at_deadline) == [
        (first, "overdue"),
        (second, "open"),
        (third, "open"),
    ]

    # ivan reviews the second in time; the first stays overdue and the listings follow.
    review(app, catalog, second, "ivan", at_deadline)
    much_later = T0 + timedelta(days=10)
    assert report(app, catalog, much_later, "overdue") == [(first, "overdue"), (third, "overdue")]
    assert report(app, catalog, much_later) == [(first, "overdue"), (third, "overdue")]
    assert report(app, catalog, much_later, "all") == [
        (first, "overdue"),
        (second, "done"),
        (third, "overdue"),
    ]
    everything = retrospective_service.report(
        app.engine, at(catalog, "frank", much_later), status=Listing.ALL
    )
    assert [item.as_dict()["status"] for item in everything.items] == ["overdue", "done", "overdue"]
    assert everything.as_dict()["now"] == "2026-11-12T09:00:00.000000Z"


def test_report_refuses_an_unknown_listing(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    with pytest.raises(InvalidInput) as caught:
        retrospective_service.report(app.engine, at(catalog, "frank", T0), status="late")
    assert [p.field for p in caught.value.problems] == ["status"]


# ------------------------------------------------------------------ review


def test_a_cab_member_reviews_in_time_and_it_is_done(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = authorized(app, catalog)
    when = T0 + timedelta(hours=30)
    done = review(app, catalog, change_id, "dave", when, "  fine; add an alert  ")
    assert done.status is Status.DONE
    assert (done.done_at, done.done_by, done.comment) == (when, "dave", "fine; add an alert")
    stored = retrospective_service.get(app.engine, at(catalog, "frank", T0 + WITHIN), change_id)
    assert stored.status is Status.DONE
    assert stored.as_dict() == done.as_dict()
    (event,) = events(app, catalog, change_id, "change.retrospective-done")
    assert event.actor == "dave"
    assert event.before == {"status": "open"}
    assert event.after == {
        "role": "cab",
        "comment": "fine; add an alert",
        "done_at": "2026-11-03T15:00:00.000000Z",
        "due_at": "2026-11-04T09:00:00.000000Z",
        "late": False,
    }
    assert audit_service.verify(app.engine, at(catalog, "frank", when)).ok


def test_a_review_after_the_deadline_is_done_late(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = authorized(app, catalog)
    when = T0 + WITHIN + timedelta(hours=3)
    assert report(app, catalog, when, "overdue") == [(change_id, "overdue")]
    done = review(app, catalog, change_id, "peggy", when)
    assert done.status is Status.DONE_LATE
    (event,) = events(app, catalog, change_id, "change.retrospective-done")
    assert event.before == {"status": "overdue"}
    assert event.after["late"] is True
    assert report(app, catalog, when, "all") == [(change_id, "done-late")]
    assert report(app, catalog, when) == []


@pytest.mark.parametrize(
    ("person", "why"),
    [
        ("alice", "alice is the requester"),
        ("bob", "bob is the implementer"),
        ("erin", "erin \\(roles: emergency-approver, implementer\\) cannot review"),
        ("carol", "its retrospective is for the role cab"),
        ("frank", "cannot review"),
    ],
)
def test_the_requester_implementer_and_non_cab_are_refused(
    app: bootstrap.App, catalog: catalog_model.Catalog, person: str, why: str
) -> None:
    change_id = authorized(app, catalog)
    with pytest.raises(Refused, match=why) as caught:
        review(app, catalog, change_id, person, T0 + timedelta(hours=1))
    assert caught.value.override_by == "dave, ivan, peggy"
    assert "change.retrospective-done" not in actions(app, catalog, change_id)
    found = retrospective_service.get(app.engine, at(catalog, "frank", T0), change_id)
    assert found.done_at is None


def test_a_cab_member_who_requested_the_change_is_refused(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    dave = at(catalog, "dave", T0)
    change = change_service.create(app.engine, catalog, dave, change_spec(type="emergency"))
    change_service.submit(app.engine, catalog, dave, change.id)
    approval_service.approve(app.engine, catalog, at(catalog, "erin", T0), change.id)
    with pytest.raises(Refused, match="dave is the requester") as caught:
        review(app, catalog, change.id, "dave", T0)
    assert caught.value.override_by == "ivan, peggy"
    assert review(app, catalog, change.id, "ivan", T0).done_by == "ivan"


@pytest.mark.parametrize("comment", ["", "   "])
def test_a_comment_is_required(
    app: bootstrap.App, catalog: catalog_model.Catalog, comment: str
) -> None:
    change_id = authorized(app, catalog)
    with pytest.raises(InvalidInput) as caught:
        review(app, catalog, change_id, "dave", T0, comment)
    assert [p.field for p in caught.value.problems] == ["comment"]
    with pytest.raises(InvalidInput, match="NUL"):
        review(app, catalog, change_id, "dave", T0, "bad\x00byte")
    assert "change.retrospective-done" not in actions(app, catalog, change_id)


def test_a_second_review_is_a_conflict_and_writes_nothing(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = authorized(app, catalog)
    review(app, catalog, change_id, "dave", T0 + timedelta(hours=1))
    for person in ("dave", "ivan"):
        with pytest.raises(Conflict, match="already done by dave"):
            review(app, catalog, change_id, person, T0 + timedelta(hours=2), "again")
    assert len(events(app, catalog, change_id, "change.retrospective-done")) == 1
    found = retrospective_service.get(app.engine, at(catalog, "frank", T0), change_id)
    assert found.done_by == "dave"


def test_concurrent_reviews_one_wins(app: bootstrap.App, catalog: catalog_model.Catalog) -> None:
    change_id = authorized(app, catalog)
    when = T0 + timedelta(hours=1)
    results = _race(
        [
            functools.partial(review, app, catalog, change_id, person, when)
            for person in ("dave", "ivan", "peggy") * 3
        ]
    )
    done = [r for r in results if not isinstance(r, Exception)]
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(done) == 1, results
    assert all(isinstance(r, Conflict) for r in failed), failed
    assert len(events(app, catalog, change_id, "change.retrospective-done")) == 1
    found = retrospective_service.get(app.engine, at(catalog, "frank", when), change_id)
    assert found.done_by == done[0].done_by
    assert audit_service.verify(app.engine, at(catalog, "frank", when)).ok


def test_reading_needs_changes_read(app: bootstrap.App, catalog: catalog_model.Catalog) -> None:
    change_id = authorized(app, catalog)
    # Every catalog role grants changes:read; an actor with none is refused.
    nobody = Context(actor=Actor("x", "Nobody", ()), clock=lambda: T0)
    with pytest.raises(Refused, match="may not changes:read"):
        retrospective_service.report(app.engine, nobody)
    with pytest.raises(Refused, match="may not changes:read"):
        retrospective_service.get(app.engine, nobody, change_id)
    with pytest.raises(Refused, match="may not changes:read"):
        retrospective_service.review(app.engine, catalog, nobody, change_id, "x")
