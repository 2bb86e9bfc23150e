"""Backups (pg_dump archives taken by changegate) and DR drills.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("database", sa.String(63), nullable=False),
        sa.Column("change_id", sa.Integer),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("toc_entries", sa.Integer, nullable=False),
        sa.Column("toc_tables", sa.Integer, nullable=False),
        sa.Column("filestore_ref", sa.String(1024)),
        sa.Column("taken_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["changes.id"], name="fk_backups_change_id_changes"),
        sa.PrimaryKeyConstraint("id", name="pk_backups"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_backups_tenant", "backups", ["tenant"])
    op.create_index("ix_backups_change_id", "backups", ["change_id"])
    op.create_index("ix_backups_created_at", "backups", ["created_at"])
    op.create_table(
        "backup_drills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("backup_id", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("scratch_database", sa.String(63), nullable=False),
        sa.Column("restore_ms", sa.Integer),
        sa.Column("tables", sa.Integer),
        sa.Column("rows", sa.BigInteger),
        sa.Column("backup_age_minutes", sa.Float, nullable=False),
        sa.Column("rpo_minutes", sa.Integer, nullable=False),
        sa.Column("rto_minutes", sa.Integer, nullable=False),
        sa.Column("rpo_met", sa.Boolean, nullable=False),
        sa.Column("rto_met", sa.Boolean, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("run_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["backup_id"], ["backups.id"], name="fk_backup_drills_backup_id_backups"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backup_drills"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_backup_drills_backup_id", "backup_drills", ["backup_id"])
    op.create_index("ix_backup_drills_tenant", "backup_drills", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_backup_drills_tenant", table_name="backup_drills")
    op.drop_index("ix_backup_drills_backup_id", table_name="backup_drills")
    op.drop_table("backup_drills")
    op.drop_index("ix_backups_created_at", table_name="backups")
    op.drop_index("ix_backups_change_id", table_name="backups")
    op.drop_index("ix_backups_tenant", table_name="backups")
    op.drop_table("backups")
