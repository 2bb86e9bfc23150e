"""Sync and health of what a wave delivered: the port, and the pure rules that read it.

`DeliveryStatus` is the narrow port the rollout waits on: one method, the status of one
application. Two adapters implement it: `adapters.argocd_status` (Argo CD's application API)
and `adapters.kubectl` (`kubectl get -o json` read the way `kubectl rollout status` reads it,
for teams without Argo CD). Both answer with an `AppStatus` in Argo CD's vocabulary:

- sync: Synced, OutOfSync, Unknown;
- health: Healthy, Progressing, Degraded, Suspended, Missing, Unknown;
- the revision the application is synced to (a commit id), and a message.

`wave_verdict` decides whether a wave is delivered at a revision: every application Synced
at that revision (or a newer one the caller accepts) and Healthy is DELIVERED; a Degraded or
Missing application, or a failed sync operation, is FAILED; anything else is WAITING, with
the reasons either way. The caller decides how long WAITING may last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class SyncStatus(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class HealthStatus(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    MISSING = "Missing"
    UNKNOWN = "Unknown"


class OperationPhase(StrEnum):
    """Argo CD's sync operation phases (`status.operationState.phase`)."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    TERMINATING = "Terminating"


def sync_status(text: object) -> SyncStatus:
    """A sync status as Argo CD writes it; anything else is Unknown."""
    try:
        return SyncStatus(str(text))
    except ValueError:
        return SyncStatus.UNKNOWN


def health_status(text: object) -> HealthStatus:
    """A health status as Argo CD writes it; anything else is Unknown."""
    try:
        return HealthStatus(str(text))
    except ValueError:
        return HealthStatus.UNKNOWN


def operation_phase(text: object) -> OperationPhase | None:
    try:
        return OperationPhase(str(text))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class AppStatus:
    """One application's sync and health, as an adapter read it."""

    app: str
    sync: SyncStatus
    health: HealthStatus
    revision: str | None = None
    message: str = ""
    operation: OperationPhase | None = None
    operation_message: str = ""
    # The adapter can tell sync (Argo CD) or cannot (kubectl: sync is always Unknown).
    reports_sync: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "app": self.app,
            "sync": self.sync.value,
            "health": self.health.value,
            "revision": self.revision,
            "message": self.message,
            "operation": self.operation.value if self.operation else None,
            "operation_message": self.operation_message,
            "reports_sync": self.reports_sync,
        }


class StatusUnavailable(Exception):
    """The status could not be read (unreachable, refused, malformed); the message says why."""


class DeliveryStatus(Protocol):
    """The port: the sync and health of one application (Argo CD app, or workload group)."""

    def application_status(self, app: str) -> AppStatus:
        """The application's status now; StatusUnavailable when it cannot be read."""
        ...


class Verdict(StrEnum):
    DELIVERED = "delivered"
    WAITING = "waiting"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WaveVerdict:
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict.value, "reasons": list(self.reasons)}


def same_revision(reported: str | None, wanted: str) -> bool:
    """A reported revision names the wanted commit (full ids, or one a prefix of the other
    with at least 7 hex digits, as Git abbreviates)."""
    if not reported or not wanted:
        return False
    a, b = reported.strip().lower(), wanted.strip().lower()
    if a == b:
        return True
    short = min(len(a), len(b))
    return short >= 7 and a[:short] == b[:short]


def app_verdict(status: AppStatus, revision: str | None) -> WaveVerdict:
    """One application: delivered at revision (None: any revision), waiting, or failed."""
    name = status.app
    if status.operation in (OperationPhase.FAILED, OperationPhase.ERROR):
        detail = f": {status.operation_message}" if status.operation_message else ""
        return WaveVerdict(Verdict.FAILED, [f"{name}: sync operation {status.operation}{detail}"])
    if status.health is HealthStatus.DEGRADED:
        detail = f": {status.message}" if status.message else ""
        return WaveVerdict(Verdict.FAILED, [f"{name}: health Degraded{detail}"])
    waiting: list[str] = []
    if status.reports_sync:
        if status.sync is not SyncStatus.SYNCED:
            waiting.append(f"{name}: sync {status.sync}")
        if revision is not None and not same_revision(status.revision, revision):
            waiting.append(
                f"{name}: at revision {status.revision or '(none)'}, waiting for {revision}"
            )
    elif (
        revision is not None
        and status.revision is not None
        and not same_revision(status.revision, revision)
    ):
        waiting.append(f"{name}: at revision {status.revision}, waiting for {revision}")
    if status.health is not HealthStatus.HEALTHY:
        detail = f": {status.message}" if status.message else ""
        waiting.append(f"{name}: health {status.health}{detail}")
    if status.operation in (OperationPhase.RUNNING, OperationPhase.TERMINATING):
        waiting.append(f"{name}: sync operation {status.operation}")
    if waiting:
        return WaveVerdict(Verdict.WAITING, waiting)
    at = f" at {status.revision}" if status.revision else ""
    return WaveVerdict(Verdict.DELIVERED, [f"{name}: Synced and Healthy{at}"])


