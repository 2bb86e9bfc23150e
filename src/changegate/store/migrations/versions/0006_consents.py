"""Customers' consents to exempted changes during their freezes.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("person", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(71), nullable=False),
        sa.Column("given_at", UtcDateTime, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"], ["changes.id"], ondelete="CASCADE", name="fk_consents_change_id_changes"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
        sa.UniqueConstraint(
            "change_id", "tenant", "content_hash", name="uq_consents_change_tenant_content"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_consents_change_id", "consents", ["change_id"])


def downgrade() -> None:
    op.drop_index("ix_consents_change_id", table_name="consents")
    op.drop_table("consents")
