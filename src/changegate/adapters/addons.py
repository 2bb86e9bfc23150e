"""Read Odoo addons into an AddonSet: from addons folders, from a Git ref, from OCA wheels.

Manifests are parsed by `changegate.domain.odoo.manifest` (`ast.literal_eval`, never
imported or executed); only manifests and migration scripts are read, each size-checked
before it is read. Every failure is an InvalidInput naming the file (a path, `<ref>:<path>`
or `<wheel>!<member>`) and, where there is one, the field.

- Folders: an addons path as Odoo reads one — each sub-folder holding a manifest is an addon
  (`__manifest__.py`; `__openerp__.py` too before 18.0); with several folders, the first
  one holding an addon wins, as in Odoo's `addons_path`.
- Git: the tree at a ref of an addons repository (addons at its root, or under a folder),
  read through `changegate.adapters.git.Repository` — nothing is checked out.
- Wheels: OCA's packages, `odoo-addon-<name>` from series 15.0 and `odoo<N>-addon-<name>`
  before, holding `odoo/addons/<name>/` (`odoo_addons/<name>/` for 8.0 and 9.0). The
  package's version is the manifest's plus the build setuptools-odoo/whool adds when
  commits followed the last version change (`wheel_build`).

With `checksums=True` (folders and wheels), `Addon.checksum` is click-odoo-update's checksum
for the given active `languages` (`changegate.domain.odoo.checksum`; folders through
`changegate.adapters.addon_checksums`); otherwise it stays None. Git refs offer no checksums:
`Repository.tree()` leaves out symlinks and `read_blobs()` binary files, both of which
click-odoo-update hashes, so a checksum from them could be silently wrong — check the ref out
(`git worktree add`) and read the folder instead.
"""

from __future__ import annotations

import dataclasses
import email.parser
import os
import re
import zipfile
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from changegate.adapters import addon_checksums, git
from changegate.domain.odoo import checksum as checksums_rules
from changegate.domain.odoo import manifest as manifests
from changegate.domain.odoo import versions
from changegate.domain.odoo.addons import Addon, AddonSet
from changegate.errors import InvalidInput, PayloadTooLarge, Problem

MAX_ADDONS = 20_000
MAX_ENTRIES_PER_FOLDER = 100_000
MAX_WHEEL_BYTES = 512 * 1024 * 1024
MAX_WHEEL_MEMBERS = 100_000
MAX_METADATA_BYTES = 1024 * 1024
_READ_LIMIT = max(manifests.MAX_MANIFEST_BYTES, manifests.MAX_SCRIPT_BYTES)


def _fail(message: str, file: str, field: str | None = None) -> InvalidInput:
    return InvalidInput([Problem(message, file=file, field=field)])


def _too_large(size: int, limit: int, file: str) -> PayloadTooLarge:
    return PayloadTooLarge([Problem(f"{size:,} bytes, over the limit of {limit:,}", file=file)])


