"""The policy gate on changes filed from Git, on real repositories made in tmp_path and the
real store (SQLite and PostgreSQL): the files of the range are checked as they are at its
`to_commit`, read from the GitOps clone (CHANGEGATE_GITOPS_WORKDIR), never from the disk;
a commit the clone does not hold is a clear problem that blocks the gate.

`upstream` is the GitOps repository (where commits land), `clone` the workdir cloned from it;
the catalog (the sample platform plus a GitOpsRepository) is in `repo/platform`, and
`repo/gitops` holds disk artifacts (the PolicyConfig's default `artifacts_root` is `..`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import Category, ChangeState
from changegate.domain.policy import formats
from changegate.domain.policy.engine import Report
from changegate.domain.policy.model import Finding
from changegate.errors import Refused
from changegate.services import assessments as assessment_service
from changegate.services import changes as change_service
from changegate.services import gitops as gitops_service
from changegate.services import policy as policy_service
from changegate.services.context import Context, actor_for
from changegate.settings import Settings
from changegate.store import db
from tests.factories import change_spec
from tests.integration.test_gitops_git import commit, git
from tests.lifecycle import approve_until_authorized

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
URL = "https://git.example.com/platform/fleet.git"
TENANT_DIR = "clusters/eu-west-prod-1/tenants/aperture-retail"
APP = f"{TENANT_DIR}/deployment.yaml"
GITOPS = {
    "apiVersion": "changegate.io/v1",
    "kind": "GitOpsRepository",
    "metadata": {"name": "fleet"},
    "spec": {
        "url": URL,
        "paths": [
            {"pattern": "docs/", "ignore": True},
            {"pattern": "clusters/{cluster}/**"},
            {"pattern": "clusters/{cluster}/tenants/{tenant}/**"},
        ],
    },
}
MEMORY_LIMIT = "            limits: {memory: 2Gi}\n"
# A Deployment that passes every error-level rule; without MEMORY_LIMIT it breaks
# k8s.memory-limit, reported on its `resources` (line 24), graded an error by the catalog.
CLEAN = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: odoo-shop
spec:
  replicas: 2
  selector:
    matchLabels: {{app: odoo}}
  template:
    metadata:
      labels: {{app: odoo}}
    spec:
      automountServiceAccountToken: false
      serviceAccountName: odoo
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: odoo
          image: registry.example.com/odoo:17.0@sha256:{"c" * 64}
          ports: [{{name: http, containerPort: 8069}}]
          resources:
            requests: {{cpu: 500m, memory: 1Gi}}
{MEMORY_LIMIT}\
          livenessProbe: {{httpGet: {{path: /web/health, port: http}}, periodSeconds: 20}}
          readinessProbe: {{httpGet: {{path: /web/health, port: http}}, periodSeconds: 5}}
          securityContext:
            privileged: false
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
"""
NO_LIMIT = CLEAN.replace(MEMORY_LIMIT, "")
ROOT_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: odoo-shop}
spec:
  hostNetwork: true
  containers: [{name: shell, image: "busybox:latest", securityContext: {privileged: true}}]
"""
PRIVILEGED = CLEAN.replace("privileged: false", "privileged: true")


def put(repo: Path, path: str, text: str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """The GitOps repository: one commit with the tenant's values and a note."""
    path = tmp_path / "fleet"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    put(path, f"{TENANT_DIR}/values.yaml", "workers: 4\n")
    put(path, "docs/README.md", "# fleet\n")
    commit(path, "initial")
    return path


@pytest.fixture
def clone(tmp_path: Path, upstream: Path) -> Path:
    """The workdir: a clone of the GitOps repository, fetched only when a test says so."""
    path = tmp_path / "workdir"
    git(tmp_path, "clone", "-q", str(upstream), str(path))
    return path


@pytest.fixture
def repo(tmp_path: Path, sample_dir: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(sample_dir, root / "platform")
    (root / "platform" / "gitops.yaml").write_text(yaml.safe_dump(GITOPS))
    # The platform wants memory limits: a Deployment without one is blocked.
    policy = root / "platform" / "policy.yaml"
    documents = list(yaml.safe_load_all(policy.read_text()))
    config = next(d for d in documents if d and d["kind"] == "PolicyConfig")
    config["spec"].setdefault("rules", {})["k8s.memory-limit"] = {"severity": "error"}
    policy.write_text(yaml.safe_dump_all(documents))
    (root / "gitops").mkdir()
    return root


def make_app(database_url: str, repo: Path, workdir: Path | None) -> bootstrap.App:
    settings = Settings(
        database_url=database_url, catalog_dir=repo / "platform", gitops_workdir=workdir
    )
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    engine.dispose()
    return bootstrap.create(settings)


@pytest.fixture
def app(database_url: str, repo: Path, clone: Path) -> Iterator[bootstrap.App]:
    application = make_app(database_url, repo, clone)
    yield application
    application.engine.dispose()


def at(catalog: catalog_model.Catalog, person: str) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: NOW)


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD")


