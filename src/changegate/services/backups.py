"""Use cases on pre-change PostgreSQL backups: take one, list them, restore one, and run a
DR drill that proves the latest one restores within the tier's RPO and RTO.

The slow work (pg_dump, pg_restore) runs outside any database transaction, through a
`BackupTool` (the port; `adapters.pgbackup.PgBackup` in production). What it did is then
recorded in one transaction together with its audit event: `backup.taken`,
`backup.restored`, `backup.drilled`. Events carry checksums, sizes, names and timings, never
a credential (changegate holds none: libpq's service file does).

Permissions: taking a backup, restoring into a new copy and drilling need
`changes:transition` (they write nothing the tenant uses); restoring over the tenant's own
database needs `backups:restore` (platform-lead, admin). Reading needs `changes:read`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from changegate.adapters import pgbackup
from changegate.domain import backups, canonical, changes
from changegate.domain import catalog as catalog_model
from changegate.domain.backups import BackupRecord, DrillRecord
from changegate.domain.permissions import Permission
from changegate.errors import ChangegateError, NotFound, PermanentError
from changegate.services import audit as audit_service
from changegate.services.context import Context
from changegate.store import backups as backup_store
from changegate.store import changes as change_store
from changegate.store import db


class BackupTool(Protocol):
    """The port to the PostgreSQL client tools (see adapters.pgbackup)."""

    def dump(self, service: str, dbname: str, target_dir: Path) -> pgbackup.BackupFile: ...

    def verify(self, path: Path) -> pgbackup.Toc: ...

    def restore(self, path: Path, service: str, dbname: str, *, into: str | None = None) -> str: ...

    def check(self, service: str, dbname: str) -> pgbackup.DatabaseCheck: ...

    def drop_database(self, service: str, connect_to: str, name: str) -> None: ...


def _elapsed_ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


def take(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    tenant: str,
    *,
    tool: BackupTool,
    backup_dir: Path,
    change_id: str | None = None,
) -> BackupRecord:
    """Dump the tenant's database under `backup_dir/<tenant>/`, check it restorable, record it.

    `pg_dump -Fc` (checksummed while written), then `pg_restore --list`; a file that does
    not list is removed and nothing is recorded. The row and `backup.taken` are written in
    one transaction; `change_id` (when given, it must exist) attaches it to a change.
    """
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    location = backups.where(catalog, tenant)
    number = changes.parse_id(change_id) if change_id is not None else None
    if number is not None:
        with engine.connect() as conn:
            change_store.get(conn, number)
    started = time.monotonic()
    dumped = tool.dump(location.service, location.database, backup_dir / location.tenant)
    try:
        toc = tool.verify(dumped.path)
    except BaseException:
        dumped.path.unlink(missing_ok=True)
        raise
    duration_ms = _elapsed_ms(started)
    filestore = backups.filestore_ref(catalog, location.tenant, dumped.started)
    with db.transaction(engine) as conn:
        if number is not None:
            change_store.get(conn, number)
        record = backup_store.insert_backup(
            conn,
            tenant=location.tenant,
            service=location.service,
            database=location.database,
            change_number=number,
            path=str(dumped.path),
            sha256=dumped.sha256,
            size_bytes=dumped.size,
            created_at=dumped.started,
            duration_ms=duration_ms,
            toc_entries=toc.entries,
            toc_tables=toc.tables,
            filestore_ref=filestore,
            taken_by=ctx.actor.id,
        )
        audit_service.record(
            conn, ctx, "backup.taken", "backup", str(record.id), None, _audited(record)
        )
    return record


def _audited(record: BackupRecord) -> dict[str, object]:
    body = record.as_dict()
    return {key: body[key] for key in body if key not in ("id", "taken_by")}


def list_backups(
    engine: sa.Engine,
    ctx: Context,
    *,
    tenant: str | None = None,
    change_id: str | None = None,
    limit: int = 100,
) -> list[BackupRecord]:
    """Backups, newest first; of one tenant or one change when asked."""
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id) if change_id is not None else None
    with engine.connect() as conn:
        return backup_store.list_backups(
            conn, tenant=tenant, change_number=number, limit=max(1, min(limit, 1000))
        )


def get(engine: sa.Engine, ctx: Context, backup_id: int) -> BackupRecord:
    """One backup; NotFound naming it."""
    ctx.actor.require(Permission.CHANGES_READ)
    with engine.connect() as conn:
        return backup_store.get_backup(conn, backup_id)


def _intact(record: BackupRecord) -> Path:
    """The backup's file, after checking it is there and unchanged since it was taken."""
    path = Path(record.path)
    if not path.is_file():
        raise PermanentError(f"backup {record.id}: its file {path} is gone")
    actual = pgbackup.sha256_of(path)
    if actual != record.sha256:
        raise PermanentError(
            f"backup {record.id}: {path.name} has changed since it was taken (SHA-256 "
            f"{actual[:12]}…, recorded {record.sha256[:12]}…): not restoring it"
        )
    return path