def _text(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput([Problem("not UTF-8 text", file=file, line=line)]) from None


def _build(
    name: str,
    manifest_bytes: bytes,
    scripts: Mapping[str, bytes],
    *,
    manifest_file: str,
    source: str,
    series: str,
) -> Addon:
    if len(manifest_bytes) > manifests.MAX_MANIFEST_BYTES:
        raise _too_large(len(manifest_bytes), manifests.MAX_MANIFEST_BYTES, manifest_file)
    parsed = manifests.parse_manifest(
        _text(manifest_bytes, manifest_file), name=name, source=manifest_file, series=series
    )
    return manifests.addon_from(
        name, parsed, scripts, source=source, series=series, manifest_file=manifest_file
    )


def _addon_set(addons: Iterable[Addon], series: str, source: str) -> AddonSet:
    ordered = sorted(addons, key=lambda a: a.name)
    if len(ordered) > MAX_ADDONS:
        raise _fail(f"more than {MAX_ADDONS:,} addons", source)
    return AddonSet(series=series, addons={a.name: a for a in ordered}, source=source)


# ---------------------------------------------------------------------------- folders


def _listdir(folder: Path) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise _fail(f"cannot list: {exc.strerror or exc}", str(folder)) from None
    if len(names) > MAX_ENTRIES_PER_FOLDER:
        raise _fail(f"more than {MAX_ENTRIES_PER_FOLDER:,} entries", str(folder))
    return sorted(names)


def _read(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise _too_large(size, limit, str(path))
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise _fail(f"cannot read: {exc.strerror or exc}", str(path)) from None
    if len(data) > limit:
        raise _too_large(len(data), limit, str(path))
    return data


def _folder_scripts(addon_dir: Path) -> dict[str, bytes]:
    """The migration scripts of an addon folder, read (Odoo lists them with os.listdir)."""
    candidates: list[str] = []
    for root in manifests.MIGRATION_ROOTS:
        base = addon_dir / root
        if not base.is_dir():
            continue
        for folder in _listdir(base):
            if not versions.is_migration_folder(folder) or not (base / folder).is_dir():
                continue
            candidates.extend(
                f"{root}/{folder}/{name}"
                for name in _listdir(base / folder)
                if (base / folder / name).is_file()
            )
    return {
        path: _read(addon_dir / path, manifests.MAX_SCRIPT_BYTES)
        for path in manifests.script_paths(candidates)
    }


def _folder_addons(
    path: Path, series: str, checksums: bool, languages: Collection[str]
) -> list[Addon]:
    if not path.exists():
        raise _fail("no such folder", str(path))
    if not path.is_dir():
        raise _fail("not a folder", str(path))
    names = manifests.manifest_names(series)
    found: list[Addon] = []
    for entry in _listdir(path):
        addon_dir = path / entry
        if entry.startswith(".") or not manifests.ADDON_NAME.match(entry):
            continue
        manifest_path = next((addon_dir / n for n in names if (addon_dir / n).is_file()), None)
        if manifest_path is None:
            continue
        addon = _build(
            entry,
            _read(manifest_path, manifests.MAX_MANIFEST_BYTES),
            _folder_scripts(addon_dir),
            manifest_file=str(manifest_path),
            source=str(addon_dir),
            series=series,
        )
        if checksums:
            digest = addon_checksums.checksum_folder(addon_dir, languages=languages)
            addon = dataclasses.replace(addon, checksum=digest)
        found.append(addon)
        if len(found) > MAX_ADDONS:
            raise _fail(f"more than {MAX_ADDONS:,} addons", str(path))
    return found


def from_folder(
    path: Path, series: str, *, checksums: bool = False, languages: Collection[str] = ()
) -> AddonSet:
    """The addons of one addons path: each sub-folder with a manifest (not hidden)."""
    versions.series_major(series)
    return _addon_set(_folder_addons(path, series, checksums, languages), series, str(path))


def from_folders(
    paths: Sequence[Path],
    series: str,
    *,
    checksums: bool = False,
    languages: Collection[str] = (),
) -> AddonSet:
    """The addons of several addons paths; an addon in two of them is taken from the first."""
    versions.series_major(series)
    chosen: dict[str, Addon] = {}
    for path in paths:
        for addon in _folder_addons(path, series, checksums, languages):
            chosen.setdefault(addon.name, addon)
    return _addon_set(chosen.values(), series, ",".join(str(p) for p in paths))


# ---------------------------------------------------------------------------- git


def from_git(repo_path: Path, ref: str, series: str, *, under: str = "") -> AddonSet:
    """The addons in the tree of a Git ref: folders holding a manifest, at `under` (root).

    Sources read `<ref>:<path>`; the set's source is `<repo>@<commit>` (the resolved id).
    """
    versions.series_major(series)
    prefix = under.strip("/")
    if prefix and (".." in prefix.split("/") or prefix.startswith(".")):
        raise _fail(f"{under!r} is not a folder of the repository", str(repo_path), "under")
    prefix = f"{prefix}/" if prefix else ""
    repo = git.Repository(repo_path)
    commit = repo.resolve(ref)
    files: dict[str, dict[str, str]] = {}
    for path, blob in repo.tree(commit):
        if not path.startswith(prefix):
            continue
        name, sep, rest = path[len(prefix) :].partition("/")
        if sep and rest:
            files.setdefault(name, {})[rest] = blob
    names = manifests.manifest_names(series)
    wanted: dict[str, tuple[str, list[str]]] = {}  # addon -> (manifest, scripts)
    for name in sorted(files):
        if name.startswith(".") or not manifests.ADDON_NAME.match(name):
            continue
        manifest_name = next((n for n in names if n in files[name]), None)
        if manifest_name is not None:
            wanted[name] = (manifest_name, manifests.script_paths(files[name]))
    if len(wanted) > MAX_ADDONS:
        raise _fail(f"more than {MAX_ADDONS:,} addons", f"{ref}:{prefix}")
    blob_ids = [files[name][rel] for name, (m, scripts) in wanted.items() for rel in (m, *scripts)]
    blobs = repo.read_blobs(blob_ids, max_bytes=_READ_LIMIT)

    def content(name: str, rel: str) -> bytes:
        display = f"{ref}:{prefix}{name}/{rel}"
        blob = blobs.get(files[name][rel])
        if blob is None or blob.content is None:
            reason = blob.skipped if blob is not None else "not readable"
            if blob is not None and blob.size > _READ_LIMIT:
                raise _too_large(blob.size, _READ_LIMIT, display)
            raise _fail(f"cannot be read: {reason}", display)
        return blob.content

    addons = [
        _build(
            name,
            content(name, manifest_name),
            {rel: content(name, rel) for rel in scripts},
            manifest_file=f"{ref}:{prefix}{name}/{manifest_name}",
            source=f"{ref}:{prefix}{name}",
            series=series,
        )
        for name, (manifest_name, scripts) in wanted.items()
    ]
    return _addon_set(addons, series, f"{repo_path}@{commit}")


# ---------------------------------------------------------------------------- wheels


def wheel_name_prefix(series: str) -> str:
    """The distribution name prefix of OCA addon wheels of a series (setuptools-odoo)."""
    major = versions.series_major(series)
    return "odoo-addon-" if major >= 15 else f"odoo{major}-addon-"


def _normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them: case and runs of -_. do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _numbers(version: str) -> list[str]:
    return [str(int(p)) if p.isascii() and p.isdigit() else p for p in version.split(".")]


def wheel_build(wheel_version: str, manifest_version: str, series: str) -> int | None:
    """How many commits a wheel's version counts past its manifest's version, or None.

    OCA builds addon wheels with setuptools-odoo (and whool, on manifestoo-core), which use
    the manifest version when the last commit touching the addon changed it, and otherwise
    add the number N of commits since that change, by the series' post-version strategy:
    from 15.0 `.N` (a sixth part: 16.0.1.0.4 → 16.0.1.0.4.3), for 13.0 and 14.0 `+1.devN`
    (last part bumped: 14.0.1.0.4 → 14.0.1.0.5.dev3), before `.99.devN`
    (12.0.1.0.4.99.dev3). 0 when the versions are the same; None when the wheel's version is
    not its manifest's (not the same addon version, or another series' scheme).
    """
    major = versions.series_major(series)
    wheel, declared = _numbers(wheel_version), _numbers(manifest_version)
    if wheel == declared:
        return 0
    if major >= 15:
        if len(wheel) == len(declared) + 1 and wheel[:-1] == declared and wheel[-1].isdigit():
            return int(wheel[-1])
        return None
    tail = wheel[-1]
    if not (tail.startswith("dev") and tail[3:].isdigit()):
        return None
    if major >= 13:
        if len(wheel) != len(declared) + 1 or not declared[-1].isdigit():
            return None
        bumped = [*declared[:-1], str(int(declared[-1]) + 1)]
        return int(tail[3:]) if wheel[:-1] == bumped else None
    if wheel[:-2] == declared and wheel[-2] == "99":
        return int(tail[3:])
    return None


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, display: str) -> bytes:
    if info.file_size > limit:
        raise _too_large(info.file_size, limit, display)
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError) as exc:
        raise _fail(f"cannot be read from the wheel: {exc}", display) from None
    if len(data) > limit:
        raise _too_large(len(data), limit, display)
    return data


