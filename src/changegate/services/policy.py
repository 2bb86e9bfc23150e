"""Policy gates as use cases: check files for CI, check a change's artifacts while assessing.

The rules of a catalog (built-in packs, Python plugins, the catalog's custom CEL rules) are
compiled once per catalog digest and process. A check reads its inputs one file at a time,
builds the change set, and evaluates it in the context the catalog gives: the environment
(production or not), the tenant namespaces, the waivers. Nothing here writes to the database:
the assessment service stores a change's report with its assessment, and
`latest_report` reads it back.

A change filed from Git (`artifacts.git` naming the catalog's GitOps repository) is checked
on its files as they are at the range's `to_commit`, read from the local clone of the GitOps
repository (CHANGEGATE_GITOPS_WORKDIR) and never fetched: a commit missing there is a
problem that blocks the gate, not a pass.
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa

from changegate.adapters import git as git_adapter
from changegate.adapters import policy_inputs, policy_plugins, policy_tools
from changegate.domain import catalog as catalog_model
from changegate.domain import changes, gitops, webhooks
from changegate.domain.changes import Artifacts, ChangeRequest, GitArtifact
from changegate.domain.permissions import Permission
from changegate.domain.policy import cel
from changegate.domain.policy.changeset import ChangeSet, CheckContext, Tools
from changegate.domain.policy.config import PolicyConfigSpec
from changegate.domain.policy.engine import Report, RuleSet, Waiver, evaluate
from changegate.domain.policy.model import Document, Rule
from changegate.domain.policy.rules import BUILTIN
from changegate.domain.risk import FindingSeverity, PolicyFinding
from changegate.errors import InvalidInput, NotFound, Problem
from changegate.services.context import Context
from changegate.store import assessments as assessment_store
from changegate.store import changes as change_store
from changegate.store import policy_reports as policy_store
from changegate.store.policy_reports import StoredReport

_lock = threading.Lock()
_compiled: dict[str, RuleSet] = {}


@functools.cache
def _plugin_rules() -> tuple[list[Rule], list[str]]:
    """Rules from installed plugins (entry points), loaded once per process."""
    return policy_plugins.load_plugin_rules()


def config_of(catalog: catalog_model.Catalog | None) -> PolicyConfigSpec:
    """The catalog's PolicyConfig, or the defaults."""
    found = catalog.policy_config if catalog is not None else None
    return found.spec if found is not None else PolicyConfigSpec()


def rules_of(catalog: catalog_model.Catalog | None) -> RuleSet:
    """Every rule that applies under this catalog, compiled once per catalog digest."""
    key = catalog.digest if catalog is not None else ""
    with _lock:
        found = _compiled.get(key)
        if found is not None:
            return found
    rules: list[Rule] = [*BUILTIN, *_plugin_rules()[0]]
    if catalog is not None:
        rules.extend(
            cel.compile_rule(f"custom.{name}", entity.spec)
            for name, entity in catalog.policy_rules.items()
        )
    try:
        compiled = RuleSet(rules, config_of(catalog))
    except ValueError as exc:
        raise InvalidInput([Problem(str(exc), field="rules")]) from None
    with _lock:
        if len(_compiled) > 16:
            _compiled.clear()
        _compiled[key] = compiled
    return compiled


def waivers_of(catalog: catalog_model.Catalog | None) -> list[Waiver]:
    """The catalog's waivers, expired ones included (the report names them)."""
    if catalog is None:
        return []
    return [
        Waiver(entity.id, entity.spec, entity.file, entity.line)
        for entity in catalog.waivers.values()
    ]


