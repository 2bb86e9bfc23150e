"""`changegate backup take|list|show|restore|drill|drills`: pre-change PostgreSQL backups.

Registered by `cli.main` as the `backup` sub-command. The tools (pg_dump, pg_restore, psql)
connect through libpq's service file (CHANGEGATE_PG_SERVICE_FILE); files go under
CHANGEGATE_BACKUP_DIR. `--json` prints exactly what the API answers (docs/backups.md).
A drill that does not meet its tier's targets exits 2, its evidence recorded all the same.
"""

from __future__ import annotations

from typing import Annotated

import typer

from changegate.cli import output, runtime
from changegate.cli.changes import JsonFlag
from changegate.domain.backups import BackupRecord, DrillRecord

app = typer.Typer(
    help="Pre-change PostgreSQL backups: take, list, restore, and DR drills.",
    no_args_is_help=True,
)

Tenant = Annotated[
    str, typer.Argument(metavar="TENANT", help="The tenant (catalog id).", show_default=False)
]
BackupId = Annotated[
    int, typer.Argument(metavar="ID", help="The backup's id.", min=1, show_default=False)
]
TenantFilter = Annotated[
    str | None, typer.Option("--tenant", metavar="TENANT", help="Only this tenant's.")
]
Limit = Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")]
DRILL_FAILED_EXIT = 2


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _minute(text: str) -> str:
    return f"{text[:10]} {text[11:16]}Z"


def _backup_human(record: BackupRecord) -> None:
    body = record.as_dict()
    change = f" for {body['change_id']}" if body["change_id"] else ""
    output.out(
        f"backup {body['id']}: {body['tenant']} ({body['database']} on {body['service']}){change}"
    )
    output.out(f"  file     {body['path']}")
    output.out(f"  sha256   {body['sha256']}")
    output.out(
        f"  size     {_size(body['size_bytes'])}; {body['toc_entries']} archive entries, "
        f"{body['toc_tables']} tables; took {body['duration_ms']} ms"
    )
    output.out(f"  taken    {_minute(body['created_at'])} by {body['taken_by']}")
    filestore = body["filestore_ref"] or "none (the tenant uses no object storage)"
    output.out(f"  filestore {filestore}")


