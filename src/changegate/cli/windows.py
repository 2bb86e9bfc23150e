"""`changegate windows ...`: ask the change calendar, publish it as iCalendar, import Argo CD
sync windows.

`windows check --json` prints exactly what GET /api/v1/windows/check answers: the decision,
the windows that decided it, the next instant the change would be allowed and who may
override. Its exit code answers the question for scripts: 0 when allowed, 2 when blocked
(a window refuses, like any rule that says no), 1 for bad input.

`windows ics` writes the feed GET /api/v1/calendar/ics serves; `windows import-argocd`
reads an Argo CD AppProject and writes changegate Window documents (no database, no
catalog: review the output and commit it to the platform repository).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from changegate.cli import output, runtime
from changegate.cli.audit import options_named, parse_instant
from changegate.cli.retrospectives import minute
from changegate.errors import InvalidInput, Problem

app = typer.Typer(
    help="Maintenance windows and freezes: check a tenant, ICS feeds, Argo CD import.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
OutFile = Annotated[
    Path | None,
    typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout."),
]
BLOCKED_EXIT = 2

# The service's names for the inputs, and the options that give them here.
CHECK_OPTIONS = {"at": "--at", "type": "--type", "category": "--category", "tenant": "--tenant"}
FEED_OPTIONS = {"from": "--from", "to": "--to", "tenant": "--tenant"}

DECIDING_COLUMNS = (
    output.Column("WINDOW", min_width=12, max_width=40),
    output.Column("PURPOSE", drop=2),
    output.Column("FROM (UTC)"),
    output.Column("TO (UTC)", drop=1),
)


def _occurrence_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [item["window"], item.get("purpose") or "-", minute(item["start"]), minute(item["end"])]
        for item in items
    ]


def _decision_human(body: dict[str, Any]) -> None:
    verdict = "allowed" if body["allowed"] else "BLOCKED"
    console = output.console()
    console.print(Text(f"{body['tenant']} at {minute(body['at'])}: {verdict}", style="bold"))
    if body.get("reason"):
        console.print(Text(str(body["reason"])))
    deciding = list(body.get("deciding") or [])
    if deciding:
        console.print()
        waiting = not body["allowed"] and all(d.get("type") == "allow" for d in deciding)
        console.print(Text("Allow windows (next or last opening):" if waiting else "Decided by:"))
        output.print_table(DECIDING_COLUMNS, _occurrence_rows(deciding))
    exempted = list(body.get("exempted") or [])
    if exempted:
        console.print()
        console.print(Text(f"exempt from: {output.joined(exempted)}"))
    if not body["allowed"]:
        console.print()
        console.print(Text(f"next allowed at: {minute(body.get('next_allowed_at'))}"))
        if not body.get("next_allowed_at"):
            console.print(Text("(no allowed instant within the horizon searched)"))
        console.print(Text(f"who may override: {body.get('override_by') or '-'}"))


@app.command("check")
def check(
    ctx: typer.Context,
    tenant: Annotated[
        str, typer.Option("--tenant", metavar="TENANT", help="The tenant the change touches.")
    ],
    at: Annotated[
        str,
        typer.Option("--at", metavar="ISO", help="The instant, with an offset (…T22:00:00Z)."),
    ],
    change_type: Annotated[
        str | None,
        typer.Option(
            "--type", metavar="TYPE", help="The change type: standard, normal or emergency."
        ),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", metavar="CATEGORY", help="The change category."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """May a change touch TENANT at an instant? Exit 0 when allowed, 2 when blocked.

    Names the windows that decided it; when blocked, the next instant it would be allowed
    and the role that may override. A freeze may exempt change types and categories.
    """
    from changegate.services import calendar as calendar_service

    state = runtime.json_mode(ctx, as_json)
    instant = parse_instant(at, "--at")
    assert instant is not None
    service_ctx = state.context()
    catalog = state.catalog()
    with options_named(CHECK_OPTIONS):
        decision = calendar_service.check(
            catalog, service_ctx, tenant, instant, change_type=change_type, category=category
        )
    body = decision.as_dict()
    if as_json:
        output.emit_json(body)
    else:
        _decision_human(body)
    if not body["allowed"]:
        raise typer.Exit(BLOCKED_EXIT)


def _write(out_file: Path, data: bytes) -> None:
    """Write data to out_file through a partial file, so a reader never sees half of it."""
    partial = out_file.with_name(out_file.name + ".partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, out_file)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InvalidInput(
            [Problem(f"cannot write: {exc.strerror or exc}", file=str(out_file))]
        ) from None


@app.command("ics")
def ics(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Option("--from", metavar="ISO", help="From this instant (inclusive).")
    ],
    end: Annotated[
        str, typer.Option("--to", metavar="ISO", help="Up to this instant (exclusive).")
    ],
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", metavar="TENANT", help="The windows of one tenant (default: all)."
        ),
    ] = None,
    out_file: OutFile = None,
) -> None:
    """The iCalendar (RFC 5545) feed of a tenant's windows and booked changes, or of the
    whole platform.

    One event per window occurrence and per booked wave meeting [--from, --to), in UTC, with
    a stable UID;
    subscribe to GET /api/v1/calendar/ics for a feed that stays current.
    """
    from changegate.services import calendar as calendar_service

    state = runtime.state(ctx)
    first, last = parse_instant(start, "--from"), parse_instant(end, "--to")
    assert first is not None
    assert last is not None
    app_ = state.app()
    with options_named(FEED_OPTIONS):
        data = calendar_service.feed(
            app_.engine, app_.catalog(), state.context(), start=first, end=last, tenant=tenant
        )
    events = data.count(b"BEGIN:VEVENT")
    if out_file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        output.note(f"{events} events")
    else:
        _write(out_file, data)
        output.note(f"wrote {events} events to {out_file}")


@app.command("import-argocd")
def import_argocd(
    ctx: typer.Context,
    project: Annotated[
        Path, typer.Argument(metavar="APPPROJECT.yaml", help="An Argo CD AppProject manifest.")
    ],
    out_file: OutFile = None,
    timezone: Annotated[
        str,
        typer.Option(
            "--timezone",
            metavar="TZ",
            help="The timezone of windows without timeZone (Argo CD's default: UTC).",
        ),
    ] = "UTC",
    as_json: JsonFlag = False,
) -> None:
    """Turn an AppProject's syncWindows into changegate Window documents (YAML).

    Applications become tenants, clusters stay clusters; namespaces, manualSync and cluster
    URLs have no equivalent. Notes on stderr say where changegate's semantics differ
    (start-inclusive intervals; the timezone offset taken at each occurrence). With --json,
    stdout has {documents, notes}.
    """
    from changegate.adapters import argocd, yamlsource

    state = runtime.json_mode(ctx, as_json)
    settings = state.require_settings()
    raw = yamlsource.read_bytes(project, display=str(project), max_bytes=settings.max_file_bytes)
    result = argocd.import_sync_windows(raw, str(project), timezone_default=timezone)
    text = argocd.to_yaml(result.documents)
    if out_file is not None:
        _write(out_file, text.encode("utf-8"))
    if as_json:
        output.emit_json(result.as_dict())
    elif out_file is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    if not as_json:  # with --json the notes are in the document
        for note in result.notes:
            output.note(f"note: {note}")
    count = len(result.documents)
    where = f" to {out_file}" if out_file is not None else ""
    output.note(f"{count} window{'s' if count != 1 else ''} imported{where}")


CALENDAR_COLUMNS = (
    output.Column("START (UTC)"),
    output.Column("END (UTC)", drop=2),
    output.Column("WHAT"),
    output.Column("ID"),
    output.Column("DETAIL", drop=1, min_width=12, wrap=True),
)


def _calendar_row(item: dict[str, Any]) -> list[str]:
    start, end = minute(item["start"]), minute(item["end"])
    if item["kind"] == "window":
        return [start, end, item["purpose"], item["id"], item["reason"] or "-"]
    detail = f"wave {item['wave']}/{item['waves']}, {item['tenants']} tenant(s): {item['title']}"
    return [start, end, "change", item["id"], detail]


def calendar_command(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Option("--from", metavar="ISO", help="From this instant (inclusive).")
    ],
    end: Annotated[
        str, typer.Option("--to", metavar="ISO", help="Up to this instant (exclusive).")
    ],
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", metavar="TENANT", help="One tenant's windows and changes."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The calendar of a period: window occurrences (maintenance, release, freezes,
    blackouts) and booked changes (each wave), in time order; at most 366 days."""
    from changegate.services import calendar as calendar_service

    state = runtime.json_mode(ctx, as_json)
    first, last = parse_instant(start, "--from"), parse_instant(end, "--to")
    assert first is not None
    assert last is not None
    app_ = state.app()
    with options_named(FEED_OPTIONS):
        body = calendar_service.view(
            app_.engine, app_.catalog(), state.context(), start=first, end=last, tenant=tenant
        )
    if as_json:
        output.emit_json(body)
        return
    scope = f"tenant {tenant}" if tenant else "the platform"
    output.console().print(
        Text(f"{scope}: {len(body['items'])} item(s) from {body['from']} to {body['to']}")
    )
    if body["items"]:
        output.print_table(CALENDAR_COLUMNS, [_calendar_row(item) for item in body["items"]])
