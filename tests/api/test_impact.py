"""GET /api/v1/changes/{id}/impact: the route, its permission, and its JSON."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api import auth
from changegate.api.routes.impact import ImpactOut
from changegate.domain import catalog as catalog_model
from changegate.domain.permissions import Permission
from changegate.services import impact as impact_service
from tests.api.conftest import as_, assert_problem, create
from tests.conftest import ctx_for

PG = "pg-eu-west-prod-1"
PATH = "/api/v1/changes/{change_id}/impact"


def test_the_route_declares_changes_read(api: FastAPI) -> None:
    found = [
        (route.methods, auth.route_permissions(route))
        for path, route in auth.api_routes(api.routes)
        if path == PATH
    ]
    assert found == [({"GET"}, [Permission.CHANGES_READ])]
    assert auth.undeclared_routes(api) == []


def test_the_openapi_document_names_the_permission_and_the_shape(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"][PATH]["get"]
    assert operation["x-permission"] == "changes:read"
    assert set(operation["responses"]) == {"200", "401", "403", "404", "422"}
    assert "ImpactOut" in document["components"]["schemas"]


def test_impact_json_equals_the_service_output(
    client: TestClient, app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = create(client, category="database-upgrade", targets={"services": [PG]})
    response = client.get(f"/api/v1/changes/{change['id']}/impact", headers=as_("frank"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    service = impact_service.impact(app.engine, catalog, ctx_for(catalog, "frank"), change["id"])
    assert body == service.as_dict()
    assert body["change_id"] == change["id"]
    assert body["change_catalog_digest"] == change["catalog_digest"] == body["catalog_digest"]
    on_it = sorted(t.id for t in catalog.tenants.values() if t.spec.database.service == PG)
    assert list(body["tenants"]) == on_it
    assert body["counts"]["tenants"] == len(on_it)
    assert body["scope"] == "platform-wide"
    ImpactOut.model_validate(body)  # the documented shape is the real one
    # `12` names the same change as `CHG-12`.
    number = change["id"].removeprefix("CHG-")
    assert client.get(f"/api/v1/changes/{number}/impact", headers=as_("alice")).json() == body


def test_reading_impact_writes_nothing(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    history = client.get(f"{url}/history", headers=as_("frank")).json()["items"]
    assert client.get(f"{url}/impact", headers=as_("frank")).status_code == 200
    assert client.get(f"{url}/history", headers=as_("frank")).json()["items"] == history
    assert client.get(url, headers=as_("frank")).json() == change


def test_unknown_and_malformed_ids_are_problems(client: TestClient) -> None:
    missing = assert_problem(
        client.get("/api/v1/changes/CHG-999/impact", headers=as_("alice")), 404, "not-found"
    )
    assert missing["detail"] == "CHG-999 does not exist"
    malformed = assert_problem(
        client.get("/api/v1/changes/bogus/impact", headers=as_("alice")), 422, "invalid-input"
    )
    assert [e["field"] for e in malformed["errors"]] == ["path.change_id"]


def test_who_may_read_impact(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}/impact"
    assert_problem(client.get(url), 401, "unauthenticated")
    assert_problem(client.get(url, headers=as_("mallory")), 403, "refused")
    for person in ("frank", "carol", "alice"):
        assert client.get(url, headers=as_(person)).status_code == 200, person