@app.command("take")
def take(
    ctx: typer.Context,
    tenant: Tenant,
    change: Annotated[
        str | None,
        typer.Option("--change", metavar="CHG", help="Attach the backup to this change."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Dump TENANT's database (pg_dump -Fc), check it restorable, and record it."""
    from changegate.services import backups as backup_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    record = backup_service.take(
        app_.engine,
        app_.catalog(),
        state.context(),
        tenant,
        tool=app_.backup_tool(),
        backup_dir=app_.backup_dir,
        change_id=change,
    )
    if as_json:
        output.emit_json(record.as_dict())
        return
    _backup_human(record)


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: TenantFilter = None,
    change: Annotated[
        str | None, typer.Option("--change", metavar="CHG", help="Only this change's.")
    ] = None,
    limit: Limit = 100,
    as_json: JsonFlag = False,
) -> None:
    """Backups, newest first."""
    from changegate.services import backups as backup_service

    state = runtime.json_mode(ctx, as_json)
    found = backup_service.list_backups(
        state.app().engine, state.context(), tenant=tenant, change_id=change, limit=limit
    )
    if as_json:
        output.emit_json({"items": [record.as_dict() for record in found]})
        return
    if not found:
        output.out("no backups")
        return
    columns = [
        output.Column("ID", justify="right"),
        output.Column("TENANT", min_width=8),
        output.Column("TAKEN"),
        output.Column("SIZE", justify="right"),
        output.Column("CHANGE", drop=2),
        output.Column("SHA256", drop=1, max_width=12),
    ]
    rows = [
        [
            str(r.id),
            r.tenant,
            _minute(r.as_dict()["created_at"]),
            _size(r.size_bytes),
            r.change_id or "-",
            r.sha256[:12],
        ]
        for r in found
    ]
    output.print_table(columns, rows)


@app.command("show")
def show(ctx: typer.Context, backup_id: BackupId, as_json: JsonFlag = False) -> None:
    """One backup: its file, checksum, size and what it belongs to."""
    from changegate.services import backups as backup_service

    state = runtime.json_mode(ctx, as_json)
    record = backup_service.get(state.app().engine, state.context(), backup_id)
    if as_json:
        output.emit_json(record.as_dict())
        return
    _backup_human(record)


@app.command("restore")
def restore(
    ctx: typer.Context,
    backup_id: BackupId,
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            metavar="DB",
            help="Restore into this new database (a copy) instead of the original.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Restore backup ID over its own database, or into a new copy with --into.

    Over the original (destructive: its other sessions are ended first) needs the
    backups:restore permission (platform-lead, admin); a copy needs changes:transition.
    """
    from changegate.services import backups as backup_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    result = backup_service.restore(
        app_.engine,
        app_.catalog(),
        state.context(),
        backup_id,
        tool=app_.backup_tool(),
        into=into,
    )
    if as_json:
        output.emit_json(result)
        return
    where = "over the original" if result["target"] == "original" else "as a copy"
    output.out(
        f"restored backup {result['backup_id']} into {result['database']} ({where}) in "
        f"{result['restore_ms']} ms"
    )


def _drill_human(record: DrillRecord) -> None:
    verdict = "PASSED" if record.passed else "FAILED"
    output.out(f"drill {record.id} of {record.tenant} (backup {record.backup_id}): {verdict}")
    output.out(f"  scratch database {record.scratch_database} (dropped)")
    restore = "-" if record.restore_ms is None else f"{record.restore_ms} ms"
    output.out(
        f"  RPO  backup age {record.backup_age_minutes:.1f} min, target {record.rpo_minutes} "
        f"min: {'met' if record.rpo_met else 'missed'}"
    )
    output.out(
        f"  RTO  restore {restore}, target {record.rto_minutes} min: "
        f"{'met' if record.rto_met else 'missed'}"
    )
    if record.tables is not None:
        output.out(f"  copy {record.tables} tables, {record.rows} rows")
    for reason in record.reasons:
        output.out(f"  - {reason}")


@app.command("drill")
def drill(
    ctx: typer.Context,
    tenant: Tenant,
    backup: Annotated[
        int | None,
        typer.Option("--backup", metavar="ID", min=1, help="Drill this backup, not the latest."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Restore TENANT's latest backup into a scratch database, check it, time it, drop it.

    Records the evidence against the tier's RPO (backup age) and RTO (restore time); exits
    2 when a target is missed or the restore failed.
    """
    from changegate.services import backups as backup_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    record = backup_service.drill(
        app_.engine,
        app_.catalog(),
        state.context(),
        tenant,
        tool=app_.backup_tool(),
        backup_id=backup,
    )
    if as_json:
        output.emit_json(record.as_dict())
    else:
        _drill_human(record)
    if not record.passed:
        raise typer.Exit(DRILL_FAILED_EXIT)


@app.command("drills")
def drills(
    ctx: typer.Context, tenant: TenantFilter = None, limit: Limit = 100, as_json: JsonFlag = False
) -> None:
    """DR drills recorded, newest first: the evidence against each tier's RPO and RTO."""
    from changegate.services import backups as backup_service

    state = runtime.json_mode(ctx, as_json)
    found = backup_service.list_drills(
        state.app().engine, state.context(), tenant=tenant, limit=limit
    )
    if as_json:
        output.emit_json({"items": [record.as_dict() for record in found]})
        return
    if not found:
        output.out("no drills")
        return
    columns = [
        output.Column("ID", justify="right"),
        output.Column("TENANT", min_width=8),
        output.Column("STARTED"),
        output.Column("RESULT"),
        output.Column("RESTORE", justify="right"),
        output.Column("AGE", justify="right", drop=1),
    ]
    rows = [
        [
            str(r.id),
            r.tenant,
            _minute(r.as_dict()["started_at"]),
            "passed" if r.passed else "failed",
            "-" if r.restore_ms is None else f"{r.restore_ms} ms",
            f"{r.backup_age_minutes:.0f} min",
        ]
        for r in found
    ]
    output.print_table(columns, rows)
