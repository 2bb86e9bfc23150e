"""Calendar benchmarks: the earliest common slot and wave planning.

    python bench/bench_calendar.py [--slot-tenants 2000] [--wave-tenants 10000] [--repeat 5]

1. Earliest common slot for N tenants (default 2,000), each with its own weekly maintenance
   window (Sunday night, a different start minute and a Central European timezone per
   tenant: its own rule, nothing shared, all overlapping 03:00-06:00) plus a global
   month-end freeze (the last 2 business days of each
   month), over a 90-day horizon: `calendar.allowed_intervals` for every tenant, then
   `scheduling.earliest_slot` over all of them. Target: 1 s.
2. Wave planning for M tenants (default 10,000) in 20 window groups over 90 days:
   `scheduling.plan` with 50 tenants per wave. Target: 2 s.

Each is measured against a baseline in the same run: sorting the very intervals the step
reads (a floor for any algorithm that looks at all of them). The catalog is built in memory
(not timed); each timed run uses a fresh catalog copy so the calendar's per-catalog caches
start cold, as after a catalog reload.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from changegate.domain import calendar, scheduling
from changegate.domain import catalog as catalog_model

IMAGE = "registry.example.com/odoo/odoo:17.0-20270101@sha256:" + "a" * 64
START = datetime(2027, 2, 1, tzinfo=UTC)
HORIZON = timedelta(days=90)
ZONES = ("Europe/Brussels", "Europe/Paris", "Europe/Berlin", "Europe/Amsterdam", "Europe/Rome")


def doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "changegate.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def weekly(index: int, *, spread: bool) -> str:
    """Per tenant: Sunday nights, starting 00:00-02:59 for 6 hours (every rule differs, all
    share 03:00-06:00, so a common slot exists). Per group: spread over the week."""
    if spread:
        return f"FREQ=WEEKLY;BYDAY={DAYS[index % 7]};BYHOUR={(index * 5) % 18};BYMINUTE=0"
    return f"FREQ=WEEKLY;BYDAY=SU;BYHOUR={index % 3};BYMINUTE={(index // 3) % 60}"


def platform(tenants: int, groups: int | None) -> list[dict[str, Any]]:
    """Documents of a platform: one cluster, one PostgreSQL, `tenants` tenants, a weekly
    window per tenant (or per group of tenants) and a global month-end freeze."""
    docs = [
        doc(
            "Tier",
            "gold",
            {
                "display_name": "Gold",
                "availability_target": 99.9,
                "rpo_minutes": 15,
                "rto_minutes": 60,
                "risk_weight": 3,
            },
        ),
        doc("Environment", "prod", {"display_name": "Production", "order": 30, "production": True}),
        doc(
            "Cluster",
            "c1",
            {
                "mode": "shared",
                "environment": "prod",
                "region": "eu-west",
                "zones": ["eu-west-1a"],
                "kubernetes_version": "1.30",
            },
        ),
        doc(
            "Service",
            "pg1",
            {
                "type": "postgresql",
                "criticality": "critical",
                "environment": "prod",
                "cluster": "c1",
                "postgresql": {"version": "16", "instances": 3},
            },
        ),
        doc(
            "Window",
            "month-end",
            {
                "type": "deny",
                "purpose": "freeze",
                "timezone": "UTC",
                "generator": {"kind": "month-end", "business_days": 2},
                "scope": {"global": True},
            },
        ),
    ]
    for index in range(tenants):
        name = f"t{index:05d}"
        docs.append(
            doc(
                "Tenant",
                name,
                {
                    "display_name": name,
                    "tier": "gold",
                    "environment": "prod",
                    "deployment_model": "multi-tenant",
                    "cluster": "c1",
                    "namespace": name,
                    "database": {"service": "pg1", "name": name},
                    "odoo": {"series": "17.0", "image": IMAGE},
                    "timezone": "UTC",
                },
            )
        )
    count = tenants if groups is None else groups
    for index in range(count):
        scope = (
            {"tenants": [f"t{index:05d}"]}
            if groups is None
            else {"tenants": [f"t{t:05d}" for t in range(index, tenants, groups)]}
        )
        docs.append(
            doc(
                "Window",
                f"weekly-{index:05d}",
                {
                    "type": "allow",
                    "purpose": "maintenance",
                    "timezone": ZONES[index % len(ZONES)],
                    "rrule": weekly(index, spread=groups is not None),
                    "duration": "6h",
                    "scope": scope,
                },
            )
        )
    return docs


@dataclass(frozen=True)
class Doc:
    """A document without a file behind it (the DocumentLike the catalog builder takes)."""

    file: str
    index: int
    line: int
    data: Any

    def locate(self, path: tuple[str | int, ...]) -> int | None:
        return self.line


def build(documents: list[dict[str, Any]]) -> catalog_model.Catalog:
    return catalog_model.build(
        [Doc("bench.yaml", i, i + 1, d) for i, d in enumerate(documents)],
        digest=f"sha256:{time.perf_counter_ns():064x}"[-71:],
        commit=None,
        root="bench",
    )


def best_and_median(repeat: int, action: Callable[[], object]) -> tuple[float, float]:
    found = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        found.append(time.perf_counter() - start)
    return min(found), statistics.median(found)


def slot_bench(tenants: int, repeat: int) -> None:
    documents = platform(tenants, None)
    ids = [f"t{i:05d}" for i in range(tenants)]
    until = START + HORIZON
    duration = timedelta(hours=2)
    catalogs = [build(documents) for _ in range(repeat + 1)]
    free_lists: list[list[scheduling.Interval]] = []

    def run() -> None:
        catalog = catalogs.pop()
        free = [calendar.allowed_intervals(catalog, t, START, until) for t in ids]
        free_lists[:] = free
        scheduling.earliest_slot(free, duration, START, until)

    # The first run expands every rule (cold); later ones find the expansions cached (a
    # schedule's occurrences are kept per month whatever the catalog).
    cold, _ = best_and_median(1, run)
    best, median = best_and_median(repeat, run)
    flat = [interval for free in free_lists for interval in free]
    _, base_median = best_and_median(repeat, lambda: sorted(flat))
    slot = scheduling.earliest_slot(free_lists, duration, START, until)
    print(
        f"earliest common slot, {tenants} tenants, {len(flat)} free intervals, 90 days: "
        f"cold {cold * 1000:.1f} ms, warm best {best * 1000:.1f} ms, median "
        f"{median * 1000:.1f} ms (target 1000 ms); baseline sort of the intervals "
        f"{base_median * 1000:.2f} ms; ratio cold {cold / base_median:.0f}x, warm "
        f"{median / base_median:.0f}x; slot {slot}"
    )


def wave_bench(tenants: int, repeat: int) -> None:
    documents = platform(tenants, 20)
    catalog = build(documents)
    ids = [f"t{i:05d}" for i in range(tenants)]
    until = START + HORIZON
    free = {t: calendar.allowed_intervals(catalog, t, START, until) for t in ids}
    infos = [
        scheduling.TenantSlotInfo(id=t, tier="gold", tier_rank=0, deployment_model="multi-tenant")
        for t in ids
    ]
    duration = timedelta(hours=2)
    plans: list[scheduling.Plan] = []

    def run() -> None:
        plans.append(scheduling.plan(infos, free, duration, START, until, max_per_wave=50))

    best, median = best_and_median(repeat, run)
    flat = [interval for intervals in free.values() for interval in intervals]
    _, base_median = best_and_median(repeat, lambda: sorted(flat))
    plan = plans[-1]
    print(
        f"wave planning, {tenants} tenants in 20 window groups, 90 days: best "
        f"{best * 1000:.1f} ms, median {median * 1000:.1f} ms (target 2000 ms); baseline sort "
        f"of the intervals {base_median * 1000:.2f} ms; ratio {median / base_median:.1f}x; "
        f"{len(plan.waves)} waves, {len(plan.unscheduled)} unscheduled"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slot-tenants", type=int, default=2000)
    parser.add_argument("--wave-tenants", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    slot_bench(args.slot_tenants, args.repeat)
    wave_bench(args.wave_tenants, args.repeat)


if __name__ == "__main__":
    main()
