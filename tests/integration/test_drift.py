"""Drift and unauthorized commits against real Git repositories made in tmp_path, and live
state from snapshot files the test writes (no Kubernetes API server runs here)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from changegate.adapters import kubectl
from changegate.domain import catalog as catalog_model
from changegate.domain import health as h
from changegate.domain.changes import ChangeRequest, ChangeState, CloseCode
from changegate.services import drift as drift_service
from tests import catalog_builders as b

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}
GITOPS = b.doc(
    "GitOpsRepository",
    "fleet",
    {
        "url": "https://git.example.com/platform/fleet.git",
        "paths": [
            {"pattern": "docs/", "ignore": True},
            {"pattern": "clusters/{cluster}/tenants/{tenant}/**"},
        ],
    },
)
APP = "clusters/c1/tenants/acme/app.yaml"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode().strip()


def write(repo: Path, path: str, docs: list[Any] | str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    text = docs if isinstance(docs, str) else yaml.safe_dump_all(docs)
    target.write_text(text)


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def deployment(image: str = "odoo:17.0", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "odoo",
            "namespace": "acme",
            "labels": {"app.kubernetes.io/instance": "acme"},
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "odoo", "image": image}]}},
        },
    }


CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "odoo-conf", "namespace": "acme"},
    "data": {"workers": "4"},
}


def live(obj: dict[str, Any], **status: Any) -> dict[str, Any]:
    found = copy.deepcopy(obj)
    found["metadata"].update(
        uid="9f1c", resourceVersion="1001", generation=2, creationTimestamp="2024-05-01T10:00:00Z"
    )
    if found["kind"] == "Deployment":
        container = found["spec"]["template"]["spec"]["containers"][0]
        container["imagePullPolicy"] = "IfNotPresent"
        container["terminationMessagePath"] = "/dev/termination-log"
        found["status"] = {"observedGeneration": 2, **status}
    return found


def snapshot(tmp_path: Path, objects: list[dict[str, Any]]) -> Path:
    path = tmp_path / "live.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "fleet"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    write(path, APP, [deployment(), CONFIG])
    write(
        path,
        "clusters/c1/tenants/acme/kustomization.yaml",
        [{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}],
    )
    write(path, "docs/example.yaml", [{**CONFIG, "metadata": {"name": "doc-only"}}])
    write(path, "README.md", "# fleet\n")
    commit(path, "initial\n\nChange-Id: CHG-1\n")
    return path


@pytest.fixture
def catalog() -> catalog_model.Catalog:
    files = b.platform()
    files["gitops.yaml"] = [GITOPS]
    return catalog_model.build(
        b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r"
    )


def test_desired_state_is_the_governed_manifests_at_the_branch_head(
    repo: Path, catalog: catalog_model.Catalog
) -> None:
    desired = drift_service.desired_at_head(catalog, repo)
    assert desired.commit == git(repo, "rev-parse", "main")
    kinds = sorted((o.obj["kind"], o.source) for o in desired.objects)
    assert kinds == [("ConfigMap", APP), ("Deployment", APP)]


def test_no_drift_then_a_hand_edit_a_missing_and_an_unmanaged_object(
    repo: Path, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    desired = drift_service.desired_at_head(catalog, repo)
    clean = kubectl.read_snapshot(snapshot(tmp_path, [live(deployment()), live(CONFIG)]))
    assert not drift_service.live_drift(desired, clean).found

    edited = live(deployment(image="odoo:hotfix", replicas=3))
    stray = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "acme"}}
    objects = kubectl.read_snapshot(snapshot(tmp_path, [edited, stray]))
    report = drift_service.live_drift(desired, objects)
    assert [d.key[1] for d in report.drifted] == ["Deployment"]
    paths = sorted(x.path for x in report.drifted[0].differences)
    assert paths == ["spec.replicas", "spec.template.spec.containers[odoo].image"]
    assert [k[1:] for k, _ in report.missing] == [("ConfigMap", "acme", "odoo-conf")]
    assert report.unmanaged == [("v1", "Secret", "acme", "x")]


def test_unauthorized_commits_on_governed_paths(repo: Path, catalog: catalog_model.Catalog) -> None:
    base = git(repo, "rev-parse", "HEAD")
    write(repo, APP, [deployment(image="odoo:17.1"), CONFIG])
    ok = commit(repo, "wave 1\n\nChange-Id: CHG-7\nWave: 1/2\n")
    write(repo, "README.md", "# fleet, ungoverned\n")
    commit(repo, "docs only")
    write(repo, APP, [deployment(image="odoo:17.2"), CONFIG])
    none = commit(repo, "hand edit")
    write(repo, APP, [deployment(image="odoo:17.3"), CONFIG])
    draft = commit(repo, "early\n\nChange-Id: CHG-8\n")
    write(repo, APP, [deployment(image="odoo:17.4"), CONFIG])
    failed = commit(repo, "failed one\n\nChange-Id: CHG-9\n")
    write(repo, APP, [deployment(image="odoo:17.5"), CONFIG])
    unknown = commit(repo, "who\n\nChange-Id: CHG-99\n")

    def change(number: int, state: ChangeState, code: CloseCode | None = None) -> ChangeRequest:
        spec: Any = None  # the drift check reads only the state and close code
        return ChangeRequest(number, spec, "someone", state=state, close_code=code)

    changes = {
        "CHG-7": change(7, ChangeState.IMPLEMENTING),
        "CHG-8": change(8, ChangeState.AUTHORIZE),
        "CHG-9": change(9, ChangeState.CLOSED, CloseCode.UNSUCCESSFUL),
    }
    found, governed = drift_service.unauthorized_commits(
        catalog, repo, f"{base}..main", changes.get
    )
    assert governed == 5
    by_sha = {c.sha: c for c in found}
    assert ok not in by_sha
    assert by_sha[none].reason == "no Change-Id trailer" and by_sha[none].paths == [APP]
    assert by_sha[draft].reason == "CHG-8 is authorize, not authorized"
    assert by_sha[failed].reason == "CHG-9 is closed unsuccessful, not authorized"
    assert by_sha[unknown].reason == "CHG-99 names no change"
    assert len(found) == 4


def test_the_kubectl_adapter_reads_rollout_status_from_a_snapshot(tmp_path: Path) -> None:
    rolling = live(deployment(), replicas=3, updatedReplicas=1, availableReplicas=2)
    path = snapshot(tmp_path, [rolling, live(CONFIG)])
    port: h.DeliveryStatus = kubectl.KubectlStatus.from_snapshot(path)
    found = port.application_status("acme")
    assert found.health is h.HealthStatus.PROGRESSING and not found.reports_sync
    assert "1 out of 2 new replicas have been updated" in found.message
    done = live(deployment(), replicas=2, updatedReplicas=2, availableReplicas=2)
    path = snapshot(tmp_path, [done])
    # Every call reads the snapshot again: the port answers "now".
    assert port.application_status("acme").health is h.HealthStatus.HEALTHY
    fresh = kubectl.KubectlStatus.from_snapshot(path)
    assert fresh.application_status("acme").health is h.HealthStatus.HEALTHY
    assert fresh.application_status("other").health is h.HealthStatus.MISSING
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(h.StatusUnavailable):
        kubectl.KubectlStatus.from_snapshot(tmp_path / "bad.json").application_status("acme")
