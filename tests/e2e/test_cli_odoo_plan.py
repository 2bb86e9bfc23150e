"""`changegate odoo plan` through the console script: plans from synthetic addons folders for
the sample's tenants (JSON and text), the Jobs written per tenant and passing `changegate
check`, a plan recorded on a change, errors and exit codes; and installed modules read from
a real PostgreSQL database shaped like Odoo's (docs/odoo-plan.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from changegate.adapters import catalog_files
from changegate.domain import catalog as catalog_model
from tests import catalog_builders as cb
from tests.e2e.test_cli_harness import Cli, make_cli
from tests.factories import change_yaml
from tests.odoo_databases import OdooDatabase, scratch_database, write_service_file
from tests.unit.test_odoo_jobs import KUBECTL, guardrails

MIGRATE = "def migrate(cr, version):\n    cr.execute('SELECT 1')\n"


def write_addons(
    root: Path,
    versions: dict[str, str],
    depends: dict[str, list[str]],
    scripts: Iterable[str] = (),
) -> Path:
    """A synthetic addons path written for changegate's tests."""
    for name, version in versions.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {"name": name, "version": version, "depends": depends.get(name, [])}
        (folder / "__manifest__.py").write_text(repr(manifest) + "\n")
        (folder / "__init__.py").write_text("")
    for relative in scripts:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MIGRATE)
    return root


def sample_releases(
    tmp_path: Path, catalog: catalog_model.Catalog, series: str
) -> tuple[Path, Path]:
    """Two releases holding every module the sample's tenants of `series` have installed;
    the second bumps `account` with a migration script (`account_followup` depends on it)."""
    modules = sorted(
        {
            m
            for e in catalog.tenants.values()
            if e.spec.odoo.series == series
            for m in e.spec.odoo.modules
        }
    )
    depends = {m: ([] if m == "base" else ["base"]) for m in modules}
    depends["account_followup"] = ["account"]
    old = dict.fromkeys(modules, f"{series}.1.0")
    before = write_addons(tmp_path / "r1", old, depends)
    after = write_addons(
        tmp_path / "r2",
        {**old, "account": f"{series}.1.1"},
        depends,
        [f"account/migrations/{series}.1.1/pre-rename_moves.py"],
    )
    return before, after


@pytest.fixture
def setup(cli: Cli, sample_dir: Path, tmp_path: Path) -> tuple[Cli, str, Path, Path]:
    catalog = catalog_files.load_catalog(sample_dir)
    tenant = next(
        t
        for t, e in sorted(catalog.tenants.items())
        if e.spec.odoo.series == "17.0" and e.spec.environment == "prod"
    )
    before, after = sample_releases(tmp_path, catalog, "17.0")
    return cli, tenant, before, after


def test_plan_json_and_text(setup: tuple[Cli, str, Path, Path]) -> None:
    cli, tenant, before, after = setup
    args = ("--as", "alice", "odoo", "plan", "--from", str(before), "--to", str(after))
    body = cli(*args, "--tenant", tenant, "--json").json()
    (found,) = body["plans"]
    assert found["tenant"] == tenant and found["installed_from"] == "catalog"
    assert [(u["module"], u["reason"]) for u in found["update"]] == [
        ("account", "version 17.0.1.0 -> 17.0.1.1"),
        ("account_followup", "depends on an updated module"),
    ]
    assert found["update"][0]["scripts"] == {"pre": ["migrations/17.0.1.1/pre-rename_moves.py"]}
    assert found["irreversible"] is True and found["errors"] == []
    effects = body["effects"]
    assert effects["category"] == "database-migration"
    assert effects["backup_required"] and effects["window_required"]
    assert "change" not in body

    text = cli(*args, "--tenant", tenant, columns=200)
    assert f"{tenant} (" in text.stdout and "installed from catalog" in text.stdout
    assert "update   account: version 17.0.1.0 -> 17.0.1.1; 1 script(s)" in text.stdout
    assert "pre  migrations/17.0.1.1/pre-rename_moves.py" in text.stdout
    assert "update   account_followup: depends on an updated module" in text.stdout
    assert "category database-migration; backup required: yes; window required: yes" in text.stdout

    # --all: one series per run.
    mixed = cli(*args, "--all", "--json", expect=1).json()
    assert "several Odoo series" in mixed["error"]["message"]
    every = cli(*args, "--all", "--series", "17.0", "--json").json()
    assert len(every["plans"]) > 1
    assert all(p["from_series"] == "17.0" and not p["errors"] for p in every["plans"])


