"""Emergency change retrospectives (placeholder until the retrospectives work lands)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from changegate.domain.approvals import Requirement
from changegate.domain.changes import ChangeRequest
from changegate.services.context import Context


def on_authorized(
    conn: sa.Connection,
    ctx: Context,
    change: ChangeRequest,
    requirement: Requirement,
    authorized_at: datetime,
) -> None:
    """Called in the authorizing transaction; records the retrospective an emergency needs."""
    del conn, ctx, change, requirement, authorized_at
