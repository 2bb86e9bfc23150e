"""Impact analysis: who a change can hurt, and the path that explains each one.

From a change's targets (tenants, shared services, clusters, selectors) and the platform
catalog, `analyze` computes the affected tenants, business services, environments, shared
services and clusters. Every affected tenant carries the paths that reach it:

- direct:   the tenant is named in `targets.tenants`;
- service:  it uses a targeted shared service (its database lives on a targeted PostgreSQL
            service, or it lists a targeted Redis, Traefik, object storage or monitoring
            service in `services`);
- cluster:  it runs on a targeted cluster, or uses a service hosted on one (two steps:
            cluster, then service; the tenant itself may run elsewhere);
- selector: it matches every attribute a selector gives, in the change's environment.

Nothing else reaches a tenant: a dedicated tenant is never affected by a shared service it
does not use, and a cluster reaches other clusters' tenants only through a service they use.

The work is linear in what is found (the catalog's lookup tables answer "who uses X"), so a
change touching thousands of tenants is analysed in milliseconds. Pure: no I/O, no clock.
docs/impact.md describes the rules and the JSON shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from changegate.domain.catalog import (
    Catalog,
    ClusterMode,
    Criticality,
    DeploymentModel,
    Entity,
    ServiceSpec,
    ServiceType,
    TenantSpec,
)
from changegate.domain.changes import Category, ChangeSpec, TargetSelector

# More affected tenants than this makes a change platform-wide whatever it targets.
PLATFORM_WIDE_TENANTS = 10

# How the summary names targets: this many, then "and N more targets".
_SUMMARY_TARGETS = 4


class PathKind(StrEnum):
    """How a change reaches a tenant; also the order paths are listed in."""

    DIRECT = "direct"
    SERVICE = "service"
    CLUSTER = "cluster"
    SELECTOR = "selector"


class Scope(StrEnum):
    """The operating model's classification of a change's reach (rules in `_classify`)."""

    NONE = "none"
    CUSTOMER_SPECIFIC = "customer-specific"
    LIMITED = "limited"
    PLATFORM_WIDE = "platform-wide"


@dataclass(frozen=True, slots=True)
class ImpactPath:
    """One reason something is affected.

    `via` is the chain of ids from the change's target inwards, the affected thing itself
    left out (it is the key it is listed under): `()` for a direct target, `(service,)`,
    `(cluster,)` or `(cluster, service)`, and for a selector the selector written as
    `attribute=value` pairs.
    """

    kind: PathKind
    via: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {"kind": self.kind.value, "via": list(self.via), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class TenantImpact:
    """An affected tenant, what it is, and every path that reaches it (at least one)."""

    id: str
    display_name: str
    tier: str
    deployment_model: DeploymentModel
    cluster: str
    environment: str
    business_services: tuple[str, ...]
    paths: tuple[ImpactPath, ...]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (the id is the key it is listed under)."""
        return {
            "display_name": self.display_name,
            "tier": self.tier,
            "deployment_model": self.deployment_model.value,
            "cluster": self.cluster,
            "environment": self.environment,
            "business_services": list(self.business_services),
            "paths": [path.as_dict() for path in self.paths],
        }


@dataclass(frozen=True, slots=True)
class ServiceImpact:
    """An affected shared service: targeted, or hosted on a targeted cluster (its paths).

    `shared` is true for a region-wide service or one on a shared cluster; `tenants` counts
    the tenants that use it (all of them are affected).
    """

    id: str
    type: ServiceType
    criticality: Criticality
    environment: str
    cluster: str | None
    shared: bool
    tenants: int
    paths: tuple[ImpactPath, ...]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (the id is the key it is listed under)."""
        return {
            "type": self.type.value,
            "criticality": self.criticality.value,
            "environment": self.environment,
            "cluster": self.cluster,
            "shared": self.shared,
            "tenants": self.tenants,
            "paths": [path.as_dict() for path in self.paths],
        }


@dataclass(frozen=True, slots=True)
class ClusterImpact:
    """A cluster the change touches: targeted, running affected tenants or hosting services."""

    id: str
    mode: ClusterMode
    environment: str
    targeted: bool
    tenants: int
    services: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (the id is the key it is listed under)."""
        return {
            "mode": self.mode.value,
            "environment": self.environment,
            "targeted": self.targeted,
            "tenants": self.tenants,
            "services": list(self.services),
        }


