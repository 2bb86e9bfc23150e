"""Retrospectives of emergency changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retrospectives",
        sa.Column("change_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("authorized_at", UtcDateTime, nullable=False),
        sa.Column("due_at", UtcDateTime, nullable=False),
        sa.Column("done_at", UtcDateTime),
        sa.Column("done_by", sa.String(128)),
        sa.Column("comment", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            ondelete="CASCADE",
            name="fk_retrospectives_change_id_changes",
        ),
        sa.PrimaryKeyConstraint("change_id", name="pk_retrospectives"),
    )
    op.create_index("ix_retrospectives_due_at", "retrospectives", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_retrospectives_due_at", table_name="retrospectives")
    op.drop_table("retrospectives")
