"""Module drift, the pure part: installed modules against the catalog's list, what it needs,
and the recorded baseline (docs/odoo.md, "Module drift")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from changegate.domain.odoo import drift
from changegate.domain.odoo.addons import Addon, AddonSet, Installed
from changegate.errors import InvalidInput

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def database(
    modules: dict[str, str | None],
    *,
    checksums: dict[str, str] | None = None,
    languages: tuple[str, ...] = ("en_US",),
    pending: dict[str, str] | None = None,
) -> drift.DatabaseModules:
    return drift.DatabaseModules(
        installed=Installed(modules, checksums, languages, source="acme on pg-1"),
        pending=pending or {},
    )


def baseline(
    modules: dict[str, str | None],
    *,
    checksums: dict[str, str] | None = None,
    languages: tuple[str, ...] = ("en_US",),
) -> drift.Baseline:
    recorded = drift.Baseline.of(
        "acme",
        Installed(modules, checksums, languages, source="acme on pg-1"),
        change_id="CHG-4",
        recorded_at=AT,
        recorded_by="alice",
    )
    return drift.Baseline.from_body(recorded.body(), recorded_at=AT, recorded_by="alice", seq=7)


def addons(*items: Addon) -> AddonSet:
    return AddonSet("17.0", {addon.name: addon for addon in items}, source="addons/")


BASE = {"base": "17.0.1.3", "sale": "17.0.1.2", "account": "17.0.1.4"}


def test_no_drift_when_the_database_matches_the_catalog_and_the_baseline() -> None:
    found = drift.compare(
        "acme",
        database(BASE, checksums={"sale": "aa"}),
        approved=["sale", "account"],
        baseline=baseline(BASE, checksums={"sale": "aa"}),
    )
    assert not found.found
    assert found.installed == 3 and found.source == "acme on pg-1"
    assert found.as_dict()["found"] is False
    assert found.notices == ()


def test_names_drift_against_the_catalog_without_a_baseline() -> None:
    found = drift.compare(
        "acme",
        database({**BASE, "website": "17.0.1.0"}),
        approved=["sale", "account", "stock"],
        baseline=None,
    )
    assert found.unapproved == ("website",)  # base is always approved
    assert found.missing == ("stock",)
    assert found.versions == () and found.removed == ()
    assert found.found
    assert any("no baseline recorded" in notice for notice in found.notices)
    assert any("no addons given" in notice for notice in found.notices)


def test_the_baseline_approves_its_modules_and_versions_are_compared_numerically() -> None:
    recorded = baseline({**BASE, "mail": "17.0.1.15", "web": "17.0.1.0"})
    found = drift.compare(
        "acme",
        database({**BASE, "mail": "17.0.1.9", "web": "17.0.1.0.0", "sale": "17.0.1.10"}),
        approved=["sale", "account"],
        baseline=recorded,
    )
    assert found.unapproved == ()  # mail and web: in the baseline
    # 17.0.1.0.0 == 17.0.1.0 (trailing zeros); 1.10 > 1.2 and 1.9 < 1.15 numerically.
    assert [change.as_dict() for change in found.versions] == [
        {
            "module": "mail",
            "approved": "17.0.1.15",
            "installed": "17.0.1.9",
            "direction": "downgraded",
        },
        {
            "module": "sale",
            "approved": "17.0.1.2",
            "installed": "17.0.1.10",
            "direction": "upgraded",
        },
    ]


def test_removed_since_the_baseline_unless_the_catalog_lists_it() -> None:
    found = drift.compare(
        "acme",
        database({"base": "17.0.1.3"}),
        approved=["sale"],
        baseline=baseline({**BASE, "website": "17.0.1.0"}),
    )
    assert found.missing == ("sale",)
    assert found.removed == ("account", "website")


def test_same_version_with_another_stored_checksum_is_drift() -> None:
    found = drift.compare(
        "acme",
        database(BASE, checksums={"sale": "new", "account": "same"}),
        approved=["sale", "account"],
        baseline=baseline(BASE, checksums={"sale": "old", "account": "same"}),
    )
    assert found.checksums == ("sale",)
    assert found.versions == ()
    assert found.found


def test_checksums_are_not_compared_when_either_side_has_none() -> None:
    found = drift.compare(
        "acme",
        database(BASE, checksums=None),
        approved=["sale", "account"],
        baseline=baseline(BASE, checksums={"sale": "old"}),
    )
    assert found.checksums == () and not found.found


def test_a_version_unknown_on_one_side_is_a_change() -> None:
    found = drift.compare(
        "acme",
        database({**BASE, "sale": None}),
        approved=["sale", "account"],
        baseline=baseline(BASE),
    )
    assert [c.direction for c in found.versions] == ["changed"]


def test_pending_states_are_drift_and_languages_a_notice() -> None:
    found = drift.compare(
        "acme",
        database(BASE, pending={"sale": "to upgrade"}, languages=("en_US", "fr_BE")),
        approved=["sale", "account"],
        baseline=baseline(BASE, languages=("en_US", "nl_BE")),
    )
    assert found.pending == {"sale": "to upgrade"}
    assert found.found
    assert any("+fr_BE, -nl_BE" in notice for notice in found.notices)


def test_addons_approve_what_the_catalogs_modules_need() -> None:
    given = addons(
        Addon("base", "17.0.1.3"),
        Addon("mail", "17.0.1.15", depends=("base",)),
        Addon("sale", "17.0.1.2", depends=("mail", "product")),
        Addon("product", "17.0.1.2", depends=("base",)),
        # boolean form: every dependency present
        Addon("sale_mail", "17.0.1.0", depends=("sale", "mail"), auto_install=True),
        # list form: triggered by `sale` alone, then brings its other dependency
        Addon("sale_stock", "17.0.1.0", depends=("sale", "stock"), auto_install=("sale",)),
        Addon("stock", "17.0.1.0", depends=("product",)),
        # not triggered: website is not needed
        Addon("website_sale", "17.0.1.0", depends=("website", "sale"), auto_install=True),
        Addon("website", "17.0.1.0", depends=("base",)),
        # not installable: never auto-installed
        Addon("sale_old", "17.0.1.0", depends=("sale",), auto_install=True, installable=False),
    )
    assert drift.required_by(["sale"], given) == {
        "sale",
        "mail",
        "product",
        "base",
        "sale_mail",
        "sale_stock",
        "stock",
    }
    installed = dict.fromkeys(
        ["base", "mail", "sale", "product", "sale_mail", "sale_stock", "stock", "website"],
        "17.0.1.0",
    )
    found = drift.compare(
        "acme", database(installed), approved=["sale", "l10n_be"], baseline=None, addons=given
    )
    assert found.unapproved == ("website",)
    assert found.missing == ("l10n_be",)
    assert any("not in the addons given" in n and "l10n_be" in n for n in found.notices)


def test_the_baseline_survives_its_audit_body() -> None:
    recorded = drift.Baseline.of(
        "acme",
        Installed({"sale": "17.0.1.2", "base": None}, {"sale": "aa"}, ("nl_BE", "en_US"), "x"),
        change_id=None,
        recorded_at=AT,
        recorded_by="carol",
    )
    body = recorded.body()
    assert body == {
        "tenant": "acme",
        "source": "x",
        "change_id": None,
        "modules": {"base": None, "sale": "17.0.1.2"},
        "checksums": {"sale": "aa"},
        "languages": ["en_US", "nl_BE"],
    }
    back = drift.Baseline.from_body(body, recorded_at=AT, recorded_by="carol", seq=3)
    assert back.modules == recorded.modules and back.checksums == recorded.checksums
    assert back.as_dict()["audit_seq"] == 3
    assert back.as_dict()["recorded_at"].startswith("2026-03-02T09:30:00")


def test_an_audit_body_without_modules_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no module baseline"):
        drift.Baseline.from_body({"tenant": "acme"}, recorded_at=AT, recorded_by="x", seq=9)
