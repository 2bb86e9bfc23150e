"""Impact + risk benchmark: a change reaching about half of the platform's tenants.

    python bench/bench_impact.py [--tenants 10000] [--repeat 20] [--freeze]

Writes the sample platform with N tenants to a temporary folder and loads it (not timed),
then builds a change whose targets reach about half the tenants: whole shared clusters (each
tenant on them reached by its cluster and, in two steps, by the PostgreSQL, Redis and Traefik
hosted there), the Redis of the next cluster, a selector and a few tenants by name. It times
`impact.analyze` (first call, which also builds the catalog's lookup tables, then best and
median of repeat) and `Impact.as_dict`, then `risk.assess` on the same change after its
impact (policy from `RiskPolicy.of(catalog)`, built once as the service builds it per call,
and an empty team history) and impact + risk together, against a baseline taken in the same
run: a bare loop over every tenant reading the spec attributes impact looks at. The target
is 100 ms for impact plus risk at 10,000 tenants.

Python's cyclic collector is left on, as in a server: after the load one `gc.collect()`
settles the load's garbage, and "worst" shows whether a full collection (which walks the
whole catalog) landed in a timed call. `--freeze` moves the catalog out of the collector's
sight with `gc.freeze()` first, as a long-running process may do after loading a catalog.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from changegate.adapters import catalog_files, sample_platform
from changegate.domain import catalog as catalog_model
from changegate.domain import changes, impact, risk


def timings(repeat: int, action: Callable[[], object]) -> list[float]:
    """Seconds taken by each of `repeat` runs."""
    found = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        found.append(time.perf_counter() - start)
    return found


def bare_loop(catalog: catalog_model.Catalog) -> int:
    """Read, for every tenant, the attributes impact analysis reads: the floor of a scan."""
    count = 0
    for tenant in catalog.tenants.values():
        spec = tenant.spec
        values = (
            spec.tier,
            spec.deployment_model,
            spec.cluster,
            spec.environment,
            spec.database.service,
            spec.database.name,
            spec.services,
            spec.business_services,
            spec.odoo.series,
        )
        count += len(values)
    return count


def impact_and_risk(
    catalog: catalog_model.Catalog, change: changes.ChangeRequest, history: risk.TeamHistory
) -> risk.Assessment:
    """What the assess service computes outside its transaction: impact, policy, risk."""
    return risk.assess(
        change, impact.analyze(catalog, change.spec), risk.RiskPolicy.of(catalog), history
    )


def half_the_platform(catalog: catalog_model.Catalog) -> dict[str, Any]:
    """Targets reaching about half the tenants, taken from the catalog itself."""
    want = len(catalog.tenants) // 2
    by_cluster = catalog.index.tenants_by_cluster
    shared = sorted(
        cluster.id
        for cluster in catalog.clusters.values()
        if cluster.spec.mode is catalog_model.ClusterMode.SHARED
        and cluster.spec.environment == "prod"
    )
    clusters: list[str] = []
    reached = 0
    for ident in shared:
        size = len(by_cluster.get(ident, ()))
        if reached + size > want * 0.9:
            break
        clusters.append(ident)
        reached += size
    rest = shared[len(clusters) :]
    services = [f"redis-{rest[0]}"] if rest else []
    named = [t.id for t in by_cluster.get(rest[1], ())][:25] if len(rest) > 1 else []
    return {
        "title": "Kubernetes node pool rotation on half the platform",
        "category": "infrastructure",
        "environment": "prod",
        "targets": {
            "clusters": clusters,
            "services": services,
            "tenants": named,
            "selectors": [{"tier": "platinum", "deployment_model": "dedicated-namespace"}],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after the load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sample_platform.write_sample(root, tenants=args.tenants)
        start = time.perf_counter()
        catalog = catalog_files.load_catalog(root)
        loaded = time.perf_counter() - start
        print(f"catalog: {len(catalog.tenants)} tenants, loaded in {loaded:.2f} s")
    # The change's targets come from the catalog's tables: build them outside the timing,
    # on a second catalog object, so the first timed call still builds its own tables.
    probe = catalog_model.Catalog(
        digest=catalog.digest, commit=None, root=catalog.root, entities=catalog.entities
    )
    spec = changes.validate_spec(half_the_platform(probe), source=None)
    del probe
    gc.collect()
    if args.freeze:
        gc.freeze()
    targets = spec.targets
    print(
        f"change: {len(targets.clusters)} clusters, {len(targets.services)} service, "
        f"{len(targets.tenants)} named tenants, {len(targets.selectors)} selector"
    )

    start = time.perf_counter()
    result = impact.analyze(catalog, spec)
    first = time.perf_counter() - start
    paths = sum(len(t.paths) for t in result.tenants.values())
    print(
        f"affected: {len(result.tenants)} of {len(catalog.tenants)} tenants, {paths} paths, "
        f"{len(result.services)} services, {len(result.clusters)} clusters; scope {result.scope}"
    )
    print(f"summary: {result.summary}")

    baseline = timings(args.repeat, lambda: bare_loop(catalog))
    analyze = timings(args.repeat, lambda: impact.analyze(catalog, spec))
    as_dict = timings(args.repeat, result.as_dict)
    print(
        f"(a) bare loop over {len(catalog.tenants)} tenants: best {min(baseline) * 1e3:.2f} ms, "
        f"median {statistics.median(baseline) * 1e3:.2f} ms"
    )
    print(f"(b) impact.analyze, first call (builds lookup tables): {first * 1e3:.2f} ms")
    print(
        f"(b) impact.analyze: best {min(analyze) * 1e3:.2f} ms, "
        f"median {statistics.median(analyze) * 1e3:.2f} ms, worst {max(analyze) * 1e3:.2f} ms"
    )
    print(
        f"(c) Impact.as_dict: best {min(as_dict) * 1e3:.2f} ms, "
        f"median {statistics.median(as_dict) * 1e3:.2f} ms"
    )
    print(
        f"ratio b/a (best): {min(analyze) / min(baseline):.2f}; "
        f"median: {statistics.median(analyze) / statistics.median(baseline):.2f}"
    )

    change = changes.new_change(1, spec, "bench", datetime(2026, 11, 2, tzinfo=UTC))
    history = risk.TeamHistory.empty(spec.category)
    policy = risk.RiskPolicy.of(catalog)
    assessment = risk.assess(change, result, policy, history)
    print(
        f"risk: score {assessment.score} {assessment.risk_class.value}; "
        + ", ".join(f"{f.name} {f.points:+d}" for f in assessment.factors)
    )
    policies = timings(args.repeat, lambda: risk.RiskPolicy.of(catalog))
    scoring = timings(args.repeat, lambda: risk.assess(change, result, policy, history))
    both = timings(args.repeat, lambda: impact_and_risk(catalog, change, history))
    print(
        f"(d) RiskPolicy.of: best {min(policies) * 1e3:.3f} ms, "
        f"median {statistics.median(policies) * 1e3:.3f} ms"
    )
    print(
        f"(e) risk.assess after impact: best {min(scoring) * 1e3:.3f} ms, "
        f"median {statistics.median(scoring) * 1e3:.3f} ms, worst {max(scoring) * 1e3:.3f} ms"
    )
    print(
        f"(f) impact + risk (analyze, policy, assess): best {min(both) * 1e3:.2f} ms, "
        f"median {statistics.median(both) * 1e3:.2f} ms, worst {max(both) * 1e3:.2f} ms"
    )
    print(
        f"ratio f/a (best): {min(both) / min(baseline):.2f}; "
        f"median: {statistics.median(both) / statistics.median(baseline):.2f}"
    )


if __name__ == "__main__":
    main()
