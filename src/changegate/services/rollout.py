"""Rollouts: carry a change in Implementing to its tenants, wave by wave, and undo it on failure.

`start` creates the rollout of a change in Implementing from its booked waves, freezing the
delivery settings of the catalog's GitOpsRepository (idempotent: a second call returns the
rollout already there); `start_due` is what the worker does between steps: move Scheduled
changes whose first slot has opened to Implementing (the lifecycle's calendar gate applies)
and start the rollouts of changes in Implementing that have none.

`run_next` is one turn of a worker: claim the next due step under a lease (one transaction),
do its outside effect with no transaction open (gate, backup, commit, sync, verify, bake;
revert, restore, conclude), then record what came of it and its audit event in one
transaction, guarded by the claim. `control` is a person's pause, resume, abort or promote.
The steps and their order are `domain.rollout`; docs/rollout.md tells the whole story.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from changegate.adapters import git as git_adapter
from changegate.adapters import notify as notify_adapter
from changegate.adapters import probes as probe_adapter
from changegate.adapters import prometheus as prometheus_adapter
from changegate.domain import analysis, canonical, changes, godurations, health, impact, rendering
from changegate.domain import catalog as catalog_model
from changegate.domain import gitops as gitops_model
from changegate.domain import rollout as plan_model
from changegate.domain.changes import Category, ChangeRequest, ChangeState, CloseCode
from changegate.domain.permissions import Permission
from changegate.domain.rollout import (
    Action,
    Done,
    Fail,
    Outcome,
    Pause,
    RolloutStatus,
    StepKind,
    StepStatus,
    Wait,
)
from changegate.errors import (
    ChangegateError,
    Conflict,
    InvalidInput,
    NotFound,
    PermanentError,
    Problem,
    Refused,
)
from changegate.services import audit as audit_service
from changegate.services import backups as backup_service
from changegate.services import lifecycle
from changegate.services.analysis import load_template_document
from changegate.services.context import Context
from changegate.store import backups as backup_store
from changegate.store import changes as change_store
from changegate.store import db
from changegate.store import rollouts as rollout_store
from changegate.store import schedules as schedule_store

log = logging.getLogger("changegate.rollout")

DEFAULT_LEASE = timedelta(seconds=60)
RETRY_AFTER = timedelta(seconds=5)
MAX_TEMPLATE_BYTES = 1024 * 1024
# Categories whose changes touch tenant databases: a backup is taken before each wave.
DATABASE_CATEGORIES = frozenset(
    {
        Category.DATABASE_MIGRATION,
        Category.MODULE_UPDATE,
        Category.ODOO_UPGRADE,
        Category.DATABASE_UPGRADE,
    }
)
# Categories that cannot be undone by a revert alone: the databases are restored too.
IRREVERSIBLE_CATEGORIES = frozenset(
    {Category.DATABASE_MIGRATION, Category.ODOO_UPGRADE, Category.DATABASE_UPGRADE}
)


@dataclass(frozen=True, slots=True)
class GitTarget:
    """Where the waves are committed: a clone of the GitOps repository and its branch."""

    clone: git_adapter.Clone
    branch: str = "main"
    sign_key: str | None = None  # an OpenPGP key id: wave and revert commits are signed


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the steps reach outside the database. Only `target` is required: without a
    status source the sync is not observed, without a backup tool a change that touches
    databases pauses before its first backup, without a notifier nobody is told."""

    target: GitTarget
    status: health.DeliveryStatus | None = None
    backup_tool: backup_service.BackupTool | None = None
    backup_dir: Path | None = None
    prometheus: str | None = None  # for metrics that name no address
    notifier: notify_adapter.HttpNotifier | None = None
    incident_url: str | None = None  # `{change}` is replaced by the change's id
    measure: Callable[[analysis.Metric, datetime, str | None], analysis.Measurement] = field(
        default=lambda metric, at, address: prometheus_adapter.measure(
            metric, at=at, address=address
        )
    )


@dataclass(frozen=True, slots=True)
class RolloutView:
    """A rollout and its steps, as `rollout status` and the API show it."""

    change_id: str
    rollout: rollout_store.Rollout
    steps: tuple[rollout_store.Step, ...]

    def as_dict(self) -> dict[str, Any]:
        current = next((s for s in self.steps if s.seq == self.rollout.position), None)
        return {
            "change_id": self.change_id,
            "status": self.rollout.status.value,
            "reason": self.rollout.reason,
            "waves": self.rollout.waves,
            "position": self.rollout.position,
            "current": current.planned.key if current else None,
            "bake_seconds": self.rollout.bake_seconds,
            "config": self.rollout.config,
            "steps": [step.as_dict() for step in self.steps],
        }


@dataclass(frozen=True, slots=True)
class Turn:
    """What one worker turn did: `done`, `waiting` (not yet; due again later), `paused`,
    `failed` (rolling back), `retry` (the effect raised; released), or `lost` (the lease
    expired and another worker took the step; nothing recorded)."""

    change_id: str
    wave: int
    waves: int
    kind: StepKind
    outcome: str
    detail: dict[str, Any]


def _view(conn: sa.Connection, number: int) -> RolloutView | None:
    found = rollout_store.get(conn, number)
    if found is None:
        return None
    steps = tuple(rollout_store.steps_of(conn, number))
    return RolloutView(changes.format_id(number), found, steps)


# --------------------------------------------------------------------------- starting


def _instant(text: str) -> datetime:
    return canonical.as_utc(datetime.fromisoformat(text))


def _seconds(text: str) -> int:
    nanos = godurations.nanoseconds(text)
    assert nanos is not None  # validated with the catalog
    return int(nanos / 10**9)


