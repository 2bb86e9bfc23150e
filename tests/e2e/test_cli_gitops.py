"""`changegate gitops diff` and `changegate change from-git` through the console script, on
the sample platform plus a GitOpsRepository, against a real repository made in tmp_path."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli_harness import Cli, make_cli

DIGEST = "sha256:" + "d" * 64
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}
GITOPS = {
    "apiVersion": "changegate.io/v1",
    "kind": "GitOpsRepository",
    "metadata": {"name": "fleet"},
    "spec": {
        "url": "https://git.example.com/platform/fleet.git",
        "branch": "main",
        "paths": [
            {"pattern": "docs/", "ignore": True},
            {"pattern": "clusters/{cluster}/**"},
            {"pattern": "clusters/{cluster}/tenants/{tenant}/**"},
        ],
    },
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        env=GIT_ENV,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.decode().strip()


def deployment(image: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "odoo"},
            "spec": {"template": {"spec": {"containers": [{"name": "odoo", "image": image}]}}},
        }
    )


@pytest.fixture
def platform(tmp_path: Path, sample_dir: Path) -> Path:
    directory = tmp_path / "platform"
    shutil.copytree(sample_dir, directory)
    (directory / "gitops.yaml").write_text(yaml.safe_dump(GITOPS))
    return directory


@pytest.fixture
def gitops_cli(tmp_path: Path, platform: Path) -> Cli:
    return make_cli(tmp_path, platform)


@pytest.fixture
def tenant(platform: Path) -> tuple[str, str]:
    """(tenant, its cluster): the first tenant of the sample."""
    for path in sorted((platform / "tenants").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "Tenant":
                return document["metadata"]["name"], document["spec"]["cluster"]
    raise AssertionError("the sample has no tenant")


@pytest.fixture
def repo(tmp_path: Path, tenant: tuple[str, str]) -> Path:
    name, cluster = tenant
    path = tmp_path / "fleet"
    app = path / "clusters" / cluster / "tenants" / name / "deployment.yaml"
    app.parent.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    app.write_text(deployment("registry.example.com/odoo/odoo:17.0-1"))
    git(path, "add", "-A")
    git(path, "commit", "-q", "--no-gpg-sign", "-m", "initial")
    app.write_text(deployment(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST}"))
    (path / "docs").mkdir()
    (path / "docs" / "notes.md").write_text("notes\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "--no-gpg-sign", "-m", "Release odoo 17.0-2")
    return path


def test_gitops_diff_prints_targets_images_and_the_inferred_category(
    gitops_cli: Cli, repo: Path, tenant: tuple[str, str]
) -> None:
    name, cluster = tenant
    data = gitops_cli("gitops", "diff", "--repo", str(repo), "HEAD~1..HEAD", "--json").json()
    assert [t["id"] for t in data["targets"]["tenants"]] == [name]
    assert data["images"] == [
        {
            "ref": "registry.example.com/odoo/odoo:17.0-2",
            "digest": DIGEST,
            "files": [f"clusters/{cluster}/tenants/{name}/deployment.yaml"],
        }
    ]
    assert data["category"]["value"] == "application-release"
    assert data["environment"]["value"] == "prod"
    assert [f["path"] for f in data["files"] if f["ignored"]] == ["docs/notes.md"]
    human = gitops_cli("gitops", "diff", "--repo", str(repo), "HEAD~1..HEAD")
    assert f"  tenant {name}\n" in human.stdout
    assert "category:    application-release: only image references changed" in human.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["HEAD"], "is not a range: give A..B"),
        (["HEAD..missing"], "unknown commit 'missing'"),
    ],
)
def test_gitops_diff_bad_ranges_exit_1_with_the_reason(
    gitops_cli: Cli, repo: Path, args: list[str], message: str
) -> None:
    result = gitops_cli("gitops", "diff", "--repo", str(repo), *args, expect=1)
    assert message in result.stderr


def test_gitops_diff_outside_a_git_repository_exits_1(gitops_cli: Cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = gitops_cli("gitops", "diff", "--repo", str(plain), "a..b", "--json", expect=1)
    assert "is not a Git repository" in result.json()["error"]["message"]


def test_change_from_git_files_a_draft_with_the_targets_and_artifacts(
    gitops_cli: Cli, repo: Path, tenant: tuple[str, str]
) -> None:
    name, _ = tenant
    data = gitops_cli(
        "--as", "alice", "change", "from-git", "--repo", str(repo), "HEAD~1..HEAD", "--json"
    ).json()
    assert data["id"] == "CHG-1"
    assert data["title"] == "Release odoo 17.0-2"
    assert data["state"] == "draft"
    assert data["category"] == "application-release"
    assert data["targets"]["tenants"] == [name]
    assert data["artifacts"]["images"] == [
        {"ref": "registry.example.com/odoo/odoo:17.0-2", "digest": DIGEST}
    ]
    assert data["artifacts"]["git"][0]["to_commit"] == git(repo, "rev-parse", "HEAD")
    shown = gitops_cli("--as", "alice", "change", "show", "CHG-1", "--json").json()
    assert shown["requester"] == "alice"


def test_change_from_git_says_what_is_unclear(gitops_cli: Cli, repo: Path) -> None:
    (repo / "README.md").write_text("top\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "readme")
    result = gitops_cli(
        "--as", "alice", "change", "from-git", "--repo", str(repo), "HEAD~1..HEAD", expect=1
    )
    assert "README.md: no pattern matches this path" in result.stderr
    assert "cannot tell the environment" in result.stderr


def test_a_change_from_git_is_assessed_on_its_commit_read_from_the_gitops_workdir(
    gitops_cli: Cli, repo: Path, tenant: tuple[str, str]
) -> None:
    name, cluster = tenant
    path = f"clusters/{cluster}/tenants/{name}/deployment.yaml"
    head = git(repo, "rev-parse", "HEAD")
    gitops_cli("--as", "alice", "change", "from-git", "--repo", str(repo), "HEAD~1..HEAD")
    gitops_cli("--as", "alice", "change", "submit", "CHG-1")
    # Without a clone to read the commit from, the gate is blocked and says how to fix it.
    gitops_cli("--as", "alice", "change", "assess", "CHG-1")
    blocked = gitops_cli("--as", "bob", "change", "policy", "CHG-1", "--json").json()
    assert [p["message"] for p in blocked["problems"]] == [
        "the change ships commits of the GitOps repository, but no clone of it is configured "
        "to read them from: set CHANGEGATE_GITOPS_WORKDIR"
    ]
    env = {"CHANGEGATE_GITOPS_WORKDIR": str(repo)}
    gitops_cli("--as", "alice", "change", "assess", "CHG-1", env=env)
    report = gitops_cli("--as", "bob", "change", "policy", "CHG-1", "--json").json()
    assert report["problems"] == []
    findings = [f for f in report["findings"] if f["file"] == path]
    assert findings
    assert {f["commit"] for f in findings} == {head}
    junit = gitops_cli("--as", "bob", "change", "policy", "CHG-1", "--format", "junit")
    assert f"{head[:12]}:{path}:" in junit.stdout
    # The table folds a long WHERE rather than cutting off its line number.
    table = gitops_cli("--as", "bob", "change", "policy", "CHG-1", columns=120)
    assert f"{head[:12]}:" in table.stdout
    assert re.search(r"/deployment\.yaml:\d+ ", table.stdout), table.stdout
