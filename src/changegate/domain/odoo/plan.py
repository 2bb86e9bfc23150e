"""Module-upgrade planning per tenant database: what `-u` will really do there (docs/odoo.md).

Given the addons before and after (two AddonSets) and what one tenant database has installed,
the plan says:

- which installed modules need an update, by two policies shown side by side where they
  disagree: `version` (the manifest version increased, as Odoo.sh decides) and `checksum`
  (the content hash changed, as click-odoo-update decides, against the checksums the database
  stored — a module it stored none for is updated — else against the addons before);
- the update closure: every installed module depending on an updated one, transitively, is
  updated too (Odoo's `-u` marks them `to upgrade`);
- new dependencies to install (an updated module's `depends` not installed yet, with their own
  dependencies), and `auto_install` modules the change triggers, as Odoo's `button_install`
  decides: every required dependency installed or to install, at least one of them installed
  by this run (required: all its `depends` in the boolean form, the listed ones in the list
  form), to a fixpoint, each bringing its own missing dependencies;
- installed modules missing from the new addons, or no longer installable: errors;
- per updated module, the migration scripts that will run, per stage (pre, post, end), in
  Odoo's order, and the scripts importing packages the image does not provide;
- for a major-version upgrade (16.0 -> 17.0): critical, a rehearsal on a restored copy in
  staging first, and the installed modules with no version for the target series.

Any script to run makes the change an irreversible database migration: category
database-migration, a backup and a maintenance window required, risk raised, the scripts the
reason. Pure: the readers and the service do the I/O.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from changegate.domain.odoo import versions
from changegate.domain.odoo.addons import AddonSet, Installed, MigrationScript, Stage
from changegate.errors import InvalidInput

# Packages a migration script may import without the image providing anything more: Odoo
# itself, its old name, and Python's standard library.
ALWAYS_PROVIDED = frozenset({"odoo", "openerp", *sys.stdlib_module_names})


def rehearsal_database(database: str) -> str:
    """The copy a major upgrade is rehearsed on: the database's name + `_rehearsal` (cut to
    PostgreSQL's 63 bytes)."""
    return (database[: 63 - len("_rehearsal")] + "_rehearsal").lower()


