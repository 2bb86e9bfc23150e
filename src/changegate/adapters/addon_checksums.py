"""click-odoo-update's checksum of an addon folder on disk (docs/odoo-checksums.md).

The rules (order, exclusions, languages, bytes hashed) are `changegate.domain.odoo.checksum`;
this module only lists and reads files the way click-odoo-update's `os.walk(top)` does:

- the addon folder itself may be a symlink (os.walk lists the folder it points to);
- a symlink to a folder inside it is listed as a folder and not entered, so nothing under it
  counts (os.walk's default `followlinks=False`);
- a symlink to a file counts as a file and its target's bytes are hashed (`open` follows it),
  wherever the target is;
- only the selected files are opened, in walk order, one at a time, so excluded files (static
  assets, compiled files, other languages' translations) are never read.

Where click-odoo-update would produce a wrong value or none, this refuses instead: a folder
that cannot be listed (os.walk skips it silently), a broken symlink, a FIFO or other
non-regular file (click-odoo-update fails or blocks reading it), a file over `max_file_bytes`
or an addon of more than `max_files` files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from changegate.domain.odoo import checksum
from changegate.errors import InvalidInput, NotFound, PayloadTooLarge, Problem

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FILES = 50_000


def checksum_folder(
    path: Path,
    *,
    languages: Collection[str],
    exclude_patterns: Sequence[str] = checksum.DEFAULT_EXCLUDE_PATTERNS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> str:
    """click-odoo-update's checksum of the addon in `path` for a database's active languages.

    `languages` are `res_lang` codes of the active languages (`en_US`, `fr_BE`, ...); an empty
    collection keeps every translation file, as click-odoo-update does.
    """
    top = os.path.join(os.fspath(path), "")  # with a trailing separator: top + rel
    if not os.path.isdir(top):
        raise NotFound(f"{path}: not an addon folder")
    ordered = checksum.selected_paths(
        list_files(path, max_files=max_files),
        languages=languages,
        exclude_patterns=exclude_patterns,
    )
    return checksum.digest_in_order(_contents(top, ordered, max_file_bytes))


def list_files(path: Path, *, max_files: int = DEFAULT_MAX_FILES) -> list[str]:
    """Every file os.walk lists under `path`, as relative POSIX paths, in no particular order.

    os.walk's rules, with scandir's cached entry types instead of its extra `islink` call per
    folder: an entry that is a folder, or a symlink to one, is not a file; it is entered
    unless it is a symlink. Everything else (files, symlinks to files, broken symlinks,
    FIFOs) is a file.
    """
    found: list[str] = []
    pending = [""]  # folders still to list, relative, "" being the addon folder
    base = os.fspath(path)
    while pending:
        rel = pending.pop()
        prefix = f"{rel}/" if rel else ""
        try:
            with os.scandir(os.path.join(base, rel) if rel else base) as entries:
                for entry in entries:
                    try:
                        is_folder = entry.is_dir()
                    except OSError:
                        is_folder = False
                    if not is_folder:
                        found.append(prefix + entry.name)
                    elif not entry.is_symlink():
                        pending.append(prefix + entry.name)
        except OSError as error:
            problem = Problem(f"cannot list: {error.strerror or error}", file=rel or ".")
            raise InvalidInput([problem]) from error
        if len(found) > max_files:
            raise PayloadTooLarge(f"{path}: more than {max_files} files in one addon")
    return found


def _contents(top: str, ordered: list[str], max_file_bytes: int) -> Iterator[tuple[str, bytes]]:
    for rel in ordered:
        yield rel, _read(top + rel, rel, max_file_bytes)


def _read(full: str, rel: str, max_file_bytes: int) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        problem = Problem(f"cannot read: {error.strerror or error}", file=rel)
        raise InvalidInput([problem]) from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput([Problem("not a regular file", file=rel)])
        if info.st_size > max_file_bytes:
            raise PayloadTooLarge([Problem(f"larger than {max_file_bytes} bytes", file=rel)])
        # Ask for one byte more than its size, then read to the end: usually two reads.
        chunks = [os.read(fd, info.st_size + 1)]
        total = len(chunks[0])
        while chunks[-1]:
            if total > max_file_bytes:  # it grew while being read
                raise PayloadTooLarge([Problem(f"larger than {max_file_bytes} bytes", file=rel)])
            chunks.append(os.read(fd, 1024 * 1024))
            total += len(chunks[-1])
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) <= 2 else b"".join(chunks)
