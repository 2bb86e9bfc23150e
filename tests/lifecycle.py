"""Drive a change forward through its real lifecycle in service-level tests.

Every gate holds: a normal change is assessed before Authorize, and approved (by people the
decision names as candidates, one need at a time) before Scheduled. Nothing is written
behind the services' backs.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from changegate.domain import catalog as catalog_model
from changegate.domain.approvals import Decision
from changegate.domain.changes import ChangeRequest, ChangeState
from changegate.errors import NotFound
from changegate.services import approvals as approval_service
from changegate.services import assessments as assessment_service
from changegate.services import calendar as calendar_service
from changegate.services import changes as change_service
from changegate.services.context import Context
from tests.conftest import ctx_for

S = ChangeState
FORWARD = (S.DRAFT, S.ASSESS, S.AUTHORIZE, S.SCHEDULED, S.IMPLEMENTING, S.REVIEW, S.CLOSED)

As = Callable[[str], Context]


def approve_until_authorized(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    change_id: str,
    as_: As | None = None,
) -> Decision:
    """Approve as the first candidate of each missing need until the change is authorized."""
    as_ = as_ or (lambda person: ctx_for(catalog, person))
    decision = approval_service.decision(engine, catalog, as_("frank"), change_id)
    while not decision.authorized:
        missing = decision.missing
        assert missing, decision.reason
        status = missing[0]
        assert status.candidates, decision.reason
        need = status.need
        decision = approval_service.approve(
            engine,
            catalog,
            as_(status.candidates[0]),
            change_id,
            role=need.role if need.tenant is None else None,
            tenant=need.tenant,
        )
    return decision


def _assessed(engine: sa.Engine, ctx: Context, change: ChangeRequest) -> bool:
    try:
        latest = assessment_service.latest(engine, ctx, change.id)
    except NotFound:
        return False
    return latest.content_hash == change.content_hash


def drive(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    change_id: str,
    target: ChangeState,
    *,
    as_: As | None = None,
    mover: str = "bob",
    close_code: str = "successful",
) -> ChangeRequest:
    """Move the change forward until it is in `target`: submit (as its requester), assess
    (unless its latest assessment is of its content), authorize, approve, schedule (the
    earliest slots), implement (at the first wave's start, when the calendar allows it),
    review, close (as `mover`)."""
    as_ = as_ or (lambda person: ctx_for(catalog, person))
    change = change_service.get(engine, as_("frank"), change_id)
    assert FORWARD.index(target) >= FORWARD.index(change.state), (change.state, target)
    while change.state is not target:
        state = change.state
        if state is S.DRAFT:
            change = change_service.submit(engine, catalog, as_(change.requester), change_id)
        elif state is S.ASSESS:
            if not _assessed(engine, as_("frank"), change):
                assessment_service.assess(engine, catalog, as_(change.requester), change_id)
            change = change_service.get(engine, as_("frank"), change_id)
            if change.state is S.ASSESS:
                change = change_service.transition(
                    engine, catalog, as_(mover), change_id, S.AUTHORIZE
                )
        elif state is S.AUTHORIZE:
            approve_until_authorized(engine, catalog, change_id, as_)
            change = change_service.transition(engine, catalog, as_(mover), change_id, S.SCHEDULED)
        elif state is S.SCHEDULED:
            # Start when the calendar allows it: at the first wave's slot.
            mine = as_(mover)
            waves = calendar_service.schedule_of(engine, catalog, mine, change_id).plan.waves
            start = waves[0].start
            at_start = Context(actor=mine.actor, clock=lambda start=start: start)
            change = change_service.transition(engine, catalog, at_start, change_id, S.IMPLEMENTING)
        else:
            following = FORWARD[FORWARD.index(state) + 1]
            code = close_code if following is S.CLOSED else None
            change = change_service.transition(
                engine, catalog, as_(mover), change_id, following, close_code=code
            )
    return change