class Policy(StrEnum):
    VERSION = "version"
    CHECKSUM = "checksum"


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A module one policy updates and the other does not, and why."""

    module: str
    updated_by: Policy
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"module": self.module, "updated_by": self.updated_by.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ModuleUpdate:
    """One module the upgrade runs `-u` on: why, from which version to which, its scripts."""

    module: str
    reason: str  # "version 17.0.1.0 -> 17.0.1.1", "checksum changed", "depends on sale"
    installed: str | None
    new: str
    scripts: Mapping[Stage, tuple[MigrationScript, ...]] = field(default_factory=dict)

    @property
    def script_count(self) -> int:
        return sum(len(found) for found in self.scripts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "reason": self.reason,
            "installed": self.installed,
            "new": self.new,
            "scripts": {
                stage.value: [f"{s.folder}/{s.version}/{s.path.rsplit('/', 1)[-1]}" for s in found]
                for stage, found in self.scripts.items()
                if found
            },
        }


@dataclass(frozen=True, slots=True)
class TenantPlan:
    """What the upgrade does in one tenant database."""

    tenant: str
    database: str
    policy: Policy
    from_series: str
    to_series: str
    update: tuple[ModuleUpdate, ...] = ()
    install: tuple[str, ...] = ()
    auto_install: tuple[str, ...] = ()
    disagreements: tuple[Disagreement, ...] = ()
    errors: tuple[str, ...] = ()
    unprovided_imports: tuple[tuple[str, str, str], ...] = ()  # (module, script, package)
    without_target_version: tuple[str, ...] = ()
    installed_source: str = ""

    @property
    def major(self) -> bool:
        return self.from_series != self.to_series

    @property
    def scripts(self) -> list[tuple[str, MigrationScript]]:
        return [
            (update.module, script)
            for update in self.update
            for found in update.scripts.values()
            for script in found
        ]

    @property
    def irreversible(self) -> bool:
        """Scripts rewrite data (or the series changes): only a backup undoes it."""
        return bool(self.scripts) or self.major

    def rehearsal(self) -> dict[str, Any] | None:
        """For a major upgrade: how it is rehearsed per tenant on a restored copy in staging
        before production (the Job: `jobs.rehearsal_job`, `odoo plan --jobs`)."""
        if not self.major:
            return None
        copy = rehearsal_database(self.database)
        return {
            "copy": copy,
            "steps": [
                f"changegate backup take {self.tenant}",
                f"changegate backup restore ID --into {copy}  (on the staging server)",
                f"apply odoo-rehearsal.yaml in staging: the upgrade runs on {copy}",
                "check the Job succeeded and the staging Odoo serves the copy; then drop it",
            ],
        }

    def risk_factors(self) -> list[dict[str, Any]]:
        """What the plan means for the change's risk, category, backup and window, and why."""
        factors: list[dict[str, Any]] = []
        if self.major:
            factors.append(
                {
                    "factor": "major-version-upgrade",
                    "classification": "critical",
                    "reason": f"Odoo {self.from_series} -> {self.to_series}: rehearse on a "
                    "restored copy in staging before production",
                }
            )
        if self.scripts:
            listed = [
                f"{module}: {s.folder}/{s.version}/{s.path.rsplit('/', 1)[-1]}"
                for module, s in self.scripts
            ]
            factors.append(
                {
                    "factor": "migration-scripts",
                    "category": "database-migration",
                    "backup_required": True,
                    "window_required": True,
                    "reason": f"{len(listed)} migration script(s) will run: "
                    + "; ".join(listed[:10])
                    + (f"; and {len(listed) - 10} more" if len(listed) > 10 else ""),
                }
            )
        if self.unprovided_imports:
            factors.append(
                {
                    "factor": "unprovided-imports",
                    "reason": "; ".join(
                        f"{module} {script} imports {package}, which the image does not provide"
                        for module, script, package in self.unprovided_imports
                    ),
                }
            )
        if self.errors:
            factors.append({"factor": "plan-errors", "reason": "; ".join(self.errors)})
        return factors

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "database": self.database,
            "policy": self.policy.value,
            "from_series": self.from_series,
            "to_series": self.to_series,
            "major": self.major,
            "installed_from": self.installed_source,
            "update": [u.as_dict() for u in self.update],
            "install": list(self.install),
            "auto_install": list(self.auto_install),
            "disagreements": [d.as_dict() for d in self.disagreements],
            "errors": list(self.errors),
            "unprovided_imports": [
                {"module": m, "script": s, "package": p} for m, s, p in self.unprovided_imports
            ],
            "without_target_version": list(self.without_target_version),
            "irreversible": self.irreversible,
            "rehearsal": self.rehearsal(),
            "risk_factors": self.risk_factors(),
        }


# --------------------------------------------------------------------------- the rules


def _recorded(before: AddonSet, name: str) -> str | None:
    """The version a database would have recorded for an addon of the addons before (used
    when the installed version is unknown), or None: not there, or a version its series'
    server refuses (an addon that was not installable)."""
    old = before.addons.get(name)
    if old is None:
        return None
    try:
        return versions.adapt_version(old.version, before.series)
    except InvalidInput:
        return None


def _needs_update_by_version(
    name: str, installed: str | None, before: AddonSet, after: AddonSet
) -> str | None:
    new = after.addons[name]
    if installed is None:
        installed = _recorded(before, name)
        if installed is None:
            return None
    target = versions.adapt_version(new.version, after.series)
    if _version_key(target) > _version_key(installed):
        return f"version {installed} -> {target}"
    return None


# parse_version is the planner's hot spot: 200 tenants share a few hundred distinct versions.
_version_key = functools.lru_cache(maxsize=65_536)(versions.parse_version)


