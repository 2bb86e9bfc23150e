"""`changegate drift` through the console script: a real Git repository, a live snapshot file
(no Kubernetes API server runs here), exit codes 0 (nothing found) and 2 (drift)."""

from __future__ import annotations

from pathlib import Path

from tests import catalog_builders as b
from tests.e2e.test_cli_harness import make_cli
from tests.integration.test_drift import (
    APP,
    CONFIG,
    GITOPS,
    commit,
    deployment,
    git,
    live,
    snapshot,
    write,
)
from tests.integration.test_drift_signing import APP as SIGNED_APP
from tests.integration.test_drift_signing import Signer, gitops, signer

GITOPS_URL = "https://git.example.com/platform/fleet.git"
__all__ = ["signer"]  # the fixture, imported so pytest finds it here


def test_drift_through_the_cli(tmp_path: Path) -> None:
    repo = tmp_path / "fleet"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, APP, [deployment(), CONFIG])
    commit(repo, "initial\n\nChange-Id: CHG-1\n")
    files = b.platform()
    files["gitops.yaml"] = [GITOPS]
    catalog = b.write(tmp_path / "platform", files)
    cli = make_cli(tmp_path, catalog)
    clean = snapshot(tmp_path, [live(deployment()), live(CONFIG)])
    quiet = cli("drift", "--repo", str(repo), "--live", str(clean), "--json")
    assert quiet.json()["found"] is False
    edited = snapshot(tmp_path, [live(deployment(image="odoo:hotfix")), live(CONFIG)])
    found = cli("drift", "--repo", str(repo), "--live", str(edited), expect=2, columns=160)
    assert "spec.template.spec.containers[odoo].image" in found.stdout
    bad = cli("drift", "--repo", str(tmp_path / "nowhere"), "--live", str(edited), expect=1)
    assert "nowhere" in bad.stderr


def test_signed_commits_and_the_emergency_change_through_the_cli(
    tmp_path: Path, signer: Signer
) -> None:
    repo = tmp_path / "fleet"
    repo.mkdir()
    signer.git(repo, "init", "-q", "-b", "main")
    write(repo, SIGNED_APP, [deployment(), CONFIG])
    base = signer.commit(repo, "initial\n\nChange-Id: CHG-1\n", signer.alice)
    write(repo, SIGNED_APP, [deployment(image="odoo:hotfix"), CONFIG])
    hotfix = signer.commit(repo, "hot fix", None)
    files = b.platform()
    files["gitops.yaml"] = [gitops({"required": True, "keys": ["keys/alice.asc"]})]
    catalog = b.write(tmp_path / "platform", files)
    signer.export(signer.alice, catalog / "keys" / "alice.asc")
    cli = make_cli(tmp_path, catalog)
    clean = snapshot(tmp_path, [live(deployment(image="odoo:hotfix")), live(CONFIG)])
    args = ("drift", "--repo", str(repo), "--range", f"{base}..main", "--live", str(clean))

    refused = cli("--as", "lotte", *args, "--open-change", expect=2)
    assert "may not" in refused.stderr and not refused.stdout

    first = cli("--as", "alice", *args, "--open-change", "--json", expect=2).json()
    (commit_found,) = first["unauthorized_commits"]
    assert commit_found["sha"] == hotfix
    assert commit_found["reason"] == "no Change-Id trailer; unsigned"
    assert commit_found["signature"] == "unsigned"
    assert first["change"]["status"] == "opened"
    change_id = first["change"]["change_id"]
    assert first["change"]["title"] == (
        "Unauthorized change detected: 1 unauthorized commit on acme"
    )
    assert first["change"]["category"] == "application-release"
    shown = cli("--as", "alice", "change", "show", change_id, "--json").json()
    assert shown["type"] == "emergency" and shown["state"] == "draft"
    assert shown["artifacts"]["git"] == [
        {"repo": GITOPS_URL, "from_commit": None, "to_commit": hotfix}
    ]

    again = cli("--as", "alice", *args, "--open-change", expect=2, columns=200)
    assert f"recorded already in {change_id}: not filed again" in again.stdout
    assert "unauthorized: " in again.stdout and "unsigned" in again.stdout
    listed = cli("--as", "alice", "change", "list", "--json").json()
    assert [c["id"] for c in listed["items"]] == [change_id]