def context_of(
    catalog: catalog_model.Catalog | None,
    *,
    environment: str | None = None,
    tenant: str | None = None,
    category: str | None = None,
    tools: Tools | None = None,
) -> CheckContext:
    """The check's context from the catalog; an unknown environment or tenant is refused."""
    config = config_of(catalog)
    production = False
    if environment is not None:
        if catalog is None or environment not in catalog.environments:
            known = ", ".join(catalog.environments) if catalog is not None else "none: no catalog"
            raise InvalidInput(
                [Problem(f"unknown environment {environment!r} (known: {known})", field="env")]
            )
        production = catalog.environments[environment].spec.production
    namespaces: dict[str, str] = {}
    tiers: dict[str, str] = {}
    if catalog is not None:
        # A namespace of one tenant names it; a shared (multi-tenant) one names nobody.
        for ident, entity in catalog.tenants.items():
            namespace = entity.spec.namespace
            namespaces[namespace] = "" if namespace in namespaces else ident
            tiers[ident] = entity.spec.tier
        if tenant is not None and tenant not in catalog.tenants:
            raise InvalidInput([Problem(f"unknown tenant {tenant!r}", field="tenant")])
        if tenant is not None and environment is None:
            environment = catalog.tenants[tenant].spec.environment
            production = catalog.environments[environment].spec.production
    elif tenant is not None:
        raise InvalidInput([Problem("--tenant needs a catalog to know the tenant", field="tenant")])
    return CheckContext(
        config=config,
        environment=environment,
        category=category,
        catalog=catalog,
        production=production,
        tenant=tenant,
        tenant_namespaces=namespaces,
        tenant_tiers=tiers,
        critical_tiers=frozenset(config.critical_tiers),
        tools=tools if tools is not None else policy_tools.SubprocessTools(),
    )


def run(
    catalog: catalog_model.Catalog | None,
    documents: Sequence[Document],
    context: CheckContext,
    *,
    now: datetime,
    problems: Sequence[Problem] = (),
    notices: Sequence[str] = (),
) -> Report:
    """Evaluate documents under the catalog's rules and waivers."""
    rules = rules_of(catalog)
    context.notices.extend(notices)
    context.notices.extend(f"policy plugin: {problem}" for problem in _plugin_rules()[1])
    return evaluate(
        ChangeSet(documents),
        rules,
        context,
        waivers_of(catalog),
        now=now,
        problems=[problem.as_dict() for problem in problems],
    )


def check_paths(
    catalog: catalog_model.Catalog | None,
    paths: Sequence[str],
    *,
    now: datetime,
    environment: str | None = None,
    tenant: str | None = None,
    stdin: BinaryIO | None = None,
    stdin_name: str = policy_inputs.STDIN,
    base: Path | None = None,
    max_bytes: int = policy_inputs.DEFAULT_MAX_BYTES,
    tools: Tools | None = None,
) -> Report:
    """`changegate check`: files and folders (and `-` for stdin) through the gate."""
    context = context_of(catalog, environment=environment, tenant=tenant, tools=tools)
    inputs = policy_inputs.load_paths(
        paths, stdin=stdin, stdin_name=stdin_name, max_bytes=max_bytes, base=base
    )
    _nothing_to_check(inputs, ", ".join(paths))
    return run(
        catalog,
        inputs.documents,
        context,
        now=now,
        problems=inputs.problems,
        notices=inputs.notices,
    )


def check_texts(
    catalog: catalog_model.Catalog | None,
    files: Sequence[tuple[str, str]],
    *,
    now: datetime,
    environment: str | None = None,
    tenant: str | None = None,
) -> Report:
    """`POST /policy/check`: (name, content) pairs checked as `check_paths` checks files; the
    name decides the format as a file name does; nothing is written to disk."""
    context = context_of(catalog, environment=environment, tenant=tenant)
    inputs = policy_inputs.Inputs()
    for index, (name, content) in enumerate(files):
        if name == policy_inputs.STDIN:
            inputs.problems.append(Problem("a file name, not `-`", field=f"files.{index}.name"))
            continue
        try:
            parsed = policy_inputs.parse(content.encode("utf-8"), name)
        except InvalidInput as exc:
            inputs.problems.extend(exc.problems)
            continue
        inputs.documents.extend(d for d in parsed if d is not None)
    _nothing_to_check(inputs, ", ".join(name for name, _ in files))
    return run(catalog, inputs.documents, context, now=now, problems=inputs.problems)


def _nothing_to_check(inputs: policy_inputs.Inputs, shown: str) -> None:
    # A CI job pointed at the wrong folder (or files) must not pass silently.
    if not inputs.documents and not inputs.problems:
        inputs.problems.append(Problem(f"nothing to check: no policy input found in {shown}"))


