"""`changegate report ...`: read-only reports over the stored changes.

`report risk-calibration --json` prints exactly what the API's
GET /api/v1/reports/risk-calibration answers: the period asked for and the service's rows.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from changegate.cli import output, runtime
from changegate.cli.audit import options_named, parse_instant
from changegate.domain import canonical

app = typer.Typer(help="Reports over closed changes: risk calibration.", no_args_is_help=True)

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