def _templates(catalog: catalog_model.Catalog, refs: Sequence[Any]) -> list[dict[str, Any]]:
    """The analysis templates the repository names, read from the catalog folder and checked
    (their metrics resolve with the built-in args), as documents to freeze on the rollout."""
    found: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    root = Path(catalog.root)
    for ref in refs:
        path = root / ref.template
        document, template = load_template_document(
            path, display=ref.template, max_bytes=MAX_TEMPLATE_BYTES
        )
        args = {**_builtin_args(template, "CHG-1", 1, 1, ("t",), ("ns",)), **ref.args}
        for metric in template.resolve(args):
            if metric.name in names:
                raise InvalidInput(
                    [
                        Problem(
                            f"metric {metric.name!r} is in {names[metric.name]} too: metric "
                            "names must be unique across a rollout's templates",
                            ref.template,
                        )
                    ]
                )
            names[metric.name] = ref.template
        found.append({"template": ref.template, "args": dict(ref.args), "document": document})
    return found


def touches_databases(change: ChangeRequest) -> bool:
    """A backup is taken before each wave: the category changes databases, or the rollback
    plan says the change is irreversible."""
    spec = change.spec
    return spec.category in DATABASE_CATEGORIES or spec.rollback_plan.irreversible


def irreversible(change: ChangeRequest) -> bool:
    """A rollback restores the databases: the plan says so, or the category is one that no
    revert undoes (schema migrations, Odoo and PostgreSQL upgrades)."""
    spec = change.spec
    return spec.rollback_plan.irreversible or spec.category in IRREVERSIBLE_CATEGORIES


def config_of(catalog: catalog_model.Catalog, change: ChangeRequest) -> dict[str, Any]:
    """The delivery settings the rollout keeps from start to end (a catalog reload while it
    runs changes nothing of it)."""
    repo = catalog.gitops_repository
    settings = repo.spec.rollout if repo is not None else None
    config: dict[str, Any] = {
        "repository": repo.spec.url if repo is not None else None,
        "application": settings.application if settings else "{tenant}",
        "render": bool(settings and settings.render and repo is not None),
        "sync_timeout_seconds": _seconds(settings.sync_timeout) if settings else 600,
        "sync_poll_seconds": max(1, _seconds(settings.sync_poll)) if settings else 5,
        "bake_seconds": _seconds(settings.bake) if settings else 0,
        "analysis": _templates(catalog, settings.analysis) if settings else [],
        "probes": settings.probes.model_dump() if settings else None,
        "backup": touches_databases(change),
        "restore": irreversible(change),
        "revert": change.spec.rollback_plan.revert,
        "content_hash": change.content_hash,
    }
    return config


def _create(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change: ChangeRequest,
    *,
    bake: timedelta | None,
) -> None:
    config = config_of(catalog, change)
    if bake is not None:
        config["bake_seconds"] = int(bake.total_seconds())
    waves = schedule_store.of_change(conn, change.number)
    count = len(waves) if waves else 1
    steps = plan_model.plan(count)
    rollout_store.create(
        conn,
        change.number,
        steps,
        now=ctx.now(),
        by=ctx.actor.id,
        bake_seconds=config["bake_seconds"],
        config=config,
    )
    audit_service.record(
        conn,
        ctx,
        "rollout.started",
        "change",
        change.id,
        None,
        {
            "waves": count,
            "steps": len(steps),
            "bake_seconds": config["bake_seconds"],
            "backup": config["backup"],
            "restore": config["restore"],
            "analysis": [t["template"] for t in config["analysis"]],
        },
    )


def start(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    *,
    bake: timedelta | None = None,
) -> RolloutView:
    """The rollout of a change in Implementing, created from its booked waves (a change with
    none is one wave of all its tenants); the existing one when it was started before.
    `bake` overrides the repository's bake time."""
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    if bake is not None:
        # A shorter bake skips part of the verification time: as `promote`, not the
        # requester's to decide.
        ctx.actor.require(Permission.ROLLOUTS_CONTROL)
    number = changes.parse_id(change_id)
    with db.transaction(engine) as conn:
        existing = _view(conn, number)
        if existing is not None:
            return existing
        change = change_store.get(conn, number)
        if bake is not None and ctx.actor.id == change.requester:
            raise Refused(
                f"{ctx.actor.id} requested {change.id} and may not set its rollout's bake: "
                "another person must (separation of duties)"
            )
        if change.state is not ChangeState.IMPLEMENTING:
            raise Refused(
                f"{change.id} is {change.state.value}: a rollout starts when it is implementing"
            )
        try:
            with conn.begin_nested():
                _create(conn, catalog, ctx, change, bake=bake)
        except sa.exc.IntegrityError:
            pass  # another door or worker started it at the same moment: that one stands
        view = _view(conn, number)
        assert view is not None
        return view


def start_due(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context
) -> list[tuple[str, str]]:
    """Start what is due: Scheduled changes whose first wave's slot has opened move to
    Implementing (through the lifecycle and its calendar gate), and changes in Implementing
    without a rollout get one. Returns (change id, what happened) for the worker's log; a
    change that cannot start now (a freeze, a bad analysis template) is reported and tried
    again on the next poll, with nothing written."""
    done: list[tuple[str, str]] = []
    if catalog.gitops_repository is None:
        return done
    with engine.connect() as conn:
        numbers = rollout_store.changes_without_rollout(
            conn, (ChangeState.SCHEDULED.value, ChangeState.IMPLEMENTING.value)
        )
    for number in numbers:
        try:
            with db.transaction(engine) as conn:
                change = change_store.get(conn, number)
                if rollout_store.get(conn, number) is not None:
                    continue
                now = ctx.now()
                if change.state is ChangeState.SCHEDULED:
                    waves = schedule_store.of_change(conn, number)
                    opens = waves[0].start if waves else change.spec.planned_start
                    if opens is None or canonical.as_utc(opens) > now:
                        continue
                    change = lifecycle.apply_transition(
                        conn,
                        catalog,
                        ctx,
                        change,
                        ChangeState.IMPLEMENTING,
                        reason="its first wave's slot opened: the rollout starts",
                    )
                elif change.state is not ChangeState.IMPLEMENTING:
                    continue
                _create(conn, catalog, ctx, change, bake=None)
                done.append((change.id, "started"))
        except sa.exc.IntegrityError:
            continue  # another worker or door started it at the same moment
        except ChangegateError as exc:
            done.append((changes.format_id(number), f"not started: {exc}"))
    return done


