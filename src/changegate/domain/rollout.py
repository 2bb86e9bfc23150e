"""A change's rollout: the steps that carry it to its tenants, wave by wave, and their states.

The plan of a change with N booked waves is, for each wave k in 1..N, in order:

    commit  write the wave's file to the GitOps repository and push one commit with the
            trailers `Change-Id: CHG-<n>` and `Wave: <k>/<N>` (found again by them, so a
            retried step never commits twice);
    sync    wait for the GitOps controller to sync the commit and report healthy. A
            placeholder that succeeds at once until the sync/health port (Argo CD, kubectl)
            exists: the step is recorded as `placeholder: true`;
    bake    let the wave run for the bake time before the next wave starts (the step becomes
            due `bake` after its sync finished; 0 in tests).

Steps run one at a time, in order, each claimed by one worker under a lease. A step is
PENDING until claimed, RUNNING while a worker holds its lease, DONE when its result is
recorded. A RUNNING step whose lease has expired (its worker died) may be claimed again. The
rollout is RUNNING until its last step is DONE, then COMPLETE.

Everything here is pure: the store keeps the rows, the service does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

CHANGE_ID_TRAILER = "Change-Id"
WAVE_TRAILER = "Wave"
ROLLOUT_FOLDER = "changegate/rollouts"
FILE_FORMAT = "changegate.io/v1/RolloutWave"


class StepKind(StrEnum):
    COMMIT = "commit"
    SYNC = "sync"
    BAKE = "bake"


STEP_ORDER: tuple[StepKind, ...] = (StepKind.COMMIT, StepKind.SYNC, StepKind.BAKE)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


class RolloutStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"


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
    """The steps of a rollout over `waves` waves, in the order they run."""
    if waves < 1:
        raise ValueError("a rollout has at least one wave")
    steps: list[PlannedStep] = []
    for wave in range(1, waves + 1):
        for kind in STEP_ORDER:
            steps.append(PlannedStep(len(steps), wave, waves, kind))
    return tuple(steps)


def due_after(finished: PlannedStep, now: datetime, bake: timedelta) -> datetime:
    """When the step after `finished` becomes due: a bake waits `bake` after its sync."""
    if finished.kind is StepKind.SYNC:
        return now + bake
    return now


def claimable(status: StepStatus, lease_until: datetime | None, now: datetime) -> bool:
    """Whether a worker may claim a step now: pending, or running under an expired lease."""
    if status is StepStatus.PENDING:
        return True
    if status is StepStatus.RUNNING:
        return lease_until is None or lease_until <= now
    return False


# --------------------------------------------------------------------------- the wave's commit


def trailers(change_id: str, wave: int, waves: int) -> dict[str, str]:
    """The trailers that name a wave's commit (and find it again)."""
    return {CHANGE_ID_TRAILER: change_id, WAVE_TRAILER: f"{wave}/{waves}"}


def wave_path(change_id: str, wave: int) -> str:
    """Where the wave's file lives in the GitOps repository."""
    return f"{ROLLOUT_FOLDER}/{change_id}/wave-{wave}.json"


def wave_document(
    change_id: str,
    wave: int,
    waves: int,
    tenants: Sequence[str],
    images: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The wave's file: which tenants it carries and the change's artifacts (images with
    digests), for the GitOps controller's tooling to render into each tenant's manifests."""
    return {
        "format": FILE_FORMAT,
        "change": change_id,
        "wave": wave,
        "waves": waves,
        "tenants": sorted(tenants),
        "images": [dict(image) for image in images],
    }


def commit_message(change_id: str, title: str, wave: int, waves: int, tenants: int) -> str:
    """Subject, body and the trailers (the last paragraph, as `git interpret-trailers` reads)."""
    short = title if len(title) <= 60 else title[:57] + "..."
    subject = f"{change_id} wave {wave}/{waves}: {short}"
    body = f"Roll out {change_id} to {tenants} tenant(s) of wave {wave} of {waves}."
    lines = [f"{key}: {value}" for key, value in trailers(change_id, wave, waves).items()]
    return f"{subject}\n\n{body}\n\n" + "\n".join(lines) + "\n"
