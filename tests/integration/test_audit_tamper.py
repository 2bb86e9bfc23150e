"""Tampering with stored audit rows is detected, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.adapters import signing
from changegate.domain import audit, canonical
from changegate.domain import catalog as catalog_model
from changegate.errors import InvalidInput
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.store.schema import audit_events, audit_head
from tests.conftest import ctx_for
from tests.factories import change_spec


@pytest.fixture
def trail(app: bootstrap.App, catalog: catalog_model.Catalog) -> bootstrap.App:
    """An app whose audit trail holds a catalog load and a few change events (7 in all)."""
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.submit(app.engine, catalog, alice, change.id)
    change_service.transition(app.engine, catalog, bob, change.id, "on-hold")
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
    """A forged event, sealed and linked to #4, pushed in as #5: the next event breaks."""
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
        fourth = conn.execute(sa.select(audit_events).where(audit_events.c.seq == 4)).one()
        forged = audit.seal(
            audit.AuditEvent(
                seq=5,
                occurred_at=fourth.occurred_at,
                actor="mallory",
                actor_name="Mallory",
                action="change.approved",
                object_type="change",
                object_id="CHG-1",
                before=None,
                after={"approved": True},
                request_id=None,
                prev_hash=fourth.hash,
            )
        )
        conn.execute(
            sa.insert(audit_events).values(
                seq=forged.seq,
                occurred_at=forged.occurred_at,
                actor=forged.actor,
                actor_name=forged.actor_name,
                action=forged.action,
                object_type=forged.object_type,
                object_id=forged.object_id,
                before=forged.before,
                after=forged.after,
                request_id=forged.request_id,
                prev_hash=forged.prev_hash,
                hash=forged.hash,
            )
        )
    report = verify(trail)
    assert not report.ok
    # #5 is a consistent forgery; the old #5, now #6, carries its old seq in its hash.
    assert report.first_bad_seq == 6
    assert "altered" in (report.problem or "")


def test_cut_tail_is_caught_by_the_head_row(trail: bootstrap.App) -> None:
    execute(trail, sa.delete(audit_events).where(audit_events.c.seq >= 6))
    report = verify(trail)
    assert not report.ok
    assert report.first_bad_seq == 6
    assert "cut from the end" in (report.problem or "")


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
    # Cut the tail and rewind the head row too: only the checkpoint can tell now.
    execute(trail, sa.delete(audit_events).where(audit_events.c.seq >= 6))
    with trail.engine.begin() as conn:
        fifth = conn.execute(sa.select(audit_events.c.hash).where(audit_events.c.seq == 5)).one()
        conn.execute(sa.update(audit_head).values(seq=5, hash=fifth.hash))
    assert verify(trail).ok
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


def test_export_period_is_the_same_instant_whatever_the_offset(trail: bootstrap.App) -> None:
    frank = ctx_for(trail.catalog(), "frank")
    with trail.engine.connect() as conn:
        third = conn.execute(
            sa.select(audit_events.c.occurred_at).where(audit_events.c.seq == 3)
        ).scalar_one()
    cut = canonical.as_utc(third)
    in_utc = list(audit_service.export(trail.engine, frank, since=None, until=cut, fmt="jsonl"))
    shifted = cut.astimezone(timezone(timedelta(hours=5)))
    in_plus5 = list(
        audit_service.export(trail.engine, frank, since=None, until=shifted, fmt="jsonl")
    )
    assert [json.loads(x)["seq"] for x in in_utc] == [1, 2]
    assert [json.loads(x)["seq"] for x in in_plus5] == [1, 2]


def test_export_refuses_naive_or_reversed_periods(trail: bootstrap.App) -> None:
    frank = ctx_for(trail.catalog(), "frank")
    with pytest.raises(InvalidInput, match="offset"):
        audit_service.export(
            trail.engine, frank, since=datetime(2026, 1, 1), until=None, fmt="jsonl"
        )
    with pytest.raises(InvalidInput, match="after since"):
        audit_service.export(
            trail.engine,
            frank,
            since=datetime(2026, 2, 1, tzinfo=UTC),
            until=datetime(2026, 1, 1, tzinfo=UTC),
            fmt="csv",
        )
