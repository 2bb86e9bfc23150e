"""Shared fixtures: databases on SQLite and PostgreSQL, a sample catalog, an App, contexts.

PostgreSQL: CHANGEGATE_TEST_PG_URL (a server URL, e.g. postgresql://u:p@127.0.0.1:5432/postgres)
is used when set. Otherwise, as root on Debian, the local cluster is started with
`pg_ctlcluster 15 main start` and a password role is created for the tests. Each test gets a
fresh database cloned from a migrated template (CREATE DATABASE ... TEMPLATE), in milliseconds.
Without PostgreSQL the postgres-parametrized tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.adapters import sample_platform
from changegate.domain import catalog as catalog_model
from changegate.services.context import Context, actor_for
from changegate.settings import Settings
from changegate.store import db

PG_ROLE = "changegate_test"
PG_PASSWORD = "changegate_test_pw"  # noqa: S105 - a throwaway local test role
TEMPLATE_DB = "changegate_template"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder so groups can be selected: -m unit, -m 'not e2e'."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for marker in ("unit", "integration", "api", "e2e"):
            if marker in parts:
                item.add_marker(marker)


def _start_local_postgres() -> str | None:
    """Start Debian's cluster as root and make a password role; None when that can't work."""
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        return None
    run = subprocess.run  # noqa: S603 - fixed argv, no shell
    status = run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    line = next((ln for ln in status.stdout.splitlines() if ln.startswith("15 ")), None)
    if line is None:
        return None
    port = line.split()[2]
    if "online" not in line:
        run(["pg_ctlcluster", "15", "main", "start"], check=False, capture_output=True)
    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_ROLE}') THEN "
        f"CREATE ROLE {PG_ROLE} LOGIN SUPERUSER PASSWORD '{PG_PASSWORD}'; END IF; END $$;"
    )
    made = run(["runuser", "-u", "postgres", "--", "psql", "-p", port, "-qAtc", sql],
               capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return None
    return f"postgresql+psycopg://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{port}/postgres"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get("CHANGEGATE_TEST_PG_URL") or _start_local_postgres()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs PostgreSQL: set CHANGEGATE_TEST_PG_URL or run as root on Debian")
        pytest.skip("no PostgreSQL: set CHANGEGATE_TEST_PG_URL")
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    # Build the migrated template once per run; each test clones it.
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{TEMPLATE_DB}"'))
    template_engine = db.make_engine(_with_db(url, TEMPLATE_DB))
    db.upgrade(template_engine)
    template_engine.dispose()
    engine.dispose()
    return url


def _with_db(url: str, name: str) -> str:
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"cg_test_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(pg_server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"'))
    yield _with_db(pg_server_url, name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'changegate.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Run the test on both backends."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample platform from `changegate init`, written once per run. Do not modify it."""
    directory = tmp_path_factory.mktemp("platform")
    sample_platform.write_sample(directory, force=True)
    return directory


@pytest.fixture
def settings(database_url: str, sample_dir: Path) -> Settings:
    return Settings(database_url=database_url, catalog_dir=sample_dir)


@pytest.fixture
def app(settings: Settings) -> Iterator[bootstrap.App]:
    """A wired App on the parametrized backend (migrated), with the sample catalog."""
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    engine.dispose()
    application = bootstrap.create(settings)
    yield application
    application.engine.dispose()


@pytest.fixture
def catalog(app: bootstrap.App) -> catalog_model.Catalog:
    return app.catalog()


def ctx_for(catalog: catalog_model.Catalog, person: str) -> Context:
    """A service context acting as `person` (a sample-platform person id)."""
    return Context(actor=actor_for(catalog, person))
