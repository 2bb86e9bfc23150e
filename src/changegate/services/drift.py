"""Drift and unauthorized changes in the GitOps repository (docs/health-and-drift.md).

`live_drift` reads the desired objects at the repository's branch head (the files that a
non-ignored GitOpsRepository pattern governs, `.yaml`/`.yml`/`.json`, Kubernetes objects only:
kustomize and Helm are not rendered) and compares them with live objects
(`domain.drift.compare`).

`unauthorized_commits` walks a range A..B: every commit that touches a governed path must
carry a `Change-Id: CHG-<n>` trailer naming a change that is authorized (Scheduled),
Implementing, in Review, or Closed successful (with or without issues); and, when the
GitOpsRepository's `signing.required`, be signed by one of its `signing.keys`
(`adapters.gitsign`: `git verify-commit` against a private keyring of those keys only).
Anything else is reported with every reason.

`open_change` files one emergency change recording what drift found (unauthorized commits,
drifted, missing and unmanaged objects), through `changes.create`. Each finding has a stable
id (`domain.drift.Finding`); in the creating transaction one `drift.finding-recorded` audit
event per finding (object type `drift-finding`, object id the finding's id) records which
change holds it. A later run files only the findings no change holds yet, so the same
findings never open a second change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from changegate.adapters import git as git_adapter
from changegate.adapters import gitsign, policy_inputs
from changegate.domain import catalog as catalog_model
from changegate.domain import drift, gitops
from changegate.domain.changes import (
    Artifacts,
    Category,
    ChangeRequest,
    ChangeSpec,
    ChangeState,
    ChangeType,
    CloseCode,
    GitArtifact,
    Targets,
)
from changegate.domain.permissions import Permission
from changegate.domain.policy.model import Format
from changegate.errors import ChangegateError, Conflict, InvalidInput, NotFound, Problem
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services import gitops as gitops_service
from changegate.services.context import Context
from changegate.services.gitops import repository_of
from changegate.store import audit as audit_store

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
AUTHORIZING_STATES = frozenset(
    {ChangeState.SCHEDULED, ChangeState.IMPLEMENTING, ChangeState.REVIEW}
)
SUCCESSFUL_CLOSE = frozenset({CloseCode.SUCCESSFUL, CloseCode.SUCCESSFUL_WITH_ISSUES})

ChangeLookup = Callable[[str], ChangeRequest | None]


def _governed(rules: Sequence[gitops.PathRule], path: str) -> gitops.PathMatch | None:
    match = gitops.match_path(rules, path)
    if match is None or match.rule.ignore:
        return None
    return match


@dataclass
class DesiredState:
    commit: str | None
    objects: list[drift.DesiredObject] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _objects_in(raw: bytes, path: str, notices: list[str]) -> list[drift.DesiredObject]:
    try:
        documents = policy_inputs.parse(raw, path)
    except InvalidInput as exc:
        notices.append(f"{path}: not read ({exc})")
        return []
    found: list[drift.DesiredObject] = []
    for document in documents:
        if document is None or document.format is not Format.KUBERNETES:
            continue
        if isinstance(document.data, dict) and drift.is_cluster_object(document.data):
            found.append(drift.DesiredObject(document.data, path))
    return found


def desired_at_head(
    catalog: catalog_model.Catalog, repo_path: Path, ref: str | None = None
) -> DesiredState:
    """The desired objects of the governed manifests at ref (default: the declared branch)."""
    spec: gitops.GitOpsRepositorySpec = repository_of(catalog).spec
    repo = git_adapter.Repository(repo_path)
    commit = repo.resolve(ref or spec.branch)
    state = DesiredState(commit)
    files = [
        (path, blob)
        for path, blob in repo.tree(commit)
        if path.lower().endswith(MANIFEST_SUFFIXES) and _governed(spec.paths, path)
    ]
    blobs = repo.read_blobs([blob for _, blob in files])
    for path, blob_id in files:
        blob = blobs.get(blob_id)
        if blob is None or blob.content is None:
            state.notices.append(f"{path}: skipped ({blob.skipped if blob else 'not read'})")
            continue
        state.objects += _objects_in(blob.content, path, state.notices)
    return state


def desired_in_folder(folder: Path) -> DesiredState:
    """The desired objects of every manifest under folder (no patterns: all of them)."""
    if not folder.is_dir():
        raise InvalidInput([Problem(f"{folder}: not a folder", field="desired")])
    state = DesiredState(None)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            relative = path.relative_to(folder).as_posix()
            if any(part.startswith(".") for part in relative.split("/")):
                continue
            state.objects += _objects_in(path.read_bytes(), relative, state.notices)
    return state


def live_drift(
    desired: DesiredState,
    live: Sequence[dict[str, Any]],
    *,
    default_namespace: str = "default",
) -> drift.DriftReport:
    return drift.compare(desired.objects, live, default_namespace=default_namespace)


def _authorizes(change: ChangeRequest) -> bool:
    if change.state in AUTHORIZING_STATES:
        return True
    return change.state is ChangeState.CLOSED and change.close_code in SUCCESSFUL_CLOSE


def _change_id_problem(ids: Sequence[str], lookup: ChangeLookup) -> str | None:
    """Why the Change-Id trailers authorize nothing, or None when one names an authorized
    change."""
    if not ids:
        return "no Change-Id trailer"
    reasons: list[str] = []
    for change_id in ids:
        try:
            change = lookup(change_id)
        except (InvalidInput, NotFound):
            change = None
        except ChangegateError as exc:
            reasons.append(f"{change_id}: {exc}")
            continue
        if change is None:
            reasons.append(f"{change_id} names no change")
        elif _authorizes(change):
            return None
        else:
            code = f" {change.close_code.value}" if change.close_code else ""
            reasons.append(f"{change_id} is {change.state.value}{code}, not authorized")
    return "; ".join(reasons)


SignatureCheck = Callable[[str], gitsign.Verdict]


@contextmanager
def signature_check(
    catalog: catalog_model.Catalog, repo_path: Path, catalog_dir: Path | None
) -> Iterator[SignatureCheck | None]:
    """sha -> verdict with the GitOpsRepository's keys when it requires signed commits,
    else None. InvalidInput names the key file (and `spec.signing.keys[i]`) that cannot be
    read, or the catalog file when gpg is missing or the catalog folder is unknown."""
    entity = repository_of(catalog)
    signing: gitops.Signing = entity.spec.signing
    if not signing.required:
        yield None
        return
    if catalog_dir is None:
        raise InvalidInput(
            [
                Problem(
                    "signed commits are required, and the catalog folder holding the keys "
                    "is not known",
                    file=entity.file,
                    field="spec.signing.keys",
                )
            ]
        )
    root = catalog_dir.resolve()
    keys: list[gitsign.KeyFile] = []
    for index, relative in enumerate(signing.keys):
        path = catalog_dir / relative
        shown = str(path)
        field_name = f"spec.signing.keys[{index}]"
        if not path.resolve().is_relative_to(root):
            raise InvalidInput(
                [Problem(f"{shown}: points outside the catalog folder", field=field_name)]
            )
        keys.append(gitsign.KeyFile(path, shown, field_name))
    with gitsign.keyring(keys, catalog_file=entity.file) as ring:
        yield lambda sha: ring.verify(repo_path, sha)


def unauthorized_commits(
    catalog: catalog_model.Catalog,
    repo_path: Path,
    range_text: str,
    lookup: ChangeLookup,
    *,
    catalog_dir: Path | None = None,
    rollout_commits: Callable[[str], Collection[str]] | None = None,
) -> tuple[list[drift.UnauthorizedCommit], int]:
    """The commits of A..B on governed paths without an authorized change (or, when the
    repository requires signed commits, without a good signature by an allowed key); and how
    many commits touched governed paths at all. The allowed keys are read from
    `catalog_dir`. `rollout_commits(change_id)` gives the commits changegate's rollout of
    that change made (its waves and reverts): those are authorized whatever became of the
    change (a rolled-back change closes unsuccessful, its reverts are its rollback)."""
    spec: gitops.GitOpsRepositorySpec = repository_of(catalog).spec
    repo = git_adapter.Repository(repo_path)
    start, end = repo.resolve_range(range_text)
    found: list[drift.UnauthorizedCommit] = []
    governed_commits = 0
    with signature_check(catalog, repo_path, catalog_dir) as check:
        for info in repo.commit_infos(start, end):
            governed = [p for p in info.paths if _governed(spec.paths, p)]
            if not governed:
                continue
            governed_commits += 1
            ids = drift.change_ids(info.message)
            reasons: list[str] = []
            problem = _change_id_problem(ids, lookup)
            if (
                problem is not None
                and rollout_commits is not None
                and any(info.sha in rollout_commits(change_id) for change_id in ids)
            ):
                problem = None
            if problem is not None:
                reasons.append(problem)
            signature: str | None = None
            if check is not None:
                verdict = check(info.sha)
                signature = verdict.reason
                if not verdict.ok:
                    reasons.append(verdict.reason)
            if reasons:
                found.append(
                    drift.UnauthorizedCommit(
                        info.sha,
                        info.subject,
                        governed,
                        "; ".join(reasons),
                        ids[0] if ids else None,
                        signature,
                    )
                )
    return found, governed_commits


# --------------------------------------------------------------------------- emergency change

FINDING_OBJECT = "drift-finding"
FINDING_ACTION = "drift.finding-recorded"
MAX_GIT_ARTIFACTS = 100
_TARGET_KINDS = ("tenant", "service", "cluster")


@dataclass
class Mapped:
    """The catalog targets of the findings, each with why, and what maps to nothing."""

    targets: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {kind: {} for kind in _TARGET_KINDS}
    )
    environments: dict[str, list[str]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)

    def add(self, kind: str, ident: str, environment: str | None, why: str) -> None:
        self.targets[kind].setdefault(ident, []).append(why)
        if environment is not None:
            self.environments.setdefault(environment, []).append(f"{kind} {ident}")

    def names(self) -> list[str]:
        return [ident for kind in _TARGET_KINDS for ident in self.targets[kind]]


@dataclass
class OpenedChange:
    """What `open_change` did: `opened` a change, found every finding `already-recorded`, or
    had `nothing-found`; the findings and the change each earlier one is recorded in."""

    status: str
    change: ChangeRequest | None
    findings: list[drift.Finding]
    recorded: dict[str, str] = field(default_factory=dict)
    category_reason: str = ""
    environment_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The `change` member of `changegate drift --open-change --json`."""
        return {
            "status": self.status,
            "change_id": self.change.id if self.change else None,
            "title": self.change.spec.title if self.change else None,
            "category": self.change.spec.category.value if self.change else None,
            "category_reason": self.category_reason or None,
            "environment": self.change.spec.environment if self.change else None,
            "environment_reason": self.environment_reason or None,
            "findings": [
                {**f.as_dict(), "recorded_in": self.recorded.get(f.id)} for f in self.findings
            ],
        }


