"""The catalog over HTTP: summary, kinds, entities, reload."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api.app import create_app
from changegate.domain import catalog as catalog_model
from tests.api.conftest import as_, assert_problem


def test_summary(client: TestClient, catalog: catalog_model.Catalog) -> None:
    response = client.get("/api/v1/catalog", headers=as_("alice"))
    assert response.status_code == 200
    body = response.json()
    assert body["digest"] == catalog.digest
    assert body["counts"]["tenants"] == len(catalog.tenants)
    assert body["counts"]["people"] == len(catalog.people)


def test_list_and_get_entities(client: TestClient, catalog: catalog_model.Catalog) -> None:
    for kind in ("tenants", "tenant", "Tenant"):
        response = client.get(f"/api/v1/catalog/{kind}", headers=as_("frank"))
        assert response.status_code == 200
        body = response.json()
        assert body["kind"] == "Tenant"
        assert [e["id"] for e in body["items"]] == list(catalog.tenants)
    person = client.get("/api/v1/catalog/people/carol", headers=as_("alice")).json()
    assert person["kind"] == "Person"
    assert set(person["spec"]["roles"]) == {"approver", "platform-lead"}
    assert person["line"] >= 1


def test_unknown_kind_and_entity_are_404(client: TestClient) -> None:
    kind = client.get("/api/v1/catalog/spaceships", headers=as_("alice"))
    assert "unknown kind 'spaceships'" in assert_problem(kind, 404, "not-found")["detail"]
    entity = client.get("/api/v1/catalog/tenants/nobody-here", headers=as_("alice"))
    assert assert_problem(entity, 404, "not-found")["detail"] == (
        "no Tenant 'nobody-here' in the catalog"
    )


def test_reload_needs_the_permission_and_is_audited(client: TestClient) -> None:
    refused = client.post("/api/v1/catalog/reload", headers=as_("alice"))
    assert "may not catalog:reload" in assert_problem(refused, 403, "refused")["detail"]
    before = client.get("/api/v1/audit/verify", headers=as_("carol")).json()["count"]
    reloaded = client.post("/api/v1/catalog/reload", headers=as_("carol"))
    assert reloaded.status_code == 200, reloaded.text
    events = client.get("/api/v1/audit", params={"after_seq": before}, headers=as_("carol")).json()[
        "items"
    ]
    assert [(e["action"], e["actor"]) for e in events] == [("catalog.loaded", "carol")]


def test_reloading_a_broken_catalog_is_refused_and_keeps_the_old_one(
    app: bootstrap.App, sample_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "platform"
    shutil.copytree(sample_dir, directory)
    own = bootstrap.App(settings=app.settings, engine=app.engine, catalog_dir=directory)
    with TestClient(create_app(own)) as client:
        digest = client.get("/api/v1/catalog", headers=as_("carol")).json()["digest"]
        (directory / "tiers.yaml").write_text(
            "apiVersion: changegate.io/v1\nkind: Tier\nmetadata: {name: gold}\nspec: {}\n"
        )
        response = client.post("/api/v1/catalog/reload", headers=as_("carol"))
        problem = assert_problem(response, 422, "invalid-input")
        assert any(e["file"] and e["file"].endswith("tiers.yaml") for e in problem["errors"])
        assert all(e["line"] for e in problem["errors"] if e["file"])
        assert client.get("/api/v1/catalog", headers=as_("carol")).json()["digest"] == digest
