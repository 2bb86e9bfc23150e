"""Rollouts on both databases against real Git: a bare remote in tmp_path and a clone of it
as the worker's working copy. Waves become one commit each, found again by their trailers;
a step whose worker died (its lease expired) is run again without a second commit."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from changegate import bootstrap
from changegate.adapters import git as git_adapter
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeState, CloseCode
from changegate.domain.rollout import Action, RolloutStatus, StepKind, StepStatus
from changegate.errors import Refused
from changegate.services import audit as audit_service
from changegate.services import calendar as calendar_service
from changegate.services import changes as change_service
from changegate.services import rollout as rollout_service
from changegate.services.context import SYSTEM, Context, actor_for
from changegate.store import db
from changegate.store import rollouts as rollout_store
from changegate.worker import Worker
from tests.factories import change_spec
from tests.lifecycle import approve_until_authorized, drive

S = ChangeState
TUESDAY = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
TENANTS = ("harbor-printing", "aperture-retail", "sterling-plastics")
IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, "-C", str(repo), *args],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.decode().strip()


@pytest.fixture(autouse=True)
def _no_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def make_remote(tmp_path: Path) -> tuple[Path, Path]:
    """A bare remote with one commit on main, and a clone of it (the worker's workdir)."""
    remote = tmp_path / "fleet.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(remote)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(seed)], check=True)
    (seed / "README.md").write_text("fleet\n")
    git(seed, "add", "README.md")
    git(seed, "commit", "--quiet", "-m", "initial")
    git(seed, "push", "--quiet", str(remote), "main")
    clone = tmp_path / "workdir"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(clone)], check=True)
    return remote, clone


def wave_commits(remote: Path, change_id: str) -> list[dict[str, str]]:
    """The commits on the remote's main naming `change_id`, oldest first, with trailers."""
    out = git(remote, "log", "--reverse", "--format=%H%x00%(trailers:unfold)%x1e", "main")
    found = []
    for record in out.split("\x1e"):
        sha, _, block = record.strip().partition("\x00")
        pairs = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if pairs.get("Change-Id") == change_id:
            found.append({"sha": sha, **pairs})
    return found


def at(catalog: catalog_model.Catalog, person: str, when: datetime) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: when)


def implementing(app: bootstrap.App, catalog: catalog_model.Catalog) -> tuple[str, datetime]:
    """A change moved to Implementing at its
    first wave's start; that instant."""
    # One tenant on each of three clusters in different timezones: three waves. A production
    # change ships no image here (promotion would need staging evidence).
    spec = change_spec(targets={"tenants": list(TENANTS)}, category="application-release")
    change = change_service.create(app.engine, catalog, at(catalog, "alice", TUESDAY), spec)
    as_ = lambda person: at(catalog, person, TUESDAY)  # noqa: E731
    drive(app.engine, catalog, change.id, S.AUTHORIZE, as_=as_)
    approve_until_authorized(app.engine, catalog, change.id, as_)
    booked = calendar_service.schedule(app.engine, catalog, as_("bob"), change.id)
    start = booked.plan.waves[0].start
    change_service.transition(
        app.engine, catalog, at(catalog, "bob", start), change.id, S.IMPLEMENTING
    )
    return change.id, start


