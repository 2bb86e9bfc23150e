"""`changegate rollout ...` through the console script, with a worker running the steps
in-process on the same SQLite file and a real Git remote.

The CLI acts on the real clock; the worker runs on a set one, ahead of both the real clock
and the change's waves, and reads the sample catalog without its windows (as the kill-loop
test does), so what is due does not depend on the day the test runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.services import rollout as rollout_service
from changegate.services.context import utcnow
from changegate.settings import Settings
from changegate.worker import Worker
from tests.api.conftest import as_
from tests.api.test_rollout_routes import implementing_as
from tests.e2e.test_cli_harness import Cli, Result
from tests.integration.test_rollout import Clock, at, delivery, make_remote, wave_commits


@pytest.fixture(autouse=True)
def _no_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


class Rig:
    """A change in Implementing (filed by `requester`), its rollout started with a 10-minute
    bake, and a worker on the CLI's database."""

    def __init__(
        self,
        cli: Cli,
        tmp_path: Path,
        catalog_dir: Path,
        calm_dir: Path,
        requester: str = "alice",
        *,
        start: bool = True,
    ) -> None:
        cli("db", "upgrade")
        self.cli = cli
        self.app = bootstrap.create(
            Settings(database_url=cli.database_url, catalog_dir=catalog_dir)
        )
        catalog = self.app.catalog()
        self.remote, clone = make_remote(tmp_path)
        self.change_id, self.starts = implementing_as(self.app, catalog, requester)
        if start:
            when = at(catalog, "bob", self.starts[0])
            rollout_service.start(
                self.app.engine, catalog, when, self.change_id, bake=timedelta(minutes=10)
            )
        # Past every wave's slot and past whatever the CLI's clock reads during the test.
        self.clock = Clock(max(utcnow(), self.starts[-1]) + timedelta(hours=1))
        calm = bootstrap.load_catalog(self.app.settings, calm_dir)
        self.worker = Worker(
            self.app.engine, lambda: calm, delivery(clone), name="w", clock=self.clock
        )

    def __call__(self, *args: str, person: str = "bob", expect: int | None = 0) -> Result:
        return self.cli("--as", person, "rollout", *args, expect=expect)

    def json(self, *args: str, person: str = "bob") -> Any:
        return self(*args, "--json", person=person).json()

    def status(self) -> Any:
        return self.json("status", self.change_id, person="frank")

    def close(self) -> None:
        self.app.engine.dispose()


@pytest.fixture
def rig(cli: Cli, tmp_path: Path, sample_dir: Path, calm_sample_dir: Path) -> Iterator[Rig]:
    made = Rig(cli, tmp_path, sample_dir, calm_sample_dir)
    yield made
    made.close()


def test_status_and_list_print_what_the_api_answers(rig: Rig) -> None:
    body = rig.status()
    assert set(body) == {
        "change_id",
        "status",
        "reason",
        "waves",
        "position",
        "current",
        "bake_seconds",
        "config",
        "steps",
    }
    assert (body["status"], body["current"], body["bake_seconds"]) == (
        "running",
        "wave 1/3 gate",
        600,
    )
    assert len(body["steps"]) == 18
    listed = rig.json("list", person="frank")
    [line] = listed["items"]
    assert (line["change_id"], line["status"], line["created_by"]) == (
        rig.change_id,
        "running",
        "bob",
    )
    assert rig.json("list", "--status", "paused", "--status", "aborted") == {"items": []}
    assert rig.json("list", "--status", "running") == listed
    bad = rig("list", "--status", "sleeping", expect=1)
    assert "sleeping" in bad.stderr

    assert rig.worker.run(once=True) == 5  # wave 1 up to its verification; baking
    human = rig("status", rig.change_id).stdout
    assert f"{rig.change_id} rollout: running at wave 1/3 bake" in human
    assert "bake 10m after each" in human
    assert "wave 1/3" in human and "wave 3/3" in human
    assert "> bake" in human
    assert "current step: wave 1/3 bake, pending, due" in human
    table = rig("list").stdout
    assert rig.change_id in table and "wave 1/3 bake" in table

    missing = rig("status", "CHG-99", expect=1)
    assert "CHG-99" in missing.stderr


