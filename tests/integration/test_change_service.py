"""Change services on the real store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeFilter, ChangeState
from changegate.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Refused,
    StaleWrite,
)
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.store.schema import audit_events
from changegate.store.schema import changes as changes_table
from tests.conftest import ctx_for
from tests.factories import change_spec
from tests.lifecycle import drive

S = ChangeState


def audit_count(app: bootstrap.App) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one())


def test_lifecycle_draft_to_closed_is_audited(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    assert change.id == "CHG-1"
    assert change.state is S.DRAFT
    assert change.catalog_digest == catalog.digest
    drive(app.engine, catalog, change.id, S.REVIEW)
    closed = change_service.transition(
        app.engine,
        catalog,
        bob,
        change.id,
        "closed",
        close_code="successful",
        close_notes="all good",
    )
    assert closed.state is S.CLOSED
    assert closed.version == 7
    stored = change_service.get(app.engine, alice, "CHG-1")
    assert stored == closed
    history = audit_service.events(app.engine, alice, object_id="CHG-1")
    assert [e.action for e in history if e.action != "change.approved"] == [
        "change.created",
        "change.transitioned",  # -> assess
        "change.assessed",
        "change.transitioned",  # -> authorize
        "change.authorized",
        "change.transitioned",  # -> scheduled
        "change.scheduled",  # its waves
        "change.transitioned",  # -> implementing
        "change.transitioned",  # -> review
        "change.transitioned",  # -> closed
    ]
    scheduled = [e for e in history if e.after.get("state") == "scheduled"]
    assert scheduled[0].after["authorization"]["via"] == "approvals"
    assert history[-1].after["close_code"] == "successful"
    assert history[1].actor == "alice"
    assert history[1].actor_name
    assert bob.request_id in {e.request_id for e in history}
    report = audit_service.verify(app.engine, ctx_for(catalog, "frank"))
    assert report.ok, report.problem


def test_illegal_transition_changes_nothing(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    before = audit_count(app)
    with pytest.raises(InvalidTransition) as caught:
        change_service.transition(app.engine, catalog, alice, change.id, "implementing")
    assert caught.value.allowed == ["assess", "canceled", "on-hold"]
    assert change_service.get(app.engine, alice, change.id).version == change.version
    assert audit_count(app) == before


def test_stale_version_is_refused_and_nothing_is_written(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.edit(app.engine, catalog, alice, change.id, {"title": "v2"}, expected_version=1)
    before = audit_count(app)
    with pytest.raises(StaleWrite) as caught:
        change_service.edit(
            app.engine, catalog, alice, change.id, {"title": "v3"}, expected_version=1
        )
    assert caught.value.current == 2
    with pytest.raises(StaleWrite):
        change_service.transition(
            app.engine, catalog, alice, change.id, "assess", expected_version=1
        )
    stored = change_service.get(app.engine, alice, change.id)
    assert (stored.spec.title, stored.version, stored.state) == ("v2", 2, S.DRAFT)
    assert audit_count(app) == before


def test_withdrawal_and_hold_resume(app: bootstrap.App, catalog: catalog_model.Catalog) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    drive(app.engine, catalog, change.id, S.AUTHORIZE)
    rejected = change_service.transition(
        app.engine, catalog, alice, change.id, "draft", reason="no tested rollback"
    )
    assert rejected.state is S.DRAFT
    events = audit_service.events(app.engine, alice, object_id=change.id)
    assert events[-1].action == "change.withdrawn"
    assert events[-1].after["reason"] == "no tested rollback"
    change_service.submit(app.engine, catalog, alice, change.id)
    held = change_service.transition(app.engine, catalog, alice, change.id, "on-hold")
    assert held.held_from is S.ASSESS
    resumed = change_service.resume(app.engine, catalog, alice, change.id)
    assert resumed.state is S.ASSESS
    with pytest.raises(Refused, match="not on-hold"):
        change_service.resume(app.engine, catalog, alice, change.id)


def test_unchanged_edit_writes_nothing(app: bootstrap.App, catalog: catalog_model.Catalog) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.submit(app.engine, catalog, alice, change.id)
    before = audit_count(app)
    same = change_service.edit(app.engine, catalog, alice, change.id, {"title": change.spec.title})
    assert same.version == 2
    assert audit_count(app) == before


def test_permission_is_checked_before_the_state(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    frank = ctx_for(catalog, "frank")
    with pytest.raises(Refused, match="may not changes:transition"):
        change_service.submit(app.engine, catalog, frank, "CHG-404")
    with pytest.raises(Refused, match="may not changes:transition"):
        change_service.resume(app.engine, catalog, frank, "CHG-404")


def test_sqlite_readers_do_not_block_writers(sqlite_url: str, sample_dir: Any) -> None:
    """A long read (an export, a verify) must not hold SQLite's write lock."""
    from changegate.settings import Settings

    app = bootstrap.create(Settings(database_url=sqlite_url, catalog_dir=sample_dir))
    catalog = app.catalog()
    alice = ctx_for(catalog, "alice")
    with app.engine.connect() as reader:
        reader.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one()
        assert reader.in_transaction()
        created = change_service.create(app.engine, catalog, alice, change_spec())
    assert created.id == "CHG-1"
    app.engine.dispose()


