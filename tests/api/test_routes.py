"""The shape of the API itself: declared permissions, the OpenAPI document, health probes."""

from __future__ import annotations

from typing import Annotated

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from changegate import __version__, bootstrap
from changegate.api import auth, jsonbody
from changegate.api.app import create_app
from changegate.domain.permissions import Permission
from changegate.services.context import Context
from tests.api.conftest import assert_problem


def _api_routes(api: FastAPI) -> list[APIRoute]:
    return [route for path, route in auth.api_routes(api.routes) if path.startswith("/api/v1")]


def test_every_api_route_declares_a_permission(api: FastAPI) -> None:
    routes = list(auth.api_routes(api.routes))
    guarded = [(path, route) for path, route in routes if path.startswith("/api/v1")]
    assert len(guarded) >= 20
    for path, route in guarded:
        if path.startswith(auth.WEBHOOK_PREFIX):
            # Authenticated by the provider's signature, never by a person's permission.
            assert auth.route_permissions(route) == [], path
            provider = auth.route_webhook(route)
            assert provider is not None, path
            assert route.openapi_extra is not None
            assert route.openapi_extra["x-authentication"] == f"webhook-signature:{provider}"
            continue
        declared = auth.route_permissions(route)
        assert len(declared) == 1, f"{route.methods} {path} declares {declared}"
        assert route.openapi_extra is not None
        assert route.openapi_extra["x-permission"] == declared[0].value
    public = {path for path, _ in routes if not path.startswith("/api/v1")}
    assert public == {"/healthz", "/readyz"}
    assert auth.undeclared_routes(api) == []


def test_a_route_without_a_permission_is_caught() -> None:
    rogue = FastAPI()

    @rogue.get("/api/v1/rogue")
    def rogue_route() -> dict[str, str]:
        return {}

    @rogue.get("/api/v1/guarded")
    def guarded_route(
        ctx: Annotated[Context, Depends(auth.requires(Permission.CHANGES_READ))],
    ) -> dict[str, str]:
        return {}

    @rogue.get("/healthz")
    def public_route() -> dict[str, str]:
        return {}

    included = APIRouter(prefix="/api/v1/included")

    @included.post("/rogue")
    def included_rogue() -> dict[str, str]:
        return {}

    rogue.include_router(included)
    assert auth.undeclared_routes(rogue) == ["GET /api/v1/rogue", "POST /api/v1/included/rogue"]


def test_every_route_with_a_body_parses_it_strictly(api: FastAPI) -> None:
    with_body = [route for route in _api_routes(api) if route.body_field is not None]
    assert len(with_body) >= 7  # create, edit, transition, four actions, comment
    assert all(isinstance(route, jsonbody.StrictJSONRoute) for route in with_body)
    assert auth.loose_body_routes(api) == []


