"""Rollouts and their steps, claimed by workers under leases.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("waves", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("bake_seconds", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("completed_at", UtcDateTime),
        sa.ForeignKeyConstraint(
            ["change_id"], ["changes.id"], name="fk_rollouts_change_id_changes"
        ),
        sa.PrimaryKeyConstraint("change_id", name="pk_rollouts"),
    )
    op.create_index("ix_rollouts_status", "rollouts", ["status"])
    op.create_table(
        "rollout_steps",
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", UtcDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("lease_until", UtcDateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("result", sa.JSON),
        sa.ForeignKeyConstraint(
            ["change_id"], ["rollouts.change_id"], name="fk_rollout_steps_change_id_rollouts"
        ),
        sa.PrimaryKeyConstraint("change_id", "seq", name="pk_rollout_steps"),
        sa.UniqueConstraint("change_id", "wave", "kind", name="uq_rollout_steps_change_wave_kind"),
    )
    op.create_index("ix_rollout_steps_due_at", "rollout_steps", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_rollout_steps_due_at", table_name="rollout_steps")
    op.drop_table("rollout_steps")
    op.drop_index("ix_rollouts_status", table_name="rollouts")
    op.drop_table("rollouts")