def _rule(catalog: catalog_model.Catalog, path: str) -> tuple[Category | None, str]:
    report = gitops_service.map_path(catalog, path)
    if report.rule_category is None or report.target is None:
        return None, ""
    return report.rule_category, f"paths[{report.pattern_index}] says {report.rule_category.value}"


def _commit_category(
    catalog: catalog_model.Catalog, repo_path: Path, commit: drift.UnauthorizedCommit
) -> tuple[Category | None, str]:
    """What the commit's content says (as `change from-git` infers it), else its rules."""
    try:
        found = gitops_service.diff(catalog, repo_path, f"{commit.sha}^..{commit.sha}")
    except InvalidInput:
        found = None  # a root commit, or one that changes no file
    if found is not None and found.category.value is not None:
        return Category(found.category.value), f"{commit.sha[:12]}: {found.category.reason}"
    said = {_rule(catalog, path) for path in commit.paths}
    categories = {c for c, _ in said if c is not None}
    if len(categories) == 1 and all(c is not None for c, _ in said):
        reason = "; ".join(sorted(r for _, r in said))
        return categories.pop(), f"{commit.sha[:12]}: {reason}"
    return None, f"{commit.sha[:12]}: its files say no one category"


def findings_of(
    catalog: catalog_model.Catalog,
    repo_path: Path,
    report: drift.DriftReport | None,
    commits: Sequence[drift.UnauthorizedCommit],
) -> list[drift.Finding]:
    """Every finding, with the category each clearly says (content, else the path rule)."""
    found: list[drift.Finding] = []
    for commit in commits:
        category, reason = _commit_category(catalog, repo_path, commit)
        found.append(drift.commit_finding(commit, category, reason))
    if report is not None:
        for item in report.drifted:
            found.append(drift.drifted_finding(item, *_rule(catalog, item.source)))
        for key, source in report.missing:
            found.append(drift.missing_finding(key, source, *_rule(catalog, source)))
        for key in report.unmanaged:
            found.append(drift.unmanaged_finding(key))
    return found


