"""Pre-change backups, restores and DR drills against the real PostgreSQL and client tools.

The tenant database lives on the test server (`pg_server_url`): a fresh database with one
table and three rows per test. libpq reaches it through a service file written in tmp_path
(section `pg-1`, the catalog's PostgreSQL service id), password included: changegate never
sees it. changegate's own store is an SQLite file. Skips like every PostgreSQL test when
there is no server, and fails under CI=true.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from changegate.adapters import catalog_files, pgbackup
from changegate.domain import backups as backup_rules
from changegate.domain import catalog as catalog_model
from changegate.errors import Conflict, InvalidInput, NotFound, PermanentError, Refused
from changegate.services import backups as backup_service
from changegate.services import changes as change_service
from changegate.services.context import Context, actor_for
from changegate.store import db
from changegate.store.schema import audit_events, backup_drills
from tests import catalog_builders as cb
from tests.factories import change_spec


@dataclass
class Setup:
    engine: sa.Engine
    catalog: catalog_model.Catalog
    tool: pgbackup.PgBackup
    backup_dir: Path
    dbname: str
    server: sa.URL
    service_file: Path

    def ctx(self, person: str, at: datetime | None = None) -> Context:
        actor = actor_for(self.catalog, person)
        return Context(actor=actor) if at is None else Context(actor=actor, clock=lambda: at)

    def connect(self, dbname: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        url = self.server
        return psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=dbname or self.dbname,
            autocommit=True,
        )

    def rows(self, dbname: str | None = None) -> list[tuple[object, ...]]:
        with self.connect(dbname) as conn:
            return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()

    def databases(self, pattern: str) -> list[str]:
        with self.connect("postgres") as conn:
            found = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,)
            ).fetchall()
        return [str(row[0]) for row in found]


ROWS = [(1, "alpha"), (2, "beta"), (3, "gamma")]


def _service_file(path: Path, url: sa.URL, section: str = "pg-1") -> Path:
    path.write_text(
        f"[{section}]\nhost={url.host}\nport={url.port or 5432}\nuser={url.username}\n"
        f"password={url.password}\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def setup(pg_server_url: str, tmp_path: Path) -> Iterator[Setup]:
    server = sa.make_url(pg_server_url)
    dbname = f"cg_tenant_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(pg_server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    files = cb.with_spec(
        cb.platform(), "Tenant", "acme", database={"service": "pg-1", "name": dbname}
    )
    catalog = catalog_files.load_catalog(cb.write(tmp_path / "platform", files))
    engine = db.make_engine(f"sqlite:///{tmp_path / 'changegate.db'}")
    db.upgrade(engine)
    service_file = _service_file(tmp_path / "pg_service.conf", server)
    made = Setup(
        engine=engine,
        catalog=catalog,
        tool=pgbackup.PgBackup(service_file=service_file),
        backup_dir=tmp_path / "backups",
        dbname=dbname,
        server=server,
        service_file=service_file,
    )
    with made.connect() as conn:
        conn.execute("CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')")
    yield made
    engine.dispose()
    with admin.connect() as conn:
        for name in made.databases(f"{dbname}%") + made.databases("cg_drill_acme_%"):
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _take(setup: Setup, person: str = "alice", **kwargs: object) -> backup_rules.BackupRecord:
    return backup_service.take(
        setup.engine,
        setup.catalog,
        setup.ctx(person),
        "acme",
        tool=setup.tool,
        backup_dir=setup.backup_dir,
        **kwargs,  # type: ignore[arg-type]
    )


def _actions(setup: Setup) -> list[str]:
    with setup.engine.connect() as conn:
        return list(conn.execute(sa.select(audit_events.c.action)).scalars())


def test_take_writes_a_checksummed_restorable_archive_and_records_it(setup: Setup) -> None:
    record = _take(setup)

    path = Path(record.path)
    assert path.is_file() and path.parent == (setup.backup_dir / "acme").resolve()
    assert record.sha256 == pgbackup.sha256_of(path)
    assert record.size_bytes == path.stat().st_size > 0
    assert not list(path.parent.glob(".*.partial"))
    assert record.toc_tables == 1 and record.toc_entries >= 2
    assert setup.tool.verify(path) == pgbackup.Toc(record.toc_entries, record.toc_tables)
    assert (record.tenant, record.service, record.database) == ("acme", "pg-1", setup.dbname)
    assert record.filestore_ref is not None
    assert record.filestore_ref.startswith("s3://odoo-backups/acme@")
    assert record.taken_by == "alice"
    listed = backup_service.list_backups(setup.engine, setup.ctx("lotte"), tenant="acme")
    assert [found.id for found in listed] == [record.id]
    with setup.engine.connect() as conn:
        event = conn.execute(
            sa.select(audit_events).where(audit_events.c.action == "backup.taken")
        ).one()
    assert event.after["sha256"] == record.sha256
    assert event.after["size_bytes"] == record.size_bytes
    assert "password" not in str(event.after)


def test_a_backup_attaches_to_an_existing_change(setup: Setup) -> None:
    spec = change_spec(
        implementer=None, targets={"tenants": ["acme"], "selectors": []}, environment="prod"
    )
    change = change_service.create(setup.engine, setup.catalog, setup.ctx("alice"), spec)
    record = _take(setup, change_id=change.id)
    assert record.change_id == change.id
    listed = backup_service.list_backups(setup.engine, setup.ctx("alice"), change_id=change.id)
    assert [found.id for found in listed] == [record.id]
    with pytest.raises(NotFound):
        _take(setup, change_id="CHG-999")


def test_restore_into_the_original_brings_the_data_back(setup: Setup) -> None:
    record = _take(setup)
    with setup.connect() as conn:
        conn.execute("DELETE FROM items WHERE id = 2")
        conn.execute("UPDATE items SET name = 'changed' WHERE id = 1")
    assert setup.rows() == [(1, "changed"), (3, "gamma")]
    lingering = setup.connect()  # an application session: ended before the restore
    lingering.execute("SELECT 1")

    result = backup_service.restore(
        setup.engine, setup.catalog, setup.ctx("carol"), record.id, tool=setup.tool
    )

    assert setup.rows() == ROWS
    assert result["target"] == "original" and result["database"] == setup.dbname
    with pytest.raises(psycopg.OperationalError):
        lingering.execute("SELECT 1")
    lingering.close()
    assert "backup.restored" in _actions(setup)


def test_restore_into_a_copy_leaves_the_original_alone(setup: Setup) -> None:
    record = _take(setup)
    with setup.connect() as conn:
        conn.execute("DELETE FROM items")
    copy = f"{setup.dbname}_copy"

    result = backup_service.restore(
        setup.engine, setup.catalog, setup.ctx("alice"), record.id, tool=setup.tool, into=copy
    )

    assert result == {**result, "target": "copy", "database": copy}
    assert setup.rows(copy) == ROWS
    assert setup.rows() == []
    with pytest.raises(Conflict, match="already exists"):
        backup_service.restore(
            setup.engine, setup.catalog, setup.ctx("alice"), record.id, tool=setup.tool, into=copy
        )
    with pytest.raises(InvalidInput, match="own database"):
        backup_service.restore(
            setup.engine,
            setup.catalog,
            setup.ctx("alice"),
            record.id,
            tool=setup.tool,
            into=setup.dbname,
        )


def test_drill_restores_checks_times_and_drops_the_scratch_database(setup: Setup) -> None:
    _take(setup)
    drill = backup_service.drill(
        setup.engine, setup.catalog, setup.ctx("alice"), "acme", tool=setup.tool
    )

    assert drill.passed and drill.rpo_met and drill.rto_met, drill.reasons
    assert (drill.tables, drill.rows) == (1, 3)
    assert drill.restore_ms is not None and drill.restore_ms < 60 * 60_000
    assert (drill.rpo_minutes, drill.rto_minutes) == (15, 60)
    assert drill.scratch_database.startswith("cg_drill_acme_")
    assert setup.databases("cg_drill_acme_%") == []
    assert "backup.drilled" in _actions(setup)
    listed = backup_service.list_drills(setup.engine, setup.ctx("lotte"), tenant="acme")
    assert [found.id for found in listed] == [drill.id]


def test_a_drill_of_a_backup_older_than_the_rpo_fails_with_the_reason(setup: Setup) -> None:
    _take(setup)
    later = datetime.now(UTC) + timedelta(hours=2)
    drill = backup_service.drill(
        setup.engine, setup.catalog, setup.ctx("alice", later), "acme", tool=setup.tool
    )
    assert not drill.passed and not drill.rpo_met and drill.rto_met
    assert "over the tier's RPO of 15 min" in drill.reasons[0]
    assert setup.databases("cg_drill_acme_%") == []


def test_a_backup_file_changed_after_it_was_taken_is_never_restored(setup: Setup) -> None:
    record = _take(setup)
    with Path(record.path).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(PermanentError, match="changed since it was taken"):
        backup_service.restore(
            setup.engine, setup.catalog, setup.ctx("carol"), record.id, tool=setup.tool
        )
    drill = backup_service.drill(
        setup.engine, setup.catalog, setup.ctx("alice"), "acme", tool=setup.tool
    )
    assert not drill.passed and drill.restore_ms is None
    assert any("changed since it was taken" in reason for reason in drill.reasons)
    with setup.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(backup_drills)).scalar() == 1


def test_clear_errors_for_missing_tools_unknown_tenants_and_services(
    setup: Setup, tmp_path: Path
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    missing = pgbackup.PgBackup(service_file=setup.service_file, bin_dir=empty)
    with pytest.raises(pgbackup.ToolMissing, match=r"pg_dump not found in .*postgresql-client"):
        backup_service.take(
            setup.engine,
            setup.catalog,
            setup.ctx("alice"),
            "acme",
            tool=missing,
            backup_dir=setup.backup_dir,
        )
    with pytest.raises(NotFound, match="unknown tenant 'nobody'"):
        backup_service.take(
            setup.engine,
            setup.catalog,
            setup.ctx("alice"),
            "nobody",
            tool=setup.tool,
            backup_dir=setup.backup_dir,
        )
    other = _service_file(tmp_path / "other.conf", setup.server, section="pg-2")
    unknown_service = pgbackup.PgBackup(service_file=other)
    with pytest.raises(PermanentError, match=r'service "pg-1" not found.*CHANGEGATE_PG_SERVICE'):
        backup_service.take(
            setup.engine,
            setup.catalog,
            setup.ctx("alice"),
            "acme",
            tool=unknown_service,
            backup_dir=setup.backup_dir,
        )
    assert not list((setup.backup_dir / "acme").glob("*"))
    with pytest.raises(NotFound, match="no backup to drill"):
        backup_service.drill(
            setup.engine, setup.catalog, setup.ctx("alice"), "acme", tool=setup.tool
        )
    assert "backup.taken" not in _actions(setup)


def test_a_wrong_password_is_reported_without_echoing_it(setup: Setup, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.conf"
    wrong.write_text(
        f"[pg-1]\nhost={setup.server.host}\nport={setup.server.port}\n"
        f"user={setup.server.username}\npassword=not-the-password-xyz\n",
        encoding="utf-8",
    )
    with pytest.raises(PermanentError) as raised:
        pgbackup.PgBackup(service_file=wrong).dump("pg-1", setup.dbname, tmp_path / "out")
    assert "not-the-password-xyz" not in raised.value.message
    assert "password authentication failed" in raised.value.message
    assert not list((tmp_path / "out").glob("*"))


def test_permissions(setup: Setup) -> None:
    with pytest.raises(Refused, match=r"lotte .* may not changes:transition"):
        _take(setup, person="lotte")
    record = _take(setup)
    with pytest.raises(Refused, match=r"alice .* may not backups:restore") as refused:
        backup_service.restore(
            setup.engine, setup.catalog, setup.ctx("alice"), record.id, tool=setup.tool
        )
    assert "platform-lead" in (refused.value.override_by or "")
    with pytest.raises(Refused):
        backup_service.restore(
            setup.engine,
            setup.catalog,
            setup.ctx("lotte"),
            record.id,
            tool=setup.tool,
            into=f"{setup.dbname}_x",
        )
    with pytest.raises(Refused):
        backup_service.drill(
            setup.engine, setup.catalog, setup.ctx("lotte"), "acme", tool=setup.tool
        )
