"""Hash chaining and verification of the audit trail, as pure rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from changegate.domain import audit

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def chain(n: int) -> list[audit.AuditEvent]:
    events: list[audit.AuditEvent] = []
    prev = audit.GENESIS_HASH
    for seq in range(1, n + 1):
        event = audit.seal(
            audit.AuditEvent(
                seq=seq,
                occurred_at=T0 + timedelta(seconds=seq),
                actor="alice",
                actor_name="Alice",
                action="change.edited",
                object_type="change",
                object_id=f"CHG-{seq}",
                before={"v": seq},
                after={"v": seq + 1},
                request_id=f"r{seq}",
                prev_hash=prev,
            )
        )
        events.append(event)
        prev = event.hash
    return events


def test_intact_chain_verifies() -> None:
    report = audit.verify_chain(chain(5))
    assert report.ok
    assert report.count == 5


def test_altered_event_is_named() -> None:
    events = chain(5)
    events[2] = replace(events[2], after={"v": 999})
    report = audit.verify_chain(events)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "altered" in (report.problem or "")


def test_deleted_event_is_named() -> None:
    events = chain(5)
    del events[1]
    report = audit.verify_chain(events)
    assert report.first_bad_seq == 2
    assert "missing" in (report.problem or "")


def test_rehashed_forgery_breaks_the_link() -> None:
    events = chain(5)
    events[2] = audit.seal(replace(events[2], after={"v": 999}))
    report = audit.verify_chain(events)
    assert report.first_bad_seq == 4
    assert "does not follow" in (report.problem or "")


def test_reordered_events_are_detected() -> None:
    events = chain(5)
    a, b = events[1], events[2]
    events[1] = replace(b, seq=2)
    events[2] = replace(a, seq=3)
    report = audit.verify_chain(events)
    assert report.first_bad_seq == 2


def test_truncation_needs_the_checkpoint() -> None:
    events = chain(5)
    point = audit.Checkpoint(events[-1].hash, 5, T0)
    truncated = audit.verify_chain(events[:3])
    assert truncated.ok  # the chain alone cannot tell
    checked = audit.check_against_checkpoint(truncated, point, None)
    assert not checked.ok
    assert checked.first_bad_seq == 4
    assert "truncated" in (checked.problem or "")
    full = audit.verify_chain(events)
    assert audit.check_against_checkpoint(full, point, events[4].hash).ok
    rewritten = audit.check_against_checkpoint(full, point, "f" * 64)
    assert not rewritten.ok
