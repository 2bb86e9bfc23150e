"""Addon checksums benchmark (issue 7): click-odoo-update's checksum of 500 addon folders.

    python bench/odoo_checksums.py [--addons 500] [--repeat 5] [--languages en_US,fr_FR,de_DE]
                                   [--dir PATH] [--keep]

Writes N synthetic addons (seeded, so every run writes the same bytes) shaped like OCA ones: a
few dozen files each (manifest, models with their __pycache__, views, security, data, wizards,
tests, static assets, a .pot and .po files for 6-14 languages in i18n, sometimes i18n_extra
and a migration), a few hundred KB per addon. Then times, best of `--repeat`, caches warm:

(a) the baseline: raw `hashlib.sha1` over exactly the bytes the checksum hashes (each kept
    file's relative path then its content, in walk order), files read with open().read()
    from a file list computed beforehand (not timed). Its digests must equal (b)'s.
(b) `addon_checksums.checksum_folder`: list the folder, select and order (exclusions,
    languages), open and read each kept file, hash.

Throughput is hashed bytes per second; the ratio is (b)'s throughput over (a)'s (target at
least 50%).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from changegate.adapters import addon_checksums
from changegate.domain.odoo import checksum

LANGUAGES = (
    "fr", "fr_BE", "fr_CA", "de", "de_CH", "es", "es_AR", "es_MX", "it", "nl", "nl_BE", "pt",
    "pt_BR", "ca", "sl", "hr", "tr", "zh_CN", "ja", "sv", "fi", "ro", "pl", "cs",
)  # fmt: skip
WORDS = (
    b"self env record field model view partner order line invoice amount state date name "
    b"company currency product quantity price tax total account journal move sale purchase"
).split()


def text(rng: random.Random, size: int) -> bytes:
    """About `size` bytes of source-like text (line-structured words)."""
    out = bytearray()
    while len(out) < size:
        out += b"    " + b" ".join(rng.choices(WORDS, k=rng.randint(3, 12))) + b"\n"
    return bytes(out[:size])


def addon_files(rng: random.Random, name: str) -> dict[str, bytes]:
    """One synthetic addon: relative path -> bytes."""
    kb = 1024
    files: dict[str, bytes] = {
        "__init__.py": b"from . import models\n",
        "__manifest__.py": text(rng, rng.randint(400, 900)),
        "README.rst": text(rng, rng.randint(2 * kb, 6 * kb)),
        "models/__init__.py": text(rng, 200),
        "security/ir.model.access.csv": text(rng, rng.randint(kb, 3 * kb)),
        "security/security.xml": text(rng, rng.randint(kb, 4 * kb)),
        "tests/__init__.py": text(rng, 100),
        "static/description/icon.png": rng.randbytes(rng.randint(5 * kb, 15 * kb)),
        "static/description/index.html": text(rng, rng.randint(5 * kb, 30 * kb)),
    }
    for i in range(rng.randint(4, 9)):
        source = text(rng, rng.randint(2 * kb, 25 * kb))
        files[f"models/model_{i}.py"] = source
        files[f"models/__pycache__/model_{i}.cpython-311.pyc"] = rng.randbytes(len(source) // 2)
    for i in range(rng.randint(3, 7)):
        files[f"views/view_{i}.xml"] = text(rng, rng.randint(3 * kb, 20 * kb))
    for i in range(rng.randint(1, 3)):
        files[f"data/data_{i}.xml"] = text(rng, rng.randint(kb, 8 * kb))
    for i in range(rng.randint(0, 2)):
        files[f"wizards/wizard_{i}.py"] = text(rng, rng.randint(2 * kb, 8 * kb))
        files[f"wizards/wizard_{i}.xml"] = text(rng, rng.randint(2 * kb, 6 * kb))
    for i in range(rng.randint(1, 3)):
        files[f"tests/test_{i}.py"] = text(rng, rng.randint(2 * kb, 12 * kb))
    for i in range(rng.randint(0, 3)):
        files[f"static/src/js/widget_{i}.js"] = text(rng, rng.randint(2 * kb, 15 * kb))
    pot_size = rng.randint(5 * kb, 25 * kb)
    files[f"i18n/{name}.pot"] = text(rng, pot_size)
    for lang in rng.sample(LANGUAGES, rng.randint(6, 14)):
        files[f"i18n/{lang}.po"] = text(rng, int(pot_size * rng.uniform(0.9, 1.3)))
    if rng.random() < 0.2:
        for lang in rng.sample(LANGUAGES, 2):
            files[f"i18n_extra/{lang}.po"] = text(rng, rng.randint(kb, 4 * kb))
    if rng.random() < 0.3:
        files["migrations/17.0.1.1.0/pre-migrate.py"] = text(rng, rng.randint(kb, 4 * kb))
    return files


def write_addons(root: Path, count: int) -> list[Path]:
    rng = random.Random(7)
    folders = []
    for index in range(count):
        name = f"bench_addon_{index:03d}"
        top = root / name
        for rel, content in addon_files(rng, name).items():
            path = top / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        folders.append(top)
    return folders


def raw_sha1(plans: list[list[tuple[bytes, Path]]]) -> list[str]:
    """(a): sha1 of each addon's kept paths and bytes, from a file list made beforehand."""
    digests = []
    for plan in plans:
        sha1 = hashlib.sha1(usedforsecurity=False)
        for encoded, full in plan:
            sha1.update(encoded)
            with open(full, "rb") as handle:
                sha1.update(handle.read())
        digests.append(sha1.hexdigest())
    return digests


