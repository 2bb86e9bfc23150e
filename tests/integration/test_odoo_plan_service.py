"""The planner as a use case, on the real store (SQLite and PostgreSQL): plans read from
addons folders for catalog tenants, and a plan recorded on a change raising its category and
risk, requiring a backup, the restore of databases on rollback, and the windows that hold
database changes back (docs/odoo-plan.md).

The addons trees are synthetic, written for this project from the sample tenant's modules.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from changegate import bootstrap
from changegate.domain import calendar
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import Category
from changegate.domain.odoo.plan import Policy, TenantPlan
from changegate.errors import InvalidInput, NotFound
from changegate.services import assessments as assessment_service
from changegate.services import changes as change_service
from changegate.services import odoo as odoo_service
from changegate.services import rollout as rollout_service
from changegate.services.context import Context, actor_for
from tests.factories import change_spec
from tests.integration.test_gitops_git import commit, git

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
IN_THE_FREEZE = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)  # the sample's year-end freeze
MIGRATE = "def migrate(cr, version):\n    cr.execute('UPDATE account_move SET name = name')\n"


def at(catalog: catalog_model.Catalog, person: str) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: NOW)


def a_tenant(catalog: catalog_model.Catalog, series: str = "17.0") -> str:
    return next(
        t
        for t, e in sorted(catalog.tenants.items())
        if e.spec.odoo.series == series and e.spec.environment == "prod"
    )


def write_release(
    root: Path, modules: list[str], series: str, *, account: str, scripts: dict[str, str]
) -> Path:
    """An addons path holding every module of the tenant (Odoo's own included: the planner
    needs the whole addons path), `account` at the given version with the given scripts."""
    for name in [*modules, "acme_extra"]:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        depends = [] if name == "base" else ["base"]
        if name in ("account_followup", "acme_extra"):
            depends = ["account"]
        version = account if name == "account" else f"{series}.1.0"
        manifest = {"name": name, "version": version, "depends": depends}
        (folder / "__manifest__.py").write_text(
            "# synthetic, written for changegate's tests\n" + repr(manifest) + "\n"
        )
        (folder / "__init__.py").write_text("")
    for relative, text in scripts.items():
        path = root / "account" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def releases(tmp_path: Path, catalog: catalog_model.Catalog, tenant: str) -> tuple[Path, Path]:
    modules = list(catalog.tenants[tenant].spec.odoo.modules)
    series = catalog.tenants[tenant].spec.odoo.series
    before = write_release(tmp_path / "r1", modules, series, account=f"{series}.1.0", scripts={})
    after = write_release(
        tmp_path / "r2",
        modules,
        series,
        account=f"{series}.1.1",
        scripts={f"migrations/{series}.1.1/pre-rename_moves.py": MIGRATE},
    )
    return before, after


def plans_for(app: bootstrap.App, tenant: str, before: Path, after: Path) -> list[TenantPlan]:
    catalog = app.catalog()
    sources = odoo_service.Sources(str(before), str(after))
    return odoo_service.plan(catalog, at(catalog, "alice"), sources, [tenant])


def test_a_plan_from_folders_for_a_catalog_tenant(app: bootstrap.App, tmp_path: Path) -> None:
    catalog = app.catalog()
    tenant = a_tenant(catalog)
    before, after = releases(tmp_path, catalog, tenant)
    (found,) = plans_for(app, tenant, before, after)
    spec = catalog.tenants[tenant].spec
    assert (found.tenant, found.database, found.installed_source) == (
        tenant,
        spec.database.name,
        "catalog",
    )
    assert {u.module: u.reason for u in found.update} == {
        "account": "version 17.0.1.0 -> 17.0.1.1",
        "account_followup": "depends on an updated module",
    }
    assert [s.path for _, s in found.scripts] == ["migrations/17.0.1.1/pre-rename_moves.py"]
    # Checksums are read for folders whatever the policy: the version bump is also a content
    # change, so the policies agree here.
    assert found.disagreements == ()
    (by_checksum,) = odoo_service.plan(
        catalog,
        at(catalog, "alice"),
        odoo_service.Sources(str(before), str(after)),
        [tenant],
        policy=Policy.CHECKSUM,
    )
    assert [u.module for u in by_checksum.update] == ["account", "account_followup"]


def test_a_plan_with_migration_scripts_raises_the_changes_category_and_risk(
    app: bootstrap.App, tmp_path: Path
) -> None:
    catalog = app.catalog()
    tenant = a_tenant(catalog)
    alice = at(catalog, "alice")
    spec = change_spec(
        category="security-patch",
        targets={"tenants": [tenant], "selectors": []},
        implementation_plan="Roll out the patched image.",
    )
    change = change_service.create(app.engine, catalog, alice, spec)
    assert not rollout_service.touches_databases(change)
    assert not rollout_service.irreversible(change)
    first = assessment_service.assess(app.engine, catalog, alice, change.id)

    before, after = releases(tmp_path, catalog, tenant)
    plans = plans_for(app, tenant, before, after)
    recorded = odoo_service.apply_to_change(app.engine, catalog, alice, change.id, plans)

    assert recorded.spec.category is Category.DATABASE_MIGRATION
    assert recorded.spec.rollback_plan.irreversible is True
    assert recorded.spec.rollback_plan.steps == spec.rollback_plan.steps  # kept
    text = recorded.spec.implementation_plan
    assert text.startswith("Roll out the patched image.\n\n<!-- changegate odoo plan -->")
    assert f"- {tenant} (" in text and "update account, account_followup" in text
    assert (
        "Why: 1 migration script(s) will run: account: migrations/17.0.1.1/pre-rename_moves.py"
        in text
    )
    # The rollout backs the databases up before each wave and restores them on rollback.
    assert rollout_service.touches_databases(recorded)
    assert rollout_service.irreversible(recorded)

    second = assessment_service.assess(app.engine, catalog, alice, change.id)
    assert second.score > first.score
    assert first.factor("category").points < second.factor("category").points
    assert second.factor("category").reason.startswith("database-migration changes")
    assert "irreversible, only a restore undoes it" in second.factor("rollback").reason
    assert "irreversible" not in first.factor("rollback").reason

    # The year-end freeze lets security patches through, not database migrations.
    patch = calendar.decide(
        catalog, tenant, IN_THE_FREEZE, change_type="normal", category=change.spec.category
    )
    assert "year-end-freeze" in patch.exempted
    migration = calendar.decide(
        catalog, tenant, IN_THE_FREEZE, change_type="normal", category=recorded.spec.category
    )
    assert not migration.allowed
    assert "year-end-freeze" in migration.reason

    # Recording the same plan again replaces the section rather than appending another.
    again = odoo_service.apply_to_change(app.engine, catalog, alice, change.id, plans)
    assert again.spec.implementation_plan.count("<!-- changegate odoo plan -->") == 1


def test_a_plan_without_scripts_makes_a_release_a_module_update(
    app: bootstrap.App, tmp_path: Path
) -> None:
    catalog = app.catalog()
    tenant = a_tenant(catalog)
    alice = at(catalog, "alice")
    spec = change_spec(
        category="application-release", targets={"tenants": [tenant], "selectors": []}
    )
    change = change_service.create(app.engine, catalog, alice, spec)
    modules = list(catalog.tenants[tenant].spec.odoo.modules)
    before = write_release(tmp_path / "r1", modules, "17.0", account="17.0.1.0", scripts={})
    after = write_release(tmp_path / "r2", modules, "17.0", account="17.0.1.1", scripts={})
    plans = plans_for(app, tenant, before, after)
    recorded = odoo_service.apply_to_change(app.engine, catalog, alice, change.id, plans)
    assert recorded.spec.category is Category.MODULE_UPDATE
    assert recorded.spec.rollback_plan.irreversible is False
    assert rollout_service.touches_databases(recorded)  # backed up all the same
    assert not rollout_service.irreversible(recorded)


def test_a_plan_with_errors_is_not_recorded(app: bootstrap.App, tmp_path: Path) -> None:
    catalog = app.catalog()
    tenant = a_tenant(catalog)
    alice = at(catalog, "alice")
    change = change_service.create(
        app.engine, catalog, alice, change_spec(targets={"tenants": [tenant], "selectors": []})
    )
    modules = list(catalog.tenants[tenant].spec.odoo.modules)
    before = write_release(tmp_path / "r1", modules, "17.0", account="17.0.1.0", scripts={})
    after = write_release(tmp_path / "r2", modules, "17.0", account="17.0.1.1", scripts={})
    gone = next(m for m in modules if m not in ("base", "account", "account_followup"))
    shutil.rmtree(after / gone)
    plans = plans_for(app, tenant, before, after)
    assert plans[0].errors == (f"{gone} is installed but missing from the new addons",)
    with pytest.raises(InvalidInput, match="the plan has errors"):
        odoo_service.apply_to_change(app.engine, catalog, alice, change.id, plans)
    assert change_service.get(app.engine, alice, change.id).spec == change.spec


@pytest.mark.parametrize(
    ("current", "planned", "kept"),
    [
        ("application-release", "module-update", "module-update"),
        ("security-patch", "database-migration", "database-migration"),
        ("module-update", "database-migration", "database-migration"),
        ("database-upgrade", "database-migration", "database-upgrade"),
        ("odoo-upgrade", "database-migration", "odoo-upgrade"),
        ("database-migration", "module-update", "database-migration"),
        ("database-migration", "odoo-upgrade", "odoo-upgrade"),
    ],
)
def test_a_plan_only_ever_raises_the_category(current: str, planned: str, kept: str) -> None:
    assert odoo_service.raised_category(Category(current), Category(planned)) is Category(kept)


def test_which_tenants_one_run_plans(app: bootstrap.App) -> None:
    catalog = app.catalog()
    by_series = {e.spec.odoo.series for e in catalog.tenants.values()}
    assert len(by_series) > 1  # the sample runs several series
    with pytest.raises(InvalidInput, match="several Odoo series"):
        odoo_service.tenants_of(catalog, [], True)
    chosen = odoo_service.tenants_of(catalog, [], True, series="16.0")
    assert chosen and all(catalog.tenants[t].spec.odoo.series == "16.0" for t in chosen)
    other = a_tenant(catalog, "18.0")
    with pytest.raises(InvalidInput, match=f"not on Odoo 16.0: {other} \\(18.0\\)"):
        odoo_service.tenants_of(catalog, [other], False, series="16.0")
    assert odoo_service.tenants_of(catalog, [other, other], False) == [other]
    with pytest.raises(NotFound, match="nowhere"):
        odoo_service.tenants_of(catalog, ["nowhere"], False)
    with pytest.raises(InvalidInput, match="--tenant T"):
        odoo_service.tenants_of(catalog, [], False)


def test_a_plan_between_two_git_refs(app: bootstrap.App, tmp_path: Path) -> None:
    catalog = app.catalog()
    tenant = a_tenant(catalog)
    alice = at(catalog, "alice")
    modules = list(catalog.tenants[tenant].spec.odoo.modules)
    repo = tmp_path / "addons"
    write_release(repo, modules, "17.0", account="17.0.1.0", scripts={})
    git(repo, "init", "-q", "-b", "main")
    first = commit(repo, "release 1")
    write_release(
        repo,
        modules,
        "17.0",
        account="17.0.1.1",
        scripts={"migrations/17.0.1.1/post-fill.py": MIGRATE},
    )
    commit(repo, "release 2")
    sources = odoo_service.Sources(f"git:{first}", "git:main", repo=repo)
    (found,) = odoo_service.plan(catalog, alice, sources, [tenant])
    assert [u.module for u in found.update] == ["account", "account_followup"]
    assert [s.path for _, s in found.scripts] == ["migrations/17.0.1.1/post-fill.py"]
    assert found.disagreements == ()  # no checksums from Git: nothing to compare
    with pytest.raises(InvalidInput, match="--policy checksum needs addons folders or wheels"):
        odoo_service.plan(catalog, alice, sources, [tenant], policy=Policy.CHECKSUM)
    with pytest.raises(InvalidInput, match="needs --repo"):
        odoo_service.plan(catalog, alice, odoo_service.Sources("git:main", "git:main"), [tenant])


def test_a_major_upgrade_plan_recorded_on_a_change(app: bootstrap.App, tmp_path: Path) -> None:
    catalog = app.catalog()
    tenant = a_tenant(catalog, "16.0")
    alice = at(catalog, "alice")
    modules = list(catalog.tenants[tenant].spec.odoo.modules)
    before = write_release(tmp_path / "r1", modules, "16.0", account="16.0.1.0", scripts={})
    after = write_release(
        tmp_path / "r2",
        modules,
        "17.0",
        account="17.0.1.0",
        scripts={"migrations/17.0.1.0/pre-migrate.py": MIGRATE},
    )
    sources = odoo_service.Sources(str(before), str(after), to_series="17.0")
    (found,) = odoo_service.plan(catalog, alice, sources, [tenant])
    assert found.major and found.errors == () and found.without_target_version == ()
    assert sorted(u.module for u in found.update) == sorted(modules)
    assert {u.reason for u in found.update} == {"Odoo 16.0 -> 17.0"}
    change = change_service.create(
        app.engine,
        catalog,
        alice,
        change_spec(category="module-update", targets={"tenants": [tenant], "selectors": []}),
    )
    recorded = odoo_service.apply_to_change(app.engine, catalog, alice, change.id, [found])
    assert recorded.spec.category is Category.ODOO_UPGRADE
    assert recorded.spec.rollback_plan.irreversible
    assert "rehearse on a restored copy in staging" in recorded.spec.implementation_plan