def status(engine: sa.Engine, ctx: Context, change_id: str) -> RolloutView:
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        found = _view(conn, number)
    if found is None:
        raise NotFound(f"{changes.format_id(number)} has no rollout")
    return found


def recorded_commits(engine: sa.Engine, ctx: Context, change_id: str) -> set[str]:
    """The commits the change's rollout made on the GitOps branch: its waves and reverts
    (drift counts them as the change's, whatever became of it)."""
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        steps = rollout_store.steps_of(conn, number)
    return {
        str(step.result["commit"])
        for step in steps
        if step.kind in (StepKind.COMMIT, StepKind.REVERT)
        and step.result is not None
        and step.result.get("commit")
    }


def list_rollouts(
    engine: sa.Engine, ctx: Context, *, statuses: Sequence[str] = ()
) -> list[rollout_store.Rollout]:
    ctx.actor.require(Permission.CHANGES_READ)
    with engine.connect() as conn:
        return rollout_store.list_rollouts(conn, statuses)


# --------------------------------------------------------------------------- the effects


@dataclass(frozen=True, slots=True)
class _Step:
    """What an effect needs: the claimed step, its rollout and change, now."""

    step: rollout_store.Step
    rollout: rollout_store.Rollout
    change: ChangeRequest
    tenants: tuple[str, ...]
    now: datetime
    earlier: Mapping[tuple[int, StepKind], rollout_store.Step]

    @property
    def config(self) -> dict[str, Any]:
        return self.rollout.config

    def result_of(self, wave: int, kind: StepKind) -> dict[str, Any]:
        found = self.earlier.get((wave, kind))
        return dict(found.result or {}) if found is not None else {}


def _wave_tenants(
    conn: sa.Connection, catalog: catalog_model.Catalog, change: ChangeRequest, wave: int
) -> tuple[str, ...]:
    waves = schedule_store.of_change(conn, change.number)
    if waves:
        return waves[wave - 1].tenants
    return tuple(impact.analyze(catalog, change.spec).tenants)


def _gate(conn: sa.Connection, catalog: catalog_model.Catalog, at: _Step) -> Outcome:
    change, step = at.change, at.step
    if change.state is ChangeState.CANCELED:
        return Fail(f"{change.id} was canceled while implementing")
    if change.state is not ChangeState.IMPLEMENTING:
        return Pause(f"{change.id} is {change.state.value}, not implementing")
    waves = schedule_store.of_change(conn, change.number)
    result: dict[str, Any] = {"content_hash": change.content_hash}
    if waves:
        slot = waves[step.wave - 1]
        if canonical.as_utc(slot.start) > at.now:
            return Wait(slot.start, note=f"wave {step.wave} opens at {slot.start.isoformat()}")
        result["slot"] = {"start": canonical.to_utc_text(slot.start)}
    # A guard: the lifecycle refuses material edits while implementing, so the content the
    # rollout started with is the content it carries; if that ever broke, stop for a person
    # (abort is the way out: the rollout carries the content it was approved with).
    started_with = at.config.get("content_hash")
    if started_with and change.content_hash != started_with:
        return Pause(
            f"{change.id}'s content changed since its rollout started (content hash "
            f"{started_with[:12]}… then, {change.content_hash[:12]}… now): abort the rollout"
        )
    # The approvals as they stand now (withdrawn or stale ones no longer count), judged at
    # the instant the implementation started: an approval that expires during a long
    # rollout does not stop it half-way.
    found = lifecycle.authorization(conn, catalog, change, at.rollout.created_at)
    if not found.authorized:
        return Pause(f"{change.id} is no longer authorized: {found.reason}")
    result["authorized"] = found.via
    if step.wave > 1:
        # Wave 1 started through the lifecycle's calendar gate (and any override) a moment
        # ago; each later wave is checked against the calendar as it is now.
        check = lifecycle.start_check(conn, catalog, change, at.now, step.wave)
        if not check.allowed:
            reasons = [d.reason for d in check.blocked] + [
                f"{tenant}: consent missing for {', '.join(windows)}"
                for tenant, windows in check.missing_consent
            ]
            return Pause(f"the calendar holds wave {step.wave}: " + "; ".join(reasons[:5]))
        result["calendar"] = "allowed"
    return Done(result)


def _backup(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, at: _Step, d: Delivery
) -> Outcome:
    if not at.config.get("backup"):
        return Done({"needed": False})
    if d.backup_tool is None or d.backup_dir is None:
        return Pause("the change touches tenant databases and no backup tool is configured")
    with engine.connect() as conn:
        taken = backup_store.list_backups(conn, change_number=at.change.number, limit=1000)
    have = {record.tenant: record for record in taken}
    records = []
    for tenant in at.tenants:
        if tenant not in catalog.tenants:
            continue
        record = have.get(tenant)
        if record is None:
            record = backup_service.take(
                engine,
                catalog,
                ctx,
                tenant,
                tool=d.backup_tool,
                backup_dir=d.backup_dir,
                change_id=at.change.id,
            )
        records.append(
            {
                "tenant": tenant,
                "backup_id": record.id,
                "sha256": record.sha256,
                "size_bytes": record.size_bytes,
                "filestore_ref": record.filestore_ref,
            }
        )
    return Done({"needed": True, "backups": records})


