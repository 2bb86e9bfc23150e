"""Changes from Git: what a commit range of the GitOps repository touches, and a change filed
from it.

`diff` maps every changed file to the tenant, service or cluster its path names (through the
catalog's GitOpsRepository patterns, last match wins), checks the captured ids against the
catalog, extracts the image references and digests of the changed manifests at B, and infers
the category and environment where they are clear, each with its reason. `from_git` turns
that into a ChangeSpec and files it through `changes.create`, so permissions and the audit
trail apply as for any other change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from changegate.adapters import git as git_adapter
from changegate.adapters import policy_inputs, yamlsource
from changegate.domain import catalog as catalog_model
from changegate.domain import gitops
from changegate.domain import rollout as rollout_model
from changegate.domain.changes import (
    Artifacts,
    Category,
    ChangeRequest,
    ChangeSpec,
    ChangeType,
    GitArtifact,
    ImageArtifact,
    Targets,
)
from changegate.errors import InvalidInput, Problem
from changegate.services import changes as change_service
from changegate.services.context import Context

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
TITLE_LIMIT = 200


@dataclass
class FileReport:
    """One changed file: how it changed, what it targets and why (or why nothing)."""

    path: str
    status: str
    old_path: str | None = None
    pattern: str | None = None
    pattern_index: int | None = None
    target: tuple[str, str] | None = None  # (tenant|service|cluster, id)
    environment: str | None = None
    ignored: bool = False
    unmatched: str | None = None
    category: str | None = None
    category_reason: str = ""
    images: list[gitops.Image] = field(default_factory=list)
    skipped: str | None = None
    rule_category: Category | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "old_path": self.old_path,
            "pattern": self.pattern,
            "pattern_index": self.pattern_index,
            "target": {"kind": self.target[0], "id": self.target[1]} if self.target else None,
            "environment": self.environment,
            "ignored": self.ignored,
            "unmatched": self.unmatched,
            "category": self.category,
            "category_reason": self.category_reason,
            "images": [_image_dict(i) for i in self.images],
            "skipped": self.skipped,
        }


def _image_dict(image: gitops.Image) -> dict[str, Any]:
    return {"ref": image.ref, "digest": image.digest}


@dataclass
class GitOpsDiff:
    """What a commit range changes, mapped to the catalog."""

    repository: str
    url: str
    branch: str
    path: str
    from_commit: str
    to_commit: str
    commits: list[git_adapter.Commit]
    files: list[FileReport]
    # kind -> id -> reasons ("clusters/a/tenants/acme/app.yaml via paths[1] '...'")
    targets: dict[str, dict[str, list[str]]]
    images: list[tuple[gitops.Image, list[str]]]
    manifests: list[str]
    category: gitops.Inferred
    environment: gitops.Inferred
    notices: list[str] = field(default_factory=list)

    @property
    def unmatched(self) -> list[tuple[str, str]]:
        return [(f.path, f.unmatched) for f in self.files if f.unmatched is not None]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `changegate gitops diff --json`."""
        return {
            "repository": {
                "id": self.repository,
                "url": self.url,
                "branch": self.branch,
                "path": self.path,
            },
            "from_commit": self.from_commit,
            "to_commit": self.to_commit,
            "commits": [{"sha": c.sha, "subject": c.subject} for c in self.commits],
            "targets": {
                kind: [{"id": ident, "reasons": reasons} for ident, reasons in found.items()]
                for kind, found in self.targets.items()
            },
            "images": [{**_image_dict(image), "files": files} for image, files in self.images],
            "manifests": list(self.manifests),
            "category": {"value": self.category.value, "reason": self.category.reason},
            "environment": {"value": self.environment.value, "reason": self.environment.reason},
            "unmatched": [{"path": p, "reason": r} for p, r in self.unmatched],
            "files": [f.as_dict() for f in self.files],
            "notices": list(self.notices),
        }


def repository_of(catalog: catalog_model.Catalog) -> catalog_model.Entity[Any]:
    """The catalog's GitOpsRepository; InvalidInput when it declares none."""
    found = catalog.gitops_repository
    if found is None:
        raise InvalidInput(
            [
                Problem(
                    "the catalog declares no GitOpsRepository: add one with the path patterns "
                    "(docs/gitops.md)",
                    field="catalog",
                )
            ]
        )
    return found


