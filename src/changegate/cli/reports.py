"""`changegate report ...`: read-only reports over the stored changes.

`report risk-calibration --json` prints exactly what the API's
GET /api/v1/reports/risk-calibration answers: the period asked for and the service's rows;
`report retrospectives --json` what GET /api/v1/reports/retrospectives answers.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from changegate.cli import output, runtime
from changegate.cli.audit import options_named, parse_instant
from changegate.cli.retrospectives import minute
from changegate.domain import canonical
from changegate.domain.retrospectives import Listing

app = typer.Typer(
    help="Reports over changes: risk calibration, emergency retrospectives.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]

# The service's names for the period, and the options that give them here.
PERIOD_OPTIONS = {"since": "--since", "until": "--until"}

CALIBRATION_COLUMNS = (
    output.Column("CLASS"),
    output.Column("CHANGES", justify="right"),
    output.Column("SUCCESSFUL", justify="right"),
    output.Column("WITH ISSUES", justify="right", drop=1),
    output.Column("FAILED", justify="right"),
    output.Column("FAILURE RATE", justify="right"),
)


RETROSPECTIVE_COLUMNS = (
    output.Column("CHANGE"),
    output.Column("STATUS"),
    output.Column("DUE"),
    output.Column("DONE BY", drop=3, max_width=16, min_width=7),
    output.Column("ROLE", drop=5, max_width=16, min_width=4),
    output.Column("STATE", drop=4),
    output.Column("TITLE", drop=1, min_width=18, wrap=True),
)


def _rate(value: Any) -> str:
    return f"{value * 100:.1f}%" if isinstance(value, int | float) else "-"


def _period(body: dict[str, Any]) -> str:
    since, until = body["since"], body["until"]
    if since and until:
        return f"closed from {since} to {until} (exclusive)"
    if since:
        return f"closed since {since}"
    if until:
        return f"closed before {until}"
    return "closed at any time"


@app.command("risk-calibration")
def risk_calibration(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="ISO", help="Closed at or after this instant."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="ISO", help="Closed before this instant.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Per risk class of their latest assessment, how the closed changes ended.

    One row per class (low, medium, high, critical), then `unassessed` for closed changes
    never assessed: how many, successful, successful with issues, failed (unsuccessful), and
    the failure rate. If "high" does not fail more often than "low", tune the RiskPolicy.
    --since and --until are ISO 8601 instants with an offset (2026-10-01T00:00:00Z).
    """
    from changegate.services import assessments as assessment_service

    state = runtime.json_mode(ctx, as_json)
    start, end = parse_instant(since, "--since"), parse_instant(until, "--until")
    service_ctx = state.context()
    with options_named(PERIOD_OPTIONS):
        rows = assessment_service.risk_calibration(
            state.app().engine, service_ctx, since=start, until=end
        )
    body = {
        "since": canonical.to_utc_text(start) if start else None,
        "until": canonical.to_utc_text(end) if end else None,
        "items": rows,
    }
    if as_json:
        output.emit_json(body)
        return
    total = sum(row["changes"] for row in rows)
    counted = f"{total} change" if total == 1 else f"{total} changes"
    console = output.console()
    console.print(Text(f"Risk calibration: {counted} {_period(body)}", style="bold"))
    console.print(
        Text(
            "Each closed change counts in the class of its latest assessment; failed means "
            "closed unsuccessful (successful with issues is not a failure)."
        )
    )
    console.print()
    output.print_table(
        CALIBRATION_COLUMNS,
        [
            [
                row["risk_class"],
                str(row["changes"]),
                str(row["successful"]),
                str(row["with_issues"]),
                str(row["failed"]),
                _rate(row["failure_rate"]),
            ]
            for row in rows
        ],
    )


def _retrospectives_headline(body: dict[str, Any]) -> str:
    items = body["items"]
    overdue = sum(1 for item in items if item["status"] == "overdue")
    at = minute(body["now"])
    if body["status"] == "overdue":
        return f"Retrospectives: {overdue} overdue at {at}"
    if body["status"] == "open":
        return f"Retrospectives: {len(items)} open, {overdue} of them overdue, at {at}"
    done = sum(1 for item in items if item["status"] in ("done", "done-late"))
    return f"Retrospectives: {len(items)} in all, {done} done, {overdue} overdue, at {at}"


@app.command("retrospectives")
def retrospectives(
    ctx: typer.Context,
    status: Annotated[
        Listing,
        typer.Option(
            "--status",
            help="open: not yet done (overdue ones included); overdue: past their deadline; "
            "all: done ones too.",
        ),
    ] = Listing.OPEN,
    as_json: JsonFlag = False,
) -> None:
    """Emergency changes' retrospectives, earliest deadline first, with their status now.

    Every authorized emergency change is reviewed after the fact by the role its approval
    policy names (cab by default) within a deadline (48 hours by default); this lists the
    open ones, the overdue ones, or all. Review one with `changegate retrospective review`.
    """
    from changegate.services import retrospectives as retrospective_service

    state = runtime.json_mode(ctx, as_json)
    service_ctx = state.context()
    with options_named({"status": "--status"}):
        found = retrospective_service.report(state.app().engine, service_ctx, status=status)
    body = found.as_dict()
    if as_json:
        output.emit_json(body)
        return
    console = output.console()
    console.print(Text(_retrospectives_headline(body), style="bold"))
    if not body["items"]:
        return
    roles = output.joined(sorted({item["role"] for item in body["items"]}))
    console.print(Text(f"Reviewed after the fact by {roles}, before DUE (UTC)."))
    console.print()
    output.print_table(
        RETROSPECTIVE_COLUMNS,
        [
            [
                item["change_id"],
                item["status"],
                minute(item["due_at"]),
                item["done_by"] or "-",
                item["role"],
                item["state"],
                item["title"],
            ]
            for item in body["items"]
        ],
    )