def _commit(catalog: catalog_model.Catalog, at: _Step, d: Delivery) -> Outcome:
    change, step, target = at.change, at.step, d.target
    images = [image.model_dump(mode="json") for image in change.spec.artifacts.images]
    pairs = [(image.ref, image.digest) for image in change.spec.artifacts.images]
    repo = catalog.gitops_repository
    rules = repo.spec.paths if repo is not None else []
    render = bool(at.config.get("render")) and bool(pairs) and bool(rules)
    rendered: list[str] = []
    skipped: list[tuple[str, str]] = []
    carry = _carry(catalog, at, target)

    def files(tip: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        rendered.clear()
        skipped.clear()
        if render:
            listing = dict(target.clone.tree(tip))
            # Files the change's own range carries are as the range has them already.
            carried = set(carry.paths) if carry is not None else set()
            wanted = [
                p for p in rendering.tenant_files(rules, listing, at.tenants) if p not in carried
            ]
            blobs = target.clone.read_blobs([listing[p] for p in wanted])
            texts = {
                path: blob.content
                for path in wanted
                if (blob := blobs.get(listing[path])) is not None and blob.content is not None
            }
            done = rendering.render_images(texts, pairs)
            for rewrite in done.rewrites:
                out[rewrite.path] = rewrite.after
                rendered.append(rewrite.path)
            skipped.extend(done.skipped)
        document = plan_model.wave_document(
            change.id, step.wave, step.waves, at.tenants, images, rendered
        )
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        out[plan_model.wave_path(change.id, step.wave)] = text.encode("utf-8")
        return out

    message = plan_model.commit_message(
        change.id, change.spec.title, step.wave, step.waves, len(at.tenants)
    )
    pushed = target.clone.commit_files(
        target.branch,
        files,
        message,
        trailers=plan_model.trailers(change.id, step.wave, step.waves),
        sign_key=target.sign_key,
        carry=carry,
    )
    result: dict[str, Any] = {
        "commit": pushed.sha,
        "created": pushed.created,
        "branch": target.branch,
        "path": plan_model.wave_path(change.id, step.wave),
        "tenants": len(at.tenants),
    }
    if carry is not None:
        result["carried"] = {"range": f"{carry.start}..{carry.end}", "paths": list(carry.paths)}
    if pushed.created:
        result["rendered"] = sorted(rendered)
        result["skipped"] = [list(item) for item in skipped]
    return Done(result)


def _carry(
    catalog: catalog_model.Catalog, at: _Step, target: GitTarget
) -> git_adapter.Carry | None:
    """The part of a change filed from the GitOps repository's own commits that this wave
    carries: the range's diff on the wave tenants' files; files that target no tenant (a
    service's, a cluster's) go with wave 1. None for other changes."""
    repository = at.config.get("repository")
    ranges = [g for g in at.change.spec.artifacts.git if g.repo == repository]
    repo = catalog.gitops_repository
    if not ranges or repo is None:
        return None
    found = ranges[0]
    clone = target.clone
    if not clone.has_ref(f"{found.to_commit}^{{commit}}"):
        clone.fetch_refs("origin", ["+refs/heads/*:refs/remotes/origin/*"])
    start = found.from_commit or f"{found.to_commit}^"
    changed = clone.changed_files(start, found.to_commit)
    paths = {p for f in changed for p in (f.path, f.old_path) if p}
    mine = set(rendering.tenant_files(repo.spec.paths, paths, at.tenants))
    if at.step.wave == 1:
        tenants_anywhere = {
            p
            for p in paths
            if (m := gitops_model.match_path(repo.spec.paths, p)) is not None
            and "tenant" in m.captures
        }
        mine |= paths - tenants_anywhere
    mine = {p for p in mine if not p.startswith(plan_model.ROLLOUT_FOLDER + "/")}
    return git_adapter.Carry(start, found.to_commit, tuple(sorted(mine)))


def _applications(catalog: catalog_model.Catalog, at: _Step) -> list[str]:
    pattern = at.config.get("application") or "{tenant}"
    names = []
    for tenant in at.tenants:
        entity = catalog.tenants.get(tenant)
        values = {"tenant": tenant}
        if entity is not None:
            values |= {
                "cluster": entity.spec.cluster,
                "namespace": entity.spec.namespace,
                "environment": entity.spec.environment,
            }
        names.append(plan_model.application_name(pattern, values))
    return sorted(set(names))


def _statuses(
    source: health.DeliveryStatus, apps: Sequence[str]
) -> tuple[list[health.AppStatus], list[str]]:
    """The applications' statuses, and why those that could not be read were not."""
    statuses: list[health.AppStatus] = []
    unavailable: list[str] = []
    for app in apps:
        try:
            statuses.append(source.application_status(app))
        except health.StatusUnavailable as exc:
            unavailable.append(f"{app}: {exc}")
    return statuses, unavailable


def _sync(catalog: catalog_model.Catalog, at: _Step, d: Delivery) -> Outcome:
    commit = at.result_of(at.step.wave, StepKind.COMMIT).get("commit")
    if d.status is None:
        return Done({"observed": False, "reason": "no delivery-status source is configured"})
    progress = dict(at.step.progress or {})
    started = progress.setdefault("started_at", canonical.to_utc_text(at.now))
    apps = _applications(catalog, at)
    statuses, unavailable = _statuses(d.status, apps)
    verdict = (
        health.WaveVerdict(health.Verdict.WAITING, unavailable)
        if unavailable
        else health.wave_verdict(statuses, commit)
    )
    body = {"revision": commit, "applications": apps, **verdict.as_dict()}
    if verdict.verdict is health.Verdict.DELIVERED:
        return Done({"observed": True, **body})
    if verdict.verdict is health.Verdict.FAILED:
        return Fail("sync failed: " + "; ".join(verdict.reasons[:5]), body)
    waited = at.now - _instant(started)
    timeout = timedelta(seconds=int(at.config.get("sync_timeout_seconds", 600)))
    if waited >= timeout:
        return Fail(
            f"not synced and healthy within {timeout}: " + "; ".join(verdict.reasons[:5]), body
        )
    poll = timedelta(seconds=int(at.config.get("sync_poll_seconds", 5)))
    progress["last"] = body
    return Wait(at.now + poll, progress, "; ".join(verdict.reasons[:3]))


def _builtin_args(
    template: analysis.Template,
    change_id: str,
    wave: int,
    waves: int,
    tenants: Sequence[str],
    namespaces: Sequence[str],
) -> dict[str, str]:
    """The args changegate supplies, for the ones the template declares: change, wave,
    waves, tenants and namespaces (regex alternations for `=~` label matchers)."""
    values = {
        "change": change_id,
        "wave": str(wave),
        "waves": str(waves),
        "tenants": plan_model.regex_alternation(tenants),
        "namespaces": plan_model.regex_alternation(namespaces),
    }
    declared = {arg.name for arg in template.args}
    return {name: value for name, value in values.items() if name in declared}


def _metrics(catalog: catalog_model.Catalog, at: _Step) -> list[analysis.Metric]:
    namespaces = sorted(
        {catalog.tenants[t].spec.namespace for t in at.tenants if t in catalog.tenants}
    )
    metrics: list[analysis.Metric] = []
    for frozen in at.config.get("analysis") or []:
        template = analysis.parse_template(frozen["document"], source=frozen["template"])
        builtin = _builtin_args(
            template, at.change.id, at.step.wave, at.step.waves, at.tenants, namespaces
        )
        metrics += template.resolve({**builtin, **frozen["args"]})
    return metrics


def _probes(catalog: catalog_model.Catalog, at: _Step) -> list[dict[str, Any]]:
    settings = at.config.get("probes") or {}
    results: list[dict[str, Any]] = []
    for tenant in at.tenants:
        entity = catalog.tenants.get(tenant)
        if entity is None or entity.spec.url is None:
            continue
        url, series = entity.spec.url, entity.spec.odoo.series
        timeout = float(settings.get("timeout_seconds", 10.0))
        found = []
        if settings.get("web_health", True) and probe_adapter.supports_web_health(series):
            found.append(
                probe_adapter.odoo_health(
                    url,
                    db_server_status=probe_adapter.supports_db_server_status(series),
                    timeout=timeout,
                )
            )
        within = settings.get("login_within_ms")
        if within:
            login = url.rstrip("/") + "/web/login"
            found.append(probe_adapter.login_page(login, within_ms=within, timeout=timeout))
        results += [{"tenant": tenant, **probe.as_dict()} for probe in found]
    return results


def _measurement(data: Mapping[str, Any]) -> analysis.Measurement:
    at = data.get("at")
    return analysis.Measurement(
        analysis.Phase(data["phase"]),
        data.get("value"),
        data.get("message") or "",
        datetime.fromisoformat(at) if at else None,
    )


def _verify(catalog: catalog_model.Catalog, at: _Step, d: Delivery) -> Outcome:
    progress = dict(at.step.progress or {})
    if "probes" not in progress:
        progress["probes"] = _probes(catalog, at)
        progress["started_at"] = canonical.to_utc_text(at.now)
    failed = [p for p in progress["probes"] if not p["passed"]]
    if failed:
        reasons = [f"{p['tenant']} {p['probe']}: {p['reason']}" for p in failed]
        return Fail("probes failed: " + "; ".join(reasons[:5]), progress)
    metrics = _metrics(catalog, at)
    if not metrics:
        return Done({"analysis": None, "probes": progress["probes"]})
    started = _instant(progress["started_at"])
    run = analysis.Run(metrics, started_at=started)
    recorded: list[dict[str, Any]] = list(progress.get("measurements") or [])
    for item in recorded:
        run.record(item["metric"], _measurement(item["measurement"]))
    for name in run.due(at.now):
        metric = next(m for m in metrics if m.name == name)
        measured = d.measure(metric, at.now, d.prometheus)
        recorded.append({"metric": name, "measurement": measured.as_dict()})
        run.record(name, measured)
        if run.phase.completed or run.terminating:
            break
    progress["measurements"] = recorded
    body = {"analysis": run.as_dict(), "probes": progress["probes"]}
    phase = run.phase
    if phase is analysis.Phase.SUCCESSFUL:
        return Done(body)
    if phase in (analysis.Phase.FAILED, analysis.Phase.ERROR):
        return Fail(f"analysis {phase.value}: {run.message}", body)
    if phase is analysis.Phase.INCONCLUSIVE:
        return Pause(f"analysis inconclusive: {run.message}", progress)
    following = run.next_measurement_at(at.now)
    if following is None:  # nothing more to measure and not complete: Argo ends it here
        run.terminate()
        return Done({"analysis": run.as_dict(), "probes": progress["probes"]})
    return Wait(max(following, at.now), progress, f"analysis running ({len(recorded)} taken)")


def _revert(at: _Step, d: Delivery) -> Outcome:
    target = d.target
    commit = at.result_of(at.step.wave, StepKind.COMMIT).get("commit")
    if not commit:
        # Tried but not recorded: on the branch only if a push landed; its trailers say.
        tip = target.clone.fetch(target.branch)
        wanted = plan_model.trailers(at.change.id, at.step.wave, at.step.waves)
        commit = target.clone.find_by_trailers(tip, wanted) if tip is not None else None
        if commit:
            # The newest such commit may be this wave's revert already (a retried step):
            # revert what it reverts, which `revert` finds done by its trailers.
            commit = target.clone.trailer(commit, plan_model.REVERTS_TRAILER) or commit
    if not commit:
        return Done({"reverted": None, "reason": "the wave was not committed"})
    reason = at.rollout.reason or "rolled back"
    message = plan_model.revert_message(at.change.id, at.step.wave, at.step.waves, commit, reason)
    pushed = target.clone.revert(
        target.branch,
        commit,
        message,
        trailers=plan_model.revert_trailers(at.change.id, at.step.wave, at.step.waves, commit),
        sign_key=target.sign_key,
    )
    return Done({"reverted": commit, "commit": pushed.sha, "created": pushed.created})


def _restore(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, at: _Step, d: Delivery
) -> Outcome:
    taken = at.result_of(at.step.wave, StepKind.BACKUP).get("backups") or []
    if not taken:
        return Done({"restored": [], "reason": "no backup was taken for this wave"})
    if d.backup_tool is None:
        return Pause("databases must be restored and no backup tool is configured")
    waiting = _revert_not_synced(catalog, at, d)
    if waiting is not None:
        return waiting
    restored = []
    for item in taken:
        restored.append(
            backup_service.restore(engine, catalog, ctx, int(item["backup_id"]), tool=d.backup_tool)
        )
    return Done({"restored": restored})


def _revert_not_synced(catalog: catalog_model.Catalog, at: _Step, d: Delivery) -> Wait | None:
    """Before restoring a wave's databases, wait until its applications run the reverted
    revision (synced at the revert commit: the new version's pods are gone), so the new code
    never meets the restored old schema. Health is not waited for (the old code may fail on
    the migrated schema until the restore), and after the sync timeout the restore goes on."""
    revert = at.result_of(at.step.wave, StepKind.REVERT).get("commit")
    if d.status is None or not revert:
        return None
    progress = dict(at.step.progress or {})
    started = progress.setdefault("started_at", canonical.to_utc_text(at.now))
    timeout = timedelta(seconds=int(at.config.get("sync_timeout_seconds", 600)))
    if at.now - _instant(started) >= timeout:
        return None
    statuses, behind = _statuses(d.status, _applications(catalog, at))
    behind += [
        f"{found.app}: at {found.revision or '(none)'}, waiting for {revert}"
        for found in statuses
        if found.reports_sync and not health.same_revision(found.revision, revert)
    ]
    if not behind:
        return None
    poll = timedelta(seconds=int(at.config.get("sync_poll_seconds", 5)))
    return Wait(at.now + poll, progress, "; ".join(behind[:3]))


def _incident(at: _Step, d: Delivery) -> dict[str, Any]:
    ident = f"{at.change.id}-rollback"
    url = d.incident_url.replace("{change}", at.change.id) if d.incident_url else None
    return {"id": ident, "url": url}


def _conclude(at: _Step, d: Delivery) -> Outcome:
    incident = _incident(at, d)
    event = {
        "event": "rollout.rolled-back",
        "change": at.change.id,
        "title": at.change.spec.title,
        "wave": at.step.wave,
        "waves": at.step.waves,
        "reason": at.rollout.reason,
        "incident": incident,
    }
    notified: dict[str, Any] = {"sent": False}
    if d.notifier is not None:
        try:
            notified = {"sent": True, "status": d.notifier.send(event)}
        except notify_adapter.NotifyError as exc:
            notified = {"sent": False, "error": str(exc)}
    return Done({"incident": incident, "notified": notified, "reason": at.rollout.reason})


def _effect(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    at: _Step,
    d: Delivery,
) -> Outcome:
    kind = at.step.kind
    if kind is StepKind.GATE:
        with engine.connect() as conn:
            return _gate(conn, catalog, at)
    if kind is StepKind.BACKUP:
        return _backup(engine, catalog, ctx, at, d)
    if kind is StepKind.COMMIT:
        return _commit(catalog, at, d)
    if kind is StepKind.SYNC:
        return _sync(catalog, at, d)
    if kind is StepKind.VERIFY:
        return _verify(catalog, at, d)
    if kind is StepKind.BAKE:
        return Done({"baked_seconds": at.rollout.bake_seconds})
    if kind is StepKind.REVERT:
        return _revert(at, d)
    if kind is StepKind.RESTORE:
        return _restore(engine, catalog, ctx, at, d)
    return _conclude(at, d)


# --------------------------------------------------------------------------- one turn


def run_next(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    delivery: Delivery,
    *,
    worker: str,
    lease: timedelta = DEFAULT_LEASE,
    retry_after: timedelta = RETRY_AFTER,
) -> Turn | None:
    """Claim, run and record one due step; None when no step is due."""
    with db.transaction(engine) as conn:
        now = ctx.now()
        step = rollout_store.claim_next(conn, worker, now, now + lease)
        if step is None:
            return None
        found = rollout_store.get(conn, step.change_number)
        assert found is not None
        change = change_store.get(conn, step.change_number)
        tenants = _wave_tenants(conn, catalog, change, step.wave)
        earlier = {(s.wave, s.kind): s for s in rollout_store.steps_of(conn, step.change_number)}
    at = _Step(step, found, change, tenants, now, earlier)
    change_id = change.id
    try:
        with _heartbeat(engine, ctx, step, lease):
            outcome = _effect(engine, catalog, ctx, at, delivery)
    except git_adapter.PushRejected as exc:
        return _retry(engine, ctx, step, change_id, str(exc), retry_after)
    except PermanentError as exc:
        # Retrying cannot help (a revert that conflicts, a commit missing from the remote):
        # a person decides. The step keeps its place; `resume` runs it again.
        outcome = Pause(f"{step.planned.key} cannot go on: {exc}", dict(step.progress or {}))
    except ChangegateError as exc:
        return _retry(engine, ctx, step, change_id, str(exc), retry_after)
    except Exception as exc:  # a bug or an unexpected client error: logged, retried, kept
        log.exception("rollout %s %s failed unexpectedly", change_id, step.planned.key)
        return _retry(engine, ctx, step, change_id, f"{type(exc).__name__}: {exc}", retry_after)
    with db.transaction(engine) as conn:
        recorded = _record(conn, catalog, ctx, step, found, outcome, worker)
    if recorded is None:
        return Turn(change_id, step.wave, step.waves, step.kind, "lost", {})
    name, detail = recorded
    return Turn(change_id, step.wave, step.waves, step.kind, name, detail)


def _retry(
    engine: sa.Engine,
    ctx: Context,
    step: rollout_store.Step,
    change_id: str,
    error: str,
    retry_after: timedelta,
) -> Turn:
    with db.transaction(engine) as conn:
        rollout_store.release(conn, step, error=error, retry_at=ctx.now() + retry_after)
    return Turn(change_id, step.wave, step.waves, step.kind, "retry", {"error": error})


@contextlib.contextmanager
def _heartbeat(
    engine: sa.Engine, ctx: Context, step: rollout_store.Step, lease: timedelta
) -> Iterator[None]:
    """Renew the step's lease every third of it while its effect runs (a pg_dump or a
    pg_restore outlasts any lease), so no other worker takes a step still in hand; a worker
    that dies stops renewing and the lease runs out as before."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            try:
                with db.transaction(engine) as conn:
                    if not rollout_store.renew(conn, step, ctx.now() + lease):
                        return
            except Exception:  # the database is away: the effect's own record will tell
                log.warning("could not renew the lease of %s", step.planned.key)

    thread = threading.Thread(target=beat, name="changegate-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _audit(
    conn: sa.Connection,
    ctx: Context,
    action: str,
    step: rollout_store.Step,
    body: dict[str, Any],
) -> None:
    audit_service.record(
        conn,
        ctx,
        action,
        "change",
        changes.format_id(step.change_number),
        None,
        {"wave": step.wave, "waves": step.waves, "step": step.kind.value, **body},
    )


def _record(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    ctx: Context,
    step: rollout_store.Step,
    rollout: rollout_store.Rollout,
    outcome: Outcome,
    worker: str,
) -> tuple[str, dict[str, Any]] | None:
    """Record what the effect came to, with its audit event, in the caller's transaction;
    None when the claim was lost."""
    now = ctx.now()
    if isinstance(outcome, Wait):
        if not rollout_store.wait(
            conn, step, until=outcome.until, progress=outcome.progress, note=outcome.note
        ):
            return None
        return "waiting", {"until": canonical.to_utc_text(outcome.until), "note": outcome.note}
    if isinstance(outcome, Pause):
        if not rollout_store.wait(conn, step, until=now, progress=outcome.progress):
            return None
        rollout_store.set_status(
            conn, step.change_number, RolloutStatus.PAUSED, reason=outcome.reason
        )
        _audit(conn, ctx, "rollout.paused", step, {"reason": outcome.reason, "by": "system"})
        return "paused", {"reason": outcome.reason}
    if isinstance(outcome, Fail):
        if not _fail(conn, ctx, step, rollout, outcome.reason, outcome.result, now):
            return None
        return "failed", {"reason": outcome.reason}
    following = plan_model.due_after(step.planned, now, timedelta(seconds=rollout.bake_seconds))
    if not rollout_store.finish(conn, step, now=now, result=outcome.result, next_due=following):
        return None
    _audit(
        conn,
        ctx,
        f"rollout.{step.kind.value}",
        step,
        {"attempt": step.attempts, "worker": worker, "result": outcome.result},
    )
    if step.seq == rollout_store.last_seq(conn, step.change_number):
        _finish(conn, catalog, ctx, step, outcome)
    return "done", outcome.result


def _fail(
    conn: sa.Connection,
    ctx: Context,
    step: rollout_store.Step,
    rollout: rollout_store.Rollout,
    reason: str,
    result: dict[str, Any],
    now: datetime,
    *,
    aborted_by: str | None = None,
) -> bool:
    """The wave failed (or a person aborted it): plan the rollback and move to it."""
    steps = rollout_store.steps_of(conn, step.change_number)
    done = {(s.wave, s.kind) for s in steps if s.status is StepStatus.DONE}
    # A commit step that was tried may have pushed (a push that timed out after it landed):
    # its wave gets a revert too, which finds the commit by its trailers or reverts nothing.
    committed = sorted(
        {w for (w, kind) in done if kind is StepKind.COMMIT}
        | {s.wave for s in steps if s.kind is StepKind.COMMIT and s.attempts > 0}
    )
    revert_all = rollout.config.get("revert") == "all"
    reverted = [w for w in committed if w == step.wave or (revert_all and w < step.wave)]
    restore = (
        [w for w in reverted if (w, StepKind.BACKUP) in done]
        if rollout.config.get("restore")
        else []
    )
    rollback = plan_model.rollback_plan(
        next_seq=rollout_store.last_seq(conn, step.change_number) + 1,
        failed_wave=step.wave,
        waves=step.waves,
        committed=committed,
        revert_all=revert_all,
        restore=restore,
    )
    body = {**result, "failure": reason}
    if aborted_by is not None:
        body["aborted_by"] = aborted_by
    if not rollout_store.fail(
        conn,
        step,
        now=now,
        result=body,
        reason=reason,
        status=RolloutStatus.ROLLING_BACK,
        rollback=rollback,
    ):
        return False
    _audit(
        conn,
        ctx,
        "rollout.failed" if aborted_by is None else "rollout.aborted",
        step,
        {
            "reason": reason,
            "result": result,
            "rollback": [s.key for s in rollback],
        },
    )
    return True


def _finish(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    ctx: Context,
    step: rollout_store.Step,
    outcome: Done,
) -> None:
    """The last step is done: a complete rollout moves the change to Review; a rollback
    closes it unsuccessful (through Review, as a person would) with the incident."""
    now = ctx.now()
    change = change_store.get(conn, step.change_number)
    if step.kind is not StepKind.CONCLUDE:
        rollout_store.set_status(
            conn, step.change_number, RolloutStatus.COMPLETE, reason=None, now=now
        )
        audit_service.record(
            conn,
            ctx,
            "rollout.completed",
            "change",
            change.id,
            {"status": RolloutStatus.RUNNING.value},
            {"status": RolloutStatus.COMPLETE.value, "waves": step.waves},
        )
        if change.state is ChangeState.IMPLEMENTING:
            lifecycle.apply_transition(
                conn,
                catalog,
                ctx,
                change,
                ChangeState.REVIEW,
                reason=f"rollout complete: {step.waves} wave(s) committed, synced, verified "
                "and baked",
            )
        return
    steps = rollout_store.steps_of(conn, step.change_number)
    aborted = any(
        s.status is StepStatus.FAILED and (s.result or {}).get("aborted_by") for s in steps
    )
    final = RolloutStatus.ABORTED if aborted else RolloutStatus.FAILED
    found = rollout_store.get(conn, step.change_number)
    reason = found.reason if found is not None else None
    rollout_store.set_status(conn, step.change_number, final, reason=reason, now=now)
    audit_service.record(
        conn,
        ctx,
        f"rollout.{final.value}",
        "change",
        change.id,
        {"status": RolloutStatus.ROLLING_BACK.value},
        {"status": final.value, "reason": reason, "incident": outcome.result.get("incident")},
    )
    if change.state is ChangeState.IMPLEMENTING:
        notes = f"rolled back at wave {step.wave}/{step.waves}: {reason}"
        incident = (outcome.result.get("incident") or {}).get("id")
        if incident:
            notes += f" (incident {incident})"
        change = lifecycle.apply_transition(
            conn, catalog, ctx, change, ChangeState.REVIEW, reason=notes
        )
        lifecycle.apply_transition(
            conn,
            catalog,
            ctx,
            change,
            ChangeState.CLOSED,
            close_code=CloseCode.UNSUCCESSFUL,
            close_notes=notes,
        )


# --------------------------------------------------------------------------- people


def control(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    action: Action,
    *,
    reason: str,
) -> RolloutView:
    """A person's pause, resume, abort or promote (docs/rollout.md), audited with the reason.

    Needs `rollouts:control`. Resume and promote let the rollout go on, so the change's
    requester may not do them (separation of duties, as for approvals); anyone with the
    permission may pause or abort (stopping is always safe to ask for).
    """
    ctx.actor.require(Permission.ROLLOUTS_CONTROL)
    text = reason.strip()
    if not text:
        raise InvalidInput([Problem("give a reason: it goes into the audit trail", field="reason")])
    number = changes.parse_id(change_id)
    with db.transaction(engine) as conn:
        found = rollout_store.lock(conn, number)
        if found is None:
            raise NotFound(f"{changes.format_id(number)} has no rollout")
        change = change_store.get(conn, number)
        if action in (Action.RESUME, Action.PROMOTE) and ctx.actor.id == change.requester:
            raise Refused(
                f"{ctx.actor.id} requested {change.id} and may not {action.value} its rollout: "
                "another person must (separation of duties)"
            )
        current = rollout_store.current_step(conn, number)
        why = plan_model.allowed_action(action, found.status, current.kind if current else None)
        if why is not None:
            raise Refused(f"cannot {action.value} {change.id}'s rollout: {why}")
        assert current is not None
        now = ctx.now()
        body: dict[str, Any] = {"by": ctx.actor.id, "reason": text}
        if action is Action.PAUSE:
            rollout_store.set_status(conn, number, RolloutStatus.PAUSED, reason=text)
            _audit(conn, ctx, "rollout.paused", current, body)
        elif action is Action.RESUME:
            back = (
                RolloutStatus.ROLLING_BACK
                if current.kind in plan_model.ROLLBACK
                else RolloutStatus.RUNNING
            )
            rollout_store.set_status(conn, number, back, reason=None)
            if current.status is not StepStatus.RUNNING:
                # A paused bake keeps its end: resuming does not cut it short.
                rollout_store.reset_step(conn, current, due_at=max(current.due_at, now))
            _audit(conn, ctx, "rollout.resumed", current, body)
        elif action is Action.PROMOTE:
            if current.status is StepStatus.RUNNING:
                raise Refused(
                    f"a worker is running {current.planned.key} now; promote again in a moment"
                )
            rollout_store.set_status(conn, number, RolloutStatus.RUNNING, reason=None)
            result = {"promoted_by": ctx.actor.id, "reason": text}
            following = plan_model.due_after(
                current.planned, now, timedelta(seconds=found.bake_seconds)
            )
            if not rollout_store.skip_step(
                conn, current, now=now, result=result, next_due=following
            ):
                raise Conflict(f"a worker claimed {current.planned.key} just now; promote again")
            _audit(conn, ctx, "rollout.promoted", current, body)
            if current.seq == rollout_store.last_seq(conn, number):
                _finish(conn, catalog, ctx, current, Done(result))
        else:
            if current.status is StepStatus.RUNNING:
                raise Refused(
                    f"a worker is running {current.planned.key} now; abort again in a moment "
                    "(or pause first)"
                )
            if not _fail(
                conn,
                ctx,
                current,
                found,
                f"aborted by {ctx.actor.id}: {text}",
                {},
                now,
                aborted_by=ctx.actor.id,
            ):
                raise Conflict(f"a worker claimed {current.planned.key} just now; abort again")
        view = _view(conn, number)
        assert view is not None
        return view