def map_targets(catalog: catalog_model.Catalog, findings: Sequence[drift.Finding]) -> Mapped:
    """The tenants, services and clusters the findings touch: a file through the
    GitOpsRepository's patterns; a live object nobody declared through its namespace (the
    tenants living there, else what the other findings in that namespace map to)."""
    mapped = Mapped()
    by_namespace: dict[str, list[tuple[str, str, str | None, str]]] = {}
    for finding in findings:
        for path in finding.paths:
            report = gitops_service.map_path(catalog, path)
            if report.target is None:
                if not report.ignored:
                    mapped.unmatched.append(f"{path}: {report.unmatched}")
                continue
            kind, ident = report.target
            why = f"{path} via paths[{report.pattern_index}] {report.pattern!r}"
            mapped.add(kind, ident, report.environment, why)
            if finding.namespace:
                by_namespace.setdefault(finding.namespace, []).append(
                    (kind, ident, report.environment, why)
                )
    for finding in findings:
        if finding.paths:
            continue
        tenants = [t for t in catalog.tenants.values() if t.spec.namespace == finding.namespace]
        for tenant in tenants:
            why = f"namespace {finding.namespace} is tenant {tenant.id}'s"
            mapped.add("tenant", tenant.id, tenant.spec.environment, why)
        if not tenants:
            for kind, ident, environment, why in by_namespace.get(finding.namespace, []):
                mapped.add(kind, ident, environment, f"{why} (same namespace)")
        if not tenants and finding.namespace not in by_namespace:
            where = f"namespace {finding.namespace}" if finding.namespace else "cluster scope"
            mapped.unmatched.append(f"{finding.text}: {where} maps to no catalog entity")
    return mapped


