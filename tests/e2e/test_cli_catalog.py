"""`changegate init` and `changegate catalog ...` as real processes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_cli_harness import Cli, make_cli, widest_line


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path, tmp_path / "platform")


def test_init_then_validate_and_show(cli: Cli, tmp_path: Path) -> None:
    written = cli("init", "platform", "--tenants", "12")
    assert "tenants.yaml" in written.stdout or "tenants/" in written.stdout
    assert "next steps:" in written.stdout
    assert "changegate catalog validate" in written.stdout
    assert (tmp_path / "platform" / "people.yaml").is_file()

    again = cli("init", "platform", expect=1)
    assert "not empty" in again.stderr

    summary = cli("catalog", "validate", "platform")
    assert "is valid" in summary.stdout
    assert re.search(r"digest\s+sha256:[0-9a-f]{64}", summary.stdout)
    as_json = cli("catalog", "validate", "--json").json()
    assert as_json["valid"] is True
    assert as_json["counts"]["tenants"] == 12
    assert as_json["digest"].startswith("sha256:")

    tenants = cli("catalog", "show", "tenants", "--json").json()
    assert tenants["kind"] == "Tenant"
    assert tenants["total"] == len(tenants["items"]) == 12
    first = tenants["items"][0]
    assert set(first) == {"kind", "id", "labels", "annotations", "spec", "file", "line"}

    table = cli("catalog", "show", "tenants")
    assert widest_line(table.stdout) <= 80, table.stdout
    for item in tenants["items"]:
        assert item["id"] in table.stdout  # ids are never shortened
    assert "12 Tenant entities" in table.stderr

    one = cli("catalog", "show", "Tenant", first["id"], "--json").json()
    assert one == first
    detail = cli("catalog", "show", "tenant", first["id"])
    assert widest_line(detail.stdout) <= 80, detail.stdout
    assert f"Tenant {first['id']}" in detail.stdout
    assert first["spec"]["cluster"] in detail.stdout

    # Nothing above needed the database.
    assert not (tmp_path / "changegate.db").exists()


@pytest.mark.parametrize("kind", ["people", "services", "windows", "clusters"])
def test_tables_fit_80_columns(kind: str, tmp_path: Path, sample_dir: Path) -> None:
    cli = make_cli(tmp_path, sample_dir)
    table = cli("catalog", "show", kind)
    assert widest_line(table.stdout) <= 80, table.stdout
    assert table.stdout.count("\n") > 2


def test_validate_lists_every_problem_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    cli("init", "platform", "--tenants", "4")
    tiers = tmp_path / "platform" / "tiers.yaml"
    text = tiers.read_text()
    tiers.write_text(text.replace("risk_weight:", "colour: red\n  risk_weight:", 1))
    environments = tmp_path / "platform" / "environments.yaml"
    environments.write_text(environments.read_text().replace("order: 10", "order: ten", 1))

    result = cli("catalog", "validate", expect=1)
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: "), result.stderr
    assert any(re.match(r"\s+tiers\.yaml:\d+: spec\.colour: unknown field", ln) for ln in lines)
    assert any(re.match(r"\s+environments\.yaml:\d+: spec\.order: ", ln) for ln in lines)

    errors = cli("catalog", "validate", "--json", expect=1).json()["error"]
    assert errors["type"] == "invalid-input"
    files = {(e["file"], e["field"]) for e in errors["errors"]}
    assert ("tiers.yaml", "spec.colour") in files
    assert ("environments.yaml", "spec.order") in files
    assert all(isinstance(e["line"], int) for e in errors["errors"])


def test_unknown_kind_or_entity_is_invalid_input(cli: Cli, sample_dir: Path) -> None:
    cli.catalog_dir = sample_dir
    kind = cli("catalog", "show", "gizmos", expect=1)
    assert "unknown kind 'gizmos'" in kind.stderr
    entity = cli("catalog", "show", "tenant", "no-such-tenant", "--json", expect=1)
    assert entity.json()["error"]["type"] == "not-found"


def test_a_window_that_can_never_open_is_a_warning_not_an_error(
    cli: Cli, tmp_path: Path, sample_dir: Path
) -> None:
    import shutil

    platform = tmp_path / "warned"
    shutil.copytree(sample_dir, platform)
    windows = platform / "windows.yaml"
    lines = len(windows.read_text().splitlines())
    with windows.open("a") as handle:
        handle.write(
            "---\napiVersion: changegate.io/v1\nkind: Window\nmetadata: {name: february-30}\n"
            "spec:\n  type: allow\n  purpose: maintenance\n  timezone: UTC\n"
            "  rrule: FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\n  duration: 1h\n"
            "  scope: {global: true}\n"
        )
    checked = cli("catalog", "validate", str(platform))
    assert checked.stdout.startswith(f"catalog {platform} is valid")
    assert checked.stderr == (
        f"warning: windows.yaml:{lines + 2}: Window february-30 can never open: no occurrence "
        "within five years of now\n"
    )
    as_json = cli("catalog", "validate", str(platform), "--json").json()
    assert as_json["valid"] is True
    assert [w.split(": ", 1)[1] for w in as_json["warnings"]] == [
        "Window february-30 can never open: no occurrence within five years of now"
    ]
    clean = cli("catalog", "validate", str(sample_dir), "--json").json()
    assert clean["warnings"] == []