def restore(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    backup_id: int,
    *,
    tool: BackupTool,
    into: str | None = None,
) -> dict[str, object]:
    """Restore backup `backup_id`: over its own database (`into` None), or into a new copy.

    Over the original needs `backups:restore` and ends the database's other sessions first;
    a copy needs `changes:transition` and a database name that does not exist yet. The
    file's checksum is checked first. The restore, its target and duration are audited as
    `backup.restored`; the answer says the same.
    """
    if into is None:
        ctx.actor.require(Permission.BACKUPS_RESTORE)
    else:
        ctx.actor.require(Permission.CHANGES_TRANSITION)
    with engine.connect() as conn:
        record = backup_store.get_backup(conn, backup_id)
    if into is not None:
        backups.check_copy_name(into, record.database)
    path = _intact(record)
    started = time.monotonic()
    restored = tool.restore(path, record.service, record.database, into=into)
    result: dict[str, object] = {
        "backup_id": record.id,
        "tenant": record.tenant,
        "service": record.service,
        "database": restored,
        "target": "original" if into is None else "copy",
        "sha256": record.sha256,
        "restore_ms": _elapsed_ms(started),
        "restored_at": canonical.to_utc_text(ctx.now()),
    }
    with db.transaction(engine) as conn:
        audit_service.record(
            conn, ctx, "backup.restored", "backup", str(record.id), None, dict(result)
        )
    return result


def drill(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    tenant: str,
    *,
    tool: BackupTool,
    backup_id: int | None = None,
) -> DrillRecord:
    """Restore the tenant's latest backup (or `backup_id`) into a scratch database, check
    it, time it, drop it, and record the evidence against the tier's RPO and RTO.

    The scratch database is `cg_drill_<tenant>_<yyyymmddhhmmss>` on the tenant's service,
    dropped whatever happens. A drill that fails on the way (a restore error, a file changed
    since it was taken) is recorded as failed, with the reason; one that cannot start (no
    backup, unknown tenant, a tool missing) is an error and records nothing.
    """
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    location = backups.where(catalog, tenant)
    tier = catalog.tiers[location.tier].spec
    with engine.connect() as conn:
        if backup_id is None:
            found = backup_store.latest_backup(conn, location.tenant)
            if found is None:
                raise NotFound(
                    f"{location.tenant} has no backup to drill: take one first "
                    f"(`changegate backup take {location.tenant}`)"
                )
            record = found
        else:
            record = backup_store.get_backup(conn, backup_id)
    if record.tenant != location.tenant:
        raise NotFound(f"backup {record.id} is of {record.tenant}, not {location.tenant}")
    started_at = ctx.now()
    scratch = backups.scratch_name(location.tenant, started_at)
    age = max(0.0, (started_at - record.created_at).total_seconds() / 60)
    restore_ms: int | None = None
    checked: pgbackup.DatabaseCheck | None = None
    error: str | None = None
    try:
        path = _intact(record)
        started = time.monotonic()
        tool.restore(path, record.service, record.database, into=scratch)
        restore_ms = _elapsed_ms(started)
        checked = tool.check(record.service, scratch)
    except pgbackup.ToolMissing:
        # Nothing to drill with: an error for the caller, not evidence of a failed restore.
        with contextlib.suppress(ChangegateError):
            tool.drop_database(record.service, record.database, scratch)
        raise
    except ChangegateError as exc:
        error = exc.message
    try:
        tool.drop_database(record.service, record.database, scratch)
    except ChangegateError as exc:
        left = f"the scratch database {scratch} was not dropped: {exc.message}"
        error = f"{error}; {left}" if error else left
    judged = backups.verdict(
        backup_age_minutes=age,
        restore_ms=restore_ms,
        rpo_minutes=tier.rpo_minutes,
        rto_minutes=tier.rto_minutes,
        tables_expected=record.toc_tables,
        tables_restored=checked.tables if checked else None,
        error=error,
    )
    with db.transaction(engine) as conn:
        done = backup_store.insert_drill(
            conn,
            {
                "backup_id": record.id,
                "tenant": location.tenant,
                "started_at": started_at,
                "scratch_database": scratch,
                "restore_ms": restore_ms,
                "tables": checked.tables if checked else None,
                "rows": checked.rows if checked else None,
                "backup_age_minutes": age,
                "rpo_minutes": tier.rpo_minutes,
                "rto_minutes": tier.rto_minutes,
                "rpo_met": judged.rpo_met,
                "rto_met": judged.rto_met,
                "passed": judged.passed,
                "reasons": judged.reasons,
                "run_by": ctx.actor.id,
            },
        )
        body = done.as_dict()
        audit_service.record(
            conn,
            ctx,
            "backup.drilled",
            "backup",
            str(record.id),
            None,
            {key: body[key] for key in body if key != "run_by"},
        )
    return done


def list_drills(
    engine: sa.Engine, ctx: Context, *, tenant: str | None = None, limit: int = 100
) -> Sequence[DrillRecord]:
    """Drills, newest first; of one tenant when asked."""
    ctx.actor.require(Permission.CHANGES_READ)
    with engine.connect() as conn:
        return backup_store.list_drills(conn, tenant=tenant, limit=max(1, min(limit, 1000)))
