"""Promotion of the same artifacts (SQLite and PostgreSQL): a production change's image
digests must have been shipped by a staging change that closed successful; a rebuild of the
same tag is refused; the evidence is recorded when the change is scheduled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain import promotion
from changegate.domain.changes import ChangeState, CloseCode
from changegate.errors import Refused
from changegate.services import approvals as approval_service
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services.context import Context, actor_for
from tests.factories import IMAGE, change_spec
from tests.lifecycle import approve_until_authorized, drive

S = ChangeState
REBUILT = {**IMAGE, "digest": "sha256:" + "b" * 64}


def at(catalog: catalog_model.Catalog, person: str) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: datetime.now(UTC))


def staging_tenant(catalog: catalog_model.Catalog) -> str:
    return next(t.id for t in catalog.tenants.values() if t.spec.environment == "staging")


def file_change(app: bootstrap.App, catalog: catalog_model.Catalog, **overrides: Any) -> str:
    spec = change_spec(**overrides)
    change = change_service.create(app.engine, catalog, at(catalog, "alice"), spec)
    change_service.submit(app.engine, catalog, at(catalog, "alice"), change.id)
    return change.id


def ship_in_staging(
    app: bootstrap.App, catalog: catalog_model.Catalog, image: dict[str, str], code: CloseCode
) -> str:
    """A staging change of the image, driven through its whole lifecycle and closed."""
    change_id = file_change(
        app,
        catalog,
        environment="staging",
        targets={"tenants": [staging_tenant(catalog)]},
        artifacts={"images": [image]},
    )
    drive(app.engine, catalog, change_id, S.CLOSED, close_code=code.value)
    return change_id


def authorized_production_change(app: bootstrap.App, catalog: catalog_model.Catalog) -> str:
    change_id = file_change(app, catalog, artifacts={"images": [IMAGE]})
    assessment_service.assess(app.engine, catalog, at(catalog, "alice"), change_id)
    change_service.transition(app.engine, catalog, at(catalog, "bob"), change_id, S.AUTHORIZE)
    approve_until_authorized(app.engine, catalog, change_id)
    return change_id


def test_the_source_of_production_is_the_environment_before_it(
    catalog: catalog_model.Catalog,
) -> None:
    assert promotion.source_environment(catalog, "prod") == "staging"
    assert promotion.source_environment(catalog, "staging") is None
    assert promotion.source_environment(catalog, "nowhere") is None


def test_a_production_image_never_shipped_in_staging_is_refused(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = authorized_production_change(app, catalog)
    found = approval_service.authorization(app.engine, catalog, at(catalog, "frank"), change_id)
    assert not found.authorized
    assert "not promoted from staging" in found.reason
    assert f"{IMAGE['ref']}@{IMAGE['digest']}" in found.reason
    assert found.decision is not None and found.decision.authorized  # approvals are complete
    with pytest.raises(Refused, match="not promoted from staging"):
        change_service.transition(app.engine, catalog, at(catalog, "bob"), change_id, S.SCHEDULED)
    latest = assessment_service.latest(app.engine, at(catalog, "frank"), change_id)
    assert latest.inputs["staging_verified"] is False


def test_a_rebuild_of_the_same_tag_is_refused_the_same_digest_passes(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    ship_in_staging(app, catalog, REBUILT, CloseCode.SUCCESSFUL)  # same tag, another build
    ship_in_staging(app, catalog, IMAGE, CloseCode.UNSUCCESSFUL)  # the digest, but it failed
    change_id = authorized_production_change(app, catalog)
    with pytest.raises(Refused, match="was not shipped by a successful staging change"):
        change_service.transition(app.engine, catalog, at(catalog, "bob"), change_id, S.SCHEDULED)
    shipped = ship_in_staging(app, catalog, IMAGE, CloseCode.SUCCESSFUL)
    assessment_service.assess(app.engine, catalog, at(catalog, "alice"), change_id)
    latest = assessment_service.latest(app.engine, at(catalog, "frank"), change_id)
    assert latest.inputs["staging_verified"] is True
    moved = change_service.transition(
        app.engine, catalog, at(catalog, "bob"), change_id, S.SCHEDULED
    )
    assert moved.state is S.SCHEDULED
    events = audit_service.events(app.engine, at(catalog, "frank"), object_id=change_id)
    scheduled = next(e for e in events if e.after and e.after.get("state") == "scheduled")
    evidence = scheduled.after["authorization"]["promotion"]
    assert evidence["promoted"] is True
    assert evidence["source_environment"] == "staging"
    assert evidence["evidence"] == [
        {"image": IMAGE["ref"], "digest": IMAGE["digest"], "change_id": shipped}
    ]


def test_emergency_changes_and_changes_without_images_are_exempt(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    emergency = file_change(app, catalog, type="emergency", artifacts={"images": [IMAGE]})
    approve_until_authorized(app.engine, catalog, emergency)
    found = approval_service.authorization(app.engine, catalog, at(catalog, "frank"), emergency)
    assert found.authorized, found.reason
    assert found.promotion is not None and not found.promotion.applies
    plain = file_change(app, catalog)
    assessment_service.assess(app.engine, catalog, at(catalog, "alice"), plain)
    assert (
        assessment_service.latest(app.engine, at(catalog, "frank"), plain).inputs[
            "staging_verified"
        ]
        is None
    )


def test_an_image_without_digest_cannot_be_promoted(
    app: bootstrap.App, catalog: catalog_model.Catalog
) -> None:
    change_id = file_change(app, catalog, artifacts={"images": [{"ref": "odoo:17"}]})
    found = approval_service.authorization(app.engine, catalog, at(catalog, "frank"), change_id)
    assert "odoo:17 has no digest (a tag cannot be promoted)" in found.reason
