"""The database schema, as SQLAlchemy Core tables. Alembic migrations mirror it."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UtcDateTime = sa.DateTime(timezone=True)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("environment", sa.String(128), nullable=False),
    sa.Column("state", sa.String(32), nullable=False, index=True),
    sa.Column("held_from", sa.String(32)),
    sa.Column("requester", sa.String(128), nullable=False, index=True),
    sa.Column("implementer", sa.String(128)),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("close_code", sa.String(32)),
    sa.Column("close_notes", sa.Text, nullable=False, default=""),
    sa.Column("content_hash", sa.String(71), nullable=False),
    sa.Column("catalog_digest", sa.String(71)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)

# What each change targets by id, for filtering ("changes touching tenant acme").
change_targets = sa.Table(
    "change_targets",
    metadata,
    sa.Column(
        "change_id", sa.Integer, sa.ForeignKey("changes.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("target", sa.String(128), primary_key=True),
    sa.Index("ix_change_targets_kind_target", "kind", "target"),
)

change_comments = sa.Table(
    "change_comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "change_id",
        sa.Integer,
        sa.ForeignKey("changes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("occurred_at", UtcDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("actor_name", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(128), nullable=False, index=True),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
    sa.Column("request_id", sa.String(64)),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# One row: the chain's head. Appending locks it, so concurrent writers take turns.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# One row: the catalog digest last recorded in the audit trail.
catalog_state = sa.Table(
    "catalog_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("loaded_at", UtcDateTime, nullable=False),
)

# Risk assessments of changes: every run is kept (the latest counts), with what produced it.
assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "change_id",
        sa.Integer,
        sa.ForeignKey("changes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
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
    sqlite_autoincrement=True,
)

# Approvals of changes: one row per person and content of a change (a second approval of the
# same content is refused; re-approving after expiry replaces the expired row). `roles` and
# `tenants` are what the person held in the catalog (of `catalog_digest`) when approving.
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "change_id",
        sa.Integer,
        sa.ForeignKey("changes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("person", sa.String(128), nullable=False, index=True),
    sa.Column("role", sa.String(64)),
    sa.Column("tenant", sa.String(128)),
    sa.Column("content_hash", sa.String(71), nullable=False),
    sa.Column("catalog_digest", sa.String(71), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("tenants", sa.JSON, nullable=False),
    sa.Column("decided_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint(
        "change_id", "person", "content_hash", name="uq_approvals_change_person_content"
    ),
    sqlite_autoincrement=True,
)

# Retrospectives of emergency changes: one row per change, written when the change is first
# authorized (a re-authorization after an edit keeps the first deadline), done once.
retrospectives = sa.Table(
    "retrospectives",
    metadata,
    sa.Column(
        "change_id",
        sa.Integer,
        sa.ForeignKey("changes.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("authorized_at", UtcDateTime, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False, index=True),
    sa.Column("done_at", UtcDateTime),
    sa.Column("done_by", sa.String(128)),
    sa.Column("comment", sa.Text, nullable=False, default=""),
)

# The schedule of a change: its waves, each a slot and the tenants it touches (one wave for a
# change that fits one slot). Not part of the change's content: rescheduling does not void
# approvals. Replaced whole on every (re)scheduling; the audit trail keeps the history.
change_waves = sa.Table(
    "change_waves",
    metadata,
    sa.Column(
        "change_id",
        sa.Integer,
        sa.ForeignKey("changes.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("wave", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("start", UtcDateTime, nullable=False, index=True),
    sa.Column("end", UtcDateTime, nullable=False, index=True),
    sa.Column("tenants", sa.JSON, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("scheduled_at", UtcDateTime, nullable=False),
    sa.Column("scheduled_by", sa.String(128), nullable=False),
)

# A customer approver's consent that an exempted change may run on their tenant during a
# freeze that asks for it (`exempt.consent`): bound to the change's content, like approvals.
consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "change_id",
        sa.Integer,
        sa.ForeignKey("changes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("person", sa.String(128), nullable=False),
    sa.Column("content_hash", sa.String(71), nullable=False),
    sa.Column("given_at", UtcDateTime, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint(
        "change_id", "tenant", "content_hash", name="uq_consents_change_tenant_content"
    ),
    sqlite_autoincrement=True,
)

# Policy gate reports: one per assessment (the gate runs while assessing). `report` is the
# whole report (findings, summary, waivers, notices) as `Report.as_dict` writes it.
policy_reports = sa.Table(
    "policy_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "change_id",
        sa.Integer,
        sa.ForeignKey("changes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "assessment_id",
        sa.Integer,
        sa.ForeignKey("assessments.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("content_hash", sa.String(71), nullable=False),
    sa.Column("catalog_digest", sa.String(71), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
    sqlite_autoincrement=True,
)

# Backups taken by changegate (pg_dump -Fc of one tenant database), with the file's checksum
# and what `pg_restore --list` read from it; `change_id` when taken for a change. The file
# itself lives under CHANGEGATE_BACKUP_DIR; `filestore_ref` names the tenant's filestore
# location and instant on object storage (a reference: the storage system keeps the data).
backups = sa.Table(
    "backups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(128), nullable=False, index=True),
    sa.Column("service", sa.String(128), nullable=False),
    sa.Column("database", sa.String(63), nullable=False),
    sa.Column("change_id", sa.Integer, sa.ForeignKey("changes.id"), index=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("toc_entries", sa.Integer, nullable=False),
    sa.Column("toc_tables", sa.Integer, nullable=False),
    sa.Column("filestore_ref", sa.String(1024)),
    sa.Column("taken_by", sa.String(128), nullable=False),
    sqlite_autoincrement=True,
)

# DR drills: a backup restored into a scratch database, checked, timed and dropped; the
# evidence against the tenant's tier RPO and RTO as they were at the time.
backup_drills = sa.Table(
    "backup_drills",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("backup_id", sa.Integer, sa.ForeignKey("backups.id"), nullable=False, index=True),
    sa.Column("tenant", sa.String(128), nullable=False, index=True),
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
    sqlite_autoincrement=True,
)

# Rollouts (docs/rollout.md): one per change that reached Implementing; its steps (gate,
# backup, commit, sync, verify, bake per wave; revert, restore, conclude when rolled back) run
# in `seq` order, each claimed by one worker under a lease (`claimed_by`, `lease_until`);
# `position` is the seq of the next step to run. `config` is the delivery settings frozen
# when it started; `reason` why it paused or failed. A step keeps its `progress` between
# turns (measurements so far, when the sync wait began).
rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("change_id", sa.Integer, sa.ForeignKey("changes.id"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("waves", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("bake_seconds", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("completed_at", UtcDateTime),
    sa.Column("config", sa.JSON),
    sa.Column("reason", sa.Text),
)

rollout_steps = sa.Table(
    "rollout_steps",
    metadata,
    sa.Column("change_id", sa.Integer, sa.ForeignKey("rollouts.change_id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False, index=True),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("result", sa.JSON),
    sa.Column("progress", sa.JSON),
    sa.UniqueConstraint("change_id", "wave", "kind", name="uq_rollout_steps_change_wave_kind"),
)

# Webhook deliveries received (GitHub, GitLab): one row per authentic delivery, keyed by the
# provider's delivery id and by the body's SHA-256, so a repeat of either is answered with the
# first answer (`status_code`, `response`) instead of being processed again. A row without an
# answer is being processed. Nothing secret is stored: the body is not kept, only its digest.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("delivery_id", sa.String(128), nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False, index=True),
    sa.Column("status_code", sa.Integer),
    sa.Column("response", sa.JSON),
    sa.UniqueConstraint("provider", "delivery_id", name="uq_webhook_deliveries_delivery"),
    sa.UniqueConstraint("provider", "body_sha256", name="uq_webhook_deliveries_body"),
    sqlite_autoincrement=True,
)

# Which change a pull/merge request or a pushed head filed: `request_key` is `pr:<n>` or
# `push:<branch>`; one row per head seen, so a later push to the same request finds its change.
webhook_changes = sa.Table(
    "webhook_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("change_id", sa.Integer, sa.ForeignKey("changes.id"), nullable=False, index=True),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("repository", sa.String(512), nullable=False),
    sa.Column("request_key", sa.String(300), nullable=False),
    sa.Column("head_sha", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index("ix_webhook_changes_request", "provider", "repository", "request_key"),
    sqlite_autoincrement=True,
)
