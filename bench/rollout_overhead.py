"""Rollout orchestration overhead per wave: 1,000 tenants in 20 waves, against Git alone.

    python bench/rollout_overhead.py [--tenants 1000] [--waves 20] [--json] [--profile]

Issue 6 asks for the orchestration overhead of a wave, the bake and verification waits
excluded, for 1,000 tenants in 20 waves (target: at most 1 s per wave). Setup, not timed:

1. The sample platform (`sample_platform.write_sample`) with enough tenants to hold
   --tenants production ones (1,090 tenants give exactly 1,000 in prod), without its
   `windows.yaml` (as the tests' calm sample: the calendar allows every instant, so waves can
   be booked one hour apart), plus a GitOpsRepository whose paths map `tenants/{tenant}/**`,
   rendering on, bake 0s, no analysis templates, probes off.
2. A real bare Git remote whose first commit holds `tenants/<tenant>/values.yaml` for every
   targeted tenant (`image: registry.example.com/odoo:17.0-old`), a clone of it as the
   worker's working copy, and a second bare remote with the very same commit (plus a bare
   clone of it) for the baseline.
3. The database: SQLite (a file, WAL) by default; PostgreSQL when CHANGEGATE_BENCH_PG_URL
   names a server (a fresh database is created on it and dropped at the end; the role needs
   CREATEDB). Migrated, then the change goes through its real lifecycle with the services
   (tests/lifecycle.py): a staging change shipping the same image digest is driven to Closed
   (the promotion evidence a production change with an image needs), then the production
   change (category application-release, the image as ref + sha256 digest, the --tenants
   production tenants by name) is submitted, assessed, approved, scheduled by the real
   scheduler and moved to Implementing. The scheduler books uneven waves (it groups tenants by
   deployment model and windows, 24 waves for 1,000 tenants), so the booked waves are then
   replaced with `store.schedules.replace`: --waves waves of equal size (50 tenants each), the
   scheduler's risk order kept, one hour apart. The rollout is started with bake 0.

Measured, wave by wave, on a `Worker` with a fake clock moved to each wave's start:
`worker.run(once=True)` runs the wave's gate, backup (not needed: no database is touched),
commit (render the wave's 50 values.yaml and the wave file, one commit, pushed to the bare
remote), sync (an in-process delivery-status source answers Synced/Healthy at the wave's
commit, so the verdict code runs with no waiting), verify (no template, no probe) and bake
(0 s), then claims the next wave's gate, which waits for its slot. The wall time of that call
is the wave's orchestration time. It is broken down by step (time per worker turn, summed over
the waves) and by where the time went: inside git processes (`Repository._run`), inside SQL
statements (cursor execute) and database commits, and the rest (Python).

Baseline, "git alone", in the same run right after each wave, on the second remote: what the
commit needs Git itself to do, in 4 processes: `git fetch` of the branch, `git cat-file
--batch` of the wave's 50 values.yaml at the fetched tip, the same image rewrite in Python
(str.replace), `git fast-import` of one commit holding the same 51 files (the 50 rewritten
values.yaml and the engine's wave file, its message too), `git push`. After each wave (not
timed) both commits' trees are compared: they must be the same tree.

Nothing is asserted beyond that sanity check: the script reports. `--json` prints every
figure as JSON; `--profile` prints a cProfile of the timed waves (by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lifecycle import approve_until_authorized, drive

from changegate import bootstrap
from changegate.adapters import catalog_files, sample_platform
from changegate.adapters import git as git_adapter
from changegate.domain import catalog as catalog_model
from changegate.domain import changes, health, rendering, scheduling
from changegate.domain.changes import ChangeState
from changegate.domain.rollout import RolloutStatus, StepKind
from changegate.services import calendar as calendar_service
from changegate.services import changes as change_service
from changegate.services import lifecycle
from changegate.services import rollout as rollout_service
from changegate.services.context import Context, actor_for
from changegate.settings import Settings
from changegate.store import db
from changegate.store import schedules as schedule_store
from changegate.worker import Worker

TARGET_SECONDS = 1.0
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a Tuesday
OLD_IMAGE = "registry.example.com/odoo:17.0-old"
IMAGE = {
    "ref": "registry.example.com/odoo:17.0-20261201",
    "digest": "sha256:" + "5e" * 32,
}
NEW_IMAGE = f"{IMAGE['ref']}@{IMAGE['digest']}"
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
GITOPS = """\
apiVersion: changegate.io/v1
kind: GitOpsRepository
metadata: {{name: fleet}}
spec:
  url: {url}
  branch: main
  paths:
    - pattern: tenants/{{tenant}}/**
  rollout:
    application: "{{tenant}}"
    render: true
    bake: 0s
    probes: {{web_health: false}}
"""
VALUES = """\
# Odoo tenant {tenant}: generated by bench/rollout_overhead.py
tenant: {tenant}
replicas: 2
image: {image}
resources:
  requests: {{cpu: 500m, memory: 1Gi}}
  limits: {{cpu: "2", memory: 2Gi}}
"""


# --------------------------------------------------------------------------- meters


@dataclass
class Meter:
    """Calls and seconds spent inside one kind of call (git processes, SQL, a function)."""

    calls: int = 0
    seconds: float = 0.0

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds


@dataclass
class Meters:
    """What the timed waves spent where; counted only while `active` (the worker runs)."""

    active: bool = False
    git: defaultdict[str, Meter] = field(default_factory=lambda: defaultdict(Meter))
    sql: Meter = field(default_factory=Meter)
    commits: Meter = field(default_factory=Meter)
    functions: defaultdict[str, Meter] = field(default_factory=lambda: defaultdict(Meter))

    def totals(self) -> tuple[int, float, int, float, int, float]:
        git_calls = sum(m.calls for m in self.git.values())
        git_seconds = sum(m.seconds for m in self.git.values())
        return (
            git_calls,
            git_seconds,
            self.sql.calls,
            self.sql.seconds,
            self.commits.calls,
            self.commits.seconds,
        )


# Functions the rollout service calls through their module (so wrapping the module's
# attribute times every call): the Python work of the gate and of the commit's rendering.
TIMED_FUNCTIONS: tuple[tuple[Any, str, str], ...] = (
    (lifecycle, "authorization", "gate: lifecycle.authorization"),
    (lifecycle, "start_check", "gate: lifecycle.start_check"),
    (rendering, "tenant_files", "commit: rendering.tenant_files"),
    (rendering, "render_images", "commit: rendering.render_images"),
)


def install_meters(engine: sa.Engine, meters: Meters) -> None:
    """Count and time the engine's git processes (by git command), SQL statements, database
    commits and a few functions. Only this process's objects are wrapped: src/ is unchanged."""
    original_run = git_adapter.Repository._run

    def timed_run(repo: git_adapter.Repository, args: Any, *rest: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original_run(repo, args, *rest, **kwargs)
        finally:
            if meters.active:
                command = next((a for a in args if not a.startswith("-") and "=" not in a), "?")
                meters.git[command].add(time.perf_counter() - start)

    setattr(git_adapter.Repository, "_run", timed_run)  # noqa: B010

    def before(conn: sa.Connection, *_: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: sa.Connection, *_: Any) -> None:
        started = conn.info["bench_started"].pop()
        if meters.active:
            meters.sql.add(time.perf_counter() - started)

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    dialect = engine.dialect
    do_commit = dialect.do_commit

    def timed_commit(dbapi_connection: Any) -> None:
        start = time.perf_counter()
        try:
            do_commit(dbapi_connection)
        finally:
            if meters.active:
                meters.commits.add(time.perf_counter() - start)

    setattr(dialect, "do_commit", timed_commit)  # noqa: B010

    for module, name, label in TIMED_FUNCTIONS:
        original = getattr(module, name)

        def timed(*args: Any, _original: Any = original, _label: str = label, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args, **kw)
            finally:
                if meters.active:
                    meters.functions[_label].add(time.perf_counter() - start)

        setattr(module, name, timed)


# --------------------------------------------------------------------------- git


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["git", *IDENTITY, "-C", str(repo), *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args[:3])} failed in {repo}: {done.stderr.decode()}")
    return done.stdout


@dataclass(frozen=True)
class Repos:
    remote: Path  # the engine's bare remote
    clone: Path  # the worker's working copy
    base_remote: Path  # the baseline's bare remote (the same first commit)
    base_clone: Path  # the baseline's bare clone


def make_repos(folder: Path, tenants: list[str]) -> Repos:
    """Two bare remotes with the same first commit (every tenant's values.yaml), a clone of
    the first as the worker's working copy and a bare clone of the second for the baseline."""
    seed = folder / "seed"
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(seed)], check=True)
    (seed / "README.md").write_text("fleet\n")
    for tenant in tenants:
        path = seed / "tenants" / tenant / "values.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(VALUES.format(tenant=tenant, image=OLD_IMAGE))
    git(seed, "add", "-A")
    git(seed, "commit", "--quiet", "-m", "fleet: every tenant on 17.0-old")
    repos = Repos(
        folder / "fleet.git", folder / "workdir", folder / "baseline.git", folder / "baseline"
    )
    for remote in (repos.remote, repos.base_remote):
        subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(remote)], check=True)
        git(seed, "push", "--quiet", str(remote), "main")
    subprocess.run(["git", "clone", "--quiet", str(repos.remote), str(repos.clone)], check=True)
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(repos.base_remote), str(repos.base_clone)],
        check=True,
    )
    return repos


@dataclass(frozen=True)
class Payload:
    """What the engine's commit of a wave wrote: its message and its files."""

    message: bytes
    files: dict[str, bytes]


def payload_of(clone: Path, commit: str) -> Payload:
    """The engine's commit, read back (not timed) so the baseline writes the very same."""
    message = git(clone, "log", "-1", "--format=%B", commit).rstrip(b"\n") + b"\n"
    names = git(clone, "diff-tree", "-r", "-z", "--name-only", "--no-commit-id", commit)
    paths = [name.decode() for name in names.split(b"\x00") if name]
    files = {path: git(clone, "cat-file", "blob", f"{commit}:{path}") for path in paths}
    return Payload(message, files)


def baseline_wave(repo: Path, tenants: tuple[str, ...], payload: Payload) -> dict[str, float]:
    """Git alone: fetch, read the wave's values.yaml at the tip, rewrite the image, one
    commit of the same 51 files with fast-import, push. Seconds per part."""
    parts: dict[str, float] = {}
    start = time.perf_counter()
    tracking = "refs/remotes/origin/main"
    git(repo, "fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/main:{tracking}")
    parts["fetch"] = time.perf_counter() - start

    start = time.perf_counter()
    paths = [f"tenants/{tenant}/values.yaml" for tenant in tenants]
    asked = "".join(f"{tracking}:{path}\n" for path in paths).encode()
    out = git(repo, "cat-file", "--batch", stdin=asked)
    files: dict[str, bytes] = {}
    position = 0
    for path in paths:
        end = out.index(b"\n", position)
        size = int(out[position:end].split()[2])
        content = out[end + 1 : end + 1 + size]
        position = end + 1 + size + 1
        files[path] = content.replace(OLD_IMAGE.encode(), NEW_IMAGE.encode())
    for path, content in payload.files.items():
        if path not in files:  # the wave file
            files[path] = content
    parts["read + render"] = time.perf_counter() - start

    start = time.perf_counter()
    stream = [
        b"commit refs/heads/bench-wave\n",
        f"committer changegate <changegate@localhost> {int(time.time())} +0000\n".encode(),
        f"data {len(payload.message)}\n".encode(),
        payload.message,
        f"from {tracking}^0\n".encode(),
    ]
    for path in sorted(files):
        data = files[path]
        stream += [f"M 100644 inline {path}\ndata {len(data)}\n".encode(), data, b"\n"]
    stream.append(b"done\n")
    git(repo, "fast-import", "--quiet", "--force", "--done", stdin=b"".join(stream))
    parts["commit (fast-import)"] = time.perf_counter() - start

    start = time.perf_counter()
    git(repo, "push", "--quiet", "origin", "refs/heads/bench-wave:refs/heads/main")
    parts["push"] = time.perf_counter() - start
    return parts


def tree_of(repo: Path, revision: str) -> str:
    return git(repo, "rev-parse", f"{revision}^{{tree}}").decode().strip()


# --------------------------------------------------------------------------- setup


class Clock:
    """The worker's clock, moved to each wave's start."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class SyncedStatus:
    """A delivery-status source that answers at once: every application Synced and Healthy
    at the revision of the wave's commit (set by the bench when the commit step is done)."""

    def __init__(self) -> None:
        self.revision: str | None = None
        self.asked = 0

    def application_status(self, app: str) -> health.AppStatus:
        self.asked += 1
        return health.AppStatus(
            app, health.SyncStatus.SYNCED, health.HealthStatus.HEALTHY, revision=self.revision
        )


def write_catalog(folder: Path, wanted: int, remote: Path) -> catalog_model.Catalog:
    """The sample platform, grown until it holds `wanted` production tenants; no windows."""
    total = math.ceil(wanted * 1.09)
    while True:
        if folder.exists():
            shutil.rmtree(folder)
        sample_platform.write_sample(folder, tenants=total)
        (folder / "windows.yaml").unlink()
        (folder / "gitops.yaml").write_text(GITOPS.format(url=remote.as_uri()))
        catalog = catalog_files.load_catalog(folder)
        prod = [t for t in catalog.tenants.values() if t.spec.environment == "prod"]
        if len(prod) >= wanted:
            return catalog
        total = math.ceil(total * 1.05)


@contextmanager
def database(folder: Path) -> Iterator[tuple[str, str]]:
    """(URL, label): a SQLite file, or a fresh database on CHANGEGATE_BENCH_PG_URL's server."""
    server = os.environ.get("CHANGEGATE_BENCH_PG_URL")
    if not server:
        url = f"sqlite:///{folder / 'changegate.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url, "SQLite (file, WAL)"
        return
    name = f"cg_bench_{uuid.uuid4().hex[:8]}"
    admin = db.make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url, f"PostgreSQL {str(version).split()[0]}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def change_data(environment: str, tenants: list[str]) -> dict[str, Any]:
    return {
        "title": "Odoo 17.0 image 20261201 for the fleet",
        "justification": "Security fixes in the 17.0 image.",
        "type": "normal",
        "category": "application-release",
        "environment": environment,
        "targets": {"tenants": tenants},
        "artifacts": {"images": [IMAGE]},
        "implementation_plan": "Render the image into each wave's values.yaml and commit.",
        "test_plan": "Regression suite on staging.",
        "rollback_plan": {"steps": "Revert the wave commits.", "tested": True},
        "implementer": "bob",
    }


def implementing(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    repos: Repos,
    tenants: list[str],
    count: int,
) -> tuple[str, list[scheduling.Wave], dict[str, Any]]:
    """The production change in Implementing, with `count` equal waves booked; its id, the
    waves and what the lifecycle said on the way."""

    def as_(person: str) -> Context:
        return Context(actor=actor_for(catalog, person), clock=lambda: NOW)

    def spec(environment: str, targeted: list[str]) -> changes.ChangeSpec:
        return changes.validate_spec(change_data(environment, targeted), source=None)

    staging = sorted(t.id for t in catalog.tenants.values() if t.spec.environment == "staging")
    shipped = change_service.create(app.engine, catalog, as_("alice"), spec("staging", staging[:1]))
    # Promotion evidence is a staging change whose rollout completed: roll it out (one wave,
    # no status source) and close it.
    drive(app.engine, catalog, shipped.id, ChangeState.IMPLEMENTING, as_=as_)
    slot = calendar_service.schedule_of(app.engine, catalog, as_("bob"), shipped.id).plan.waves[0]
    at_slot = Context(actor=actor_for(catalog, "bob"), clock=lambda: slot.start)
    rollout_service.start(app.engine, catalog, at_slot, shipped.id)
    staging_delivery = rollout_service.Delivery(
        rollout_service.GitTarget(git_adapter.Clone(repos.clone), "main")
    )
    Worker(app.engine, lambda: catalog, staging_delivery, clock=lambda: slot.start).run(once=True)
    # The baseline starts from the same tree: its remote and clone get the staging commit too.
    for target in (repos.base_remote, repos.base_clone):
        subprocess.run(
            ["git", "-C", str(repos.remote), "push", "--quiet", "--force", str(target), "main"],
            check=True,
        )
    drive(app.engine, catalog, shipped.id, ChangeState.CLOSED, as_=as_)

    change = change_service.create(app.engine, catalog, as_("alice"), spec("prod", tenants))
    drive(app.engine, catalog, change.id, ChangeState.AUTHORIZE, as_=as_)
    decision = approve_until_authorized(app.engine, catalog, change.id, as_)
    booked = calendar_service.schedule(app.engine, catalog, as_("bob"), change.id)
    ordered = [tenant for wave in booked.plan.waves for tenant in wave.tenants]
    assert sorted(ordered) == sorted(tenants), "the scheduler left tenants out"
    size = math.ceil(len(ordered) / count)
    first = booked.plan.waves[0].start
    waves = []
    for index in range(count):
        chunk = tuple(ordered[index * size : (index + 1) * size])
        start = first + timedelta(hours=index)
        reasons = dict.fromkeys(chunk, f"bench: wave {index + 1} of {count}")
        waves.append(scheduling.Wave(index + 1, start, start + timedelta(hours=1), chunk, reasons))
    with db.transaction(app.engine) as conn:
        schedule_store.replace(conn, change.number, waves, scheduled_at=NOW, scheduled_by="bob")
    at_start = Context(actor=actor_for(catalog, "bob"), clock=lambda: first)
    change_service.transition(app.engine, catalog, at_start, change.id, ChangeState.IMPLEMENTING)
    said = {
        "approvals": decision.reason,
        "scheduler_waves": [len(wave.tenants) for wave in booked.plan.waves],
    }
    return change.id, waves, said


# --------------------------------------------------------------------------- the run


@dataclass
class WaveFigures:
    wave: int
    tenants: int
    seconds: float
    steps: dict[str, float]
    turns: int
    git_processes: int
    git_seconds: float
    sql_statements: int
    sql_seconds: float
    db_commits: int
    db_commit_seconds: float
    rendered: int
    baseline_seconds: float
    baseline_parts: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline_seconds


def run_waves(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    repos: Repos,
    change_id: str,
    waves: list[scheduling.Wave],
    meters: Meters,
    profile: cProfile.Profile | None,
) -> list[WaveFigures]:
    status = SyncedStatus()
    delivery = rollout_service.Delivery(
        rollout_service.GitTarget(git_adapter.Clone(repos.clone), "main"), status=status
    )
    clock = Clock(waves[0].start)
    worker = Worker(app.engine, lambda: catalog, delivery, name="bench-worker", clock=clock)
    steps: dict[str, float] = defaultdict(float)
    turns: list[rollout_service.Turn] = []
    original_turn, original_start_due = worker.turn, worker.start_due

    def timed_turn() -> rollout_service.Turn | None:
        start = time.perf_counter()
        done = original_turn()
        elapsed = time.perf_counter() - start
        if done is None:
            steps["worker: nothing due"] += elapsed
            return None
        turns.append(done)
        label = done.kind.value if done.outcome == "done" else f"{done.kind.value} ({done.outcome})"
        steps[label] += elapsed
        if done.kind is StepKind.COMMIT and done.outcome == "done":
            status.revision = done.detail["commit"]
        return done

    def timed_start_due() -> None:
        start = time.perf_counter()
        original_start_due()
        steps["worker: start_due"] += time.perf_counter() - start

    # Instance attributes: Worker.run calls self.turn() and self.start_due().
    worker.turn = timed_turn  # type: ignore[method-assign]
    worker.start_due = timed_start_due  # type: ignore[method-assign]

    figures = []
    for wave in waves:
        clock.now = wave.start
        steps.clear()
        turns.clear()
        before = meters.totals()
        meters.active = True
        if profile is not None:
            profile.enable()
        start = time.perf_counter()
        count = worker.run(once=True)
        elapsed = time.perf_counter() - start
        if profile is not None:
            profile.disable()
        meters.active = False
        delta = [b - a for a, b in zip(before, meters.totals(), strict=True)]
        committed = [t for t in turns if t.kind is StepKind.COMMIT and t.outcome == "done"]
        if len(committed) != 1 or not committed[0].detail.get("created"):
            raise SystemExit(f"wave {wave.index}: expected one new commit, got {turns}")
        problems = [t for t in turns if t.outcome not in ("done", "waiting")]
        if problems:
            raise SystemExit(f"wave {wave.index}: {problems}")
        commit = committed[0].detail["commit"]
        payload = payload_of(repos.clone, commit)
        parts = baseline_wave(repos.base_clone, wave.tenants, payload)
        if tree_of(repos.clone, commit) != tree_of(repos.base_clone, "refs/heads/bench-wave"):
            raise SystemExit(f"wave {wave.index}: the baseline's tree differs from the engine's")
        figures.append(
            WaveFigures(
                wave=wave.index,
                tenants=len(wave.tenants),
                seconds=elapsed,
                steps=dict(steps),
                turns=count,
                git_processes=int(delta[0]),
                git_seconds=delta[1],
                sql_statements=int(delta[2]),
                sql_seconds=delta[3],
                db_commits=int(delta[4]),
                db_commit_seconds=delta[5],
                rendered=len(committed[0].detail.get("rendered", [])),
                baseline_seconds=sum(parts.values()),
                baseline_parts=parts,
            )
        )
    view = rollout_service.status(
        app.engine, Context(actor=actor_for(catalog, "frank"), clock=clock), change_id
    )
    if view.rollout.status is not RolloutStatus.COMPLETE:
        raise SystemExit(f"the rollout is {view.rollout.status.value}, not complete")
    return figures


# --------------------------------------------------------------------------- report


def summary(figures: list[WaveFigures], meters: Meters) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }

    waves = [f.seconds for f in figures]
    base = [f.baseline_seconds for f in figures]
    steps: dict[str, float] = defaultdict(float)
    for f in figures:
        for name, seconds in f.steps.items():
            steps[name] += seconds
    parts: dict[str, float] = defaultdict(float)
    for f in figures:
        for name, seconds in f.baseline_parts.items():
            parts[name] += seconds
    total = sum(waves)
    git_s = sum(f.git_seconds for f in figures)
    sql_s = sum(f.sql_seconds for f in figures)
    commit_s = sum(f.db_commit_seconds for f in figures)
    return {
        "wave_seconds": stats(waves),
        "baseline_seconds": stats(base),
        "ratio": {
            "of_means": statistics.fmean(waves) / statistics.fmean(base),
            "of_medians": statistics.median(waves) / statistics.median(base),
            "per_wave_median": statistics.median(f.ratio for f in figures),
        },
        "total_seconds": total,
        "steps_seconds": dict(sorted(steps.items(), key=lambda item: -item[1])),
        "baseline_parts_seconds": dict(parts),
        "where": {
            "git_processes": {
                "seconds": git_s,
                "share": git_s / total,
                "per_wave": statistics.fmean(f.git_processes for f in figures),
            },
            "sql_statements": {
                "seconds": sql_s,
                "share": sql_s / total,
                "per_wave": statistics.fmean(f.sql_statements for f in figures),
            },
            "db_commits": {
                "seconds": commit_s,
                "share": commit_s / total,
                "per_wave": statistics.fmean(f.db_commits for f in figures),
            },
            "python_and_rest": {
                "seconds": total - git_s - sql_s - commit_s,
                "share": (total - git_s - sql_s - commit_s) / total,
            },
        },
        "git_by_command": {
            name: {"processes": m.calls, "seconds": m.seconds}
            for name, m in sorted(meters.git.items(), key=lambda item: -item[1].seconds)
        },
        "functions": {
            name: {"calls": m.calls, "seconds": m.seconds} for name, m in meters.functions.items()
        },
        "target_seconds": TARGET_SECONDS,
        "target_met_by_median": statistics.median(waves) <= TARGET_SECONDS,
        "target_met_by_every_wave": max(waves) <= TARGET_SECONDS,
    }


def print_report(setup: dict[str, Any], figures: list[WaveFigures], result: dict[str, Any]) -> None:
    print(
        f"{setup['backend']}; catalog {setup['catalog_tenants']} tenants, "
        f"{setup['targeted']} targeted in {setup['waves']} waves of {setup['per_wave']}; "
        f"setup {setup['setup_seconds']:.1f} s"
    )
    print(f"lifecycle: {setup['approvals']}")
    print(f"scheduler's own waves (replaced): {setup['scheduler_waves']}\n")
    print(
        f"{'wave':>4} {'tenants':>7} {'rendered':>8} {'turns':>5} {'orchestration':>13} "
        f"{'git procs':>9} {'in git':>8} {'SQL':>5} {'in SQL':>8} {'commits':>7} "
        f"{'git alone':>9} {'ratio':>6}"
    )
    for f in figures:
        print(
            f"{f.wave:>4} {f.tenants:>7} {f.rendered:>8} {f.turns:>5} "
            f"{f.seconds * 1e3:10.1f} ms {f.git_processes:>9} {f.git_seconds * 1e3:5.0f} ms "
            f"{f.sql_statements:>5} {f.sql_seconds * 1e3:5.1f} ms "
            f"{f.db_commits:>7} {f.baseline_seconds * 1e3:6.1f} ms {f.ratio:5.1f}x"
        )
    wave, base, ratio = result["wave_seconds"], result["baseline_seconds"], result["ratio"]
    print(
        f"\norchestration per wave: mean {wave['mean'] * 1e3:.1f} ms, median "
        f"{wave['median'] * 1e3:.1f} ms, max {wave['max'] * 1e3:.1f} ms "
        f"(min {wave['min'] * 1e3:.1f} ms)"
    )
    print(
        f"git alone per wave:     mean {base['mean'] * 1e3:.1f} ms, median "
        f"{base['median'] * 1e3:.1f} ms, max {base['max'] * 1e3:.1f} ms"
    )
    print(
        f"ratio orchestration / git alone: {ratio['of_means']:.1f}x of means, "
        f"{ratio['of_medians']:.1f}x of medians (median of per-wave ratios "
        f"{ratio['per_wave_median']:.1f}x)"
    )
    by_median = "met" if result["target_met_by_median"] else "NOT met"
    by_every = "met" if result["target_met_by_every_wave"] else "NOT met"
    print(
        f"target <= {TARGET_SECONDS:.0f} s per wave: {by_median} by the median, "
        f"{by_every} by every wave\n"
    )
    total = result["total_seconds"]
    print(f"by step, summed over {len(figures)} waves ({total:.2f} s):")
    for name, seconds in result["steps_seconds"].items():
        print(f"  {name:28} {seconds * 1e3:9.1f} ms  {seconds / total:6.1%}")
    print("where the time went:")
    for name, item in result["where"].items():
        per_wave = f"  ({item['per_wave']:.0f} per wave)" if "per_wave" in item else ""
        print(f"  {name:28} {item['seconds'] * 1e3:9.1f} ms  {item['share']:6.1%}{per_wave}")
    waves = len(figures)
    print("git processes by command, summed:")
    for name, item in result["git_by_command"].items():
        print(
            f"  git {name:24} {item['seconds'] * 1e3:9.1f} ms  {item['seconds'] / total:6.1%}"
            f"  ({item['processes'] / waves:.0f} per wave)"
        )
    print("functions (Python, included in the steps above), summed:")
    for name, item in result["functions"].items():
        print(
            f"  {name:32} {item['seconds'] * 1e3:9.1f} ms  {item['seconds'] / total:6.1%}"
            f"  ({item['calls'] / waves:.0f} calls per wave)"
        )
    print("git alone, by part, summed:")
    for name, seconds in result["baseline_parts_seconds"].items():
        print(f"  {name:28} {seconds * 1e3:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000, help="production tenants targeted")
    parser.add_argument("--waves", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed waves")
    args = parser.parse_args()
    if args.waves < 1 or args.tenants < args.waves:
        parser.error("need at least one tenant per wave")
    # Git as a worker runs it: no user or system configuration (hooks, signing, pagers).
    os.environ["GIT_CONFIG_GLOBAL"] = os.devnull
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    say: Callable[[str], None] = (lambda _text: None) if args.json else print

    with tempfile.TemporaryDirectory(prefix="changegate-rollout-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        remote = folder / "fleet.git"
        say("writing the catalog ...")
        loaded = write_catalog(folder / "platform", args.tenants, remote)
        prod = sorted(t.id for t in loaded.tenants.values() if t.spec.environment == "prod")
        targeted = prod[: args.tenants]
        say(f"writing the GitOps repository ({len(targeted)} tenants) ...")
        repos = make_repos(folder, targeted)
        with database(folder) as (url, backend):
            app = bootstrap.create(Settings(database_url=url, catalog_dir=folder / "platform"))
            try:
                catalog = app.catalog()
                say(f"{backend}: driving the change to Implementing ...")
                change_id, waves, said = implementing(app, catalog, repos, targeted, args.waves)
                rollout_service.start(
                    app.engine,
                    catalog,
                    Context(actor=actor_for(catalog, "bob"), clock=lambda: waves[0].start),
                    change_id,
                    bake=timedelta(0),
                )
                setup = {
                    "backend": backend,
                    "catalog_tenants": len(catalog.tenants),
                    "targeted": len(targeted),
                    "waves": len(waves),
                    "per_wave": len(waves[0].tenants),
                    "setup_seconds": time.perf_counter() - started,
                    "git": subprocess.run(
                        ["git", "--version"], capture_output=True, text=True, check=True
                    ).stdout.strip(),
                    "python": sys.version.split()[0],
                    **said,
                }
                meters = Meters()
                install_meters(app.engine, meters)
                profile = cProfile.Profile() if args.profile else None
                say(f"running {len(waves)} waves ...\n")
                figures = run_waves(app, catalog, repos, change_id, waves, meters, profile)
            finally:
                app.engine.dispose()
    result = summary(figures, meters)
    if args.json:
        document = {
            "setup": setup,
            "summary": result,
            "waves": [{**vars(f), "ratio": f.ratio} for f in figures],
        }
        print(json.dumps(document, indent=2))
    else:
        print_report(setup, figures, result)
    if profile is not None:
        stats = pstats.Stats(profile, stream=sys.stderr if args.json else sys.stdout)
        stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