def check_change(
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    *,
    now: datetime,
    max_bytes: int = policy_inputs.DEFAULT_MAX_BYTES,
    tools: Tools | None = None,
    gitops_workdir: Path | None = None,
) -> Report:
    """A change's artifacts through the gate: its images, its GitOps commit ranges, and its
    manifests, plans and reports (paths relative to `artifacts_root`, the PolicyConfig's).

    A range of the catalog's GitOps repository is read at its `to_commit` from the clone at
    `gitops_workdir`: the files it adds or modifies, and the `artifacts.manifests` paths that
    are files or folders of that commit; the other paths are read from disk. A range that
    cannot be read (no clone, a commit missing from it) is a problem, and the manifests are
    then not read from disk either, where they could be of another version.
    """
    artifacts = change.spec.artifacts
    root = artifacts_root(catalog)
    context = context_of(
        catalog,
        environment=change.spec.environment
        if change.spec.environment in catalog.environments
        else None,
        category=change.spec.category.value,
        tools=tools,
    )
    from_git = _read_git(catalog, artifacts, gitops_workdir, max_bytes)
    manifests = [m for m in artifacts.manifests if m not in from_git.manifests]
    notices = list(from_git.inputs.notices)
    if not from_git.complete and manifests:
        notices.append(
            f"{len(manifests)} artifacts.manifests paths not read: the change's GitOps "
            "commits could not be read (see the problems)"
        )
        manifests = []
    problems: list[Problem] = list(from_git.inputs.problems)
    paths: list[str] = []
    for relative in [*manifests, *artifacts.terraform_plans, *artifacts.reports]:
        try:
            paths.append(str(policy_inputs.resolve_under(root, relative)))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    inputs = policy_inputs.load_paths(paths, max_bytes=max_bytes, base=root)
    documents = [
        *policy_inputs.image_documents((i.ref, i.digest) for i in artifacts.images),
        *from_git.inputs.documents,
        *inputs.documents,
    ]
    return run(
        catalog,
        documents,
        context,
        now=now,
        problems=[*problems, *inputs.problems],
        notices=[*notices, *inputs.notices],
    )


# --------------------------------------------------------------------------- Git ranges


@dataclass
class _FromGit:
    """What a change's GitOps ranges gave: the inputs, the `artifacts.manifests` entries read
    from Git, and whether every range could be read."""

    inputs: policy_inputs.Inputs = field(default_factory=policy_inputs.Inputs)
    manifests: set[str] = field(default_factory=set)
    complete: bool = True


@dataclass
class _Range:
    """One readable range: where it is in the change, its commits, and what was left out."""

    index: int
    start: str | None
    end: str
    files: dict[str, str] = field(default_factory=dict)  # path -> blob id, read at `end`
    left_out: dict[str, int] = field(default_factory=dict)  # why -> how many files

    def leave_out(self, why: str) -> None:
        self.left_out[why] = self.left_out.get(why, 0) + 1


def _read_git(
    catalog: catalog_model.Catalog,
    artifacts: Artifacts,
    workdir: Path | None,
    max_bytes: int,
) -> _FromGit:
    """The files of the change's GitOps ranges at their `to_commit`, from the local clone."""
    found = _FromGit()
    if not artifacts.git:
        return found
    repository = catalog.gitops_repository
    wanted = webhooks.normalise_url(repository.spec.url) if repository is not None else None
    ours: list[tuple[int, GitArtifact]] = []
    for index, item in enumerate(artifacts.git):
        if wanted is not None and webhooks.normalise_url(item.repo) == wanted:
            ours.append((index, item))
        else:
            where = (
                f"the catalog's GitOps repository is {repository.spec.url}"
                if repository is not None
                else "the catalog declares no GitOpsRepository"
            )
            found.inputs.notices.append(
                f"artifacts.git[{index}]: {item.repo} is not read ({where}); only the GitOps "
                "repository's commits are checked"
            )
    if not ours:
        return found
    try:
        if workdir is None:
            raise InvalidInput(
                [
                    Problem(
                        "the change ships commits of the GitOps repository, but no clone of it "
                        "is configured to read them from: set CHANGEGATE_GITOPS_WORKDIR",
                        field="artifacts.git",
                    )
                ]
            )
        repo = git_adapter.Repository(workdir)
    except InvalidInput as exc:
        found.inputs.problems.extend(exc.problems)
        found.complete = False
        return found
    assert repository is not None
    rules = repository.spec.paths
    ranges: list[_Range] = []
    for index, item in ours:
        try:
            ranges.append(_changed(repo, workdir, index, item, rules))
        except InvalidInput as exc:
            found.inputs.problems.extend(exc.problems)
            found.complete = False
    try:
        _find_manifests(repo, ranges, artifacts.manifests, found)
        _load(repo, workdir, ranges, max_bytes, found)
    except InvalidInput as exc:  # git failed or timed out in the middle
        found.inputs.problems.extend(exc.problems)
        found.complete = False
    return found