def diff(
    catalog: catalog_model.Catalog,
    repo_path: Path,
    range_text: str,
    *,
    max_blob_bytes: int = git_adapter.DEFAULT_MAX_BLOB_BYTES,
    timeout: float = git_adapter.GIT_TIMEOUT_SECONDS,
) -> GitOpsDiff:
    """Map the files changed in range_text (`A..B`) of the repository at repo_path."""
    entity = repository_of(catalog)
    spec: gitops.GitOpsRepositorySpec = entity.spec
    repo = git_adapter.Repository(repo_path, timeout=timeout)
    start, end = repo.resolve_range(range_text)
    if start == end:
        raise InvalidInput([Problem(f"{range_text!r} is an empty range", field="range")])
    commits = repo.commits(start, end)
    changed = repo.changed_files(start, end)
    if not changed:
        raise InvalidInput([Problem(f"{range_text!r} changes no file", field="range")])
    reports = [_map(catalog, spec.paths, item) for item in changed]
    old_paths = [
        _map_old(catalog, spec.paths, item)
        for item in changed
        if item.old_path is not None and item.status is git_adapter.Status.RENAMED
    ]
    notices: list[str] = []
    _read_contents(repo, changed, reports, max_blob_bytes, notices)
    targets: dict[str, dict[str, list[str]]] = {"tenants": {}, "services": {}, "clusters": {}}
    for report in [*reports, *[r for r in old_paths if r is not None]]:
        if report.target is None:
            continue
        kind, ident = report.target
        reason = f"{report.path} via paths[{report.pattern_index}] {report.pattern!r}"
        targets[f"{kind}s"].setdefault(ident, []).append(reason)
    for rename in old_paths:
        if rename is not None and rename.unmatched is not None:
            for report in reports:
                if report.old_path == rename.path and report.unmatched is None:
                    report.unmatched = f"renamed from {rename.path}: {rename.unmatched}"
    return GitOpsDiff(
        repository=entity.id,
        url=spec.url,
        branch=spec.branch,
        path=str(repo_path),
        from_commit=start,
        to_commit=end,
        commits=commits,
        files=reports,
        targets={kind: dict(sorted(found.items())) for kind, found in targets.items()},
        images=_images(reports),
        manifests=[
            r.path
            for r in reports
            if not r.ignored and r.status != "deleted" and _is_manifest(r.path)
        ],
        category=_category(reports),
        environment=_environment(reports),
        notices=notices,
    )


# --------------------------------------------------------------------------- mapping


def _map(
    catalog: catalog_model.Catalog, rules: Sequence[gitops.PathRule], item: git_adapter.ChangedFile
) -> FileReport:
    report = FileReport(item.path, item.status.value, item.old_path)
    _resolve(catalog, rules, report)
    return report


def _map_old(
    catalog: catalog_model.Catalog, rules: Sequence[gitops.PathRule], item: git_adapter.ChangedFile
) -> FileReport | None:
    assert item.old_path is not None
    report = FileReport(item.old_path, "renamed-from")
    _resolve(catalog, rules, report)
    return None if report.ignored else report


def map_path(catalog: catalog_model.Catalog, path: str) -> FileReport:
    """What one path of the GitOps repository targets through the catalog's patterns: the
    target, its environment and the rule's category, or why it is ignored or unmatched."""
    report = FileReport(path, "present")
    _resolve(catalog, repository_of(catalog).spec.paths, report)
    return report


def _resolve(
    catalog: catalog_model.Catalog, rules: Sequence[gitops.PathRule], report: FileReport
) -> None:
    if report.path.startswith(rollout_model.ROLLOUT_FOLDER + "/"):
        # changegate's own wave files (docs/rollout.md): bookkeeping of changes already
        # authorized, never the subject of a new one.
        report.ignored = True
        return
    match = gitops.match_path(rules, report.path)
    if match is None:
        report.unmatched = "no pattern matches this path"
        return
    report.pattern, report.pattern_index = match.rule.pattern, match.index
    if match.rule.ignore:
        report.ignored = True
        return
    reason = gitops.bad_capture(match)
    if reason is None:
        reason = _check_captures(catalog, match)
    if reason is not None:
        report.unmatched = reason
        return
    kind = next(name for name in gitops.TARGET_PLACEHOLDERS if name in match.captures)
    ident = match.captures[kind]
    report.target = (kind, ident)
    report.rule_category = match.rule.category
    report.environment = _entity(catalog, kind, ident).spec.environment


def _entity(catalog: catalog_model.Catalog, kind: str, ident: str) -> catalog_model.Entity[Any]:
    table: dict[str, Any] = {
        "tenant": catalog.tenants,
        "service": catalog.services,
        "cluster": catalog.clusters,
        "environment": catalog.environments,
    }
    found: catalog_model.Entity[Any] = table[kind][ident]
    return found


