"""Shared fixtures: databases on SQLite and PostgreSQL, a sample catalog, an App, contexts.

PostgreSQL: see tests/pgserver.py (CHANGEGATE_TEST_PG_URL, or the local Debian cluster started
as root). Each test gets a fresh database cloned from a migrated template
(CREATE DATABASE ... TEMPLATE), in milliseconds. Without PostgreSQL the postgres-parametrized
tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import os
import shutil
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
from tests import pgserver

# One template per pytest process, so parallel runs never drop each other's template.
TEMPLATE_DB = f"changegate_template_{os.getpid()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder so groups can be selected: -m unit, -m 'not e2e'."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for marker in ("unit", "integration", "api", "e2e"):
            if marker in parts:
                item.add_marker(marker)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = pgserver.server_url()
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
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))
    engine.dispose()


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


@pytest.fixture(scope="session")
def calm_sample_dir(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """The sample platform without its windows: the calendar allows every change at every
    instant. For tests of whole lifecycles through real processes, which cannot set the
    clock, so that they do not depend on the date they run. Do not modify it."""
    directory = tmp_path_factory.mktemp("calm-platform")
    shutil.copytree(sample_dir, directory, dirs_exist_ok=True)
    (directory / "windows.yaml").unlink()
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
