"""Builders for test data: small functions with sensible defaults, overridden per test."""

from __future__ import annotations

from typing import Any

from changegate.domain import changes

IMAGE = {"ref": "registry.example.com/odoo/odoo:17.0-20261120", "digest": "sha256:" + "a" * 64}


def change_data(**overrides: Any) -> dict[str, Any]:
    """JSON-shaped ChangeSpec data valid against the sample platform from `changegate init`.

    It ships no image: a production change with one must show promotion evidence from
    staging (tests that need an image pass `artifacts={"images": [IMAGE]}`)."""
    data: dict[str, Any] = {
        "title": "Update sale_stock for order-to-cash fix",
        "justification": "Customers report wrong reserved quantities on partial deliveries.",
        "type": "normal",
        "category": "module-update",
        "environment": "prod",
        "targets": {"tenants": [], "selectors": [{"tier": "gold"}]},
        "implementation_plan": "Roll out image; run -u sale_stock per tenant database.",
        "test_plan": "Regression suite on staging copies of three tenants.",
        "rollback_plan": {
            "steps": "Revert the image; restore the pre-change backup.",
            "tested": True,
        },
        "implementer": "bob",
    }
    data.update(overrides)
    return data


def change_spec(**overrides: Any) -> changes.ChangeSpec:
    return changes.validate_spec(change_data(**overrides), source=None)


def change_yaml(**overrides: Any) -> str:
    """A change file (apiVersion/kind/spec) as YAML text."""
    import yaml

    document = {
        "apiVersion": changes.API_VERSION,
        "kind": changes.KIND,
        "spec": change_data(**overrides),
    }
    return yaml.safe_dump(document, sort_keys=False)