def test_catalog_references_are_checked(app: bootstrap.App, catalog: catalog_model.Catalog) -> None:
    alice = ctx_for(catalog, "alice")
    with pytest.raises(InvalidInput) as caught:
        change_service.create(
            app.engine,
            catalog,
            alice,
            change_spec(
                environment="moon",
                targets={"tenants": ["no-such-tenant"], "clusters": ["nowhere"]},
                implementer="frank",
            ),
        )
    fields = {p.field for p in caught.value.problems}
    assert {"environment", "targets.tenants[0]", "targets.clusters[0]", "implementer"} <= fields
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(changes_table)).scalar() == 0


def test_permissions_hold_in_the_service(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    auditor = ctx_for(catalog, "frank")
    with pytest.raises(Refused, match="may not changes:create"):
        change_service.create(app.engine, catalog, auditor, change_spec())
    alice = ctx_for(catalog, "alice")
    with pytest.raises(Refused, match="audit:read"):
        audit_service.verify(app.engine, alice)


def test_list_filters_and_pages(app: bootstrap.App, catalog: catalog_model.Catalog) -> None:
    alice = ctx_for(catalog, "alice")
    tenant = next(iter(catalog.tenants))
    for index in range(5):
        spec = change_spec(
            title=f"change {index}_%",
            targets={"tenants": [tenant]} if index % 2 else {"selectors": [{"tier": "gold"}]},
        )
        created = change_service.create(app.engine, catalog, alice, spec)
        if index < 2:
            change_service.submit(app.engine, catalog, alice, created.id)
    page, total = change_service.list_changes(app.engine, alice, ChangeFilter(limit=2))
    assert total == 5
    assert [c.id for c in page] == ["CHG-5", "CHG-4"]
    by_state, total = change_service.list_changes(
        app.engine, alice, ChangeFilter(states=("assess",))
    )
    assert total == 2
    assert {c.id for c in by_state} == {"CHG-1", "CHG-2"}
    by_tenant, total = change_service.list_changes(app.engine, alice, ChangeFilter(tenant=tenant))
    assert {c.id for c in by_tenant} == {"CHG-2", "CHG-4"}
    by_text, total = change_service.list_changes(app.engine, alice, ChangeFilter(text="3_%"))
    assert [c.id for c in by_text] == ["CHG-4"]


def test_comments_are_stored_and_audited(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice, dave = ctx_for(catalog, "alice"), ctx_for(catalog, "dave")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.comment(app.engine, dave, change.id, "CAB: please attach the staging run")
    listed = change_service.comments(app.engine, alice, change.id)
    assert [(c["author"], c["body"]) for c in listed] == [
        ("dave", "CAB: please attach the staging run")
    ]
    assert audit_service.events(app.engine, alice, object_id=change.id)[-1].action == (
        "change.commented"
    )
    with pytest.raises(NotFound):
        change_service.comment(app.engine, dave, "CHG-999", "hello")


def test_catalog_reload_is_audited_once_per_digest(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    with app.engine.connect() as conn:
        loads = conn.execute(
            sa.select(audit_events.c.action).where(audit_events.c.action == "catalog.loaded")
        ).all()
    assert len(loads) == 1  # the first load of this catalog
    second = bootstrap.create(app.settings)
    second.catalog()  # same digest: not recorded again
    second.reload_catalog(ctx_for(catalog, "carol"))  # explicit: recorded
    with app.engine.connect() as conn:
        actors = (
            conn.execute(
                sa.select(audit_events.c.actor).where(audit_events.c.action == "catalog.loaded")
            )
            .scalars()
            .all()
        )
    assert actors == ["system", "carol"]
    with app.engine.connect() as conn:
        ids = set(
            conn.execute(
                sa.select(audit_events.c.object_id).where(audit_events.c.action == "catalog.loaded")
            ).scalars()
        )
    assert ids == {"catalog"}  # the folder path goes into `after`, whatever its length
    second.engine.dispose()


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
def test_concurrent_writers_on_postgres_one_wins(pg_url: str, sample_dir: Any) -> None:
    """Real concurrent sessions: each round exactly one writer wins, the other conflicts."""
    from changegate.settings import Settings

    app = bootstrap.create(Settings(database_url=pg_url, catalog_dir=sample_dir))
    catalog = app.catalog()
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    for round_number in range(10):
        current = change_service.get(app.engine, alice, change.id)
        events_before = audit_count(app)
        results = _race(
            [
                lambda v=current.version, r=round_number: change_service.edit(
                    app.engine,
                    catalog,
                    alice,
                    change.id,
                    {"title": f"alice {r}"},
                    expected_version=v,
                ),
                lambda v=current.version, r=round_number: change_service.edit(
                    app.engine, catalog, bob, change.id, {"title": f"bob {r}"}, expected_version=v
                ),
            ]
        )
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1, results
        assert len(losers) == 1 and isinstance(losers[0], Conflict), results
        stored = change_service.get(app.engine, alice, change.id)
        assert stored.version == current.version + 1
        assert stored.spec.title == winners[0].spec.title
        assert audit_count(app) == events_before + 1
    assert audit_service.verify(app.engine, ctx_for(catalog, "frank")).ok
    app.engine.dispose()


@pytest.mark.postgres
def test_sql_guard_catches_a_writer_that_commits_while_we_wait(
    pg_url: str, sample_dir: Any
) -> None:
    """A writer holding the row commits a new version while our UPDATE waits on its lock."""
    from changegate.settings import Settings

    app = bootstrap.create(Settings(database_url=pg_url, catalog_dir=sample_dir))
    catalog = app.catalog()
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    other = app.engine.connect()
    transaction = other.begin()
    other.execute(sa.select(changes_table).where(changes_table.c.id == 1).with_for_update())
    outcome: list[Any] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            _attempt(
                lambda: change_service.edit(
                    app.engine, catalog, alice, change.id, {"title": "late"}, expected_version=1
                )
            )
        )
    )
    worker.start()
    _wait_for_lock_waiter(app)  # it has read version 1 and now waits on the row lock
    other.execute(
        sa.update(changes_table).where(changes_table.c.id == 1).values(version=2, title="first")
    )
    transaction.commit()
    other.close()
    worker.join()
    assert isinstance(outcome[0], StaleWrite)
    stored = change_service.get(app.engine, alice, change.id)
    assert (stored.version, stored.spec.title) == (2, change.spec.title)  # spec JSON untouched
    app.engine.dispose()


def _wait_for_lock_waiter(app: bootstrap.App) -> None:
    waiting = sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
    for _ in range(3000):
        with app.engine.connect() as conn:
            if conn.execute(waiting).scalar_one():
                return
        threading.Event().wait(0.01)
    pytest.fail("the writer never blocked on the row lock")


def _attempt(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        return exc


def test_free_texts_refuse_nul_on_every_backend(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    before = audit_count(app)
    with pytest.raises(InvalidInput) as caught:
        change_service.transition(app.engine, catalog, alice, change.id, "assess", reason="a\x00b")
    assert caught.value.problems[0].field == "reason"
    with pytest.raises(InvalidInput) as comment:
        change_service.comment(app.engine, alice, change.id, "hello\x00")
    assert comment.value.problems[0].field == "body"
    with pytest.raises(InvalidInput) as key:
        change_service.edit(app.engine, catalog, alice, change.id, {"ti\x00tle": "x"})
    assert key.value.problems[0].field == "ti\\0tle"
    assert audit_count(app) == before
