"""Impact analysis on small hand-built catalogs: every path kind, scope, counts, determinism.

The platform used here (`world()`):

    shared-1 (shared, prod)     hosts pg-1, redis-1, traefik-1
        acme    gold   multi-tenant         db pg-1   uses redis-1 traefik-1 objects monitoring
        beta    bronze multi-tenant         db pg-1   uses redis-1 traefik-1         (16.0)
        nsco    gold   dedicated-namespace  db pg-1   uses traefik-1 redis-2 (on shared-2)
    shared-2 (shared, prod)     hosts redis-2
        gamma   bronze multi-tenant         db pg-1 (on shared-1)   uses redis-2
    dedicated-1 (dedicated, prod)  hosts pg-d
        solo    gold   dedicated-cluster    db pg-d   uses objects monitoring
    staging-1 (shared, staging)    hosts pg-s
        acme-staging gold multi-tenant      db pg-s
    objects, monitoring: region-wide (prod, no cluster)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate.domain import catalog, changes, impact
from changegate.domain.impact import PathKind, Scope
from tests import catalog_builders as b

DIGEST = "sha256:" + "0" * 64


def build(files: b.Platform) -> catalog.Catalog:
    return catalog.build(b.documents(files), digest=DIGEST, commit=None, root="r")


def cluster(name: str, mode: str, environment: str = "prod") -> dict[str, Any]:
    spec = {
        "mode": mode,
        "environment": environment,
        "region": "eu-west",
        "zones": ["eu-west-1a"],
        "kubernetes_version": "1.30",
    }
    return b.doc("Cluster", name, spec)


def service(name: str, kind: str, cluster_id: str | None, environment: str = "prod") -> Any:
    sections: dict[str, dict[str, Any]] = {
        "postgresql": {"version": "16", "instances": 1},
        "redis": {"version": "7.2"},
        "object-storage": {"provider": "s3", "bucket": f"bucket-{name}", "region": "eu-west"},
    }
    spec: dict[str, Any] = {
        "type": kind,
        "criticality": "high",
        "environment": environment,
        kind: sections[kind],
    }
    if cluster_id is not None:
        spec["cluster"] = cluster_id
    return b.doc("Service", name, spec)


def tenant(name: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "display_name": name.title(),
        "namespace": "odoo-mt-1",
        "database": {"service": "pg-1", "name": name.replace("-", "_")},
        "contacts": [],
        "approvers": [],
    }
    fields.update(overrides)
    return b.doc("Tenant", name, b.tenant_spec(**fields))


def world() -> b.Platform:
    files = b.platform()
    files["clusters.yaml"] += [
        cluster("shared-2", "shared"),
        cluster("staging-1", "shared", "staging"),
    ]
    files["services.yaml"] += [
        service("redis-2", "redis", "shared-2"),
        service("pg-d", "postgresql", "dedicated-1"),
        service("pg-s", "postgresql", "staging-1", "staging"),
    ]
    files["tenants.yaml"] += [
        tenant(
            "beta",
            tier="bronze",
            services=["redis-1", "traefik-1"],
            odoo={"series": "16.0", "image": b.IMAGE},
            business_services=["invoicing", "payroll"],
        ),
        tenant(
            "nsco",
            deployment_model="dedicated-namespace",
            namespace="odoo-nsco",
            services=["traefik-1", "redis-2"],
            business_services=["manufacturing"],
        ),
        tenant(
            "gamma",
            tier="bronze",
            cluster="shared-2",
            services=["redis-2"],
            business_services=["crm"],
        ),
        tenant(
            "solo",
            deployment_model="dedicated-cluster",
            cluster="dedicated-1",
            namespace="odoo",
            database={"service": "pg-d", "name": "solo"},
            services=["objects", "monitoring"],
            business_services=["invoicing"],
        ),
        tenant(
            "acme-staging",
            environment="staging",
            cluster="staging-1",
            namespace="odoo-staging",
            database={"service": "pg-s", "name": "acme"},
            services=[],
        ),
    ]
    return files


@pytest.fixture(scope="module")
def cat() -> catalog.Catalog:
    return build(world())


def change(category: str = "infrastructure", environment: str = "prod", **targets: Any) -> Any:
    return changes.validate_spec(
        {"title": "t", "category": category, "environment": environment, "targets": targets},
        source=None,
    )


def run(cat: catalog.Catalog, **kwargs: Any) -> impact.Impact:
    return impact.analyze(cat, change(**kwargs))


def paths(result: impact.Impact, ident: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(p.kind.value, p.via) for p in result.tenants[ident].paths]


# ------------------------------------------------------------------ path kinds


def test_a_directly_targeted_tenant_is_the_only_one_affected(cat: catalog.Catalog) -> None:
    result = run(cat, category="tenant-config", tenants=["beta"])
    assert list(result.tenants) == ["beta"]
    (path,) = result.tenants["beta"].paths
    assert (path.kind, path.via, path.reason) == (PathKind.DIRECT, (), "targeted directly")
    assert result.scope is Scope.CUSTOMER_SPECIFIC
    assert not result.services
    assert not result.warnings


def test_a_postgresql_service_affects_exactly_the_tenants_whose_database_lives_on_it(
    cat: catalog.Catalog,
) -> None:
    result = run(cat, category="database-config", services=["pg-1"])
    # gamma runs on shared-2 but its database lives on pg-1; solo and acme-staging do not.
    assert list(result.tenants) == ["acme", "beta", "gamma", "nsco"]
    for ident, found in result.tenants.items():
        (path,) = found.paths
        assert path.kind is PathKind.SERVICE
        assert path.via == ("pg-1",)
        name = ident.replace("-", "_")
        assert path.reason == f"database {name} lives on pg-1"
    pg = result.services["pg-1"]
    assert (pg.type, pg.shared, pg.tenants) == (catalog.ServiceType.POSTGRESQL, True, 4)
    assert [(p.kind, p.reason) for p in pg.paths] == [(PathKind.DIRECT, "targeted")]
    assert result.scope is Scope.PLATFORM_WIDE
    assert result.scope_reason == "shared service pg-1 reaches 4 tenants"
    assert result.summary == "affects 4 tenants (2 gold, 2 bronze) through pg-1; platform-wide"


def test_a_redis_change_spares_a_dedicated_tenant_on_the_same_cluster_that_does_not_use_it(
    cat: catalog.Catalog,
) -> None:
    result = run(cat, category="redis-config", services=["redis-1"])
    assert list(result.tenants) == ["acme", "beta"]  # not nsco: same cluster, own Redis
    assert result.tenants["acme"].paths[0].reason == "uses Redis redis-1"
    assert result.tenants["acme"].paths[0].via == ("redis-1",)


def test_a_cluster_reaches_its_tenants_and_the_users_of_the_services_it_hosts(
    cat: catalog.Catalog,
) -> None:
    result = run(cat, category="kubernetes", clusters=["shared-1"])
    assert list(result.tenants) == ["acme", "beta", "gamma", "nsco"]
    assert paths(result, "acme") == [
        ("cluster", ("shared-1",)),
        ("cluster", ("shared-1", "pg-1")),
        ("cluster", ("shared-1", "redis-1")),
        ("cluster", ("shared-1", "traefik-1")),
    ]
    # gamma runs on shared-2: it is reached only because its database lives on pg-1.
    (through,) = result.tenants["gamma"].paths
    assert through.via == ("shared-1", "pg-1")
    assert through.reason == "database gamma lives on pg-1, hosted on targeted cluster shared-1"
    assert set(result.services) == {"pg-1", "redis-1", "traefik-1"}
    assert [p.via for p in result.services["redis-1"].paths] == [("shared-1",)]
    assert result.clusters["shared-1"].targeted
    assert result.clusters["shared-1"].services == ("pg-1", "redis-1", "traefik-1")
    assert result.clusters["shared-2"].targeted is False
    assert result.clusters["shared-2"].tenants == 1
    assert result.scope_reason == "shared cluster shared-1 reaches 4 tenants"


def test_a_shared_cluster_change_leaves_the_dedicated_cluster_tenant_alone(
    cat: catalog.Catalog,
) -> None:
    for target in ("shared-1", "shared-2", "staging-1"):
        result = run(cat, category="kubernetes", clusters=[target])
        assert "solo" not in result.tenants
        assert "dedicated-1" not in result.clusters


def test_a_cluster_reaches_tenants_of_other_clusters_only_through_services_they_use(
    cat: catalog.Catalog,
) -> None:
    result = run(cat, category="kubernetes", clusters=["shared-2"])
    assert list(result.tenants) == ["gamma", "nsco"]
    assert paths(result, "gamma") == [
        ("cluster", ("shared-2",)),
        ("cluster", ("shared-2", "redis-2")),
    ]
    assert paths(result, "nsco") == [("cluster", ("shared-2", "redis-2"))]


def test_a_dedicated_cluster_change_is_customer_specific(cat: catalog.Catalog) -> None:
    result = run(cat, category="kubernetes", clusters=["dedicated-1"])
    assert list(result.tenants) == ["solo"]
    assert result.scope is Scope.CUSTOMER_SPECIFIC
    assert result.services["pg-d"].shared is False
    assert result.by_deployment_model["dedicated-cluster"] == 1


def test_a_region_wide_service_reaches_shared_and_dedicated_users_alike(
    cat: catalog.Catalog,
) -> None:
    result = run(cat, category="backup-policy", services=["objects"])
    assert list(result.tenants) == ["acme", "solo"]
    assert result.tenants["solo"].paths[0].reason == (
        "keeps files and backups in object storage objects"
    )
    assert result.services["objects"].cluster is None
    assert result.services["objects"].shared is True
    assert result.scope is Scope.PLATFORM_WIDE


# ------------------------------------------------------------------ selectors


def test_selector_attributes_must_all_match(cat: catalog.Catalog) -> None:
    gold = run(cat, selectors=[{"tier": "gold"}])
    assert list(gold.tenants) == ["acme", "nsco", "solo"]  # not acme-staging: staging
    both = run(cat, selectors=[{"tier": "gold", "deployment_model": "multi-tenant"}])
    assert list(both.tenants) == ["acme"]
    (path,) = both.tenants["acme"].paths
    assert path.kind is PathKind.SELECTOR
    assert path.via == ("tier=gold, deployment_model=multi-tenant",)
    assert path.reason == "matches selector tier=gold, deployment_model=multi-tenant in prod"
    series = run(cat, selectors=[{"odoo_series": "16.0"}])
    assert list(series.tenants) == ["beta"]
    on_cluster = run(cat, selectors=[{"cluster": "shared-2", "tier": "bronze"}])
    assert list(on_cluster.tenants) == ["gamma"]
    assert not on_cluster.services  # a selector targets tenants, not the cluster's services


def test_several_selectors_are_alternatives(cat: catalog.Catalog) -> None:
    result = run(cat, selectors=[{"odoo_series": "16.0"}, {"cluster": "dedicated-1"}])
    assert list(result.tenants) == ["beta", "solo"]


def test_selectors_select_only_in_the_changes_environment(cat: catalog.Catalog) -> None:
    staging = run(cat, environment="staging", selectors=[{"tier": "gold"}])
    assert list(staging.tenants) == ["acme-staging"]
    assert staging.environments == ("staging",)
    nothing = run(cat, environment="staging", selectors=[{"cluster": "shared-1"}])
    assert not nothing.tenants
    assert nothing.warnings == ("selector cluster=shared-1 matches no tenant in staging",)
    assert nothing.scope is Scope.NONE


def test_targets_in_another_environment_are_kept_with_a_warning(cat: catalog.Catalog) -> None:
    result = run(cat, environment="prod", tenants=["acme-staging"], services=["pg-s"])
    assert list(result.tenants) == ["acme-staging"]
    assert paths(result, "acme-staging") == [("direct", ()), ("service", ("pg-s",))]
    assert result.warnings == (
        "tenant acme-staging is in staging, the change in prod; it is kept",
        "service pg-s is in staging, the change in prod; its tenants are kept",
    )
    assert result.environments == ("staging",)


# ------------------------------------------------------------------ several paths


def test_a_tenant_keeps_every_path_ordered_by_kind_then_target(cat: catalog.Catalog) -> None:
    result = run(
        cat,
        # listed out of order and twice: neither matters
        selectors=[{"tier": "gold"}, {"tier": "gold"}],
        clusters=["shared-1"],
        services=["redis-1", "pg-1", "redis-1"],
        tenants=["acme", "acme"],
    )
    assert paths(result, "acme") == [
        ("direct", ()),
        ("service", ("pg-1",)),
        ("service", ("redis-1",)),
        ("cluster", ("shared-1",)),
        ("cluster", ("shared-1", "pg-1")),
        ("cluster", ("shared-1", "redis-1")),
        ("cluster", ("shared-1", "traefik-1")),
        ("selector", ("tier=gold",)),
    ]
    assert [p.kind for p in result.services["pg-1"].paths] == [PathKind.DIRECT, PathKind.CLUSTER]


def test_a_tenant_listing_its_database_service_again_gets_one_path_for_it() -> None:
    files = b.with_spec(world(), "Tenant", "beta", services=["pg-1", "redis-1"])
    result = run(build(files), services=["pg-1"])
    assert paths(result, "beta") == [("service", ("pg-1",))]
    assert result.tenants["beta"].paths[0].reason == "database beta lives on pg-1"
    assert result.services["pg-1"].tenants == 4


# ------------------------------------------------------------------ results


def test_counts_business_services_environments_and_clusters(cat: catalog.Catalog) -> None:
    result = run(cat, category="database-config", services=["pg-1"])
    assert result.by_tier == {"gold": 2, "bronze": 2}  # heaviest risk weight first
    assert result.by_deployment_model == {
        "multi-tenant": 3,
        "dedicated-namespace": 1,
        "dedicated-cluster": 0,
    }
    assert result.business_services == {
        "crm": ("gamma",),
        "invoicing": ("acme", "beta"),
        "manufacturing": ("nsco",),
        "order-to-cash": ("acme",),
        "payroll": ("beta",),
    }
    assert result.tenants["beta"].business_services == ("invoicing", "payroll")
    assert result.environments == ("prod",)
    assert {ident: (c.targeted, c.tenants) for ident, c in result.clusters.items()} == {
        "shared-1": (False, 3),
        "shared-2": (False, 1),
    }
    counts = result.as_dict()["counts"]
    assert counts["tenants"] == 4
    assert counts["services"] == 1


@pytest.mark.parametrize(
    ("targets", "limit", "scope"),
    [
        ({"selectors": [{"tier": "gold", "cluster": "shared-2"}]}, 10, Scope.NONE),
        ({"tenants": ["acme"]}, 10, Scope.CUSTOMER_SPECIFIC),
        ({"clusters": ["dedicated-1"]}, 10, Scope.CUSTOMER_SPECIFIC),
        ({"services": ["pg-d"]}, 10, Scope.CUSTOMER_SPECIFIC),
        ({"tenants": ["acme", "beta"]}, 10, Scope.LIMITED),
        ({"selectors": [{"odoo_series": "17.0"}]}, 10, Scope.LIMITED),
        ({"tenants": ["acme", "beta", "gamma"]}, 2, Scope.PLATFORM_WIDE),
        ({"services": ["redis-2"]}, 10, Scope.PLATFORM_WIDE),
        ({"clusters": ["shared-2"]}, 10, Scope.PLATFORM_WIDE),
    ],
)
def test_scope(cat: catalog.Catalog, targets: dict[str, Any], limit: int, scope: Scope) -> None:
    result = impact.analyze(cat, change(**targets), platform_wide_tenants=limit)
    assert result.scope is scope, result.scope_reason


def test_a_shared_service_with_a_single_user_is_not_customer_specific(
    cat: catalog.Catalog,
) -> None:
    result = run(cat, environment="staging", services=["pg-s"])
    assert list(result.tenants) == ["acme-staging"]
    assert result.scope is Scope.LIMITED
    assert result.scope_reason == (
        "one tenant, but shared service pg-s is targeted (no other user today)"
    )


def test_more_tenants_than_the_limit_is_platform_wide(cat: catalog.Catalog) -> None:
    spec = change(tenants=["acme", "beta", "gamma"])
    result = impact.analyze(cat, spec, platform_wide_tenants=2)
    assert result.scope_reason == "3 tenants are affected, more than 2"
    assert impact.analyze(cat, spec).scope is Scope.LIMITED


def test_unknown_targets_and_misfiled_categories_are_warnings(cat: catalog.Catalog) -> None:
    result = run(
        cat,
        category="redis-config",
        tenants=["ghost"],
        services=["pg-1", "nope"],
        clusters=["gone"],
    )
    assert list(result.tenants) == ["acme", "beta", "gamma", "nsco"]
    assert result.warnings == (
        "no tenant 'ghost' in the catalog: ignored",
        "no service 'nope' in the catalog: ignored",
        "service pg-1 is postgresql; a redis-config change touches redis services",
        "no cluster 'gone' in the catalog: ignored",
    )


def test_an_unknown_environment_selects_nothing(cat: catalog.Catalog) -> None:
    result = run(cat, environment="qa", selectors=[{"tier": "gold"}])
    assert not result.tenants
    assert result.warnings[0] == "environment 'qa' is not in the catalog"
    assert result.summary == "affects no tenant through selector tier=gold"


def test_the_same_inputs_give_the_same_result_whatever_the_target_order(
    cat: catalog.Catalog,
) -> None:
    one = run(
        cat,
        tenants=["solo", "beta"],
        services=["redis-2", "objects"],
        clusters=["shared-1", "dedicated-1"],
        selectors=[{"tier": "bronze"}, {"odoo_series": "17.0"}],
    )
    other = run(
        cat,
        tenants=["beta", "solo"],
        services=["objects", "redis-2"],
        clusters=["dedicated-1", "shared-1"],
        selectors=[{"odoo_series": "17.0"}, {"tier": "bronze"}],
    )
    assert one == other
    assert one.as_dict() == other.as_dict()
    assert json.dumps(one.as_dict(), sort_keys=False) == json.dumps(other.as_dict())
    again = impact.analyze(build(world()), change(**{"tenants": ["solo", "beta"]}))
    assert again.as_dict() == run(cat, tenants=["beta", "solo"]).as_dict()


def test_the_json_shape(cat: catalog.Catalog) -> None:
    data = run(cat, category="redis-config", services=["redis-2"]).as_dict()
    assert list(data) == [
        "catalog_digest",
        "category",
        "environment",
        "scope",
        "scope_reason",
        "summary",
        "counts",
        "environments",
        "tenants",
        "business_services",
        "services",
        "clusters",
        "warnings",
    ]
    assert data["tenants"]["nsco"] == {
        "display_name": "Nsco",
        "tier": "gold",
        "deployment_model": "dedicated-namespace",
        "cluster": "shared-1",
        "environment": "prod",
        "business_services": ["manufacturing"],
        "paths": [{"kind": "service", "via": ["redis-2"], "reason": "uses Redis redis-2"}],
    }
    assert data["services"]["redis-2"] == {
        "type": "redis",
        "criticality": "high",
        "environment": "prod",
        "cluster": "shared-2",
        "shared": True,
        "tenants": 2,
        "paths": [{"kind": "direct", "via": [], "reason": "targeted"}],
    }
    assert data["counts"]["by_tier"] == {"gold": 1, "bronze": 1}
    assert data["catalog_digest"] == DIGEST
    json.dumps(data)


def test_the_catalog_builds_its_lookup_tables_once_on_first_use() -> None:
    built = build(world())
    index = built.index
    assert built.index is index
    assert [t.id for t in index.tenants_by_database_service["pg-1"]] == [
        "acme",
        "beta",
        "nsco",
        "gamma",
    ]
    assert [t.id for t in index.tenants_by_service["redis-2"]] == ["nsco", "gamma"]
    assert [s.id for s in index.services_by_cluster["shared-1"]] == ["pg-1", "redis-1", "traefik-1"]
    assert "objects" not in {s.id for group in index.services_by_cluster.values() for s in group}
    assert [t.id for t in index.tenants_by_deployment_model["dedicated-cluster"]] == ["solo"]


# ------------------------------------------------------------------ properties

_PROD, _STAGING = "prod", "staging"


@st.composite
def worlds(draw: st.DrawFn) -> tuple[b.Platform, dict[str, Any]]:
    """A random valid platform and a random change over it."""
    files = b.platform()
    del files["windows.yaml"], files["people.yaml"], files["teams.yaml"]
    files["clusters.yaml"] = []
    files["services.yaml"] = [
        service("objects", "object-storage", None, _PROD),
        service("objects-staging", "object-storage", None, _STAGING),
    ]
    files["tenants.yaml"] = []
    clusters: list[tuple[str, str, str]] = []
    for number in range(draw(st.integers(1, 4))):
        mode = draw(st.sampled_from(["shared", "dedicated"]))
        environment = draw(st.sampled_from([_PROD, _STAGING]))
        name = f"c{number}"
        clusters.append((name, mode, environment))
        files["clusters.yaml"].append(cluster(name, mode, environment))
        files["services.yaml"] += [
            service(f"pg-{name}", "postgresql", name, environment),
            service(f"redis-{name}", "redis", name, environment),
        ]
    for number in range(draw(st.integers(0, 8))):
        name, mode, environment = draw(st.sampled_from(clusters))
        same_env = [c for c in clusters if c[2] == environment]
        database = f"pg-{draw(st.sampled_from(same_env))[0]}"
        usable = [f"redis-{c[0]}" for c in same_env]
        usable.append("objects" if environment == _PROD else "objects-staging")
        model = (
            "dedicated-cluster"
            if mode == "dedicated"
            else draw(st.sampled_from(["multi-tenant", "dedicated-namespace"]))
        )
        ident = f"t{number}"
        files["tenants.yaml"].append(
            tenant(
                ident,
                tier=draw(st.sampled_from(["gold", "bronze"])),
                environment=environment,
                deployment_model=model,
                cluster=name,
                namespace="odoo-mt" if model == "multi-tenant" else f"odoo-{ident}",
                database={"service": database, "name": ident},
                services=draw(st.lists(st.sampled_from(usable), unique=True)),
                odoo={"series": draw(st.sampled_from(["16.0", "17.0"])), "image": b.IMAGE},
            )
        )
    tenant_ids = [f"t{n}" for n in range(len(files["tenants.yaml"]))] + ["ghost"]
    service_ids = [d["metadata"]["name"] for d in files["services.yaml"]]
    cluster_ids = [c[0] for c in clusters]
    selector = st.fixed_dictionaries(
        {},
        optional={
            "tier": st.sampled_from(["gold", "bronze"]),
            "odoo_series": st.sampled_from(["16.0", "17.0"]),
            "deployment_model": st.sampled_from(
                ["multi-tenant", "dedicated-namespace", "dedicated-cluster"]
            ),
            "cluster": st.sampled_from(cluster_ids),
        },
    ).filter(bool)
    targets = {
        "tenants": draw(st.lists(st.sampled_from(tenant_ids), max_size=3)),
        "services": draw(st.lists(st.sampled_from(service_ids), max_size=3)),
        "clusters": draw(st.lists(st.sampled_from(cluster_ids), max_size=2)),
        "selectors": draw(st.lists(selector, max_size=2)),
    }
    return files, {
        "title": "t",
        "category": draw(st.sampled_from(list(changes.Category))).value,
        "environment": draw(st.sampled_from([_PROD, _STAGING])),
        "targets": targets,
    }


def _uses(spec: catalog.TenantSpec, service_id: str) -> bool:
    return spec.database.service == service_id or service_id in spec.services


def _selected(selector: changes.TargetSelector, spec: catalog.TenantSpec, env: str) -> bool:
    """The selector rule written out again, independently of the code under test."""
    wanted = {
        "tier": selector.tier,
        "odoo_series": selector.odoo_series,
        "deployment_model": selector.deployment_model,
        "cluster": selector.cluster,
    }
    actual = {
        "tier": spec.tier,
        "odoo_series": spec.odoo.series,
        "deployment_model": spec.deployment_model.value,
        "cluster": spec.cluster,
    }
    given_ = {key: value for key, value in wanted.items() if value is not None}
    return spec.environment == env and all(actual[key] == value for key, value in given_.items())


def _path_is_true(
    cat: catalog.Catalog, spec: changes.ChangeSpec, ident: str, path: impact.ImpactPath
) -> bool:
    tenant = cat.tenants[ident].spec
    targets = spec.targets
    if path.kind is PathKind.DIRECT:
        return path.via == () and ident in targets.tenants
    if path.kind is PathKind.SERVICE:
        (service_id,) = path.via
        return service_id in targets.services and _uses(tenant, service_id)
    if path.kind is PathKind.CLUSTER:
        if len(path.via) == 1:
            return path.via[0] in targets.clusters and tenant.cluster == path.via[0]
        cluster_id, service_id = path.via
        return (
            cluster_id in targets.clusters
            and cat.services[service_id].spec.cluster == cluster_id
            and _uses(tenant, service_id)
        )
    (text,) = path.via
    return any(
        impact.selector_text(s) == text and _selected(s, tenant, spec.environment)
        for s in targets.selectors
    )


def _related(cat: catalog.Catalog, spec: changes.ChangeSpec) -> set[str]:
    """Every tenant with some relation to the targets, by brute force over the catalog."""
    targets = spec.targets
    hosted = {s.id for s in cat.services.values() if s.spec.cluster in set(targets.clusters)}
    return {
        t.id
        for t in cat.tenants.values()
        if t.id in targets.tenants
        or any(_uses(t.spec, s) for s in set(targets.services) | hosted)
        or t.spec.cluster in targets.clusters
        or any(_selected(s, t.spec, spec.environment) for s in targets.selectors)
    }


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_every_affected_tenant_has_true_paths_and_no_related_tenant_is_missed(
    case: tuple[b.Platform, dict[str, Any]],
) -> None:
    files, data = case
    cat = build(files)
    spec = changes.validate_spec(data, source=None)
    result = impact.analyze(cat, spec)
    assert set(result.tenants) == _related(cat, spec)
    assert list(result.tenants) == sorted(result.tenants)
    for ident, found in result.tenants.items():
        assert found.paths, ident
        assert len({(p.kind, p.via) for p in found.paths}) == len(found.paths)
        for path in found.paths:
            assert _path_is_true(cat, spec, ident, path), (ident, path)
        # dedicated-cluster tenants are reached only through what is theirs or what they use
        if found.deployment_model is catalog.DeploymentModel.DEDICATED_CLUSTER:
            for path in found.paths:
                if path.kind is PathKind.CLUSTER:
                    assert path.via[0] == found.cluster or _uses(
                        cat.tenants[ident].spec, path.via[-1]
                    )
    for service_id, affected in result.services.items():
        owner = cat.services[service_id].spec.cluster
        assert service_id in spec.targets.services or owner in spec.targets.clusters
        assert affected.tenants == sum(_uses(t.spec, service_id) for t in cat.tenants.values())
    assert sum(result.by_tier.values()) == len(result.tenants)
    assert sum(result.by_deployment_model.values()) == len(result.tenants)
    assert (result.scope is Scope.NONE) == (not result.tenants)
    assert impact.analyze(cat, spec) == result