def delivery(clone: Path) -> rollout_service.Delivery:
    return rollout_service.Delivery(rollout_service.GitTarget(git_adapter.Clone(clone), "main"))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_three_wave_change_is_committed_wave_by_wave_and_moves_to_review(
    app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    remote, clone = make_remote(tmp_path)
    change_id, start = implementing(app, catalog)
    started = rollout_service.start(app.engine, catalog, at(catalog, "bob", start), change_id)
    assert started.rollout.waves == 3
    assert [s.kind for s in started.steps[:6]] == [
        StepKind.GATE,
        StepKind.BACKUP,
        StepKind.COMMIT,
        StepKind.SYNC,
        StepKind.VERIFY,
        StepKind.BAKE,
    ]
    # Idempotent: asking again returns the same rollout.
    again = rollout_service.start(app.engine, catalog, at(catalog, "bob", start), change_id)
    assert again.rollout == started.rollout

    target = delivery(clone)
    clock = Clock(start)
    worker = Worker(app.engine, lambda: catalog, target, name="w1", clock=clock)
    waves = calendar_service.schedule_of(app.engine, catalog, at(catalog, "bob", start), change_id)
    # Wave 1's six steps, then wave 2's gate waits for its slot.
    turns = []
    worker.report = turns.append
    worker.run(once=True)
    assert len(turns) == 7, turns
    for wave in waves.plan.waves[1:]:
        assert [c["Wave"] for c in wave_commits(remote, change_id)][-1] == f"{wave.index - 1}/3"
        clock.now = wave.start
        worker.run(once=True)
    assert worker.run(once=True) == 0  # a second pass finds nothing to do

    commits = wave_commits(remote, change_id)
    assert [c["Wave"] for c in commits] == ["1/3", "2/3", "3/3"]
    for commit, wave in zip(commits, waves.plan.waves, strict=True):
        body = json.loads(
            git(
                remote,
                "show",
                f"{commit['sha']}:changegate/rollouts/{change_id}/wave-{wave.index}.json",
            )
        )
        assert body["tenants"] == sorted(wave.tenants)
        assert body["images"] == []
        assert body["change"] == change_id
        assert git(remote, "log", "-1", "--format=%an <%ae>", commit["sha"]) == (
            "changegate <changegate@localhost>"
        )

    view = rollout_service.status(app.engine, at(catalog, "frank", start), change_id)
    assert view.rollout.status is RolloutStatus.COMPLETE
    assert all(step.status is StepStatus.DONE for step in view.steps)
    assert view.steps[1].result == {"needed": False}  # no database is touched
    assert view.steps[3].result == {
        "observed": False,
        "reason": "no delivery-status source is configured",
    }
    change = change_service.get(app.engine, at(catalog, "frank", start), change_id)
    assert change.state is S.REVIEW

    events = audit_service.events(app.engine, at(catalog, "frank", start), object_id=change_id)
    actions = [event.action for event in events]
    assert actions.count("rollout.commit") == 3
    assert actions[-2:] == ["rollout.completed", "change.transitioned"]
    assert events[-1].after["state"] == "review"
    assert events[-1].actor == SYSTEM.id
    report = audit_service.verify(app.engine, at(catalog, "frank", start))
    assert report.ok, report.problem

    # A fresh worker after the fact changes nothing, on the remote or in the database.
    assert Worker(app.engine, lambda: catalog, target, name="w2", clock=clock).run(once=True) == 0
    assert len(wave_commits(remote, change_id)) == 3


def test_a_step_whose_worker_died_is_retried_after_its_lease_without_a_second_commit(
    app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    remote, clone = make_remote(tmp_path)
    change_id, start = implementing(app, catalog)
    rollout_service.start(app.engine, catalog, at(catalog, "bob", start), change_id)
    target = delivery(clone)
    lease = timedelta(seconds=30)
    # Wave 1's gate and backup.
    assert (
        Worker(app.engine, lambda: catalog, target, name="w0", clock=Clock(start)).run(max_steps=2)
        == 2
    )

    # Worker A claims wave 1's commit, pushes it, and dies before recording it.
    with db.transaction(app.engine) as conn:
        claimed = rollout_store.claim_next(conn, "dead-worker", start, start + lease)
    assert claimed is not None
    assert (claimed.kind, claimed.wave, claimed.attempts) == (StepKind.COMMIT, 1, 1)
    pushed = target.target.clone.commit_file(
        "main",
        "changegate/rollouts/x.json",
        b"{}\n",
        f"{change_id} wave 1/3\n\nChange-Id: {change_id}\nWave: 1/3\n",
        trailers={"Change-Id": change_id, "Wave": "1/3"},
    )
    assert pushed.created

    # While A's lease holds, nobody else takes the step.
    clock = Clock(start + timedelta(seconds=10))
    other = Worker(app.engine, lambda: catalog, target, name="w2", clock=clock, lease=lease)
    assert other.turn() is None
    # Once it expires, B runs the step again and finds A's commit by its trailers.
    clock.now = start + lease + timedelta(seconds=1)
    turn = other.turn()
    assert turn is not None
    assert (turn.kind, turn.outcome, turn.detail["commit"]) == (StepKind.COMMIT, "done", pushed.sha)
    assert turn.detail["created"] is False
    # A comes back to life and tries to record its step: the claim is no longer its own.
    with db.transaction(app.engine) as conn:
        assert not rollout_store.finish(conn, claimed, now=clock.now, result={}, next_due=clock.now)

    assert other.run(once=True) == 4  # wave 1's sync, verify and bake; wave 2's gate waits
    assert [c["Wave"] for c in wave_commits(remote, change_id)] == ["1/3"]
    steps = rollout_service.status(app.engine, at(catalog, "frank", start), change_id).steps
    assert steps[2].attempts == 2
    assert steps[2].claimed_by == "w2"


def test_a_bake_waits_and_a_failed_push_is_retried(
    app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    remote, clone = make_remote(tmp_path)
    change_id, start = implementing(app, catalog)
    rollout_service.start(
        app.engine, catalog, at(catalog, "bob", start), change_id, bake=timedelta(minutes=10)
    )
    broken = tmp_path / "elsewhere"
    git(clone, "remote", "set-url", "origin", str(broken))
    target = delivery(clone)
    clock = Clock(start)
    worker = Worker(app.engine, lambda: catalog, target, name="w", clock=clock)
    assert worker.run(max_steps=2) == 2  # gate and backup
    failed = worker.turn()
    assert failed is not None and failed.outcome == "retry"
    assert worker.turn() is None  # not due again before the retry delay
    git(clone, "remote", "set-url", "origin", str(remote))
    clock.now += rollout_service.RETRY_AFTER
    assert worker.run(once=True) == 3  # commit, sync and verify; the bake is not due yet
    clock.now += timedelta(minutes=10)
    assert worker.run(once=True) == 2  # the bake, then wave 2's gate waits for its slot
    steps = rollout_service.status(app.engine, at(catalog, "frank", start), change_id).steps
    assert steps[2].attempts == 2
    assert steps[5].status is StepStatus.DONE
    assert [c["Wave"] for c in wave_commits(remote, change_id)] == ["1/3"]


def test_a_rollout_starts_only_when_the_change_is_implementing(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = change_service.create(
        app.engine, catalog, at(catalog, "alice", TUESDAY), change_spec()
    )
    with pytest.raises(Refused, match="implementing"):
        rollout_service.start(app.engine, catalog, at(catalog, "bob", TUESDAY), change.id)


def test_a_long_step_keeps_its_lease_while_it_runs(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pg_dump outlasts any lease: the worker renews it while the effect runs, so another
    worker cannot take the step in hand."""
    _remote, clone = make_remote(tmp_path)
    change_id, start = implementing(app, catalog)
    rollout_service.start(app.engine, catalog, at(catalog, "bob", start), change_id)
    lease = timedelta(seconds=0.6)
    seen: list[bool] = []
    real_effect = rollout_service._effect

    def slow(*args: object, **kwargs: object) -> rollout_service.Outcome:
        # Three leases long; halfway through, a second worker tries to take the step.
        import time

        time.sleep(0.9)
        with db.transaction(app.engine) as conn:
            now = datetime.now(UTC)
            seen.append(rollout_store.claim_next(conn, "thief", now, now + lease) is None)
        time.sleep(0.9)
        return real_effect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollout_service, "_effect", slow)
    worker = Worker(
        app.engine, lambda: catalog, delivery(clone), name="w", lease=lease, clock=Clock(start)
    )
    # The claim uses the worker's clock (the change's start); renewals use it too.
    worker.clock = lambda: datetime.now(UTC)
    turn = worker.turn()
    assert turn is not None and turn.outcome == "done", turn
    assert seen == [True]
    steps = rollout_service.status(app.engine, at(catalog, "frank", start), change_id).steps
    assert steps[0].attempts == 1 and steps[0].claimed_by == "w"


def test_an_abort_reverts_a_wave_whose_push_landed_unrecorded(
    app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    """A push that timed out after it landed leaves the commit step pending with an error:
    an abort still reverts that wave, finding its commit by the trailers."""
    remote, clone = make_remote(tmp_path)
    change_id, start = implementing(app, catalog)
    rollout_service.start(app.engine, catalog, at(catalog, "bob", start), change_id)
    target = delivery(clone)
    worker = Worker(app.engine, lambda: catalog, target, name="w", clock=Clock(start))
    assert worker.run(max_steps=2) == 2  # gate and backup
    with db.transaction(app.engine) as conn:
        claimed = rollout_store.claim_next(conn, "w", start, start + timedelta(seconds=30))
    assert claimed is not None and claimed.kind is StepKind.COMMIT
    pushed = target.target.clone.commit_file(
        "main",
        f"changegate/rollouts/{change_id}/wave-1.json",
        b"{}\n",
        f"{change_id} wave 1/3\n\nChange-Id: {change_id}\nWave: 1/3\n",
        trailers={"Change-Id": change_id, "Wave": "1/3"},
    )
    with db.transaction(app.engine) as conn:
        retry = start + timedelta(minutes=5)
        assert rollout_store.release(conn, claimed, error="push timed out", retry_at=retry)

    rollout_service.control(
        app.engine,
        catalog,
        at(catalog, "bob", start),
        change_id,
        Action.ABORT,
        reason="the push timed out; stop here",
    )
    assert worker.run(once=True) == 2  # the revert and the conclusion
    commits = wave_commits(remote, change_id)
    assert [c.get("Reverts") for c in commits] == [None, pushed.sha]
    view = rollout_service.status(app.engine, at(catalog, "frank", start), change_id)
    assert view.rollout.status is RolloutStatus.ABORTED
    change = change_service.get(app.engine, at(catalog, "frank", start), change_id)
    assert (change.state, change.close_code) == (S.CLOSED, CloseCode.UNSUCCESSFUL)
