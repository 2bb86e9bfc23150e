"""/api/v1 rollouts on both databases against real Git: start, read, list, and a person's
pause, resume, promote and abort, with a worker running the steps in-process on a set clock.
The CLI door is tests/e2e/test_cli_rollouts.py."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api import auth
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeState
from changegate.services import audit as audit_service
from changegate.services import calendar as calendar_service
from changegate.services import changes as change_service
from changegate.worker import Worker
from tests.api.conftest import as_, assert_problem, fields
from tests.factories import change_spec
from tests.integration.test_rollout import (
    TENANTS,
    TUESDAY,
    Clock,
    at,
    delivery,
    make_remote,
    wave_commits,
)
from tests.lifecycle import approve_until_authorized, drive

S = ChangeState


@pytest.fixture(autouse=True)
def _no_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def implementing_as(
    app: bootstrap.App, catalog: catalog_model.Catalog, requester: str = "alice"
) -> tuple[str, list[datetime]]:
    """A three-wave change filed by `requester` and moved to Implementing at its first
    wave's start; the waves' starts. (tests/integration/test_rollout.py's `implementing`,
    with the requester chosen: the separation of duties needs one who holds
    rollouts:control.)"""
    spec = change_spec(targets={"tenants": list(TENANTS)}, category="application-release")
    change = change_service.create(app.engine, catalog, at(catalog, requester, TUESDAY), spec)
    as_person = lambda person: at(catalog, person, TUESDAY)  # noqa: E731
    drive(app.engine, catalog, change.id, S.AUTHORIZE, as_=as_person)
    approve_until_authorized(app.engine, catalog, change.id, as_person)
    booked = calendar_service.schedule(app.engine, catalog, as_person("bob"), change.id)
    starts = [wave.start for wave in booked.plan.waves]
    change_service.transition(
        app.engine, catalog, at(catalog, "bob", starts[0]), change.id, S.IMPLEMENTING
    )
    return change.id, starts


class Rig:
    """One change in Implementing, the API and a worker on the same clock, and the remote."""

    def __init__(
        self, app: bootstrap.App, client: TestClient, tmp_path: Path, requester: str = "alice"
    ) -> None:
        self.app = app
        self.client = client
        self.catalog = app.catalog()
        self.remote, clone = make_remote(tmp_path)
        self.change_id, self.starts = implementing_as(app, self.catalog, requester)
        self.clock = Clock(self.starts[0])
        app.clock = self.clock
        self.worker = Worker(
            app.engine, lambda: self.catalog, delivery(clone), name="w", clock=self.clock
        )

    @property
    def url(self) -> str:
        return f"/api/v1/changes/{self.change_id}/rollout"

    def start(self, person: str = "bob", **body: Any) -> Any:
        return self.client.post(self.url, json=body or None, headers=as_(person))

    def control(self, action: str, person: str = "bob", reason: str = "checked") -> Any:
        return self.client.post(
            f"{self.url}/{action}", json={"reason": reason}, headers=as_(person)
        )

    def status(self) -> dict[str, Any]:
        response = self.client.get(self.url, headers=as_("frank"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def step(self, wave: int, kind: str) -> dict[str, Any]:
        found: dict[str, Any] = next(
            s for s in self.status()["steps"] if s["wave"] == wave and s["kind"] == kind
        )
        return found

    def actions(self) -> list[tuple[str, str, dict[str, Any] | None]]:
        ctx = at(self.catalog, "frank", self.clock.now)
        events = audit_service.events(self.app.engine, ctx, object_id=self.change_id, limit=1000)
        return [(event.action, event.actor, event.after) for event in events]


@pytest.fixture
def rig(app: bootstrap.App, client: TestClient, tmp_path: Path) -> Rig:
    return Rig(app, client, tmp_path)


def test_start_read_and_list_answer_the_documented_shapes(rig: Rig) -> None:
    client = rig.client
    missing = client.get(rig.url, headers=as_("frank"))
    assert "has no rollout" in assert_problem(missing, 404, "not-found")["detail"]
    bad = rig.start(bake="ten minutes")
    assert fields(assert_problem(bad, 422, "invalid-input")) == {"body.bake"}
    for wrong in ("-1m", "1.5s", "200h"):
        assert fields(assert_problem(rig.start(bake=wrong), 422, "invalid-input")) == {"body.bake"}
    extra = client.post(rig.url, json={"bake": "1m", "waves": 2}, headers=as_("bob"))
    assert_problem(extra, 422, "invalid-input")
    refused = rig.start(person="frank")  # an auditor moves nothing
    assert "changes:transition" in assert_problem(refused, 403, "refused")["detail"]

    created = rig.start(bake="10m")
    assert created.status_code == 201, created.text
    body = created.json()
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
    assert (body["change_id"], body["status"], body["waves"]) == (rig.change_id, "running", 3)
    assert (body["bake_seconds"], body["position"], body["current"]) == (600, 0, "wave 1/3 gate")
    assert len(body["steps"]) == 18
    assert set(body["steps"][0]) == {
        "seq",
        "wave",
        "kind",
        "status",
        "due_at",
        "claimed_by",
        "lease_until",
        "attempts",
        "last_error",
        "finished_at",
        "result",
        "progress",
    }
    assert [s["kind"] for s in body["steps"][:6]] == [
        "gate",
        "backup",
        "commit",
        "sync",
        "verify",
        "bake",
    ]
    # Idempotent: 200 with the rollout already there; its bake is not changed.
    again = rig.start(bake="1h")
    assert again.status_code == 200, again.text
    assert again.json() == body
    assert rig.status() == body

    listed = client.get("/api/v1/rollouts", headers=as_("frank"))
    assert listed.status_code == 200, listed.text
    [line] = listed.json()["items"]
    assert line == {
        "change_id": rig.change_id,
        "status": "running",
        "reason": None,
        "waves": 3,
        "position": 0,
        "bake_seconds": 600,
        "created_at": line["created_at"],
        "created_by": "bob",
        "completed_at": None,
    }
    assert datetime.fromisoformat(line["created_at"]) == rig.starts[0]
    running = client.get(
        "/api/v1/rollouts", params=[("status", "running"), ("status", "paused")], headers=as_("bob")
    )
    assert running.json()["items"] == [line]
    paused = client.get("/api/v1/rollouts?status=paused", headers=as_("bob"))
    assert paused.json() == {"items": []}
    unknown = client.get("/api/v1/rollouts?status=sleeping", headers=as_("bob"))
    assert fields(assert_problem(unknown, 422, "invalid-input")) == {"query.status[0]"}
    assert rig.actions()[-1][:2] == ("rollout.started", "bob")


def test_a_change_not_implementing_has_no_rollout_to_start(
    client: TestClient, app: bootstrap.App
) -> None:
    catalog = app.catalog()
    change = change_service.create(
        app.engine, catalog, at(catalog, "alice", TUESDAY), change_spec()
    )
    refused = client.post(f"/api/v1/changes/{change.id}/rollout", headers=as_("bob"))
    assert (
        "a rollout starts when it is implementing"
        in (assert_problem(refused, 403, "refused")["detail"])
    )
    malformed = client.post("/api/v1/changes/nope/rollout", headers=as_("bob"))
    assert fields(assert_problem(malformed, 422, "invalid-input")) == {"path.change_id"}


def test_pause_stops_the_worker_and_resume_goes_on(rig: Rig) -> None:
    assert rig.start().status_code == 201
    assert rig.worker.run(max_steps=2) == 2  # wave 1's gate and backup
    paused = rig.control("pause", reason="the dashboards look odd")
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert (body["status"], body["reason"]) == ("paused", "the dashboards look odd")
    assert body["current"] == "wave 1/3 commit"
    assert rig.worker.run(once=True) == 0  # nothing is claimed while it is paused
    assert wave_commits(rig.remote, rig.change_id) == []
    again = rig.control("pause")
    assert "not running" in assert_problem(again, 403, "refused")["detail"]

    resumed = rig.control("resume", person="carol", reason="false alarm")
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["reason"]) == ("running", None)
    # Commit, sync, verify and a bake of 0s (the sample has no GitOpsRepository to set one);
    # then wave 2's gate waits for its slot.
    assert rig.worker.run(once=True) == 5
    assert [c["Wave"] for c in wave_commits(rig.remote, rig.change_id)] == ["1/3"]

    controls = [(a, who, after) for a, who, after in rig.actions() if a.startswith("rollout.")]
    by_person = [(a, who) for a, who, _ in controls if who != "system"]
    assert by_person == [
        ("rollout.started", "bob"),
        ("rollout.paused", "bob"),
        ("rollout.resumed", "carol"),
    ]
    pause_event = next(after for a, _, after in controls if a == "rollout.paused")
    assert pause_event is not None
    assert pause_event["reason"] == "the dashboards look odd"
    assert (pause_event["step"], pause_event["wave"]) == ("commit", 1)


def test_promote_skips_a_bake_and_the_next_wave_goes(rig: Rig) -> None:
    assert rig.start(bake="10m").status_code == 201
    early = rig.control("promote")
    assert "the current step is gate" in assert_problem(early, 403, "refused")["detail"]
    assert rig.worker.run(once=True) == 5  # wave 1 up to its verification
    assert rig.status()["current"] == "wave 1/3 bake"
    assert rig.worker.run(once=True) == 0  # baking: due in ten minutes

    promoted = rig.control("promote", person="dave", reason="metrics are flat")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["current"] == "wave 2/3 gate"
    bake = rig.step(1, "bake")
    assert bake["status"] == "done"
    assert bake["result"] == {"promoted_by": "dave", "reason": "metrics are flat"}
    # Wave 2's gate runs at once (and waits for its slot, which the bake never would).
    turn = rig.worker.turn()
    assert turn is not None
    assert (turn.kind.value, turn.wave, turn.outcome) == ("gate", 2, "waiting")
    assert rig.step(2, "gate")["last_error"].startswith("wave 2 opens at")
    rig.clock.now = rig.starts[1]
    turn = rig.worker.turn()
    assert turn is not None and (turn.kind.value, turn.outcome) == ("gate", "done")
    assert ("rollout.promoted", "dave") in [(a, who) for a, who, _ in rig.actions()]


def test_abort_reverts_the_committed_wave_and_closes_the_change_unsuccessful(rig: Rig) -> None:
    assert rig.start(bake="10m").status_code == 201
    assert rig.worker.run(once=True) == 5  # wave 1 is committed, synced and verified
    [committed] = wave_commits(rig.remote, rig.change_id)
    aborted = rig.control("abort", person="carol", reason="customer asked to stop")
    assert aborted.status_code == 200, aborted.text
    body = aborted.json()
    assert body["status"] == "rolling-back"
    assert body["reason"] == "aborted by carol: customer asked to stop"
    assert [s["kind"] for s in body["steps"] if s["status"] == "pending"] == [
        "revert",
        "conclude",
    ]
    assert "finishes by itself" in assert_problem(rig.control("pause"), 403, "refused")["detail"]

    assert rig.worker.run(once=True) == 2  # revert, conclude
    commits = wave_commits(rig.remote, rig.change_id)
    assert [c.get("Reverts") for c in commits] == [None, committed["sha"]]
    done = rig.status()
    assert done["status"] == "aborted"
    change = rig.client.get(f"/api/v1/changes/{rig.change_id}", headers=as_("frank")).json()
    assert (change["state"], change["close_code"]) == ("closed", "unsuccessful")
    actions = [a for a, _, _ in rig.actions()]
    assert "rollout.aborted" in actions and "rollout.revert" in actions
    late = rig.control("resume")
    assert "the rollout is aborted" in assert_problem(late, 403, "refused")["detail"]


def test_the_requester_may_stop_the_rollout_but_not_let_it_go_on(
    app: bootstrap.App, client: TestClient, tmp_path: Path
) -> None:
    rig = Rig(app, client, tmp_path, requester="erin")  # an implementer: rollouts:control
    assert rig.start(bake="10m").status_code == 201
    assert rig.worker.run(once=True) == 5
    for action in ("resume", "promote"):
        refused = rig.control(action, person="erin")
        problem = assert_problem(refused, 403, "refused")
        assert "erin requested" in problem["detail"]
        assert "separation of duties" in problem["detail"]
    assert rig.control("pause", person="erin").status_code == 200
    refused = rig.control("resume", person="erin")
    assert "separation of duties" in assert_problem(refused, 403, "refused")["detail"]
    assert rig.control("resume", person="bob").status_code == 200


def test_controlling_needs_the_permission_and_a_reason(rig: Rig) -> None:
    assert rig.start().status_code == 201
    for person in ("alice", "frank"):  # a requester, an auditor
        problem = assert_problem(rig.control("pause", person=person), 403, "refused")
        assert "may not rollouts:control" in problem["detail"]
        assert problem["override_by"] == "implementer, cab, platform-lead, admin"
    blank = rig.control("pause", reason="   ")
    assert fields(assert_problem(blank, 422, "invalid-input")) == {"body.reason"}
    no_body = rig.client.post(f"{rig.url}/pause", headers=as_("bob"))
    assert "body" in str(fields(assert_problem(no_body, 422, "invalid-input")))
    missing = rig.client.post(f"{rig.url}/pause", json={}, headers=as_("bob"))
    assert fields(assert_problem(missing, 422, "invalid-input")) == {"body.reason"}
    extra = rig.client.post(
        f"{rig.url}/pause", json={"reason": "x", "force": True}, headers=as_("bob")
    )
    assert_problem(extra, 422, "invalid-input")
    unknown = rig.client.post(f"{rig.url}/skip", json={"reason": "x"}, headers=as_("bob"))
    assert fields(assert_problem(unknown, 422, "invalid-input")) == {"path.action"}
    assert rig.status()["status"] == "running"  # nothing was written
    assert [a for a, _, _ in rig.actions() if a.startswith("rollout.")] == ["rollout.started"]


def test_rollout_routes_declare_their_permissions(api: FastAPI, client: TestClient) -> None:
    table = {
        (method, route.path): [p.value for p in auth.route_permissions(route)]
        for path, route in auth.api_routes(api.routes)
        for method in route.methods
        if "rollout" in path
    }
    assert table == {
        ("GET", "/api/v1/changes/{change_id}/rollout"): ["changes:read"],
        ("POST", "/api/v1/changes/{change_id}/rollout"): ["changes:transition"],
        ("POST", "/api/v1/changes/{change_id}/rollout/{action}"): ["rollouts:control"],
        ("GET", "/api/v1/rollouts"): ["changes:read"],
    }
    paths = client.get("/openapi.json").json()["paths"]
    control = paths["/api/v1/changes/{change_id}/rollout/{action}"]["post"]
    assert control["x-permission"] == "rollouts:control"
    assert paths["/api/v1/rollouts"]["get"]["x-permission"] == "changes:read"


def test_a_bake_over_the_api_is_a_whole_number_of_seconds() -> None:
    from changegate.api.routes.rollouts import parse_bake

    assert parse_bake("10m", field="bake") == timedelta(minutes=10)
    assert parse_bake("1h30m", field="bake") == timedelta(minutes=90)
    assert parse_bake("0", field="bake") == timedelta(0)
    assert parse_bake("168h", field="bake") == timedelta(days=7)
