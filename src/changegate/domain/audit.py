"""The audit trail's rules: canonical event form, hash chaining, verification, checkpoints.

Each event stores the SHA-256 of its canonical form, which includes the previous event's hash
and its own sequence number. Changing, deleting, inserting or reordering any stored event
breaks the chain at that event. Cutting events off the end does not break the chain; a signed
checkpoint (head hash and count) kept elsewhere catches that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from changegate.domain import canonical

GENESIS_HASH = "0" * 64
CHECKPOINT_FORMAT = "changegate.audit.checkpoint/v1"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the audit trail."""

    seq: int
    occurred_at: datetime
    actor: str
    actor_name: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    request_id: str | None
    prev_hash: str
    hash: str = ""

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "occurred_at": canonical.to_utc_text(self.occurred_at),
            "actor": self.actor,
            "actor_name": self.actor_name,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before": self.before,
            "after": self.after,
            "request_id": self.request_id,
            "prev_hash": self.prev_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        """The stable export shape (JSON lines, CSV, API)."""
        return {**self.hashed_fields(), "hash": self.hash}


def event_hash(event: AuditEvent) -> str:
    """The hash an event must carry, computed from its canonical form."""
    return canonical.sha256_hex(event.hashed_fields())


def seal(event: AuditEvent) -> AuditEvent:
    """The event with its hash filled in."""
    from dataclasses import replace

    return replace(event, hash=event_hash(event))


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What verifying the chain found: ok, or the first bad event and why."""

    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoint: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "checkpoint": self.checkpoint,
        }


def verify_chain(events: Iterable[AuditEvent]) -> ChainReport:
    """Walk events in stored sequence order; report the first one that breaks the chain."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    for event in events:
        if event.seq > expected_seq:
            missing = (
                f"#{expected_seq}"
                if event.seq == expected_seq + 1
                else f"#{expected_seq}..#{event.seq - 1}"
            )
            return _bad(
                count,
                prev_hash,
                expected_seq,
                f"event {missing} is missing (deleted) before event #{event.seq}",
            )
        if event.seq < expected_seq:
            return _bad(
                count,
                prev_hash,
                event.seq,
                f"event #{event.seq} appears again after #{expected_seq - 1} (inserted)",
            )
        if event_hash(event) != event.hash:
            return _bad(
                count,
                prev_hash,
                event.seq,
                f"event #{event.seq} was altered: its content does not match its hash",
            )
        if event.prev_hash != prev_hash:
            return _bad(
                count,
                prev_hash,
                event.seq,
                f"event #{event.seq} does not follow event #{event.seq - 1}: its previous-hash "
                "link is wrong (an event was inserted, deleted or reordered here)",
            )
        prev_hash = event.hash
        expected_seq += 1
        count += 1
    return ChainReport(ok=True, count=count, head_hash=prev_hash)


def _bad(count: int, head: str, seq: int, problem: str) -> ChainReport:
    return ChainReport(ok=False, count=count, head_hash=head, first_bad_seq=seq, problem=problem)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The head of the chain at a moment: its hash, how many events, when."""

    head_hash: str
    count: int
    created_at: datetime

    def payload(self) -> bytes:
        """The bytes that are signed."""
        return canonical.canonical_json(
            {
                "format": CHECKPOINT_FORMAT,
                "head_hash": self.head_hash,
                "count": self.count,
                "created_at": canonical.to_utc_text(self.created_at),
            }
        )


def check_against_head(report: ChainReport, head_count: int) -> ChainReport:
    """Compare an intact chain with the count the head row records.

    A tail cut off with the head row left alone shows here without any checkpoint; someone
    who also rewinds the head row is caught only by a checkpoint kept elsewhere.
    """
    if not report.ok or head_count <= report.count:
        return report
    return _bad(
        report.count,
        report.head_hash,
        report.count + 1,
        f"the chain ends at event #{report.count} but the audit head records {head_count} "
        f"events: events #{report.count + 1}..#{head_count} were cut from the end",
    )


def check_against_checkpoint(
    report: ChainReport, checkpoint: Checkpoint, hash_at_count: str | None
) -> ChainReport:
    """Compare a verified chain with a checkpoint kept elsewhere.

    `hash_at_count` is the stored hash of event #checkpoint.count (None if there is none).
    A chain shorter than the checkpoint was truncated; a different hash at that position
    means the history the checkpoint saw was rewritten.
    """
    info = {
        "count": checkpoint.count,
        "head_hash": checkpoint.head_hash,
        "created_at": canonical.to_utc_text(checkpoint.created_at),
    }
    if not report.ok:
        return ChainReport(
            False, report.count, report.head_hash, report.first_bad_seq, report.problem, info
        )
    if report.count < checkpoint.count:
        return ChainReport(
            False,
            report.count,
            report.head_hash,
            report.count + 1,
            f"the chain was truncated: the checkpoint of "
            f"{canonical.to_utc_text(checkpoint.created_at)} saw {checkpoint.count} events, "
            f"only {report.count} remain (first missing: #{report.count + 1})",
            info,
        )
    if checkpoint.count > 0 and hash_at_count != checkpoint.head_hash:
        return ChainReport(
            False,
            report.count,
            report.head_hash,
            checkpoint.count,
            f"event #{checkpoint.count} does not match the checkpoint's head hash: the history "
            "before the checkpoint was rewritten",
            info,
        )
    return ChainReport(True, report.count, report.head_hash, checkpoint=info)
