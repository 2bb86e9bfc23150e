"""The impact service on the real store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain import impact as impact_model
from changegate.domain.impact import PathKind, Scope
from changegate.errors import InvalidInput, NotFound, Refused
from changegate.services import changes as change_service
from changegate.services import impact as impact_service
from changegate.services.context import Actor, Context
from changegate.store.schema import audit_events
from tests.conftest import ctx_for
from tests.factories import change_spec

PG = "pg-eu-west-prod-1"


def audit_count(app: bootstrap.App) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one())


def file_pg_change(app: bootstrap.App, catalog: catalog_model.Catalog, service: str = PG) -> str:
    spec = change_spec(category="database-upgrade", targets={"services": [service]})
    return change_service.create(app.engine, catalog, ctx_for(catalog, "alice"), spec).id


def test_a_change_to_one_postgresql_service_lists_exactly_its_tenants(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = file_pg_change(app, catalog)
    found = impact_service.impact(app.engine, catalog, ctx_for(catalog, "bob"), change_id)
    on_it = sorted(t.id for t in catalog.tenants.values() if t.spec.database.service == PG)
    assert len(on_it) > 1
    result = found.impact
    assert list(result.tenants) == on_it
    for ident, tenant in result.tenants.items():
        database = catalog.tenants[ident].spec.database.name
        assert [(p.kind, p.via, p.reason) for p in tenant.paths] == [
            (PathKind.SERVICE, (PG,), f"database {database} lives on {PG}")
        ]
    assert list(result.services) == [PG]
    assert result.scope is Scope.PLATFORM_WIDE
    assert result.scope_reason == f"shared service {PG} reaches {len(on_it)} tenants"
    assert result.warnings == ()
    # A dedicated-cluster tenant has its own database: untouched by the shared one.
    dedicated = [
        t.id
        for t in catalog.tenants.values()
        if t.spec.deployment_model is catalog_model.DeploymentModel.DEDICATED_CLUSTER
    ]
    assert dedicated and set(dedicated).isdisjoint(result.tenants)


def test_the_result_is_the_domain_analysis_of_the_stored_change(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    found = impact_service.impact(app.engine, catalog, alice, change.id.removeprefix("CHG-"))
    assert found.change_id == change.id
    assert found.impact == impact_model.analyze(catalog, change.spec)
    assert found.change_catalog_digest == found.impact.catalog_digest == catalog.digest
    body = found.as_dict()
    assert list(body)[:3] == ["change_id", "change_catalog_digest", "catalog_digest"]
    assert body == {
        "change_id": change.id,
        "change_catalog_digest": catalog.digest,
        **found.impact.as_dict(),
    }


def test_impact_uses_the_catalog_loaded_now_and_names_the_one_filed_against(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = file_pg_change(app, catalog)
    newer = catalog_model.Catalog(
        digest="sha256:" + "0" * 64, commit=None, root=catalog.root, entities=catalog.entities
    )
    found = impact_service.impact(app.engine, newer, ctx_for(catalog, "carol"), change_id)
    assert found.impact.catalog_digest == newer.digest
    assert found.change_catalog_digest == catalog.digest
    body = found.as_dict()
    assert body["catalog_digest"] != body["change_catalog_digest"]


def test_the_auditor_may_read_impact_and_nothing_is_audited(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = file_pg_change(app, catalog)
    before = audit_count(app)
    found = impact_service.impact(app.engine, catalog, ctx_for(catalog, "frank"), change_id)
    assert found.impact.tenants
    assert audit_count(app) == before


def test_unknown_and_malformed_changes(app: bootstrap.App, catalog: catalog_model.Catalog) -> None:
    frank = ctx_for(catalog, "frank")
    with pytest.raises(NotFound, match="CHG-999 does not exist"):
        impact_service.impact(app.engine, catalog, frank, "CHG-999")
    with pytest.raises(InvalidInput, match="not a change id"):
        impact_service.impact(app.engine, catalog, frank, "bogus")


def test_the_service_itself_checks_the_permission(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = file_pg_change(app, catalog)
    nobody = Context(actor=Actor(id="nobody", name="Nobody", roles=()))
    with pytest.raises(Refused, match="may not changes:read"):
        impact_service.impact(app.engine, catalog, nobody, change_id)
    # Refused before the change is looked up: an unknown one is refused the same way.
    with pytest.raises(Refused):
        impact_service.impact(app.engine, catalog, nobody, "CHG-999")
