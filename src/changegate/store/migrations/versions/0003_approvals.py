"""Approvals of changes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("person", sa.String(128), nullable=False),
        sa.Column("role", sa.String(64)),
        sa.Column("tenant", sa.String(128)),
        sa.Column("content_hash", sa.String(71), nullable=False),
        sa.Column("catalog_digest", sa.String(71), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("tenants", sa.JSON, nullable=False),
        sa.Column("decided_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime),
        sa.Column("comment", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            ondelete="CASCADE",
            name="fk_approvals_change_id_changes",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.UniqueConstraint(
            "change_id", "person", "content_hash", name="uq_approvals_change_person_content"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_approvals_change_id", "approvals", ["change_id"])
    op.create_index("ix_approvals_person", "approvals", ["person"])


def downgrade() -> None:
    op.drop_index("ix_approvals_person", table_name="approvals")
    op.drop_index("ix_approvals_change_id", table_name="approvals")
    op.drop_table("approvals")
