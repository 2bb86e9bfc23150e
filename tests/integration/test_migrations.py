"""The Alembic migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from changegate.store import db
from changegate.store.schema import metadata


def test_migrated_schema_matches_the_declared_tables(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        head = conn.execute(sa.text("SELECT seq, hash FROM audit_head")).one()
        state = conn.execute(sa.text("SELECT digest FROM catalog_state")).one()
    engine.dispose()
    assert differences == []
    assert tuple(head) == (0, "0" * 64)
    assert state.digest == ""


def test_upgrade_is_idempotent_and_reports_head(database_url: str) -> None:
    engine = db.make_engine(database_url)
    first = db.upgrade(engine)
    second = db.upgrade(engine)
    assert first == second == db.head_revision()
    assert db.is_current(engine)
    engine.dispose()