def timed(run: Callable[[], list[str]]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addons", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--languages", default="en_US,fr_FR,de_DE")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the addons")
    parser.add_argument("--keep", action="store_true", help="keep the addons afterwards")
    args = parser.parse_args()
    languages = [code for code in args.languages.split(",") if code]

    root = Path(tempfile.mkdtemp(prefix="changegate-bench-odoo-", dir=args.dir))
    try:
        started = time.perf_counter()
        folders = write_addons(root, args.addons)
        written = time.perf_counter() - started
        plans: list[list[tuple[bytes, Path]]] = []
        disk_files = disk_bytes = hashed_files = hashed_bytes = 0
        for top in folders:
            listed = addon_checksums.list_files(top)
            disk_files += len(listed)
            disk_bytes += sum((top / rel).stat().st_size for rel in listed)
            kept = checksum.selected_paths(listed, languages=languages)
            plans.append([(rel.encode(), top / rel) for rel in kept])
            hashed_files += len(kept)
            hashed_bytes += sum(len(rel.encode()) + (top / rel).stat().st_size for rel in kept)

        def run_checksums() -> list[str]:
            return [addon_checksums.checksum_folder(top, languages=languages) for top in folders]

        def run_raw() -> list[str]:
            return raw_sha1(plans)

        run_raw()  # warm the page cache
        run_checksums()
        raw_times: list[float] = []
        checksum_times: list[float] = []
        raw_digests: list[str] = []
        checksum_digests: list[str] = []
        for _ in range(args.repeat):  # alternate, so both see the same machine state
            t, raw_digests = timed(run_raw)
            raw_times.append(t)
            t, checksum_digests = timed(run_checksums)
            checksum_times.append(t)
        if raw_digests != checksum_digests:
            raise SystemExit("the baseline and checksum_folder disagree: not the same bytes")
        raw, ours = min(raw_times), min(checksum_times)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    mb = 1024 * 1024
    print(
        f"{args.addons} addons written in {written:.1f} s to {root}: {disk_files} files, "
        f"{disk_bytes / mb:.1f} MiB ({disk_bytes / args.addons / 1024:.0f} KiB and "
        f"{disk_files / args.addons:.0f} files per addon)"
    )
    print(
        f"hashed with languages {','.join(languages)}: {hashed_files} files, "
        f"{hashed_bytes / mb:.1f} MiB; best of {args.repeat}, caches warm"
    )
    print()
    print(f"| {'step':<44} | {'time':>8} | {'MiB/s':>8} | {'addons/s':>8} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for label, seconds in (
        ("(a) raw sha1 over the same bytes", raw),
        ("(b) addon_checksums.checksum_folder", ours),
    ):
        print(
            f"| {label:<44} | {seconds:>6.3f} s | {hashed_bytes / mb / seconds:>8.1f} | "
            f"{args.addons / seconds:>8.0f} |"
        )
    print()
    print(f"throughput ratio b/a: {raw / ours:.0%} (target >= 50%); digests equal: yes")


if __name__ == "__main__":
    main()
