"""Retrospectives over HTTP: GET/POST /changes/{id}/retrospective and
GET /reports/retrospectives; their permissions, problems and JSON (on both backends).

Changes authorized through the API are authorized now (the server's clock): their
retrospective is open for 48 hours. Overdue ones are authorized through the services with a
clock long past.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api import auth
from changegate.api.routes.reports import RetrospectivesOut
from changegate.api.routes.retrospectives import RetrospectiveOut
from changegate.domain import catalog as catalog_model
from changegate.domain.permissions import Permission
from changegate.services import approvals as approval_service
from changegate.services import changes as change_service
from changegate.services import retrospectives as retrospective_service
from changegate.services.context import Context, actor_for
from tests.api.conftest import as_, assert_problem, create, fields
from tests.conftest import ctx_for
from tests.factories import change_spec

RETROSPECTIVE = "/api/v1/changes/{change_id}/retrospective"
REPORT = "/api/v1/reports/retrospectives"
LONG_AGO = datetime(2001, 3, 4, 5, 6, tzinfo=UTC)


def authorized(client: TestClient) -> str:
    """An emergency change filed by alice and authorized by erin, through the API."""
    change_id: str = create(client, type="emergency")["id"]
    submitted = client.post(f"/api/v1/changes/{change_id}/submit", headers=as_("alice"))
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["state"] == "authorize"
    approved = client.post(f"/api/v1/changes/{change_id}/approvals", json={}, headers=as_("erin"))
    assert approved.status_code == 201, approved.text
    assert approved.json()["authorized"] is True
    return change_id


def authorized_long_ago(app: bootstrap.App, catalog: catalog_model.Catalog) -> str:
    """An emergency change erin authorized in 2001: its retrospective is long overdue."""

    def at(person: str) -> Context:
        return Context(actor=actor_for(catalog, person), clock=lambda: LONG_AGO)

    change = change_service.create(app.engine, catalog, at("alice"), change_spec(type="emergency"))
    change_service.submit(app.engine, catalog, at("alice"), change.id)
    approval_service.approve(app.engine, catalog, at("erin"), change.id)
    return change.id


def review(client: TestClient, change_id: str, person: str, **body: Any) -> Any:
    return client.post(RETROSPECTIVE.format(change_id=change_id), json=body, headers=as_(person))


def listed(client: TestClient, status: str | None = None) -> dict[str, Any]:
    params = {"status": status} if status is not None else {}
    response = client.get(REPORT, params=params, headers=as_("frank"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    RetrospectivesOut.model_validate(body)
    return body


def statuses(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["change_id"], item["status"]) for item in body["items"]]


# ------------------------------------------------------------------ routes and OpenAPI


def test_the_routes_declare_their_permissions(api: FastAPI) -> None:
    found = {
        (path, method): auth.route_permissions(route)
        for path, route in auth.api_routes(api.routes)
        if path in (RETROSPECTIVE, REPORT)
        for method in route.methods or ()
    }
    assert found == {
        (RETROSPECTIVE, "GET"): [Permission.CHANGES_READ],
        (RETROSPECTIVE, "POST"): [Permission.CHANGES_READ],
        (REPORT, "GET"): [Permission.CHANGES_READ],
    }
    assert auth.undeclared_routes(api) == []
    assert auth.loose_body_routes(api) == []


def test_the_openapi_document_names_permissions_and_shapes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    post = document["paths"][RETROSPECTIVE]["post"]
    assert post["x-permission"] == "changes:read"
    assert {"200", "403", "404", "409", "422"} <= set(post["responses"])
    assert document["paths"][RETROSPECTIVE]["get"]["x-permission"] == "changes:read"
    report = document["paths"][REPORT]["get"]
    assert report["x-permission"] == "changes:read"
    assert [p["name"] for p in report["parameters"]] == ["status"]
    schemas = document["components"]["schemas"]
    assert {"RetrospectiveOut", "RetrospectivesOut", "ReviewIn"} <= set(schemas)
    assert schemas["Listing"]["enum"] == ["open", "overdue", "all"]


# ------------------------------------------------------------------ read, list, review


def test_authorized_emergency_change_is_listed_open_then_reviewed(client: TestClient) -> None:
    change_id = authorized(client)
    url = RETROSPECTIVE.format(change_id=change_id)
    shown = client.get(url, headers=as_("frank"))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    RetrospectiveOut.model_validate(body)
    assert (body["change_id"], body["role"], body["status"]) == (change_id, "cab", "open")
    assert (body["requester"], body["state"]) == ("alice", "authorize")
    due = datetime.fromisoformat(body["due_at"]) - datetime.fromisoformat(body["authorized_at"])
    assert due == timedelta(hours=48)
    assert body["done_at"] is None and body["done_by"] is None and body["comment"] == ""
    # GET by the change number alone names the same change.
    assert (
        client.get(RETROSPECTIVE.format(change_id=change_id[4:]), headers=as_("frank")).json()[
            "change_id"
        ]
        == change_id
    )

    report = listed(client)
    assert report["status"] == "open"
    assert datetime.fromisoformat(report["now"]) >= datetime.fromisoformat(body["authorized_at"])
    assert statuses(report) == [(change_id, "open")]
    assert report["items"][0] == body
    assert listed(client, "overdue")["items"] == []

    done = review(client, change_id, "dave", comment="expired certificate; alert added")
    assert done.status_code == 200, done.text
    record = done.json()
    RetrospectiveOut.model_validate(record)
    assert (record["status"], record["done_by"]) == ("done", "dave")
    assert record["comment"] == "expired certificate; alert added"
    assert client.get(url, headers=as_("frank")).json() == record
    assert listed(client)["items"] == []
    assert statuses(listed(client, "all")) == [(change_id, "done")]

    history = client.get(f"/api/v1/changes/{change_id}/history", headers=as_("frank")).json()
    actions = [event["action"] for event in history["items"]]
    assert actions.count("change.retrospective-due") == 1
    assert actions[-1] == "change.retrospective-done"


def test_overdue_ones_come_first_and_are_listed_as_overdue(
    client: TestClient, app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    fresh = authorized(client)
    old = authorized_long_ago(app, catalog)
    assert statuses(listed(client)) == [(old, "overdue"), (fresh, "open")]
    overdue = listed(client, "overdue")
    assert overdue["status"] == "overdue"
    assert statuses(overdue) == [(old, "overdue")]
    assert overdue["items"][0]["due_at"] == "2001-03-06T05:06:00.000000Z"
    late = review(client, old, "peggy", comment="reviewed years late")
    assert late.status_code == 200, late.text
    assert late.json()["status"] == "done-late"
    assert statuses(listed(client, "all")) == [(old, "done-late"), (fresh, "open")]
    # The API answers what the service says.
    ctx = ctx_for(catalog, "frank")
    service = retrospective_service.get(app.engine, ctx, old).as_dict()
    assert client.get(RETROSPECTIVE.format(change_id=old), headers=as_("frank")).json() == service


# ------------------------------------------------------------------ refusals and problems


def test_requester_implementer_and_non_cab_are_refused_with_who_can(client: TestClient) -> None:
    change_id = authorized(client)
    for person, why in (
        ("alice", "requester"),
        ("bob", "implementer"),
        ("erin", "cannot review"),
        ("carol", "cannot review"),
    ):
        problem = assert_problem(review(client, change_id, person, comment="ok"), 403, "refused")
        assert why in problem["detail"]
        assert problem["override_by"] == "dave, ivan, peggy"
    shown = client.get(RETROSPECTIVE.format(change_id=change_id), headers=as_("frank")).json()
    assert shown["status"] == "open"


def test_a_comment_is_required_and_the_body_is_strict(client: TestClient) -> None:
    change_id = authorized(client)
    blank = assert_problem(review(client, change_id, "dave", comment="  "), 422, "invalid-input")
    assert fields(blank) == {"body.comment"}
    missing = assert_problem(review(client, change_id, "dave"), 422, "invalid-input")
    assert fields(missing)
    extra = assert_problem(
        review(client, change_id, "dave", comment="ok", late=True), 422, "invalid-input"
    )
    assert fields(extra)
    repeated = client.post(
        RETROSPECTIVE.format(change_id=change_id),
        content=b'{"comment": "a", "comment": "b"}',
        headers={**as_("dave"), "Content-Type": "application/json"},
    )
    assert fields(assert_problem(repeated, 422, "invalid-input")) == {"body.comment"}
    assert listed(client)["items"][0]["status"] == "open"


def test_a_second_review_is_a_conflict(client: TestClient) -> None:
    change_id = authorized(client)
    assert review(client, change_id, "ivan", comment="fine").status_code == 200
    problem = assert_problem(review(client, change_id, "peggy", comment="me too"), 409, "conflict")
    assert "already done by ivan" in problem["detail"]


def test_not_found_bad_ids_bad_listing_and_no_user(client: TestClient) -> None:
    normal: str = create(client)["id"]
    problem = assert_problem(
        client.get(RETROSPECTIVE.format(change_id=normal), headers=as_("frank")), 404, "not-found"
    )
    assert problem["detail"] == f"{normal} is not an emergency change awaiting a retrospective"
    assert_problem(review(client, normal, "dave", comment="x"), 404, "not-found")
    assert_problem(
        client.get(RETROSPECTIVE.format(change_id="CHG-9999"), headers=as_("frank")),
        404,
        "not-found",
    )
    bad = client.get(RETROSPECTIVE.format(change_id="nope"), headers=as_("frank"))
    assert fields(assert_problem(bad, 422, "invalid-input")) == {"path.change_id"}
    wrong = client.get(REPORT, params={"status": "late"}, headers=as_("frank"))
    assert fields(assert_problem(wrong, 422, "invalid-input")) == {"query.status"}
    assert client.get(REPORT).status_code == 401
    assert client.post(
        RETROSPECTIVE.format(change_id=normal), json={"comment": "x"}
    ).status_code == (401)
