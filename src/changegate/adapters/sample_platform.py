"""Write a realistic sample platform catalog: the starting point of `changegate init`.

The sample is deterministic for a given (tenants, seed): three regions, dev/staging/prod,
shared and dedicated clusters each with PostgreSQL, Redis and Traefik, object storage and
monitoring per region, four tiers, teams and people covering every role, customer approvers,
maintenance windows, a year-end freeze, month-end closing freezes (the last business days of
each month, in the customer's timezone, skipping public holidays) and Belgian, German and US
public holiday calendars for the sample's two years. It scales to
thousands of tenants with the same shape (more clusters, more files), which is what the
catalog benchmark loads.
"""

from __future__ import annotations

import hashlib
import math
import random
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from dateutil import easter

from changegate.domain import catalog
from changegate.errors import InvalidInput, Problem

API_VERSION = catalog.API_VERSION
# Tenants per shared cluster and per multi-tenant Odoo namespace before a new one opens.
TENANTS_PER_CLUSTER = 400
TENANTS_PER_NAMESPACE = 50
# One dedicated cluster (and its one tenant) per this many tenants, at least one.
TENANTS_PER_DEDICATED_CLUSTER = 200
YEAR = 2026
README = """\
# Sample platform catalog

Written by `changegate init`. Every file holds YAML documents with
`apiVersion: changegate.io/v1`, a `kind`, `metadata.name` (the id) and a `spec`.

| file | kinds |
|---|---|
| tiers.yaml | Tier: platinum, gold, silver, bronze |
| environments.yaml | Environment: dev, staging, prod |
| clusters.yaml | Cluster: shared clusters per region, dedicated clusters, staging |
| services/<cluster>.yaml | Service: PostgreSQL, Redis and Traefik on that cluster |
| services/object-storage.yaml, services/monitoring.yaml | Service: region-wide services |
| tenants/<cluster>.yaml | Tenant: the customers hosted on that cluster |
| teams.yaml, people.yaml | Team, Person: who requests, implements, approves, audits |
| windows.yaml | Window: maintenance windows, release windows, freezes, blackouts |
| holidays.yaml | HolidayCalendar: Belgian, German and US public holidays |
| templates.yaml | StandardTemplate: pre-approved standard changes |
| policy.yaml | PolicyConfig, Waiver, PolicyRule: how strict the policy gates are |

The demo users are alice (requester), bob (implementer), carol (approver, platform lead),
dave (CAB), erin (emergency approver), frank (auditor) and grace (admin); customer
approvers are listed under each tenant's `approvers`. See docs/catalog.md for every field.
"""


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(","))


@dataclass(frozen=True)
class _Region:
    name: str
    timezone: str
    zones: tuple[str, ...]
    share: float
    timezones: tuple[str, ...]
    localizations: tuple[str, ...]
    legal_forms: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    maintenance_rrule: str


REGIONS = (
    _Region(
        name="eu-west",
        timezone="Europe/Brussels",
        zones=_words("eu-west-1a, eu-west-1b, eu-west-1c"),
        share=0.45,
        timezones=_words(
            "Europe/Brussels, Europe/Paris, Europe/Amsterdam, Europe/Berlin, Europe/London, "
            "Europe/Madrid"
        ),
        localizations=_words("l10n_be, l10n_fr, l10n_nl, l10n_de, l10n_uk, l10n_es"),
        legal_forms=_words("NV, BV, SA, GmbH, Ltd, SL"),
        first_names=_words(
            "Lotte, Pieter, Amélie, Jonas, Sofia, Lucas, Emma, Thomas, Chloé, Lars, Marie, Javier"
        ),
        last_names=_words(
            "Peeters, Janssens, Dubois, Müller, de Vries, Martin, García, Smith, Lambert, Maes, "
            "Schmidt, Bernard"
        ),
        maintenance_rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0",
    ),
    _Region(
        name="us-east",
        timezone="America/New_York",
        zones=_words("us-east-1a, us-east-1b, us-east-1c"),
        share=0.35,
        timezones=_words("America/New_York, America/Toronto, America/Chicago"),
        localizations=_words("l10n_us, l10n_ca, l10n_us"),
        legal_forms=_words("Inc., LLC, Corp."),
        first_names=_words("Olivia, Liam, Ava, Noah, Mia, Ethan, Harper, Mason, Ella, Logan"),
        last_names=_words(
            "Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Taylor, Anderson, Thomas"
        ),
        maintenance_rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=0",
    ),
    _Region(
        name="ap-southeast",
        timezone="Asia/Singapore",
        zones=_words("ap-southeast-1a, ap-southeast-1b"),
        share=0.2,
        timezones=_words(
            "Asia/Singapore, Australia/Sydney, Asia/Jakarta, Asia/Manila, Pacific/Auckland"
        ),
        localizations=_words("l10n_sg, l10n_au, l10n_id, l10n_ph, l10n_nz"),
        legal_forms=_words("Pte Ltd, Pty Ltd, PT, Inc., Ltd"),
        first_names=_words("Wei, Priya, Jack, Siti, Hiroshi, Chloe, Arjun, Mei, Oliver, Nurul"),
        last_names=_words("Tan, Lim, Wong, Nguyen, Santos, Kumar, Smith, Lee, Ng, Wilson"),
        maintenance_rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=22;BYMINUTE=0",
    ),
)

