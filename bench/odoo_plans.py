"""Odoo upgrade plans benchmark (issue 7): one release planned for 200 tenant databases.

    python bench/odoo_plans.py [--tenants 200] [--addons 300] [--repeat 3] [--seed 7]
                               [--dir PATH] [--keep]

Writes two releases of a synthetic addons path (seeded, so every run writes the same bytes):
~300 addons in a layered dependency graph shaped like Odoo's (a few core modules most addons
build on, chains several levels deep, glue modules with `auto_install` in both forms), each
with a manifest, models and views. The second release bumps about a fifth of the addons, a
quarter of those with migration scripts (pre, post and end stages, some `0.0.0` and
series-less folders, some importing openupgradelib), adds a few new addons that updated ones
now depend on, and a few new glue modules. Each tenant database has 50-150 modules installed
(a dependency-closed set of apps, with the glue modules their dependencies trigger), at the
versions of the first release.

Timed, best of `--repeat`, caches warm:

(a) reading both releases with `adapters.addons.from_folder`, manifests parsed and
    click-odoo-update checksums computed (what `changegate odoo plan` does once per run);
(b) `plan_tenant` for every tenant, policy version (checksums compared side by side);
(c) the same with policy checksum;
(d) rendering each tenant's drain and upgrade Jobs to YAML (`upgrade_jobs`, then the
    service's `render_documents`).

Per-tenant figures are for (b) (the run with the best total).
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from changegate.adapters import addons as reader
from changegate.domain.odoo import jobs, versions
from changegate.domain.odoo.addons import AddonSet, Installed
from changegate.domain.odoo.plan import Policy, TenantPlan, plan_tenant
from changegate.services import odoo as odoo_service

SERIES = "17.0"
CORE = 25  # the first addons are "core": most others build on some of them
WORDS = [
    "sale", "purchase", "stock", "account", "mrp", "project", "hr", "crm", "website", "pos",
    "helpdesk", "quality", "fleet", "event", "survey", "repair", "timesheet", "expense",
    "payroll", "loyalty", "rental", "subscription",
]  # fmt: skip


def manifest(name: str, version: str, depends: list[str], auto: bool | list[str]) -> str:
    fields: dict[str, Any] = {
        "name": name.replace("_", " ").title(),
        "version": version,
        "depends": depends,
        "license": "LGPL-3",
        "data": ["views/views.xml", "security/ir.model.access.csv"],
    }
    if auto:
        fields["auto_install"] = auto
    return "# synthetic addon, changegate benchmark\n" + repr(fields) + "\n"


class Release:
    """One addons path: name -> (version, depends, auto_install, scripts {path: text})."""

    def __init__(self) -> None:
        self.addons: dict[str, tuple[str, list[str], bool | list[str], dict[str, str]]] = {}
        self.touched: dict[str, int] = {}  # content changed without a version bump

    def write(self, root: Path, seed: int) -> None:
        for name, (version, depends, auto, scripts) in self.addons.items():
            # The same addon at the same version (and content mark) has the same bytes.
            rng = random.Random(f"{seed}:{name}:{version}:{self.touched.get(name, 0)}")
            folder = root / name
            (folder / "models").mkdir(parents=True)
            (folder / "views").mkdir()
            (folder / "security").mkdir()
            (folder / "__manifest__.py").write_text(manifest(name, version, depends, auto))
            (folder / "__init__.py").write_text("from . import models\n")
            (folder / "models" / "__init__.py").write_text("from . import model\n")
            body = "".join(
                f"    field_{i} = fields.Char()  # {rng.choice(WORDS)}\n"
                for i in range(rng.randint(20, 200))
            )
            (folder / "models" / "model.py").write_text(f"class Model:\n{body}")
            (folder / "views" / "views.xml").write_text(
                "<odoo>\n" + body.replace("#", "") + "</odoo>\n"
            )
            (folder / "security" / "ir.model.access.csv").write_text("id,name\n")
            for relative, text in scripts.items():
                path = folder / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)


MIGRATE = "def migrate(cr, version):\n    cr.execute('SELECT 1')\n"
OPENUPGRADE = (
    "from openupgradelib import openupgrade\n\n\n@openupgrade.migrate()\n"
    "def migrate(env, version):\n    pass\n"
)


def build(rng: random.Random, count: int) -> tuple[Release, Release, list[str], list[str]]:
    """The two releases, the app names (non-glue addons of release 1) and the glue names."""
    first = Release()
    apps: list[str] = []
    glue: list[str] = []
    first.addons["base"] = ("17.0.1.3", [], False, {})
    apps.append("base")
    index = 0
    while len(first.addons) < count:
        index += 1
        name = f"{rng.choice(WORDS)}_{index:03d}"
        if len(apps) > CORE and index % 9 == 0:
            # A glue module between two apps: auto_install, in the boolean or the list form.
            a, b = rng.sample(apps[1:], 2)
            auto: bool | list[str] = True if index % 2 else [a]
            first.addons[name] = ("17.0.1.0.0", [a, b], auto, {})
            glue.append(name)
            continue
        if len(apps) <= CORE:
            parents = rng.sample(apps, min(len(apps), rng.randint(1, 2)))
        else:
            recent = apps[max(1, len(apps) - 40) :]
            parents = rng.sample(apps[1:CORE], rng.randint(0, 2)) + rng.sample(
                recent, rng.randint(1, 2)
            )
        first.addons[name] = (
            f"17.0.1.{rng.randint(0, 12)}.{rng.randint(0, 9)}",
            sorted(set(parents)),
            False,
            {},
        )
        apps.append(name)

    second = Release()
    second.addons = {n: (v, list(d), a, dict(s)) for n, (v, d, a, s) in first.addons.items()}
    new_index = 0
    for name, (version, old_depends, auto, old_scripts) in first.addons.items():
        core = name == "base" or name in apps[:CORE]
        if rng.random() < 0.03:
            second.touched[name] = 1  # edited, version not bumped: the policies disagree
        if rng.random() > (0.04 if core else 0.2):
            continue
        parts = version.split(".")
        parts[-1] = str(int(parts[-1]) + rng.randint(1, 3))
        new_version = ".".join(parts)
        scripts = dict(old_scripts)
        roll = rng.random()
        if roll < 0.25:
            scripts[f"migrations/{new_version}/pre-rename.py"] = MIGRATE
            scripts[f"migrations/{new_version}/post-fill.py"] = (
                OPENUPGRADE if rng.random() < 0.3 else MIGRATE
            )
            if rng.random() < 0.3:
                scripts["migrations/0.0.0/end-refresh.py"] = MIGRATE
            if rng.random() < 0.3:
                module_part = ".".join(new_version.split(".")[2:])
                scripts[f"upgrades/{module_part}/post-series_less.py"] = MIGRATE
            scripts[f"migrations/{version}/pre-already_ran.py"] = MIGRATE  # not run again
        depends = list(old_depends)
        if rng.random() < 0.05 and name not in glue:
            new_index += 1
            extra = f"new_dependency_{new_index:02d}"
            second.addons[extra] = ("17.0.1.0.0", [rng.choice(apps[:CORE])], False, {})
            depends.append(extra)
            if new_index % 2:
                bridge = f"new_glue_{new_index:02d}"
                second.addons[bridge] = ("17.0.1.0.0", [extra, name], True, {})
        second.addons[name] = (new_version, depends, auto, scripts)
    return first, second, apps, glue


def tenants(
    rng: random.Random, first: Release, apps: list[str], glue: list[str], count: int
) -> list[Installed]:
    """Dependency-closed installed sets of 50-150 modules, at release 1's versions."""
    depends = {n: d for n, (_, d, _, _) in first.addons.items()}
    found: list[Installed] = []
    for _ in range(count):
        target = rng.randint(50, 120)
        installed: set[str] = set()
        candidates = apps[1:]
        attempts = 0
        while len(installed) < target and attempts < 10_000:
            attempts += 1
            closure: set[str] = set()
            stack = [rng.choice(candidates)]
            while stack:
                name = stack.pop()
                if name not in closure:
                    closure.add(name)
                    stack.extend(depends[name])
            if len(installed | closure) <= 120:
                installed |= closure
        for name in glue:  # the glue their apps triggered when they were installed
            _, needed, auto, _ = first.addons[name]
            required = set(needed) if auto is True else set(auto or ())
            if required <= installed and set(needed) <= installed:
                installed.add(name)
        modules = {n: versions.adapt_version(first.addons[n][0], SERIES) for n in sorted(installed)}
        found.append(Installed(modules, languages=("en_US",), source="bench"))
    return found


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def plan_all(
    installed: list[Installed], before: AddonSet, after: AddonSet, policy: Policy
) -> tuple[list[float], list[TenantPlan]]:
    each: list[float] = []
    plans: list[TenantPlan] = []
    for number, state in enumerate(installed):
        start = time.perf_counter()
        plans.append(
            plan_tenant(
                f"tenant-{number:03d}", f"db_{number:03d}", state, before, after, policy=policy
            )
        )
        each.append(time.perf_counter() - start)
    return each, plans


