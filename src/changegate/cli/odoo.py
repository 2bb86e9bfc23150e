"""`changegate odoo ...`: Odoo-aware commands (docs/odoo.md).

`drift TENANT` reads the tenant's database (libpq service file: CHANGEGATE_PG_SERVICE_FILE)
and reports the modules installed without approval, approved but missing, changed in
version or content since the recorded baseline, or left half-way by an operation; it exits 2
when it finds any, 0 when none. `--record` stores what is installed now as the approved
baseline instead (exit 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from changegate.cli import output, runtime
from changegate.cli.changes import JsonFlag
from changegate.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from changegate.domain.odoo.addons import AddonSet

app = typer.Typer(
    help="Odoo-aware commands, per tenant database.",
    no_args_is_help=True,
)

DRIFT_FOUND_EXIT = 2


def _addons(ctx: typer.Context, tenant: str, folders: list[Path]) -> AddonSet | None:
    """The addons of `folders` read for the tenant's series; None without folders."""
    if not folders:
        return None
    from changegate.adapters import addons as addons_reader

    entity = runtime.state(ctx).catalog().tenants.get(tenant)
    if entity is None:
        return None  # the service says the tenant is unknown
    return addons_reader.from_folders(folders, entity.spec.odoo.series)


@app.command("drift")
def drift_command(
    ctx: typer.Context,
    tenant: Annotated[
        str, typer.Argument(metavar="TENANT", help="The tenant (catalog id).", show_default=False)
    ],
    addons: Annotated[
        list[Path] | None,
        typer.Option(
            "--addons",
            metavar="DIR",
            help="An addons path (repeatable): the catalog's modules' dependencies and the "
            "auto_install modules they trigger count as approved.",
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Record what is installed now as the approved baseline (audited), after "
            "showing what it acknowledges.",
        ),
    ] = False,
    change: Annotated[
        str | None,
        typer.Option(
            "--change",
            metavar="CHG",
            help="With --record: the closed successful change that produced this state.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Module drift: what differs, without approval, in TENANT's database.

    Installed modules neither in the catalog's list, needed by it (--addons) nor in the
    recorded baseline; listed modules not installed; versions and stored checksums changed
    since the baseline; modules an operation left pending. Exit 2 when any is found.
    """
    from changegate.services import odoo_drift

    state = runtime.json_mode(ctx, as_json)
    if change is not None and not record:
        raise InvalidInput([Problem("--change goes with --record", field="change")])
    app_ = state.app()
    catalog = app_.catalog()
    addon_set = _addons(ctx, tenant, addons or [])
    read = odoo_drift.database_reader(app_.settings.pg_service_file)
    if record:
        recorded = odoo_drift.record_snapshot(
            app_.engine,
            catalog,
            state.context(),
            tenant,
            read=read,
            change_id=change,
            addons=addon_set,
        )
        if as_json:
            output.emit_json(
                {
                    "recorded": recorded.baseline.as_dict(),
                    "acknowledged": recorded.acknowledged.as_dict(),
                }
            )
            return
        _human(recorded.acknowledged.as_dict())
        body = recorded.baseline.as_dict()
        by = f" for {body['change_id']}" if body["change_id"] else " (no change named)"
        output.out(
            f"recorded the baseline of {tenant}{by}: {len(body['modules'])} modules "
            f"(audit event {body['audit_seq']})"
        )
        return
    report = odoo_drift.check(
        app_.engine, catalog, state.context(), tenant, read=read, addons=addon_set
    )
    if as_json:
        output.emit_json(report.as_dict())
    else:
        _human(report.as_dict())
    if report.found:
        raise typer.Exit(DRIFT_FOUND_EXIT)


def _human(body: dict[str, Any]) -> None:
    output.out(f"{body['tenant']}: {body['installed']} modules installed in {body['source']}")
    baseline = body["baseline"]
    if baseline is None:
        output.out("baseline: none recorded")
    else:
        change = baseline["change_id"] or "no change named"
        at = baseline["recorded_at"]
        output.out(
            f"baseline: recorded {at[:10]} {at[11:16]}Z by {baseline['recorded_by']} "
            f"({change}; audit event {baseline['audit_seq']})"
        )
    for name in body["unapproved"]:
        output.out(
            f"unapproved: {name} (installed; approved by neither the catalog nor the baseline)"
        )
    for name in body["missing"]:
        output.out(f"missing: {name} (in the catalog, not installed)")
    for name in body["removed"]:
        output.out(f"removed: {name} (in the baseline, not installed)")
    for item in body["versions"]:
        output.out(
            f"version: {item['module']} {item['approved'] or '?'} -> "
            f"{item['installed'] or '?'} ({item['direction']})"
        )
    for name in body["checksums"]:
        output.out(f"checksum: {name} (same version as the baseline, other content)")
    for name, module_state in body["pending"].items():
        output.out(f"pending: {name} ({module_state})")
    if not body["found"]:
        output.out("no drift")
    for notice in body["notices"]:
        output.note(f"notice: {notice}")
