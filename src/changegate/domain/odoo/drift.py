"""Module drift: what a tenant database has installed against what was approved (docs/odoo.md).

Two references, because changes do not carry module versions:

- the catalog: the tenant's `odoo.modules` are the modules it is approved to run. Those
  modules need others (their `depends`, transitively, and the `auto_install` modules Odoo adds
  when their dependencies are present); with the addons at hand (an AddonSet), that closure
  counts as approved too. `base` is always installed and always approved.
- a baseline: the installed modules, versions and stored checksums recorded as approved
  (`changegate odoo drift TENANT --record`, ideally naming the closed change that produced
  them). Its modules count as approved names; versions and checksums are compared with it.

Findings, each an unauthorized difference:

- `unapproved`: installed, but neither in the catalog's list, nor needed by it, nor in the
  baseline;
- `missing`: in the catalog's list, not installed;
- `removed`: in the baseline, not installed now, and not in the catalog's list (those are
  `missing` already);
- `versions`: installed in another version than the baseline recorded;
- `checksums`: the same version, but the content hash click-odoo-update stored differs from
  the baseline's (code was updated without a version bump);
- `pending`: modules an operation left half-way (`to install`, `to upgrade`, `to remove`):
  an interrupted `-u` or an install that never ran.

Pure: the adapter reads the database, the service reads the catalog and the audit trail.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from changegate.domain import canonical
from changegate.domain.odoo import versions
from changegate.domain.odoo.addons import AddonSet, Installed
from changegate.errors import InvalidInput, Problem

INSTALLED_STATES = ("installed", "to upgrade", "to remove")
"""The `ir_module_module.state` values Odoo itself loads as installed (odoo.modules.loading):
a module `to upgrade` or `to remove` is still installed, with its data and version."""
PENDING_STATES = ("to install", "to upgrade", "to remove")
"""States an operation leaves until it completes; seen outside an upgrade, one stopped."""
ALWAYS_APPROVED = frozenset({"base"})
BASELINE_ACTION = "odoo.modules-recorded"
BASELINE_OBJECT = "odoo-modules"  # audit object type; the object id is the tenant id


@dataclass(frozen=True, slots=True)
class DatabaseModules:
    """What one Odoo database records: its installed modules (with versions, checksums and
    languages), and the modules in a pending state (module -> state)."""

    installed: Installed
    pending: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Baseline:
    """A tenant's installed modules recorded as approved, as its audit event holds them."""

    tenant: str
    modules: Mapping[str, str | None]
    checksums: Mapping[str, str] | None
    languages: tuple[str, ...]
    source: str
    change_id: str | None
    recorded_at: datetime
    recorded_by: str
    seq: int | None = None  # the audit event's sequence number, once recorded

    @classmethod
    def of(
        cls,
        tenant: str,
        installed: Installed,
        *,
        change_id: str | None,
        recorded_at: datetime,
        recorded_by: str,
    ) -> Baseline:
        """The baseline a reading of the database becomes when recorded."""
        return cls(
            tenant=tenant,
            modules=dict(sorted(installed.modules.items())),
            checksums=(
                dict(sorted(installed.checksums.items()))
                if installed.checksums is not None
                else None
            ),
            languages=tuple(sorted(installed.languages)),
            source=installed.source,
            change_id=change_id,
            recorded_at=recorded_at,
            recorded_by=recorded_by,
        )

    def body(self) -> dict[str, Any]:
        """The audit event's `after`: everything but who and when (the event has those)."""
        return {
            "tenant": self.tenant,
            "source": self.source,
            "change_id": self.change_id,
            "modules": dict(self.modules),
            "checksums": dict(self.checksums) if self.checksums is not None else None,
            "languages": list(self.languages),
        }

    @classmethod
    def from_body(
        cls, body: Any, *, recorded_at: datetime, recorded_by: str, seq: int | None
    ) -> Baseline:
        """Read a baseline back from its audit event's `after`."""
        if not isinstance(body, Mapping) or not isinstance(body.get("modules"), Mapping):
            raise InvalidInput(
                [Problem(f"audit event {seq} holds no module baseline", field="after")]
            )
        checksums = body.get("checksums")
        return cls(
            tenant=str(body.get("tenant", "")),
            modules={
                str(name): (str(version) if version is not None else None)
                for name, version in body["modules"].items()
            },
            checksums=(
                {str(name): str(value) for name, value in checksums.items()}
                if isinstance(checksums, Mapping)
                else None
            ),
            languages=tuple(str(code) for code in body.get("languages") or ()),
            source=str(body.get("source", "")),
            change_id=body.get("change_id") or None,
            recorded_at=recorded_at,
            recorded_by=recorded_by,
            seq=seq,
        )

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (CLI --json)."""
        return {
            **self.body(),
            "recorded_at": canonical.to_utc_text(self.recorded_at),
            "recorded_by": self.recorded_by,
            "audit_seq": self.seq,
        }


@dataclass(frozen=True, slots=True)
class VersionChange:
    """A module installed in another version than the baseline recorded."""

    module: str
    approved: str | None
    installed: str | None

    @property
    def direction(self) -> str:
        """upgraded, downgraded, or changed (a version unknown on one side)."""
        if self.approved is None or self.installed is None:
            return "changed"
        return "upgraded" if versions.compare(self.installed, self.approved) > 0 else "downgraded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "approved": self.approved,
            "installed": self.installed,
            "direction": self.direction,
        }


@dataclass(frozen=True, slots=True)
class ModuleDrift:
    """The unauthorized differences of one tenant database (see the module docstring)."""

    tenant: str
    source: str
    installed: int
    unapproved: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    versions: tuple[VersionChange, ...] = ()
    checksums: tuple[str, ...] = ()
    pending: Mapping[str, str] = field(default_factory=dict)
    baseline: Baseline | None = None
    notices: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(
            self.unapproved
            or self.missing
            or self.removed
            or self.versions
            or self.checksums
            or self.pending
        )

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (CLI --json)."""
        return {
            "tenant": self.tenant,
            "source": self.source,
            "installed": self.installed,
            "found": self.found,
            "unapproved": list(self.unapproved),
            "missing": list(self.missing),
            "removed": list(self.removed),
            "versions": [change.as_dict() for change in self.versions],
            "checksums": list(self.checksums),
            "pending": dict(sorted(self.pending.items())),
            "baseline": self.baseline.as_dict() if self.baseline is not None else None,
            "notices": list(self.notices),
        }


