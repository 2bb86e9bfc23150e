"""Addon checksums exactly as click-odoo-update computes them (docs/odoo-checksums.md).

The `checksum` update policy compares these values with the JSON object that click-odoo-update
(acsone/click-odoo-contrib, `click_odoo_contrib/update.py`) stores in the
`module_auto_update.installed_checksums` system parameter, so they must be the same strings, byte
for byte. The algorithm, as read from `click_odoo_contrib/_addon_hash.py` (unchanged since 2018
and identical to OCA server-tools' `module_auto_update/addon_hash.py`, where it came from), and
as implemented here without copying it:

1. Walk. Every file of the addon folder is listed the way `os.walk(top)` lists it (top-down,
   symlinked folders not entered), with each folder's sub-folder list sorted in place and its
   files sorted: a folder's own files come first, by name, then each sub-folder in name order,
   depth first. Names are Python `str` and sort by code point. Folders themselves are never
   hashed, so empty folders change nothing. `walk_order` gives this order for any set of paths.
2. Relative path. Each file is named by `os.path.join(reldir, filename)`: relative to the
   addon folder, with `/` on POSIX, no leading `./` (files at the top are just their name).
3. Exclusions by pattern. A file is skipped when its relative path matches any of the exclude
   patterns with `fnmatch.fnmatch` (case-sensitive on POSIX, where `os.path.normcase` changes
   nothing; `*` also matches `/`, so `*.pyc` skips compiled files at any depth and
   `static/*` everything under the top-level `static` folder only). The patterns are the
   `module_auto_update.exclude_patterns` system parameter, split on `,` with each item
   stripped, or by default (update.py, `DEFAULT_EXCLUDE_PATTERNS`)
   `*.pyc,*.pyo,i18n/*.pot,i18n_extra/*.pot,static/*,tests/*`. `tests/*` was added in
   click-odoo-contrib 1.17.0 (commit c3998c8, CHANGES.rst "exclude the tests/ directory");
   earlier releases and OCA's `module_auto_update` use the list without it
   (`BEFORE_1_17_EXCLUDE_PATTERNS`). Nothing else is excluded: hidden files and folders
   (`.gitignore`), `__pycache__` folders (only their `.pyc` files match `*.pyc`), nested
   `static`/`tests` folders and binary files are all hashed.
4. Translation files by language. The active languages are the `code` of `res_lang` rows where
   `active` (update.py `_get_checksum_dir`), reduced to the part before the first `_`
   (`fr_BE` -> `fr`). When that set is not empty, a file directly in the top-level `i18n` or
   `i18n_extra` folder whose extension (`os.path.splitext`, case-sensitive) is `.po` is skipped
   unless the part of its stem before the first `_` is in the set: with `fr_FR` active,
   `fr.po` and `fr_BE.po` are kept and `de.po` skipped. With no active language at all,
   every `.po` file is kept. Files in deeper folders (`i18n/sub/de.po`) are never filtered.
5. Bytes hashed. One SHA-1 over, for each kept file in walk order, the relative path encoded
   as UTF-8 immediately followed by the file's bytes (no separator, no length; the path is
   hashed "so empty files influence the hash"); the result is the lowercase hex digest. A file
   name that is not valid UTF-8 makes click-odoo-update fail (`UnicodeEncodeError`); here it
   is an `InvalidInput`.

Inputs are relative POSIX paths and bytes; reading a real folder is
`changegate.adapters.addon_checksums`. The same addon gives different checksums for databases
with different active languages, which is why the planner computes them per tenant.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import lru_cache

from changegate.errors import InvalidInput, Problem

#: The system parameter click-odoo-update stores `{addon: checksum}` in, as JSON.
INSTALLED_CHECKSUMS_PARAM = "module_auto_update.installed_checksums"
#: The system parameter overriding the exclude patterns (comma-separated).
EXCLUDE_PATTERNS_PARAM = "module_auto_update.exclude_patterns"
#: click-odoo-update's default exclude patterns, from click-odoo-contrib 1.17.0 on.
DEFAULT_EXCLUDE_PATTERNS: tuple[str, ...] = (
    "*.pyc",
    "*.pyo",
    "i18n/*.pot",
    "i18n_extra/*.pot",
    "static/*",
    "tests/*",
)
#: The defaults before click-odoo-contrib 1.17.0, and OCA's module_auto_update's.
BEFORE_1_17_EXCLUDE_PATTERNS: tuple[str, ...] = DEFAULT_EXCLUDE_PATTERNS[:-1]
#: The folders (directly under the addon) whose `.po` files are filtered by language.
TRANSLATION_FOLDERS = frozenset({"i18n", "i18n_extra"})


def parse_exclude_patterns(value: str) -> tuple[str, ...]:
    """The patterns of a `module_auto_update.exclude_patterns` value, read as update.py does.

    Split on `,`, each item stripped; an empty item is kept (it matches no path).
    """
    return tuple(item.strip() for item in value.split(","))


def is_excluded(
    relpath: str,
    languages: Collection[str],
    *,
    exclude_patterns: Sequence[str] = DEFAULT_EXCLUDE_PATTERNS,
) -> bool:
    """Whether click-odoo-update leaves this file (relative POSIX path) out of the checksum."""
    return _excluder(languages, exclude_patterns)(relpath)


def walk_order(paths: Iterable[str]) -> list[str]:
    """The paths in the order `os.walk` with sorted folders and files visits them."""
    return sorted(paths, key=_walk_key)


def selected_paths(
    paths: Iterable[str],
    *,
    languages: Collection[str],
    exclude_patterns: Sequence[str] = DEFAULT_EXCLUDE_PATTERNS,
) -> list[str]:
    """The files that count for the checksum, in the order they are hashed.

    `paths` are every file of the addon folder (relative POSIX paths, any order); each is
    checked (relative, no `.`/`..`/empty part, listed once).
    """
    listed = _checked(paths)
    excluded = _excluder(languages, exclude_patterns)
    return walk_order(path for path in listed if not excluded(path))


def digest_in_order(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-1 hex of each path (UTF-8) then its bytes, for files already selected and ordered.

    Reads `files` lazily, so a caller can read one file at a time.
    """
    sha1 = hashlib.sha1(usedforsecurity=False)
    for path, content in files:
        try:
            encoded = path.encode("utf-8")
        except UnicodeEncodeError as error:
            problem = Problem("the file name is not valid UTF-8", file=repr(path))
            raise InvalidInput([problem]) from error
        sha1.update(encoded)
        sha1.update(content)
    return sha1.hexdigest()