TIERS = (
    ("platinum", "Platinum", 99.95, 5, 30, 4.0, "Dedicated capacity, 24/7 support."),
    ("gold", "Gold", 99.9, 15, 60, 3.0, "Business-critical ERP with extended support."),
    ("silver", "Silver", 99.5, 60, 240, 2.0, "Standard hosting, business-hours support."),
    ("bronze", "Bronze", 99.0, 240, 1440, 1.0, "Entry level, best-effort support."),
)

COMPANY_WORDS = _words(
    "Acme, Globex, Initech, Umbrella, Stark, Wayne, Hooli, Vandelay, Soylent, Tyrell, "
    "Cyberdyne, Wonka, Oscorp, Aperture, Gringotts, Monarch, Nakatomi, Pied Piper, Prestige, "
    "Sterling, Duff, Krusty, Blue Sun, Dunder, Bluth, Massive, Vehement, Zorg, Ollivander, "
    "Lunar, Polar, Cobalt, Juniper, Harbor, Summit, Meridian, Northwind, Contoso, Fabrikam, "
    "Tailspin, Litware, Proseware, Adatum, Woodgrove, Alpine, Lakeside, Redwood, Granite, "
    "Copper, Silverline, Evergreen, Orchid, Beacon, Atlas, Horizon, Pinnacle, Quantum, Vertex, "
    "Nimbus, Solstice"
)
SECTOR_WORDS = _words(
    "Logistics, Foods, Retail, Manufacturing, Pharma, Textiles, Wines, Engineering, Furniture, "
    "Electronics, Brewing, Cosmetics, Outdoor, Medical, Packaging, Printing, Chemicals, Toys, "
    "Apparel, Bakery, Dairy, Hardware, Energy, Construction, Optics, Marine, Aerospace, "
    "Agritech, Coffee, Tea, Bicycles, Ceramics, Paper, Plastics, Robotics, Seeds, Spices, "
    "Tools, Travel, Consulting"
)
BUSINESS_SERVICES: dict[str, tuple[str, ...]] = {
    "order-to-cash": ("sale_management", "account", "stock"),
    "invoicing": ("account", "account_followup"),
    "inventory": ("stock", "stock_barcode"),
    "projects": ("project", "hr_timesheet"),
    "integrations": ("base_automation", "queue_job"),
    "manufacturing": ("mrp", "quality_control"),
    "payroll": ("hr", "hr_payroll"),
    "ecommerce": ("website_sale", "payment_stripe"),
    "procure-to-pay": ("purchase", "account"),
    "crm": ("crm",),
    "helpdesk": ("helpdesk",),
    "point-of-sale": ("point_of_sale",),
    "field-service": ("industry_fsm",),
}
# Month-end closing freezes protect tenants whose books close on those days.
FINANCE_SERVICES = frozenset({"order-to-cash", "invoicing", "payroll", "procure-to-pay"})
# Business days of month-end closing; the public holidays that are not business days, by
# the customer's timezone (other timezones count Monday to Friday only).
MONTH_END_BUSINESS_DAYS = 2
HOLIDAYS_BY_TIMEZONE = {
    "Europe/Brussels": "be-public",
    "Europe/Berlin": "de-public",
    "America/New_York": "us-federal",
}
ODOO_SERIES = (("16.0", 0.2), ("17.0", 0.5), ("18.0", 0.3))

