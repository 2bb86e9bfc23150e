"""`changegate retrospective show|review ID`: the after-the-fact review of an emergency change.

Registered by `cli.main` as the `retrospective` sub-command; the list of open and overdue
ones is `changegate report retrospectives`. `--json` prints exactly what the API answers:
the record of GET (show) or POST (review) /api/v1/changes/ID/retrospective.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from changegate.cli import output, runtime
from changegate.cli.audit import options_named
from changegate.cli.changes import ChangeId, JsonFlag

app = typer.Typer(
    help="Emergency changes' retrospectives: show one, or review it after the fact.",
    no_args_is_help=True,
)


def minute(text: str | None) -> str:
    """An instant of the JSON (`2026-11-03T14:00:00.000000Z`) to the minute, for people."""
    if not text:
        return "-"
    return f"{text[:10]} {text[11:16]}Z"


def record_human(body: dict[str, Any]) -> None:
    """A retrospective as a few lines: whose, when due, whether done, and the comment."""
    console = output.console()
    console.print(
        Text(
            f"{body['change_id']}  {body['status']}  (retrospective by {body['role']})",
            style="bold",
        )
    )
    console.print(Text(body["title"]))
    console.print(Text(f"requested by {body['requester']}; the change is {body['state']}"))
    console.print(Text(f"authorized {minute(body['authorized_at'])}; due {minute(body['due_at'])}"))
    if body["done_at"]:
        late = " (late)" if body["status"] == "done-late" else ""
        console.print(Text(f"done {minute(body['done_at'])} by {body['done_by']}{late}"))
        console.print(Text(f"comment: {body['comment']}"))
    else:
        console.print(Text("not reviewed yet"))


@app.command("show")
def show(ctx: typer.Context, change_id: ChangeId, as_json: JsonFlag = False) -> None:
    """An emergency change's retrospective: when it is due, whether it is done, by whom.

    Its status is told now: open, overdue, done or done-late. A change without one (not an
    emergency change, or not authorized yet) exits 1.
    """
    from changegate.services import retrospectives as retrospective_service

    state = runtime.json_mode(ctx, as_json)
    found = retrospective_service.get(state.app().engine, state.context(), change_id)
    body = found.as_dict()
    if as_json:
        output.emit_json(body)
        return
    record_human(body)


@app.command("review")
def review(
    ctx: typer.Context,
    change_id: ChangeId,
    comment: Annotated[
        str,
        typer.Option(
            "--comment",
            metavar="TEXT",
            help="The review (required): what happened, and what follows.",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Record your retrospective review of an authorized emergency change.

    Only someone holding the retrospective's role (cab by default) may review, never the
    change's requester or implementer (exit 2, naming who can); a blank comment exits 1; a
    retrospective is done once (a second review exits 3).
    """
    from changegate.services import retrospectives as retrospective_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    service_ctx = state.context()
    with options_named({"comment": "--comment"}):
        done = retrospective_service.review(
            app_.engine, app_.catalog(), service_ctx, change_id, comment
        )
    body = done.as_dict()
    if as_json:
        output.emit_json(body)
        return
    output.out(f"{service_ctx.actor.id} reviewed {body['change_id']}")
    record_human(body)