def addon_checksum(
    files: Iterable[tuple[str, bytes]],
    *,
    languages: Collection[str],
    exclude_patterns: Sequence[str] = DEFAULT_EXCLUDE_PATTERNS,
) -> str:
    """click-odoo-update's checksum of an addon given all its files, in any order.

    `files` are (path relative to the addon folder with `/` separators, content); `languages`
    are the codes of the database's active languages (`fr_FR`, `en_US`, ...).
    """
    contents: dict[str, bytes] = {}
    duplicates: list[str] = []
    for path, content in files:
        if path in contents:
            duplicates.append(path)
        contents[path] = content
    if duplicates:
        raise InvalidInput([Problem("listed more than once", file=path) for path in duplicates])
    ordered = selected_paths(contents, languages=languages, exclude_patterns=exclude_patterns)
    return digest_in_order((path, contents[path]) for path in ordered)


def _walk_key(path: str) -> tuple[tuple[int, str], ...]:
    # At each level os.walk yields a folder's files before entering its sub-folders: a file
    # part sorts as (0, name), a folder part as (1, name).
    *folders, name = path.split("/")
    return (*((1, folder) for folder in folders), (0, name))


# An empty, "." or ".." part, or a NUL: not a relative path to a file inside the addon.
_NOT_RELATIVE = re.compile(r"(?:^|/)\.{0,2}(?:/|\Z)|\x00")


def _checked(paths: Iterable[str]) -> list[str]:
    listed = list(paths)
    problems = [
        Problem("not a relative POSIX file path", file=repr(path))
        for path in listed
        if _NOT_RELATIVE.search(path)
    ]
    if len(set(listed)) != len(listed):
        seen: set[str] = set()
        for path in listed:
            if path in seen:
                problems.append(Problem("listed more than once", file=path))
            seen.add(path)
    if problems:
        raise InvalidInput(problems)
    return listed


def _excluder(languages: Collection[str], exclude_patterns: Sequence[str]) -> Callable[[str], bool]:
    matches = _pattern_matcher(tuple(exclude_patterns))
    kept_languages = frozenset(code.split("_")[0] for code in languages)

    def excluded(path: str) -> bool:
        if matches(path):
            return True
        if not kept_languages:
            return False
        folder, slash, name = path.partition("/")
        if not slash or folder not in TRANSLATION_FOLDERS or "/" in name:
            return False  # only files directly in the top-level i18n and i18n_extra
        stem, extension = posixpath.splitext(name)
        return extension == ".po" and stem.split("_")[0] not in kept_languages

    return excluded


@lru_cache(maxsize=64)
def _pattern_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    # One regular expression for all patterns; fnmatch.translate is what fnmatch itself uses.
    if not patterns:
        return lambda path: False
    combined = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
    return lambda path: combined.match(path) is not None
