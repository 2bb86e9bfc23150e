"""Impact analysis over the real sample platform, written to files and loaded as in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from changegate.adapters import catalog_files, sample_platform
from changegate.domain import catalog, changes, impact
from changegate.domain.impact import PathKind, Scope


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> catalog.Catalog:
    root: Path = tmp_path_factory.mktemp("sample")
    sample_platform.write_sample(root)
    loaded = catalog_files.load_catalog(root)
    assert len(loaded.tenants) == 48
    return loaded


def change(category: str, environment: str = "prod", **targets: Any) -> changes.ChangeSpec:
    return changes.validate_spec(
        {"title": "t", "category": category, "environment": environment, "targets": targets},
        source=None,
    )


def dedicated_cluster_tenants(cat: catalog.Catalog) -> list[catalog.Entity[catalog.TenantSpec]]:
    found = [
        t
        for t in cat.tenants.values()
        if t.spec.deployment_model is catalog.DeploymentModel.DEDICATED_CLUSTER
    ]
    assert found, "the sample has a dedicated-cluster tenant"
    return found


def test_a_postgresql_cluster_change_lists_exactly_its_tenants(sample: catalog.Catalog) -> None:
    for pg in (s for s in sample.services.values() if s.spec.type.value == "postgresql"):
        result = impact.analyze(
            sample, change("database-upgrade", pg.spec.environment, services=[pg.id])
        )
        on_it = sorted(t.id for t in sample.tenants.values() if t.spec.database.service == pg.id)
        assert list(result.tenants) == on_it, pg.id
        for ident, found in result.tenants.items():
            database = sample.tenants[ident].spec.database.name
            assert [(p.kind, p.via, p.reason) for p in found.paths] == [
                (PathKind.SERVICE, (pg.id,), f"database {database} lives on {pg.id}")
            ]
        assert list(result.services) == [pg.id]
        assert result.services[pg.id].tenants == len(on_it)
        assert not result.warnings


def test_the_shared_eu_west_database_is_a_platform_wide_change(sample: catalog.Catalog) -> None:
    result = impact.analyze(sample, change("database-config", services=["pg-eu-west-prod-1"]))
    count = len(result.tenants)
    assert count > 1
    assert result.scope is Scope.PLATFORM_WIDE
    assert result.scope_reason == f"shared service pg-eu-west-prod-1 reaches {count} tenants"
    assert result.summary.startswith(f"affects {count} tenants (")
    assert result.summary.endswith(") through pg-eu-west-prod-1; platform-wide")
    assert sum(result.by_tier.values()) == count
    assert result.environments == ("prod",)


def test_a_dedicated_cluster_tenant_is_untouched_by_shared_cluster_changes(
    sample: catalog.Catalog,
) -> None:
    dedicated = {t.id for t in dedicated_cluster_tenants(sample)}
    shared = [c.id for c in sample.clusters.values() if c.spec.mode is catalog.ClusterMode.SHARED]
    for category in ("kubernetes", "infrastructure", "ingress-config"):
        result = impact.analyze(sample, change(category, clusters=shared))
        assert dedicated.isdisjoint(result.tenants)
        assert not any(c.mode is catalog.ClusterMode.DEDICATED for c in result.clusters.values())
        # ...while every tenant on a shared cluster is reached, first by its own cluster
        on_shared = {t.id for t in sample.tenants.values() if t.spec.cluster in shared}
        assert set(result.tenants) == on_shared
        for found in result.tenants.values():
            assert found.paths[0].via == (found.cluster,)
        assert result.scope is Scope.PLATFORM_WIDE


def test_a_dedicated_cluster_change_touches_its_one_customer(sample: catalog.Catalog) -> None:
    tenant = dedicated_cluster_tenants(sample)[0]
    result = impact.analyze(sample, change("kubernetes", clusters=[tenant.spec.cluster]))
    assert list(result.tenants) == [tenant.id]
    assert result.scope is Scope.CUSTOMER_SPECIFIC
    kinds = {(p.kind, p.via[0]) for p in result.tenants[tenant.id].paths}
    assert kinds == {(PathKind.CLUSTER, tenant.spec.cluster)}
    assert all(not s.shared for s in result.services.values())
    assert result.clusters[tenant.spec.cluster].targeted


def test_scope_of_typical_sample_changes(sample: catalog.Catalog) -> None:
    first = next(iter(sample.tenants))
    assert impact.analyze(sample, change("tenant-config", tenants=[first])).scope is (
        Scope.CUSTOMER_SPECIFIC
    )
    staging = impact.analyze(
        sample, change("application-release", "staging", selectors=[{"tier": "platinum"}])
    )
    assert staging.tenants and all(t.environment == "staging" for t in staging.tenants.values())
    assert staging.scope is Scope.LIMITED  # 4 staging twins, selected one by one
    region = impact.analyze(sample, change("monitoring", services=["monitoring-eu-west"]))
    assert region.scope is Scope.PLATFORM_WIDE
    nobody = impact.analyze(sample, change("odoo-upgrade", selectors=[{"odoo_series": "15.0"}]))
    assert nobody.scope is Scope.NONE
    assert nobody.warnings == ("selector odoo_series=15.0 matches no tenant in prod",)
