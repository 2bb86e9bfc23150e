"""Use case: who a filed change can hurt, and why (docs/impact.md).

Read-only, like every read in this codebase: no transaction is held during the analysis and
no audit event is written. The change is analysed against the catalog loaded *now*; the
result also names the catalog the change was filed against, so a reader sees when the two
differ (a target may have moved or gone since).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from changegate.domain import catalog as catalog_model
from changegate.domain import changes
from changegate.domain import impact as impact_model
from changegate.domain.permissions import Permission
from changegate.services.context import Context
from changegate.store import changes as change_store


@dataclass(frozen=True, slots=True)
class ChangeImpact:
    """A change's impact over the current catalog, with the catalog it was filed against.

    `impact.catalog_digest` is the catalog analysed (the one loaded now);
    `change_catalog_digest` the one recorded when the change was filed (None if unknown).
    """

    change_id: str
    change_catalog_digest: str | None
    impact: impact_model.Impact

    def as_dict(self) -> dict[str, Any]:
        """The JSON shared by the API and `change impact --json`: `Impact.as_dict()` plus the
        change's id and filed-against catalog digest, first."""
        return {
            "change_id": self.change_id,
            "change_catalog_digest": self.change_catalog_digest,
            **self.impact.as_dict(),
        }


def impact(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, change_id: str
) -> ChangeImpact:
    """Analyse the stored change `change_id` against `catalog` (needs changes:read).

    Raises Refused without the permission, InvalidInput for a malformed id and NotFound for
    an unknown change.
    """
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
    # Pure and CPU-bound: analysed after the connection went back to the pool.
    return ChangeImpact(
        change_id=change.id,
        change_catalog_digest=change.catalog_digest,
        impact=impact_model.analyze(catalog, change.spec),
    )