@dataclass(frozen=True, slots=True)
class Impact:
    """Everything a change can hurt, and why; the same inputs always give an equal Impact.

    Mappings are in sorted key order (tenants, services, clusters by id; business services
    by name, each with its sorted tenant ids); counts by tier follow the catalog's tiers from
    the heaviest risk weight down, counts by deployment model the model's declared order.
    """

    catalog_digest: str
    category: Category
    environment: str
    tenants: Mapping[str, TenantImpact]
    business_services: Mapping[str, tuple[str, ...]]
    environments: tuple[str, ...]
    services: Mapping[str, ServiceImpact]
    clusters: Mapping[str, ClusterImpact]
    by_tier: Mapping[str, int]
    by_deployment_model: Mapping[str, int]
    scope: Scope
    scope_reason: str
    summary: str
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape shared by the API and the CLI's --json (docs/impact.md)."""
        return {
            "catalog_digest": self.catalog_digest,
            "category": self.category.value,
            "environment": self.environment,
            "scope": self.scope.value,
            "scope_reason": self.scope_reason,
            "summary": self.summary,
            "counts": {
                "tenants": len(self.tenants),
                "by_tier": dict(self.by_tier),
                "by_deployment_model": dict(self.by_deployment_model),
                "business_services": len(self.business_services),
                "services": len(self.services),
                "clusters": len(self.clusters),
            },
            "environments": list(self.environments),
            "tenants": {ident: tenant.as_dict() for ident, tenant in self.tenants.items()},
            "business_services": {
                name: list(tenants) for name, tenants in self.business_services.items()
            },
            "services": {ident: service.as_dict() for ident, service in self.services.items()},
            "clusters": {ident: cluster.as_dict() for ident, cluster in self.clusters.items()},
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- wording

_USES: dict[ServiceType, str] = {
    ServiceType.POSTGRESQL: "uses PostgreSQL",
    ServiceType.REDIS: "uses Redis",
    ServiceType.TRAEFIK: "is served through Traefik",
    ServiceType.OBJECT_STORAGE: "keeps files and backups in object storage",
    ServiceType.MONITORING: "is monitored by",
}

# Categories aimed at one kind of service: a targeted service of another type is suspicious
# (the change's risk and approvals follow its category), so it is noted, never dropped.
_CATEGORY_SERVICE_TYPES: dict[Category, frozenset[ServiceType]] = {
    Category.DATABASE_CONFIG: frozenset({ServiceType.POSTGRESQL}),
    Category.DATABASE_MIGRATION: frozenset({ServiceType.POSTGRESQL}),
    Category.DATABASE_UPGRADE: frozenset({ServiceType.POSTGRESQL}),
    Category.REDIS_CONFIG: frozenset({ServiceType.REDIS}),
    Category.INGRESS_CONFIG: frozenset({ServiceType.TRAEFIK}),
    Category.MONITORING: frozenset({ServiceType.MONITORING}),
    Category.BACKUP_POLICY: frozenset({ServiceType.POSTGRESQL, ServiceType.OBJECT_STORAGE}),
}

_SELECTOR_FIELDS = ("tier", "odoo_series", "deployment_model", "cluster")

_DIRECT = ImpactPath(PathKind.DIRECT, (), "targeted directly")
_SERVICE_TARGETED = ImpactPath(PathKind.DIRECT, (), "targeted")


def selector_text(selector: TargetSelector) -> str:
    """A selector as `tier=gold, deployment_model=multi-tenant` (fields in a fixed order)."""
    return ", ".join(
        f"{name}={value}"
        for name in _SELECTOR_FIELDS
        if (value := getattr(selector, name)) is not None
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _join(parts: Sequence[str]) -> str:
    if len(parts) > _SUMMARY_TARGETS:
        rest = len(parts) - (_SUMMARY_TARGETS - 1)
        parts = [*parts[: _SUMMARY_TARGETS - 1], f"{rest} more targets"]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _canonical(ids: Iterable[str]) -> list[str]:
    """Targets sorted and deduplicated, so their order in the change never matters."""
    return sorted(set(ids))


def _is_shared(catalog: Catalog, service: Entity[ServiceSpec]) -> bool:
    """Region-wide services and those on a shared cluster serve many customers."""
    if service.spec.cluster is None:
        return True
    cluster = catalog.clusters.get(service.spec.cluster)
    return cluster is None or cluster.spec.mode is ClusterMode.SHARED


@dataclass(frozen=True, slots=True)
class _Reach:
    """How many tenants a targeted service or cluster reaches, for the scope rules."""

    kind: str
    id: str
    shared: bool
    tenants: int


# --------------------------------------------------------------------------- analysis


class _Analysis:
    """The state of one analysis: what reached whom so far, and what to warn about."""

    def __init__(self, catalog: Catalog, spec: ChangeSpec) -> None:
        self.catalog = catalog
        self.spec = spec
        self.index = catalog.index
        # tenant id -> (tenant, paths in the order found); found in canonical target order,
        # so each tenant's paths come out ordered by kind then target with no sorting.
        self.reached: dict[str, tuple[Entity[TenantSpec], list[ImpactPath]]] = {}
        self.services: dict[str, tuple[Entity[ServiceSpec], list[ImpactPath]]] = {}
        self.service_users: dict[str, int] = {}
        self.clusters_targeted: list[str] = []
        self.reaches: list[_Reach] = []
        self.warnings: list[str] = []
        self.summary_parts: list[str] = []

    def add(self, tenants: Iterable[Entity[TenantSpec]], path: ImpactPath) -> None:
        reached = self.reached
        for tenant in tenants:
            found = reached.get(tenant.id)
            if found is None:
                reached[tenant.id] = (tenant, [path])
            else:
                found[1].append(path)

    def other_environment(self, kind: str, ident: str, environment: str, kept: str) -> None:
        if environment != self.spec.environment:
            self.warnings.append(
                f"{kind} {ident} is in {environment}, the change in "
                f"{self.spec.environment}; {kept} kept"
            )

    # ------------------------------------------------------------------ targets

    def named_tenants(self) -> None:
        named = _canonical(self.spec.targets.tenants)
        known = []
        for ident in named:
            tenant = self.catalog.tenants.get(ident)
            if tenant is None:
                self.warnings.append(f"no tenant {ident!r} in the catalog: ignored")
                continue
            self.other_environment("tenant", ident, tenant.spec.environment, "it is")
            known.append(tenant)
        self.add(known, _DIRECT)
        if len(known) == 1:
            self.summary_parts.append(f"a direct target ({known[0].id})")
        elif 1 < len(known) <= 3:
            self.summary_parts.append(f"direct targets ({', '.join(t.id for t in known)})")
        elif known:
            self.summary_parts.append(f"{len(known)} direct targets")

    def named_services(self) -> None:
        expected = _CATEGORY_SERVICE_TYPES.get(self.spec.category)
        for ident in _canonical(self.spec.targets.services):
            service = self.catalog.services.get(ident)
            if service is None:
                self.warnings.append(f"no service {ident!r} in the catalog: ignored")
                continue
            kind = service.spec.type
            if expected is not None and kind not in expected:
                wanted = " or ".join(sorted(t.value for t in expected))
                self.warnings.append(
                    f"service {ident} is {kind.value}; a {self.spec.category.value} change "
                    f"touches {wanted} services"
                )
            self.other_environment("service", ident, service.spec.environment, "its tenants are")
            self.note_service(service, _SERVICE_TARGETED)
            reached = self.through_service(service, None)
            self.reaches.append(
                _Reach("service", ident, _is_shared(self.catalog, service), reached)
            )
            self.summary_parts.append(ident)

    def named_clusters(self) -> None:
        for ident in _canonical(self.spec.targets.clusters):
            cluster = self.catalog.clusters.get(ident)
            if cluster is None:
                self.warnings.append(f"no cluster {ident!r} in the catalog: ignored")
                continue
            self.other_environment("cluster", ident, cluster.spec.environment, "its tenants are")
            self.clusters_targeted.append(ident)
            running = self.index.tenants_by_cluster.get(ident, ())
            self.add(running, ImpactPath(PathKind.CLUSTER, (ident,), f"runs on cluster {ident}"))
            elsewhere: set[str] = set()
            hosted = sorted(self.index.services_by_cluster.get(ident, ()), key=lambda s: s.id)
            for service in hosted:
                self.note_service(
                    service,
                    ImpactPath(PathKind.CLUSTER, (ident,), f"hosted on targeted cluster {ident}"),
                )
                self.through_service(service, ident, elsewhere)
            shared = cluster.spec.mode is ClusterMode.SHARED
            self.reaches.append(_Reach("cluster", ident, shared, len(running) + len(elsewhere)))
            self.summary_parts.append(f"cluster {ident}")

    def selected_tenants(self) -> None:
        environment = self.spec.environment
        by_text = {selector_text(s): s for s in self.spec.targets.selectors}
        for text in sorted(by_text):
            matched = self.select(by_text[text], environment)
            if not matched:
                self.warnings.append(f"selector {text} matches no tenant in {environment}")
            path = ImpactPath(
                PathKind.SELECTOR, (text,), f"matches selector {text} in {environment}"
            )
            self.add(matched, path)
            self.summary_parts.append(f"selector {text}")

    # ------------------------------------------------------------------ helpers

    def note_service(self, service: Entity[ServiceSpec], path: ImpactPath) -> None:
        found = self.services.get(service.id)
        if found is None:
            self.services[service.id] = (service, [path])
        else:
            found[1].append(path)

    def through_service(
        self,
        service: Entity[ServiceSpec],
        cluster: str | None,
        elsewhere: set[str] | None = None,
    ) -> int:
        """Reach every tenant using the service; returns how many (a tenant counts once).

        With a cluster, the service is hosted on that targeted cluster: paths are two-step,
        and the ids of users running on other clusters go into `elsewhere`.
        """
        ident = service.id
        kind, hosted = PathKind.SERVICE, ""
        via: tuple[str, ...] = (ident,)
        if cluster is not None:
            kind, via = PathKind.CLUSTER, (cluster, ident)
            hosted = f", hosted on targeted cluster {cluster}"
        reached = self.reached
        databases = self.index.tenants_by_database_service.get(ident, ())
        for tenant in databases:
            path = ImpactPath(
                kind, via, f"database {tenant.spec.database.name} lives on {ident}{hosted}"
            )
            found = reached.get(tenant.id)
            if found is None:
                reached[tenant.id] = (tenant, [path])
            else:
                found[1].append(path)
        users = self.index.tenants_by_service.get(ident, ())
        # A tenant listing its own database service again is already reached through it.
        if databases and users:
            users = tuple(t for t in users if t.spec.database.service != ident)
        if users:
            self.add(users, ImpactPath(kind, via, f"{_USES[service.spec.type]} {ident}{hosted}"))
        if elsewhere is not None:
            elsewhere.update(t.id for t in databases if t.spec.cluster != cluster)
            elsewhere.update(t.id for t in users if t.spec.cluster != cluster)
        count = len(databases) + len(users)
        self.service_users[ident] = count
        return count

    def select(self, selector: TargetSelector, environment: str) -> list[Entity[TenantSpec]]:
        """Tenants of the environment matching every attribute the selector gives.

        Starts from the smallest of the lookup tables involved, so the work is bounded by
        the narrowest attribute, not by the platform.
        """
        index = self.index
        tables = [index.tenants_by_environment.get(environment, ())]
        if selector.tier is not None:
            tables.append(index.tenants_by_tier.get(selector.tier, ()))
        if selector.odoo_series is not None:
            tables.append(index.tenants_by_odoo_series.get(selector.odoo_series, ()))
        if selector.deployment_model is not None:
            tables.append(index.tenants_by_deployment_model.get(selector.deployment_model, ()))
        if selector.cluster is not None:
            tables.append(index.tenants_by_cluster.get(selector.cluster, ()))
        candidates = min(tables, key=len)
        return [tenant for tenant in candidates if selector_matches(selector, tenant, environment)]

    # ------------------------------------------------------------------ result

    def result(self, platform_wide_tenants: int) -> Impact:
        catalog = self.catalog
        tier_order = sorted(catalog.tiers.values(), key=lambda t: (-t.spec.risk_weight, t.id))
        by_tier = {tier.id: 0 for tier in tier_order}
        by_model = {model.value: 0 for model in DeploymentModel}
        business: dict[str, list[str]] = {}
        on_cluster: dict[str, int] = {}
        tenants: dict[str, TenantImpact] = {}
        for ident in sorted(self.reached):
            entity, paths = self.reached[ident]
            spec = entity.spec
            tenants[ident] = TenantImpact(
                ident,
                spec.display_name,
                spec.tier,
                spec.deployment_model,
                spec.cluster,
                spec.environment,
                tuple(sorted(spec.business_services)),
                tuple(paths),
            )
            by_tier[spec.tier] = by_tier.get(spec.tier, 0) + 1
            by_model[spec.deployment_model] += 1
            on_cluster[spec.cluster] = on_cluster.get(spec.cluster, 0) + 1
            for name in spec.business_services:
                found = business.get(name)
                if found is None:
                    business[name] = [ident]
                else:
                    found.append(ident)
        services = {
            ident: self.service_impact(*self.services[ident]) for ident in sorted(self.services)
        }
        clusters = self.cluster_impacts(on_cluster, services)
        environments = {t.environment for t in tenants.values()}
        environments.update(s.environment for s in services.values())
        environments.update(c.environment for c in clusters.values())
        known = catalog.environments
        ordered = sorted(
            environments,
            key=lambda e: (0, known[e].spec.order, e) if e in known else (1, 0, e),
        )
        scope, reason = _classify(
            len(tenants), self.reaches, platform_wide_tenants, next(iter(tenants), None)
        )
        return Impact(
            catalog_digest=catalog.digest,
            category=self.spec.category,
            environment=self.spec.environment,
            tenants=tenants,
            business_services={name: tuple(business[name]) for name in sorted(business)},
            environments=tuple(ordered),
            services=services,
            clusters=clusters,
            by_tier=by_tier,
            by_deployment_model=by_model,
            scope=scope,
            scope_reason=reason,
            summary=self.summary(len(tenants), by_tier, scope),
            warnings=tuple(self.warnings),
        )

    def service_impact(
        self, service: Entity[ServiceSpec], paths: list[ImpactPath]
    ) -> ServiceImpact:
        spec = service.spec
        return ServiceImpact(
            id=service.id,
            type=spec.type,
            criticality=spec.criticality,
            environment=spec.environment,
            cluster=spec.cluster,
            shared=_is_shared(self.catalog, service),
            tenants=self.service_users[service.id],
            paths=tuple(paths),
        )

    def cluster_impacts(
        self, on_cluster: Mapping[str, int], services: Mapping[str, ServiceImpact]
    ) -> dict[str, ClusterImpact]:
        hosted: dict[str, list[str]] = {}
        for service in services.values():
            if service.cluster is not None:
                hosted.setdefault(service.cluster, []).append(service.id)
        targeted = set(self.clusters_targeted)
        ids = targeted | set(on_cluster) | set(hosted)
        clusters = {}
        for ident in sorted(ids):
            cluster = self.catalog.clusters.get(ident)
            if cluster is None:  # a tenant or service naming an unknown cluster: not built
                continue
            clusters[ident] = ClusterImpact(
                id=ident,
                mode=cluster.spec.mode,
                environment=cluster.spec.environment,
                targeted=ident in targeted,
                tenants=on_cluster.get(ident, 0),
                services=tuple(hosted.get(ident, ())),
            )
        return clusters

    def summary(self, count: int, by_tier: Mapping[str, int], scope: Scope) -> str:
        through = _join(self.summary_parts) or "nothing known to the catalog"
        if count == 0:
            return f"affects no tenant through {through}"
        tiers = ", ".join(f"{n} {tier}" for tier, n in by_tier.items() if n)
        return f"affects {_plural(count, 'tenant')} ({tiers}) through {through}; {scope.value}"


def selector_matches(
    selector: TargetSelector, tenant: Entity[TenantSpec], environment: str
) -> bool:
    """Whether the tenant is in the environment and has every attribute the selector gives."""
    spec = tenant.spec
    return (
        spec.environment == environment
        and (selector.tier is None or spec.tier == selector.tier)
        and (selector.odoo_series is None or spec.odoo.series == selector.odoo_series)
        and (
            selector.deployment_model is None or spec.deployment_model == selector.deployment_model
        )
        and (selector.cluster is None or spec.cluster == selector.cluster)
    )


def _classify(
    tenants: int,
    reaches: Sequence[_Reach],
    platform_wide_tenants: int = PLATFORM_WIDE_TENANTS,
    only: str | None = None,
) -> tuple[Scope, str]:
    """The scope of a change and why, from the tenants it reaches and what it targets.

    - none: no tenant is affected;
    - platform-wide: a targeted shared service (region-wide, or on a shared cluster) or a
      targeted shared cluster reaches more than one tenant, or more than
      `platform_wide_tenants` tenants are affected in all;
    - customer-specific: exactly one tenant, and nothing shared is targeted (its dedicated
      cluster and the services on it are its own);
    - limited: the rest: a few tenants (at most `platform_wide_tenants`) named, selected or
      reached through dedicated infrastructure, or a shared component with one user today.
    """
    if tenants == 0:
        return Scope.NONE, "no tenant is affected"
    wide = [r for r in reaches if r.shared and r.tenants > 1]
    if wide:
        top = max(wide, key=lambda r: (r.tenants, r.kind, r.id))
        return (
            Scope.PLATFORM_WIDE,
            f"shared {top.kind} {top.id} reaches {_plural(top.tenants, 'tenant')}",
        )
    if tenants > platform_wide_tenants:
        return (
            Scope.PLATFORM_WIDE,
            f"{tenants} tenants are affected, more than {platform_wide_tenants}",
        )
    shared = [r for r in reaches if r.shared]
    if tenants == 1 and not shared:
        return Scope.CUSTOMER_SPECIFIC, f"one tenant ({only}) and nothing shared is targeted"
    if tenants == 1:
        first = shared[0]
        return (
            Scope.LIMITED,
            f"one tenant, but shared {first.kind} {first.id} is targeted (no other user today)",
        )
    return (
        Scope.LIMITED,
        f"{tenants} tenants (at most {platform_wide_tenants}) and no shared service or "
        "cluster targeted reaches more than one",
    )


def analyze(
    catalog: Catalog,
    spec: ChangeSpec,
    *,
    platform_wide_tenants: int = PLATFORM_WIDE_TENANTS,
) -> Impact:
    """Everything the change can hurt, each with the paths that explain it.

    Targets the catalog does not know are ignored with a warning (the catalog may have moved
    on since the change was filed); targets in another environment than the change are kept
    with a warning; selectors only select in the change's environment.
    """
    analysis = _Analysis(catalog, spec)
    if spec.environment not in catalog.environments:
        analysis.warnings.append(f"environment {spec.environment!r} is not in the catalog")
    analysis.named_tenants()
    analysis.named_services()
    analysis.named_clusters()
    analysis.selected_tenants()
    return analysis.result(platform_wide_tenants)
