"""Use cases on the platform catalog: record each load in the audit trail."""

from __future__ import annotations

import sqlalchemy as sa

from changegate.domain import catalog as catalog_model
from changegate.domain.permissions import Permission
from changegate.services import audit as audit_service
from changegate.services.context import Context
from changegate.store import audit as audit_store
from changegate.store import db


def record_load(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, *, explicit: bool
) -> bool:
    """Append `catalog.loaded` when asked to reload, or when the digest changed since the last.

    Start-up loads of an unchanged catalog are not recorded, so a CLI run does not add an
    event each time; an explicit reload always is. Returns whether an event was written.
    """
    if explicit:
        ctx.actor.require(Permission.CATALOG_RELOAD)
    if not explicit:
        # Most loads find the digest unchanged: check with a reader first, so a read-only
        # command never takes SQLite's write lock just to find nothing to record.
        with engine.connect() as conn:
            if audit_store.last_catalog(conn) == catalog.digest:
                return False
    with db.transaction(engine) as conn:
        previous = audit_store.last_catalog(conn)
        if previous == catalog.digest and not explicit:
            return False  # another process recorded it meanwhile
        audit_store.record_catalog(conn, catalog.digest, catalog.commit, ctx.now())
        # A fixed object id: the folder path (in `after`) may be longer than an id column.
        audit_service.record(
            conn,
            ctx,
            "catalog.loaded",
            "catalog",
            "catalog",
            {"digest": previous} if previous else None,
            catalog.as_dict(),
        )
    return True