def _needs_update_by_checksum(
    name: str, stored: Mapping[str, str] | None, before: AddonSet, after: AddonSet
) -> str | None:
    """click-odoo-update's rule: the checksum of the addon now differs from the one the
    database stored. Once the database stores checksums, a module it has none for is updated
    (click-odoo-update compares with `checksums.get(name)`, None); with no stored checksums
    known (installed modules from the catalog), the addons before stand in for them."""
    new = after.addons[name].checksum
    if new is None:
        return None
    if stored is not None:
        if name not in stored:
            return "no checksum stored: updated to store one"
        return "checksum changed" if stored[name] != new else None
    old = before.addons.get(name)
    if old is None or old.checksum is None:
        return "no checksum stored: updated to store one"
    return "checksum changed" if old.checksum != new else None


def _dependents(after: AddonSet, installed: Collection[str]) -> dict[str, set[str]]:
    """Installed module -> installed modules that depend on it directly (new manifests)."""
    found: dict[str, set[str]] = {name: set() for name in installed}
    for name in installed:
        addon = after.addons.get(name)
        if addon is None:
            continue
        for dependency in addon.depends:
            if dependency in found:
                found[dependency].add(name)
    return found


def _closure(start: Collection[str], edges: Mapping[str, Collection[str]]) -> set[str]:
    seen = set(start)
    stack = list(start)
    while stack:
        for following in edges.get(stack.pop(), ()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


def _to_install(start: Collection[str], after: AddonSet, installed: Collection[str]) -> set[str]:
    """`start` and the dependencies they bring, as Odoo's `_state_update('to install')`
    marks them: walking down from each module not installed yet, never through an installed
    one (its own dependencies are already there). Names missing from the addons are kept,
    so that the caller reports them."""
    found: set[str] = set()
    stack = [name for name in start if name not in installed]
    while stack:
        name = stack.pop()
        if name in found:
            continue
        found.add(name)
        addon = after.addons.get(name)
        if addon is not None:
            stack.extend(d for d in addon.depends if d not in installed and d not in found)
    return found


def _auto_installed(after: AddonSet, present: Collection[str], installing: set[str]) -> list[str]:
    """auto_install modules the run installs, with the dependencies they bring, to a fixpoint
    (one installed may trigger another), as Odoo's `button_install` decides (`must_install`):
    every required dependency installed or to install, and at least one of them to install
    in this run. Required: all its `depends` (the boolean form), the listed ones (the list
    form). So an update that installs nothing new triggers nothing, not even an auto_install
    module that appeared in the new addons with its dependencies long installed."""
    installed = set(present)
    triggered: list[str] = []
    changed = bool(installing)
    while changed:
        changed = False
        for name, addon in sorted(after.addons.items()):
            if (
                name in installed
                or name in installing
                or not addon.installable
                or addon.auto_install is False
            ):
                continue
            needed = set(addon.depends) if addon.auto_install is True else set(addon.auto_install)
            if needed <= installed | installing and needed & installing:
                for extra in sorted(_to_install([name], after, installed | installing)):
                    installing.add(extra)
                    triggered.append(extra)
                changed = True
    return triggered


def plan_tenant(
    tenant: str,
    database: str,
    installed: Installed,
    before: AddonSet,
    after: AddonSet,
    *,
    policy: Policy = Policy.VERSION,
    provided: Collection[str] = (),
) -> TenantPlan:
    """The upgrade of one tenant database from `before` to `after` (see the module doc)."""
    errors: list[str] = []
    names = sorted(installed.modules)
    major = before.series != after.series
    for name in names:
        addon = after.addons.get(name)
        if addon is None:
            errors.append(f"{name} is installed but missing from the new addons")
        elif not addon.installable:
            errors.append(f"{name} is installed but not installable in the new addons")
    present = [n for n in names if n in after.addons and after.addons[n].installable]

    by_version: dict[str, str] = {}
    by_checksum: dict[str, str] = {}
    for name in present:
        why = _needs_update_by_version(name, installed.modules[name], before, after)
        if why is not None:
            by_version[name] = why
        why = _needs_update_by_checksum(name, installed.checksums, before, after)
        if why is not None:
            by_checksum[name] = why
    disagreements = [
        Disagreement(n, Policy.VERSION, f"{by_version[n]}, content unchanged")
        for n in sorted(set(by_version) - set(by_checksum))
    ] + [
        Disagreement(n, Policy.CHECKSUM, f"{by_checksum[n]}, version unchanged")
        for n in sorted(set(by_checksum) - set(by_version))
    ]
    if any(after.addons[n].checksum is None for n in present):
        # Checksums were not computed: the checksum policy cannot be compared.
        disagreements = []
    chosen = by_version if policy is Policy.VERSION else by_checksum
    if major:
        chosen = dict.fromkeys(present, f"Odoo {before.series} -> {after.series}")

    # `-u` cascades to every installed module depending on an updated one.
    updated = _closure(chosen, _dependents(after, present))
    reasons = dict(chosen)
    for name in updated - set(chosen):
        reasons[name] = "depends on an updated module"

    # Dependencies of the updated modules not installed yet, and theirs (Odoo's
    # `button_upgrade` then `button_install`); then the auto_install modules they trigger.
    installing = _to_install(
        {d for n in updated for d in after.addons[n].depends}, after, installed.modules
    )
    for name in sorted(installing):
        addon = after.addons.get(name)
        if addon is None:
            errors.append(f"{name} is a dependency but missing from the new addons")
        elif not addon.installable:
            errors.append(f"{name} is a dependency but not installable in the new addons")
    install = sorted(installing)
    usable = {n for n in installing if n in after.addons and after.addons[n].installable}
    auto = _auto_installed(after, present, usable)
    for name in auto:
        addon = after.addons.get(name)
        if addon is None or not addon.installable:
            what = "missing from" if addon is None else "not installable in"
            errors.append(f"{name} comes with an auto_install module but is {what} the new addons")

    updates: list[ModuleUpdate] = []
    unprovided: list[tuple[str, str, str]] = []
    allowed = ALWAYS_PROVIDED | set(provided)
    for name in sorted(updated):
        addon = after.addons[name]
        old_version = installed.modules.get(name) or _recorded(before, name)
        new_version = versions.adapt_version(addon.version, after.series)
        scripts: dict[Stage, tuple[MigrationScript, ...]] = {}
        if old_version is not None and addon.migrations:
            for stage in Stage:
                found = versions.scripts_to_run(
                    addon.migrations, old_version, new_version, after.series, stage
                )
                if found:
                    scripts[stage] = tuple(found)
        for stage_scripts in scripts.values():
            for script in stage_scripts:
                for package in script.imports:
                    if not (
                        package in allowed
                        or package in addon.external_python
                        or package in after.addons
                    ):
                        unprovided.append((name, script.path, package))
        updates.append(ModuleUpdate(name, reasons[name], old_version, new_version, scripts))

    missing_target = [n for n in names if not _has_target_version(after, n)] if major else []
    return TenantPlan(
        tenant=tenant,
        database=database,
        policy=policy,
        from_series=before.series,
        to_series=after.series,
        update=tuple(updates),
        install=tuple(install),
        auto_install=tuple(auto),
        disagreements=tuple(disagreements),
        errors=tuple(errors),
        unprovided_imports=tuple(sorted(set(unprovided))),
        without_target_version=tuple(missing_target),
        installed_source=installed.source,
    )


def _has_target_version(after: AddonSet, name: str) -> bool:
    """Whether the new addons hold an installable version of the module for their series."""
    addon = after.addons.get(name)
    if addon is None or not addon.installable:
        return False
    try:
        adapted = versions.adapt_version(addon.version, after.series)
    except InvalidInput:
        return False
    return versions.belongs_to(adapted, after.series)


def change_effects(plans: Sequence[TenantPlan]) -> dict[str, Any]:
    """What a set of tenant plans asks of the change filed for them: its category, whether a
    backup and a window are required, whether it is critical, and why."""
    reasons = [f["reason"] for p in plans for f in p.risk_factors()]
    scripts = any(p.scripts for p in plans)
    major = any(p.major for p in plans)
    category = "odoo-upgrade" if major else ("database-migration" if scripts else "module-update")
    return {
        "category": category,
        "irreversible": scripts or major,
        "backup_required": scripts or major,
        "window_required": scripts or major,
        "critical": major,
        "errors": sorted({e for p in plans for e in p.errors}),
        "reasons": reasons,
    }
