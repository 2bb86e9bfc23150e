"""Risk over HTTP: POST /changes/{id}/assessments, GET /changes/{id}/assessment, and
GET /reports/risk-calibration; their permissions, problems and JSON (on both backends)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api import auth
from changegate.api.routes.assessments import AssessmentOut
from changegate.api.routes.reports import CalibrationOut
from changegate.domain import catalog as catalog_model
from changegate.domain import risk
from changegate.domain.permissions import Permission
from changegate.services import assessments as assessment_service
from tests.api.conftest import as_, assert_problem, create, drive, fields, move
from tests.conftest import ctx_for

ASSESS = "/api/v1/changes/{change_id}/assessments"
LATEST = "/api/v1/changes/{change_id}/assessment"
CALIBRATION = "/api/v1/reports/risk-calibration"
PG = "pg-eu-west-prod-1"
# Every change in the sample platform's prod reaching this PostgreSQL, without a rollback plan
# or a test plan: critical under the default policy.
WIDE: dict[str, Any] = {
    "category": "database-upgrade",
    "targets": {"services": [PG]},
    "rollback_plan": {"steps": "", "irreversible": True},
    "test_plan": "",
}


def assess(client: TestClient, change_id: str, person: str = "alice") -> dict[str, Any]:
    response = client.post(ASSESS.format(change_id=change_id), headers=as_(person))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def staging_change(catalog: catalog_model.Catalog) -> dict[str, Any]:
    """A change to one staging tenant: low under the default policy."""
    twin = next(t.id for t in catalog.tenants.values() if t.spec.environment == "staging")
    return {"environment": "staging", "targets": {"tenants": [twin]}}


def close(client: TestClient, change_id: str, code: str) -> None:
    """Drive the change through its lifecycle (submit, assess if needed, approve) and close
    it with `code`."""
    change = client.get(f"/api/v1/changes/{change_id}", headers=as_("bob")).json()
    change = drive(client, change, "review")
    move(client, change, "closed", "bob", close_code=code)


# ------------------------------------------------------------------ routes and OpenAPI


def test_the_routes_declare_their_permissions(api: FastAPI) -> None:
    found = {
        (path, method): auth.route_permissions(route)
        for path, route in auth.api_routes(api.routes)
        if path in (ASSESS, LATEST, CALIBRATION)
        for method in route.methods or ()
    }
    assert found == {
        (ASSESS, "POST"): [Permission.CHANGES_TRANSITION],
        (LATEST, "GET"): [Permission.CHANGES_READ],
        (CALIBRATION, "GET"): [Permission.CHANGES_READ],
    }
    assert auth.undeclared_routes(api) == []


def test_the_openapi_document_names_permissions_and_shapes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    post = document["paths"][ASSESS]["post"]
    assert post["x-permission"] == "changes:transition"
    assert set(post["responses"]) == {"201", "401", "403", "404", "409", "422"}
    get = document["paths"][LATEST]["get"]
    assert get["x-permission"] == "changes:read"
    assert set(get["responses"]) == {"200", "401", "403", "404", "422"}
    report = document["paths"][CALIBRATION]["get"]
    assert report["x-permission"] == "changes:read"
    assert set(report["responses"]) == {"200", "401", "403", "422"}
    assert [p["name"] for p in report["parameters"]] == ["since", "until"]
    schemas = document["components"]["schemas"]
    assert {"AssessmentOut", "FactorOut", "CalibrationOut", "CalibrationRowOut"} <= set(schemas)


# ------------------------------------------------------------------ assess and read


def test_assessing_answers_201_with_factors_summing_to_the_score(
    client: TestClient, app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = create(client, **WIDE)
    response = client.post(ASSESS.format(change_id=change["id"]), headers=as_("alice"))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["location"] == f"/api/v1/changes/{change['id']}/assessment"
    body = response.json()
    AssessmentOut.model_validate(body)  # the documented shape is the real one
    assert body["change_id"] == change["id"]
    assert body["assessed_by"] == "alice"
    assert body["content_hash"] == change["content_hash"]
    assert body["catalog_digest"] == catalog.digest
    assert body["rule_version"] == risk.RiskPolicy.of(catalog).rule_version
    assert sum(f["points"] for f in body["factors"]) == body["score"]
    assert 0 <= body["score"] <= 100
    assert all(f["reason"] for f in body["factors"])
    assert [f["name"] for f in body["factors"]][:9] == [
        "blast-radius",
        "component-criticality",
        "category",
        "environment",
        "rollback",
        "evidence",
        "policy-findings",
        "calendar-conflicts",
        "history",
    ]
    assert body["risk_class"] == "critical"
    assert body["impact"]["scope"] == "platform-wide"

    # Location answers the same document, as the service reads it back.
    latest = client.get(response.headers["location"], headers=as_("frank"))
    assert latest.status_code == 200, latest.text
    assert latest.json() == body
    stored = assessment_service.latest(app.engine, ctx_for(catalog, "frank"), change["id"])
    assert stored.as_dict() == body
    # `12` names the same change as `CHG-12`.
    number = change["id"].removeprefix("CHG-")
    assert client.get(LATEST.format(change_id=number), headers=as_("carol")).json() == body

    history = client.get(f"/api/v1/changes/{change['id']}/history", headers=as_("frank"))
    event = history.json()["items"][-1]
    assert (event["action"], event["actor"]) == ("change.assessed", "alice")
    assert event["after"]["assessment_id"] == body["id"]
    assert event["after"]["score"] == body["score"]


def test_every_run_is_kept_and_the_latest_counts(client: TestClient) -> None:
    change = create(client)
    first = assess(client, change["id"])
    edited = client.patch(
        f"/api/v1/changes/{change['id']}",
        json={"test_evidence": ["junit.xml"]},
        headers=as_("alice"),
    )
    assert edited.status_code == 200, edited.text
    second = assess(client, change["id"], "bob")
    assert second["id"] > first["id"]
    assert second["assessed_by"] == "bob"
    assert second["score"] < first["score"]  # test evidence attached
    latest = client.get(LATEST.format(change_id=change["id"]), headers=as_("alice"))
    assert latest.json() == second


def test_never_assessed_unknown_and_malformed_are_problems(client: TestClient) -> None:
    change = create(client)
    never = assert_problem(
        client.get(LATEST.format(change_id=change["id"]), headers=as_("frank")), 404, "not-found"
    )
    assert never["detail"] == f"{change['id']} has not been assessed yet: assess it first"
    for response in (
        client.get(LATEST.format(change_id="CHG-999"), headers=as_("frank")),
        client.post(ASSESS.format(change_id="CHG-999"), headers=as_("alice")),
    ):
        assert assert_problem(response, 404, "not-found")["detail"] == "CHG-999 does not exist"
    for response in (
        client.get(LATEST.format(change_id="bogus"), headers=as_("frank")),
        client.post(ASSESS.format(change_id="bogus"), headers=as_("alice")),
    ):
        assert fields(assert_problem(response, 422, "invalid-input")) == {"path.change_id"}


def test_a_final_change_is_not_assessed_again(client: TestClient) -> None:
    change = create(client)
    canceled = client.post(f"/api/v1/changes/{change['id']}/cancel", headers=as_("alice"))
    assert canceled.status_code == 200, canceled.text
    refused = assert_problem(
        client.post(ASSESS.format(change_id=change["id"]), headers=as_("alice")), 403, "refused"
    )
    assert "a final change is not assessed again" in refused["detail"]


def test_the_auditor_reads_but_cannot_assess(client: TestClient) -> None:
    change = create(client)
    url = ASSESS.format(change_id=change["id"])
    refused = assert_problem(client.post(url, headers=as_("frank")), 403, "refused")
    assert refused["detail"] == "frank (roles: auditor) may not changes:transition"
    assert "requester" in refused["override_by"]
    assert_problem(client.post(url), 401, "unauthenticated")
    assert_problem(client.post(url, headers=as_("mallory")), 403, "refused")
    # Nothing was written by the refusals.
    assert_problem(
        client.get(LATEST.format(change_id=change["id"]), headers=as_("frank")), 404, "not-found"
    )
    body = assess(client, change["id"])
    for person in ("frank", "carol", "alice"):
        read = client.get(LATEST.format(change_id=change["id"]), headers=as_(person))
        assert read.status_code == 200, person
        assert read.json() == body
        assert client.get(CALIBRATION, headers=as_(person)).status_code == 200, person
    assert_problem(client.get(LATEST.format(change_id=change["id"])), 401, "unauthenticated")
    assert_problem(client.get(CALIBRATION, headers=as_("mallory")), 403, "refused")


# ------------------------------------------------------------------ calibration


def test_calibration_counts_closed_changes_per_class(
    client: TestClient, app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    empty = client.get(CALIBRATION, headers=as_("frank"))
    assert empty.status_code == 200, empty.text
    assert empty.json()["since"] is None and empty.json()["until"] is None
    assert [(r["risk_class"], r["changes"]) for r in empty.json()["items"]] == [
        ("low", 0),
        ("medium", 0),
        ("high", 0),
        ("critical", 0),
        ("unassessed", 0),
    ]

    low = staging_change(catalog)
    outcomes = [
        (low, "successful"),
        (low, "successful"),
        (low, "successful-with-issues"),
        (WIDE, "unsuccessful"),
        (WIDE, "successful"),
    ]
    for overrides, code in outcomes:
        change = create(client, **overrides)
        expected = "low" if overrides is low else "critical"
        assert assess(client, change["id"])["risk_class"] == expected
        close(client, change["id"], code)
    # An emergency change skips Assess: closed without an assessment.
    close(client, create(client, type="emergency")["id"], "unsuccessful")
    assess(client, create(client)["id"])  # assessed, not closed: not reported

    response = client.get(CALIBRATION, headers=as_("frank"))
    assert response.status_code == 200, response.text
    body = response.json()
    CalibrationOut.model_validate(body)
    rows = {row["risk_class"]: row for row in body["items"]}
    assert list(rows) == ["low", "medium", "high", "critical", "unassessed"]
    assert rows["low"] == {
        "risk_class": "low",
        "changes": 3,
        "successful": 2,
        "with_issues": 1,
        "failed": 0,
        "failure_rate": 0.0,
        "with_issues_rate": 0.3333,
    }
    assert (rows["medium"]["changes"], rows["medium"]["failure_rate"]) == (0, None)
    assert (rows["critical"]["changes"], rows["critical"]["failed"]) == (2, 1)
    assert rows["critical"]["failure_rate"] == 0.5
    assert (rows["unassessed"]["changes"], rows["unassessed"]["failed"]) == (1, 1)
    # The service gives the same rows.
    service = assessment_service.risk_calibration(app.engine, ctx_for(catalog, "frank"))
    assert body["items"] == service

    # A period: every instant with an offset, echoed in UTC.
    period = client.get(
        CALIBRATION,
        params={"since": "2000-01-01T01:00:00+01:00", "until": "2999-01-01T00:00:00Z"},
        headers=as_("frank"),
    )
    assert period.status_code == 200, period.text
    assert period.json()["since"] == "2000-01-01T00:00:00.000000Z"
    assert period.json()["until"] == "2999-01-01T00:00:00.000000Z"
    assert period.json()["items"] == body["items"]
    later = client.get(CALIBRATION, params={"since": "2999-01-01T00:00:00Z"}, headers=as_("frank"))
    assert sum(row["changes"] for row in later.json()["items"]) == 0


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"since": "2026-01-01T00:00:00"}, "query.since", "needs a timezone offset"),
        ({"until": "2026-01-01"}, "query.until", "needs a timezone offset"),
        (
            {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            "query.until",
            "until must be after since",
        ),
        ({"since": "yesterday"}, "query.since", ""),
    ],
)
def test_a_bad_period_is_a_422_naming_the_parameter(
    client: TestClient, params: dict[str, str], field: str, message: str
) -> None:
    problem = assert_problem(
        client.get(CALIBRATION, params=params, headers=as_("frank")), 422, "invalid-input"
    )
    assert fields(problem) == {field}
    assert message in problem["detail"]