def test_the_cli_json_is_what_the_api_answers(rig: Rig, client: TestClient) -> None:
    assert rig.worker.run(once=True) == 5
    rig("pause", rig.change_id, "--reason", "a look")
    url = f"/api/v1/changes/{rig.change_id}/rollout"
    assert rig.status() == client.get(url, headers=as_("frank")).json()
    listed = client.get("/api/v1/rollouts?status=paused", headers=as_("frank")).json()
    assert rig.json("list", "--status", "paused") == listed
    refused_cli = rig("resume", rig.change_id, "--reason", "x", person="alice", expect=2)
    refused_api = client.post(f"{url}/resume", json={"reason": "x"}, headers=as_("alice"))
    assert refused_api.status_code == 403
    assert refused_cli.stderr.splitlines()[0] == f"error: {refused_api.json()['detail']}"


def test_start_is_idempotent_and_parses_a_go_duration(
    cli: Cli, tmp_path: Path, sample_dir: Path, calm_sample_dir: Path
) -> None:
    rig = Rig(cli, tmp_path, sample_dir, calm_sample_dir, start=False)
    try:
        bad = rig("start", rig.change_id, "--bake", "10 minutes", expect=1)
        assert "--bake" in bad.stderr and "not a duration" in bad.stderr
        refused = rig("start", rig.change_id, person="frank", expect=2)
        assert "may not changes:transition" in refused.stderr
        started = rig.json("start", rig.change_id, "--bake", "1h30m")
        assert (started["bake_seconds"], started["status"]) == (5400, "running")
        assert started == rig.status()
        again = rig("start", rig.change_id, "--bake", "5m")
        assert "was started before; nothing changed" in again.stdout
        assert rig.status()["bake_seconds"] == 5400
    finally:
        rig.close()


def test_pause_stops_the_worker_and_resume_goes_on(rig: Rig) -> None:
    assert rig.worker.run(max_steps=2) == 2  # wave 1's gate and backup
    paused = rig("pause", rig.change_id, "--reason", "the dashboards look odd")
    assert f"{rig.change_id}'s rollout paused" in paused.stdout
    assert "reason   the dashboards look odd" in paused.stdout
    assert rig.worker.run(once=True) == 0  # nothing is claimed while it is paused
    assert wave_commits(rig.remote, rig.change_id) == []
    again = rig("pause", rig.change_id, "--reason", "again", expect=2)
    assert "not running" in again.stderr

    resumed = rig.json("resume", rig.change_id, "--reason", "false alarm", person="carol")
    assert (resumed["status"], resumed["reason"]) == ("running", None)
    assert rig.worker.run(once=True) == 3  # commit, sync, verify; the bake is not due
    assert [c["Wave"] for c in wave_commits(rig.remote, rig.change_id)] == ["1/3"]

    history = rig.cli("--as", "frank", "change", "show", rig.change_id, "--json").json()
    events = [(e["action"], e["actor"]) for e in history["history"]]
    assert ("rollout.paused", "bob") in events
    assert ("rollout.resumed", "carol") in events


def test_promote_skips_the_bake_and_the_next_wave_goes(rig: Rig) -> None:
    early = rig("promote", rig.change_id, "--reason", "go", expect=2)
    assert "the current step is gate" in early.stderr
    assert rig.worker.run(once=True) == 5
    assert rig.worker.run(once=True) == 0  # baking
    promoted = rig.json("promote", rig.change_id, "--reason", "metrics are flat", person="dave")
    assert promoted["current"] == "wave 2/3 gate"
    bake = next(s for s in promoted["steps"] if (s["wave"], s["kind"]) == (1, "bake"))
    assert bake["result"] == {"promoted_by": "dave", "reason": "metrics are flat"}
    turn = rig.worker.turn()
    assert turn is not None
    assert (turn.kind.value, turn.wave, turn.outcome) == ("gate", 2, "done")
    assert rig.worker.run(once=True) == 4  # wave 2 up to its verification; baking again
    assert [c["Wave"] for c in wave_commits(rig.remote, rig.change_id)] == ["1/3", "2/3"]