def wave_verdict(
    statuses: Sequence[AppStatus], revision: str | None, *, missing_fails: bool = True
) -> WaveVerdict:
    """Every application of a wave: FAILED if any failed, else WAITING if any waits, else
    DELIVERED. A Missing application fails the wave when missing_fails (the default: after
    the commit, every application of the wave must exist); otherwise it waits."""
    if not statuses:
        return WaveVerdict(Verdict.WAITING, ["no application to wait for"])
    failed: list[str] = []
    waiting: list[str] = []
    delivered: list[str] = []
    for status in statuses:
        if status.health is HealthStatus.MISSING and missing_fails:
            failed.append(f"{status.app}: health Missing")
            continue
        found = app_verdict(status, revision)
        target = {Verdict.FAILED: failed, Verdict.WAITING: waiting, Verdict.DELIVERED: delivered}
        target[found.verdict].extend(found.reasons)
    if failed:
        return WaveVerdict(Verdict.FAILED, failed)
    if waiting:
        return WaveVerdict(Verdict.WAITING, waiting)
    return WaveVerdict(Verdict.DELIVERED, delivered)


# --------------------------------------------------------------------------- rollout status


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """`kubectl rollout status` for one workload: done, or not yet, or failed, and why."""

    kind: str
    namespace: str
    name: str
    health: HealthStatus
    message: str


_Result = Callable[[HealthStatus, str], RolloutStatus]
_Obj = dict[str, object]


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def rollout_status(obj: dict[str, object]) -> RolloutStatus | None:
    """Evaluate a Deployment, StatefulSet or DaemonSet the way `kubectl rollout status`
    does (kubectl's polymorphichelpers/rollout_status.go); None for any other kind."""
    kind = str(obj.get("kind", ""))
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))

    def result(health: HealthStatus, message: str) -> RolloutStatus:
        return RolloutStatus(kind, namespace, name, health, message)

    generation = _int(meta.get("generation"))
    observed = _int(status.get("observedGeneration"), -1)
    if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
        return None
    if generation > observed:
        return result(HealthStatus.PROGRESSING, "waiting for the spec update to be observed")
    if kind == "Deployment":
        return _deployment(spec, status, result)
    if kind == "StatefulSet":
        return _statefulset(spec, status, result)
    return _daemonset(spec, status, result)


def _deployment(spec: _Obj, status: _Obj, result: _Result) -> RolloutStatus:
    if spec.get("paused") is True:
        return result(HealthStatus.SUSPENDED, "the deployment is paused")
    conditions = status.get("conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        if (
            isinstance(condition, dict)
            and condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return result(HealthStatus.DEGRADED, "exceeded its progress deadline")
    replicas = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    total = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if updated < replicas:
        return result(
            HealthStatus.PROGRESSING,
            f"{updated} out of {replicas} new replicas have been updated",
        )
    if total > updated:
        return result(
            HealthStatus.PROGRESSING, f"{total - updated} old replicas are pending termination"
        )
    if available < updated:
        return result(
            HealthStatus.PROGRESSING, f"{available} of {updated} updated replicas are available"
        )
    return result(HealthStatus.HEALTHY, "successfully rolled out")


def _statefulset(spec: _Obj, status: _Obj, result: _Result) -> RolloutStatus:
    strategy = _dict(spec.get("updateStrategy"))
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return result(
            HealthStatus.UNKNOWN, "rollout status is only available for RollingUpdate strategy"
        )
    replicas = _int(spec.get("replicas"), 1)
    ready = _int(status.get("readyReplicas"))
    if ready < replicas:
        return result(HealthStatus.PROGRESSING, f"{ready} of {replicas} pods are ready")
    rolling = _dict(strategy.get("rollingUpdate"))
    partition = _int(rolling.get("partition"))
    if partition > 0:
        updated = _int(status.get("updatedReplicas"))
        if updated < replicas - partition:
            return result(
                HealthStatus.PROGRESSING,
                f"{updated} of {replicas - partition} pods updated (partition {partition})",
            )
        return result(HealthStatus.HEALTHY, f"partitioned roll out complete ({updated} new)")
    if status.get("updateRevision") != status.get("currentRevision"):
        updated = _int(status.get("updatedReplicas"))
        return result(
            HealthStatus.PROGRESSING,
            f"{updated} of {replicas} pods at revision {status.get('updateRevision')}",
        )
    return result(HealthStatus.HEALTHY, f"rolling update complete: {ready} pods")


def _daemonset(spec: _Obj, status: _Obj, result: _Result) -> RolloutStatus:
    strategy = _dict(spec.get("updateStrategy"))
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return result(
            HealthStatus.UNKNOWN, "rollout status is only available for RollingUpdate strategy"
        )
    desired = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    available = _int(status.get("numberAvailable"))
    if updated < desired:
        return result(
            HealthStatus.PROGRESSING, f"{updated} out of {desired} new pods have been updated"
        )
    if available < desired:
        return result(
            HealthStatus.PROGRESSING, f"{available} of {desired} updated pods are available"
        )
    return result(HealthStatus.HEALTHY, "successfully rolled out")


_WORST: tuple[HealthStatus, ...] = (
    HealthStatus.DEGRADED,
    HealthStatus.MISSING,
    HealthStatus.UNKNOWN,
    HealthStatus.SUSPENDED,
    HealthStatus.PROGRESSING,
    HealthStatus.HEALTHY,
)


def combined_health(statuses: Sequence[RolloutStatus]) -> HealthStatus:
    """The worst health of the workloads (as Argo CD aggregates resource health); Missing
    when there is none."""
    if not statuses:
        return HealthStatus.MISSING
    return min((s.health for s in statuses), key=_WORST.index)