_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"


def _declared_entries(path: Path) -> int | None:
    """The entry count a zip's end-of-central-directory record declares (the ZIP64 one when
    the classic record says 0xFFFF), read from the file's tail; None when not found (then
    `zipfile` reports the archive as broken)."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - (65_536 + 22 + 20)))
        tail = handle.read()
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    if count != 0xFFFF:
        return count
    locator = tail.rfind(_EOCD64_LOCATOR, 0, at)
    if locator < 0:
        return None
    offset = int.from_bytes(tail[locator + 8 : locator + 16], "little")
    with path.open("rb") as handle:
        handle.seek(offset)
        record = handle.read(56)
    if record[:4] != b"PK\x06\x06":
        return None
    return int.from_bytes(record[32:40], "little")


def _wheel_addons(
    path: Path, series: str, checksums: bool, languages: Collection[str]
) -> list[Addon]:
    wheel = path.name
    if not path.is_file():
        raise _fail("no such file", str(path))
    size = path.stat().st_size
    if size > MAX_WHEEL_BYTES:
        raise _too_large(size, MAX_WHEEL_BYTES, str(path))
    entries = _declared_entries(path)
    if entries is not None and entries > MAX_WHEEL_MEMBERS:
        # Refused before `ZipFile` builds its member list (a small file can declare millions).
        raise _fail(f"more than {MAX_WHEEL_MEMBERS:,} members", str(path))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(f"not a wheel (zip archive): {exc}", str(path)) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_WHEEL_MEMBERS:
            raise _fail(f"more than {MAX_WHEEL_MEMBERS:,} members", str(path))
        members = {
            i.filename: i
            for i in infos
            if not i.is_dir()
            and not i.filename.startswith("/")
            and ".." not in i.filename.split("/")
        }
        metadata = [n for n in members if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(metadata) != 1:
            raise _fail("not a wheel: no single *.dist-info/METADATA", str(path))
        display = f"{wheel}!{metadata[0]}"
        headers = email.parser.HeaderParser().parsestr(
            _text(_member(archive, members[metadata[0]], MAX_METADATA_BYTES, display), display)
        )
        dist_name, dist_version = headers.get("Name") or "", headers.get("Version") or ""
        prefix = wheel_name_prefix(series)
        if not _normalized(dist_name).startswith(_normalized(prefix)):
            raise _fail(
                f"{dist_name!r} is not an OCA addon package of series {series} "
                f"(expected {prefix}<addon>)",
                str(path),
                "Name",
            )
        if not dist_version.startswith(series + "."):
            raise _fail(f"version {dist_version!r} is not of series {series}", str(path), "Version")
        root = "odoo/addons/" if versions.series_major(series) >= 10 else "odoo_addons/"
        by_addon: dict[str, dict[str, str]] = {}
        for name in members:
            if name.startswith(root):
                addon, sep, rest = name[len(root) :].partition("/")
                if sep and rest:
                    by_addon.setdefault(addon, {})[rest] = name
        names = manifests.manifest_names(series)
        found: list[Addon] = []
        for addon in sorted(by_addon):
            if not manifests.ADDON_NAME.match(addon):
                continue
            manifest_name = next((n for n in names if n in by_addon[addon]), None)
            if manifest_name is None:
                continue
            manifest_member = by_addon[addon][manifest_name]
            manifest_display = f"{wheel}!{manifest_member}"
            scripts = {
                rel: _member(
                    archive,
                    members[by_addon[addon][rel]],
                    manifests.MAX_SCRIPT_BYTES,
                    f"{wheel}!{by_addon[addon][rel]}",
                )
                for rel in manifests.script_paths(by_addon[addon])
            }
            built = _build(
                addon,
                _member(archive, members[manifest_member], _READ_LIMIT, manifest_display),
                scripts,
                manifest_file=manifest_display,
                source=wheel,
                series=series,
            )
            if checksums:
                built = dataclasses.replace(
                    built,
                    checksum=_wheel_checksum(archive, members, by_addon[addon], wheel, languages),
                )
            found.append(built)
    if not found:
        raise _fail(f"no addon under {root} in the wheel", str(path))
    packaged = _normalized(dist_name)[len(_normalized(prefix)) :]
    main = next((a for a in found if _normalized(a.name) == packaged), None)
    if main is None:
        raise _fail(
            f"{dist_name!r} names addon {packaged!r}, not in the wheel "
            f"(found {', '.join(a.name for a in found)})",
            str(path),
            "Name",
        )
    if wheel_build(dist_version, main.version, series) is None:
        raise _fail(
            f"version {dist_version!r} is not the manifest's {main.version!r} "
            "(or it plus the build number of commits since)",
            str(path),
            "Version",
        )
    return found


def _wheel_checksum(
    archive: zipfile.ZipFile,
    members: Mapping[str, zipfile.ZipInfo],
    files: Mapping[str, str],
    wheel: str,
    languages: Collection[str],
) -> str:
    """click-odoo-update's checksum of an addon as its wheel installs it (files read lazily)."""
    ordered = checksums_rules.selected_paths(files, languages=languages)

    def contents() -> Iterator[tuple[str, bytes]]:
        for rel in ordered:
            member = files[rel]
            limit = addon_checksums.DEFAULT_MAX_FILE_BYTES
            yield rel, _member(archive, members[member], limit, f"{wheel}!{member}")

    return checksums_rules.digest_in_order(contents())


def from_wheels(
    paths: Iterable[Path],
    series: str,
    *,
    checksums: bool = False,
    languages: Collection[str] = (),
) -> AddonSet:
    """The addons inside OCA addon wheels of one series; an addon in two wheels is an error."""
    versions.series_major(series)
    chosen: dict[str, Addon] = {}
    listed: list[str] = []
    for path in paths:
        listed.append(path.name)
        for addon in _wheel_addons(path, series, checksums, languages):
            if addon.name in chosen:
                raise _fail(
                    f"addon {addon.name!r} is also in {chosen[addon.name].source}",
                    str(path),
                )
            chosen[addon.name] = addon
    return _addon_set(chosen.values(), series, ",".join(listed))
