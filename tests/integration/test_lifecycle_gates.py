"""The lifecycle gates on the real store (SQLite and PostgreSQL): assessed before Authorize,
authorized before Scheduled, approvals voided by material edits and lapsed by expiry, the
emergency path and standard templates.

The sample change (`tests.factories.change_spec`) is requested by alice, implemented by bob,
targets the gold tenants in prod and assesses high: 1 platform-lead (carol) and 1 cab (dave,
ivan, peggy).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from changegate import bootstrap
from changegate.adapters.catalog_files import load_catalog
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeState
from changegate.errors import InvalidInput, Refused
from changegate.services import approvals as approval_service
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services.context import Context, actor_for
from tests.conftest import ctx_for
from tests.factories import change_spec
from tests.lifecycle import approve_until_authorized, drive

S = ChangeState
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(catalog: catalog_model.Catalog, person: str, when: datetime) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: when)


def events(app: bootstrap.App, catalog: catalog_model.Catalog, change_id: str) -> list[Any]:
    return audit_service.events(app.engine, ctx_for(catalog, "frank"), object_id=change_id)


def one_tenant(catalog: catalog_model.Catalog, tier: str = "gold") -> str:
    return next(t.id for t in catalog.tenants.values() if t.spec.tier == tier)


def test_authorize_needs_an_assessment_of_the_current_content(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    change_service.submit(app.engine, catalog, alice, change.id)
    with pytest.raises(Refused, match="no assessment of its current content"):
        change_service.transition(app.engine, catalog, bob, change.id, S.AUTHORIZE)
    assessment_service.assess(app.engine, catalog, alice, change.id)
    # An edit in Assess leaves the assessment behind: assess again.
    change_service.edit(app.engine, catalog, alice, change.id, {"title": "Second thoughts"})
    with pytest.raises(Refused, match="assess it first"):
        change_service.transition(app.engine, catalog, bob, change.id, S.AUTHORIZE)
    assessment_service.assess(app.engine, catalog, alice, change.id)
    moved = change_service.transition(app.engine, catalog, bob, change.id, S.AUTHORIZE)
    assert moved.state is S.AUTHORIZE


def test_scheduling_needs_the_change_authorized(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    drive(app.engine, catalog, change.id, S.AUTHORIZE)
    with pytest.raises(Refused) as refused:
        change_service.transition(app.engine, catalog, bob, change.id, S.SCHEDULED)
    assert "is not authorized: waiting for" in str(refused.value)
    assert refused.value.override_by == "carol, dave, ivan, peggy"
    approval_service.approve(app.engine, catalog, ctx_for(catalog, "dave"), change.id)
    with pytest.raises(Refused, match="platform-lead: 1 more of 1"):
        change_service.transition(app.engine, catalog, bob, change.id, S.SCHEDULED)
    approval_service.approve(app.engine, catalog, ctx_for(catalog, "carol"), change.id)
    moved = change_service.transition(app.engine, catalog, bob, change.id, S.SCHEDULED)
    assert moved.state is S.SCHEDULED
    scheduled = events(app, catalog, change.id)[-2]
    assert scheduled.after["authorization"]["via"] == "approvals"
    assert events(app, catalog, change.id)[-1].action == "change.scheduled"
    assert scheduled.after["authorization"]["valid_until"] is not None
    # The refusals wrote nothing.
    assert [e.action for e in events(app, catalog, change.id)].count("change.transitioned") == 3


def test_expired_approvals_lapse_the_authorization(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change = change_service.create(app.engine, catalog, at(catalog, "alice", T0), change_spec())
    drive(app.engine, catalog, change.id, S.AUTHORIZE, as_=lambda p: at(catalog, p, T0))
    approve_until_authorized(app.engine, catalog, change.id, lambda p: at(catalog, p, T0))
    fourteen_days = T0 + timedelta(days=14)
    just_before = fourteen_days - timedelta(seconds=1)
    authorization = approval_service.authorization(
        app.engine, catalog, at(catalog, "frank", just_before), change.id
    )
    assert authorization.authorized
    assert authorization.as_dict()["valid_until"] == "2026-12-15T09:00:00.000000Z"
    later = at(catalog, "bob", fourteen_days)
    with pytest.raises(Refused, match="not authorized"):
        change_service.transition(app.engine, catalog, later, change.id, S.SCHEDULED)
    lapsed = approval_service.decision(app.engine, catalog, later, change.id)
    assert {item.why.value for item in lapsed.ignored} == {"expired"}
    # Both approve again; the change may then be scheduled.
    approve_until_authorized(
        app.engine, catalog, change.id, lambda p: at(catalog, p, fourteen_days)
    )
    moved = change_service.transition(app.engine, catalog, later, change.id, S.SCHEDULED)
    assert moved.state is S.SCHEDULED


@pytest.mark.parametrize("state", [S.AUTHORIZE, S.SCHEDULED])
def test_material_edit_after_approval_voids_it_and_returns_to_assess(
    app: bootstrap.App, catalog: catalog_model.Catalog, state: ChangeState
) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    drive(app.engine, catalog, change.id, S.AUTHORIZE)
    approve_until_authorized(app.engine, catalog, change.id)
    if state is S.SCHEDULED:
        drive(app.engine, catalog, change.id, S.SCHEDULED)
    before = change_service.get(app.engine, alice, change.id)
    # Evidence is not material: nothing moves.
    noted = change_service.edit(
        app.engine, catalog, alice, change.id, {"test_evidence": ["https://ci/run/7"]}
    )
    assert (noted.state, noted.content_hash) == (state, before.content_hash)
    edited = change_service.edit(
        app.engine,
        catalog,
        alice,
        change.id,
        {"implementation_plan": "Roll out in two waves.", "planned_start": "2026-12-02T21:00Z"},
    )
    assert edited.state is S.ASSESS
    assert edited.content_hash != before.content_hash
    event = events(app, catalog, change.id)[-1]
    assert event.action == "change.edited"
    assert event.before["state"] == state.value
    assert event.after["state"] == "assess"
    assert set(event.after) >= {"implementation_plan", "planned_start"}
    assert sorted(event.after["approvals_invalidated"]) == ["carol", "dave"]
    assert "material edit of implementation_plan, planned_start" in event.after["reason"]
    # Back through Assess and Authorize: the old approvals are stale and count for nothing.
    drive(app.engine, catalog, change.id, S.AUTHORIZE)
    decision = approval_service.decision(app.engine, catalog, alice, change.id)
    assert not decision.authorized
    assert {item.why.value for item in decision.ignored} == {"stale"}
    with pytest.raises(Refused, match="not authorized"):
        change_service.transition(
            app.engine, catalog, ctx_for(catalog, "bob"), change.id, "scheduled"
        )
    # Approvals of the new content (by its own requirement) authorize it again.
    approve_until_authorized(app.engine, catalog, change.id)
    assert drive(app.engine, catalog, change.id, S.SCHEDULED).state is S.SCHEDULED


def test_material_edit_is_refused_on_hold_and_while_implementing(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec())
    drive(app.engine, catalog, change.id, S.IMPLEMENTING)
    with pytest.raises(Refused, match="file a new change"):
        change_service.edit(app.engine, catalog, alice, change.id, {"title": "late"})
    other = change_service.create(app.engine, catalog, alice, change_spec())
    drive(app.engine, catalog, other.id, S.AUTHORIZE)
    change_service.transition(app.engine, catalog, bob, other.id, S.ON_HOLD)
    with pytest.raises(Refused, match="resume it first"):
        change_service.edit(app.engine, catalog, alice, other.id, {"title": "late"})


def test_emergency_change_needs_one_emergency_approver_before_scheduling(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    bob = ctx_for(catalog, "bob")
    change = change_service.create(
        app.engine, catalog, ctx_for(catalog, "alice"), change_spec(type="emergency")
    )
    assert change_service.submit(app.engine, catalog, bob, change.id).state is S.AUTHORIZE
    with pytest.raises(Refused, match="emergency-approver: 1 more of 1") as refused:
        change_service.transition(app.engine, catalog, bob, change.id, S.SCHEDULED)
    assert refused.value.override_by is not None
    assert "erin" in refused.value.override_by
    decision = approval_service.approve(app.engine, catalog, ctx_for(catalog, "erin"), change.id)
    assert decision.authorized
    assert change_service.transition(app.engine, catalog, bob, change.id, S.SCHEDULED).state is (
        S.SCHEDULED
    )


def _standard(catalog: catalog_model.Catalog, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "standard",
        "template": "scale-odoo-workers",
        "category": "tenant-config",
        "targets": {"tenants": [one_tenant(catalog)]},
        "artifacts": {},
    }
    return data | overrides


def test_a_standard_change_its_template_covers_is_authorized_on_submit(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice, bob = ctx_for(catalog, "alice"), ctx_for(catalog, "bob")
    change = change_service.create(app.engine, catalog, alice, change_spec(**_standard(catalog)))
    submitted = change_service.submit(app.engine, catalog, alice, change.id)
    assert submitted.state is S.AUTHORIZE
    trail = events(app, catalog, change.id)
    assert [e.action for e in trail][-4:] == [
        "change.transitioned",
        "change.assessed",
        "change.transitioned",
        "change.authorized",
    ]
    assessed = trail[-3].after["template"]
    assert assessed["ok"] and assessed["template"] == "scale-odoo-workers"
    assert assessed["version"] == 1
    assert trail[-1].after["via"] == "template"
    assert "scale-odoo-workers v1 covers it" in trail[-2].after["reason"]
    # Nobody is asked to approve it; it is scheduled without approvals.
    inbox = approval_service.inbox(app.engine, catalog, ctx_for(catalog, "carol"))
    assert change.id not in [item.change.id for item in inbox]
    moved = change_service.transition(app.engine, catalog, bob, change.id, S.SCHEDULED)
    assert events(app, catalog, moved.id)[-2].after["authorization"]["via"] == "template"


def test_a_standard_change_no_template_covers_is_approved_like_a_normal_one(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    # The TLS template covers secrets rotation, not tenant configuration.
    spec = change_spec(**_standard(catalog, template="renew-tenant-tls"))
    change = change_service.create(app.engine, catalog, alice, spec)
    assert change_service.submit(app.engine, catalog, alice, change.id).state is S.ASSESS
    assessed = events(app, catalog, change.id)[-1]
    assert assessed.action == "change.assessed"
    assert not assessed.after["template"]["ok"]
    assert assessed.after["template"]["reasons"] == [
        "renew-tenant-tls v1: category tenant-config is not among secrets-rotation"
    ]
    drive(app.engine, catalog, change.id, S.AUTHORIZE)
    with pytest.raises(Refused, match="no standard template covers it: renew-tenant-tls v1"):
        change_service.transition(
            app.engine, catalog, ctx_for(catalog, "bob"), change.id, S.SCHEDULED
        )
    approve_until_authorized(app.engine, catalog, change.id)
    assert drive(app.engine, catalog, change.id, S.SCHEDULED).state is S.SCHEDULED


def test_a_standard_change_above_the_template_ceiling_falls_back(
    app: bootstrap.App, catalog: catalog_model.Catalog, sample_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(sample_dir, tmp_path / "platform")
    templates = tmp_path / "platform" / "templates.yaml"
    templates.write_text(
        templates.read_text().replace("max_risk_class: medium", "max_risk_class: low")
    )
    strict = load_catalog(tmp_path / "platform")
    alice = ctx_for(strict, "alice")
    untested = _standard(strict, rollback_plan={"steps": "", "tested": False})
    change = change_service.create(app.engine, strict, alice, change_spec(**untested))
    assert change_service.submit(app.engine, strict, alice, change.id).state is S.ASSESS
    reasons = events(app, strict, change.id)[-1].after["template"]["reasons"]
    assert reasons == ["scale-odoo-workers v1: risk medium (score 31) is above the ceiling low"]
    # Fixing the rollback plan (a material edit in Assess) and assessing again authorizes it.
    change_service.edit(
        app.engine, strict, alice, change.id, {"rollback_plan": {"steps": "revert", "tested": True}}
    )
    assessment_service.assess(app.engine, strict, alice, change.id)
    assert change_service.get(app.engine, alice, change.id).state is S.AUTHORIZE


def test_a_template_authorized_change_edited_is_checked_again(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    change = change_service.create(app.engine, catalog, alice, change_spec(**_standard(catalog)))
    change_service.submit(app.engine, catalog, alice, change.id)
    two = [t.id for t in catalog.tenants.values()][:2]
    edited = change_service.edit(
        app.engine, catalog, alice, change.id, {"targets": {"tenants": two}}
    )
    assert edited.state is S.ASSESS
    assessment_service.assess(app.engine, catalog, alice, change.id)
    assert change_service.get(app.engine, alice, change.id).state is S.ASSESS
    reasons = events(app, catalog, change.id)[-1].after["template"]["reasons"]
    assert reasons == ["scale-odoo-workers v1: 2 tenants targeted (outside 1)"]


def test_templates_are_named_only_on_standard_changes_and_must_exist(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    alice = ctx_for(catalog, "alice")
    with pytest.raises(InvalidInput) as unknown:
        change_service.create(
            app.engine, catalog, alice, change_spec(**_standard(catalog, template="nope"))
        )
    assert unknown.value.problems[0].field == "template"
    assert "known: renew-tenant-tls, scale-odoo-workers" in unknown.value.problems[0].message
    with pytest.raises(InvalidInput, match="only a standard change names a template"):
        change_spec(**_standard(catalog, type="normal"))
