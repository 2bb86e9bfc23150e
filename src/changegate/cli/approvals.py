"""Approvals from the command line: `changegate change approve|reject|approvals ID` and
`changegate approvals --for PERSON` (the inbox). Registered by `cli.main`.

`--json` prints exactly what the API answers: `change approve` the decision of
POST /api/v1/changes/ID/approvals, `change reject` the change of POST .../reject,
`change approvals` the requirement and decision of GET .../approvals, and `approvals` the
inbox of GET /api/v1/approvals/inbox.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from changegate.cli import output, runtime
from changegate.cli.changes import ChangeId, JsonFlag, _state_line, change_json

Role = Annotated[
    str | None,
    typer.Option("--role", metavar="ROLE", help="Count only as this role, e.g. cab."),
]
Tenant = Annotated[
    str | None,
    typer.Option(
        "--tenant", metavar="TENANT", help="Count only as this tenant's customer approval."
    ),
]

NEED_COLUMNS = (
    output.Column("NEED", max_width=24, min_width=8),
    output.Column("HAVE", justify="right"),
    output.Column("APPROVED BY", min_width=10, wrap=True),
    output.Column("WHO CAN", min_width=10, wrap=True),
    output.Column("RULES", drop=1, min_width=8, wrap=True),
)

INBOX_COLUMNS = (
    output.Column("CHANGE"),
    output.Column("RISK", drop=2),
    output.Column("ENV", drop=3, max_width=12, min_width=4),
    output.Column("TITLE", drop=1, min_width=12, wrap=True),
    output.Column("WAITING FOR", min_width=12, wrap=True),
)


def _have(need: dict[str, Any]) -> str:
    return f"{need['count'] - need['missing']}/{need['count']}"


def _needs_table(needs: list[dict[str, Any]]) -> None:
    if not needs:
        output.out("no needs: nothing can authorize this change")
        return
    output.print_table(
        NEED_COLUMNS,
        [
            [
                need["key"],
                _have(need),
                output.joined(need["approved_by"]),
                output.joined(need["candidates"]) if not need["satisfied"] else "-",
                output.joined(need["rules"]),
            ]
            for need in needs
        ],
    )


def _decision_human(decision: dict[str, Any]) -> None:
    state = "authorized" if decision["authorized"] else "not authorized"
    console = output.console()
    console.print(Text(f"{decision['change_id']}  {state}", style="bold"))
    console.print(Text(decision["reason"]))
    if decision["valid_until"]:
        console.print(Text(f"valid until {decision['valid_until']}"))
    console.print()
    _needs_table(decision["needs"])
    for item in decision["ignored"]:
        console.print(Text(f"not counted: {item['person']} ({item['why']}): {item['reason']}"))


def approve(
    ctx: typer.Context,
    change_id: ChangeId,
    role: Role = None,
    tenant: Tenant = None,
    comment: Annotated[
        str | None,
        typer.Option("--comment", metavar="TEXT", help="Why; kept with the approval."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve a change's current content as the acting person; prints the decision.

    Refused (exit 2, naming who can approve) for the requester, the implementer or someone
    the change does not need; approving the same content twice exits 3. The change stays in
    authorize.
    """
    from changegate.services import approvals as approval_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    service_ctx = state.context()
    decision = approval_service.approve(
        app_.engine,
        app_.catalog(),
        service_ctx,
        change_id,
        role=role,
        tenant=tenant,
        comment=comment,
    )
    body = decision.as_dict()
    if as_json:
        output.emit_json(body)
        return
    output.out(f"{service_ctx.actor.id} approved {body['change_id']}")
    _decision_human(body)


def reject(
    ctx: typer.Context,
    change_id: ChangeId,
    comment: Annotated[
        str,
        typer.Option("--comment", metavar="TEXT", help="Why (required); kept in the audit trail."),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Reject a change in authorize back to draft, saying why; whoever may approve may reject."""
    from changegate.services import approvals as approval_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    service_ctx = state.context()
    moved = approval_service.reject(app_.engine, app_.catalog(), service_ctx, change_id, comment)
    if as_json:
        output.emit_json(change_json(moved))
        return
    output.out(f"{service_ctx.actor.id} rejected {moved.id}: {comment.strip()}")
    output.out(_state_line(moved))


def approvals(ctx: typer.Context, change_id: ChangeId, as_json: JsonFlag = False) -> None:
    """Who must approve a change and why, who approved, and who could still approve."""
    from changegate.api.routes.approvals import approvals_body
    from changegate.services import approvals as approval_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    service_ctx = state.context()
    found = approval_service.authorization(app_.engine, app_.catalog(), service_ctx, change_id)
    body = approvals_body(found)
    if as_json:
        output.emit_json(body)
        return
    requirement = body["requirement"]
    console = output.console()
    authorization = body["authorization"]
    if authorization["via"] == "template":
        console.print(Text(f"{requirement['change_id']}  {authorization['reason']}", style="bold"))
        console.print(Text("; ".join(authorization["template"]["reasons"])))
        console.print()
    risk = requirement["risk_class"] or "not assessed"
    console.print(
        Text(
            f"{requirement['change_id']}  risk {risk}; "
            f"{requirement['approvals_needed']} approval(s) needed",
            style="bold",
        )
    )
    console.print(Text(f"requirement: {requirement['reason']}"))
    console.print(Text(f"rules from {requirement['policy_source']}"))
    template = authorization["template"]
    if template is not None and not template["ok"]:
        console.print(Text("no standard template covers it: " + "; ".join(template["reasons"])))
    console.print()
    _decision_human(body["decision"])


def inbox(
    ctx: typer.Context,
    person: Annotated[
        str | None,
        typer.Option(
            "--for",
            metavar="PERSON",
            help="Whose inbox (else yours); someone else's needs audit:read.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The changes waiting in authorize for a person's approval, oldest first."""
    from changegate.services import approvals as approval_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    service_ctx = state.context()
    catalog = app_.catalog()
    whose = approval_service.inbox_person(catalog, service_ctx, person)
    items = approval_service.inbox(app_.engine, catalog, service_ctx, whose)
    rows = [item.as_dict() for item in items]
    body: dict[str, Any] = {"person": whose, "items": rows}
    if as_json:
        output.emit_json(body)
        return
    if not items:
        output.out(f"nothing waits for {whose}")
        return
    output.out(f"{len(items)} change(s) wait for {whose}")
    output.print_table(
        INBOX_COLUMNS,
        [
            [
                item["change_id"],
                item["risk_class"] or "-",
                item["environment"],
                item["title"],
                output.joined(f"{need['key']} ({need['missing']} more)" for need in item["needs"]),
            ]
            for item in rows
        ],
    )


def register(app: typer.Typer, change_app: typer.Typer) -> None:
    """Add `change approve|reject|approvals` to `change_app` and `approvals` to `app`."""
    change_app.command("approve")(approve)
    change_app.command("reject")(reject)
    change_app.command("approvals")(approvals)
    app.command("approvals")(inbox)
