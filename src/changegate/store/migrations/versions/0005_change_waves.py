"""The schedule of a change: its waves.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "change_waves",
        sa.Column("change_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("wave", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("start", UtcDateTime, nullable=False),
        sa.Column("end", UtcDateTime, nullable=False),
        sa.Column("tenants", sa.JSON, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("scheduled_at", UtcDateTime, nullable=False),
        sa.Column("scheduled_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            ondelete="CASCADE",
            name="fk_change_waves_change_id_changes",
        ),
        sa.PrimaryKeyConstraint("change_id", "wave", name="pk_change_waves"),
    )
    op.create_index("ix_change_waves_start", "change_waves", ["start"])
    op.create_index("ix_change_waves_end", "change_waves", ["end"])


def downgrade() -> None:
    op.drop_index("ix_change_waves_end", table_name="change_waves")
    op.drop_index("ix_change_waves_start", table_name="change_waves")
    op.drop_table("change_waves")
