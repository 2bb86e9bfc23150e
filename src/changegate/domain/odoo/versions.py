"""Odoo module versions, by Odoo's own rules: series prefixing, ordering, migration folders.

Everything here reproduces documented behaviour of Odoo's server (odoo/odoo), re-implemented
rather than imported, so the planner agrees with what the target server will do:

- `adapt_version` is `odoo.modules.module.adapt_version`, whose rules changed twice: up to
  16.0 any version not starting with `<series>.` is prefixed; 17.0 also refuses a module part
  other than `x.y` or `x.y.z`; from 18.0 a version has 2 to 5 integer parts, one of 3 parts or
  fewer is prefixed, and a longer one is kept as written (`belongs_to` then says whether the
  server accepts it: 18.0 marks an addon of another series `installable=False`).
- `parse_version` is `odoo.tools.parse_version.parse_version` (itself setuptools 0.6c8's):
  numbers compare numerically (16.0.2.6.1 < 16.0.2.11.1), trailing zeros do not count
  (17.0.1.0 == 17.0.1.0.0), and pre-release tags sort before the release.
- the migration-folder helpers are `odoo.modules.migration.MigrationManager`: which folder
  names are versions (`VERSION_RE`), how a series-less folder ("1.1") is read as
  `<series>.1.1`, the `0.0.0` folder that runs on any version change (first in `pre`, last
  in `post` and `end`), and `installed < folder <= new`, compared on the module part only
  for series-less folders so a major upgrade does not re-run them.

`packaging.version` is deliberately not used: it orders pre-releases, local versions and
trailing zeros differently from Odoo, and the planner must predict Odoo, not pip.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator

from changegate.domain.odoo.addons import MigrationScript, Stage
from changegate.errors import InvalidInput, Problem

ANY_CHANGE_FOLDER = "0.0.0"
"""The migration folder Odoo runs on every version change of its addon."""

_SERIES = re.compile(r"^(?:(?P<major>[1-9]\d*)\.0|saas~(?P<saas>[1-9]\d*)\.[1-9]\d*)$", re.ASCII)

# parse_version: the tokens (runs of digits, runs of letters, dots, dashes; whatever lies
# between them is a token too), the aliases Odoo gives some of them, and the padding that
# makes numbers compare as numbers inside a tuple of strings.
_TOKEN = re.compile(r"(\d+|[a-z]+|\.|-)")
_ALIASES = {
    "pre": "c",
    "preview": "c",
    "rc": "c",
    "dev": "@",
    "-": "final-",
    "_": "final-",
    "saas": "",
    "~": "",
}
_FINAL = "*final"
_PATCH = "*final-"
_ZERO = "0" * 8

# Names of migration folders Odoo accepts (odoo.modules.migration.VERSION_RE): an optional
# server series (6.1, 6.0-9.0, 10.0 and later, 7-10.saas~N, saas~11.1 and later) then a module
# version of exactly two or three numbers. "0.0.0" matches too; "tests" is excluded by name.
_FOLDER = re.compile(
    r"""^
    (?:
        (?: 6\.1
          | [6-9]\.0
          | [1-9]\d+\.0
          | (?:7|8|9|10)\.saas~[1-9]\d*
          | saas~(?:1[1-9]|[2-9]\d+)\.[1-9]
        )\.
    )?
    \d+\.\d+(?:\.\d+)?
    $""",
    re.VERBOSE | re.ASCII,
)
_MODULE_PART_17 = re.compile(r"^[0-9]+\.[0-9]+(?:\.[0-9]+)?$", re.ASCII)


def _invalid(message: str, field: str = "version") -> InvalidInput:
    return InvalidInput([Problem(message, field=field)])


def series_major(series: str) -> int:
    """The major number of a series: 17 for "17.0" and for "saas~17.2"."""
    match = _SERIES.match(series)
    if match is None:
        raise _invalid(f"{series!r} is not an Odoo series (e.g. 17.0 or saas~17.2)", "series")
    return int(match["major"] or match["saas"])


# ---------------------------------------------------------------------------- series prefixing


def adapt_version(version: str, series: str) -> str:
    """The version as the given series' server records it (`adapt_version`), or InvalidInput.

    - up to 16.0: a version that is not `<series>.…` (or is exactly the series) gets
      `<series>.` prefixed and is never refused: "1.0" → "16.0.1.0", and even "15.0.1.0.0"
      → "16.0.15.0.1.0.0";
    - 17.0: the same prefixing, then the module part must be `x.y` or `x.y.z`, so a version of
      another series ("16.0.1.0.0") or of four module parts is refused ("invalid manifest");
    - 18.0 and later: 2 to 5 parts, each an integer (the series' own first part may carry
      letters, "saas~18.1"); 3 parts or fewer and not starting with the series: prefixed;
      longer: kept as written. "16.0.1.0.0" stays, and `belongs_to` is then False.
    """
    if not isinstance(version, str) or not version:
        raise _invalid(f"{version!r} is not a version")
    major = series_major(series)
    if major < 17:
        if version == series or not version.startswith(series + "."):
            return f"{series}.{version}"
        return version
    if major == 17:
        if version == series or not version.startswith(series + "."):
            module_part, adapted = version, f"{series}.{version}"
        else:
            module_part, adapted = version[len(series) + 1 :], version
        if not _MODULE_PART_17.match(module_part):
            raise _invalid(
                f"invalid version {module_part!r}: modules should have a version in format "
                f"x.y, x.y.z, {series}.x.y or {series}.x.y.z"
            )
        return adapted
    parts = version.split(".")
    if not 2 <= len(parts) <= 5:
        raise _invalid(f"invalid version {version!r}: must have between 2 and 5 parts")
    if version.startswith(series) and not parts[0].isdigit():
        parts[0] = "".join(c for c in parts[0] if c.isdigit())
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise _invalid(f"invalid version {version!r}: every part must be a whole number")
    if len(parts) <= 3 and not version.startswith(series):
        return f"{series}.{version}"
    return version


def belongs_to(version: str, series: str) -> bool:
    """Whether an adapted version is one of the series (Odoo 18's `check_version`)."""
    return version.startswith(series + ".")


# ---------------------------------------------------------------------------- ordering


def _tokens(text: str) -> Iterator[str]:
    for raw in _TOKEN.split(text):
        token = _ALIASES.get(raw, raw)
        if token in ("", "."):
            continue
        if token[0] in string.digits:
            yield token.zfill(8)
        else:
            yield "*" + token
    yield _FINAL  # a release sorts after its pre-releases ("*c", "*@", "*alpha" < "*final")


def parse_version(text: str | None) -> tuple[str, ...]:
    """Odoo's sort key for a version: a tuple of strings, compared element by element.

    Numbers are zero-padded to 8 digits; words are lower-cased and prefixed with "*"; "pre",
    "preview" and "rc" read as "c", "dev" as "@" (before any other tag); "-" and "_" as a
    patch level ("*final-", after the release); "saas" and "~" vanish; dots separate. The
    zeros that end a run of numbers are dropped, so "2.4.0" == "2.4"; a patch level directly
    before a pre-release tag is dropped too. An empty version reads as "0.1".
    """
    key: list[str] = []
    for token in _tokens((text or "0.1").lower()):
        if token.startswith("*"):
            if token < _FINAL:
                while key and key[-1] == _PATCH:
                    key.pop()
            while key and key[-1] == _ZERO:
                key.pop()
        key.append(token)
    return tuple(key)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version a sorts before, with or after version b under `parse_version`."""
    left, right = parse_version(a), parse_version(b)
    return (left > right) - (left < right)


def is_newer(new: str, installed: str, series: str) -> bool:
    """Whether a manifest version is newer than the version a database recorded.

    What Odoo's module list counts as "to update" (`latest_version` < the adapted manifest
    version) and what Odoo.sh uses to decide which modules to update.
    """
    return parse_version(adapt_version(new, series)) > parse_version(installed)


# ---------------------------------------------------------------------------- migration folders


def is_migration_folder(name: str) -> bool:
    """Whether Odoo reads `migrations/<name>/` (a version per VERSION_RE; not "tests").

    Any other folder is skipped by Odoo with a warning, its scripts never run.
    """
    return name != "tests" and _FOLDER.match(name) is not None


def is_series_less(folder: str) -> bool:
    """Whether a folder names only a module version ("1.1", "1.0.2"), not "0.0.0"."""
    return folder != ANY_CHANGE_FOLDER and folder.count(".") <= 2


def folder_version(folder: str, series: str) -> str:
    """The full version a migration folder stands for on a server of the given series.

    Odoo's `convert_version`: "0.0.0" stays; a name with more than two dots already holds
    the series ("17.0.1.1"); anything else is series-less and gets it ("1.1" → "17.0.1.1").
    """
    if folder == ANY_CHANGE_FOLDER or folder.count(".") > 2:
        return folder
    return f"{series}.{folder}"


def folder_runs(folder: str, installed: str, new: str, series: str) -> bool:
    """Whether Odoo runs the scripts of one migration folder when updating an addon.

    `installed` is the version the database recorded (`ir_module_module.latest_version`,
    already series-prefixed); `new` the manifest version being installed (adapted here).

    - "0.0.0" runs whenever installed < new;
    - a series-less folder runs when installed < folder <= new comparing only what follows
      the series (the first two parts), so "2.0" ran under 9.0.2.0 does not run again when
      the addon moves to 10.0.2.0;
    - a full folder ("17.0.1.1") runs when installed < folder <= new.
    """
    installed_key = parse_version(installed)
    new_key = parse_version(folder_version(adapt_version(new, series), series))
    if folder == ANY_CHANGE_FOLDER and installed_key < new_key:
        return True
    full = folder_version(folder, series)
    folder_key = parse_version(full)
    if full != folder:
        return installed_key[2:] < folder_key[2:] <= new_key[2:]
    return installed_key < folder_key <= new_key


def ordered_folders(folders: Iterable[str], stage: Stage, series: str) -> list[str]:
    """Valid folder names in the order Odoo visits them for a stage.

    Sorted by the version each stands for (numerically: 16.0.2.6.1 before 16.0.2.11.0), with
    "0.0.0" moved first for `pre` and last for `post` and `end`; names that are not versions
    are left out, as Odoo skips them.
    """
    unique = sorted(
        {f for f in folders if is_migration_folder(f)},
        key=lambda f: (parse_version(folder_version(f, series)), f),
    )
    if ANY_CHANGE_FOLDER in unique:
        unique.remove(ANY_CHANGE_FOLDER)
        if stage is Stage.PRE:
            unique.insert(0, ANY_CHANGE_FOLDER)
        else:
            unique.append(ANY_CHANGE_FOLDER)
    return unique


def folders_to_run(
    folders: Iterable[str], installed: str, new: str, series: str, stage: Stage
) -> list[str]:
    """The migration folders whose `stage` scripts run, in Odoo's order (`folder_runs`)."""
    return [
        folder
        for folder in ordered_folders(folders, stage, series)
        if folder_runs(folder, installed, new, series)
    ]


_FOLDER_RANK = {"migrations": 0, "upgrades": 1}


def scripts_to_run(
    scripts: Iterable[MigrationScript], installed: str, new: str, series: str, stage: Stage
) -> list[MigrationScript]:
    """The scripts of one stage Odoo runs for an addon update, in the order it runs them.

    Folder by folder (`folders_to_run`); inside one version, the scripts of `migrations/`
    and `upgrades/` together, sorted by file name (Odoo sorts on the base name).
    """
    of_stage = [s for s in scripts if s.stage is stage]
    by_folder: dict[str, list[MigrationScript]] = {}
    for script in of_stage:
        by_folder.setdefault(script.version, []).append(script)
    ordered: list[MigrationScript] = []
    for folder in folders_to_run(by_folder, installed, new, series, stage):
        ordered.extend(
            sorted(
                by_folder[folder],
                key=lambda s: (s.path.rsplit("/", 1)[-1], _FOLDER_RANK.get(s.folder, 2), s.path),
            )
        )
    return ordered
