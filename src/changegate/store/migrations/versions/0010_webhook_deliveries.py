"""Webhook deliveries (replay safety) and the changes webhooks filed.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.JSON),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint("provider", "delivery_id", name="uq_webhook_deliveries_delivery"),
        sa.UniqueConstraint("provider", "body_sha256", name="uq_webhook_deliveries_body"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_deliveries_received_at", "webhook_deliveries", ["received_at"])
    op.create_table(
        "webhook_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("repository", sa.String(512), nullable=False),
        sa.Column("request_key", sa.String(300), nullable=False),
        sa.Column("head_sha", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"], ["changes.id"], name="fk_webhook_changes_change_id_changes"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_changes"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_changes_change_id", "webhook_changes", ["change_id"])
    op.create_index("ix_webhook_changes_head_sha", "webhook_changes", ["head_sha"])
    op.create_index(
        "ix_webhook_changes_request", "webhook_changes", ["provider", "repository", "request_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_changes_request", table_name="webhook_changes")
    op.drop_index("ix_webhook_changes_head_sha", table_name="webhook_changes")
    op.drop_index("ix_webhook_changes_change_id", table_name="webhook_changes")
    op.drop_table("webhook_changes")
    op.drop_index("ix_webhook_deliveries_received_at", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
