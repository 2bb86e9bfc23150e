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
