"""Scheduling and start enforcement on the real store (SQLite and PostgreSQL), against the
sample platform's calendar at fixed instants.

The sample's prod clusters open weekly maintenance windows (eu-west Sunday 02:00-06:00
Brussels, us-east Sunday 01:00 New York, ap-southeast Saturday 22:00 Singapore); a global
year-end freeze runs 2026-12-18 to 2027-01-04 (emergency changes and security patches
exempt).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeState
from changegate.errors import Conflict, InvalidInput, InvalidTransition, Refused
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import calendar as calendar_service
from changegate.services import changes as change_service
from changegate.services.context import Context, actor_for
from tests.factories import change_spec
from tests.lifecycle import approve_until_authorized, drive

S = ChangeState
TUESDAY = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


def at(catalog: catalog_model.Catalog, person: str, when: datetime) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: when)


def authorized(
    app: bootstrap.App, catalog: catalog_model.Catalog, when: datetime, **overrides: Any
) -> str:
    """A change filed, assessed and approved at `when`, waiting in Authorize."""
    change = change_service.create(
        app.engine, catalog, at(catalog, "alice", when), change_spec(**overrides)
    )
    as_ = lambda person: at(catalog, person, when)  # noqa: E731
    drive(app.engine, catalog, change.id, S.AUTHORIZE, as_=as_)
    approve_until_authorized(app.engine, catalog, change.id, as_)
    return change.id


def one_tenant(catalog: catalog_model.Catalog, cluster_prefix: str) -> str:
    return next(
        t.id
        for t in catalog.tenants.values()
        if t.spec.cluster.startswith(cluster_prefix) and t.spec.environment == "prod"
    )


def test_schedule_books_the_next_window_and_audits_it(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    tenant = one_tenant(catalog, "eu-west")
    change_id = authorized(app, catalog, TUESDAY, targets={"tenants": [tenant]})
    booked = calendar_service.schedule(
        app.engine, catalog, at(catalog, "bob", TUESDAY), change_id, duration=timedelta(hours=2)
    )
    assert booked.change.state is S.SCHEDULED
    (wave,) = booked.plan.waves
    # Sunday 8 November 2026, 02:00 in Brussels (CET, UTC+1).
    assert wave.start == datetime(2026, 11, 8, 1, 0, tzinfo=UTC)
    assert wave.end == wave.start + timedelta(hours=2)
    assert wave.tenants == (tenant,)
    events = audit_service.events(app.engine, at(catalog, "frank", TUESDAY), object_id=change_id)
    assert [e.action for e in events][-2:] == ["change.transitioned", "change.scheduled"]
    assert events[-1].after["waves"][0]["start"] == "2026-11-08T01:00:00.000000Z"
    # Rescheduling later moves the slot, is audited with what it replaces, keeps the state.
    later = datetime(2026, 11, 9, tzinfo=UTC)
    again = calendar_service.schedule(
        app.engine, catalog, at(catalog, "bob", TUESDAY), change_id, not_before=later
    )
    assert again.rescheduled and again.change.state is S.SCHEDULED
    assert again.plan.waves[0].start == datetime(2026, 11, 15, 1, 0, tzinfo=UTC)
    events = audit_service.events(app.engine, at(catalog, "frank", TUESDAY), object_id=change_id)
    assert events[-1].action == "change.rescheduled"
    assert events[-1].before["waves"][0]["start"] == "2026-11-08T01:00:00.000000Z"


def test_a_freeze_pushes_the_slot_past_it_unless_the_change_is_exempt(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    tenant = one_tenant(catalog, "eu-west")
    before_freeze = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
    normal = authorized(app, catalog, before_freeze, targets={"tenants": [tenant]})
    booked = calendar_service.schedule(
        app.engine, catalog, at(catalog, "bob", before_freeze), normal
    )
    # Sundays 20 and 27 December and 3 January fall in the year-end freeze.
    assert booked.plan.waves[0].start == datetime(2027, 1, 10, 1, 0, tzinfo=UTC)
    emergency = authorized(
        app, catalog, before_freeze, type="emergency", targets={"tenants": [tenant]}
    )
    urgent = calendar_service.schedule(
        app.engine, catalog, at(catalog, "bob", before_freeze), emergency
    )
    assert urgent.plan.waves[0].start == datetime(2026, 12, 20, 1, 0, tzinfo=UTC)


def test_tenants_in_different_windows_are_planned_in_waves(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = authorized(app, catalog, TUESDAY)  # the gold tenants, on three clusters
    booked = calendar_service.schedule(app.engine, catalog, at(catalog, "bob", TUESDAY), change_id)
    waves = booked.plan.waves
    assert len(waves) >= 2
    assert all(a.end <= b.start for a, b in itertools.pairwise(waves))
    planned = sorted(t for wave in waves for t in wave.tenants)
    gold = sorted(
        t.id
        for t in catalog.tenants.values()
        if t.spec.tier == "gold" and t.spec.environment == "prod"
    )
    assert planned == gold
    for wave in waves:
        for tenant in wave.tenants:
            decided = calendar_service.check(
                catalog,
                at(catalog, "bob", TUESDAY),
                tenant,
                wave.start,
                change_type="normal",
                category="module-update",
            )
            assert decided.allowed, (tenant, wave.start, decided.reason)
            assert wave.reasons[tenant]


def test_a_database_change_is_not_booked_over_another_on_the_same_server(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    tenant = one_tenant(catalog, "eu-west")
    database = catalog.tenants[tenant].spec.database.service
    first = authorized(
        app, catalog, TUESDAY, category="database-config", targets={"services": [database]}
    )
    second = authorized(
        app, catalog, TUESDAY, category="database-config", targets={"services": [database]}
    )
    bob = at(catalog, "bob", TUESDAY)
    one = calendar_service.schedule(app.engine, catalog, bob, first, duration=timedelta(hours=4))
    two = calendar_service.schedule(app.engine, catalog, bob, second, duration=timedelta(hours=4))
    # Overlap on one database service blocks (the default): the second takes the next window.
    assert two.plan.waves[0].start >= one.plan.waves[-1].end
    shown = calendar_service.schedule_of(app.engine, catalog, bob, second)
    assert not [c for c in shown.conflicts if c.blocking]


def test_no_slot_within_the_horizon_is_refused_naming_the_tenants(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    tenant = one_tenant(catalog, "eu-west")
    change_id = authorized(app, catalog, TUESDAY, targets={"tenants": [tenant]})
    with pytest.raises(Refused, match=f"no slot for 1 tenant\\(s\\): {tenant}"):
        calendar_service.schedule(
            app.engine, catalog, at(catalog, "bob", TUESDAY), change_id, horizon=timedelta(days=2)
        )
    assert change_service.get(app.engine, at(catalog, "bob", TUESDAY), change_id).state is (
        S.AUTHORIZE
    )
    for horizon in (timedelta(0), timedelta(days=367)):
        with pytest.raises(InvalidInput, match="at most 366 days"):
            calendar_service.schedule(
                app.engine, catalog, at(catalog, "bob", TUESDAY), change_id, horizon=horizon
            )


def test_only_an_authorized_change_is_scheduled(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = at(catalog, "alice", TUESDAY)
    draft = change_service.create(app.engine, catalog, alice, change_spec())
    with pytest.raises(InvalidTransition):
        calendar_service.schedule(app.engine, catalog, alice, draft.id)
    waiting = change_service.create(app.engine, catalog, alice, change_spec())
    drive(app.engine, catalog, waiting.id, S.AUTHORIZE, as_=lambda p: at(catalog, p, TUESDAY))
    with pytest.raises(Refused, match="is not authorized"):
        calendar_service.schedule(app.engine, catalog, at(catalog, "bob", TUESDAY), waiting.id)


def test_nothing_starts_outside_the_calendar_without_an_override(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    tenant = one_tenant(catalog, "eu-west")
    change_id = authorized(app, catalog, TUESDAY, targets={"tenants": [tenant]})
    booked = calendar_service.schedule(app.engine, catalog, at(catalog, "bob", TUESDAY), change_id)
    slot = booked.plan.waves[0].start
    check = calendar_service.may_start(app.engine, catalog, at(catalog, "bob", TUESDAY), change_id)
    assert not check.allowed
    assert check.override_roles == ("platform-lead",)
    with pytest.raises(Refused, match="may not start now") as refused:
        change_service.transition(
            app.engine, catalog, at(catalog, "bob", TUESDAY), change_id, S.IMPLEMENTING
        )
    assert refused.value.override_by == "platform-lead"
    # The implementer cannot override; someone without the role cannot either.
    with pytest.raises(Refused, match="requester or implementer"):
        change_service.transition(
            app.engine,
            catalog,
            at(catalog, "bob", TUESDAY),
            change_id,
            S.IMPLEMENTING,
            override_calendar="customer asked",
        )
    with pytest.raises(Refused, match="does not hold platform-lead"):
        change_service.transition(
            app.engine,
            catalog,
            at(catalog, "dave", TUESDAY),
            change_id,
            S.IMPLEMENTING,
            override_calendar="customer asked",
        )
    # A platform lead may, saying why; the event records it.
    started = change_service.transition(
        app.engine,
        catalog,
        at(catalog, "carol", TUESDAY),
        change_id,
        S.IMPLEMENTING,
        override_calendar="customer asked for it today",
    )
    assert started.state is S.IMPLEMENTING
    event = audit_service.events(app.engine, at(catalog, "frank", TUESDAY), object_id=change_id)[-1]
    assert event.after["calendar"]["allowed"] is False
    assert event.after["calendar"]["override"] == {
        "by": "carol",
        "roles": ["platform-lead"],
        "reason": "customer asked for it today",
    }
    # Inside the slot no override is needed.
    other = authorized(app, catalog, TUESDAY, targets={"tenants": [tenant]})
    calendar_service.schedule(app.engine, catalog, at(catalog, "bob", TUESDAY), other)
    inside = at(catalog, "bob", slot + timedelta(minutes=5))
    assert calendar_service.may_start(app.engine, catalog, inside, other).allowed


def test_a_freeze_declared_after_scheduling_still_holds_the_start(
    app: bootstrap.App, catalog: catalog_model.Catalog, sample_dir: Any, tmp_path: Any
) -> None:
    import shutil

    from changegate.adapters.catalog_files import load_catalog

    tenant = one_tenant(catalog, "eu-west")
    change_id = authorized(app, catalog, TUESDAY, targets={"tenants": [tenant]})
    booked = calendar_service.schedule(app.engine, catalog, at(catalog, "bob", TUESDAY), change_id)
    slot = booked.plan.waves[0].start
    shutil.copytree(sample_dir, tmp_path / "platform")
    with (tmp_path / "platform" / "windows.yaml").open("a") as handle:
        handle.write(
            "---\napiVersion: changegate.io/v1\nkind: Window\nmetadata: {name: late-freeze}\n"
            "spec:\n  type: deny\n  purpose: freeze\n  reason: Audit week.\n  timezone: UTC\n"
            f"  start: '{slot.date().isoformat()}'\n  end: '{slot.date().isoformat()}'\n"
            f"  scope: {{tenants: [{tenant}]}}\n"
        )
    frozen = load_catalog(tmp_path / "platform")
    inside = at(frozen, "bob", slot + timedelta(minutes=5))
    check = calendar_service.may_start(app.engine, frozen, inside, change_id)
    assert not check.allowed
    assert check.override_roles == ("cab",)
    with pytest.raises(Refused, match="late-freeze"):
        change_service.transition(app.engine, frozen, inside, change_id, S.IMPLEMENTING)
    shown = calendar_service.schedule_of(app.engine, frozen, inside, change_id)
    assert [c.kind.value for c in shown.conflicts] == ["in-freeze"]
    assert shown.conflicts[0].blocking
    # The conflict feeds the risk score of the change's next assessment.
    assessed = assessment_service.assess(app.engine, frozen, inside, change_id)
    factor = next(f for f in assessed.factors if f.name == "calendar-conflicts")
    assert factor.points > 0
    assert "late-freeze" in factor.reason
    before = assessment_service.assess(app.engine, catalog, inside, change_id)
    calm = next(f for f in before.factors if f.name == "calendar-conflicts")
    assert calm.points == 0


def test_the_calendar_view_and_feed_show_windows_and_booked_waves(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    tenant = one_tenant(catalog, "eu-west")
    change_id = authorized(app, catalog, TUESDAY, targets={"tenants": [tenant]})
    booked = calendar_service.schedule(app.engine, catalog, at(catalog, "bob", TUESDAY), change_id)
    slot = booked.plan.waves[0]
    frank = at(catalog, "frank", TUESDAY)
    week = (TUESDAY, TUESDAY + timedelta(days=7))
    shown = calendar_service.view(
        app.engine, catalog, frank, start=week[0], end=week[1], tenant=tenant
    )
    kinds = [(item["kind"], item["id"]) for item in shown["items"]]
    assert ("window", "maintenance-eu-west") in kinds
    assert ("change", change_id) in kinds
    change_item = next(item for item in shown["items"] if item["kind"] == "change")
    assert change_item["start"] == slot.as_dict()["start"]
    assert [item["start"] for item in shown["items"]] == sorted(i["start"] for i in shown["items"])
    # Another tenant's calendar does not show the change.
    other = one_tenant(catalog, "us-east")
    theirs = calendar_service.view(
        app.engine, catalog, frank, start=week[0], end=week[1], tenant=other
    )
    assert change_id not in [item["id"] for item in theirs["items"]]
    data = calendar_service.feed(
        app.engine, catalog, frank, start=week[0], end=week[1], tenant=tenant
    )
    assert f"SUMMARY:{change_id} wave 1/1".encode() in data.replace(b"\r\n ", b"")
    with pytest.raises(InvalidInput):
        calendar_service.view(app.engine, catalog, frank, start=week[1], end=week[0])


def test_a_freeze_asking_for_consent_holds_an_exempted_change_until_the_customer_consents(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    # wayne-construction's month-end close (the last 2 business days, Europe/Brussels) lets
    # emergency changes through with the consent of its customer approver.
    tenant = "wayne-construction"
    freeze = catalog.windows["month-end-close-europe-brussels"]
    assert freeze.spec.exempt.consent and tenant in freeze.spec.scope.tenants
    before = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    change_id = authorized(app, catalog, before, type="emergency", targets={"tenants": [tenant]})
    calendar_service.schedule(app.engine, catalog, at(catalog, "bob", before), change_id)
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # in the close, outside any window
    check = calendar_service.may_start(app.engine, catalog, at(catalog, "bob", monday), change_id)
    assert [tenant for tenant, _ in check.missing_consent] == [tenant]
    assert check.override_roles == ("cab", "platform-lead")
    assert "changegate change consent" in check.reason
    # A platform lead's override of the window does not stand in for the consent.
    with pytest.raises(Refused, match="does not hold cab"):
        change_service.transition(
            app.engine,
            catalog,
            at(catalog, "carol", monday),
            change_id,
            S.IMPLEMENTING,
            override_calendar="outage",
        )
    customer = next(
        p.id
        for p in catalog.people.values()
        if "customer-approver" in p.spec.roles and tenant in p.spec.tenants
    )
    stranger = next(
        p.id
        for p in catalog.people.values()
        if "customer-approver" in p.spec.roles and tenant not in p.spec.tenants
    )
    with pytest.raises(Refused, match="requester or implementer"):
        calendar_service.consent(
            app.engine, catalog, at(catalog, "alice", monday), change_id, tenant
        )
    with pytest.raises(Refused, match="not a customer approver of tenant"):
        calendar_service.consent(
            app.engine, catalog, at(catalog, stranger, monday), change_id, tenant
        )
    with pytest.raises(InvalidInput, match="does not affect tenant"):
        calendar_service.consent(
            app.engine, catalog, at(catalog, customer, monday), change_id, "litware-tools"
        )
    given = calendar_service.consent(
        app.engine, catalog, at(catalog, customer, monday), change_id, tenant, "go ahead"
    )
    assert (given["tenant"], given["person"], given["comment"]) == (tenant, customer, "go ahead")
    with pytest.raises(Conflict):
        calendar_service.consent(
            app.engine, catalog, at(catalog, customer, monday), change_id, tenant
        )
    check = calendar_service.may_start(app.engine, catalog, at(catalog, "bob", monday), change_id)
    assert check.missing_consent == ()
    assert check.override_roles == ("platform-lead",)
    started = change_service.transition(
        app.engine,
        catalog,
        at(catalog, "carol", monday),
        change_id,
        S.IMPLEMENTING,
        override_calendar="outage",
    )
    assert started.state is S.IMPLEMENTING
    actions = [
        e.action
        for e in audit_service.events(app.engine, at(catalog, "frank", monday), object_id=change_id)
    ]
    assert actions.count("change.consented") == 1