def _check_captures(catalog: catalog_model.Catalog, match: gitops.PathMatch) -> str | None:
    """Why the captured ids do not fit the catalog (unknown, or disagreeing), or None."""
    where = match.describe()
    known: dict[str, Any] = {
        "tenant": catalog.tenants,
        "service": catalog.services,
        "cluster": catalog.clusters,
        "environment": catalog.environments,
    }
    for name, value in match.captures.items():
        if value not in known[name]:
            return f"{where} captured {name} {value!r}, which is not in the catalog"
    captures = match.captures
    tenant = catalog.tenants.get(captures.get("tenant", ""))
    service = catalog.services.get(captures.get("service", ""))
    cluster = captures.get("cluster")
    if cluster is not None:
        for label, found in (("tenant", tenant), ("service", service)):
            if found is not None and found.spec.cluster != cluster:
                return (
                    f"{where}: {label} {found.id!r} runs on cluster "
                    f"{found.spec.cluster or 'none'!r}, the path says {cluster!r}"
                )
    environment = captures.get("environment")
    if environment is not None:
        kind = next(n for n in gitops.TARGET_PLACEHOLDERS if n in captures)
        entity = _entity(catalog, kind, captures[kind])
        if entity.spec.environment != environment:
            return (
                f"{where}: {kind} {entity.id!r} is in environment "
                f"{entity.spec.environment!r}, the path says {environment!r}"
            )
    return None


# --------------------------------------------------------------------------- contents


def _is_manifest(path: str) -> bool:
    return path.lower().endswith(MANIFEST_SUFFIXES) or gitops.is_kustomization(path)


def _read_contents(
    repo: git_adapter.Repository,
    changed: Sequence[git_adapter.ChangedFile],
    reports: Sequence[FileReport],
    max_bytes: int,
    notices: list[str],
) -> None:
    """Images at B and the file's category from its content, for every changed manifest."""
    wanted = [
        (item, report)
        for item, report in zip(changed, reports, strict=True)
        if not report.ignored and _is_manifest(item.path)
    ]
    ids: list[str] = []
    for item, _ in wanted:
        if item.regular_at_new:
            ids.append(item.new_blob)
        if item.regular_at_old:
            ids.append(item.old_blob)
    blobs = repo.read_blobs(ids, max_bytes=max_bytes)
    for item, report in wanted:
        new = blobs.get(item.new_blob) if item.regular_at_new else None
        old = blobs.get(item.old_blob) if item.regular_at_old else None
        for blob in (new, old):
            if blob is not None and blob.skipped is not None and report.skipped is None:
                report.skipped = blob.skipped
                notices.append(f"{item.path}: {blob.skipped}; its content was not read")
        if report.skipped is not None:
            continue
        before = _data(old.content if old else None, item.old_path or item.path, notices)
        after = _data(new.content if new else None, item.path, notices)
        if new is not None and new.content is not None:
            report.images = _images_in(new.content, item.path, notices)
        if before is None or after is None:
            report.skipped = report.skipped or "not valid YAML or JSON"
            continue
        if item.status in (git_adapter.Status.MODIFIED, git_adapter.Status.RENAMED):
            content = gitops.classify_content(before, after, item.path)
            report.category = content.category.value if content.category else None
            report.category_reason = content.reason
    for report in reports:
        rule = report.rule_category
        if report.category is None and report.target is not None and rule is not None:
            report.category = rule.value
            report.category_reason = f"paths[{report.pattern_index}] says {rule.value}"
        if report.category is None and not report.category_reason:
            report.category_reason = _unclear(report)


def _unclear(report: FileReport) -> str:
    if report.status == "added":
        return "a new file"
    if report.status == "deleted":
        return "a deleted file"
    if report.skipped:
        return f"content not read ({report.skipped})"
    if not _is_manifest(report.path):
        return "not a YAML or JSON manifest"
    return "changes beyond images and PostgreSQL cluster specs"


def _data(raw: bytes | None, path: str, notices: list[str]) -> list[Any] | None:
    """Every YAML/JSON document's data (empty ones left out); [] for no file; None if invalid."""
    if raw is None:
        return []
    try:
        return [d.data for d in yamlsource.load_bytes(raw, display=path) if d.data is not None]
    except InvalidInput as exc:
        notices.append(f"{path}: not read: {exc.problems[0] if exc.problems else exc.message}")
        return None


def _images_in(raw: bytes, path: str, notices: list[str]) -> list[gitops.Image]:
    del notices  # a parse problem is already noted by _data
    found: list[gitops.Image] = []
    try:
        documents = [d for d in policy_inputs.parse(raw, path) if d is not None]
    except InvalidInput:
        return []
    found += gitops.workload_images(documents)
    if gitops.is_kustomization(path):
        try:
            for source in yamlsource.load_bytes(raw, display=path):
                found += gitops.kustomize_images(source.data)
        except InvalidInput:
            pass
    return list(dict.fromkeys(found))


def _images(reports: Sequence[FileReport]) -> list[tuple[gitops.Image, list[str]]]:
    by_image: dict[gitops.Image, list[str]] = {}
    for report in reports:
        for image in report.images:
            by_image.setdefault(image, []).append(report.path)
    return sorted(by_image.items())


