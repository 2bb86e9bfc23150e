"""Initial schema: changes, targets, comments, audit chain, catalog state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UtcDateTime = sa.DateTime(timezone=True)
BigInt = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(128), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("held_from", sa.String(32)),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("implementer", sa.String(128)),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("close_code", sa.String(32)),
        sa.Column("close_notes", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(71), nullable=False),
        sa.Column("catalog_digest", sa.String(71)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_state", "changes", ["state"])
    op.create_index("ix_changes_requester", "changes", ["requester"])
    op.create_index("ix_changes_created_at", "changes", ["created_at"])
    op.create_table(
        "change_targets",
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            ondelete="CASCADE",
            name="fk_change_targets_change_id_changes",
        ),
        sa.PrimaryKeyConstraint("change_id", "kind", "target", name="pk_change_targets"),
    )
    op.create_index("ix_change_targets_kind_target", "change_targets", ["kind", "target"])
    op.create_table(
        "change_comments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Integer, nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            ondelete="CASCADE",
            name="fk_change_comments_change_id_changes",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_change_comments"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_change_comments_change_id", "change_comments", ["change_id"])
    op.create_table(
        "audit_events",
        sa.Column("seq", BigInt, nullable=False, autoincrement=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
        sa.Column("request_id", sa.String(64)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])
    op.create_index("ix_audit_events_object_id", "audit_events", ["object_id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("seq", BigInt, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    state = op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("loaded_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_state"),
    )
    # Seeded like audit_head, so replicas starting together update one row, never race to
    # insert it. An empty digest means no catalog was recorded yet.
    op.bulk_insert(state, [{"id": 1, "digest": "", "git_commit": None, "loaded_at": EPOCH}])


def downgrade() -> None:
    for table in (
        "catalog_state",
        "audit_head",
        "audit_events",
        "change_comments",
        "change_targets",
        "changes",
    ):
        op.drop_table(table)