STAFF: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("alice", "Alice Martin", ("platform",), ("requester",)),
    ("bob", "Bob Janssens", ("platform", "sre"), ("implementer",)),
    ("carol", "Carol Dubois", ("platform",), ("approver", "platform-lead")),
    ("dave", "Dave Peeters", ("cab",), ("cab",)),
    ("erin", "Erin Walsh", ("sre",), ("emergency-approver", "implementer")),
    ("frank", "Frank Müller", ("audit",), ("auditor",)),
    ("grace", "Grace Lee", ("platform",), ("admin",)),
    ("heidi", "Heidi Novak", ("dba",), ("implementer", "approver")),
    ("ivan", "Ivan Petrov", ("security",), ("approver", "cab")),
    ("judy", "Judy Tan", ("customer-success",), ("requester",)),
    ("oscar", "Oscar Silva", ("sre",), ("implementer", "emergency-approver")),
    ("peggy", "Peggy Moreau", ("cab", "platform"), ("cab", "approver")),
)
TEAMS = (
    ("platform", "Platform", "Builds and runs the Kubernetes platform.", "carol"),
    ("sre", "Site Reliability", "On call; owns monitoring and incident response.", "erin"),
    ("dba", "Database Administration", "PostgreSQL clusters, backups and upgrades.", "heidi"),
    ("security", "Security", "Vulnerability management, secrets and access.", "ivan"),
    ("cab", "Change Advisory Board", "Reviews high-risk and emergency changes.", "dave"),
    ("audit", "Internal Audit", "Reads the audit trail and exports evidence.", "frank"),
    ("customer-success", "Customer Success", "Speaks for the customers.", "judy"),
)


# Pre-approved standard changes: id, name, categories, what they may target, risk ceiling.
TEMPLATES: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    (
        "renew-tenant-tls",
        "Renew the TLS certificate of one tenant",
        ("secrets-rotation",),
        "medium",
        "Issue the new certificate with cert-manager, check the chain and expiry on the "
        "tenant's hostnames, keep the old secret until the new one serves.",
    ),
    (
        "scale-odoo-workers",
        "Scale the Odoo workers of one tenant within its tier's limits",
        ("tenant-config",),
        "medium",
        "Change the tenant's worker count and memory limits in its values file; the tier "
        "sets the bounds.",
    ),
)


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    """The nth (1-based; -1 for the last) Monday (0) ... Sunday (6) of a month."""
    if nth > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _us_observed(day: date) -> date:
    # A federal holiday on a Saturday is observed on the Friday before, on a Sunday the
    # Monday after (5 U.S.C. 6103).
    shift = {5: -1, 6: 1}.get(day.weekday(), 0)
    return day + timedelta(days=shift)


def _holidays(country: str, year: int) -> list[tuple[date, str]]:
    """A country's public holidays in a year, computed from the rules (Easter from dateutil)."""
    sunday = easter.easter(year)
    if country == "be":
        return [
            (date(year, 1, 1), "New Year's Day"),
            (sunday + timedelta(days=1), "Easter Monday"),
            (date(year, 5, 1), "Labour Day"),
            (sunday + timedelta(days=39), "Ascension Day"),
            (sunday + timedelta(days=50), "Whit Monday"),
            (date(year, 7, 21), "Belgian National Day"),
            (date(year, 8, 15), "Assumption Day"),
            (date(year, 11, 1), "All Saints' Day"),
            (date(year, 11, 11), "Armistice Day"),
            (date(year, 12, 25), "Christmas Day"),
        ]
    if country == "de":
        return [
            (date(year, 1, 1), "Neujahr"),
            (sunday - timedelta(days=2), "Karfreitag"),
            (sunday + timedelta(days=1), "Ostermontag"),
            (date(year, 5, 1), "Tag der Arbeit"),
            (sunday + timedelta(days=39), "Christi Himmelfahrt"),
            (sunday + timedelta(days=50), "Pfingstmontag"),
            (date(year, 10, 3), "Tag der Deutschen Einheit"),
            (date(year, 12, 25), "1. Weihnachtstag"),
            (date(year, 12, 26), "2. Weihnachtstag"),
        ]
    fixed = [
        (date(year, 1, 1), "New Year's Day"),
        (date(year, 6, 19), "Juneteenth National Independence Day"),
        (date(year, 7, 4), "Independence Day"),
        (date(year, 11, 11), "Veterans Day"),
        (date(year, 12, 25), "Christmas Day"),
    ]
    found = [
        (_us_observed(day), name if _us_observed(day) == day else f"{name} (observed)")
        for day, name in fixed
    ]
    found += [
        (_nth_weekday(year, 1, 0, 3), "Birthday of Martin Luther King, Jr."),
        (_nth_weekday(year, 2, 0, 3), "Washington's Birthday"),
        (_nth_weekday(year, 5, 0, -1), "Memorial Day"),
        (_nth_weekday(year, 9, 0, 1), "Labor Day"),
        (_nth_weekday(year, 10, 0, 2), "Columbus Day"),
        (_nth_weekday(year, 11, 3, 4), "Thanksgiving Day"),
    ]
    next_new_year = date(year + 1, 1, 1)
    if next_new_year.weekday() == 5:  # observed on 31 December of this year
        found.append((next_new_year - timedelta(days=1), "New Year's Day (observed)"))
    # 1 January on a Saturday was observed the year before.
    return sorted((day, name) for day, name in found if day.year == year)


