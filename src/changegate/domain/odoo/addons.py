"""The shared shapes of Odoo addons as the planner sees them (docs/odoo.md).

Readers (folders, two Git refs, wheels: `changegate.adapters.addons`) build these; the
version rules (`versions`), checksums (`checksum`) and the planner (`plan`) consume them.
Everything here is pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Stage(StrEnum):
    """When a migration script runs, as Odoo's `odoo.modules.migration` orders them."""

    PRE = "pre"
    POST = "post"
    END = "end"


@dataclass(frozen=True, slots=True)
class MigrationScript:
    """One script under `<addon>/migrations/<version>/` or `<addon>/upgrades/<version>/`."""

    folder: str  # "migrations" or "upgrades"
    version: str  # the folder's name as written: "17.0.1.1", "1.1", "0.0.0"
    stage: Stage
    path: str  # relative to the addon's folder
    imports: tuple[str, ...] = ()  # top-level packages it imports (openupgradelib, ...)


@dataclass(frozen=True, slots=True)
class Addon:
    """One addon as its manifest (parsed safely, with Odoo's defaults) describes it."""

    name: str
    version: str  # as the manifest writes it ("1.0", "17.0.1.2.0"); "1.0" when absent
    depends: tuple[str, ...] = ()
    auto_install: bool | tuple[str, ...] = False  # the boolean or the list form
    installable: bool = True
    external_python: tuple[str, ...] = ()  # external_dependencies["python"]
    migrations: tuple[MigrationScript, ...] = ()
    checksum: str | None = None  # click-odoo-update's content hash, when computed
    source: str = ""  # where it was read: a folder, `<ref>:<path>`, a wheel's file name


@dataclass(frozen=True, slots=True)
class AddonSet:
    """The addons available in one image or addons tree, for one Odoo series."""

    series: str  # "17.0"
    addons: Mapping[str, Addon] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True, slots=True)
class Installed:
    """What one tenant database has installed: module -> version the database recorded
    (`ir_module_module.latest_version`, series-prefixed; None when unknown, e.g. read from
    the catalog's module list), the checksums click-odoo-update stored
    (`module_auto_update.installed_checksums`), and the languages installed."""

    modules: Mapping[str, str | None]
    checksums: Mapping[str, str] | None = None
    languages: tuple[str, ...] = ()
    source: str = ""  # "catalog" or where it was read (service/database)
