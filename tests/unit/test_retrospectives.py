"""Retrospective rules: status at an instant, who may review, the JSON shapes.

The world is the hand-built catalog of tests/unit/test_approvals.py: alice (requester) files
every change, bob implements it and is also in the cab; dave, ivan and peggy are cab; paul
is platform lead; erin emergency approver; frank auditor.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from changegate.domain import retrospectives
from changegate.domain.changes import ChangeState
from changegate.domain.retrospectives import (
    Listing,
    RetrospectiveRecord,
    RetrospectiveReport,
    Status,
)
from changegate.errors import Conflict, InvalidInput, Refused
from tests.unit.test_approvals import CATALOG, NOW, build, change, person, world

DUE = NOW + timedelta(hours=48)


def record(**overrides: Any) -> RetrospectiveRecord:
    fields: dict[str, Any] = {
        "change_id": "CHG-1",
        "title": "Hotfix invoice rounding",
        "requester": "alice",
        "state": ChangeState.AUTHORIZE,
        "role": "cab",
        "authorized_at": NOW,
        "due_at": DUE,
        "as_of": NOW,
    }
    fields.update(overrides)
    return RetrospectiveRecord(**fields)


EMERGENCY = change(type="emergency")


# ------------------------------------------------------------------ status


def test_open_until_due_then_overdue_half_open() -> None:
    open_ = record()
    assert retrospectives.status(open_, NOW) is Status.OPEN
    assert retrospectives.status(open_, DUE - timedelta(microseconds=1)) is Status.OPEN
    assert retrospectives.status(open_, DUE) is Status.OVERDUE
    assert retrospectives.status(open_, DUE + timedelta(days=30)) is Status.OVERDUE
    assert record(as_of=DUE).status is Status.OVERDUE
    assert record(as_of=NOW).status is Status.OPEN


def test_done_before_the_deadline_is_done_at_or_after_is_done_late() -> None:
    on_time = record(done_at=DUE - timedelta(seconds=1), done_by="dave", comment="ok")
    late = record(done_at=DUE, done_by="dave", comment="ok")
    # Once done, the instant asked about no longer matters.
    for now in (NOW, DUE, DUE + timedelta(days=9)):
        assert retrospectives.status(on_time, now) is Status.DONE
        assert retrospectives.status(late, now) is Status.DONE_LATE
    assert not on_time.late
    assert late.late
    assert not record().late


def test_as_dict_is_the_stable_json_shape() -> None:
    done = record(done_at=DUE + timedelta(hours=1), done_by="dave", comment="root cause found")
    assert done.as_dict() == {
        "change_id": "CHG-1",
        "title": "Hotfix invoice rounding",
        "requester": "alice",
        "state": "authorize",
        "role": "cab",
        "authorized_at": "2026-11-02T09:00:00.000000Z",
        "due_at": "2026-11-04T09:00:00.000000Z",
        "done_at": "2026-11-04T10:00:00.000000Z",
        "done_by": "dave",
        "comment": "root cause found",
        "status": "done-late",
    }
    assert record().as_dict()["done_at"] is None
    assert record().as_dict()["status"] == "open"


def test_report_json_tells_the_listing_and_the_instant() -> None:
    items = (record(as_of=DUE), record(change_id="CHG-2", as_of=DUE))
    report = RetrospectiveReport(Listing.OVERDUE, DUE, items)
    body = report.as_dict()
    assert body["status"] == "overdue"
    assert body["now"] == "2026-11-04T09:00:00.000000Z"
    assert [item["change_id"] for item in body["items"]] == ["CHG-1", "CHG-2"]
    assert {item["status"] for item in body["items"]} == {"overdue"}


def test_listing_names_the_field_on_a_bad_value() -> None:
    assert retrospectives.listing("overdue") is Listing.OVERDUE
    assert retrospectives.listing(Listing.ALL) is Listing.ALL
    with pytest.raises(InvalidInput) as caught:
        retrospectives.listing("late")
    assert [p.field for p in caught.value.problems] == ["status"]
    assert "open, overdue, all" in caught.value.message


# ------------------------------------------------------------------ who may review


def test_a_cab_member_may_review_and_the_record_is_done() -> None:
    for who in ("dave", "ivan", "peggy"):
        retrospectives.check_can_review(who, EMERGENCY, record(), CATALOG, "fine")
    later = DUE + timedelta(hours=2)
    done = retrospectives.review("dave", EMERGENCY, record(), CATALOG, "  caused by X  ", now=later)
    assert done.done_at == later
    assert done.done_by == "dave"
    assert done.comment == "caused by X"
    assert done.status is Status.DONE_LATE


@pytest.mark.parametrize(
    ("who", "why"),
    [
        ("alice", "alice is the requester of CHG-1"),
        ("bob", "bob is the implementer of CHG-1"),
        ("erin", "erin \\(roles: emergency-approver\\) cannot review CHG-1"),
        ("paul", "retrospective is for the role cab"),
        ("frank", "cannot review"),
        ("mallory", "'mallory' is not a person in the catalog"),
    ],
)
def test_requester_implementer_and_others_are_refused_naming_who_can(who: str, why: str) -> None:
    with pytest.raises(Refused, match=why) as caught:
        retrospectives.check_can_review(who, EMERGENCY, record(), CATALOG, "a comment")
    # bob holds cab but implements the change: he is not among who can review.
    assert caught.value.override_by == "dave, ivan, peggy"
    assert "Who can review: dave, ivan, peggy" in caught.value.message


def test_separation_of_duties_holds_for_a_requester_in_the_role() -> None:
    by_dave = EMERGENCY.evolve(requester="dave")
    with pytest.raises(Refused, match="dave is the requester"):
        retrospectives.check_can_review("dave", by_dave, record(requester="dave"), CATALOG, "x")
    assert retrospectives.reviewers(CATALOG, by_dave, "cab") == ("ivan", "peggy")


def test_the_role_is_the_records_and_is_held_now() -> None:
    lead = record(role="platform-lead")
    retrospectives.check_can_review("paul", EMERGENCY, lead, CATALOG, "reviewed")
    with pytest.raises(Refused, match="for the role platform-lead"):
        retrospectives.check_can_review("dave", EMERGENCY, lead, CATALOG, "reviewed")
    # dave left the cab since: he may not review any more.
    files = world()
    files["people.yaml"] = [
        p if p["metadata"]["name"] != "dave" else person("dave", "approver")
        for p in files["people.yaml"]
    ]
    with pytest.raises(Refused, match="cannot review"):
        retrospectives.check_can_review("dave", EMERGENCY, record(), build(files), "late")


def test_nobody_eligible_says_so() -> None:
    nobody = record(role="admin")
    with pytest.raises(Refused, match="Who can review: nobody in the catalog"):
        retrospectives.check_can_review("dave", EMERGENCY, nobody, CATALOG, "x")


@pytest.mark.parametrize("comment", ["", "   ", "\n\t"])
def test_a_comment_is_required(comment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        retrospectives.check_can_review("dave", EMERGENCY, record(), CATALOG, comment)
    assert [p.field for p in caught.value.problems] == ["comment"]


def test_done_once() -> None:
    done = record(done_at=NOW + timedelta(hours=1), done_by="ivan", comment="ok")
    with pytest.raises(Conflict, match="already done by ivan at 2026-11-02T10:00:00"):
        retrospectives.check_can_review("dave", EMERGENCY, done, CATALOG, "me too")


def test_the_record_must_be_the_changes() -> None:
    with pytest.raises(ValueError, match="CHG-2"):
        retrospectives.check_can_review("dave", EMERGENCY, record(change_id="CHG-2"), CATALOG, "x")
