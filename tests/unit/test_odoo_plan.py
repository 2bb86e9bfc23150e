"""The module-upgrade planner: what `-u` really does in one tenant database (docs/odoo-plan.md).

Every addons tree here is synthetic, written for this project: small AddonSets built directly
for each rule, and real addons folders (`__manifest__.py`, `migrations/<version>/` scripts)
read through `adapters.addons.from_folder`. The expected values follow Odoo's own behaviour:
`button_upgrade` (the `-u` cascade to installed dependents, the uninstalled dependencies it
installs), `button_install` (`must_install`: an auto_install module whose required
dependencies are all installed or to install, at least one of them to install now),
`MigrationManager` (which folders run, in which order, per stage) and click-odoo-update's
checksum rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from changegate.adapters import addons as reader
from changegate.domain.odoo.addons import Addon, AddonSet, Installed, MigrationScript, Stage
from changegate.domain.odoo.plan import (
    Policy,
    TenantPlan,
    change_effects,
    plan_tenant,
)

S16, S17 = "16.0", "17.0"


# ---------------------------------------------------------------------------- builders


def addon(
    name: str,
    version: str = "1.0.0",
    *depends: str,
    auto_install: bool | tuple[str, ...] = False,
    installable: bool = True,
    scripts: Iterable[MigrationScript] = (),
    checksum: str | None = None,
    external_python: tuple[str, ...] = (),
) -> Addon:
    return Addon(
        name=name,
        version=version,
        depends=depends,
        auto_install=auto_install,
        installable=installable,
        external_python=external_python,
        migrations=tuple(scripts),
        checksum=checksum,
    )


def addons(series: str, *found: Addon) -> AddonSet:
    return AddonSet(series=series, addons={a.name: a for a in found})


def script(
    folder: str,
    stage: Stage,
    name: str = "migrate",
    *,
    imports: tuple[str, ...] = (),
    root: str = "migrations",
) -> MigrationScript:
    path = f"{root}/{folder}/{stage.value}-{name}.py"
    return MigrationScript(root, folder, stage, path, imports)


def installed(
    modules: Mapping[str, str | None] | Iterable[str],
    checksums: Mapping[str, str] | None = None,
) -> Installed:
    found = dict(modules) if isinstance(modules, Mapping) else dict.fromkeys(modules)
    return Installed(found, checksums=checksums, source="test")


def plan(
    now: Installed,
    before: AddonSet,
    after: AddonSet,
    *,
    policy: Policy = Policy.VERSION,
    provided: Iterable[str] = (),
) -> TenantPlan:
    return plan_tenant(
        "acme", "acme_db", now, before, after, policy=policy, provided=tuple(provided)
    )


def updated(found: TenantPlan) -> dict[str, str]:
    return {u.module: u.reason for u in found.update}


def scripts_of(found: TenantPlan, module: str) -> dict[str, list[str]]:
    update = next(u for u in found.update if u.module == module)
    return {
        stage.value: [f"{s.folder}/{s.version}/{s.path.rsplit('/', 1)[-1]}" for s in listed]
        for stage, listed in update.scripts.items()
    }


# ---------------------------------------------------------------------------- folders


def write_addon(
    root: Path,
    name: str,
    version: str,
    depends: list[str],
    files: Mapping[str, str] | None = None,
    **manifest: object,
) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    fields = {"name": name.title(), "version": version, "depends": depends, **manifest}
    (folder / "__manifest__.py").write_text(
        "# a synthetic addon written for changegate's tests\n" + repr(fields) + "\n"
    )
    (folder / "__init__.py").write_text("")
    for relative, text in (files or {}).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


MIGRATE = "def migrate(cr, version):\n    cr.execute('SELECT 1')\n"


# ---------------------------------------------------------------------------- cascades


def test_an_update_cascades_through_every_level_of_installed_dependents() -> None:
    # base <- a <- b <- c <- d, and e <- a; all but d installed.
    before = addons(
        S17,
        addon("base", "1.0"),
        addon("a", "1.0.0", "base"),
        addon("b", "1.0.0", "a"),
        addon("c", "1.0.0", "b"),
        addon("d", "1.0.0", "c"),
        addon("e", "1.0.0", "a"),
        addon("other", "1.0.0", "base"),
    )
    after = addons(
        S17, *[a for a in before.addons.values() if a.name != "a"], addon("a", "1.1.0", "base")
    )
    found = plan(installed(["base", "a", "b", "c", "e", "other"]), before, after)
    assert updated(found) == {
        "a": "version 17.0.1.0.0 -> 17.0.1.1.0",
        "b": "depends on an updated module",
        "c": "depends on an updated module",
        "e": "depends on an updated module",
    }
    # Not installed (d), a dependency (base) and an unrelated module: untouched.
    assert found.install == () and found.auto_install == () and found.errors == ()
    assert not found.irreversible
    effects = change_effects([found])
    assert effects["category"] == "module-update"
    assert effects["backup_required"] is False and effects["window_required"] is False


def test_the_cascade_follows_the_new_manifests() -> None:
    # In the new release c depends on a directly (it did not before): updating a updates c.
    before = addons(S17, addon("a", "1.0.0"), addon("c", "1.0.0"))
    after = addons(S17, addon("a", "1.0.1"), addon("c", "1.0.0", "a"))
    found = plan(installed(["a", "c"]), before, after)
    assert updated(found) == {
        "a": "version 17.0.1.0.0 -> 17.0.1.0.1",
        "c": "depends on an updated module",
    }


def test_a_cascade_read_from_real_addons_folders(tmp_path: Path) -> None:
    for release, version in (("r1", "17.0.1.0.0"), ("r2", "17.0.1.0.1")):
        root = tmp_path / release
        write_addon(root, "base", "17.0.1.3", [])
        write_addon(root, "acme_core", version, ["base"])
        write_addon(root, "acme_sale", "17.0.1.0.0", ["acme_core"])
        write_addon(root, "acme_sale_report", "17.0.1.0.0", ["acme_sale"])
        write_addon(root, "acme_unused", "17.0.1.0.0", ["acme_sale"])
    before = reader.from_folder(tmp_path / "r1", S17)
    after = reader.from_folder(tmp_path / "r2", S17)
    recorded = {"base": "17.0.1.3", "acme_core": "17.0.1.0.0", "acme_sale": "17.0.1.0.0"}
    found = plan(installed({**recorded, "acme_sale_report": "17.0.1.0.0"}), before, after)
    assert sorted(updated(found)) == ["acme_core", "acme_sale", "acme_sale_report"]
    assert found.update[0].installed == "17.0.1.0.0" and found.update[0].new == "17.0.1.0.1"


def test_installed_versions_unknown_are_taken_from_the_addons_before() -> None:
    before = addons(S17, addon("a", "1.0.0"))
    after = addons(S17, addon("a", "1.0.1"))
    found = plan(installed(["a"]), before, after)  # the catalog's list: no versions
    assert updated(found) == {"a": "version 17.0.1.0.0 -> 17.0.1.0.1"}
    # The database's recorded version wins over the addons before.
    found = plan(installed({"a": "17.0.1.0.1"}), before, after)
    assert updated(found) == {}


# ---------------------------------------------------------------------------- new dependencies


def test_a_dependency_added_between_versions_is_installed_with_its_own() -> None:
    before = addons(
        S17,
        addon("base", "1.0"),
        addon("a", "1.0.0", "base"),
        addon("x", "1.0.0", "base", "y"),
        addon("y", "1.0.0", "base"),
        addon("b", "1.0.0", "base"),
    )
    after = addons(
        S17,
        addon("base", "1.0"),
        addon("a", "1.1.0", "base", "x"),  # new: depends on x, which needs y
        addon("x", "1.0.0", "base", "y"),
        addon("y", "1.0.0", "base"),
        addon("z", "1.0.0", "base"),
        addon("b", "1.0.0", "base", "z"),  # b changed its depends but not its version
    )
    found = plan(installed(["base", "a", "b"]), before, after)
    assert updated(found) == {"a": "version 17.0.1.0.0 -> 17.0.1.1.0"}
    # x and y (transitively); base is already there; z is not: b is not updated.
    assert found.install == ("x", "y")
    assert found.errors == ()


def test_the_install_walk_stops_at_installed_modules() -> None:
    # a now depends on x (new); x depends on the installed m, whose new manifest depends on
    # q: Odoo does not walk into m (installed), so q is not installed.
    before = addons(S17, addon("a", "1.0.0"), addon("m", "1.0.0"))
    after = addons(
        S17,
        addon("a", "1.0.1", "x"),
        addon("x", "1.0.0", "m"),
        addon("m", "1.0.0", "q"),
        addon("q", "1.0.0"),
    )
    found = plan(installed(["a", "m"]), before, after)
    assert found.install == ("x",)


def test_a_new_dependency_missing_or_not_installable_is_an_error() -> None:
    before = addons(S17, addon("a", "1.0.0"), addon("b", "1.0.0"))
    after = addons(
        S17,
        addon("a", "1.0.1", "gone"),
        addon("b", "1.0.1", "retired"),
        addon("retired", "1.0.0", installable=False),
    )
    found = plan(installed(["a", "b"]), before, after)
    assert found.errors == (
        "gone is a dependency but missing from the new addons",
        "retired is a dependency but not installable in the new addons",
    )
    assert change_effects([found])["errors"] == list(found.errors)


# ---------------------------------------------------------------------------- auto_install


def _auto_release() -> tuple[AddonSet, AddonSet]:
    common = [
        addon("base", "1.0"),
        addon("b", "1.0.0", "base"),
        addon("c", "1.0.0", "base"),
        addon("x", "1.0.0", "base"),
        addon("q", "1.0.0", "base"),
        # boolean form: all depends
        addon("x_b", "1.0.0", "x", "b", auto_install=True),
        addon("x_b_extra", "1.0.0", "x_b", auto_install=True),  # a chain
        addon("x_q", "1.0.0", "x", "q", auto_install=True),  # q stays uninstalled
        addon("b_c", "1.0.0", "b", "c", auto_install=True),  # b, c installed long ago
        # list form: only the listed ones; its other dependency comes with it
        addon("x_list", "1.0.0", "x", "q", auto_install=("x",)),
        addon("c_list", "1.0.0", "c", "q", auto_install=("c",)),  # c installed, nothing new
        addon("retired_glue", "1.0.0", "x", auto_install=True, installable=False),
    ]
    before = addons(S17, addon("a", "1.0.0", "base"), *common)
    after = addons(S17, addon("a", "1.1.0", "base", "x"), *common)
    return before, after


def test_auto_install_in_both_forms_with_chains() -> None:
    before, after = _auto_release()
    found = plan(installed(["base", "a", "b", "c"]), before, after)
    assert found.install == ("x",)
    # In the order they are triggered, each with the dependencies it brings first: x_b (x
    # now, b installed); x_b_extra (x_b now); x_list (x listed) bringing q; then x_q (x and q
    # both installed in this run).
    assert found.auto_install == ("x_b", "x_b_extra", "q", "x_list", "x_q")
    # b_c and c_list: their required dependencies were installed already, none is new.
    assert "b_c" not in found.auto_install and "c_list" not in found.auto_install
    assert "retired_glue" not in found.auto_install


def test_an_update_that_installs_nothing_triggers_no_auto_install() -> None:
    # A glue module new in the release, whose dependencies are all installed: Odoo's
    # `-u` does not install it (`must_install` wants a dependency being installed).
    before = addons(S17, addon("b", "1.0.0"), addon("c", "1.0.0"))
    after = addons(
        S17,
        addon("b", "1.0.1"),
        addon("c", "1.0.0"),
        addon("b_c_glue", "1.0.0", "b", "c", auto_install=True),
    )
    found = plan(installed(["b", "c"]), before, after)
    assert updated(found) == {"b": "version 17.0.1.0.0 -> 17.0.1.0.1"}
    assert found.install == () and found.auto_install == ()


def test_auto_install_read_from_manifests(tmp_path: Path) -> None:
    for release, depends in (("r1", ["base"]), ("r2", ["base", "stock"])):
        root = tmp_path / release
        write_addon(root, "base", "17.0.1.3", [])
        write_addon(root, "sale", "17.0.1.0", ["base"])
        write_addon(root, "stock", "17.0.1.0", ["base"])
        version = "17.0.1.0.0" if release == "r1" else "17.0.1.1.0"
        write_addon(root, "acme", version, depends)
        write_addon(root, "sale_stock", "17.0.1.0", ["sale", "stock"], auto_install=True)
        write_addon(root, "stock_sms", "17.0.1.0", ["stock", "base"], auto_install=["stock"])
    before = reader.from_folder(tmp_path / "r1", S17)
    after = reader.from_folder(tmp_path / "r2", S17)
    assert after.addons["stock_sms"].auto_install == ("stock",)
    found = plan(installed(["base", "sale", "acme"]), before, after)
    assert found.install == ("stock",)
    assert found.auto_install == ("sale_stock", "stock_sms")


# ---------------------------------------------------------------------------- migration scripts


def test_scripts_of_the_versions_crossed_run_and_older_ones_do_not() -> None:
    older = [script("17.0.1.1.0", Stage.PRE), script("17.0.1.1.0", Stage.POST)]
    newest = [script("17.0.1.2.0", Stage.PRE, "rename"), script("17.0.1.2.0", Stage.END)]
    before = addons(S17, addon("a", "17.0.1.1.0", scripts=older))
    after = addons(S17, addon("a", "17.0.1.2.0", scripts=[*older, *newest]))
    found = plan(installed({"a": "17.0.1.1.0"}), before, after)
    assert scripts_of(found, "a") == {
        "pre": ["migrations/17.0.1.2.0/pre-rename.py"],
        "end": ["migrations/17.0.1.2.0/end-migrate.py"],
    }
    assert found.irreversible
    effects = change_effects([found])
    assert effects["category"] == "database-migration"
    assert effects["irreversible"] and effects["backup_required"] and effects["window_required"]
    assert not effects["critical"]
    assert (
        "2 migration script(s) will run: a: migrations/17.0.1.2.0/pre-rename.py"
        in (effects["reasons"][0])
    )


def test_a_migrations_folder_that_disappears_runs_nothing(tmp_path: Path) -> None:
    write_addon(
        tmp_path / "r1",
        "acme",
        "16.0.1.0.0",
        [],
        {"migrations/16.0.1.1.0/pre-move.py": MIGRATE},
    )
    write_addon(tmp_path / "r2", "acme", "16.0.1.2.0", [])  # the folder is gone
    before = reader.from_folder(tmp_path / "r1", S16)
    after = reader.from_folder(tmp_path / "r2", S16)
    assert before.addons["acme"].migrations and not after.addons["acme"].migrations
    found = plan(installed({"acme": "16.0.1.0.0"}), before, after)
    assert updated(found) == {"acme": "version 16.0.1.0.0 -> 16.0.1.2.0"}
    assert found.update[0].scripts == {} and found.scripts == []
    assert not found.irreversible
    assert change_effects([found])["category"] == "module-update"


def test_series_less_and_any_change_folders_in_odoos_order(tmp_path: Path) -> None:
    files = {
        f"migrations/{folder}/{stage}-{folder.replace('.', '_')}.py": MIGRATE
        for folder in ("0.0.0", "1.1", "17.0.1.2", "1.3", "17.0.1.0")
        for stage in ("pre", "post", "end")
    }
    # `upgrades/` counts as well; inside one version, scripts sort by file name across both.
    files["upgrades/1.1/pre-0_first.py"] = MIGRATE
    files["migrations/tests/pre-never.py"] = MIGRATE  # not a version: never run
    write_addon(tmp_path / "r1", "acme", "1.0", [])
    write_addon(tmp_path / "r2", "acme", "1.2", [], files)
    before = reader.from_folder(tmp_path / "r1", S17)
    after = reader.from_folder(tmp_path / "r2", S17)
    found = plan(installed({"acme": "17.0.1.0"}), before, after)
    assert updated(found) == {"acme": "version 17.0.1.0 -> 17.0.1.2"}
    # installed 17.0.1.0 < folder <= 17.0.1.2: 1.1 (17.0.1.1) and 17.0.1.2; not 17.0.1.0
    # (already there) nor 1.3 (beyond). 0.0.0 first in pre, last in post and end.
    assert scripts_of(found, "acme") == {
        "pre": [
            "migrations/0.0.0/pre-0_0_0.py",
            "upgrades/1.1/pre-0_first.py",
            "migrations/1.1/pre-1_1.py",
            "migrations/17.0.1.2/pre-17_0_1_2.py",
        ],
        "post": [
            "migrations/1.1/post-1_1.py",
            "migrations/17.0.1.2/post-17_0_1_2.py",
            "migrations/0.0.0/post-0_0_0.py",
        ],
        "end": [
            "migrations/1.1/end-1_1.py",
            "migrations/17.0.1.2/end-17_0_1_2.py",
            "migrations/0.0.0/end-0_0_0.py",
        ],
    }
    assert found.as_dict()["update"][0]["scripts"]["pre"][0] == "migrations/0.0.0/pre-0_0_0.py"


def test_the_any_change_folder_needs_a_version_change() -> None:
    any_change = [script("0.0.0", Stage.POST)]
    before = addons(S17, addon("a", "1.0.0"), addon("b", "1.0.0", scripts=any_change))
    after = addons(S17, addon("a", "1.0.1"), addon("b", "1.0.0", "a", scripts=any_change))
    found = plan(installed(["a", "b"]), before, after)
    # b is updated by the cascade, at the same version: its 0.0.0 scripts do not run.
    assert updated(found)["b"] == "depends on an updated module"
    assert scripts_of(found, "b") == {}


def test_versions_that_sort_differently_lexically_and_numerically() -> None:
    folders = ["16.0.2.11.1", "16.0.2.6.1", "16.0.2.9.0", "16.0.2.12.0"]
    before = addons(S16, addon("a", "16.0.2.5.0"))
    after = addons(S16, addon("a", "16.0.2.11.1", scripts=[script(f, Stage.POST) for f in folders]))
    found = plan(installed({"a": "16.0.2.5.0"}), before, after)
    assert scripts_of(found, "a") == {
        "post": [
            "migrations/16.0.2.6.1/post-migrate.py",
            "migrations/16.0.2.9.0/post-migrate.py",
            "migrations/16.0.2.11.1/post-migrate.py",
        ]
    }
    # 16.0.2.9.0 -> 16.0.2.11.1 is an update (a string comparison would say a downgrade).
    found = plan(installed({"a": "16.0.2.9.0"}), before, after)
    assert updated(found) == {"a": "version 16.0.2.9.0 -> 16.0.2.11.1"}
    assert scripts_of(found, "a") == {"post": ["migrations/16.0.2.11.1/post-migrate.py"]}
    # and 16.0.2.11.1 -> 16.0.2.9.0 is not one.
    down = addons(S16, addon("a", "16.0.2.9.0"))
    assert updated(plan(installed({"a": "16.0.2.11.1"}), before, down)) == {}


def test_trailing_zeros_are_the_same_version() -> None:
    before = addons(S17, addon("a", "17.0.1.0"))
    after = addons(S17, addon("a", "17.0.1.0.0"))
    assert updated(plan(installed({"a": "17.0.1.0"}), before, after)) == {}


# ---------------------------------------------------------------------------- the two policies


def test_same_version_other_content_only_the_checksum_policy_updates_it(tmp_path: Path) -> None:
    for release, body in (("r1", "X = 1\n"), ("r2", "X = 2\n")):
        write_addon(tmp_path / release, "base", "17.0.1.3", [])
        write_addon(tmp_path / release, "acme", "17.0.1.0.0", ["base"], {"models/x.py": body})
        write_addon(tmp_path / release, "acme_sale", "17.0.1.0.0", ["acme"])
    before = reader.from_folder(tmp_path / "r1", S17, checksums=True)
    after = reader.from_folder(tmp_path / "r2", S17, checksums=True)
    assert before.addons["acme"].checksum != after.addons["acme"].checksum
    assert before.addons["base"].checksum == after.addons["base"].checksum
    now = installed(["base", "acme", "acme_sale"])
    by_version = plan(now, before, after)
    by_checksum = plan(now, before, after, policy=Policy.CHECKSUM)
    assert updated(by_version) == {}
    assert updated(by_checksum) == {
        "acme": "checksum changed",
        "acme_sale": "depends on an updated module",
    }
    # Shown side by side whichever policy was chosen.
    for found in (by_version, by_checksum):
        assert [d.as_dict() for d in found.disagreements] == [
            {
                "module": "acme",
                "updated_by": "checksum",
                "reason": "checksum changed, version unchanged",
            }
        ]


def test_a_version_bump_with_the_same_content_is_a_disagreement_too() -> None:
    before = addons(S17, addon("a", "1.0.0", checksum="c1"), addon("b", "1.0.0", checksum="c2"))
    after = addons(S17, addon("a", "1.0.1", checksum="c1"), addon("b", "1.0.0", checksum="c3"))
    found = plan(installed(["a", "b"]), before, after)
    assert updated(found) == {"a": "version 17.0.1.0.0 -> 17.0.1.0.1"}
    assert [(d.module, d.updated_by) for d in found.disagreements] == [
        ("a", Policy.VERSION),
        ("b", Policy.CHECKSUM),
    ]
    assert found.disagreements[0].reason == "version 17.0.1.0.0 -> 17.0.1.0.1, content unchanged"


def test_the_checksums_a_database_stored_decide_as_click_odoo_update_does() -> None:
    before = addons(S17, *(addon(n, "1.0.0", checksum="old") for n in "abc"))
    after = addons(
        S17,
        addon("a", "1.0.0", checksum="new"),
        addon("b", "1.0.0", checksum="new"),
        addon("c", "1.0.0", checksum="new"),
    )
    # a: stored "new" (already done); b: stored "old" (changed); c: nothing stored for it.
    now = installed(["a", "b", "c"], checksums={"a": "new", "b": "old"})
    found = plan(now, before, after, policy=Policy.CHECKSUM)
    assert updated(found) == {
        "b": "checksum changed",
        "c": "no checksum stored: updated to store one",
    }


def test_without_checksums_no_disagreement_is_claimed() -> None:
    before = addons(S17, addon("a", "1.0.0"))
    after = addons(S17, addon("a", "1.0.1"))
    found = plan(installed(["a"]), before, after)
    assert found.disagreements == ()
    assert updated(plan(installed(["a"]), before, after, policy=Policy.CHECKSUM)) == {}


# ---------------------------------------------------------------------------- errors


def test_a_module_missing_from_the_new_addons_is_an_error() -> None:
    before = addons(S17, addon("a", "1.0.0"), addon("gone", "1.0.0"))
    after = addons(S17, addon("a", "1.0.1"))
    found = plan(installed(["a", "gone"]), before, after)
    assert found.errors == ("gone is installed but missing from the new addons",)
    assert updated(found) == {"a": "version 17.0.1.0.0 -> 17.0.1.0.1"}
    assert {"factor": "plan-errors", "reason": found.errors[0]} in found.risk_factors()
    assert change_effects([found])["errors"] == [found.errors[0]]


def test_a_module_no_longer_installable_is_an_error(tmp_path: Path) -> None:
    write_addon(tmp_path / "r1", "acme", "16.0.1.0.0", [])
    write_addon(tmp_path / "r2", "acme", "16.0.1.0.1", [], installable=False)
    before = reader.from_folder(tmp_path / "r1", S16)
    after = reader.from_folder(tmp_path / "r2", S16)
    found = plan(installed(["acme"]), before, after)
    assert found.errors == ("acme is installed but not installable in the new addons",)
    assert found.update == ()


# ---------------------------------------------------------------------------- imports


def test_scripts_importing_what_the_image_does_not_provide_are_flagged(tmp_path: Path) -> None:
    files = {
        "migrations/16.0.1.1.0/pre-rename.py": (
            "import logging\nfrom openupgradelib import openupgrade\n"
            "from odoo import api\nfrom . import helpers\n\n"
            "@openupgrade.migrate()\ndef migrate(env, version):\n    logging.info('x')\n"
        ),
        "migrations/16.0.1.1.0/post-fill.py": "import requests\n" + MIGRATE,
    }
    write_addon(tmp_path / "r1", "acme", "16.0.1.0.0", [])
    write_addon(tmp_path / "r2", "acme", "16.0.1.1.0", [], files)
    before = reader.from_folder(tmp_path / "r1", S16)
    after = reader.from_folder(tmp_path / "r2", S16)
    found = plan(installed(["acme"]), before, after)
    assert found.unprovided_imports == (
        ("acme", "migrations/16.0.1.1.0/post-fill.py", "requests"),
        ("acme", "migrations/16.0.1.1.0/pre-rename.py", "openupgradelib"),
    )
    factor = next(f for f in found.risk_factors() if f["factor"] == "unprovided-imports")
    assert "pre-rename.py imports openupgradelib" in factor["reason"]
    provided = plan(installed(["acme"]), before, after, provided=["openupgradelib", "requests"])
    assert provided.unprovided_imports == ()
    assert provided.scripts  # the scripts still run: only the warning goes


def test_a_package_the_addon_declares_counts_as_provided() -> None:
    uses = [script("17.0.1.1", Stage.PRE, imports=("openupgradelib",))]
    before = addons(S17, addon("a", "1.0"))
    after = addons(S17, addon("a", "1.1", scripts=uses, external_python=("openupgradelib",)))
    assert plan(installed(["a"]), before, after).unprovided_imports == ()


# ---------------------------------------------------------------------------- major upgrades


def test_a_major_upgrade_updates_every_installed_module_and_lists_the_unported() -> None:
    before = addons(
        S16,
        addon("base", "1.3"),
        addon("sale", "1.2", "base"),
        addon("acme", "16.0.1.4.0", "sale"),
        addon("legacy", "16.0.1.0.0", "base"),
        addon("retired", "16.0.1.0.0", "base"),
    )
    after = addons(
        S17,
        addon("base", "1.3"),
        addon("sale", "1.2", "base"),
        addon(
            "acme",
            "17.0.1.0.0",
            "sale",
            scripts=[
                script("17.0.1.0.0", Stage.PRE, imports=("openupgradelib",)),
                script("1.4.0", Stage.POST),  # series-less: ran under 16.0, not again
                script("0.0.0", Stage.END),
            ],
        ),
        addon("retired", "17.0.1.0.0", "base", installable=False),
    )
    now = installed(
        {
            "base": "16.0.1.3",
            "sale": "16.0.1.2",
            "acme": "16.0.1.4.0",
            "legacy": "16.0.1.0.0",
            "retired": "16.0.1.0.0",
        }
    )
    found = plan(now, before, after)
    assert found.major
    assert updated(found) == dict.fromkeys(["acme", "base", "sale"], "Odoo 16.0 -> 17.0")
    assert found.without_target_version == ("legacy", "retired")
    assert set(found.errors) == {
        "legacy is installed but missing from the new addons",
        "retired is installed but not installable in the new addons",
    }
    assert scripts_of(found, "acme") == {
        "pre": ["migrations/17.0.1.0.0/pre-migrate.py"],
        "end": ["migrations/0.0.0/end-migrate.py"],
    }
    assert found.unprovided_imports == (
        ("acme", "migrations/17.0.1.0.0/pre-migrate.py", "openupgradelib"),
    )
    factors = {f["factor"]: f for f in found.risk_factors()}
    assert factors["major-version-upgrade"]["classification"] == "critical"
    assert "rehearse on a restored copy in staging" in factors["major-version-upgrade"]["reason"]
    effects = change_effects([found])
    assert effects["category"] == "odoo-upgrade"
    assert effects["critical"] and effects["irreversible"] and effects["backup_required"]


def test_a_major_upgrade_without_scripts_is_still_irreversible() -> None:
    before = addons(S16, addon("base", "1.3"))
    after = addons(S17, addon("base", "1.3"))
    found = plan(installed({"base": "16.0.1.3"}), before, after)
    assert found.scripts == [] and found.irreversible
    assert found.without_target_version == ()
    effects = change_effects([found])
    assert (effects["category"], effects["window_required"]) == ("odoo-upgrade", True)


# ---------------------------------------------------------------------------- effects, shapes


def test_change_effects_over_several_tenants() -> None:
    before = addons(S17, addon("a", "1.0"), addon("b", "1.0"))
    after = addons(S17, addon("a", "1.1", scripts=[script("1.1", Stage.POST)]), addon("b", "1.1"))
    quiet = plan_tenant("t1", "t1", installed(["b"]), before, after)
    scripted = plan_tenant("t2", "t2", installed(["a", "b"]), before, after)
    assert change_effects([quiet])["category"] == "module-update"
    effects = change_effects([quiet, scripted])
    assert effects["category"] == "database-migration"
    assert effects["backup_required"] and effects["window_required"]
    assert effects["reasons"] == [
        "1 migration script(s) will run: a: migrations/1.1/post-migrate.py"
    ]
    assert change_effects([]) == {
        "category": "module-update",
        "irreversible": False,
        "backup_required": False,
        "window_required": False,
        "critical": False,
        "errors": [],
        "reasons": [],
    }


def test_the_plan_is_plain_json() -> None:
    before, after = _auto_release()
    found = plan(installed(["base", "a", "b", "c"]), before, after)
    data = json.loads(json.dumps(found.as_dict()))
    assert data["tenant"] == "acme" and data["database"] == "acme_db"
    assert data["policy"] == "version" and data["major"] is False
    assert data["install"] == ["x"]
    assert data["update"][0] == {
        "module": "a",
        "reason": "version 17.0.1.0.0 -> 17.0.1.1.0",
        "installed": "17.0.1.0.0",
        "new": "17.0.1.1.0",
        "scripts": {},
    }
    assert data["installed_from"] == "test"
    assert data["irreversible"] is False and data["risk_factors"] == []


@pytest.mark.parametrize("policy", list(Policy))
def test_nothing_changed_plans_nothing(policy: Policy) -> None:
    same = addons(S17, addon("a", "1.0", checksum="c"), addon("b", "1.0", "a", checksum="d"))
    found = plan(installed(["a", "b"]), same, same, policy=policy)
    assert (found.update, found.install, found.auto_install, found.errors) == ((), (), (), ())


def test_what_an_auto_install_module_brings_must_exist() -> None:
    before = addons(S17, addon("a", "1.0"), addon("x", "1.0"))
    after = addons(
        S17,
        addon("a", "1.1", "x"),
        addon("x", "1.0"),
        addon("x_glue", "1.0", "x", "gone", auto_install=("x",)),
    )
    found = plan(installed(["a"]), before, after)
    assert found.auto_install == ("gone", "x_glue")
    assert found.errors == (
        "gone comes with an auto_install module but is missing from the new addons",
    )