def render_all(plans: list[TenantPlan]) -> int:
    size = 0
    for found in plans:
        documents = jobs.upgrade_jobs(
            found,
            namespace=f"odoo-{found.tenant}",
            image="registry.example.com/odoo:17.0-2",
            tool="odoo",
        )
        size += len(odoo_service.render_documents(documents))
    return size


def read_both(root: Path) -> tuple[AddonSet, AddonSet]:
    return (
        reader.from_folder(root / "r1", SERIES, checksums=True, languages=("en_US",)),
        reader.from_folder(root / "r2", SERIES, checksums=True, languages=("en_US",)),
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--addons", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()

    rng = random.Random(options.seed)
    first, second, apps, glue = build(rng, options.addons)
    states = tenants(rng, first, apps, glue, options.tenants)
    root = options.dir or Path(tempfile.mkdtemp(prefix="odoo_plans_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        first.write(root / "r1", options.seed)
        second.write(root / "r2", options.seed)

        best: dict[str, float] = {}
        per_tenant: list[float] = []
        plans: list[TenantPlan] = []
        for _ in range(options.repeat):
            read, (before, after) = timed(lambda: read_both(root))
            by_version, (each, found) = timed(
                functools.partial(plan_all, states, before, after, Policy.VERSION)
            )
            by_checksum, _ = timed(
                functools.partial(plan_all, states, before, after, Policy.CHECKSUM)
            )
            rendering, _ = timed(functools.partial(render_all, found))
            for key, value in (
                ("read", read),
                ("version", by_version),
                ("checksum", by_checksum),
                ("jobs", rendering),
            ):
                best[key] = min(best.get(key, value), value)
            if by_version <= best["version"]:
                per_tenant, plans = each, found

        sizes = [len(s.modules) for s in states]
        updated = [len(p.update) for p in plans]
        scripts = [len(p.scripts) for p in plans]
        print(f"addons: {len(before.addons)} before, {len(after.addons)} after "
              f"({sum(1 for a in after.addons.values() if a.migrations)} with migration scripts); "
              f"{len(glue)} auto_install glue modules in release 1")  # fmt: skip
        print(f"tenants: {len(states)}, installed modules {min(sizes)}-{max(sizes)} "
              f"(mean {statistics.mean(sizes):.0f})")  # fmt: skip
        print(f"per plan: updated {min(updated)}-{max(updated)} "
              f"(mean {statistics.mean(updated):.1f}), "
              f"scripts {min(scripts)}-{max(scripts)} (mean {statistics.mean(scripts):.1f}), "
              f"{sum(1 for s in scripts if s)} tenants with scripts, "
              f"{sum(1 for p in plans if p.install)} with installs, "
              f"{sum(1 for p in plans if p.auto_install)} with auto_install, "
              f"{sum(1 for p in plans if p.unprovided_imports)} with unprovided imports, "
              f"{sum(1 for p in plans if p.disagreements)} with policy disagreements")  # fmt: skip
        print(f"best of {options.repeat}:")
        print(f"  (a) read both releases (manifests, scripts, checksums): {ms(best['read'])}")
        print(f"  (b) plan {len(states)} tenants, policy version:  {ms(best['version'])} total")
        print(f"  (c) plan {len(states)} tenants, policy checksum: {ms(best['checksum'])} total")
        print(f"  (d) render {len(states)} tenants' Jobs to YAML:  {ms(best['jobs'])} total")
        ordered = sorted(per_tenant)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        print(f"  per tenant (b): mean {ms(statistics.mean(per_tenant))}, "
              f"median {ms(statistics.median(per_tenant))}, p95 {ms(p95)}, "
              f"max {ms(ordered[-1])}")  # fmt: skip
        total = best["read"] + best["version"] + best["jobs"]
        print(f"  read + plan + Jobs: {ms(total)} ({ms(total / len(states))} per tenant)")
    finally:
        if not options.keep and options.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
