"""POST/GET /api/v1/changes/{id}/schedule and GET .../start-check, at a fixed instant."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from tests.api.conftest import (
    approve_until_authorized,
    as_,
    assert_problem,
    create,
    drive,
    fields,
)

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a Tuesday morning: no window open


def authorized(client: TestClient) -> dict[str, object]:
    client.app.state.changegate.clock = lambda: T0  # type: ignore[attr-defined]
    tenant = "litware-tools"
    change = drive(client, create(client, targets={"tenants": [tenant]}), "authorize")
    approve_until_authorized(client, str(change["id"]))
    return change


def test_schedule_then_read_it_and_check_the_start(client: TestClient) -> None:
    change = authorized(client)
    url = f"/api/v1/changes/{change['id']}"
    booked = client.post(
        f"{url}/schedule",
        json={"duration_minutes": 90, "reason": "next window"},
        headers=as_("bob"),
    )
    assert booked.status_code == 200, booked.text
    body = booked.json()
    assert (body["state"], body["rescheduled"]) == ("scheduled", False)
    (wave,) = body["waves"]
    assert wave["tenants"] == ["litware-tools"]
    start = datetime.fromisoformat(wave["start"])
    assert start > T0
    assert (datetime.fromisoformat(wave["end"]) - start).total_seconds() == 90 * 60
    shown = client.get(f"{url}/schedule", headers=as_("frank")).json()
    assert shown["waves"] == body["waves"]
    now = client.get(f"{url}/start-check", headers=as_("frank")).json()
    assert now["allowed"] is False
    assert now["override_roles"] == ["platform-lead"]
    inside = client.get(
        f"{url}/start-check", params={"at": wave["start"]}, headers=as_("frank")
    ).json()
    assert inside["allowed"] is True
    again = client.post(f"{url}/schedule", headers=as_("bob"))
    assert again.status_code == 200
    assert again.json()["rescheduled"] is True


def test_errors_are_problems(client: TestClient) -> None:
    draft = create(client)
    url = f"/api/v1/changes/{draft['id']}"
    assert_problem(client.post(f"{url}/schedule", headers=as_("bob")), 409, "invalid-transition")
    assert_problem(client.post(f"{url}/schedule", headers=as_("frank")), 403, "refused")
    bad = client.post(f"{url}/schedule", json={"horizon_days": 0}, headers=as_("bob"))
    assert fields(assert_problem(bad, 422, "invalid-input")) == {"body.horizon_days"}
    naive = client.get(
        f"{url}/start-check", params={"at": "2026-11-03T10:00:00"}, headers=as_("bob")
    )
    assert_problem(naive, 422, "invalid-input")
    wave = client.get(f"{url}/start-check", params={"wave": 0}, headers=as_("bob"))
    assert fields(assert_problem(wave, 422, "invalid-input")) == {"query.wave"}
