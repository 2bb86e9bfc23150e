"""The backup routes: declared permissions, strict bodies, and refusals before any tool runs.

The real dumps and restores are tested in tests/integration/test_backups.py; here the router
is mounted on the app (until api/app.py includes it, the test includes it itself).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from changegate import bootstrap
from changegate.api import auth
from changegate.api.app import create_app
from tests.api.conftest import TestClient, as_, assert_problem


@pytest.fixture
def backup_api(app: bootstrap.App) -> FastAPI:
    return create_app(app)


@pytest.fixture
def backup_client(backup_api: FastAPI) -> Iterator[TestClient]:
    with TestClient(backup_api) as client:
        yield client


def test_every_backup_route_declares_its_permission(backup_api: FastAPI) -> None:
    assert auth.undeclared_routes(backup_api) == []
    assert auth.loose_body_routes(backup_api) == []
    table = {
        (method, path): auth.route_permissions(route)[0].value
        for path, route in auth.api_routes(backup_api.routes)
        for method in route.methods
        if path.startswith(("/api/v1/backups", "/api/v1/tenants", "/api/v1/drills"))
    }
    assert table == {
        ("GET", "/api/v1/backups"): "changes:read",
        ("GET", "/api/v1/backups/{backup_id}"): "changes:read",
        ("POST", "/api/v1/tenants/{tenant}/backups"): "changes:transition",
        ("POST", "/api/v1/backups/{backup_id}/copies"): "changes:transition",
        ("POST", "/api/v1/backups/{backup_id}/restore"): "backups:restore",
        ("POST", "/api/v1/tenants/{tenant}/drills"): "changes:transition",
        ("GET", "/api/v1/drills"): "changes:read",
    }


def test_reads_and_refusals(backup_client: TestClient) -> None:
    listed = backup_client.get("/api/v1/backups", headers=as_("alice"))
    assert listed.status_code == 200 and listed.json() == {"items": []}
    assert backup_client.get("/api/v1/drills", headers=as_("alice")).json() == {"items": []}
    assert_problem(backup_client.get("/api/v1/backups/7", headers=as_("alice")), 404, "not-found")
    unknown = backup_client.post("/api/v1/tenants/nobody/backups", headers=as_("alice"))
    assert "unknown tenant 'nobody'" in assert_problem(unknown, 404, "not-found")["detail"]
    refused = backup_client.post("/api/v1/backups/7/restore", headers=as_("alice"))
    assert "may not backups:restore" in assert_problem(refused, 403, "refused")["detail"]
    loose = backup_client.post(
        "/api/v1/backups/7/copies", headers=as_("alice"), json={"into": "x", "extra": 1}
    )
    assert_problem(loose, 422, "invalid-input")
    no_backup = backup_client.post("/api/v1/backups/7/restore", headers=as_("carol"))
    assert_problem(no_backup, 404, "not-found")
