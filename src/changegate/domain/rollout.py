"""A change's rollout: the steps that carry it to its tenants, wave by wave, and their states.

The plan of a change with N booked waves is, for each wave k in 1..N, in order:

    gate    the wave's slot has opened and the calendar still lets it start (a freeze
            declared since holds it), the change is still implementing and its approvals
            still match its content hash;
    backup  `pg_dump -Fc` of the wave tenants' databases when the change touches them;
    commit  render the wave tenants' files and push one commit with the trailers
            `Change-Id: CHG-<n>` and `Wave: <k>/<N>` (found again by them, so a retried step
            never commits twice);
    sync    wait until the GitOps controller has synced that commit and the tenants'
            applications are healthy (the delivery-status port), within the sync timeout;
    verify  the analysis templates (Argo Rollouts' outcome rules) and the HTTP probes;
    bake    let the wave run for the bake time before the next wave starts.

A step that fails (sync degraded or timed out, a verification Failed or Error) turns the
rollout to ROLLING_BACK: the forward steps left are SKIPPED and rollback steps are appended:

    revert    revert wave j's commit in the GitOps repository (the failed wave, and the
              earlier ones too when the change's rollback plan says `revert: all`), newest
              first, each found again by `Change-Id`, `Wave` and `Reverts` trailers;
    restore   restore the wave's tenant databases from their pre-change backups, when the
              change is irreversible (schema migrations, upgrades);
    conclude  mark the change unsuccessful, with the incident record, and notify.

An inconclusive verification (or a calendar that no longer lets the wave start, or approvals
that no longer match) PAUSES the rollout for a person: `resume` runs the step again,
`promote` accepts it (or skips a bake), `abort` rolls back as a failure would.

Everything here is pure: the store keeps the rows, the service does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

CHANGE_ID_TRAILER = "Change-Id"
WAVE_TRAILER = "Wave"
REVERTS_TRAILER = "Reverts"
ROLLOUT_FOLDER = "changegate/rollouts"
FILE_FORMAT = "changegate.io/v1/RolloutWave"


class StepKind(StrEnum):
    GATE = "gate"
    BACKUP = "backup"
    COMMIT = "commit"
    SYNC = "sync"
    VERIFY = "verify"
    BAKE = "bake"
    REVERT = "revert"
    RESTORE = "restore"
    CONCLUDE = "conclude"


FORWARD: tuple[StepKind, ...] = (
    StepKind.GATE,
    StepKind.BACKUP,
    StepKind.COMMIT,
    StepKind.SYNC,
    StepKind.VERIFY,
    StepKind.BAKE,
)
ROLLBACK = frozenset({StepKind.REVERT, StepKind.RESTORE, StepKind.CONCLUDE})


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class RolloutStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    ROLLING_BACK = "rolling-back"
    COMPLETE = "complete"
    FAILED = "failed"  # rolled back after a failure
    ABORTED = "aborted"  # rolled back because a person aborted it

    @property
    def active(self) -> bool:
        """Workers claim steps of active rollouts only."""
        return self in (RolloutStatus.RUNNING, RolloutStatus.ROLLING_BACK)

    @property
    def finished(self) -> bool:
        return self in (RolloutStatus.COMPLETE, RolloutStatus.FAILED, RolloutStatus.ABORTED)


class Action(StrEnum):
    """What a person may do to a rollout."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    PROMOTE = "promote"


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One step of the plan, keyed by (wave, kind); `seq` is its place in the order (0-based)."""

    seq: int
    wave: int
    waves: int
    kind: StepKind

    @property
    def key(self) -> str:
        return f"wave {self.wave}/{self.waves} {self.kind.value}"


def plan(waves: int) -> tuple[PlannedStep, ...]:
    """The forward steps of a rollout over `waves` waves, in the order they run."""
    if waves < 1:
        raise ValueError("a rollout has at least one wave")
    steps: list[PlannedStep] = []
    for wave in range(1, waves + 1):
        for kind in FORWARD:
            steps.append(PlannedStep(len(steps), wave, waves, kind))
    return tuple(steps)


def rollback_plan(
    *,
    next_seq: int,
    failed_wave: int,
    waves: int,
    committed: Sequence[int],
    revert_all: bool,
    restore: Sequence[int],
) -> tuple[PlannedStep, ...]:
    """The steps that undo a rollout, appended after `next_seq - 1`.

    `committed`: the waves whose commit is on the branch; the failed wave is reverted (when
    it was committed), and every earlier committed wave too with `revert_all`, newest first.
    `restore`: the waves whose tenant databases are restored from their pre-change backups
    (the service decides: irreversible changes, waves that were backed up and reverted).
    The last step concludes the change.
    """
    reverts = sorted(
        (w for w in set(committed) if w == failed_wave or (revert_all and w < failed_wave)),
        reverse=True,
    )
    steps: list[PlannedStep] = []
    for wave in reverts:
        steps.append(PlannedStep(next_seq + len(steps), wave, waves, StepKind.REVERT))
    for wave in sorted(set(restore), reverse=True):
        steps.append(PlannedStep(next_seq + len(steps), wave, waves, StepKind.RESTORE))
    steps.append(PlannedStep(next_seq + len(steps), failed_wave, waves, StepKind.CONCLUDE))
    return tuple(steps)


def due_after(finished: PlannedStep, now: datetime, bake: timedelta) -> datetime:
    """When the step after `finished` becomes due: a bake waits `bake` after verification."""
    if finished.kind is StepKind.VERIFY:
        return now + bake
    return now


def claimable(status: StepStatus, lease_until: datetime | None, now: datetime) -> bool:
    """Whether a worker may claim a step now: pending, or running under an expired lease."""
    if status is StepStatus.PENDING:
        return True
    if status is StepStatus.RUNNING:
        return lease_until is None or lease_until <= now
    return False


def allowed_action(action: Action, status: RolloutStatus, current: StepKind | None) -> str | None:
    """Why `action` cannot be done to a rollout in `status` at step `current`; None if it can.

    pause: a running rollout (a rollback is never paused). resume: a paused one. abort: a
    running or paused one. promote: a running or paused one whose current step is a bake
    (skip it) or a verification (accept it: a person takes the inconclusive result as good).
    """
    if status.finished:
        return f"the rollout is {status.value}"
    if status is RolloutStatus.ROLLING_BACK:
        return "the rollout is rolling back; it finishes by itself"
    if action is Action.PAUSE and status is not RolloutStatus.RUNNING:
        return f"the rollout is {status.value}, not running"
    if action is Action.RESUME and status is not RolloutStatus.PAUSED:
        return f"the rollout is {status.value}, not paused"
    if action is Action.PROMOTE and current not in (StepKind.BAKE, StepKind.VERIFY):
        shown = current.value if current else "none"
        return f"promote skips a bake or accepts a verification; the current step is {shown}"
    return None


# --------------------------------------------------------------------------- step outcomes


@dataclass(frozen=True, slots=True)
class Done:
    """The step is done: record `result` and move on."""

    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Wait:
    """Not yet: keep `progress` on the step and run it again at `until` (the lease is
    given back, so any worker may)."""

    until: datetime
    progress: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True, slots=True)
class Fail:
    """The wave failed: record why and roll back."""

    reason: str
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pause:
    """A person must decide: pause the rollout at this step, with why."""

    reason: str
    progress: dict[str, Any] = field(default_factory=dict)


Outcome = Done | Wait | Fail | Pause


# --------------------------------------------------------------------------- the wave's commit


def trailers(change_id: str, wave: int, waves: int) -> dict[str, str]:
    """The trailers that name a wave's commit (and find it again)."""
    return {CHANGE_ID_TRAILER: change_id, WAVE_TRAILER: f"{wave}/{waves}"}


