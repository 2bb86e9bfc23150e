"""Builders for small, valid catalogs that tests then break one field at a time."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

API = "changegate.io/v1"
IMAGE = "registry.example.com/odoo/odoo:17.0-20260301@sha256:" + "a" * 64

# file name -> documents in it
Platform = dict[str, list[dict[str, Any]]]


def doc(kind: str, name: str, spec: dict[str, Any], **labels: str) -> dict[str, Any]:
    """One catalog document."""
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": API, "kind": kind, "metadata": metadata, "spec": spec}


def tenant_spec(**overrides: Any) -> dict[str, Any]:
    """A valid multi-tenant tenant on shared-1, with overrides."""
    spec: dict[str, Any] = {
        "display_name": "Acme Logistics NV",
        "tier": "gold",
        "environment": "prod",
        "deployment_model": "multi-tenant",
        "cluster": "shared-1",
        "namespace": "odoo-mt-1",
        "database": {"service": "pg-1", "name": "acme"},
        "services": ["redis-1", "traefik-1", "objects", "monitoring"],
        "odoo": {"series": "17.0", "image": IMAGE, "modules": ["account", "sale_management"]},
        "business_services": ["invoicing", "order-to-cash"],
        "timezone": "Europe/Brussels",
        "contacts": [{"name": "Lotte Peeters", "email": "lotte@acme.example", "role": "technical"}],
        "approvers": ["lotte"],
    }
    spec.update(overrides)
    return spec


def window(name: str, **spec: Any) -> dict[str, Any]:
    """A Window document: a global allow window in UTC unless spec says otherwise (a deny
    window defaults to purpose freeze)."""
    base: dict[str, Any] = {
        "type": "allow",
        "purpose": "freeze" if spec.get("type") == "deny" else "maintenance",
        "timezone": "UTC",
        "scope": {"global": True},
    }
    return doc("Window", name, {**base, **spec})


def holiday_calendar(name: str, *dates: str, **spec: Any) -> dict[str, Any]:
    """A HolidayCalendar document with the given ISO dates (each named after itself)."""
    body: dict[str, Any] = {
        "display_name": name.replace("-", " ").title(),
        "dates": [{"date": day, "name": f"Holiday {day}"} for day in dates],
    }
    return doc("HolidayCalendar", name, {**body, **spec})


def extra_tenant(name: str, **overrides: Any) -> dict[str, Any]:
    """Another valid multi-tenant tenant like acme (own database, no approvers)."""
    spec = tenant_spec(
        display_name=name.title(),
        database={"service": "pg-1", "name": name.replace("-", "_")},
        approvers=[],
    )
    spec.update(overrides)
    return doc("Tenant", name, spec)


def platform() -> Platform:
    """A small platform with every kind, valid as it stands."""
    return {
        "tiers.yaml": [
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
            doc(
                "Tier",
                "bronze",
                {
                    "display_name": "Bronze",
                    "availability_target": 99,
                    "rpo_minutes": 240,
                    "rto_minutes": 1440,
                    "risk_weight": 1.0,
                },
            ),
        ],
        "environments.yaml": [
            doc("Environment", "staging", {"display_name": "Staging", "order": 20}),
            doc(
                "Environment",
                "prod",
                {"display_name": "Production", "order": 30, "production": True},
            ),
        ],
        "clusters.yaml": [
            doc(
                "Cluster",
                "shared-1",
                {
                    "mode": "shared",
                    "environment": "prod",
                    "region": "eu-west",
                    "zones": ["eu-west-1a"],
                    "kubernetes_version": "1.30",
                    "owner": "platform",
                    "node_pools": [{"name": "odoo", "min_nodes": 3, "max_nodes": 9}],
                },
            ),
            doc(
                "Cluster",
                "dedicated-1",
                {
                    "mode": "dedicated",
                    "environment": "prod",
                    "region": "eu-west",
                    "zones": ["eu-west-1b"],
                    "kubernetes_version": "1.31",
                },
            ),
        ],
        "services.yaml": [
            doc(
                "Service",
                "pg-1",
                {
                    "type": "postgresql",
                    "criticality": "critical",
                    "environment": "prod",
                    "cluster": "shared-1",
                    "postgresql": {
                        "version": "16",
                        "instances": 3,
                        "parameters": {
                            "max_connections": 400,
                            "shared_buffers": "8GB",
                            "jit": False,
                        },
                        "backup": {"object_storage": "objects", "retention_days": 35},
                    },
                },
            ),
            doc(
                "Service",
                "redis-1",
                {
                    "type": "redis",
                    "criticality": "high",
                    "environment": "prod",
                    "cluster": "shared-1",
                    "redis": {"version": "7.2", "mode": "sentinel"},
                },
            ),
            doc(
                "Service",
                "traefik-1",
                {
                    "type": "traefik",
                    "criticality": "critical",
                    "environment": "prod",
                    "cluster": "shared-1",
                    "traefik": {
                        "version": "3.1",
                        "entrypoints": [{"name": "websecure", "address": ":443"}],
                    },
                },
            ),
            doc(
                "Service",
                "objects",
                {
                    "type": "object-storage",
                    "criticality": "high",
                    "environment": "prod",
                    "object-storage": {
                        "provider": "s3",
                        "bucket": "odoo-backups",
                        "region": "eu-west",
                    },
                },
            ),
            doc(
                "Service",
                "monitoring",
                {
                    "type": "monitoring",
                    "criticality": "high",
                    "environment": "prod",
                    "monitoring": {"prometheus_url": "https://prometheus.example.com"},
                },
            ),
        ],
        "tenants.yaml": [doc("Tenant", "acme", tenant_spec(), tier="gold")],
        "teams.yaml": [doc("Team", "platform", {"display_name": "Platform", "lead": "carol"})],
        "people.yaml": [
            doc(
                "Person",
                "alice",
                {
                    "display_name": "Alice",
                    "email": "alice@ops.example.com",
                    "teams": ["platform"],
                    "roles": ["requester"],
                },
            ),
            doc(
                "Person",
                "carol",
                {
                    "display_name": "Carol",
                    "email": "carol@ops.example.com",
                    "teams": ["platform"],
                    "roles": ["approver", "platform-lead"],
                },
            ),
            doc(
                "Person",
                "lotte",
                {
                    "display_name": "Lotte Peeters",
                    "email": "lotte@acme.example",
                    "roles": ["customer-approver"],
                    "tenants": ["acme"],
                },
            ),
        ],
        "windows.yaml": [
            doc(
                "Window",
                "sunday",
                {
                    "type": "allow",
                    "purpose": "maintenance",
                    "timezone": "Europe/Brussels",
                    "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
                    "duration": "4h",
                    "scope": {"clusters": ["shared-*", "dedicated-1"]},
                },
            ),
            doc(
                "Window",
                "staging-releases",
                {
                    "type": "allow",
                    "purpose": "release",
                    "timezone": "UTC",
                    "cron": "0 9 * * 2-4",
                    "duration": "PT6H",
                    "scope": {"tiers": ["gold"]},
                },
            ),
            doc(
                "Window",
                "year-end",
                {
                    "type": "deny",
                    "purpose": "freeze",
                    "timezone": "UTC",
                    "start": "2026-12-18",
                    "end": "2027-01-04",
                    "scope": {"global": True},
                    "exempt": {"types": ["emergency"], "categories": ["security-patch"]},
                },
            ),
        ],
    }


def find(files: Platform, kind: str, name: str) -> dict[str, Any]:
    """The document of that kind and name, to change in place."""
    for documents in files.values():
        for document in documents:
            if document["kind"] == kind and document["metadata"]["name"] == name:
                return document
    raise KeyError((kind, name))


def with_spec(files: Platform, kind: str, name: str, **changes: Any) -> Platform:
    """A copy of files where one entity's spec has the given fields set (None deletes)."""
    changed = copy.deepcopy(files)
    spec = find(changed, kind, name)["spec"]
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return changed


@dataclass(frozen=True)
class FakeDocument:
    """A parsed document without a file behind it: every path is located at its start."""

    file: str
    index: int
    line: int
    data: Any

    def locate(self, path: tuple[str | int, ...]) -> int | None:
        return self.line


def documents(files: Platform) -> list[FakeDocument]:
    """The platform as parsed documents, numbered by file and position (10 lines apart)."""
    return [
        FakeDocument(name, index, 1 + index * 10, copy.deepcopy(document))
        for name, docs in files.items()
        for index, document in enumerate(docs)
    ]


def dump(docs: list[dict[str, Any]]) -> str:
    """Documents as multi-document block YAML."""
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)


def write(root: Path, files: Platform) -> Path:
    """Write the platform as YAML files under root and return root."""
    root.mkdir(parents=True, exist_ok=True)
    for name, docs in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(docs), encoding="utf-8")
    return root