def test_plan_writes_the_jobs_and_they_pass_the_policy_check(
    setup: tuple[Cli, str, Path, Path], sample_dir: Path
) -> None:
    cli, tenant, before, after = setup
    jobs = cli.workdir / "jobs"
    args = ("--as", "alice", "odoo", "plan", "--from", str(before), "--to", str(after))
    done = cli(*args, "--tenant", tenant, "--jobs", str(jobs), "--kubectl-image", KUBECTL)
    assert "the upgrade Jobs run each tenant's current catalog image" in done.stderr
    written = jobs / tenant / "odoo-upgrade.yaml"
    drain, upgrade = yaml.safe_load_all(written.read_text())
    assert drain["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    assert upgrade["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "0"
    command = upgrade["spec"]["template"]["spec"]["containers"][0]["command"]
    # --policy version runs exactly the plan: odoo -u the modules.
    assert command[0] == "odoo" and command[-2:] == ["-u", "account,account_followup"]

    catalog = catalog_files.load_catalog(sample_dir)
    namespace = catalog.tenants[tenant].spec.namespace
    (jobs / tenant / "guardrails.yaml").write_text(guardrails(namespace))
    checked = cli("check", str(jobs / tenant), "--env", "prod", "--tenant", tenant)
    assert checked.stdout.rstrip().endswith("PASSED")  # warnings only: exit 0
    assert "(0 errors," in checked.stdout

    # --policy checksum: click-odoo-update decides, as the plan did; --image sets the image.
    image = "registry.example.com/odoo/odoo:17.0-20261201@sha256:" + "d" * 64
    cli(*args, "--tenant", tenant, "--jobs", str(jobs), "--policy", "checksum", "--image", image)
    _, upgrade = yaml.safe_load_all(written.read_text())
    container = upgrade["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][0] == "click-odoo-update"
    assert container["image"] == image
    bad = cli(*args, "--tenant", tenant, "--jobs", str(jobs), "--tool", "kubectl", expect=1)
    assert "--tool is click-odoo-update or odoo" in bad.stderr


def test_plan_records_itself_on_a_change(setup: tuple[Cli, str, Path, Path]) -> None:
    cli, tenant, before, after = setup
    (cli.workdir / "change.yaml").write_text(
        change_yaml(category="security-patch", targets={"tenants": [tenant], "selectors": []})
    )
    created = cli("--as", "alice", "change", "create", "-f", "change.yaml", "--json").json()
    change_id = created["id"]
    assert created["category"] == "security-patch"
    args = ("--as", "alice", "odoo", "plan", "--from", str(before), "--to", str(after))
    body = cli(*args, "--tenant", tenant, "--change", change_id, "--json").json()
    recorded = body["change"]
    assert recorded["id"] == change_id
    assert recorded["category"] == "database-migration"
    assert recorded["rollback_plan"]["irreversible"] is True
    assert "<!-- changegate odoo plan -->" in recorded["implementation_plan"]
    shown = cli("--as", "alice", "change", "show", change_id, "--json").json()
    assert shown["category"] == "database-migration"
    text = cli(*args, "--tenant", tenant, "--change", change_id)
    assert f"{change_id}: database-migration, recorded the plan" in text.stdout


def test_plan_errors_exit_1(setup: tuple[Cli, str, Path, Path], sample_dir: Path) -> None:
    cli, tenant, before, after = setup
    catalog = catalog_files.load_catalog(sample_dir)
    gone = next(
        m
        for m in catalog.tenants[tenant].spec.odoo.modules
        if m not in ("base", "account", "account_followup")
    )
    (after / gone / "__manifest__.py").unlink()  # no manifest: not an addon any more
    args = ("--as", "alice", "odoo", "plan", "--from", str(before), "--to", str(after))
    body = cli(*args, "--tenant", tenant, "--json", expect=1).json()
    assert body["plans"][0]["errors"] == [f"{gone} is installed but missing from the new addons"]
    assert body["effects"]["errors"] == body["plans"][0]["errors"]
    human = cli(*args, "--tenant", tenant, expect=1)
    assert f"error    {gone} is installed but missing from the new addons" in human.stdout

    missing = cli(*args, "--json", expect=1).json()
    assert "--tenant T" in missing["error"]["message"]
    missing_from = ("--from", str(cli.workdir / "no-such-folder"), "--to", str(after))
    nowhere = cli("--as", "alice", "odoo", "plan", *missing_from, "--tenant", tenant, expect=1)
    assert "not an addons folder" in nowhere.stderr
    unknown = cli(*args, "--tenant", "no-such-tenant", expect=None)
    assert unknown.code not in (0, 2) and "no-such-tenant" in unknown.stderr


# ---------------------------------------------------------------------------- from a database


@pytest.fixture
def odoo(pg_server_url: str) -> Iterator[OdooDatabase]:
    with scratch_database(pg_server_url, prefix="cg_e2e_plan") as database:
        database.create_odoo_tables()
        database.set_modules(
            {
                "base": ("installed", "17.0.1.3"),
                "mail": ("installed", "17.0.1.15"),
                "account": ("installed", "17.0.1.2"),
                "sale_management": ("installed", "17.0.1.0"),
                "crm": ("uninstalled", "17.0.1.0"),
            }
        )
        database.set_languages({"en_US": True, "fr_BE": True, "de_DE": False})
        yield database


def test_plan_from_the_tenants_database(
    tmp_path: Path, pg_server_url: str, odoo: OdooDatabase
) -> None:
    files = cb.with_spec(
        cb.platform(), "Tenant", "acme", database={"service": "pg-1", "name": odoo.name}
    )
    cli = make_cli(tmp_path, cb.write(tmp_path / "platform", files))
    cli.env["CHANGEGATE_PG_SERVICE_FILE"] = str(
        write_service_file(tmp_path / "pg_service.conf", sa.make_url(pg_server_url), "pg-1")
    )
    depends = {"mail": ["base"], "account": ["mail"], "sale_management": ["account"]}
    recorded = {"base": "17.0.1.3", "mail": "17.0.1.15", "account": "17.0.1.2"}
    before = write_addons(tmp_path / "r1", {**recorded, "sale_management": "17.0.1.0"}, depends)
    after = write_addons(
        tmp_path / "r2",
        {**recorded, "account": "17.0.1.3", "sale_management": "17.0.1.0"},
        depends,
        [
            "account/migrations/17.0.1.2/pre-done_already.py",
            "account/migrations/17.0.1.3/post-fill.py",
        ],
    )
    body = cli(
        "--as", "alice", "odoo", "plan", "--from", str(before), "--to", str(after),
        "--tenant", "acme", "--from-db", "--json",
    ).json()  # fmt: skip
    (found,) = body["plans"]
    assert odoo.name in found["installed_from"]
    assert [(u["module"], u["installed"], u["new"]) for u in found["update"]] == [
        ("account", "17.0.1.2", "17.0.1.3"),
        ("sale_management", "17.0.1.0", "17.0.1.0"),
    ]
    # The database's recorded version decides: the 17.0.1.2 scripts ran already.
    assert found["update"][0]["scripts"] == {"post": ["migrations/17.0.1.3/post-fill.py"]}
    assert body["effects"]["category"] == "database-migration"