def revert_trailers(change_id: str, wave: int, waves: int, commit: str) -> dict[str, str]:
    """The trailers of the commit that reverts a wave's commit."""
    return {**trailers(change_id, wave, waves), REVERTS_TRAILER: commit}


def wave_path(change_id: str, wave: int) -> str:
    """Where the wave's file lives in the GitOps repository."""
    return f"{ROLLOUT_FOLDER}/{change_id}/wave-{wave}.json"


def wave_document(
    change_id: str,
    wave: int,
    waves: int,
    tenants: Sequence[str],
    images: Sequence[Mapping[str, Any]],
    rendered: Sequence[str] = (),
) -> dict[str, Any]:
    """The wave's file: which tenants it carries, the change's artifacts (images with
    digests) and the tenant files rewritten in the same commit."""
    return {
        "format": FILE_FORMAT,
        "change": change_id,
        "wave": wave,
        "waves": waves,
        "tenants": sorted(tenants),
        "images": [dict(image) for image in images],
        "rendered": sorted(rendered),
    }


def _subject(change_id: str, text: str) -> str:
    short = text if len(text) <= 60 else text[:57] + "..."
    return f"{change_id} {short}"


def commit_message(change_id: str, title: str, wave: int, waves: int, tenants: int) -> str:
    """Subject, body and the trailers (the last paragraph, as `git interpret-trailers` reads)."""
    subject = _subject(change_id, f"wave {wave}/{waves}: {title}")
    body = f"Roll out {change_id} to {tenants} tenant(s) of wave {wave} of {waves}."
    lines = [f"{key}: {value}" for key, value in trailers(change_id, wave, waves).items()]
    return f"{subject}\n\n{body}\n\n" + "\n".join(lines) + "\n"


def revert_message(change_id: str, wave: int, waves: int, commit: str, reason: str) -> str:
    """The message of a wave's revert commit, with its trailers."""
    subject = _subject(change_id, f"revert wave {wave}/{waves}")
    body = f"This reverts commit {commit}.\n\nRolled back: {reason[:2000]}"
    found = revert_trailers(change_id, wave, waves, commit)
    return f"{subject}\n\n{body}\n\n" + "\n".join(f"{k}: {v}" for k, v in found.items()) + "\n"


# --------------------------------------------------------------------------- what a change asks


def application_name(pattern: str, values: Mapping[str, str]) -> str:
    """A tenant's GitOps application from the repository's `application` pattern."""
    name = pattern
    for key, value in values.items():
        name = name.replace("{" + key + "}", value)
    return name


def regex_alternation(values: Sequence[str]) -> str:
    """`a|b|c` for PromQL label matchers (`tenant=~"{{args.tenants}}"`), regex-escaped."""
    special = set(".^$*+?()[]{}|\\")
    return "|".join("".join("\\" + c if c in special else c for c in v) for v in sorted(values))