def _missing(
    repo: git_adapter.Repository, workdir: Path, revision: str, where: str
) -> list[Problem]:
    """A clear problem when the clone does not hold the commit (`^{commit}`: a full id
    alone would pass `rev-parse --verify` without the object being there)."""
    if repo.has_ref(f"{revision}^{{commit}}"):
        return []
    message = f"commit {revision} is not in the GitOps clone at {workdir}; fetch it"
    return [Problem(message, field=where)]


def _changed(
    repo: git_adapter.Repository,
    workdir: Path,
    index: int,
    item: GitArtifact,
    rules: Sequence[gitops.PathRule],
) -> _Range:
    """The files a range adds or modifies, as they are at its end; without `from_commit`,
    those of `to_commit` itself (against its first parent; all its files for a root commit)."""
    prefix = f"artifacts.git[{index}]"
    missing = _missing(repo, workdir, item.to_commit, f"{prefix}.to_commit")
    if item.from_commit is not None:
        missing += _missing(repo, workdir, item.from_commit, f"{prefix}.from_commit")
    if missing:
        raise InvalidInput(missing)
    end = repo.resolve(item.to_commit)
    start = repo.resolve(item.from_commit) if item.from_commit is not None else None
    found = _Range(index, start, end)
    if start is None and repo.has_ref(f"{end}^"):
        start = repo.resolve(f"{end}^")
    if start is None:
        candidates = repo.tree(end)
    else:
        candidates = []
        for changed in repo.changed_files(start, end):
            if changed.status is git_adapter.Status.DELETED:
                found.leave_out("deleted")
            elif not changed.regular_at_new:
                found.leave_out("a symlink or submodule")
            else:
                candidates.append((changed.path, changed.new_blob))
    for path, blob in candidates:
        match = gitops.match_path(rules, path)
        if match is not None and match.rule.ignore:
            found.leave_out("ignored by the GitOpsRepository's paths")
        elif not policy_inputs.is_input_name(path):
            found.leave_out("not a policy input by name")
        else:
            found.files[path] = blob
    return found


def _find_manifests(
    repo: git_adapter.Repository,
    ranges: Sequence[_Range],
    manifests: Sequence[str],
    found: _FromGit,
) -> None:
    """`artifacts.manifests` entries that are a file or a folder at a range's end (the
    newest range first) are read from there too, as a folder walk would read them."""
    pending = list(dict.fromkeys(manifests))
    for each in reversed(ranges):
        if not pending:
            return
        tree = dict(repo.tree(each.end))
        paths = sorted(tree)
        for entry in list(pending):
            key = entry.strip().removeprefix("./").rstrip("/")
            if key in tree:
                each.files.setdefault(key, tree[key])
                found.manifests.add(entry)
                pending.remove(entry)
                continue
            prefix = f"{key}/"
            under: list[str] = []
            for path in paths[bisect.bisect_left(paths, prefix) :]:
                if not path.startswith(prefix):
                    break
                parts = path[len(prefix) :].split("/")
                if policy_inputs.is_input_name(path) and not any(
                    part.startswith(".") or part in ("node_modules", "__pycache__")
                    for part in parts[:-1]
                ):
                    under.append(path)
            if under and key:
                for path in under:
                    each.files.setdefault(path, tree[path])
                found.manifests.add(entry)
                pending.remove(entry)