def _environment(catalog: catalog_model.Catalog, mapped: Mapped) -> tuple[str, str]:
    """The targets' one environment; for several, the production one, else the latest in
    promotion order (an unauthorized change is judged where it hurts most)."""
    found = sorted(mapped.environments)
    if not found:
        raise InvalidInput(
            [Problem("cannot tell the environment: no target names one", field="environment")]
        )
    if len(found) == 1:
        return found[0], f"every target is in {found[0]}"

    def rank(name: str) -> tuple[bool, int]:
        entity = catalog.environments.get(name)
        return (entity.spec.production, entity.spec.order) if entity else (False, -1)

    chosen = max(found, key=rank)
    return chosen, (
        f"the targets are in {', '.join(found)}: {chosen} is the production one, or the "
        "latest in promotion order"
    )


def _spec(
    catalog: catalog_model.Catalog,
    findings: Sequence[drift.Finding],
    mapped: Mapped,
    header: Sequence[str],
) -> tuple[ChangeSpec, str, str]:
    if not mapped.names():
        shown = "; ".join(mapped.unmatched[:5]) or "nothing to map"
        raise InvalidInput(
            [
                Problem(
                    f"the findings map to no tenant, service or cluster of the catalog "
                    f"({shown}): no change can be filed for them",
                    field="targets",
                )
            ]
        )
    spec: gitops.GitOpsRepositorySpec = repository_of(catalog).spec
    category, category_reason = drift.choose_category(findings)
    environment, environment_reason = _environment(catalog, mapped)
    shas = [f.sha for f in findings if f.sha is not None]
    footer = [
        "Targets:",
        *[
            f"- {kind} {ident}: {'; '.join(dict.fromkeys(why))}"
            for kind in _TARGET_KINDS
            for ident, why in mapped.targets[kind].items()
        ],
        *[f"- maps to nothing: {text}" for text in mapped.unmatched],
        f"Category: {category.value} ({category_reason}).",
        f"Environment: {environment} ({environment_reason}).",
    ]
    if len(shas) > MAX_GIT_ARTIFACTS:
        footer.append(
            f"Only the first {MAX_GIT_ARTIFACTS} of {len(shas)} commits are listed as artifacts."
        )
    change_spec = ChangeSpec(
        title=drift.emergency_title(findings, mapped.names()),
        justification=drift.emergency_justification(findings, header, footer),
        type=ChangeType.EMERGENCY,
        category=category,
        environment=environment,
        targets=Targets(
            tenants=list(mapped.targets["tenant"]),
            services=list(mapped.targets["service"]),
            clusters=list(mapped.targets["cluster"]),
        ),
        artifacts=Artifacts(
            git=[GitArtifact(repo=spec.url, to_commit=sha) for sha in shas[:MAX_GIT_ARTIFACTS]]
        ),
    )
    return change_spec, category_reason, environment_reason