HOLIDAY_CALENDARS = (
    ("be-public", "be", "Belgian public holidays", "The ten legal public holidays of Belgium."),
    (
        "de-public",
        "de",
        "German public holidays",
        "The nationwide public holidays of Germany (regional ones are not listed).",
    ),
    (
        "us-federal",
        "us",
        "US federal holidays",
        "US federal holidays, on the days they are observed.",
    ),
)


def holiday_calendars(years: tuple[int, ...] = (YEAR, YEAR + 1)) -> list[dict[str, Any]]:
    """The sample's HolidayCalendar documents for the given years."""
    return [
        _document(
            "HolidayCalendar",
            ident,
            {
                "display_name": name,
                "description": text,
                "dates": [
                    {"date": day.isoformat(), "name": holiday}
                    for year in years
                    for day, holiday in _holidays(country, year)
                ],
            },
        )
        for ident, country, name, text in HOLIDAY_CALENDARS
    ]


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block-style YAML without anchors, so every document reads on its own.

    libyaml's emitter when there: ten thousand tenants dump in about two seconds.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(documents: list[dict[str, Any]]) -> str:
    text: str = yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=100,
    )
    return text


def _document(kind: str, name: str, spec: dict[str, Any], **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in _ascii(text).lower())
    return "-".join(part for part in cleaned.split("-") if part)


