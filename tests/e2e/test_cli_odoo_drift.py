"""`changegate odoo drift` through the console script, against a real PostgreSQL database
shaped like Odoo's (tests/odoo_databases.py), reached through CHANGEGATE_PG_SERVICE_FILE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import catalog_builders as cb
from tests.e2e.test_cli_harness import Cli, make_cli
from tests.odoo_databases import OdooDatabase, scratch_database, write_service_file


@pytest.fixture
def odoo(pg_server_url: str) -> Iterator[OdooDatabase]:
    with scratch_database(pg_server_url, prefix="cg_e2e_odoo") as database:
        database.create_odoo_tables()
        database.set_modules(
            {
                "base": ("installed", "17.0.1.3"),
                "mail": ("installed", "17.0.1.15"),
                "account": ("installed", "17.0.1.2"),
                "sale_management": ("installed", "17.0.1.0"),
            }
        )
        database.set_checksums({"account": "a1", "mail": "m1"})
        database.set_languages({"en_US": True})
        yield database


@pytest.fixture
def odoo_cli(tmp_path: Path, pg_server_url: str, odoo: OdooDatabase) -> Cli:
    files = cb.with_spec(
        cb.platform(), "Tenant", "acme", database={"service": "pg-1", "name": odoo.name}
    )
    catalog = cb.write(tmp_path / "platform", files)
    cli = make_cli(tmp_path, catalog)
    service_file = write_service_file(
        tmp_path / "pg_service.conf", sa.make_url(pg_server_url), "pg-1"
    )
    cli.env["CHANGEGATE_PG_SERVICE_FILE"] = str(service_file)
    return cli


def test_drift_record_and_drift_again(odoo_cli: Cli, odoo: OdooDatabase) -> None:
    first = odoo_cli("--as", "alice", "odoo", "drift", "acme", "--json", expect=2).json()
    assert first["found"] is True
    assert first["unapproved"] == ["mail"]  # a dependency, neither listed nor recorded
    assert first["baseline"] is None and first["installed"] == 4

    human = odoo_cli("--as", "alice", "odoo", "drift", "acme", expect=2)
    assert "unapproved: mail" in human.stdout
    assert "notice: no baseline recorded" in human.stderr

    addons = odoo_cli.workdir / "addons"
    for name, depends in {"account": ["mail"], "mail": ["base"]}.items():
        (addons / name).mkdir(parents=True)
        manifest = {"name": name, "version": "17.0.1.0", "depends": depends}
        (addons / name / "__manifest__.py").write_text(repr(manifest), encoding="utf-8")
    with_addons = odoo_cli("--as", "alice", "odoo", "drift", "acme", "--addons", str(addons))
    assert "no drift" in with_addons.stdout  # mail: needed by account

    usage = odoo_cli("--as", "alice", "odoo", "drift", "acme", "--change", "CHG-1", expect=1)
    assert "--change goes with --record" in usage.stderr
    refused = odoo_cli("--as", "lotte", "odoo", "drift", "acme", "--record", expect=2)
    assert "changes:transition" in refused.stderr

    recorded = odoo_cli("--as", "alice", "odoo", "drift", "acme", "--record")
    assert "recorded the baseline of acme (no change named): 4 modules" in recorded.stdout

    clean = odoo_cli("--as", "alice", "odoo", "drift", "acme")
    assert "no drift" in clean.stdout
    assert "baseline: recorded" in clean.stdout and "by alice (no change named" in clean.stdout

    odoo.execute("UPDATE ir_module_module SET latest_version = '17.0.1.16' WHERE name = 'mail'")
    after = odoo_cli("--as", "alice", "odoo", "drift", "acme", "--json", expect=2).json()
    assert after["versions"] == [
        {
            "module": "mail",
            "approved": "17.0.1.15",
            "installed": "17.0.1.16",
            "direction": "upgraded",
        }
    ]
    assert after["baseline"]["recorded_by"] == "alice"


def test_a_database_that_is_not_odoo_is_a_clear_error(odoo_cli: Cli, odoo: OdooDatabase) -> None:
    odoo.execute("DROP TABLE ir_module_module")
    failed = odoo_cli("--as", "alice", "odoo", "drift", "acme", "--json", expect=5)
    assert "not an Odoo database" in failed.json()["error"]["message"]