def _recorded(conn: sa.Connection, findings: Sequence[drift.Finding]) -> dict[str, str]:
    """Finding id -> the change an earlier run recorded it in."""
    events = audit_store.latest_of_objects(conn, FINDING_OBJECT, [f.id for f in findings])
    return {
        ident: str(event.after.get("change_id"))
        for ident, event in events.items()
        if isinstance(event.after, dict)
    }


class _RecordedMeanwhile(Conflict):
    """Another drift run recorded some of these findings meanwhile."""


def _recorder(
    ctx: Context, findings: Sequence[drift.Finding]
) -> Callable[[sa.Connection, ChangeRequest], None]:
    """Record the findings as held by the change being created, in its transaction;
    Conflict when another run recorded one of them meanwhile (the change rolls back)."""

    def record(conn: sa.Connection, change: ChangeRequest) -> None:
        meanwhile = _recorded(conn, findings)
        if meanwhile:
            held = ", ".join(sorted(set(meanwhile.values())))
            raise _RecordedMeanwhile(
                f"another drift run recorded these findings meanwhile in {held}"
            )
        for finding in findings:
            audit_service.record(
                conn,
                ctx,
                FINDING_ACTION,
                FINDING_OBJECT,
                finding.id,
                None,
                {"change_id": change.id, "kind": finding.kind, "text": finding.text},
            )

    return record


def open_change(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    repo_path: Path,
    *,
    report: drift.DriftReport | None = None,
    commits: Sequence[drift.UnauthorizedCommit] = (),
    context_lines: Sequence[str] = (),
) -> OpenedChange:
    """File one emergency change (a draft, the acting person its requester) recording the
    findings no change records yet; nothing when there are none.

    Needs `changes:create`. Targets, category and environment come from the findings (see
    `map_targets`, `domain.drift.choose_category`, `_environment`); the commits are its Git
    artifacts. The findings are recorded in the creating transaction, after the audit
    head's lock is taken, and checked again there: of two runs at once, the second finds
    them recorded and files nothing."""
    ctx.actor.require(Permission.CHANGES_CREATE)
    entity = repository_of(catalog)
    findings = findings_of(catalog, repo_path, report, commits)
    if not findings:
        return OpenedChange("nothing-found", None, [])
    header = [
        f"changegate drift found changes nobody authorized in {entity.spec.url} "
        f"(branch {entity.spec.branch}):",
        *[f"- {line}" for line in context_lines],
    ]
    for attempt in range(2):
        with engine.connect() as conn:
            recorded = _recorded(conn, findings)
        new = [f for f in findings if f.id not in recorded]
        if not new:
            return OpenedChange("already-recorded", None, findings, recorded)
        lines = list(header)
        if recorded:
            held = sorted(set(recorded.values()))
            lines.append(
                f"- {len(recorded)} more findings are recorded already in {', '.join(held)}"
            )
        mapped = map_targets(catalog, new)
        change_spec, category_reason, environment_reason = _spec(catalog, new, mapped, lines)

        try:
            change = change_service.create(
                engine, catalog, ctx, change_spec, source="drift", also=_recorder(ctx, new)
            )
        except _RecordedMeanwhile:
            if attempt:
                raise
            continue
        return OpenedChange(
            "opened", change, findings, recorded, category_reason, environment_reason
        )
    raise AssertionError("unreachable")  # pragma: no cover
