"""The health port's pure rules: wave verdicts and `kubectl rollout status` evaluation."""

from __future__ import annotations

from typing import Any

from changegate.domain import health as h

SHA = "0123456789abcdef0123456789abcdef01234567"


def status(**kw: Any) -> h.AppStatus:
    base: dict[str, Any] = {
        "app": "acme",
        "sync": h.SyncStatus.SYNCED,
        "health": h.HealthStatus.HEALTHY,
        "revision": SHA,
    }
    return h.AppStatus(**{**base, **kw})


def test_unknown_words_map_to_unknown() -> None:
    assert h.sync_status("Weird") is h.SyncStatus.UNKNOWN
    assert h.health_status(None) is h.HealthStatus.UNKNOWN
    assert h.operation_phase("Nope") is None


def test_same_revision_accepts_abbreviations_of_seven_or_more() -> None:
    assert h.same_revision(SHA, SHA[:7])
    assert not h.same_revision(SHA, SHA[:6])
    assert not h.same_revision(None, SHA)


def test_delivered_waiting_failed() -> None:
    assert h.wave_verdict([status()], SHA).verdict is h.Verdict.DELIVERED
    waiting = h.wave_verdict([status(sync=h.SyncStatus.OUT_OF_SYNC)], SHA)
    assert waiting.verdict is h.Verdict.WAITING
    assert "sync OutOfSync" in waiting.reasons[0]
    old = h.wave_verdict([status(revision="f" * 40)], SHA)
    assert old.verdict is h.Verdict.WAITING and "waiting for" in old.reasons[0]
    progressing = h.wave_verdict([status(health=h.HealthStatus.PROGRESSING)], SHA)
    assert progressing.verdict is h.Verdict.WAITING
    degraded = h.wave_verdict(
        [status(), status(app="beta", health=h.HealthStatus.DEGRADED, message="crash")], SHA
    )
    assert degraded.verdict is h.Verdict.FAILED
    assert degraded.reasons == ["beta: health Degraded: crash"]
    failed_op = status(operation=h.OperationPhase.FAILED, operation_message="hook failed")
    assert h.wave_verdict([failed_op], SHA).verdict is h.Verdict.FAILED
    missing = status(health=h.HealthStatus.MISSING)
    assert h.wave_verdict([missing], SHA).verdict is h.Verdict.FAILED
    assert h.wave_verdict([missing], SHA, missing_fails=False).verdict is h.Verdict.WAITING
    assert h.wave_verdict([], SHA).verdict is h.Verdict.WAITING


def test_an_adapter_without_sync_is_judged_on_health() -> None:
    kubectl = status(sync=h.SyncStatus.UNKNOWN, revision=None, reports_sync=False)
    assert h.wave_verdict([kubectl], SHA).verdict is h.Verdict.DELIVERED


def deployment(**status_fields: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "odoo", "namespace": "t1", "generation": 3},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 3, **status_fields},
    }


def test_deployment_rollout_status_follows_kubectl() -> None:
    done = h.rollout_status(
        deployment(replicas=3, updatedReplicas=3, availableReplicas=3, readyReplicas=3)
    )
    assert done is not None and done.health is h.HealthStatus.HEALTHY
    unobserved = deployment(updatedReplicas=3, replicas=3, availableReplicas=3)
    unobserved["status"]["observedGeneration"] = 2
    found = h.rollout_status(unobserved)
    assert found is not None and found.message == "waiting for the spec update to be observed"
    cases = [
        ({"updatedReplicas": 1, "replicas": 3}, "1 out of 3 new replicas have been updated"),
        ({"updatedReplicas": 3, "replicas": 4}, "1 old replicas are pending termination"),
        (
            {"updatedReplicas": 3, "replicas": 3, "availableReplicas": 2},
            "2 of 3 updated replicas are available",
        ),
    ]
    for fields, message in cases:
        found = h.rollout_status(deployment(**fields))
        assert found is not None
        assert (found.health, found.message) == (h.HealthStatus.PROGRESSING, message)
    stuck = deployment(conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}])
    found = h.rollout_status(stuck)
    assert found is not None and found.health is h.HealthStatus.DEGRADED


def test_statefulset_and_daemonset() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "pg", "generation": 1},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 2,
            "currentRevision": "pg-1",
            "updateRevision": "pg-2",
            "updatedReplicas": 1,
        },
    }
    found = h.rollout_status(sts)
    assert found is not None and found.health is h.HealthStatus.PROGRESSING
    sts["status"]["currentRevision"] = "pg-2"
    found = h.rollout_status(sts)
    assert found is not None and found.health is h.HealthStatus.HEALTHY
    ds = {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "generation": 1},
        "spec": {},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 3,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    found = h.rollout_status(ds)
    assert found is not None and found.message == "2 of 3 updated pods are available"
    assert h.rollout_status({"kind": "ConfigMap"}) is None


def test_combined_health_is_the_worst() -> None:
    a = h.RolloutStatus("Deployment", "n", "a", h.HealthStatus.HEALTHY, "")
    b = h.RolloutStatus("Deployment", "n", "b", h.HealthStatus.PROGRESSING, "")
    c = h.RolloutStatus("Deployment", "n", "c", h.HealthStatus.DEGRADED, "")
    assert h.combined_health([a, b]) is h.HealthStatus.PROGRESSING
    assert h.combined_health([a, b, c]) is h.HealthStatus.DEGRADED
    assert h.combined_health([]) is h.HealthStatus.MISSING