def land(path: str, text: str, message: str, *, upstream: Path, clone: Path | None) -> str:
    """Commit a file upstream; the clone fetches it unless it is None."""
    put(upstream, path, text)
    sha = commit(upstream, message)
    if clone is not None:
        git(clone, "pull", "-q", "--ff-only")
    return sha


def file_from_git(app: bootstrap.App, source: Path, range_text: str) -> str:
    """File a change from a range of the repository at `source`, submit and assess it."""
    catalog = app.catalog()
    alice = at(catalog, "alice")
    change, _ = gitops_service.from_git(
        app.engine, catalog, alice, source, range_text, category=Category.KUBERNETES
    )
    change_service.submit(app.engine, catalog, alice, change.id, gitops_workdir=app.gitops_workdir)
    assessment_service.assess(
        app.engine, catalog, alice, change.id, gitops_workdir=app.gitops_workdir
    )
    return change.id


def report_of(app: bootstrap.App, change_id: str) -> Report:
    catalog = app.catalog()
    return policy_service.latest_report(app.engine, at(catalog, "frank"), change_id).report


def test_a_manifest_breaking_a_rule_at_to_commit_blocks_with_file_line_and_commit(
    app: bootstrap.App, upstream: Path, clone: Path
) -> None:
    start = head(clone)
    end = land(APP, NO_LIMIT, "odoo without a memory limit", upstream=upstream, clone=clone)
    change_id = file_from_git(app, clone, f"{start}..{end}")
    report = report_of(app, change_id)
    assert report.problems == ()  # nothing read from the disk, where the file is not
    blocking = [f for f in report.blocking if f.rule == "k8s.memory-limit"]
    assert [(f.file, f.line, f.commit) for f in blocking] == [(APP, 24, end)]
    assert blocking[0].where == f"{end[:12]}:{APP}:24"
    assert blocking[0].as_dict()["commit"] == end
    assert any(
        n.startswith(f"artifacts.git[0]: 1 files read at commit {end[:12]}") and str(clone) in n
        for n in report.notices
    ), report.notices
    catalog = app.catalog()
    bob = at(catalog, "bob")
    change_service.transition(app.engine, catalog, bob, change_id, ChangeState.AUTHORIZE)
    approve_until_authorized(app.engine, catalog, change_id)
    with pytest.raises(Refused, match=r"policy gate blocks it: .*k8s\.memory-limit on Deployment"):
        change_service.transition(app.engine, catalog, bob, change_id, ChangeState.SCHEDULED)


def test_the_file_fixed_in_a_later_commit_passes(
    app: bootstrap.App, upstream: Path, clone: Path, repo: Path
) -> None:
    start = head(clone)
    broken = land(APP, NO_LIMIT, "odoo without a memory limit", upstream=upstream, clone=clone)
    fixed = land(APP, CLEAN, "odoo: limit its memory", upstream=upstream, clone=clone)
    # The work tree and the disk say otherwise: only the commit counts.
    put(clone, APP, PRIVILEGED)
    put(repo, APP, PRIVILEGED)
    blocked = report_of(app, file_from_git(app, clone, f"{start}..{broken}"))
    assert {f.rule for f in blocked.blocking} == {"k8s.memory-limit"}
    passed = report_of(app, file_from_git(app, clone, f"{start}..{fixed}"))
    assert passed.passed, [f"{f.where} {f.rule}" for f in passed.blocking] + [
        str(p) for p in passed.problems
    ]
    assert passed.summary.documents == 2  # the Deployment and its image
    also = report_of(app, file_from_git(app, clone, f"{broken}..{fixed}"))
    assert also.passed


def test_a_commit_missing_from_the_clone_is_a_clear_problem_until_fetched(
    app: bootstrap.App, upstream: Path, clone: Path
) -> None:
    start = head(clone)
    end = land(APP, NO_LIMIT, "not fetched yet", upstream=upstream, clone=None)
    # Filed from the upstream repository; the gate reads the (stale) clone.
    change_id = file_from_git(app, upstream, f"{start}..{end}")
    report = report_of(app, change_id)
    assert not report.passed
    assert not report.findings
    messages = [p["message"] for p in report.problems]
    assert messages == [f"commit {end} is not in the GitOps clone at {clone}; fetch it"]
    assert report.problems[0]["field"] == "artifacts.git[0].to_commit"
    # The manifests are not read from the disk instead: they could be of another version.
    assert any("1 artifacts.manifests paths not read" in n for n in report.notices)
    catalog = app.catalog()
    reasons = policy_service.gate_problems(report, catalog, NOW)
    assert reasons == [
        f"unreadable input artifacts.git[0].to_commit: commit {end} is not in the GitOps "
        f"clone at {clone}; fetch it"
    ]
    git(clone, "fetch", "-q", "origin")
    assessment_service.assess(
        app.engine, catalog, at(catalog, "alice"), change_id, gitops_workdir=app.gitops_workdir
    )
    again = report_of(app, change_id)
    assert again.problems == ()
    assert {(f.rule, f.commit) for f in again.blocking} == {("k8s.memory-limit", end)}


