"""`changegate analysis ...`: verification analysis with Argo Rollouts' AnalysisTemplate rules.

`analysis replay` judges a template against recorded measurements, offline: no database,
no catalog, no Prometheus. Exit codes: 0 when the run is Successful; 2 when it is Failed,
Error or Inconclusive (a rule refused it; Inconclusive would pause a rollout for a person)
and when it is still Running (the measurements did not reach a conclusion: add some, or
pass --terminate); 1 for a bad template, measurements file or --arg.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from changegate.cli import output, runtime
from changegate.errors import InvalidInput, Problem

app = typer.Typer(
    help="Verification analysis (Argo Rollouts AnalysisTemplates): replay recorded measurements.",
    no_args_is_help=True,
)

REFUSED_EXIT = 2

STEP_COLUMNS = (
    output.Column("METRIC", min_width=8, max_width=30),
    output.Column("#", justify="right"),
    output.Column("MEASUREMENT"),
    output.Column("VALUE", min_width=8, max_width=30),
    output.Column("METRIC PHASE", drop=1),
    output.Column("MESSAGE", drop=2, min_width=10, wrap=True),
)
METRIC_COLUMNS = (
    output.Column("METRIC", min_width=8, max_width=30),
    output.Column("PHASE"),
    output.Column("COUNT", justify="right", drop=2),
    output.Column("OK", justify="right", drop=1),
    output.Column("FAILED", justify="right", drop=1),
    output.Column("INCONCL.", justify="right", drop=1),
    output.Column("ERRORS", justify="right", drop=1),
    output.Column("WHY", min_width=10, wrap=True),
)

VERDICTS = {
    "Successful": "analysis Successful",
    "Failed": "analysis FAILED: a rollout would roll back",
    "Error": "analysis ERROR: a rollout would roll back",
    "Inconclusive": "analysis INCONCLUSIVE: a rollout would pause for a person to decide",
    "Running": "analysis still Running: the measurements reach no conclusion "
    "(record more, or pass --terminate)",
}


def parse_args(values: list[str]) -> dict[str, str]:
    """`--arg name=value` options as a mapping; InvalidInput for a malformed or repeated one."""
    parsed: dict[str, str] = {}
    problems = []
    for value in values:
        name, sep, text = value.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(Problem(f"expected name=value, got {value!r}", field="--arg"))
        elif name in parsed:
            problems.append(Problem(f"arg {name!r} given twice", field="--arg"))
        else:
            parsed[name] = text
    if problems:
        raise InvalidInput(problems)
    return parsed


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 60 else text[:57] + "..."


def _human(body: dict[str, Any]) -> None:
    console = output.console()
    console.print(Text(f"template {body['template']}", style="bold"))
    rows = []
    for step in body["steps"]:
        measurement = step["measurement"]
        if measurement is None:
            rows.append(
                [step["metric"], str(step["index"]), "not taken", "-", step["metric_phase"],
                 "the metric or the run had already completed"]
            )  # fmt: skip
            continue
        rows.append(
            [step["metric"], str(step["index"]), measurement["phase"],
             _shown(measurement["value"]), step["metric_phase"], measurement["message"] or "-"]
        )  # fmt: skip
    if rows:
        output.print_table(STEP_COLUMNS, rows)
    console.print()
    output.print_table(
        METRIC_COLUMNS,
        [
            [
                m["metric"],
                m["phase"],
                str(m["count"]),
                str(m["successful"]),
                str(m["failed"]),
                str(m["inconclusive"]),
                str(m["error"]),
                m["message"] or "-",
            ]
            for m in body["metrics"]
        ],
    )
    console.print()
    console.print(Text(VERDICTS.get(body["phase"], body["phase"]), style="bold"))
    if body.get("message"):
        console.print(Text(body["message"]))


@app.command("replay")
def replay(
    ctx: typer.Context,
    template: Annotated[
        Path,
        typer.Option("--template", metavar="T.yaml", help="An Argo Rollouts AnalysisTemplate."),
    ],
    measurements: Annotated[
        Path,
        typer.Option(
            "--measurements",
            metavar="M.json",
            help='Recorded values per metric: {"metric": [0.97, [0.5], {"error": "why"}]}.',
        ),
    ],
    args: Annotated[
        list[str] | None,
        typer.Option("--arg", metavar="NAME=VALUE", help="A template arg (repeatable)."),
    ] = None,
    terminate: Annotated[
        bool,
        typer.Option(
            "--terminate",
            help="End the run after the measurements, as Argo ends a background analysis "
            "when the rollout completes (running metrics become Successful).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Judge a template against recorded measurements, by Argo Rollouts' outcome rules.

    Prints each measurement's outcome, each metric's phase and the run's phase. Exit 0 when
    Successful; 2 when Failed, Error, Inconclusive or still Running; 1 for bad input.
    """
    from changegate.services import analysis as analysis_service

    state = runtime.json_mode(ctx, as_json)
    limit = state.require_settings().max_file_bytes
    given = parse_args(args or [])
    loaded = analysis_service.load_template(template, max_bytes=limit)
    recorded = analysis_service.load_recorded(measurements, max_bytes=limit)
    result = analysis_service.replay(loaded, recorded, args=given, terminate=terminate)
    body = result.as_dict()
    if as_json:
        output.emit_json(body)
    else:
        _human(body)
    if body["phase"] != "Successful":
        raise typer.Exit(REFUSED_EXIT)
