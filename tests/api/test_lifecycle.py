"""A change's whole life through the API, and the audit trail it leaves behind."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from tests.api.conftest import (
    approve_until_authorized,
    as_,
    assert_problem,
    create,
    move,
    start_at_first_wave,
)
from tests.factories import change_data

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a Tuesday morning: no window open


def test_full_lifecycle_draft_to_closed(client: TestClient) -> None:
    client.app.state.changegate.clock = lambda: T0  # type: ignore[attr-defined]
    change = create(client, "alice")
    assert change["id"].startswith("CHG-")
    assert change["state"] == "draft"
    assert change["requester"] == "alice"
    assert change["version"] == 1
    assert change["allowed_next"] == ["assess", "canceled", "on-hold"]

    submitted = client.post(f"/api/v1/changes/{change['id']}/submit", headers=as_("alice"))
    assert submitted.status_code == 200, submitted.text
    change = submitted.json()
    assert change["state"] == "assess"

    refused = client.post(
        f"/api/v1/changes/{change['id']}/transitions",
        json={"to": "authorize"},
        headers=as_("carol"),
    )
    assert_problem(refused, 403, "refused")
    assert "assess it first" in refused.json()["detail"]
    assessed = client.post(f"/api/v1/changes/{change['id']}/assessments", headers=as_("alice"))
    assert assessed.status_code == 201, assessed.text
    change = move(client, change, "authorize", "carol", reason="risk reviewed")
    early = client.post(
        f"/api/v1/changes/{change['id']}/transitions",
        json={"to": "scheduled"},
        headers=as_("carol"),
    )
    problem = assert_problem(early, 403, "refused")
    assert problem["detail"].startswith(f"{change['id']} is not authorized: waiting for")
    assert problem["override_by"] == "carol, dave, ivan, peggy"
    approve_until_authorized(client, change["id"])
    change = move(client, change, "scheduled", "carol")
    schedule = client.get(f"/api/v1/changes/{change['id']}/schedule", headers=as_("bob")).json()
    assert schedule["waves"]
    assert datetime.fromisoformat(schedule["waves"][0]["start"]) > T0
    # Now (Tuesday) is outside the tenants' maintenance windows: nothing starts.
    refused = client.post(
        f"/api/v1/changes/{change['id']}/transitions",
        json={"to": "implementing"},
        headers=as_("bob"),
    )
    problem = assert_problem(refused, 403, "refused")
    assert "may not start now" in problem["detail"]
    assert problem["override_by"] == "platform-lead"
    change = start_at_first_wave(client, change, "bob")
    assert change["state"] == "implementing"
    change = move(client, change, "review", "bob")
    assert change["allowed_next"] == ["closed"]
    change = move(
        client,
        change,
        "closed",
        "bob",
        close_code="successful",
        close_notes="All tenants upgraded.",
    )

    assert change["state"] == "closed"
    assert change["close_code"] == "successful"
    assert change["close_notes"] == "All tenants upgraded."
    assert change["allowed_next"] == []
    assert change["version"] == 7

    shown = client.get(f"/api/v1/changes/{change['id']}", headers=as_("frank"))
    assert shown.status_code == 200
    assert shown.headers["etag"] == '"7"'
    assert shown.json() == change

    history = client.get(f"/api/v1/changes/{change['id']}/history", headers=as_("frank"))
    assert history.status_code == 200
    events = history.json()["items"]
    moves = [e for e in events if e["action"] == "change.transitioned"]
    assert [e["action"] for e in events if e["action"] not in {"change.transitioned"}] == [
        "change.created",
        "change.assessed",
        "change.approved",
        "change.approved",
        "change.authorized",
        "change.scheduled",
    ]
    assert moves[3]["after"]["calendar"]["allowed"] is True
    assert moves[2]["after"]["authorization"]["via"] == "approvals"
    assert [e["after"].get("state") for e in moves] == [
        "assess",
        "authorize",
        "scheduled",
        "implementing",
        "review",
        "closed",
    ]
    assert [e["actor"] for e in moves] == ["alice", "carol", "carol", "bob", "bob", "bob"]
    assert moves[1]["after"]["reason"] == "risk reviewed"
    assert all(e["object_id"] == change["id"] for e in events)

    verified = client.get("/api/v1/audit/verify", headers=as_("frank"))
    assert verified.status_code == 200
    report = verified.json()
    assert report["ok"] is True
    assert report["problem"] is None
    assert report["count"] >= len(events)


def test_request_id_is_echoed_and_recorded_in_the_audit_trail(client: TestClient) -> None:
    response = client.post(
        "/api/v1/changes",
        json=change_data(),
        headers={**as_("alice"), "X-Request-Id": "deploy-42.a_b"},
    )
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "deploy-42.a_b"
    history = client.get(
        f"/api/v1/changes/{response.json()['id']}/history", headers=as_("alice")
    ).json()["items"]
    assert history[0]["request_id"] == "deploy-42.a_b"


def test_unsafe_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "x" * 65})
    assert len(response.headers["x-request-id"]) == 32
    response = client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert client.get("/healthz").headers["x-request-id"]


def test_audit_export_jsonl_and_csv(client: TestClient) -> None:
    change = create(client, "alice")
    client.post(f"/api/v1/changes/{change['id']}/submit", headers=as_("alice"))

    exported = client.get("/api/v1/audit/export", params={"format": "jsonl"}, headers=as_("frank"))
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in exported.headers["content-disposition"]
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    actions = [r["action"] for r in rows if r["object_id"] == change["id"]]
    assert actions == ["change.created", "change.transitioned"]
    assert all(len(r["hash"]) == 64 for r in rows)

    as_csv = client.get("/api/v1/audit/export?format=csv", headers=as_("frank"))
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["seq"] for r in table][: len(rows)] == [str(r["seq"]) for r in rows]
    assert {"seq", "action", "before", "after", "hash", "prev_hash"} <= set(table[0])
    # The first export is in the trail now, before the second one was taken.
    assert any(r["action"] == "audit.exported" for r in table)


def test_audit_export_period_and_bad_parameters(client: TestClient) -> None:
    create(client, "alice")
    empty = client.get(
        "/api/v1/audit/export",
        params={"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"},
        headers=as_("frank"),
    )
    assert empty.status_code == 200
    assert empty.text == ""
    before = client.get("/api/v1/audit/verify", headers=as_("frank")).json()["count"]
    # The audit service's period rules, named as the query parameters.
    refused = {
        "naive since": ({"since": "2026-01-01T00:00:00"}, "query.since", "needs a timezone"),
        "naive until": ({"until": "2026-01-01"}, "query.until", "needs a timezone"),
        "until = since": (
            {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T01:00:00+01:00"},
            "query.until",
            "until must be after since",
        ),
        "until < since": (
            {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            "query.until",
            "until must be after since",
        ),
    }
    for label, (params, field, message) in refused.items():
        response = client.get("/api/v1/audit/export", params=params, headers=as_("frank"))
        problem = assert_problem(response, 422, "invalid-input")
        assert [e["field"] for e in problem["errors"]] == [field], label
        assert message in problem["detail"], label
    # Refused exports are not recorded.
    assert client.get("/api/v1/audit/verify", headers=as_("frank")).json()["count"] == before
    bad_format = client.get("/api/v1/audit/export", params={"format": "xml"}, headers=as_("frank"))
    assert bad_format.status_code == 422
    assert {e["field"] for e in bad_format.json()["errors"]} == {"query.format"}


def test_audit_events_page(client: TestClient) -> None:
    for _ in range(3):
        create(client, "alice")
    first = client.get("/api/v1/audit", params={"limit": 2}, headers=as_("frank"))
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 2
    assert page["next_after_seq"] == page["items"][-1]["seq"]
    second = client.get(page["next"], headers=as_("frank")).json()
    assert second["items"][0]["seq"] == page["items"][-1]["seq"] + 1
