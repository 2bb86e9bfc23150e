"""Rollouts carry their frozen settings and why they paused or failed; steps their progress.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("config", sa.JSON))
        batch.add_column(sa.Column("reason", sa.Text))
    with op.batch_alter_table("rollout_steps") as batch:
        batch.add_column(sa.Column("progress", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("rollout_steps") as batch:
        batch.drop_column("progress")
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("reason")
        batch.drop_column("config")