def test_a_route_parsing_its_body_loosely_is_caught(
    app: bootstrap.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from changegate.api.routes import catalog as catalog_routes

    loose = APIRouter(prefix="/api/v1/loose", route_class=APIRoute)

    @loose.post("")
    def loose_route(
        ctx: Annotated[Context, Depends(auth.requires(Permission.CHANGES_CREATE))],
        body: Annotated[dict[str, str], Body()],
    ) -> dict[str, str]:
        return body

    rogue = FastAPI()
    rogue.include_router(loose)
    assert auth.loose_body_routes(rogue) == ["POST /api/v1/loose"]
    monkeypatch.setattr(catalog_routes, "router", loose)
    with pytest.raises(RuntimeError, match="parsing their JSON body loosely: POST /api/v1/loose"):
        create_app(app)


def test_permissions_per_route(api: FastAPI) -> None:
    table = {
        (method, route.path): auth.route_permissions(route)[0].value
        for route in _api_routes(api)
        for method in route.methods
        if not route.path.startswith(auth.WEBHOOK_PREFIX)  # signed, not a permission
    }
    assert table[("GET", "/api/v1/changes")] == "changes:read"
    assert table[("POST", "/api/v1/changes")] == "changes:create"
    assert table[("PATCH", "/api/v1/changes/{change_id}")] == "changes:edit"
    assert table[("POST", "/api/v1/changes/{change_id}/transitions")] == "changes:transition"
    assert table[("POST", "/api/v1/changes/{change_id}/submit")] == "changes:transition"
    assert table[("POST", "/api/v1/changes/{change_id}/comments")] == "changes:comment"
    assert table[("GET", "/api/v1/changes/{change_id}/history")] == "changes:read"
    assert table[("GET", "/api/v1/catalog/{kind}")] == "catalog:read"
    assert table[("POST", "/api/v1/catalog/reload")] == "catalog:reload"
    assert table[("GET", "/api/v1/audit/export")] == "audit:read"


def test_openapi_document_lists_routes_and_permissions(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"] == {
        "title": "changegate",
        "version": __version__,
        "description": document["info"]["description"],
    }
    paths = document["paths"]
    for path in (
        "/api/v1/changes",
        "/api/v1/changes/{change_id}",
        "/api/v1/changes/{change_id}/transitions",
        "/api/v1/catalog/{kind}/{entity_id}",
        "/api/v1/audit/export",
        "/healthz",
        "/readyz",
    ):
        assert path in paths
    create = paths["/api/v1/changes"]["post"]
    assert create["x-permission"] == "changes:create"
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChangeIn"
    }
    assert "x-changegate-body" not in create
    schemas = document["components"]["schemas"]
    assert "title" in schemas["ChangeIn"]["required"]
    assert "required" not in schemas["ChangePatch"]
    assert schemas["ChangePatch"]["properties"]["version"]["type"] == "integer"
    assert "Problem" in schemas
    refs = _refs(document)
    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in refs)
    assert "x-permission" not in paths["/healthz"]["get"]
    assert document["components"]["securitySchemes"]["DevelopmentUser"]["name"] == (
        "X-Changegate-User"
    )
    for path, operations in paths.items():
        if path.startswith(auth.WEBHOOK_PREFIX):
            for operation in operations.values():
                assert "x-permission" not in operation
                assert operation["x-authentication"].startswith("webhook-signature:")
        elif path.startswith("/api/v1"):
            for operation in operations.values():
                assert operation["x-permission"] in {p.value for p in Permission}


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def test_healthz_needs_nothing(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_readyz_reports_database_schema_and_catalog(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "schema": "ok", "catalog": "ok"},
    }


def test_readyz_is_503_when_the_schema_is_behind(client: TestClient, app: bootstrap.App) -> None:
    with app.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'old'"))
    problem = assert_problem(client.get("/readyz"), 503, "not-ready")
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["schema"].startswith("not at ")
    assert "schema" in problem["detail"]


def test_readyz_is_503_when_the_database_is_unreachable(
    client: TestClient, app: bootstrap.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(engine: sa.Engine) -> bool:
        raise sa.exc.OperationalError("connect", {}, Exception("refused"))

    monkeypatch.setattr("changegate.store.db.is_current", unreachable)
    problem = assert_problem(client.get("/readyz"), 503, "not-ready")
    assert problem["checks"]["database"] == "unreachable"
    assert problem["checks"]["catalog"] == "ok"


def test_a_broken_catalog_fails_at_start(app: bootstrap.App, tmp_path: object) -> None:
    from pathlib import Path

    from changegate.errors import InvalidInput

    broken = Path(str(tmp_path)) / "platform"
    broken.mkdir()
    (broken / "tiers.yaml").write_text("apiVersion: changegate.io/v1\nkind: Tier\n")
    fresh = bootstrap.App(settings=app.settings, engine=app.engine, catalog_dir=broken)
    with pytest.raises(InvalidInput):
        create_app(fresh)
