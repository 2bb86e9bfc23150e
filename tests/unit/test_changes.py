"""The change lifecycle and content hash, as pure domain rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate.domain import canonical, changes
from changegate.domain.changes import ChangeState, ChangeType, CloseCode
from changegate.errors import InvalidInput, InvalidTransition, Refused
from tests.factories import change_data, change_spec

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
S = ChangeState


def draft(**overrides: object) -> changes.ChangeRequest:
    return changes.new_change(7, change_spec(**overrides), "alice", NOW)


def walk(change: changes.ChangeRequest, *states: ChangeState) -> changes.ChangeRequest:
    for state in states:
        change = changes.transition(
            change,
            state,
            NOW,
            close_code=CloseCode.SUCCESSFUL if state is S.CLOSED else None,
        )
    return change


def test_normal_change_walks_the_whole_lifecycle() -> None:
    change = walk(draft(), S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING, S.REVIEW, S.CLOSED)
    assert change.state is S.CLOSED
    assert change.close_code is CloseCode.SUCCESSFUL
    assert change.version == 7
    assert changes.allowed_next(change) == []


def test_illegal_transition_names_current_and_allowed_states() -> None:
    with pytest.raises(InvalidTransition) as caught:
        changes.transition(draft(), S.SCHEDULED, NOW)
    assert caught.value.current == "draft"
    assert caught.value.allowed == ["assess", "canceled", "on-hold"]
    assert "CHG-7 is draft; it cannot move to scheduled" in str(caught.value)
    assert "Allowed next states: assess, canceled, on-hold" in str(caught.value)


def test_emergency_skips_assess_and_standard_waits_for_templates() -> None:
    emergency = draft(type="emergency")
    assert S.AUTHORIZE in changes.allowed_next(emergency)
    assert changes.SUBMIT_TARGET[ChangeType.EMERGENCY] is S.AUTHORIZE
    # Without a pre-approved template check, a standard change may not skip the gates.
    standard = draft(type="standard")
    assert changes.allowed_next(standard) == [S.ASSESS, S.CANCELED, S.ON_HOLD]
    assert changes.SUBMIT_TARGET[ChangeType.STANDARD] is S.ASSESS


def test_rejection_returns_to_draft_and_is_recognised() -> None:
    change = walk(draft(), S.ASSESS, S.AUTHORIZE)
    rejected = changes.transition(change, S.DRAFT, NOW)
    assert rejected.state is S.DRAFT
    assert changes.returns_to_draft(S.AUTHORIZE, S.DRAFT)
    assert not changes.returns_to_draft(S.ON_HOLD, S.DRAFT)


def test_hold_returns_to_the_state_it_was_held_from() -> None:
    held = walk(draft(), S.ASSESS, S.AUTHORIZE, S.ON_HOLD)
    assert held.held_from is S.AUTHORIZE
    assert changes.allowed_next(held) == [S.AUTHORIZE, S.CANCELED]
    resumed = changes.transition(held, S.AUTHORIZE, NOW)
    assert resumed.held_from is None
    with pytest.raises(InvalidTransition):
        changes.transition(held, S.SCHEDULED, NOW)


@pytest.mark.parametrize("state", [S.DRAFT, S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING])
def test_cancel_is_allowed_until_review(state: ChangeState) -> None:
    path = {
        S.DRAFT: [],
        S.ASSESS: [S.ASSESS],
        S.AUTHORIZE: [S.ASSESS, S.AUTHORIZE],
        S.SCHEDULED: [S.ASSESS, S.AUTHORIZE, S.SCHEDULED],
        S.IMPLEMENTING: [S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING],
    }[state]
    assert walk(draft(), *path, S.CANCELED).state is S.CANCELED


def test_cancel_is_refused_in_review_and_after() -> None:
    in_review = walk(draft(), S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING, S.REVIEW)
    with pytest.raises(InvalidTransition):
        changes.transition(in_review, S.CANCELED, NOW)


def test_close_notes_only_when_closing() -> None:
    with pytest.raises(InvalidInput, match="close notes"):
        changes.transition(draft(), S.ASSESS, NOW, close_notes="hidden note")


def test_planned_times_are_stored_in_utc_so_offsets_do_not_change_the_hash() -> None:
    local = change_spec(
        planned_start="2026-12-01T22:00:00+01:00", planned_end="2026-12-01T23:00:00+01:00"
    )
    utc = change_spec(planned_start="2026-12-01T21:00:00Z", planned_end="2026-12-01T22:00:00Z")
    assert local.planned_start is not None
    assert local.planned_start.utcoffset() == timedelta(0)
    assert changes.content_hash(local) == changes.content_hash(utc)


def test_resending_unchanged_material_fields_is_not_an_edit() -> None:
    in_authorize = walk(draft(), S.ASSESS, S.AUTHORIZE)
    same = changes.edit(in_authorize, change_data(), NOW)
    assert same is in_authorize
    edited = changes.edit(in_authorize, change_data(title="different"), NOW)
    assert edited.state is S.ASSESS


def test_closing_needs_a_close_code_and_only_closing_takes_one() -> None:
    in_review = walk(draft(), S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING, S.REVIEW)
    with pytest.raises(InvalidInput, match="close code"):
        changes.transition(in_review, S.CLOSED, NOW)
    with pytest.raises(InvalidInput, match="close code"):
        changes.transition(draft(), S.ASSESS, NOW, close_code=CloseCode.SUCCESSFUL)


def test_content_hash_covers_material_fields_only() -> None:
    base = change_spec()
    assert changes.content_hash(base) == changes.content_hash(change_spec())
    assert changes.content_hash(base) != changes.content_hash(change_spec(title="Other"))
    assert changes.content_hash(base) != changes.content_hash(
        change_spec(rollback_plan={"steps": "x", "tested": False})
    )
    assert changes.content_hash(base) == changes.content_hash(
        change_spec(test_evidence=["junit.xml"], incidents=["INC-1"])
    )


def test_material_edit_bumps_hash_and_version_and_reopens_what_was_assessed() -> None:
    change = draft()
    edited = changes.edit(change, {"title": "Better title"}, NOW + timedelta(minutes=1))
    assert (edited.version, edited.state) == (change.version + 1, S.DRAFT)
    assert edited.content_hash != change.content_hash
    # In Assess, Authorize and Scheduled a material edit sends the change back to Assess.
    for path in ((S.ASSESS,), (S.ASSESS, S.AUTHORIZE), (S.ASSESS, S.AUTHORIZE, S.SCHEDULED)):
        before = walk(draft(), *path)
        reopened = changes.edit(before, {"title": "sneaky"}, NOW)
        assert reopened.state is S.ASSESS, path
        assert reopened.content_hash != before.content_hash
        assert reopened.version == before.version + 1
    # Non-material fields never move the change.
    in_assess = walk(draft(), S.ASSESS, S.AUTHORIZE)
    noted = changes.edit(in_assess, {"incidents": ["INC-42"]}, NOW)
    assert (noted.content_hash, noted.state) == (in_assess.content_hash, S.AUTHORIZE)


def test_emergency_edit_returns_to_authorize_never_forward() -> None:
    emergency = changes.new_change(1, change_spec(type="emergency"), "erin", NOW)
    scheduled = walk(emergency, S.AUTHORIZE, S.SCHEDULED)
    assert changes.edit(scheduled, {"title": "hotfix v2"}, NOW).state is S.AUTHORIZE
    # An emergency change someone sent to Assess stays there (a reopening never advances).
    assessed = walk(emergency, S.ASSESS)
    assert changes.edit(assessed, {"title": "hotfix v3"}, NOW).state is S.ASSESS
    # Turning a scheduled normal change into an emergency one sends it to Authorize.
    normal = walk(draft(), S.ASSESS, S.AUTHORIZE, S.SCHEDULED)
    assert changes.edit(normal, {"type": "emergency"}, NOW).state is S.AUTHORIZE


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ((S.ASSESS, S.ON_HOLD), "resume it first"),
        ((S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING), "file a new change"),
        ((S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING, S.REVIEW), "file a new change"),
    ],
)
def test_material_edit_refused_on_hold_and_once_implementing(
    path: tuple[ChangeState, ...], hint: str
) -> None:
    change = walk(draft(), *path)
    with pytest.raises(Refused, match=hint):
        changes.edit(change, {"title": "too late"}, NOW)
    noted = changes.edit(change, {"test_evidence": ["junit.xml"]}, NOW)
    assert noted.state is change.state


def test_a_template_is_named_only_by_standard_changes_and_hashed_only_when_set() -> None:
    with pytest.raises(InvalidInput, match="only a standard change names a template"):
        changes.validate_spec(change_data(template="renew-tls"), source=None)
    standard = changes.validate_spec(change_data(type="standard"), source=None)
    named = changes.validate_spec(change_data(type="standard", template="x"), source=None)
    assert changes.content_hash(standard) != changes.content_hash(named)
    # Unset, the field is left out of the hash: changes filed before it keep theirs.
    before_templates = set(changes.MATERIAL_FIELDS) - {"template"}
    assert changes.content_hash(standard) == "sha256:" + canonical.sha256_hex(
        standard.model_dump(mode="json", include=before_templates)
    )


def test_edit_rejects_unknown_fields_and_wrong_types() -> None:
    with pytest.raises(InvalidInput) as caught:
        changes.edit(draft(), {"colour": "red"}, NOW)
    assert caught.value.problems[0].field == "colour"
    with pytest.raises(InvalidInput) as wrong:
        changes.edit(draft(), {"title": ["a list"]}, NOW)
    assert wrong.value.problems[0].field == "title"


def test_spec_validation_is_strict_and_names_fields() -> None:
    with pytest.raises(InvalidInput) as caught:
        changes.validate_spec(
            change_data(
                category="nope",
                rollback_plan={"tested": "yes"},
                colour=1,
                planned_start="2026-12-01T22:00:00",
                type=3,
            ),
            source="c.yaml",
        )
    fields = {p.field for p in caught.value.problems}
    assert {"category", "rollback_plan.tested", "colour", "type"} <= fields
    assert all(p.file == "c.yaml" for p in caught.value.problems)


def test_planned_times_need_offsets_and_order() -> None:
    with pytest.raises(InvalidInput, match="timezone"):
        change_spec(planned_start="2026-12-01T22:00:00")
    with pytest.raises(InvalidInput, match="after planned_start"):
        change_spec(planned_start="2026-12-01T22:00:00Z", planned_end="2026-12-01T21:00:00Z")


@pytest.mark.parametrize("text", ["CHG-0", "CHG-", "chg-x", "12a", "", "CHG-1;DROP"])
def test_bad_change_ids_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        changes.parse_id(text)


def test_change_ids_parse() -> None:
    assert changes.parse_id("CHG-12") == 12
    assert changes.parse_id("chg-12") == 12
    assert changes.parse_id("12") == 12


# The lifecycle as the issue states it, written out edge by edge, independently of the table.
EDGES = {
    ("draft", "assess"),
    ("draft", "on-hold"),
    ("draft", "canceled"),
    ("assess", "authorize"),
    ("assess", "draft"),
    ("assess", "on-hold"),
    ("assess", "canceled"),
    ("authorize", "scheduled"),
    ("authorize", "draft"),
    ("authorize", "on-hold"),
    ("authorize", "canceled"),
    ("scheduled", "implementing"),
    ("scheduled", "on-hold"),
    ("scheduled", "canceled"),
    ("implementing", "review"),
    ("implementing", "canceled"),
    ("review", "closed"),
    ("on-hold", "canceled"),
}
EMERGENCY_EDGES = {("draft", "authorize")}


def expected_next(change: changes.ChangeRequest) -> set[str]:
    state = change.state.value
    edges = EDGES | (EMERGENCY_EDGES if change.spec.type is ChangeType.EMERGENCY else set())
    allowed = {to for frm, to in edges if frm == state}
    if change.state is S.ON_HOLD and change.held_from is not None:
        allowed.add(change.held_from.value)
    return allowed


@pytest.mark.parametrize("change_type", list(ChangeType))
def test_every_state_pair_is_allowed_exactly_when_the_issue_says(
    change_type: ChangeType,
) -> None:
    """Exhaustive: from every reachable state, try every target state."""
    seen: set[tuple[str, str | None]] = set()
    frontier = [draft(type=change_type.value)]
    while frontier:
        change = frontier.pop()
        key = (change.state.value, change.held_from.value if change.held_from else None)
        if key in seen:
            continue
        seen.add(key)
        for target in ChangeState:
            closing = CloseCode.SUCCESSFUL if target is S.CLOSED else None
            if target.value in expected_next(change):
                frontier.append(changes.transition(change, target, NOW, close_code=closing))
            else:
                with pytest.raises(InvalidTransition):
                    changes.transition(change, target, NOW, close_code=closing)
    assert {state for state, _ in seen} == {s.value for s in ChangeState}


@settings(max_examples=300, deadline=None)
@given(
    change_type=st.sampled_from(list(ChangeType)),
    moves=st.lists(st.sampled_from(list(ChangeState)), max_size=25),
)
def test_random_walks_follow_the_issue_edges(
    change_type: ChangeType, moves: list[ChangeState]
) -> None:
    """Whatever is attempted, a change only ever takes the edges the issue names."""
    change = draft(type=change_type.value)
    for target in moves:
        expected = expected_next(change)
        try:
            moved = changes.transition(
                change,
                target,
                NOW,
                close_code=CloseCode.SUCCESSFUL if target is S.CLOSED else None,
            )
        except InvalidTransition as exc:
            assert target.value not in expected
            assert set(exc.allowed) == expected
            continue
        assert target.value in expected
        assert moved.version == change.version + 1
        change = moved
