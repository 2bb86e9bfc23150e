"""Tampering with stored audit rows is detected, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.adapters import signing
from changegate.domain import audit
from changegate.domain import catalog as catalog_model
from changegate.errors import InvalidInput
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.store.schema import audit_events
from tests.conftest import ctx_for
from tests.factories import change_spec


@pytest.fixture
def trail(app: bootstrap.App, catalog: catalog_model.Catalog) -> bootstrap.App:
    """An app whose audit trail holds a catalog load and a few change events (7 in all)."""
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.submit(app.engine, alice, change.id)
    change_service.transition(app.engine, bob, change.id, "authorize")
    change_service.comment(app.engine, bob, change.id, "looks fine")
    change_service.create(app.engine, catalog, alice, change_spec(title="second"))
    change_service.edit(app.engine, catalog, alice, "CHG-2", {"title": "second, renamed"})
    return app


def verify(app: bootstrap.App, **kwargs: Any) -> audit.ChainReport:
    return audit_service.verify(app.engine, ctx_for(app.catalog(), "frank"), **kwargs)


def execute(app: bootstrap.App, statement: sa.Executable) -> None:
    with app.engine.begin() as conn:
        conn.execute(statement)


def test_untouched_trail_verifies(trail: bootstrap.App) -> None:
    report = verify(trail)
    assert report.ok and report.count == 7


def test_updated_row_is_named(trail: bootstrap.App) -> None:
    execute(trail, sa.update(audit_events).where(audit_events.c.seq == 4).values(actor="mallory"))
    report = verify(trail)
    assert not report.ok and report.first_bad_seq == 4
    assert "altered" in (report.problem or "")


def test_updated_json_payload_is_named(trail: bootstrap.App) -> None:
    execute(
        trail,
        sa.update(audit_events)
        .where(audit_events.c.seq == 3)
        .values(after={"state": "scheduled", "version": 99}),
    )
    assert verify(trail).first_bad_seq == 3


def test_deleted_row_is_named(trail: bootstrap.App) -> None:
    execute(trail, sa.delete(audit_events).where(audit_events.c.seq == 3))
    report = verify(trail)
    assert report.first_bad_seq == 3
    assert "missing" in (report.problem or "")


def test_inserted_row_is_named(trail: bootstrap.App) -> None:
    # Make room by shifting later rows up, then insert a forged event with a fresh hash.
    with trail.engine.begin() as conn:
        rows = conn.execute(
            sa.select(audit_events)
            .where(audit_events.c.seq >= 5)
            .order_by(audit_events.c.seq.desc())
        ).all()
        for row in rows:
            conn.execute(
                sa.update(audit_events).where(audit_events.c.seq == row.seq).values(seq=row.seq + 1)
            )
        forged = conn.execute(sa.select(audit_events).where(audit_events.c.seq == 4)).one()
        conn.execute(
            sa.insert(audit_events).values(
                {**forged._mapping, "seq": 5, "action": "change.approved"}
            )
        )
    report = verify(trail)
    assert not report.ok
    assert report.first_bad_seq == 5


def test_reordered_rows_are_named(trail: bootstrap.App) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.update(audit_events).where(audit_events.c.seq == 3).values(seq=-3))
        conn.execute(sa.update(audit_events).where(audit_events.c.seq == 4).values(seq=3))
        conn.execute(sa.update(audit_events).where(audit_events.c.seq == -3).values(seq=4))
    assert verify(trail).first_bad_seq == 3


def test_truncation_is_caught_by_a_signed_checkpoint(trail: bootstrap.App, tmp_path: Path) -> None:
    signing.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    key = signing.load_private(tmp_path / "k.pem")
    frank = ctx_for(trail.catalog(), "frank")
    point = audit_service.checkpoint(trail.engine, frank, key)
    assert point["checkpoint"]["count"] == 7
    public = key.public_key()
    assert verify(trail, checkpoint=point, verify_key=public).ok
    execute(trail, sa.delete(audit_events).where(audit_events.c.seq >= 6))
    assert verify(trail).ok  # the chain alone cannot tell
    report = verify(trail, checkpoint=point, verify_key=public)
    assert not report.ok
    assert report.first_bad_seq == 6
    assert "truncated" in (report.problem or "")


def test_forged_checkpoint_is_refused(trail: bootstrap.App, tmp_path: Path) -> None:
    signing.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    key = signing.load_private(tmp_path / "k.pem")
    point = audit_service.checkpoint(trail.engine, ctx_for(trail.catalog(), "frank"), key)
    point["checkpoint"]["count"] = 3
    with pytest.raises(InvalidInput, match="signature"):
        verify(trail, checkpoint=point, verify_key=key.public_key())


def test_export_is_streamed_and_audited(trail: bootstrap.App) -> None:
    frank = ctx_for(trail.catalog(), "frank")
    lines = list(audit_service.export(trail.engine, frank, since=None, until=None, fmt="jsonl"))
    assert len(lines) == 8  # the export itself is recorded before the rows are read
    assert '"action":"audit.exported"' in lines[-1]
    csv_lines = list(audit_service.export(trail.engine, frank, since=None, until=None, fmt="csv"))
    assert csv_lines[0].startswith("seq,occurred_at,actor")
    assert len(csv_lines) == 1 + 9
