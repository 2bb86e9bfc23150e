"""Odoo manifests read safely, and addons built from a manifest and their migration scripts.

A manifest (`__manifest__.py`, `__openerp__.py` before 18.0) is parsed with `ast` and
`ast.literal_eval` only: it is never imported or executed, so a hostile addon cannot run code
in changegate. Odoo reads it the same way (`load_manifest`: `ast.literal_eval` of the file,
layered over `_DEFAULT_MANIFEST`), which is why defaults and normalisation below follow
`odoo.modules.module` of the target series.

Migration scripts are found the way `odoo.modules.migration.MigrationManager` finds them:
`migrations/<version>/` and `upgrades/<version>/` whose folder name is a version
(`versions.is_migration_folder`), `*.py` files directly inside (not hidden), run in the stage
their name starts with: `pre-`, `post-` or `end-`; any other file is not run. The packages a
script imports are read from its syntax tree, never by importing it.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from changegate.domain.odoo import versions
from changegate.domain.odoo.addons import Addon, MigrationScript, Stage
from changegate.errors import InvalidInput, PayloadTooLarge, Problem

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SCRIPT_BYTES = 4 * 1024 * 1024
MIGRATION_ROOTS = ("migrations", "upgrades")
ADDON_NAME = re.compile(r"^\w{1,256}$")  # Odoo's MODULE_NAME_RE (19.0)

# `_DEFAULT_MANIFEST` of odoo/modules/module.py (17.0), with the keys 18.0 added; `license`
# and `author` are filled in `parse_manifest`, as Odoo does.
_DEFAULTS: dict[str, Any] = {
    "application": False,
    "assets": {},
    "author": "Odoo S.A.",
    "auto_install": False,
    "bootstrap": False,
    "category": "Uncategorized",
    "cloc_exclude": [],
    "configurator_snippets": {},
    "countries": [],
    "data": [],
    "demo": [],
    "demo_xml": [],
    "depends": [],
    "description": "",
    "external_dependencies": {},
    "images": [],
    "images_preview_theme": {},
    "init_xml": [],
    "installable": True,
    "live_test_url": "",
    "new_page_templates": {},
    "post_init_hook": "",
    "post_load": None,
    "pre_init_hook": "",
    "sequence": 100,
    "snippet_lists": {},
    "summary": "",
    "test": [],
    "uninstall_hook": "",
    "update_xml": [],
    "version": "1.0",
    "web": False,
    "website": "",
}
_STAGE_PREFIXES = tuple((f"{stage.value}-", stage) for stage in Stage)


def manifest_names(series: str) -> tuple[str, ...]:
    """The manifest file names a server of the series reads, in its order of preference."""
    if versions.series_major(series) >= 18:
        return ("__manifest__.py",)
    return ("__manifest__.py", "__openerp__.py")


def _problem(
    message: str, source: str, field: str | None = None, line: int | None = None
) -> Problem:
    return Problem(message, file=source, field=field, line=line)


def _key_name(node: ast.expr | None) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return "<key>" if node is None else ast.unparse(node)


def _literal(tree: ast.Expression, source: str) -> dict[Any, Any]:
    """The dict literal of a parsed manifest, or InvalidInput naming the key at fault."""
    body = tree.body
    if not isinstance(body, ast.Dict):
        raise InvalidInput(
            [
                _problem(
                    f"a manifest must be one dict literal, not {type(body).__name__}",
                    source,
                    line=getattr(body, "lineno", None),
                )
            ]
        )
    problems: list[Problem] = []
    for key, value in zip(body.keys, body.values, strict=True):
        name = _key_name(key)
        if key is None:
            problems.append(_problem("`**` unpacking is not a literal", source, name, value.lineno))
            continue
        for node, what in ((key, "key"), (value, "value")):
            try:
                ast.literal_eval(node)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                problems.append(
                    _problem(
                        f"the {what} is not a literal ({type(node).__name__}); manifests are "
                        "read without running code",
                        source,
                        name,
                        node.lineno,
                    )
                )
                break
    if problems:
        raise InvalidInput(problems)
    try:
        value = ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
        raise InvalidInput([_problem(f"not a literal dict: {exc}", source)]) from None
    if not isinstance(value, dict):  # pragma: no cover - a Dict node evaluates to a dict
        raise InvalidInput([_problem("a manifest must be a dict literal", source)])
    for key in value:
        if not isinstance(key, str):
            raise InvalidInput([_problem(f"key {key!r} is not a string", source, repr(key))])
    return value


def _strings(value: Any, source: str, field: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput([_problem("must be a list of strings", source, field)])
    return list(value)


def parse_manifest(
    text: str, *, name: str, source: str, series: str | None = None
) -> dict[str, Any]:
    """A manifest's dict with Odoo's defaults, read with `ast.literal_eval` only.

    Refused with InvalidInput naming `source` (and the key, and its line, where there is
    one): a text over MAX_MANIFEST_BYTES, a syntax error, anything but one dict literal, a
    key or value that is not a literal (a call, a name, an f-string, `**`), and keys Odoo
    would choke on: `version` not a string or number, `depends` not a list of names,
    `auto_install` not a boolean or a list of names that are all in `depends` (Odoo asserts
    it), `installable` not a boolean, `external_dependencies` not a dict of lists.

    Odoo's normalisation that the planner needs is applied: a missing `license` is LGPL-3;
    from 19.0 (`series` given) an empty `depends` means `["base"]` (except for base itself)
    and a missing `author` falls back on `contributors`, then `maintainer`. `auto_install`
    keeps its form (a boolean, or the list) so both can be reported. The README fallback of
    `description` is not applied (it needs the addon's files, and nothing here uses it).
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MANIFEST_BYTES:
        raise PayloadTooLarge(
            [_problem(f"manifest of {size:,} bytes, over {MAX_MANIFEST_BYTES:,}", source)]
        )
    try:
        # ast.literal_eval (which Odoo calls on the text) strips leading spaces and tabs too.
        tree = ast.parse(text.lstrip(" \t"), filename=source, mode="eval")
    except SyntaxError as exc:
        raise InvalidInput(
            [_problem(f"not a Python literal: {exc.msg}", source, line=exc.lineno)]
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InvalidInput([_problem(f"cannot be parsed: {exc}", source)]) from None
    declared = _literal(tree, source)
    manifest = copy.deepcopy(_DEFAULTS)
    manifest.update(declared)
    major = versions.series_major(series) if series is not None else None

    version = manifest["version"]
    if isinstance(version, bool) or not isinstance(version, str | int | float):
        raise InvalidInput([_problem("must be a string such as 17.0.1.0.0", source, "version")])
    manifest["version"] = str(version)
    manifest["depends"] = _strings(manifest["depends"], source, "depends")
    if major is not None and major >= 19:
        if name == "base":
            manifest["depends"] = []
        elif not manifest["depends"]:
            manifest["depends"] = ["base"]
        if not declared.get("author"):
            fallback = declared.get("contributors") or declared.get("maintainer") or ""
            manifest["author"] = str(fallback)
    if not manifest.get("license"):
        manifest["license"] = "LGPL-3"
    if not isinstance(manifest["installable"], bool):
        raise InvalidInput([_problem("must be True or False", source, "installable")])

    auto_install = manifest["auto_install"]
    if not isinstance(auto_install, bool):
        if not isinstance(auto_install, list | tuple | set | frozenset):
            raise InvalidInput(
                [_problem("must be True, False or a list of dependencies", source, "auto_install")]
            )
        triggers = _strings(sorted(auto_install, key=str), source, "auto_install")
        outside = sorted(set(triggers) - set(manifest["depends"]))
        if outside:
            raise InvalidInput(
                [
                    _problem(
                        "auto_install triggers must be dependencies; not in depends: "
                        + ", ".join(outside),
                        source,
                        "auto_install",
                    )
                ]
            )
        manifest["auto_install"] = list(dict.fromkeys(_ordered(auto_install)))

    external = manifest["external_dependencies"]
    if not isinstance(external, dict) or not all(isinstance(k, str) for k in external):
        raise InvalidInput(
            [_problem("must be a dict such as {'python': [...]}", source, "external_dependencies")]
        )
    for kind, listed in external.items():
        _strings(listed, source, f"external_dependencies.{kind}")
    return manifest


def _ordered(values: Iterable[str]) -> list[str]:
    """A list or tuple in its written order; a set (no order) sorted."""
    if isinstance(values, set | frozenset):
        return sorted(values)
    return list(values)


# ---------------------------------------------------------------------------- migration scripts


def script_stage(path: str) -> tuple[str, str, Stage] | None:
    """(root, folder, stage) of a path Odoo runs as a migration script, else None.

    `path` is relative to the addon's folder, with "/" separators:
    `migrations/<version>/<stage>-<anything>.py` or the same under `upgrades/`.
    """
    parts = path.split("/")
    if len(parts) != 3 or parts[0] not in MIGRATION_ROOTS:
        return None
    root, folder, file_name = parts
    if not versions.is_migration_folder(folder):
        return None
    if file_name.startswith(".") or not file_name.endswith(".py"):
        return None
    for prefix, stage in _STAGE_PREFIXES:
        if file_name.startswith(prefix):
            return root, folder, stage
    return None


def script_paths(paths: Iterable[str]) -> list[str]:
    """The paths among an addon's files that Odoo runs as migration scripts, sorted."""
    return sorted(p for p in set(paths) if script_stage(p) is not None)


def imported_packages(source_code: bytes, *, source: str) -> tuple[str, ...]:
    """Top-level packages a script imports, read from its syntax tree (never executed).

    `import a.b` and `from a.b import c` give "a"; relative imports (`from . import x`)
    are the addon's own and are left out; `__import__("a")` and
    `importlib.import_module("a.b")` with a literal name count too. Sorted, unique.
    """
    if len(source_code) > MAX_SCRIPT_BYTES:
        raise PayloadTooLarge(
            [_problem(f"script of {len(source_code):,} bytes, over {MAX_SCRIPT_BYTES:,}", source)]
        )
    try:
        tree = ast.parse(source_code, filename=source)
    except SyntaxError as exc:
        raise InvalidInput(
            [
                _problem(
                    f"syntax error: {exc.msg}; Odoo would fail to load it", source, line=exc.lineno
                )
            ]
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InvalidInput([_problem(f"cannot be parsed: {exc}", source)]) from None
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and first.value
                and not first.value.startswith(".")
            ):
                found.add(first.value.split(".")[0])
    return tuple(sorted(found))


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "import_module"
        and isinstance(func.value, ast.Name)
        and func.value.id == "importlib"
    )


def migration_scripts(files: Mapping[str, bytes], *, source: str) -> tuple[MigrationScript, ...]:
    """The migration scripts among an addon's files (path → content), sorted by path.

    `files` may hold every file of the addon or only the scripts (`script_paths`).
    """
    scripts: list[MigrationScript] = []
    for path in script_paths(files):
        found = script_stage(path)
        assert found is not None
        root, folder, stage = found
        imports = imported_packages(files[path], source=f"{source}/{path}")
        scripts.append(MigrationScript(root, folder, stage, path, imports))
    return tuple(scripts)


# ---------------------------------------------------------------------------- addons


def addon_from(
    name: str,
    manifest: Mapping[str, Any],
    files: Mapping[str, bytes],
    *,
    source: str,
    series: str | None = None,
    manifest_file: str | None = None,
) -> Addon:
    """The Addon a parsed manifest (`parse_manifest`) and the addon's files describe.

    `files` maps paths relative to the addon's folder ("migrations/17.0.1.1/pre-x.py") to
    their bytes; only migration scripts are read from it. With `series`, the version is
    checked as that series' server would: a version it refuses (`versions.adapt_version`)
    on an installable addon is InvalidInput on the `version` field, as Odoo reports
    "invalid manifest"; from 18.0 a well-formed version of another series makes the addon
    not installable, as Odoo does. `Addon.version` keeps the version as written. Errors
    name `manifest_file` (default: `source`).
    """
    if not ADDON_NAME.match(name):
        raise InvalidInput([_problem(f"{name!r} is not an addon name", source, "name")])
    version = str(manifest.get("version", "1.0"))
    installable = bool(manifest.get("installable", True))
    if series is not None and installable:
        try:
            adapted = versions.adapt_version(version, series)
        except InvalidInput as exc:
            raise InvalidInput(
                [
                    _problem(f"{p.message} (series {series})", manifest_file or source, "version")
                    for p in exc.problems
                ]
            ) from None
        if not versions.belongs_to(adapted, series):
            installable = False
    auto_install = manifest.get("auto_install", False)
    auto: bool | tuple[str, ...] = (
        auto_install if isinstance(auto_install, bool) else tuple(_ordered(auto_install))
    )
    external = manifest.get("external_dependencies") or {}
    return Addon(
        name=name,
        version=version,
        depends=tuple(manifest.get("depends", ())),
        auto_install=auto,
        installable=installable,
        external_python=tuple(external.get("python", ())),
        migrations=migration_scripts(files, source=source),
        checksum=None,
        source=source,
    )
