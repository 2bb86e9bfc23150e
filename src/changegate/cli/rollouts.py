"""`changegate rollout status|list|start|pause|resume|abort|promote`: a change's rollout.

Registered by `cli.main` as the `rollout` sub-command. A worker (`changegate worker`, or the
one `serve` embeds) runs the steps; these commands read the rollout and steer it, through
the same service as the HTTP API (`/api/v1/changes/{id}/rollout...`). `--json` prints
exactly what the API answers (docs/rollout.md). Pausing, resuming, aborting and promoting
need `rollouts:control`, and a reason that goes into the audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from changegate.cli import output, runtime
from changegate.cli.audit import options_named
from changegate.cli.changes import ChangeId, JsonFlag
from changegate.domain import rollout as plan_model
from changegate.domain.rollout import Action, RolloutStatus

app = typer.Typer(
    help="A change's rollout, wave by wave: see it, start it, pause, resume, abort, promote.",
    no_args_is_help=True,
)

ReasonOption = Annotated[
    str,
    typer.Option(
        "--reason",
        metavar="TEXT",
        help="Why (required); kept in the audit trail.",
        show_default=False,
    ),
]


def _minute(text: str | None) -> str:
    return f"{text[:10]} {text[11:16]}Z" if text else "-"


def duration(seconds: int) -> str:
    """Seconds as a short Go-style duration: 0s, 45s, 10m, 1h30m, 1h0m5s."""
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h" if hours else ""
    if minutes or (hours and secs):
        text += f"{minutes}m"
    if secs:
        text += f"{secs}s"
    return text


def _note(step: dict[str, Any]) -> str:
    """What a person wants to know of a step: why it failed, who promoted it, or the note
    (or error) of one still to run."""
    result = step["result"] or {}
    if step["status"] == "failed" and result.get("failure"):
        return str(result["failure"])
    if step["status"] == "done" and result.get("promoted_by"):
        return f"promoted by {result['promoted_by']}: {result.get('reason', '')}"
    if step["status"] in ("pending", "running"):
        return str(step["last_error"] or "")
    return ""


def _step_rows(steps: list[dict[str, Any]], position: int, *, wave_column: bool) -> list[list[str]]:
    rows = []
    for step in steps:
        marker = "> " if step["seq"] == position else "  "
        row = [marker + step["kind"]]
        if wave_column:
            row.append(str(step["wave"]))
        row += [
            step["status"],
            str(step["attempts"]),
            _minute(step["finished_at"]),
            _note(step),
        ]
        rows.append(row)
    return rows


def _steps_table(steps: list[dict[str, Any]], position: int, *, wave_column: bool) -> None:
    columns = [output.Column("STEP")]
    if wave_column:
        columns.append(output.Column("WAVE", justify="right"))
    columns += [
        output.Column("STATUS"),
        output.Column("ATTEMPTS", justify="right"),
        output.Column("FINISHED"),
        output.Column("NOTE", drop=1, min_width=10),
    ]
    output.print_table(columns, _step_rows(steps, position, wave_column=wave_column))


def view_human(body: dict[str, Any]) -> None:
    """`rollout status`: what it is doing, why it stopped, and every step, wave by wave."""
    where = f" at {body['current']}" if body["current"] else ""
    output.out(f"{body['change_id']} rollout: {body['status']}{where}")
    if body["reason"]:
        output.out(f"  reason   {body['reason']}")
    output.out(f"  waves    {body['waves']}; bake {duration(body['bake_seconds'])} after each")
    steps: list[dict[str, Any]] = body["steps"]
    forward = [s for s in steps if s["kind"] in plan_model.FORWARD]
    rollback = [s for s in steps if s["kind"] not in plan_model.FORWARD]
    for wave in range(1, body["waves"] + 1):
        output.out("")
        output.out(f"wave {wave}/{body['waves']}")
        _steps_table([s for s in forward if s["wave"] == wave], body["position"], wave_column=False)
    if rollback:
        output.out("")
        output.out("rollback")
        _steps_table(rollback, body["position"], wave_column=True)
    current = next((s for s in steps if s["seq"] == body["position"]), None)
    if current is not None and current["status"] in ("pending", "running"):
        output.out("")
        due = f", due {_minute(current['due_at'])}" if current["status"] == "pending" else ""
        held = f", claimed by {current['claimed_by']}" if current["claimed_by"] else ""
        output.out(f"current step: {body['current']}, {current['status']}{due}{held}")
        if current["last_error"]:
            output.out(f"  note: {current['last_error']}")


@app.command("status")
def status(ctx: typer.Context, change_id: ChangeId, as_json: JsonFlag = False) -> None:
    """The rollout of a change: its status, why, the current step and every step."""
    from changegate.services import rollout as rollout_service

    state = runtime.json_mode(ctx, as_json)
    view = rollout_service.status(state.app().engine, state.context(), change_id)
    if as_json:
        output.emit_json(view.as_dict())
        return
    view_human(view.as_dict())


def _current(line: dict[str, Any]) -> str:
    """The current step's name from the plan (forward steps); rollback steps are `rollback`."""
    steps = plan_model.plan(int(line["waves"]))
    position = int(line["position"])
    if position < len(steps):
        return steps[position].key
    return "rollback" if line["status"] == RolloutStatus.ROLLING_BACK.value else "-"


