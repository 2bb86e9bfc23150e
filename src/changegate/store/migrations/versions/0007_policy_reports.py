"""Policy gate reports, one per assessment.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "policy_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("assessment_id", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("content_hash", sa.String(71), nullable=False),
        sa.Column("catalog_digest", sa.String(71), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            ondelete="CASCADE",
            name="fk_policy_reports_change_id_changes",
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            ondelete="CASCADE",
            name="fk_policy_reports_assessment_id_assessments",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_policy_reports"),
        sa.UniqueConstraint("assessment_id", name="uq_policy_reports_assessment_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_policy_reports_change_id", "policy_reports", ["change_id"])


def downgrade() -> None:
    op.drop_index("ix_policy_reports_change_id", table_name="policy_reports")
    op.drop_table("policy_reports")
