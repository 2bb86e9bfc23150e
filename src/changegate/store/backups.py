"""Backups and DR drills in the database: rows written once, read back as records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from changegate.domain import canonical, changes
from changegate.domain.backups import BackupRecord, DrillRecord
from changegate.errors import NotFound
from changegate.store.schema import backup_drills as drills_table
from changegate.store.schema import backups as table


def backup_from_row(row: sa.Row[Any]) -> BackupRecord:
    return BackupRecord(
        id=row.id,
        tenant=row.tenant,
        service=row.service,
        database=row.database,
        change_id=changes.format_id(row.change_id) if row.change_id is not None else None,
        path=row.path,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        created_at=canonical.as_utc(row.created_at),
        duration_ms=row.duration_ms,
        toc_entries=row.toc_entries,
        toc_tables=row.toc_tables,
        filestore_ref=row.filestore_ref,
        taken_by=row.taken_by,
    )


def insert_backup(
    conn: sa.Connection,
    *,
    tenant: str,
    service: str,
    database: str,
    change_number: int | None,
    path: str,
    sha256: str,
    size_bytes: int,
    created_at: datetime,
    duration_ms: int,
    toc_entries: int,
    toc_tables: int,
    filestore_ref: str | None,
    taken_by: str,
) -> BackupRecord:
    """Write one backup's row; the record with its new id."""
    values: dict[str, Any] = {
        "tenant": tenant,
        "service": service,
        "database": database,
        "change_id": change_number,
        "path": path,
        "sha256": sha256,
        "size_bytes": size_bytes,
        "created_at": canonical.as_utc(created_at),
        "duration_ms": duration_ms,
        "toc_entries": toc_entries,
        "toc_tables": toc_tables,
        "filestore_ref": filestore_ref,
        "taken_by": taken_by,
    }
    new_id = conn.execute(sa.insert(table).values(values).returning(table.c.id)).scalar_one()
    return backup_from_row(conn.execute(sa.select(table).where(table.c.id == new_id)).one())


def get_backup(conn: sa.Connection, backup_id: int) -> BackupRecord:
    """The backup `backup_id`; NotFound naming it."""
    row = conn.execute(sa.select(table).where(table.c.id == backup_id)).first()
    if row is None:
        raise NotFound(f"no backup {backup_id}")
    return backup_from_row(row)


def list_backups(
    conn: sa.Connection,
    *,
    tenant: str | None = None,
    change_number: int | None = None,
    limit: int = 100,
) -> list[BackupRecord]:
    """Backups, newest first, optionally of one tenant or one change."""
    query = sa.select(table).order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(table.c.tenant == tenant)
    if change_number is not None:
        query = query.where(table.c.change_id == change_number)
    return [backup_from_row(row) for row in conn.execute(query)]


def latest_backup(conn: sa.Connection, tenant: str) -> BackupRecord | None:
    """The tenant's newest backup, or None."""
    found = list_backups(conn, tenant=tenant, limit=1)
    return found[0] if found else None


def drill_from_row(row: sa.Row[Any]) -> DrillRecord:
    return DrillRecord(
        id=row.id,
        backup_id=row.backup_id,
        tenant=row.tenant,
        started_at=canonical.as_utc(row.started_at),
        scratch_database=row.scratch_database,
        restore_ms=row.restore_ms,
        tables=row.tables,
        rows=row.rows,
        backup_age_minutes=row.backup_age_minutes,
        rpo_minutes=row.rpo_minutes,
        rto_minutes=row.rto_minutes,
        rpo_met=row.rpo_met,
        rto_met=row.rto_met,
        passed=row.passed,
        reasons=tuple(row.reasons),
        run_by=row.run_by,
    )


def insert_drill(conn: sa.Connection, values: dict[str, Any]) -> DrillRecord:
    """Write one drill's row (the columns of `backup_drills` but `id`); the record."""
    values = {**values, "started_at": canonical.as_utc(values["started_at"])}
    values["reasons"] = list(values["reasons"])
    new_id = conn.execute(
        sa.insert(drills_table).values(values).returning(drills_table.c.id)
    ).scalar_one()
    row = conn.execute(sa.select(drills_table).where(drills_table.c.id == new_id)).one()
    return drill_from_row(row)


def list_drills(
    conn: sa.Connection, *, tenant: str | None = None, limit: int = 100
) -> list[DrillRecord]:
    """Drills, newest first, optionally of one tenant."""
    query = (
        sa.select(drills_table)
        .order_by(drills_table.c.started_at.desc(), drills_table.c.id.desc())
        .limit(limit)
    )
    if tenant is not None:
        query = query.where(drills_table.c.tenant == tenant)
    return [drill_from_row(row) for row in conn.execute(query)]
