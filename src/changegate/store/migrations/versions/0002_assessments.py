"""Risk assessments of changes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("assessed_by", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(71), nullable=False),
        sa.Column("catalog_digest", sa.String(71), nullable=False),
        sa.Column("rule_version", sa.String(64), nullable=False),
        sa.Column("policy_digest", sa.String(71), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("risk_class", sa.String(16), nullable=False),
        sa.Column("class_reason", sa.Text, nullable=False),
        sa.Column("factors", sa.JSON, nullable=False),
        sa.Column("impact", sa.JSON, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            ondelete="CASCADE",
            name="fk_assessments_change_id_changes",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_assessments"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_assessments_change_id", "assessments", ["change_id"])


def downgrade() -> None:
    op.drop_index("ix_assessments_change_id", table_name="assessments")
    op.drop_table("assessments")
