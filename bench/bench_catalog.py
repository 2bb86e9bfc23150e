"""Catalog load benchmark: changegate's full load against a bare PyYAML parse of the same files.

    python bench/bench_catalog.py [--tenants 10000] [--repeat 3] [--profile]

Writes the sample platform with N tenants to a temporary folder, then times (best of
repeat) (a) `yaml.load_all` with CSafeLoader over every file, the floor any YAML-based
catalog pays, and (b) `load_catalog`: parse, validate, resolve references, digest. It prints
both and the ratio b/a; the target is under 2 (at most 3).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from changegate.adapters import catalog_files, sample_platform


def bare_parse(root: Path) -> int:
    """Parse every catalog file with PyYAML's C loader, as a baseline; returns documents."""
    count = 0
    for _, path in catalog_files.find_files(root):
        with path.open("rb") as handle:
            count += sum(1 for _ in yaml.load_all(handle.read(), Loader=yaml.CSafeLoader))
    return count


def best_of(repeat: int, action: Callable[[], object]) -> float:
    """The fastest of `repeat` runs, in seconds: the least disturbed by the rest of the box."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one load_catalog run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        files = sample_platform.write_sample(root, tenants=args.tenants)
        written = time.perf_counter() - start
        size = sum(path.stat().st_size for path in files)
        print(
            f"sample: {args.tenants} tenants, {len(files)} files, {size / 1e6:.1f} MB, "
            f"written in {written:.2f} s"
        )
        documents = bare_parse(root)
        loaded = catalog_files.load_catalog(root)
        print(f"documents: {documents}; catalog: {loaded.as_dict()['counts']}")
        bare = best_of(args.repeat, lambda: bare_parse(root))
        full = best_of(args.repeat, lambda: catalog_files.load_catalog(root))
        print(f"(a) yaml.load_all CSafeLoader: {bare:.3f} s")
        print(f"(b) load_catalog:              {full:.3f} s")
        print(f"ratio b/a: {full / bare:.2f}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(catalog_files.load_catalog, root)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