def test_deleted_ignored_and_unrecognised_files_are_not_checked(
    app: bootstrap.App, upstream: Path, clone: Path
) -> None:
    old = f"{TENANT_DIR}/old.yaml"
    land(old, ROOT_POD, "an old pod", upstream=upstream, clone=clone)
    start = head(clone)
    (upstream / old).unlink()
    put(upstream, "docs/example.yaml", PRIVILEGED)  # ignored by the GitOpsRepository
    put(upstream, f"{TENANT_DIR}/notes.txt", "hello\n")
    end = land(APP, CLEAN, "replace the old deployment", upstream=upstream, clone=clone)
    report = report_of(app, file_from_git(app, clone, f"{start}..{end}"))
    assert report.passed, [f.where for f in report.blocking]
    assert {f.file for f in report.findings} <= {APP}
    summary = next(n for n in report.notices if n.startswith("artifacts.git[0]:"))
    assert summary.endswith(
        "not checked: 1 deleted, 1 ignored by the GitOpsRepository's paths, "
        "1 not a policy input by name"
    ), summary


def test_a_change_with_a_range_and_disk_artifacts_gets_both(
    app: bootstrap.App, upstream: Path, clone: Path, repo: Path
) -> None:
    put(upstream, f"{TENANT_DIR}/extra.yaml", "note: not a manifest\n")
    end = land(APP, NO_LIMIT, "odoo without a memory limit", upstream=upstream, clone=clone)
    put(repo, "gitops/shop/odoo.yaml", PRIVILEGED)
    catalog = app.catalog()
    spec = change_spec(
        artifacts={
            "git": [{"repo": "git@git.example.com:platform/fleet.git", "to_commit": end}],
            # A folder of the commit (read there), and a file on the disk.
            "manifests": [f"{TENANT_DIR}/", "gitops/shop/odoo.yaml"],
        }
    )
    alice = at(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, spec)
    change_service.submit(app.engine, catalog, alice, change.id)
    assessment_service.assess(
        app.engine, catalog, alice, change.id, gitops_workdir=app.gitops_workdir
    )
    report = report_of(app, change.id)
    assert report.problems == ()
    where = {(f.rule, f.file, f.commit) for f in report.blocking}
    assert ("k8s.memory-limit", APP, end) in where
    assert ("k8s.privileged", "gitops/shop/odoo.yaml", None) in where
    # Without from_commit the range is the commit itself; the folder adds the values file.
    assert any(
        n.startswith(f"artifacts.git[0]: 3 files read at commit {end[:12]} ({end[:12]})")
        for n in report.notices
    ), report.notices


def test_no_clone_configured_blocks_a_git_change_and_other_repositories_are_named(
    database_url: str, repo: Path, upstream: Path, clone: Path
) -> None:
    application = make_app(database_url, repo, None)
    try:
        start = head(clone)
        end = land(APP, CLEAN, "a clean deployment", upstream=upstream, clone=clone)
        catalog = application.catalog()
        spec = change_spec(
            artifacts={
                "git": [
                    {"repo": URL, "from_commit": start, "to_commit": end},
                    {"repo": "https://git.example.com/apps/odoo-addons.git", "to_commit": end},
                ]
            }
        )
        change = change_service.create(application.engine, catalog, at(catalog, "alice"), spec)
        report = policy_service.check_change(
            catalog, change, now=NOW, gitops_workdir=application.gitops_workdir
        )
        assert [p["message"] for p in report.problems] == [
            "the change ships commits of the GitOps repository, but no clone of it is "
            "configured to read them from: set CHANGEGATE_GITOPS_WORKDIR"
        ]
        assert any(
            n.startswith(
                "artifacts.git[1]: https://git.example.com/apps/odoo-addons.git is "
                f"not read (the catalog's GitOps repository is {URL})"
            )
            for n in report.notices
        ), report.notices
        with_clone = policy_service.check_change(catalog, change, now=NOW, gitops_workdir=clone)
        assert with_clone.passed
        assert with_clone.summary.documents == 1
    finally:
        application.engine.dispose()


def test_the_commit_shows_in_sarif_junit_and_the_stored_report(
    app: bootstrap.App, upstream: Path, clone: Path
) -> None:
    start = head(clone)
    end = land(APP, NO_LIMIT, "odoo without a memory limit", upstream=upstream, clone=clone)
    report = report_of(app, file_from_git(app, clone, f"{start}..{end}"))
    sarif = formats.sarif(report, tool_version="test")
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "k8s.memory-limit")
    assert result["properties"]["commit"] == end
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == APP
    assert location["region"] == {"startLine": 24}
    assert f"{end[:12]}:{APP}:24: error:" in formats.junit(report)
    # Reports stored before Git ranges were read have no commit: read back as None.
    data = next(f for f in report.findings if f.commit).as_dict()
    del data["commit"]
    assert Finding.from_dict(data).commit is None