def _category(reports: Sequence[FileReport]) -> gitops.Inferred:
    votes = [
        gitops.CategoryVote(r.path, Category(r.category) if r.category else None, r.category_reason)
        for r in reports
        if not r.ignored
    ]
    return gitops.infer_category(votes)


def _environment(reports: Sequence[FileReport]) -> gitops.Inferred:
    found = sorted({r.environment for r in reports if r.environment is not None})
    if not found:
        return gitops.Inferred(None, "no changed file maps to a catalog entity; say --env")
    if len(found) > 1:
        return gitops.Inferred(
            None, f"the targets are in several environments ({', '.join(found)}); say --env"
        )
    return gitops.Inferred(found[0], "the environment of every target")


# --------------------------------------------------------------------------- from git


def _title(diff_: GitOpsDiff) -> str:
    if not diff_.commits:
        return f"GitOps {diff_.from_commit[:7]}..{diff_.to_commit[:7]}"
    title = diff_.commits[0].subject or f"GitOps commit {diff_.commits[0].sha[:7]}"
    if len(diff_.commits) > 1:
        title += f" (and {len(diff_.commits) - 1} more commits)"
    if len(title) > TITLE_LIMIT:
        title = title[: TITLE_LIMIT - 1] + "…"
    return title


def _justification(diff_: GitOpsDiff) -> str:
    lines = [f"From {diff_.url} {diff_.from_commit[:12]}..{diff_.to_commit[:12]}:"]
    lines += [f"- {c.sha[:12]} {c.subject}" for c in diff_.commits]
    return "\n".join(lines)[:100_000]


def spec_from_diff(
    diff_: GitOpsDiff,
    *,
    title: str | None = None,
    environment: str | None = None,
    category: Category | None = None,
    change_type: ChangeType = ChangeType.NORMAL,
    justification: str | None = None,
    allow_unmatched: bool = False,
) -> ChangeSpec:
    """The ChangeSpec a diff makes; InvalidInput says what is unclear and how to say it."""
    problems: list[Problem] = []
    if diff_.unmatched and not allow_unmatched:
        shown = "; ".join(f"{p}: {r}" for p, r in diff_.unmatched[:5])
        more = f" (and {len(diff_.unmatched) - 5} more)" if len(diff_.unmatched) > 5 else ""
        problems.append(
            Problem(
                f"{len(diff_.unmatched)} changed files map to no catalog entity: {shown}{more}; "
                "fix the patterns, or file anyway with --allow-unmatched",
                field="targets",
            )
        )
    chosen_env = environment or diff_.environment.value
    if chosen_env is None:
        problems.append(
            Problem(f"cannot tell the environment: {diff_.environment.reason}", field="env")
        )
    elif environment and diff_.environment.value and environment != diff_.environment.value:
        problems.append(
            Problem(
                f"--env {environment} disagrees with the targets' environment "
                f"{diff_.environment.value}",
                field="env",
            )
        )
    chosen_category = category.value if category else diff_.category.value
    if chosen_category is None:
        problems.append(
            Problem(f"cannot tell the category: {diff_.category.reason}", field="category")
        )
    if problems:
        raise InvalidInput(problems)
    assert chosen_env is not None
    assert chosen_category is not None
    targets = Targets(
        tenants=list(diff_.targets["tenants"]),
        services=list(diff_.targets["services"]),
        clusters=list(diff_.targets["clusters"]),
    )
    artifacts = Artifacts(
        images=[ImageArtifact(ref=i.ref, digest=i.digest) for i, _ in diff_.images],
        git=[GitArtifact(repo=diff_.url, from_commit=diff_.from_commit, to_commit=diff_.to_commit)],
        manifests=list(diff_.manifests),
    )
    return ChangeSpec(
        title=title or _title(diff_),
        justification=justification if justification is not None else _justification(diff_),
        type=change_type,
        category=Category(chosen_category),
        environment=chosen_env,
        targets=targets,
        artifacts=artifacts,
    )


def from_git(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    repo_path: Path,
    range_text: str,
    *,
    title: str | None = None,
    environment: str | None = None,
    category: Category | None = None,
    change_type: ChangeType = ChangeType.NORMAL,
    allow_unmatched: bool = False,
    max_blob_bytes: int = git_adapter.DEFAULT_MAX_BLOB_BYTES,
) -> tuple[ChangeRequest, GitOpsDiff]:
    """File a draft change from a commit range; the acting person is the requester."""
    found = diff(catalog, repo_path, range_text, max_blob_bytes=max_blob_bytes)
    spec = spec_from_diff(
        found,
        title=title,
        environment=environment,
        category=category,
        change_type=change_type,
        allow_unmatched=allow_unmatched,
    )
    change = change_service.create(engine, catalog, ctx, spec, source=f"git {range_text}")
    return change, found
