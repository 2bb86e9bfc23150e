"""Approvals over HTTP: POST/GET /changes/{id}/approvals, POST /changes/{id}/reject and
GET /approvals/inbox; their permissions, problems and JSON (on both backends)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api import auth
from changegate.api.routes.approvals import ApprovalsOut, DecisionOut, InboxOut
from changegate.domain import catalog as catalog_model
from changegate.domain.permissions import Permission
from changegate.services import approvals as approval_service
from tests.api.conftest import as_, assert_problem, create, fields
from tests.conftest import ctx_for

APPROVALS = "/api/v1/changes/{change_id}/approvals"
REJECT = "/api/v1/changes/{change_id}/reject"
INBOX = "/api/v1/approvals/inbox"


def waiting(client: TestClient) -> str:
    """The sample change filed by alice, submitted, assessed, moved to authorize by carol."""
    change = create(client)
    change_id: str = change["id"]
    submitted = client.post(f"/api/v1/changes/{change_id}/submit", headers=as_("alice"))
    assert submitted.status_code == 200, submitted.text
    assessed = client.post(f"/api/v1/changes/{change_id}/assessments", headers=as_("alice"))
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["risk_class"] == "high"
    moved = client.post(
        f"/api/v1/changes/{change_id}/transitions", json={"to": "authorize"}, headers=as_("carol")
    )
    assert moved.status_code == 200, moved.text
    return change_id


def approve(client: TestClient, change_id: str, person: str, **body: Any) -> Any:
    return client.post(APPROVALS.format(change_id=change_id), json=body, headers=as_(person))


def inbox_ids(client: TestClient, person: str) -> list[str]:
    response = client.get(INBOX, params={"person": person}, headers=as_(person))
    assert response.status_code == 200, response.text
    return [item["change_id"] for item in response.json()["items"]]


# ------------------------------------------------------------------ routes and OpenAPI


def test_the_routes_declare_their_permissions(api: FastAPI) -> None:
    found = {
        (path, method): auth.route_permissions(route)
        for path, route in auth.api_routes(api.routes)
        if path in (APPROVALS, REJECT, INBOX)
        for method in route.methods or ()
    }
    assert found == {
        (APPROVALS, "POST"): [Permission.CHANGES_READ],
        (APPROVALS, "GET"): [Permission.CHANGES_READ],
        (REJECT, "POST"): [Permission.CHANGES_READ],
        (INBOX, "GET"): [Permission.CHANGES_READ],
    }
    assert auth.undeclared_routes(api) == []
    assert auth.loose_body_routes(api) == []


def test_the_openapi_document_names_permissions_and_shapes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    post = document["paths"][APPROVALS]["post"]
    assert post["x-permission"] == "changes:read"
    assert {"201", "403", "409", "422"} <= set(post["responses"])
    assert document["paths"][APPROVALS]["get"]["x-permission"] == "changes:read"
    assert document["paths"][REJECT]["post"]["x-permission"] == "changes:read"
    assert [p["name"] for p in document["paths"][INBOX]["get"]["parameters"]] == ["person"]
    assert {"DecisionOut", "ApprovalsOut", "InboxOut", "RejectIn"} <= set(
        document["components"]["schemas"]
    )


# ------------------------------------------------------------------ approve until authorized


def test_carol_then_dave_authorize_the_high_risk_change(
    client: TestClient, app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = waiting(client)
    before = client.get(APPROVALS.format(change_id=change_id), headers=as_("frank"))
    assert before.status_code == 200, before.text
    body = before.json()
    ApprovalsOut.model_validate(body)
    assert body["requirement"]["risk_class"] == "high"
    needs = {need["key"]: need for need in body["decision"]["needs"]}
    assert set(needs) == {"platform-lead", "cab"}
    assert needs["platform-lead"]["rules"] == ["high-risk"]
    assert needs["platform-lead"]["candidates"] == ["carol"]
    assert set(needs["cab"]["candidates"]) == {"dave", "ivan", "peggy"}
    assert body["decision"]["authorized"] is False
    assert change_id in inbox_ids(client, "dave")

    first = approve(client, change_id, "carol", comment="looks fine")
    assert first.status_code == 201, first.text
    DecisionOut.model_validate(first.json())
    assert first.json()["authorized"] is False
    assert first.json()["counted"] == {"carol": "platform-lead"}

    second = approve(client, change_id, "dave", role="cab")
    assert second.status_code == 201, second.text
    decision = second.json()
    assert decision["authorized"] is True
    assert decision["counted"] == {"carol": "platform-lead", "dave": "cab"}
    assert decision["valid_until"]
    assert change_id not in inbox_ids(client, "dave")

    # GET answers what the service says, and the change stays in authorize.
    after = client.get(APPROVALS.format(change_id=change_id), headers=as_("frank")).json()
    ctx = ctx_for(catalog, "frank")
    service = approval_service.decision(app.engine, catalog, ctx, change_id)
    assert after["decision"] == service.as_dict()
    assert after["decision"]["authorized"] is True
    shown = client.get(f"/api/v1/changes/{change_id}", headers=as_("frank")).json()
    assert shown["state"] == "authorize"
    history = client.get(f"/api/v1/changes/{change_id}/history", headers=as_("frank")).json()
    actions = [event["action"] for event in history["items"]]
    assert actions[-3:] == ["change.approved", "change.approved", "change.authorized"]


def test_requester_and_implementer_are_refused_with_who_can(client: TestClient) -> None:
    change_id = waiting(client)
    for person, duty in (("alice", "requester"), ("bob", "implementer")):
        problem = assert_problem(approve(client, change_id, person), 403, "refused")
        assert duty in problem["detail"]
        assert "carol" in problem["override_by"]
    ineligible = assert_problem(approve(client, change_id, "frank"), 403, "refused")
    assert "Who can approve" in ineligible["detail"]


def test_a_duplicate_approval_is_a_conflict(client: TestClient) -> None:
    change_id = waiting(client)
    assert approve(client, change_id, "carol").status_code == 201
    problem = assert_problem(approve(client, change_id, "carol"), 409, "conflict")
    assert "already approved" in problem["detail"]


def test_errors_are_problems(client: TestClient) -> None:
    change_id = waiting(client)
    assert_problem(approve(client, "CHG-9999", "carol"), 404, "not-found")
    bad = assert_problem(approve(client, change_id, "carol", bogus=1), 422, "invalid-input")
    assert fields(bad)
    unnamed = client.post(APPROVALS.format(change_id=change_id), json={})
    assert unnamed.status_code == 401


# ------------------------------------------------------------------ reject


def test_reject_needs_a_comment_then_moves_to_draft(client: TestClient) -> None:
    change_id = waiting(client)
    url = REJECT.format(change_id=change_id)
    missing = assert_problem(client.post(url, json={}, headers=as_("dave")), 422, "invalid-input")
    assert fields(missing)
    blank = client.post(url, json={"comment": "  "}, headers=as_("dave"))
    assert_problem(blank, 422, "invalid-input")
    requester = client.post(url, json={"comment": "no"}, headers=as_("alice"))
    assert_problem(requester, 403, "refused")
    rejected = client.post(url, json={"comment": "rollback untested"}, headers=as_("dave"))
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "draft"
    assert rejected.headers["etag"] == f'"{rejected.json()["version"]}"'
    assert change_id not in inbox_ids(client, "dave")


# ------------------------------------------------------------------ inbox


def test_inbox_defaults_to_the_actor_and_others_need_audit_read(client: TestClient) -> None:
    change_id = waiting(client)
    own = client.get(INBOX, headers=as_("dave"))
    assert own.status_code == 200, own.text
    body = own.json()
    InboxOut.model_validate(body)
    assert body["person"] == "dave"
    item = next(i for i in body["items"] if i["change_id"] == change_id)
    assert item["requester"] == "alice"
    assert item["risk_class"] == "high"
    assert [need["key"] for need in item["needs"]] == ["cab"]
    # Someone else's inbox: audit:read (carol is a platform lead, frank an auditor).
    for reader in ("carol", "frank"):
        other = client.get(INBOX, params={"person": "dave"}, headers=as_(reader))
        assert other.status_code == 200, other.text
        assert other.json() == body
    assert_problem(
        client.get(INBOX, params={"person": "carol"}, headers=as_("dave")), 403, "refused"
    )
    unknown = client.get(INBOX, params={"person": "nobody"}, headers=as_("frank"))
    assert_problem(unknown, 404, "not-found")