def required_by(approved: Iterable[str], addons: AddonSet) -> set[str]:
    """The modules Odoo installs along with `approved`: their `depends`, transitively, and
    every `auto_install` module whose trigger is met (all its `depends` for the boolean form,
    the listed modules for the list form), until nothing more is added."""
    present: set[str] = set()
    stack = list(approved)
    while True:
        while stack:
            name = stack.pop()
            if name in present:
                continue
            present.add(name)
            addon = addons.addons.get(name)
            if addon is not None:
                stack.extend(dep for dep in addon.depends if dep not in present)
        for addon in addons.addons.values():
            if addon.name in present or not addon.installable or addon.auto_install is False:
                continue
            trigger = addon.depends if addon.auto_install is True else addon.auto_install
            if all(dep in present for dep in trigger):
                stack.append(addon.name)
        if not stack:
            return present


def _same_version(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return versions.compare(a, b) == 0


def compare(
    tenant: str,
    database: DatabaseModules,
    *,
    approved: Collection[str],
    baseline: Baseline | None,
    addons: AddonSet | None = None,
) -> ModuleDrift:
    """What differs, without authorization, between a tenant database and what was approved:
    the catalog's module list `approved` (with what it needs, when `addons` are given) and
    the latest `baseline` (see the module docstring)."""
    installed = database.installed
    modules = installed.modules
    catalog_names = set(approved)
    allowed = catalog_names | ALWAYS_APPROVED
    notices: list[str] = []
    if addons is not None:
        needed = required_by(catalog_names, addons)
        allowed |= needed
        unknown = sorted(catalog_names - set(addons.addons))
        if unknown:
            notices.append(
                f"not in the addons given ({addons.source or addons.series}): "
                f"{', '.join(unknown)}; their dependencies are not known"
            )
    if baseline is not None:
        allowed |= set(baseline.modules)
    if addons is None and baseline is None:
        notices.append(
            "no addons given and no baseline recorded: the modules the catalog's modules need "
            "count as unapproved (give --addons, or record a baseline after the next closed change)"
        )
    unapproved = tuple(sorted(set(modules) - allowed))
    missing = tuple(sorted(catalog_names - set(modules)))
    removed: tuple[str, ...] = ()
    changed: list[VersionChange] = []
    checksum_changes: list[str] = []
    if baseline is None:
        notices.append("no baseline recorded: versions and checksums were not compared")
    else:
        removed = tuple(sorted(set(baseline.modules) - set(modules) - catalog_names))
        for name in sorted(set(modules) & set(baseline.modules)):
            if not _same_version(baseline.modules[name], modules[name]):
                changed.append(VersionChange(name, baseline.modules[name], modules[name]))
            elif baseline.checksums is not None and installed.checksums is not None:
                before = baseline.checksums.get(name)
                now = installed.checksums.get(name)
                if before is not None and now is not None and before != now:
                    checksum_changes.append(name)
        gained = sorted(set(installed.languages) - set(baseline.languages))
        lost = sorted(set(baseline.languages) - set(installed.languages))
        if gained or lost:
            notices.append(
                "languages since the baseline: "
                + ", ".join([f"+{code}" for code in gained] + [f"-{code}" for code in lost])
                + " (click-odoo-update's checksums depend on them)"
            )
    return ModuleDrift(
        tenant=tenant,
        source=installed.source,
        installed=len(modules),
        unapproved=unapproved,
        missing=missing,
        removed=removed,
        versions=tuple(changed),
        checksums=tuple(checksum_changes),
        pending=dict(sorted(database.pending.items())),
        baseline=baseline,
        notices=tuple(notices),
    )
