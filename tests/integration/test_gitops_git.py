"""Changes from Git against real repositories made in tmp_path: the git adapter, `diff` and
`from_git` (filed through the change service, so permissions and the audit trail apply)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from changegate.adapters import git as git_adapter
from changegate.domain import catalog as catalog_model
from changegate.errors import InvalidInput, Refused
from changegate.services import audit as audit_service
from changegate.services import gitops as gitops_service
from changegate.services.context import Context, actor_for
from changegate.store import db
from tests import catalog_builders as b

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
# Git run by the tests: identity given per command, no global or system configuration read.
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
            {"pattern": "clusters/{cluster}/**"},
            {"pattern": "clusters/{cluster}/tenants/{tenant}/**"},
            {"pattern": "platform/{service}/**"},
            {"pattern": "tenants/{tenant}/values.yaml", "category": "tenant-config"},
        ],
    },
)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        env=GIT_ENV,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.decode().strip()


def deployment(image: str, replicas: int = 2, name: str = "odoo") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "odoo-mt-1"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "initContainers": [{"name": "wait", "image": "busybox:1.36"}],
                    "containers": [{"name": "odoo", "image": image}],
                },
            },
        },
    }


def cnpg(instances: int) -> dict[str, Any]:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg-1", "namespace": "databases"},
        "spec": {"instances": instances, "postgresql": {"parameters": {"work_mem": "8MB"}}},
    }


def write(repo: Path, path: str, content: Any) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    elif isinstance(content, str):
        target.write_text(content)
    else:
        target.write_text(yaml.safe_dump_all(content if isinstance(content, list) else [content]))


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", message)
    return git(repo, "rev-parse", "HEAD")


APP = "clusters/shared-1/tenants/acme/deployment.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A GitOps repository with one commit: acme's Deployment, pg-1's cluster, docs."""
    path = tmp_path / "fleet"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    write(path, APP, deployment(f"registry.example.com/odoo/odoo:17.0-1@{DIGEST_A}"))
    write(path, "platform/pg-1/cluster.yaml", cnpg(3))
    write(path, "docs/README.md", "# fleet\n")
    write(path, "tenants/acme/values.yaml", {"workers": 4})
    commit(path, "initial")
    return path


@pytest.fixture
def catalog() -> catalog_model.Catalog:
    files = b.platform()
    files["gitops.yaml"] = [GITOPS]
    return catalog_model.build(
        b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r"
    )


# --------------------------------------------------------------------------- the adapter


def test_the_adapter_lists_added_modified_deleted_and_renamed_files_with_odd_names(
    repo: Path,
) -> None:
    odd = 'clusters/shared-1/tenants/acme/we ird\n\t"name".yaml'
    write(repo, odd, {"a": 1})
    write(repo, "platform/pg-1/cluster.yaml", cnpg(5))
    (repo / "docs/README.md").unlink()
    git(repo, "mv", APP, "clusters/shared-1/tenants/acme/app.yaml")
    commit(repo, "change things")
    repository = git_adapter.Repository(repo)
    start, end = repository.resolve_range("HEAD~1..HEAD")
    files = {f.path: f for f in repository.changed_files(start, end)}
    assert files[odd].status is git_adapter.Status.ADDED
    assert files["platform/pg-1/cluster.yaml"].status is git_adapter.Status.MODIFIED
    assert files["docs/README.md"].status is git_adapter.Status.DELETED
    renamed = files["clusters/shared-1/tenants/acme/app.yaml"]
    assert renamed.status is git_adapter.Status.RENAMED
    assert renamed.old_path == APP
    blobs = repository.read_blobs([files[odd].new_blob])
    assert blobs[files[odd].new_blob].content == b"a: 1\n"


def test_the_adapter_skips_huge_and_binary_blobs(repo: Path) -> None:
    write(repo, "platform/pg-1/big.yaml", "x: " + "y" * 5000 + "\n")
    write(repo, "platform/pg-1/blob.yaml", b"\x00\x01binary")
    commit(repo, "big and binary")
    repository = git_adapter.Repository(repo)
    start, end = repository.resolve_range("HEAD~1..HEAD")
    files = {f.path: f for f in repository.changed_files(start, end)}
    blobs = repository.read_blobs([f.new_blob for f in files.values()], max_bytes=1000)
    big = blobs[files["platform/pg-1/big.yaml"].new_blob]
    assert big.content is None
    assert big.skipped == "larger than 1,000 bytes"
    assert blobs[files["platform/pg-1/blob.yaml"].new_blob].skipped == "binary file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HEAD", "is not a range: give A..B"),
        ("..HEAD", "is not a range"),
        ("HEAD..", "is not a range"),
        ("HEAD~1...HEAD", "give a two-dot range A..B"),
        ("--output=/tmp/x..HEAD", "not a commit: '--output=/tmp/x'"),
        ("HEAD..nope", "unknown commit 'nope'"),
        ("0123456789abcdef0123456789abcdef01234567..HEAD", "unknown commit '0123456789abcdef"),
        ("HEAD;rm -rf /..HEAD", "not a commit"),
    ],
)
def test_malformed_ranges_and_unknown_commits_are_clear_errors(
    repo: Path, text: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        git_adapter.Repository(repo).resolve_range(text)
    assert message in str(caught.value)


def test_a_folder_that_is_not_a_git_repository_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InvalidInput, match="is not a Git repository"):
        git_adapter.Repository(plain)
    with pytest.raises(InvalidInput, match="no such folder"):
        git_adapter.Repository(tmp_path / "missing")


