"""`changegate change impact` as a real process: the 80-column view, and --json as the API's."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from changegate.cli import changes as cli_changes
from changegate.domain import impact as impact_model
from changegate.services.impact import ChangeImpact
from tests.api.conftest import as_
from tests.e2e.test_cli_harness import Cli, file_change, widest_line
from tests.factories import change_spec

PG = "pg-eu-west-prod-1"


def test_the_human_view_fits_80_columns(cli: Cli) -> None:
    change_id = file_change(cli, category="database-upgrade", targets={"services": [PG]})
    shown = cli("--as", "frank", "change", "impact", change_id, columns=80)
    out = shown.stdout
    assert widest_line(out) <= 80, out
    tenants = cli("--as", "frank", "change", "impact", change_id, "--json").json()["tenants"]
    count = len(tenants)
    assert count > cli_changes.IMPACT_TENANT_ROWS
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0] == f"{change_id}  impact of a database-upgrade change in prod"
    assert lines[1].startswith(f"affects {count} tenants (")
    text = " ".join(out.split())  # the summary and reasons may wrap
    assert f"; platform-wide scope platform-wide: shared service {PG} reaches {count}" in text
    assert "by tier platinum " in text
    assert "by model multi-tenant " in text
    assert f"services {PG}: postgresql, shared, {count} tenants; targeted" in text
    assert f"clusters eu-west-prod-1: shared, {count} affected tenants" in text
    assert "business invoicing (" in text
    assert "the one the change was filed against" in text
    assert f"Tenants ({count}, heaviest tier first)" in out
    assert "TENANT" in out and "TIER" in out and "WHY (first path)" in out
    hidden = count - cli_changes.IMPACT_TENANT_ROWS
    assert lines[-1] == f"… and {hidden} more (use --json)"
    shown_ids = [ident for ident in tenants if f"\n{ident} " in out]
    assert len(shown_ids) == cli_changes.IMPACT_TENANT_ROWS
    # Heaviest tier first: every platinum tenant is listed.
    platinum = [i for i, t in tenants.items() if t["tier"] == "platinum"]
    assert platinum and set(platinum) <= set(shown_ids)
    # Each row's reason is its first path's (it may wrap inside its column).
    for ident in platinum:
        assert tenants[ident]["paths"][0]["reason"] in text
    assert shown.stderr == ""


def test_a_wide_terminal_adds_model_and_cluster_columns(cli: Cli) -> None:
    change_id = file_change(
        cli,
        category="kubernetes",
        targets={"clusters": ["eu-west-dedicated-1"], "selectors": [{"tier": "gold"}]},
    )
    wide = cli("--as", "frank", "change", "impact", change_id, columns=140).stdout
    assert widest_line(wide) <= 140
    header = next(line for line in wide.splitlines() if line.startswith("TENANT"))
    assert header.split()[:4] == ["TENANT", "TIER", "MODEL", "CLUSTER"]
    # A dedicated-cluster tenant reached by its cluster and the services on it: "+3".
    row = next(line for line in wide.splitlines() if line.startswith("duff-electronics "))
    assert "dedicated-cluster" in row and "runs on cluster eu-west-dedicated-1" in row
    assert row.rstrip().endswith("+3")
    for width in (60, 80, 100):
        narrow = cli("--as", "frank", "change", "impact", change_id, columns=width).stdout
        assert widest_line(narrow) <= width, narrow


def test_json_equals_the_api_json_for_the_same_change(cli: Cli, client: TestClient) -> None:
    for name, overrides in (
        ("pg.yaml", {"category": "database-upgrade", "targets": {"services": [PG]}}),
        ("gold.yaml", {}),
    ):
        change_id = file_change(cli, name, **overrides)
        from_cli = cli("--as", "frank", "change", "impact", change_id, "--json").json()
        from_api = client.get(f"/api/v1/changes/{change_id}/impact", headers=as_("frank"))
        assert from_api.status_code == 200, from_api.text
        assert from_cli == from_api.json()
        assert from_cli["change_id"] == change_id
        assert from_cli["tenants"]


def test_no_affected_tenant(cli: Cli) -> None:
    change_id = file_change(cli, targets={"selectors": [{"odoo_series": "15.0"}]})
    shown = cli("--as", "alice", "change", "impact", change_id)
    assert "Tenants (0, heaviest tier first)" in shown.stdout
    assert shown.stdout.rstrip().endswith("none")
    assert "selector odoo_series=15.0 matches no tenant in prod" in " ".join(shown.stdout.split())
    as_json = cli("--as", "alice", "change", "impact", change_id, "--json").json()
    assert (as_json["scope"], as_json["tenants"]) == ("none", {})


def test_unknown_change_and_missing_person(cli: Cli) -> None:
    cli("db", "upgrade")
    missing = cli("--as", "frank", "change", "impact", "CHG-9", "--json", expect=1)
    assert missing.stderr == "error: CHG-9 does not exist\n"
    assert missing.json()["error"]["type"] == "not-found"
    malformed = cli("--as", "frank", "change", "impact", "bogus", expect=1)
    assert "not a change id" in malformed.stderr
    nobody = cli("change", "impact", "CHG-1", expect=2)
    assert nobody.stderr.startswith("error: no acting person")


def test_the_catalog_line_says_when_the_catalog_moved_on(sample_dir: Path) -> None:
    from changegate.adapters import catalog_files

    catalog = catalog_files.load_catalog(sample_dir)
    result = impact_model.analyze(catalog, change_spec())
    short = catalog.digest[: len("sha256:") + 12] + "…"
    same = ChangeImpact("CHG-1", catalog.digest, result)
    assert cli_changes._catalog_line(same) == f"{short}, the one the change was filed against"
    older = ChangeImpact("CHG-1", "sha256:" + "1" * 64, result)
    assert cli_changes._catalog_line(older) == (
        f"{short} now; the change was filed against sha256:111111111111…: "
        "targets may have moved since"
    )
    unknown = ChangeImpact("CHG-1", None, result)
    assert "does not record" in cli_changes._catalog_line(unknown)
