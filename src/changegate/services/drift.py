"""Drift and unauthorized changes in the GitOps repository (docs/health-and-drift.md).

`live_drift` reads the desired objects at the repository's branch head (the files that a
non-ignored GitOpsRepository pattern governs, `.yaml`/`.yml`/`.json`, Kubernetes objects only:
kustomize and Helm are not rendered) and compares them with live objects
(`domain.drift.compare`).

`unauthorized_commits` walks a range A..B: every commit that touches a governed path must
carry a `Change-Id: CHG-<n>` trailer naming a change that is authorized (Scheduled),
Implementing, in Review, or Closed successful (with or without issues). Anything else is
reported with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changegate.adapters import git as git_adapter
from changegate.adapters import policy_inputs
from changegate.domain import catalog as catalog_model
from changegate.domain import drift, gitops
from changegate.domain.changes import ChangeRequest, ChangeState, CloseCode
from changegate.domain.policy.model import Format
from changegate.errors import ChangegateError, InvalidInput, NotFound, Problem
from changegate.services.gitops import repository_of

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


def unauthorized_commits(
    catalog: catalog_model.Catalog,
    repo_path: Path,
    range_text: str,
    lookup: ChangeLookup,
) -> tuple[list[drift.UnauthorizedCommit], int]:
    """The commits of A..B on governed paths without an authorized change; and how many
    commits touched governed paths at all."""
    spec: gitops.GitOpsRepositorySpec = repository_of(catalog).spec
    repo = git_adapter.Repository(repo_path)
    start, end = repo.resolve_range(range_text)
    found: list[drift.UnauthorizedCommit] = []
    governed_commits = 0
    for info in repo.commit_infos(start, end):
        governed = [p for p in info.paths if _governed(spec.paths, p)]
        if not governed:
            continue
        governed_commits += 1
        ids = drift.change_ids(info.message)
        if not ids:
            found.append(
                drift.UnauthorizedCommit(info.sha, info.subject, governed, "no Change-Id trailer")
            )
            continue
        reasons: list[str] = []
        ok = False
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
                ok = True
                break
            else:
                code = f" {change.close_code.value}" if change.close_code else ""
                reasons.append(f"{change_id} is {change.state.value}{code}, not authorized")
        if not ok:
            found.append(
                drift.UnauthorizedCommit(
                    info.sha, info.subject, governed, "; ".join(reasons), ids[0]
                )
            )
    return found, governed_commits