# --------------------------------------------------------------------------- diff


def test_an_image_bump_maps_to_the_tenant_with_its_digest_and_is_an_application_release(
    repo: Path, catalog: catalog_model.Catalog
) -> None:
    write(repo, APP, deployment(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST_B}"))
    commit(repo, "Roll out odoo 17.0-2 to acme")
    found = gitops_service.diff(catalog, repo, "HEAD~1..HEAD")
    data = found.as_dict()
    assert data["targets"]["tenants"] == [
        {
            "id": "acme",
            "reasons": [f"{APP} via paths[2] 'clusters/{{cluster}}/tenants/{{tenant}}/**'"],
        }
    ]
    assert data["targets"]["services"] == []
    assert {"ref": "registry.example.com/odoo/odoo:17.0-2", "digest": DIGEST_B, "files": [APP]} in (
        data["images"]
    )
    assert {"ref": "busybox:1.36", "digest": None, "files": [APP]} in data["images"]
    assert data["category"] == {
        "value": "application-release",
        "reason": "only image references changed",
    }
    assert data["environment"]["value"] == "prod"
    assert data["manifests"] == [APP]
    assert data["commits"][0]["subject"] == "Roll out odoo 17.0-2 to acme"
    assert data["unmatched"] == []


def test_only_a_postgresql_cluster_spec_change_is_database_config(
    repo: Path, catalog: catalog_model.Catalog
) -> None:
    write(repo, "platform/pg-1/cluster.yaml", cnpg(5))
    commit(repo, "pg-1: five instances")
    found = gitops_service.diff(catalog, repo, "HEAD~1..HEAD")
    assert list(found.targets["services"]) == ["pg-1"]
    assert found.category.value == "database-config"


def test_mixed_changes_leave_the_category_to_the_person(
    repo: Path, catalog: catalog_model.Catalog
) -> None:
    write(repo, "platform/pg-1/cluster.yaml", cnpg(5))
    write(repo, APP, deployment(f"registry.example.com/odoo/odoo:17.0-1@{DIGEST_A}", replicas=4))
    commit(repo, "two things")
    found = gitops_service.diff(catalog, repo, "HEAD~1..HEAD")
    assert found.category.value is None
    assert "changes beyond images" in found.category.reason
    assert set(found.targets["tenants"]) == {"acme"}
    assert set(found.targets["services"]) == {"pg-1"}


def test_a_rule_category_applies_and_ignored_and_unmatched_paths_are_listed(
    repo: Path, catalog: catalog_model.Catalog
) -> None:
    write(repo, "tenants/acme/values.yaml", {"workers": 8})
    write(repo, "docs/README.md", "# fleet, documented\n")
    write(repo, "README.md", "top\n")
    write(repo, "clusters/shared-1/tenants/ghost/app.yaml", {"a": 1})
    write(repo, "clusters/dedicated-1/tenants/acme/app.yaml", {"a": 1})
    commit(repo, "values")
    found = gitops_service.diff(catalog, repo, "HEAD~1..HEAD")
    reports = {f.path: f for f in found.files}
    assert reports["tenants/acme/values.yaml"].category == "tenant-config"
    assert reports["docs/README.md"].ignored
    assert dict(found.unmatched) == {
        "README.md": "no pattern matches this path",
        "clusters/dedicated-1/tenants/acme/app.yaml": "paths[2] 'clusters/{cluster}/tenants/"
        "{tenant}/**': tenant 'acme' runs on cluster 'shared-1', the path says 'dedicated-1'",
        "clusters/shared-1/tenants/ghost/app.yaml": "paths[2] 'clusters/{cluster}/tenants/"
        "{tenant}/**' captured tenant 'ghost', which is not in the catalog",
    }
    assert found.category.value is None


def test_huge_and_binary_manifests_still_map_but_are_not_read(
    repo: Path, catalog: catalog_model.Catalog
) -> None:
    write(repo, "platform/pg-1/huge.yaml", "x: " + "y" * 5000 + "\n")
    write(repo, "platform/redis-1/blob.yaml", b"\x00binary")
    commit(repo, "big")
    found = gitops_service.diff(catalog, repo, "HEAD~1..HEAD", max_blob_bytes=1000)
    assert set(found.targets["services"]) == {"pg-1", "redis-1"}
    assert any("larger than 1,000 bytes" in n for n in found.notices)
    assert any("binary file" in n for n in found.notices)


def test_kustomize_image_overrides_give_images_and_digests(
    repo: Path, catalog: catalog_model.Catalog
) -> None:
    path = "clusters/shared-1/tenants/acme/kustomization.yaml"
    base = {"resources": ["deployment.yaml"], "images": [{"name": "odoo", "newTag": "17.0-1"}]}
    write(repo, path, base)
    commit(repo, "kustomize")
    bumped = {
        "resources": ["deployment.yaml"],
        "images": [
            {"name": "odoo", "newName": "registry.example.com/odoo/odoo", "digest": DIGEST_B}
        ],
    }
    write(repo, path, bumped)
    commit(repo, "bump by digest")
    found = gitops_service.diff(catalog, repo, "HEAD~1..HEAD")
    assert [(i.ref, i.digest) for i, _ in found.images] == [
        ("registry.example.com/odoo/odoo", DIGEST_B)
    ]
    assert found.category.value == "application-release"


def test_a_catalog_without_a_gitops_repository_is_told_so(repo: Path) -> None:
    bare = catalog_model.build(
        b.documents(b.platform()), digest="sha256:" + "0" * 64, commit=None, root="r"
    )
    with pytest.raises(InvalidInput, match="declares no GitOpsRepository"):
        gitops_service.diff(bare, repo, "HEAD..HEAD")


def test_an_empty_range_is_refused(repo: Path, catalog: catalog_model.Catalog) -> None:
    with pytest.raises(InvalidInput, match="empty range"):
        gitops_service.diff(catalog, repo, "HEAD..HEAD")


# --------------------------------------------------------------------------- from git


@pytest.fixture
def engine(sqlite_url: str) -> Any:
    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def test_from_git_files_a_change_through_the_change_service(
    repo: Path, catalog: catalog_model.Catalog, engine: sa.Engine
) -> None:
    before = git(repo, "rev-parse", "HEAD")
    write(repo, APP, deployment(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST_B}"))
    after = commit(repo, "Roll out odoo 17.0-2 to acme")
    ctx = Context(actor=actor_for(catalog, "alice"))
    change, _ = gitops_service.from_git(engine, catalog, ctx, repo, f"{before}..{after}")
    spec = change.spec
    assert spec.title == "Roll out odoo 17.0-2 to acme"
    assert spec.category.value == "application-release"
    assert spec.environment == "prod"
    assert spec.targets.tenants == ["acme"]
    assert spec.artifacts.git[0].model_dump() == {
        "repo": "https://git.example.com/platform/fleet.git",
        "from_commit": before,
        "to_commit": after,
    }
    assert ("registry.example.com/odoo/odoo:17.0-2", DIGEST_B) in [
        (i.ref, i.digest) for i in spec.artifacts.images
    ]
    assert spec.artifacts.manifests == [APP]
    assert change.requester == "alice"
    events = audit_service.events(engine, ctx, object_id=change.id)
    assert [e.action for e in events] == ["change.created"]


def test_from_git_refuses_unclear_or_unmatched_ranges_until_told(
    repo: Path, catalog: catalog_model.Catalog, engine: sa.Engine
) -> None:
    write(repo, "platform/pg-1/cluster.yaml", cnpg(5))
    write(repo, APP, deployment(f"registry.example.com/odoo/odoo:17.0-1@{DIGEST_A}", replicas=4))
    write(repo, "README.md", "top\n")
    commit(repo, "first subject")
    write(repo, "platform/pg-1/more.yaml", {"a": 1})
    commit(repo, "second subject")
    ctx = Context(actor=actor_for(catalog, "alice"))
    with pytest.raises(InvalidInput) as caught:
        gitops_service.from_git(engine, catalog, ctx, repo, "HEAD~2..HEAD")
    text = str(caught.value)
    assert "README.md: no pattern matches this path" in text
    assert "--allow-unmatched" in text
    assert "cannot tell the category" in text
    change, _ = gitops_service.from_git(
        engine,
        catalog,
        ctx,
        repo,
        "HEAD~2..HEAD",
        category=catalog_model.Category.KUBERNETES,
        allow_unmatched=True,
        title=None,
    )
    assert change.spec.title == "second subject (and 1 more commits)"
    assert change.spec.targets.services == ["pg-1"]
    assert "first subject" in change.spec.justification


def test_from_git_checks_the_environment_given(
    repo: Path, catalog: catalog_model.Catalog, engine: sa.Engine
) -> None:
    write(repo, "platform/pg-1/cluster.yaml", cnpg(5))
    commit(repo, "pg")
    ctx = Context(actor=actor_for(catalog, "alice"))
    with pytest.raises(
        InvalidInput, match="--env staging disagrees with the targets' environment prod"
    ):
        gitops_service.from_git(engine, catalog, ctx, repo, "HEAD~1..HEAD", environment="staging")


def test_from_git_needs_the_permission_to_create_changes(
    repo: Path, catalog: catalog_model.Catalog, engine: sa.Engine
) -> None:
    write(repo, "platform/pg-1/cluster.yaml", cnpg(5))
    commit(repo, "pg")
    ctx = Context(actor=actor_for(catalog, "lotte"))  # a customer approver
    with pytest.raises(Refused, match="may not"):
        gitops_service.from_git(engine, catalog, ctx, repo, "HEAD~1..HEAD")