def _load(
    repo: git_adapter.Repository,
    workdir: Path,
    ranges: Sequence[_Range],
    max_bytes: int,
    found: _FromGit,
) -> None:
    """Read the ranges' blobs and parse them, each file marked with the commit it is at."""
    blobs = repo.read_blobs(
        [blob for each in ranges for blob in each.files.values()], max_bytes=max_bytes
    )
    inputs = found.inputs
    for each in ranges:
        short = each.end[:12]
        readable: list[tuple[str, bytes]] = []
        for path in sorted(each.files):
            blob = blobs.get(each.files[path])
            if blob is not None and blob.content is not None:
                readable.append((path, blob.content))
            elif blob is not None and blob.skipped == "binary file":
                inputs.notices.append(f"{path} at {short}: binary file skipped")
            else:
                why = blob.skipped if blob is not None else "not read"
                message = f"{why}: not checked (at commit {short})"
                inputs.problems.append(Problem(message, file=path))
        loaded = policy_inputs.load_bytes(readable, commit=each.end)
        inputs.documents.extend(loaded.documents)
        inputs.problems.extend(loaded.problems)
        inputs.notices.extend(loaded.notices)
        range_text = f"{each.start[:12]}..{short}" if each.start else short
        summary = (
            f"artifacts.git[{each.index}]: {len(readable)} files read at commit {short} "
            f"({range_text}) from the GitOps clone at {workdir}"
        )
        if each.left_out:
            summary += "; not checked: " + ", ".join(
                f"{count} {why}" for why, count in sorted(each.left_out.items())
            )
        inputs.notices.append(summary)


def latest_report(engine: sa.Engine, ctx: Context, change_id: str) -> StoredReport:
    """The policy report of a change's latest assessment; NotFound when there is none."""
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        latest = assessment_store.latest(conn, number)
        stored = (
            policy_store.of_assessment(conn, latest.id)
            if latest is not None and latest.id is not None
            else None
        )
    if stored is None:
        raise NotFound(f"{change.id} has no policy report yet: assess it first")
    return stored


def artifacts_root(catalog: catalog_model.Catalog) -> Path:
    """The folder a change's artifact paths are relative to (PolicyConfig.artifacts_root)."""
    return (Path(catalog.root) / config_of(catalog).artifacts_root).resolve()


def risk_findings(report: Report) -> list[PolicyFinding]:
    """What the risk score weighs: failing errors and warnings (waived ones do not count)."""
    weighed = {"error": FindingSeverity.ERROR, "warning": FindingSeverity.WARNING}
    found = [
        PolicyFinding(
            weighed[f.severity.value],
            f"{f.resource.label()}: {f.message}",
            f.rule,
            escalates=f.escalates and f.severity.value == "error",
        )
        for f in report.findings
        if f.status.value == "failed" and f.severity.value in weighed
    ]
    found.extend(
        PolicyFinding(FindingSeverity.ERROR, f"unreadable input: {p['message']}", "input")
        for p in report.problems
    )
    return found


def gate_problems(report: Report, catalog: catalog_model.Catalog, now: datetime) -> list[str]:
    """Why a stored report blocks authorization now: unwaived errors, unreadable inputs,
    and waived errors whose waiver has since expired or left the catalog."""
    reasons = [f"{f.rule} on {f.resource.label() or f.file}: {f.message}" for f in report.blocking]
    reasons.extend(
        f"unreadable input {p.get('file') or p.get('field') or ''}: {p['message']}"
        for p in report.problems
    )
    for finding in report.findings:
        if finding.status.value != "waived" or finding.severity.value != "error":
            continue
        waiver = catalog.waivers.get(finding.waiver)
        if waiver is None:
            reasons.append(
                f"{finding.rule} on {finding.resource.label()}: waiver {finding.waiver} is no "
                "longer in the catalog"
            )
        elif not waiver.spec.active(now):
            reasons.append(
                f"{finding.rule} on {finding.resource.label()}: waiver {finding.waiver} expired "
                f"at {waiver.spec.expires.isoformat()}"
            )
    return reasons
