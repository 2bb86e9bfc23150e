"""Reading installed modules from a real PostgreSQL database shaped like Odoo's, and module
drift against the catalog and the recorded baseline (docs/odoo.md, "Module drift").

The tenant database is a scratch database on the test server (tests/odoo_databases.py),
reached through a libpq service file written in tmp_path, as changegate reaches tenants.
changegate's own store runs on SQLite and on PostgreSQL. Skips like every PostgreSQL test
when there is no server, and fails under CI=true.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from changegate.adapters import catalog_files, odoo_db
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeRequest, ChangeState, CloseCode
from changegate.domain.odoo import drift
from changegate.domain.odoo.addons import Addon, AddonSet
from changegate.errors import InvalidInput, NotFound, PermanentError, Refused, TemporaryError
from changegate.services import odoo_drift
from changegate.services.context import Context, actor_for
from changegate.store import changes as change_store
from changegate.store import db
from changegate.store.schema import audit_events
from tests import catalog_builders as cb
from tests.factories import change_spec
from tests.odoo_databases import OdooDatabase, scratch_database, write_service_file

MODULES: dict[str, tuple[str, str | None]] = {
    "base": ("installed", "17.0.1.3"),
    "account": ("installed", "17.0.1.2"),
    "sale_management": ("to upgrade", "17.0.1.0"),
    "mail": ("installed", None),
    "stock": ("to remove", "17.0.1.1"),
    "website": ("uninstalled", "17.0.1.0"),
    "crm": ("to install", None),
    "l10n_xx": ("uninstallable", None),
}


@pytest.fixture
def odoo(pg_server_url: str) -> Iterator[OdooDatabase]:
    with scratch_database(pg_server_url) as database:
        database.create_odoo_tables()
        yield database


@pytest.fixture
def service_file(pg_server_url: str, tmp_path: Path) -> Path:
    return write_service_file(tmp_path / "pg_service.conf", sa.make_url(pg_server_url), "pg-1")


# -- reading the database -----------------------------------------------------------------------


def test_reads_installed_modules_versions_checksums_and_active_languages(
    odoo: OdooDatabase, service_file: Path
) -> None:
    odoo.set_modules(MODULES)
    odoo.set_checksums({"account": "c1", "base": "c0", "stock": False})
    odoo.set_languages({"en_US": True, "nl_BE": True, "fr_FR": False})

    installed = odoo_db.read_installed("pg-1", odoo.name, service_file=service_file)

    # 'installed', 'to upgrade' and 'to remove' are installed (Odoo loads them); the rest not.
    assert installed.modules == {
        "account": "17.0.1.2",
        "base": "17.0.1.3",
        "mail": None,
        "sale_management": "17.0.1.0",
        "stock": "17.0.1.1",
    }
    assert installed.checksums == {"account": "c1", "base": "c0"}  # false: no folder then
    assert installed.languages == ("en_US", "nl_BE")
    assert installed.source == f"{odoo.name} on pg-1"


def test_pending_states_are_read_apart(odoo: OdooDatabase, service_file: Path) -> None:
    odoo.set_modules(MODULES)

    read = odoo_db.read("pg-1", odoo.name, service_file=service_file)

    assert read.pending == {
        "crm": "to install",
        "sale_management": "to upgrade",
        "stock": "to remove",
    }
    assert read.installed.checksums is None  # never stored


@pytest.mark.parametrize("stored", ["", None])
def test_no_checksums_when_the_parameter_is_absent_or_empty(
    odoo: OdooDatabase, service_file: Path, stored: str | None
) -> None:
    odoo.set_modules({"base": ("installed", "17.0.1.3")})
    odoo.set_checksums(stored)
    assert odoo_db.read_installed("pg-1", odoo.name, service_file=service_file).checksums is None


@pytest.mark.parametrize(
    ("stored", "says"),
    [("{not json", "is not valid JSON"), ('["a"]', "not a JSON object"), ('{"a": 1}', "of 'a'")],
)
def test_bad_checksums_name_the_database_and_the_key(
    odoo: OdooDatabase, service_file: Path, stored: str, says: str
) -> None:
    odoo.set_modules({"base": ("installed", "17.0.1.3")})
    odoo.set_checksums(stored)
    with pytest.raises(PermanentError) as caught:
        odoo_db.read_installed("pg-1", odoo.name, service_file=service_file)
    message = caught.value.message
    assert "module_auto_update.installed_checksums" in message
    assert odoo.name in message and says in message


def test_a_database_without_ir_module_module_is_not_odoo(
    pg_server_url: str, service_file: Path
) -> None:
    with (
        scratch_database(pg_server_url) as plain,
        pytest.raises(PermanentError, match="no ir_module_module table: not an Odoo"),
    ):
        odoo_db.read_installed("pg-1", plain.name, service_file=service_file)


def test_only_ir_module_module_is_required(pg_server_url: str, service_file: Path) -> None:
    with scratch_database(pg_server_url) as bare:
        bare.execute(
            "CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL, "
            "state varchar, latest_version varchar)"
        )
        bare.execute("INSERT INTO ir_module_module (name, state) VALUES ('base', 'installed')")
        installed = odoo_db.read_installed("pg-1", bare.name, service_file=service_file)
    assert installed.modules == {"base": None}
    assert installed.checksums is None and installed.languages == ()


def test_a_missing_database_is_a_permanent_error(service_file: Path) -> None:
    with pytest.raises(PermanentError, match='database "cg_no_such_db" does not exist'):
        odoo_db.read_installed("pg-1", "cg_no_such_db", service_file=service_file)


def test_an_unreachable_server_is_a_temporary_error(tmp_path: Path) -> None:
    path = tmp_path / "down.conf"
    path.write_text("[pg-1]\nhost=127.0.0.1\nport=1\nuser=nobody\n", encoding="utf-8")
    with pytest.raises(TemporaryError, match="cannot connect to acme on pg-1") as caught:
        odoo_db.read_installed("pg-1", "acme", service_file=path)
    assert caught.value.delay > 0


def test_an_unknown_service_names_the_file(service_file: Path) -> None:
    with pytest.raises(PermanentError) as caught:
        odoo_db.read_installed("pg-9", "acme", service_file=service_file)
    assert 'service "pg-9" not found' in caught.value.message
    assert str(service_file) in caught.value.message


def test_without_a_service_file_libpq_resolves_the_service(
    odoo: OdooDatabase, service_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odoo.set_modules({"base": ("installed", "17.0.1.3")})
    monkeypatch.setenv("PGSERVICEFILE", str(service_file))
    installed = odoo_db.read_installed("pg-1", odoo.name, service_file=None)
    assert installed.modules == {"base": "17.0.1.3"}


def test_the_read_is_bounded_by_the_statement_timeout(
    odoo: OdooDatabase, service_file: Path
) -> None:
    odoo.set_modules({"base": ("installed", "17.0.1.3")})
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with odoo.connect() as conn, conn.transaction():
            conn.execute("LOCK TABLE ir_module_module IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with pytest.raises(TemporaryError, match=r"took longer than 0\.2 s"):
            odoo_db.read("pg-1", odoo.name, service_file=service_file, timeout=0.2)
    finally:
        release.set()
        holder.join()


def test_the_transaction_is_read_only(
    odoo: OdooDatabase, service_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odoo.set_modules({"base": ("installed", "17.0.1.3")})

    def write_instead(conn: object, where: str) -> drift.DatabaseModules:
        conn.execute("UPDATE ir_module_module SET state = 'to upgrade'")  # type: ignore[attr-defined]
        raise AssertionError("the write went through")

    monkeypatch.setattr(odoo_db, "_read", write_instead)
    with pytest.raises(PermanentError, match="read-only transaction"):
        odoo_db.read("pg-1", odoo.name, service_file=service_file)


# -- the service file, read as libpq reads it ----------------------------------------------------


def test_service_sections_are_read_as_libpq_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "services.conf"
    path.write_text(
        "# shared servers\n"
        "[pg-0]\nhost=elsewhere\n\n"
        "[pg-1]\n  host=db.example\nport=5433\nport=9999\n# a comment\nuser=odoo\n"
        "[pg-2]\nhost=other\n"
        "[pg-1]\nhost=ignored\n",
        encoding="utf-8",
    )
    assert odoo_db.service_section(path, "pg-1") == {
        "host": "db.example",
        "port": "5433",  # the first value of a key counts
        "user": "odoo",
    }
    params = odoo_db.connection_params("pg-1", "acme", path)
    assert params["dbname"] == "acme" and params["host"] == "db.example"
    assert params["application_name"] == "changegate" and "service" not in params


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[pg-1]\nhost db.example\n", "syntax error in service file"),
        ("[pg-1]\nhostname=db.example\n", "line 2"),
        ("[pg-1]\nservice=pg-2\n", "nested service"),
    ],
)
def test_bad_service_files_are_refused(tmp_path: Path, body: str, says: str) -> None:
    path = tmp_path / "services.conf"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(PermanentError, match=says):
        odoo_db.service_section(path, "pg-1")


def test_a_missing_service_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cannot read the connection service file"):
        odoo_db.service_section(tmp_path / "nowhere.conf", "pg-1")


def test_names_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="not a valid database name"):
        odoo_db.connection_params("pg-1", "acme; drop", None)


# -- module drift: the service ------------------------------------------------------------------


@dataclass
class Rig:
    engine: sa.Engine
    catalog: catalog_model.Catalog
    odoo: OdooDatabase
    read: odoo_drift.Reader

    def ctx(self, person: str) -> Context:
        return Context(actor=actor_for(self.catalog, person))

    def check(self, addons: AddonSet | None = None) -> drift.ModuleDrift:
        return odoo_drift.check(
            self.engine, self.catalog, self.ctx("alice"), "acme", read=self.read, addons=addons
        )

    def record(self, person: str = "alice", change_id: str | None = None) -> odoo_drift.Recorded:
        return odoo_drift.record_snapshot(
            self.engine, self.catalog, self.ctx(person), "acme", read=self.read, change_id=change_id
        )

    def add_change(self, state: ChangeState, code: CloseCode | None, **spec: object) -> str:
        """A change stored as it is at the end of its lifecycle (its id)."""
        at = datetime(2026, 3, 1, tzinfo=UTC)
        change = ChangeRequest(
            0,
            change_spec(**spec),
            "alice",
            state=state,
            close_code=code,
            created_at=at,
            updated_at=at,
        )
        with db.transaction(self.engine) as conn:
            return change_store.insert(conn, change).id


APPROVED = {
    "base": ("installed", "17.0.1.3"),
    "account": ("installed", "17.0.1.2"),
    "sale_management": ("installed", "17.0.1.0"),
}


@pytest.fixture
def rig(database_url: str, odoo: OdooDatabase, service_file: Path, tmp_path: Path) -> Iterator[Rig]:
    files = cb.with_spec(
        cb.platform(), "Tenant", "acme", database={"service": "pg-1", "name": odoo.name}
    )
    catalog = catalog_files.load_catalog(cb.write(tmp_path / "platform", files))
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    odoo.set_modules(APPROVED)
    odoo.set_checksums({"account": "a1", "sale_management": "s1"})
    odoo.set_languages({"en_US": True})
    yield Rig(engine, catalog, odoo, odoo_drift.database_reader(service_file))
    engine.dispose()


def test_drift_against_the_catalog_alone(rig: Rig) -> None:
    rig.odoo.set_modules({**APPROVED, "website": ("installed", "17.0.1.0")})
    rig.odoo.execute("DELETE FROM ir_module_module WHERE name = 'account'")

    found = rig.check()

    assert found.found
    assert found.unapproved == ("website",)
    assert found.missing == ("account",)
    assert found.baseline is None
    assert found.source == f"{rig.odoo.name} on pg-1"


def test_recorded_baseline_then_unauthorized_differences(rig: Rig) -> None:
    rig.odoo.set_modules({**APPROVED, "mail": ("installed", "17.0.1.15")})  # a dependency
    assert rig.check().unapproved == ("mail",)

    recorded = rig.record()

    assert recorded.acknowledged.unapproved == ("mail",)
    assert recorded.baseline.change_id is None and recorded.baseline.seq is not None
    assert recorded.baseline.modules["mail"] == "17.0.1.15"
    with rig.engine.connect() as conn:
        event = conn.execute(
            sa.select(audit_events).where(audit_events.c.seq == recorded.baseline.seq)
        ).one()
    assert event.action == "odoo.modules-recorded" and event.object_type == "odoo-modules"
    assert event.object_id == "acme" and event.actor == "alice"
    assert event.after["checksums"] == {"account": "a1", "sale_management": "s1"}
    clean = rig.check()
    assert not clean.found, clean.as_dict()
    assert clean.baseline is not None and clean.baseline.seq == recorded.baseline.seq

    # Someone runs -u by hand, installs a module, updates code without a version bump.
    rig.odoo.set_modules(
        {
            **APPROVED,
            "mail": ("installed", "17.0.1.16"),
            "sale_management": ("to upgrade", "17.0.1.0"),
            "website": ("installed", "17.0.1.0"),
        }
    )
    rig.odoo.set_checksums({"account": "a2", "sale_management": "s1"})

    found = rig.check()

    assert found.unapproved == ("website",)
    assert [(v.module, v.direction) for v in found.versions] == [("mail", "upgraded")]
    assert found.checksums == ("account",)
    assert found.pending == {"sale_management": "to upgrade"}


def test_a_baseline_is_not_recorded_while_an_operation_is_unfinished(rig: Rig) -> None:
    rig.odoo.set_modules({**APPROVED, "crm": ("to install", None)})
    with pytest.raises(Refused, match=r"crm \(to install\)"):
        rig.record()
    assert odoo_drift.baseline(rig.engine, rig.ctx("alice"), "acme") is None


def test_recording_names_a_closed_successful_change_that_touches_the_tenant(rig: Rig) -> None:
    done = rig.add_change(ChangeState.CLOSED, CloseCode.SUCCESSFUL, targets={"tenants": ["acme"]})
    recorded = rig.record(change_id=done)
    assert recorded.baseline.change_id == done
    latest = odoo_drift.baseline(rig.engine, rig.ctx("lotte"), "acme")
    assert latest is not None and latest.change_id == done


def test_recording_refuses_changes_that_cannot_approve(rig: Rig) -> None:
    failed = rig.add_change(
        ChangeState.CLOSED, CloseCode.UNSUCCESSFUL, targets={"tenants": ["acme"]}
    )
    running = rig.add_change(ChangeState.IMPLEMENTING, None, targets={"tenants": ["acme"]})
    elsewhere = rig.add_change(
        ChangeState.CLOSED,
        CloseCode.SUCCESSFUL,
        targets={"tenants": [], "selectors": [{"tier": "no-such-tier"}]},
    )
    with pytest.raises(Refused, match=f"{failed} is closed unsuccessful"):
        rig.record(change_id=failed)
    with pytest.raises(Refused, match=f"{running} is implementing"):
        rig.record(change_id=running)
    with pytest.raises(Refused, match=f"{elsewhere} does not touch acme"):
        rig.record(change_id=elsewhere)
    with pytest.raises(NotFound):
        rig.record(change_id="CHG-99")
    assert odoo_drift.baseline(rig.engine, rig.ctx("alice"), "acme") is None


def test_recording_needs_the_transition_permission(rig: Rig) -> None:
    with pytest.raises(Refused, match="changes:transition"):
        rig.record(person="lotte")


def test_addons_approve_dependencies_and_must_match_the_series(rig: Rig) -> None:
    rig.odoo.set_modules({**APPROVED, "mail": ("installed", "17.0.1.15")})
    given = AddonSet(
        "17.0",
        {
            "account": Addon("account", "17.0.1.2", depends=("mail",)),
            "mail": Addon("mail", "17.0.1.15", depends=("base",)),
        },
    )
    assert rig.check(addons=given).unapproved == ()
    with pytest.raises(InvalidInput, match=r"series 16\.0"):
        rig.check(addons=AddonSet("16.0", {}))


def test_unknown_tenants_are_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound, match="no-such"):
        odoo_drift.check(rig.engine, rig.catalog, rig.ctx("alice"), "no-such", read=rig.read)