@app.command("list")
def list_(
    ctx: typer.Context,
    statuses: Annotated[
        list[RolloutStatus] | None,
        typer.Option("--status", help="Only these statuses (repeatable).", case_sensitive=False),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every rollout (of the given statuses), by change."""
    from changegate.api.routes.rollouts import rollout_line, statuses_of
    from changegate.services import rollout as rollout_service

    state = runtime.json_mode(ctx, as_json)
    found = rollout_service.list_rollouts(
        state.app().engine, state.context(), statuses=statuses_of(statuses)
    )
    lines = [rollout_line(rollout) for rollout in found]
    if as_json:
        output.emit_json({"items": lines})
        return
    if not lines:
        output.out("no rollouts")
        return
    columns = [
        output.Column("CHANGE"),
        output.Column("STATUS"),
        output.Column("STEP"),
        output.Column("BAKE", justify="right", drop=3),
        output.Column("STARTED", drop=2),
        output.Column("REASON", drop=1, min_width=10),
    ]
    rows = [
        [
            line["change_id"],
            line["status"],
            _current(line) if not RolloutStatus(line["status"]).finished else "-",
            duration(line["bake_seconds"]),
            f"{_minute(line['created_at'])} by {line['created_by']}",
            line["reason"] or "",
        ]
        for line in lines
    ]
    output.print_table(columns, rows)


@app.command("start")
def start(
    ctx: typer.Context,
    change_id: ChangeId,
    bake: Annotated[
        str | None,
        typer.Option(
            "--bake",
            metavar="DURATION",
            help="How long each wave runs before the next starts (Go duration: 10m, 1h30m); "
            "default: the catalog GitOpsRepository's rollout.bake.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start the rollout of a change in implementing (a worker runs it); idempotent."""
    from changegate.api.routes import rollouts as rollout_routes

    state = runtime.json_mode(ctx, as_json)
    baked = rollout_routes.parse_bake(bake, field="--bake") if bake is not None else None
    app_ = state.app()
    view, created = rollout_routes.start(
        app_.engine, app_.catalog(), state.context(), change_id, baked
    )
    if as_json:
        output.emit_json(view.as_dict())
        return
    body = view.as_dict()
    if created:
        output.out(
            f"started {body['change_id']}'s rollout: {body['waves']} wave(s), "
            f"{len(body['steps'])} steps, bake {duration(body['bake_seconds'])}; a worker runs it"
        )
    else:
        output.out(f"{body['change_id']}'s rollout was started before; nothing changed")
    output.out("")
    view_human(body)


_DONE = {
    Action.PAUSE: "paused",
    Action.RESUME: "resumed",
    Action.ABORT: "aborted (rolling back)",
    Action.PROMOTE: "promoted",
}


def _control(
    ctx: typer.Context, action: Action, change_id: str, reason: str, as_json: bool
) -> None:
    from changegate.services import rollout as rollout_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    with options_named({"reason": "--reason"}):
        view = rollout_service.control(
            app_.engine, app_.catalog(), state.context(), change_id, action, reason=reason
        )
    if as_json:
        output.emit_json(view.as_dict())
        return
    output.out(f"{view.change_id}'s rollout {_DONE[action]}")
    output.out("")
    view_human(view.as_dict())


@app.command("pause")
def pause(
    ctx: typer.Context, change_id: ChangeId, reason: ReasonOption, as_json: JsonFlag = False
) -> None:
    """Stop at the current step: no worker claims it until someone resumes."""
    _control(ctx, Action.PAUSE, change_id, reason, as_json)


@app.command("resume")
def resume(
    ctx: typer.Context, change_id: ChangeId, reason: ReasonOption, as_json: JsonFlag = False
) -> None:
    """Go on from a pause: the current step runs again (not by the change's requester)."""
    _control(ctx, Action.RESUME, change_id, reason, as_json)


@app.command("abort")
def abort(
    ctx: typer.Context, change_id: ChangeId, reason: ReasonOption, as_json: JsonFlag = False
) -> None:
    """Roll back as a failure would: revert the current wave's commit (and the earlier waves'
    with the rollback plan's `revert: all`), close the change unsuccessful."""
    _control(ctx, Action.ABORT, change_id, reason, as_json)


@app.command("promote")
def promote(
    ctx: typer.Context, change_id: ChangeId, reason: ReasonOption, as_json: JsonFlag = False
) -> None:
    """Skip the current bake, or accept the current verification (not by the requester)."""
    _control(ctx, Action.PROMOTE, change_id, reason, as_json)