def _sha(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


@dataclass
class _Tenant:
    id: str
    name: str
    region: _Region
    environment: str
    model: str
    tier: str
    timezone: str
    localization: str
    business_services: list[str]
    series: str
    cluster: str = ""
    namespace: str = ""
    approvers: tuple[str, ...] = ()
    twin_of: str | None = None


class _Sample:
    """Builds every document of the sample from one seeded random generator."""

    def __init__(self, tenants: int, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
        self.total = tenants
        self.used_ids: set[str] = set()
        self.used_people: set[str] = {person[0] for person in STAFF}
        self.tenants: list[_Tenant] = []
        self.clusters: list[dict[str, Any]] = []
        self.customer_people: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ tenants

    def unique(self, base: str, used: set[str]) -> str:
        candidate, number = base[:55].strip("-"), 2
        while candidate in used:
            candidate = f"{base[:55].strip('-')}-{number}"
            number += 1
        used.add(candidate)
        return candidate

    def new_tenant(self, region: _Region, model: str, tier: str) -> _Tenant:
        rng = self.rng
        words = f"{rng.choice(COMPANY_WORDS)} {rng.choice(SECTOR_WORDS)}"
        ident = self.unique(_slug(words), self.used_ids)
        place = rng.randrange(len(region.timezones))
        services = [
            "invoicing",
            *rng.sample(sorted(set(BUSINESS_SERVICES) - {"invoicing"}), rng.randint(1, 4)),
        ]
        series = rng.choices([s for s, _ in ODOO_SERIES], [w for _, w in ODOO_SERIES])[0]
        return _Tenant(
            id=ident,
            name=f"{words} {rng.choice(region.legal_forms)}",
            region=region,
            environment="prod",
            model=model,
            tier=tier,
            timezone=region.timezones[place],
            localization=region.localizations[place],
            business_services=services,
            series=series,
        )

    def plan_tenants(self) -> None:
        rng = self.rng
        dedicated = max(1, self.total // TENANTS_PER_DEDICATED_CLUSTER)
        staging = max(1, self.total // 12) if self.total > dedicated + 1 else 0
        shared = self.total - dedicated - staging
        for index in range(dedicated):
            self.tenants.append(
                self.new_tenant(REGIONS[index % len(REGIONS)], "dedicated-cluster", "platinum")
            )
        for _ in range(shared):
            region = rng.choices(REGIONS, [r.share for r in REGIONS])[0]
            if rng.random() < 0.25:
                model, tier = "dedicated-namespace", rng.choice(("platinum", "gold", "gold"))
            else:
                model = "multi-tenant"
                tier = rng.choices(("gold", "silver", "bronze"), (0.2, 0.45, 0.35))[0]
            self.tenants.append(self.new_tenant(region, model, tier))
        # Staging twins of the most demanding customers rehearse changes before production.
        rank = [tier[0] for tier in TIERS]
        demanding = sorted(self.tenants, key=lambda t: rank.index(t.tier))
        for original in demanding[:staging]:
            ident = self.unique(f"{original.id[:50]}-staging", self.used_ids)
            self.tenants.append(
                _Tenant(
                    id=ident,
                    name=f"{original.name} (staging)",
                    region=REGIONS[0],
                    environment="staging",
                    model="multi-tenant",
                    tier=original.tier,
                    timezone=original.timezone,
                    localization=original.localization,
                    business_services=list(original.business_services),
                    series=original.series,
                    twin_of=original.id,
                )
            )

    # ------------------------------------------------------------------ clusters

    def cluster(self, ident: str, region: _Region, mode: str, environment: str) -> None:
        pools = [
            {"name": "system", "machine_type": "n2-standard-4", "min_nodes": 3, "max_nodes": 3},
            {
                "name": "odoo",
                "machine_type": "n2-highmem-8",
                "min_nodes": 3,
                "max_nodes": 24 if mode == "shared" else 6,
            },
        ]
        spec = {
            "display_name": f"{region.name} {environment} ({mode})",
            "mode": mode,
            "environment": environment,
            "region": region.name,
            "zones": list(region.zones),
            "kubernetes_version": self.rng.choice(("1.30", "1.31")),
            "provider": "gke" if region.name != "us-east" else "eks",
            "owner": "platform",
            "node_pools": pools,
        }
        self.clusters.append(
            _document("Cluster", ident, spec, region=region.name, environment=environment)
        )

    def place_tenants(self) -> None:
        """Assign clusters and namespaces: dedicated clusters first, then shared shards."""
        dedicated_count: dict[str, int] = defaultdict(int)
        by_region: dict[str, list[_Tenant]] = defaultdict(list)
        for tenant in self.tenants:
            if tenant.environment == "staging":
                tenant.cluster, tenant.namespace = "eu-west-staging-1", "odoo-staging"
            elif tenant.model == "dedicated-cluster":
                dedicated_count[tenant.region.name] += 1
                tenant.cluster = (
                    f"{tenant.region.name}-dedicated-{dedicated_count[tenant.region.name]}"
                )
                tenant.namespace = "odoo"
                self.cluster(tenant.cluster, tenant.region, "dedicated", "prod")
            else:
                by_region[tenant.region.name].append(tenant)
        for region in REGIONS:
            tenants = by_region[region.name]
            shards = max(1, math.ceil(len(tenants) / TENANTS_PER_CLUSTER))
            for shard in range(shards):
                self.cluster(f"{region.name}-prod-{shard + 1}", region, "shared", "prod")
            namespace_fill: dict[str, int] = defaultdict(int)
            for index, tenant in enumerate(tenants):
                tenant.cluster = f"{region.name}-prod-{index % shards + 1}"
                if tenant.model == "dedicated-namespace":
                    tenant.namespace = f"odoo-{tenant.id}"[:63].rstrip("-")
                else:
                    slot = namespace_fill[tenant.cluster]
                    namespace_fill[tenant.cluster] += 1
                    tenant.namespace = f"odoo-mt-{slot // TENANTS_PER_NAMESPACE + 1}"
        self.cluster("eu-west-staging-1", REGIONS[0], "shared", "staging")

    # ------------------------------------------------------------------ services

    def cluster_services(self, cluster: dict[str, Any]) -> list[dict[str, Any]]:
        ident = cluster["metadata"]["name"]
        spec = cluster["spec"]
        env, region, dedicated = spec["environment"], spec["region"], spec["mode"] == "dedicated"
        storage = "objects-staging" if env == "staging" else f"objects-{region}"
        criticality = "medium" if env == "staging" else "high" if dedicated else "critical"
        common = {"criticality": criticality, "environment": env, "cluster": ident}
        postgresql = {
            "type": "postgresql",
            "display_name": f"PostgreSQL on {ident}",
            **common,
            "owner": "dba",
            "postgresql": {
                "version": "16",
                "instances": 3 if env == "prod" else 1,
                "operator": "cloudnative-pg",
                "parameters": {
                    "max_connections": 400 if not dedicated else 200,
                    "shared_buffers": "8GB",
                    "work_mem": "32MB",
                    "log_min_duration_statement": 2000,
                },
                "backup": {"object_storage": storage, "retention_days": 35 if env == "prod" else 7},
            },
        }
        redis = {
            "type": "redis",
            "display_name": f"Redis on {ident}",
            **common,
            "owner": "platform",
            "redis": {
                "version": "7.2",
                "mode": "sentinel" if env == "prod" else "standalone",
                "replicas": 2 if env == "prod" else 0,
                "maxmemory_policy": "allkeys-lru",
                "persistence": "rdb",
            },
        }
        traefik = {
            "type": "traefik",
            "display_name": f"Traefik on {ident}",
            **common,
            "owner": "platform",
            "traefik": {
                "version": "3.1",
                "entrypoints": [
                    {"name": "web", "address": ":80"},
                    {"name": "websecure", "address": ":443"},
                ],
                "certificate_resolvers": ["letsencrypt"],
            },
        }
        labels = {"cluster": ident}
        return [
            _document("Service", f"pg-{ident}", postgresql, **labels),
            _document("Service", f"redis-{ident}", redis, **labels),
            _document("Service", f"traefik-{ident}", traefik, **labels),
        ]

    def region_services(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        storage, monitoring = [], []
        for region in REGIONS:
            storage.append(
                _document(
                    "Service",
                    f"objects-{region.name}",
                    {
                        "type": "object-storage",
                        "criticality": "high",
                        "environment": "prod",
                        "owner": "platform",
                        "object-storage": {
                            "provider": "s3",
                            "bucket": f"odoo-backups-{region.name}",
                            "region": region.name,
                        },
                    },
                    region=region.name,
                )
            )
            monitoring.append(
                _document(
                    "Service",
                    f"monitoring-{region.name}",
                    {
                        "type": "monitoring",
                        "criticality": "high",
                        "environment": "prod",
                        "owner": "sre",
                        "monitoring": {
                            "prometheus_url": f"https://prometheus.{region.name}.ops.example.com",
                            "alertmanager_url": f"https://alertmanager.{region.name}.ops.example.com",
                            "grafana_url": f"https://grafana.{region.name}.ops.example.com",
                            "retention_days": 30,
                        },
                    },
                    region=region.name,
                )
            )
        storage.append(
            _document(
                "Service",
                "objects-staging",
                {
                    "type": "object-storage",
                    "criticality": "low",
                    "environment": "staging",
                    "owner": "platform",
                    "object-storage": {
                        "provider": "s3",
                        "bucket": "odoo-backups-staging",
                        "region": "eu-west",
                    },
                },
            )
        )
        monitoring.append(
            _document(
                "Service",
                "monitoring-staging",
                {
                    "type": "monitoring",
                    "criticality": "low",
                    "environment": "staging",
                    "cluster": "eu-west-staging-1",
                    "owner": "sre",
                    "monitoring": {"prometheus_url": "https://prometheus.staging.ops.example.com"},
                },
            )
        )
        return storage, monitoring

    # ------------------------------------------------------------------ people

    def customer_approvers(self) -> None:
        approvers_of: dict[str, tuple[str, ...]] = {}
        people: dict[str, dict[str, Any]] = {}
        for tenant in self.tenants:
            if tenant.twin_of is not None:
                tenant.approvers = approvers_of[tenant.twin_of]
                for person in tenant.approvers:
                    people[person]["spec"]["tenants"].append(tenant.id)
                continue
            count = 2 if tenant.tier == "platinum" else 1
            chosen = []
            for _ in range(count):
                first = self.rng.choice(tenant.region.first_names)
                last = self.rng.choice(tenant.region.last_names)
                ident = self.unique(_slug(f"{first} {last}"), self.used_people)
                email = f"{_slug(first)}.{_slug(last)}@{tenant.id}.example.com"
                people[ident] = _document(
                    "Person",
                    ident,
                    {
                        "display_name": f"{first} {last}",
                        "email": email,
                        "roles": ["customer-approver"],
                        "tenants": [tenant.id],
                    },
                )
                chosen.append(ident)
            tenant.approvers = tuple(chosen)
            approvers_of[tenant.id] = tenant.approvers
        self.customer_people = list(people.values())

    # ------------------------------------------------------------------ documents

    def tenant_document(self, tenant: _Tenant) -> dict[str, Any]:
        rng = self.rng
        modules = {"base", "web", tenant.localization}
        for service in tenant.business_services:
            modules.update(BUSINESS_SERVICES[service])
        if tenant.model == "multi-tenant":
            image = f"registry.example.com/odoo/odoo:{tenant.series}-20260301"
            digest = _sha("odoo", tenant.series)
        else:
            build = rng.randint(1, 40)
            image = f"registry.example.com/customers/{tenant.id}/odoo:{tenant.series}-{build}"
            digest = _sha("custom", tenant.id)
        cluster = tenant.cluster
        services = [f"redis-{cluster}", f"traefik-{cluster}"]
        if tenant.environment == "prod":
            services += [f"objects-{tenant.region.name}", f"monitoring-{tenant.region.name}"]
        else:
            services += ["objects-staging", "monitoring-staging"]
        domain = f"{tenant.twin_of or tenant.id}.example.com"
        contacts = []
        for role in ("business-owner", "technical", "billing")[: rng.randint(1, 3)]:
            first = rng.choice(tenant.region.first_names)
            last = rng.choice(tenant.region.last_names)
            contacts.append(
                {
                    "name": f"{first} {last}",
                    "role": role,
                    "email": f"{_slug(first)}.{_slug(last)}@{domain}",
                }
            )
        spec = {
            "display_name": tenant.name,
            "tier": tenant.tier,
            "environment": tenant.environment,
            "deployment_model": tenant.model,
            "cluster": cluster,
            "namespace": tenant.namespace,
            "database": {"service": f"pg-{cluster}", "name": tenant.id.replace("-", "_")},
            "services": services,
            "odoo": {
                "series": tenant.series,
                "image": f"{image}@sha256:{digest}",
                "modules": sorted(modules),
            },
            "business_services": tenant.business_services,
            "timezone": tenant.timezone,
            "contacts": contacts,
            "approvers": list(tenant.approvers),
        }
        return _document("Tenant", tenant.id, spec, tier=tenant.tier, region=tenant.region.name)

    def windows(self) -> list[dict[str, Any]]:
        windows = []
        for region in REGIONS:
            windows.append(
                _document(
                    "Window",
                    f"maintenance-{region.name}",
                    {
                        "type": "allow",
                        "purpose": "maintenance",
                        "description": f"Weekly maintenance for {region.name}, in local time.",
                        "timezone": region.timezone,
                        "rrule": region.maintenance_rrule,
                        "duration": "4h",
                        "scope": {"clusters": [f"{region.name}-*"]},
                        "allow_overrun": True,
                    },
                )
            )
        windows.append(
            _document(
                "Window",
                "release-staging",
                {
                    "type": "allow",
                    "purpose": "release",
                    "description": "Staging releases, Tuesday to Thursday office hours.",
                    "timezone": "Europe/Brussels",
                    "cron": "0 9 * * 2-4",
                    "duration": "6h",
                    "scope": {"clusters": ["*-staging-*"]},
                },
            )
        )
        windows.append(
            _document(
                "Window",
                "year-end-freeze",
                {
                    "type": "deny",
                    "purpose": "freeze",
                    "reason": "Year-end closing: no changes until the books are closed.",
                    "timezone": "UTC",
                    "start": f"{YEAR}-12-18",
                    "end": f"{YEAR + 1}-01-04",
                    "scope": {"global": True},
                    "exempt": {"types": ["emergency"], "categories": ["security-patch"]},
                },
            )
        )
        # Month-end closing, in each customer's own timezone: the last business days of the
        # month, whole local days, skipping the public holidays of that timezone's country.
        by_timezone: dict[str, list[str]] = defaultdict(list)
        for tenant in self.tenants:
            finance = FINANCE_SERVICES.intersection(tenant.business_services)
            if tenant.environment == "prod" and tenant.tier in ("platinum", "gold") and finance:
                by_timezone[tenant.timezone].append(tenant.id)
        for timezone, tenant_ids in sorted(by_timezone.items()):
            generator: dict[str, Any] = {
                "kind": "month-end",
                "business_days": MONTH_END_BUSINESS_DAYS,
            }
            if timezone in HOLIDAYS_BY_TIMEZONE:
                generator["holidays"] = HOLIDAYS_BY_TIMEZONE[timezone]
            windows.append(
                _document(
                    "Window",
                    f"month-end-close-{_slug(timezone)}",
                    {
                        "type": "deny",
                        "purpose": "freeze",
                        "reason": "Month-end closing for finance-heavy customers.",
                        "timezone": timezone,
                        "generator": generator,
                        "scope": {"tenants": tenant_ids},
                        "exempt": {"types": ["emergency"], "consent": True},
                    },
                )
            )
        shops = [
            t
            for t in self.tenants
            if "ecommerce" in t.business_services and t.environment == "prod"
        ][:3]
        for tenant in shops:
            windows.append(
                _document(
                    "Window",
                    f"black-friday-{tenant.id}"[:63].rstrip("-"),
                    {
                        "type": "deny",
                        "purpose": "blackout",
                        "reason": "Black Friday peak: the web shop must not change.",
                        "timezone": tenant.timezone,
                        "start": f"{YEAR}-11-26T00:00:00",
                        "end": f"{YEAR}-12-01T00:00:00",
                        "scope": {"tenants": [tenant.id]},
                        "exempt": {"types": ["emergency"]},
                    },
                )
            )
        return windows

    def files(self) -> dict[str, str]:
        """Relative path -> YAML text for every file of the sample."""
        self.plan_tenants()
        self.place_tenants()
        self.customer_approvers()
        files: dict[str, str] = {"README.md": README}
        files["tiers.yaml"] = _dump(
            [
                _document(
                    "Tier",
                    ident,
                    {
                        "display_name": name,
                        "description": text,
                        "availability_target": target,
                        "rpo_minutes": rpo,
                        "rto_minutes": rto,
                        "risk_weight": weight,
                    },
                )
                for ident, name, target, rpo, rto, weight, text in TIERS
            ]
        )
        files["environments.yaml"] = _dump(
            [
                _document(
                    "Environment",
                    ident,
                    {"display_name": name, "order": order, "production": ident == "prod"},
                )
                for ident, name, order in (
                    ("dev", "Development", 10),
                    ("staging", "Staging", 20),
                    ("prod", "Production", 30),
                )
            ]
        )
        files["clusters.yaml"] = _dump(self.clusters)
        for cluster in self.clusters:
            name = cluster["metadata"]["name"]
            files[f"services/{name}.yaml"] = _dump(self.cluster_services(cluster))
        storage, monitoring = self.region_services()
        files["services/object-storage.yaml"] = _dump(storage)
        files["services/monitoring.yaml"] = _dump(monitoring)
        by_cluster: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tenant in self.tenants:
            by_cluster[tenant.cluster].append(self.tenant_document(tenant))
        for cluster_name, documents in by_cluster.items():
            files[f"tenants/{cluster_name}.yaml"] = _dump(documents)
        files["teams.yaml"] = _dump(
            [
                _document("Team", ident, {"display_name": name, "description": text, "lead": lead})
                for ident, name, text, lead in TEAMS
            ]
        )
        staff = [
            _document(
                "Person",
                ident,
                {
                    "display_name": name,
                    "email": f"{ident}@ops.example.com",
                    "teams": list(teams),
                    "roles": list(roles),
                },
            )
            for ident, name, teams, roles in STAFF
        ]
        files["people.yaml"] = _dump(staff + self.customer_people)
        files["windows.yaml"] = _dump(self.windows())
        files["holidays.yaml"] = _dump(holiday_calendars())
        files["templates.yaml"] = _dump(
            [
                _document(
                    "StandardTemplate",
                    ident,
                    {
                        "display_name": name,
                        "version": 1,
                        "owner": "platform",
                        "categories": list(categories),
                        "environments": ["staging", "prod"],
                        "targets": {"tenants": {"min": 1, "max": 1}},
                        "max_risk_class": ceiling,
                        "procedure": procedure,
                    },
                )
                for ident, name, categories, ceiling, procedure in TEMPLATES
            ]
        )
        files["policy.yaml"] = _dump(self.policy())
        return files

    def policy(self) -> list[dict[str, Any]]:
        """The policy gates: settings, one waiver, one custom CEL rule (docs/policy.md)."""
        dedicated = next(
            (t for t in self.tenants if t.model == "dedicated-namespace"), self.tenants[0]
        )
        return [
            _document(
                "PolicyConfig",
                "gates",
                {
                    "description": "Images from our registries only; platinum is critical.",
                    "allowed_registries": ["registry.example.com", "ghcr.io/acme-odoo"],
                    "critical_tiers": ["platinum"],
                    "non_waivable": ["k8s.privileged", "k8s.runtime-socket"],
                },
            ),
            _document(
                "Waiver",
                "legacy-exporter-root",
                {
                    "rule": "k8s.run-as-non-root",
                    "selector": {
                        "namespace": dedicated.namespace,
                        "kind": "Deployment",
                        "container": "legacy-exporter",
                    },
                    "reason": "The vendor's exporter runs as root until its 2.x release.",
                    "owner": "bob",
                    "approved_by": "carol",
                    "expires": "2030-12-31",
                },
            ),
            _document(
                "PolicyRule",
                "tenant-label",
                {
                    "title": "Tenant workloads carry the changegate.io/tenant label",
                    "severity": "warning",
                    "match": {
                        "kinds": ["Deployment", "StatefulSet"],
                        "namespaces": ["odoo-*"],
                    },
                    "expression": (
                        "has(object.metadata.labels) && "
                        "'changegate.io/tenant' in object.metadata.labels"
                    ),
                    "message": "the workload has no changegate.io/tenant label",
                    "rationale": "Cost reports and incident views group workloads by tenant.",
                    "remediation": "Add metadata.labels.changegate.io/tenant: <tenant id>.",
                },
            ),
        ]


def write_sample(
    directory: Path, tenants: int = 48, seed: int = 7, *, force: bool = False
) -> list[Path]:
    """Write the sample platform into directory and return the files written.

    Refuses a non-empty directory unless force is set, so `changegate init` never mixes a
    sample into someone's catalog by accident; with force, files of the same name are
    overwritten and others are left alone.
    """
    if tenants < 1:
        raise InvalidInput([Problem("the sample needs at least one tenant", field="tenants")])
    if directory.exists() and not directory.is_dir():
        raise InvalidInput([Problem("not a directory", file=str(directory))])
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise InvalidInput(
            [Problem("directory is not empty (use force to write anyway)", file=str(directory))]
        )
    written = []
    for relative, text in _Sample(tenants, seed).files().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