def test_abort_reverts_the_committed_wave_and_closes_the_change_unsuccessful(rig: Rig) -> None:
    assert rig.worker.run(once=True) == 5
    [committed] = wave_commits(rig.remote, rig.change_id)
    aborted = rig("abort", rig.change_id, "--reason", "customer asked to stop", person="carol")
    assert "rollout aborted (rolling back)" in aborted.stdout
    assert "rollback" in aborted.stdout  # the rollback steps' table
    assert rig.worker.run(once=True) == 2  # revert, conclude
    commits = wave_commits(rig.remote, rig.change_id)
    assert [c.get("Reverts") for c in commits] == [None, committed["sha"]]
    body = rig.status()
    assert (body["status"], body["reason"]) == (
        "aborted",
        "aborted by carol: customer asked to stop",
    )
    change = rig.cli("--as", "frank", "change", "show", rig.change_id, "--json").json()
    assert (change["state"], change["close_code"]) == ("closed", "unsuccessful")
    actions = [e["action"] for e in change["history"]]
    assert "rollout.aborted" in actions and "rollout.revert" in actions
    late = rig("resume", rig.change_id, "--reason", "oops", expect=2)
    assert "the rollout is aborted" in late.stderr


def test_controlling_needs_the_permission_a_reason_and_another_person(
    cli: Cli, tmp_path: Path, sample_dir: Path, calm_sample_dir: Path
) -> None:
    rig = Rig(cli, tmp_path, sample_dir, calm_sample_dir, requester="erin")
    try:
        denied = rig("pause", rig.change_id, "--reason", "x", person="alice", expect=2)
        assert "alice (roles: requester) may not rollouts:control" in denied.stderr
        assert "who may: implementer, cab, platform-lead, admin" in denied.stderr
        as_json = rig.cli(
            "--as", "frank", "rollout", "pause", rig.change_id, "--reason", "x", "--json", expect=2
        ).json()
        assert as_json["error"]["type"] == "refused"
        blank = rig("pause", rig.change_id, "--reason", "  ", expect=1)
        assert "--reason: give a reason" in blank.stderr
        missing = rig("pause", rig.change_id, expect=1)
        assert "--reason" in missing.stderr
        assert rig.status()["status"] == "running"

        # erin filed the change and holds rollouts:control: she may stop it, not let it go on.
        assert rig.worker.run(once=True) == 5
        for action in ("resume", "promote"):
            refused = rig(action, rig.change_id, "--reason", "mine", person="erin", expect=2)
            assert "erin requested" in refused.stderr
            assert "separation of duties" in refused.stderr
        rig("pause", rig.change_id, "--reason", "hold on", person="erin")
        rig("resume", rig.change_id, "--reason", "fine", person="erin", expect=2)
        assert rig.json("resume", rig.change_id, "--reason", "fine")["status"] == "running"
    finally:
        rig.close()


def test_status_shows_the_note_of_a_waiting_step(rig: Rig) -> None:
    # On the first wave's start: wave 1, its bake, then wave 2's gate waits for its slot.
    rig.clock.now = rig.starts[0]
    assert rig.worker.run(once=True) == 5
    rig.clock.now += timedelta(minutes=10)
    assert rig.worker.run(once=True) == 2
    assert rig.status()["current"] == "wave 2/3 gate"
    human = rig("status", rig.change_id).stdout
    assert "current step: wave 2/3 gate, pending, due" in human
    assert "  note: wave 2 opens at" in human
