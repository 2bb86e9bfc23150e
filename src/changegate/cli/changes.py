"""`changegate change ...`: file, list, show, edit and move change requests."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from changegate.cli import output, runtime
from changegate.domain import changes
from changegate.domain.changes import Category, ChangeState, ChangeType, CloseCode
from changegate.errors import InvalidInput, NotFound, PayloadTooLarge, Problem

if TYPE_CHECKING:
    import sqlalchemy as sa

    from changegate.adapters.yamlsource import SourceDocument
    from changegate.domain.audit import AuditEvent
    from changegate.domain.changes import ChangeRequest
    from changegate.domain.risk import Assessment
    from changegate.services.context import Context
    from changegate.services.impact import ChangeImpact
    from changegate.settings import Settings

app = typer.Typer(
    help="Change requests: file, list, show, edit and move them.", no_args_is_help=True
)

STDIN = "-"
# As the HTTP API words it (changegate.api.jsonbody), for a --set value.
SURROGATE_MESSAGE = "unpaired UTF-16 surrogates (\\ud800-\\udfff) are not allowed in text"
HISTORY_LIMIT = 500

ChangeId = Annotated[
    str, typer.Argument(metavar="ID", help="The change, e.g. CHG-12 (or 12).", show_default=False)
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
IfVersion = Annotated[
    int | None,
    typer.Option(
        "--if-version",
        metavar="N",
        min=1,
        help="Refuse (exit 3) unless the change is still at version N.",
    ),
]
Reason = Annotated[
    str | None,
    typer.Option("--reason", metavar="TEXT", help="Why; kept in the audit trail."),
]


# ---------------------------------------------------------------------------------------------
# reading change files


def read_documents(name: str, settings: Settings) -> list[SourceDocument]:
    """Parse a YAML/JSON file (or stdin for `-`), refusing it over CHANGEGATE_MAX_FILE_BYTES."""
    from changegate.adapters import yamlsource

    limit = settings.max_file_bytes
    if name == STDIN:
        raw = sys.stdin.buffer.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(
                [Problem(f"input is over the limit of {limit} bytes", file="<stdin>")]
            )
        return yamlsource.load_bytes(raw, display="<stdin>")
    return yamlsource.load_file(Path(name), display=name, max_bytes=limit)


def _display(name: str) -> str:
    return "<stdin>" if name == STDIN else name


# ---------------------------------------------------------------------------------------------
# human output


def _when(value: datetime | None) -> str:
    """An instant in UTC to the minute, for tables."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if value else "-"


def _state_line(change: ChangeRequest) -> str:
    nxt = ", ".join(s.value for s in changes.allowed_next(change)) or "none (final)"
    held = f", held from {change.held_from.value}" if change.held_from else ""
    return f"{change.id} is {change.state.value}{held} (version {change.version}); next: {nxt}"


def change_json(change: ChangeRequest) -> dict[str, Any]:
    """A change as JSON: `ChangeRequest.as_dict()` plus `allowed_next`, as the HTTP API gives it."""
    return {
        **change.as_dict(),
        "allowed_next": [state.value for state in changes.allowed_next(change)],
    }


def _print_result(change: ChangeRequest, as_json: bool, headline: str | None = None) -> None:
    if as_json:
        output.emit_json(change_json(change))
        return
    if headline:
        output.out(headline)
    output.out(_state_line(change))


def _targets_text(change: ChangeRequest) -> str:
    targets = change.spec.targets
    parts = []
    for label, ids in (
        ("tenants", targets.tenants),
        ("services", targets.services),
        ("clusters", targets.clusters),
    ):
        if ids:
            parts.append(f"{label}: {', '.join(ids)}")
    for selector in targets.selectors:
        shown = ", ".join(f"{k}={v}" for k, v in selector.model_dump(exclude_none=True).items())
        parts.append(f"selector: {shown}")
    return "\n".join(parts) or "-"


def _artifacts_text(change: ChangeRequest) -> str:
    artifacts = change.spec.artifacts
    lines = [f"image {i.ref}" + (f" @{i.digest}" if i.digest else "") for i in artifacts.images]
    lines += [f"git {g.repo} {g.from_commit or '?'}..{g.to_commit}" for g in artifacts.git]
    for label, paths in (
        ("manifest", artifacts.manifests),
        ("plan", artifacts.terraform_plans),
        ("report", artifacts.reports),
    ):
        lines += [f"{label} {p}" for p in paths]
    return "\n".join(lines) or "-"


def _summary(event: AuditEvent) -> str:
    """One line saying what an event did to a change."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    if event.action == "change.created":
        return f"filed as {after.get('state', '?')}, version {after.get('version', '?')}"
    if event.action == "change.commented":
        body = str(after.get("body", ""))
        return body if len(body) <= 120 else body[:119] + "…"
    if "state" in after:
        text = f"{before.get('state', '?')} -> {after['state']}"
        for key in ("close_code", "reason"):
            if after.get(key):
                text += f"; {key.replace('_', ' ')}: {after[key]}"
        return text
    if event.action == "change.edited":
        fields = sorted(k for k in after if k not in ("version", "content_hash"))
        return "changed " + (", ".join(fields) or "nothing")
    if event.action == "change.assessed":
        return (
            f"risk {after.get('score', '?')} ({after.get('risk_class', '?')}), "
            f"assessment #{after.get('assessment_id', '?')}"
        )
    return ", ".join(sorted(after))


def _risk_line(change: ChangeRequest, assessment: Assessment | None) -> str:
    """The latest assessment in one line, for `change show`; says when it predates an edit."""
    if assessment is None:
        return "not assessed (changegate change assess ID)"
    line = (
        f"{assessment.score} {assessment.risk_class.value} "
        f"(assessment #{assessment.id}, {_when(assessment.created_at)}, "
        f"by {assessment.assessed_by or '-'})"
    )
    if assessment.content_hash != change.content_hash:
        line += "; the change was edited since: assess it again"
    return line


def _show_human(
    change: ChangeRequest,
    comments: list[dict[str, Any]],
    history: list[AuditEvent],
    assessment: Assessment | None = None,
    schedule: dict[str, Any] | None = None,
) -> None:
    spec = change.spec
    console = output.console()
    console.print(Text(f"{change.id}  {spec.title}", style="bold"))
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    rollback = spec.rollback_plan
    rows: list[tuple[str, str]] = [
        (
            "state",
            f"{change.state.value}"
            + (f" (held from {change.held_from.value})" if change.held_from else ""),
        ),
        ("version", str(change.version)),
        (
            "allowed next",
            ", ".join(s.value for s in changes.allowed_next(change)) or "none (final state)",
        ),
        ("risk", _risk_line(change, assessment)),
        ("type", spec.type.value),
        ("category", spec.category.value),
        ("environment", spec.environment),
        ("requester", change.requester),
        ("implementer", spec.implementer or "-"),
        ("targets", _targets_text(change)),
        ("artifacts", _artifacts_text(change)),
        (
            "planned",
            f"{_when(spec.planned_start)} .. {_when(spec.planned_end)}"
            if spec.planned_start or spec.planned_end
            else "-",
        ),
        ("justification", spec.justification or "-"),
        ("implementation", spec.implementation_plan or "-"),
        ("test plan", spec.test_plan or "-"),
        ("test evidence", "\n".join(spec.test_evidence) or "-"),
        (
            "rollback",
            (rollback.steps or "-")
            + f"\n(tested: {'yes' if rollback.tested else 'no'}"
            + (", irreversible" if rollback.irreversible else "")
            + ")",
        ),
        ("incidents", ", ".join(spec.incidents) or "-"),
    ]
    if schedule is not None and schedule["waves"]:
        rows.append(
            (
                "schedule",
                "\n".join(
                    f"wave {w['index']}: {_when(datetime.fromisoformat(w['start']))} .. "
                    f"{_when(datetime.fromisoformat(w['end']))}, {len(w['tenants'])} tenant(s)"
                    for w in schedule["waves"]
                ),
            )
        )
        rows.append(
            (
                "conflicts",
                "\n".join(
                    f"{'blocking' if c['blocking'] else 'warning'}: {c['message']}"
                    for c in schedule["conflicts"]
                )
                or "none",
            )
        )
    if change.close_code:
        rows.append(("close code", change.close_code.value))
        rows.append(("close notes", change.close_notes or "-"))
    rows += [
        ("content hash", change.content_hash),
        ("catalog", change.catalog_digest or "-"),
        ("created", _when(change.created_at)),
        ("updated", _when(change.updated_at)),
    ]
    for key, value in rows:
        fields.add_row(key, Text(value))
    console.print(fields)
    console.print()
    console.print(Text(f"Comments ({len(comments)})", style="bold"))
    for item in comments:
        console.print(Text(f"  {_when(item['created_at'])}  {item['author']}: {item['body']}"))
    console.print()
    console.print(Text(f"History ({len(history)})", style="bold"))
    output.print_table(
        [
            output.Column("#", justify="right"),
            output.Column("WHEN", drop=2),
            output.Column("WHO", drop=1, max_width=16, min_width=6),
            output.Column("ACTION", min_width=10),
            output.Column("DETAIL", drop=3, min_width=16, wrap=True),
        ],
        [[str(e.seq), _when(e.occurred_at), e.actor, e.action, _summary(e)] for e in history],
    )


# How much of an impact the human view lists before "… and N more (use --json)".
IMPACT_TENANT_ROWS = 20
IMPACT_LIST_ITEMS = 8
IMPACT_BUSINESS_SERVICES = 12

# The reason wraps rather than being cut; on a narrow terminal the model and cluster columns
# go first (the counts by model and the clusters are listed above the table), then the tier.
IMPACT_COLUMNS = (
    output.Column("TENANT"),
    output.Column("TIER", drop=2),
    output.Column("MODEL", drop=3, min_width=12),
    output.Column("CLUSTER", drop=4, min_width=14),
    output.Column("WHY (first path)", min_width=28, wrap=True),
    output.Column("MORE", drop=1, justify="right"),
)


def _more(count: int) -> str:
    return f"… and {count} more (use --json)"


def _capped(lines: list[str], limit: int) -> str:
    """The first `limit` lines, then how many were left out; `-` when there are none."""
    if len(lines) > limit:
        lines = [*lines[:limit], _more(len(lines) - limit)]
    return "\n".join(lines) or "-"


def _digest(value: str) -> str:
    """A catalog digest shortened for reading: `sha256:` and 12 hex digits."""
    algorithm, sep, digits = value.partition(":")
    return f"{algorithm}:{digits[:12]}…" if sep and len(digits) > 12 else value


def _catalog_line(found: ChangeImpact) -> str:
    now = found.impact.catalog_digest
    filed = found.change_catalog_digest
    if filed == now:
        return f"{_digest(now)}, the one the change was filed against"
    if filed is None:
        return f"{_digest(now)}; the change does not record the catalog it was filed against"
    return (
        f"{_digest(now)} now; the change was filed against {_digest(filed)}: "
        "targets may have moved since"
    )


def _impact_human(found: ChangeImpact) -> None:
    result = found.impact
    console = output.console()
    console.print(
        Text(
            f"{found.change_id}  impact of a {result.category.value} change in "
            f"{result.environment}",
            style="bold",
        )
    )
    console.print(Text(result.summary))
    console.print()
    services = [
        f"{ident}: {s.type.value}, {'shared' if s.shared else 'dedicated'}, "
        f"{s.tenants} tenant{'' if s.tenants == 1 else 's'}; {s.paths[0].reason}"
        for ident, s in result.services.items()
    ]
    clusters = [
        f"{ident}: {c.mode.value}, {c.tenants} affected tenant{'' if c.tenants == 1 else 's'}"
        + (", targeted" if c.targeted else "")
        for ident, c in result.clusters.items()
    ]
    business = sorted(result.business_services.items(), key=lambda item: (-len(item[1]), item[0]))
    business_text = ", ".join(
        f"{name} ({len(tenants)})" for name, tenants in business[:IMPACT_BUSINESS_SERVICES]
    )
    if len(business) > IMPACT_BUSINESS_SERVICES:
        business_text += "\n" + _more(len(business) - IMPACT_BUSINESS_SERVICES)
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("scope", f"{result.scope.value}: {result.scope_reason}"),
        ("by tier", ", ".join(f"{tier} {n}" for tier, n in result.by_tier.items()) or "-"),
        (
            "by model",
            ", ".join(f"{model} {n}" for model, n in result.by_deployment_model.items()) or "-",
        ),
        ("environments", ", ".join(result.environments) or "-"),
        ("services", _capped(services, IMPACT_LIST_ITEMS)),
        ("clusters", _capped(clusters, IMPACT_LIST_ITEMS)),
        ("business", business_text or "-"),
        ("catalog", _catalog_line(found)),
        ("warnings", "\n".join(result.warnings) or "-"),
    ]
    for key, value in rows:
        fields.add_row(key, Text(value))
    console.print(fields)
    console.print()
    tenants = len(result.tenants)
    console.print(Text(f"Tenants ({tenants}, heaviest tier first)", style="bold"))
    if not tenants:
        output.out("none")
        return
    rank = {tier: index for index, tier in enumerate(result.by_tier)}
    ordered = sorted(result.tenants.values(), key=lambda t: (rank.get(t.tier, len(rank)), t.id))
    output.print_table(
        IMPACT_COLUMNS,
        [
            [
                t.id,
                t.tier,
                t.deployment_model.value,
                t.cluster,
                t.paths[0].reason,
                f"+{len(t.paths) - 1}" if len(t.paths) > 1 else "",
            ]
            for t in ordered[:IMPACT_TENANT_ROWS]
        ],
    )
    if tenants > IMPACT_TENANT_ROWS:
        output.out(_more(tenants - IMPACT_TENANT_ROWS))


LIST_COLUMNS = (
    output.Column("ID"),
    output.Column("STATE"),
    output.Column("TYPE", drop=4),
    output.Column("ENV", drop=5, max_width=12, min_width=4),
    output.Column("TITLE", drop=1, min_width=20),
    output.Column("REQUESTER", drop=2, max_width=16, min_width=6),
    output.Column("UPDATED", drop=3),
)


def _list_table(items: list[ChangeRequest], total: int, offset: int) -> None:
    rows = [
        [
            change.id,
            change.state.value,
            change.spec.type.value,
            change.spec.environment,
            change.spec.title,
            change.requester,
            change.updated_at.strftime("%Y-%m-%d") if change.updated_at else "-",
        ]
        for change in items
    ]
    if items:
        output.print_table(LIST_COLUMNS, rows)
        output.note(f"{offset + 1}-{offset + len(items)} of {total}")
    else:
        output.note(f"no changes match (total {total})")


# ---------------------------------------------------------------------------------------------
# commands


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Option(
            "-f", "--file", metavar="FILE", help="A ChangeRequest YAML/JSON file; - reads stdin."
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """File a change request (a draft) from a change file; you are the requester."""
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    documents = read_documents(file, state.require_settings())
    spec = change_service.spec_from_documents(documents, _display(file))
    app_ = state.app()
    service_ctx = state.context()
    change = change_service.create(
        app_.engine, app_.catalog(), service_ctx, spec, source=_display(file)
    )
    _print_result(change, as_json, f"created {change.id}: {change.spec.title}")


@app.command("list")
def list_(
    ctx: typer.Context,
    *,
    states: Annotated[
        list[ChangeState] | None,
        typer.Option("--state", help="Only these states (repeatable).", case_sensitive=False),
    ] = None,
    change_type: Annotated[
        ChangeType | None, typer.Option("--type", case_sensitive=False, help="Change type.")
    ] = None,
    category: Annotated[
        Category | None, typer.Option("--category", case_sensitive=False, help="Category.")
    ] = None,
    environment: Annotated[
        str | None, typer.Option("--environment", help="Environment id.")
    ] = None,
    requester: Annotated[str | None, typer.Option("--requester", help="Requester id.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Targets this tenant.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Targets this service.")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Targets this cluster.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", metavar="TEXT", help="Title contains TEXT.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Page size.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """List change requests, newest first, with filters."""
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    flt = change_service.ChangeFilter(
        states=tuple(s.value for s in states or ()),
        type=change_type.value if change_type else None,
        category=category.value if category else None,
        environment=environment,
        requester=requester,
        tenant=tenant,
        service=service,
        cluster=cluster,
        text=search,
        limit=limit,
        offset=offset,
    )
    service_ctx = state.context()
    items, total = change_service.list_changes(state.app().engine, service_ctx, flt)
    if as_json:
        output.emit_json(
            {
                "items": [change_json(c) for c in items],
                "total": total,
                "limit": limit,
                "offset": offset,
            }
        )
        return
    _list_table(items, total, offset)


@app.command("show")
def show(ctx: typer.Context, change_id: ChangeId, as_json: JsonFlag = False) -> None:
    """A change's fields, allowed next states, comments and audit history."""
    from changegate.services import audit as audit_service
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    service_ctx = state.context()
    engine = state.app().engine
    change = change_service.get(engine, service_ctx, change_id)
    comments = change_service.comments(engine, service_ctx, change.id)
    history = audit_service.events(engine, service_ctx, object_id=change.id, limit=HISTORY_LIMIT)
    if as_json:
        output.emit_json(
            {
                **change_json(change),
                "comments": comments,
                "history": [event.as_dict() for event in history],
            }
        )
        return
    schedule = None
    if change.state in (ChangeState.SCHEDULED, ChangeState.IMPLEMENTING):
        from changegate.services import calendar as calendar_service

        schedule = calendar_service.schedule_of(
            engine, state.app().catalog(), service_ctx, change.id
        ).as_dict()
    _show_human(
        change,
        comments,
        history,
        _latest_assessment(engine, service_ctx, change.id),
        schedule,
    )


@app.command("impact")
def impact(ctx: typer.Context, change_id: ChangeId, as_json: JsonFlag = False) -> None:
    """Who the change can hurt and why, analysed against the catalog loaded now.

    Tenants, business services, shared services and clusters, each with the paths that
    reach it; --json prints what the API's GET /api/v1/changes/ID/impact answers.
    """
    from changegate.services import impact as impact_service

    state = runtime.json_mode(ctx, as_json)
    service_ctx = state.context()
    app_ = state.app()
    found = impact_service.impact(app_.engine, app_.catalog(), service_ctx, change_id)
    if as_json:
        output.emit_json(found.as_dict())
        return
    _impact_human(found)


@app.command("assess")
def assess(ctx: typer.Context, change_id: ChangeId, as_json: JsonFlag = False) -> None:
    """Score the change's risk now and show the breakdown (the run is kept and audited).

    The score, its class and why, then every factor with its points and reason (they sum
    to the score), the catalog digest and the rule version it was computed with. --json
    prints what the API's POST /api/v1/changes/ID/assessments answers.
    """
    from changegate.services import assessments as assessment_service

    state = runtime.json_mode(ctx, as_json)
    service_ctx = state.context()
    app_ = state.app()
    found = assessment_service.assess(
        app_.engine, app_.catalog(), service_ctx, change_id, gitops_workdir=app_.gitops_workdir
    )
    if as_json:
        output.emit_json(found.as_dict())
        return
    _assess_human(found)


def _latest_assessment(engine: sa.Engine, ctx: Context, change_id: str) -> Assessment | None:
    """The change's latest assessment, or None when it was never assessed."""
    from changegate.services import assessments as assessment_service

    try:
        return assessment_service.latest(engine, ctx, change_id)
    except NotFound:
        return None


# On a narrow terminal the reason keeps at least this many columns (it wraps, never cut).
ASSESS_COLUMNS = (
    output.Column("POINTS", justify="right"),
    output.Column("FACTOR"),
    output.Column("REASON", min_width=24, wrap=True),
)


def _assess_human(found: Assessment) -> None:
    console = output.console()
    console.print(
        Text(
            f"{found.change_id}  risk {found.score}/100  {found.risk_class.value}",
            style="bold",
        )
    )
    policy = found.inputs.get("policy") if isinstance(found.inputs, Mapping) else None
    source = policy.get("source") if isinstance(policy, Mapping) else None
    impact_summary = found.impact.get("summary") if isinstance(found.impact, Mapping) else None
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("class", found.class_reason),
        ("impact", str(impact_summary or "-")),
        ("catalog", found.catalog_digest),
        ("rules", found.rule_version + (f" ({source})" if source else "")),
        (
            "run",
            f"assessment #{found.id}, {_when(found.created_at)}, by {found.assessed_by or '-'}",
        ),
    ]
    for key, value in rows:
        fields.add_row(key, Text(value))
    console.print(fields)
    console.print()
    output.print_table(
        ASSESS_COLUMNS,
        [[f"{f.points:+d}", f.name, f.reason] for f in found.factors]
        + [[f"{found.score}", "score", "the sum of the points above"]],
    )


def _unique_keys(name: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A json object hook refusing a key written twice, as change files and the API do."""

    def make_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise InvalidInput([Problem(f"duplicate key {key!r}", field=name)])
                seen.add(key)
        return result

    return make_object


def _set_value(text: str) -> tuple[list[str], Any]:
    """`a.b=text` sets a string; `a.b:=JSON` sets any JSON value (number, bool, list, null)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip(":"):
        raise InvalidInput(
            [Problem(f"--set takes field=value or field:=json, not {text!r}", field="--set")]
        )
    parsed: Any = value
    if name.endswith(":"):
        name = name[:-1]
        try:
            parsed = json.loads(value, object_pairs_hook=_unique_keys(name))
        except json.JSONDecodeError as exc:
            raise InvalidInput([Problem(f"not JSON after := ({exc.msg})", field=name)]) from None
        try:
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a "\ud800" escape without its pair: not text
            raise InvalidInput([Problem(SURROGATE_MESSAGE, field=name)]) from None
    path = [part.strip() for part in name.split(".")]
    if any(not part for part in path):
        raise InvalidInput([Problem(f"not a field path: {name!r}", field="--set")])
    return path, parsed


def _apply_set(patch: dict[str, Any], current: dict[str, Any], path: list[str], value: Any) -> None:
    top = path[0]
    if len(path) == 1:
        patch[top] = value
        return
    if top not in current:
        raise InvalidInput([Problem(f"unknown field (allowed: {', '.join(current)})", field=top)])
    if top not in patch:
        patch[top] = copy.deepcopy(current.get(top))
    node = patch[top]
    for index, part in enumerate(path[1:-1], start=1):
        if not isinstance(node, dict):
            raise InvalidInput(
                [
                    Problem(
                        "not a mapping; cannot set a field inside it", field=".".join(path[:index])
                    )
                ]
            )
        node = node.setdefault(part, {})
    if not isinstance(node, dict):
        raise InvalidInput(
            [Problem("not a mapping; cannot set a field inside it", field=".".join(path[:-1]))]
        )
    node[path[-1]] = value


def _patch_from_file(name: str, settings: Settings) -> dict[str, Any]:
    documents = [d for d in read_documents(name, settings) if d.data is not None]
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise InvalidInput(
            [
                Problem(
                    "a patch file holds one mapping of fields to change "
                    "(or one ChangeRequest document)",
                    file=_display(name),
                    line=documents[0].line if documents else None,
                )
            ]
        )
    data: dict[str, Any] = documents[0].data
    if data.get("kind") == changes.KIND and isinstance(data.get("spec"), dict):
        spec: dict[str, Any] = data["spec"]
        return dict(spec)
    return dict(data)


@app.command("edit")
def edit(
    ctx: typer.Context,
    change_id: ChangeId,
    *,
    file: Annotated[
        str | None,
        typer.Option(
            "-f",
            "--file",
            metavar="PATCHFILE",
            help="YAML/JSON mapping of fields to set (or a whole ChangeRequest "
            "file); - reads stdin.",
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Set one field: title=text, rollback_plan.steps=text, "
            "rollback_plan.tested:=true, targets.tenants:='[\"acme\"]'. "
            "Repeatable; applied after -f.",
        ),
    ] = None,
    if_version: IfVersion = None,
    as_json: JsonFlag = False,
) -> None:
    """Change some fields; material ones only while the change is a draft.

    A field whose new value equals the stored one is no edit (the service compares validated
    values), so applying a whole change file again only touches what differs, and when
    nothing differs nothing is written.
    """
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    if file is None and not sets:
        raise InvalidInput(
            [Problem("nothing to edit: give -f PATCHFILE and/or --set field=value", field="edit")]
        )
    settings = state.require_settings()
    patch = _patch_from_file(file, settings) if file is not None else {}
    service_ctx = state.context()
    app_ = state.app()
    current = change_service.get(app_.engine, service_ctx, change_id)
    now = current.spec.model_dump(mode="json")
    for item in sets or ():
        path, value = _set_value(item)
        _apply_set(patch, now, path, value)
    # The --set paths were resolved against this read: the write must find it unchanged.
    edited = change_service.edit(
        app_.engine,
        app_.catalog(),
        service_ctx,
        current.id,
        patch,
        expected_version=if_version if if_version is not None else current.version,
    )
    if edited.version == current.version:
        output.note(f"nothing to change: {edited.id} already has these values")
        _print_result(edited, as_json)
        return
    fields = changes.changed_fields(current.spec, edited.spec)
    _print_result(edited, as_json, f"edited {edited.id}: {', '.join(fields)}")


@app.command("submit")
def submit(
    ctx: typer.Context,
    change_id: ChangeId,
    reason: Reason = None,
    if_version: IfVersion = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a draft on: normal and standard to assess, emergency to authorize."""
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    service_ctx = state.context()
    kwargs: dict[str, Any] = {"reason": reason}
    if if_version is not None:
        kwargs["expected_version"] = if_version
    app_ = state.app()
    moved = change_service.submit(
        app_.engine,
        app_.catalog(),
        service_ctx,
        change_id,
        gitops_workdir=app_.gitops_workdir,
        **kwargs,
    )
    _print_result(moved, as_json)


def _move(
    ctx: typer.Context,
    change_id: str,
    to: ChangeState,
    *,
    as_json: bool,
    if_version: int | None = None,
    close_code: CloseCode | None = None,
    notes: str | None = None,
    reason: str | None = None,
    override_calendar: str | None = None,
) -> None:
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    service_ctx = state.context()
    app_ = state.app()
    moved = change_service.transition(
        app_.engine,
        app_.catalog(),
        service_ctx,
        change_id,
        to,
        expected_version=if_version,
        close_code=close_code,
        close_notes=notes,
        reason=reason,
        override_calendar=override_calendar,
    )
    _print_result(moved, as_json)


@app.command("transition")
def transition(
    ctx: typer.Context,
    change_id: ChangeId,
    to: Annotated[
        ChangeState,
        typer.Argument(metavar="STATE", case_sensitive=False, help="The state to move to."),
    ],
    *,
    close_code: Annotated[
        CloseCode | None,
        typer.Option("--close-code", case_sensitive=False, help="Needed to close."),
    ] = None,
    notes: Annotated[
        str | None,
        typer.Option(
            "--notes",
            metavar="TEXT",
            help="Close notes: only when closing (with --close-code); otherwise use --reason.",
        ),
    ] = None,
    reason: Reason = None,
    override_calendar: Annotated[
        str | None,
        typer.Option(
            "--override-calendar",
            metavar="TEXT",
            help="Start (implementing) although the calendar says no, saying why; only for "
            "someone holding the roles the refusal names.",
        ),
    ] = None,
    if_version: IfVersion = None,
    as_json: JsonFlag = False,
) -> None:
    """Move a change to STATE; an illegal move is refused (exit 2) naming the allowed ones.

    To scheduled: books the earliest slots (as `change schedule` with its defaults). To
    implementing: only when the calendar allows wave 1 now, or with --override-calendar.
    """
    _move(
        ctx,
        change_id,
        to,
        as_json=as_json,
        if_version=if_version,
        close_code=close_code,
        notes=notes,
        reason=reason,
        override_calendar=override_calendar,
    )


def _duration_option(text: str | None, field: str) -> timedelta | None:
    from changegate.domain.catalog import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput([Problem(str(exc), field=field)]) from None


def _schedule_human(body: dict[str, Any]) -> None:
    console = output.console()
    waves = body["waves"]
    verb = "rescheduled" if body["rescheduled"] else "scheduled"
    console.print(Text(f"{body['change_id']} {verb}: {len(waves)} wave(s)", style="bold"))
    for wave in waves:
        tenants = wave["tenants"]
        console.print(
            Text(
                f"wave {wave['index']}  {wave['start']} -> {wave['end']}  {len(tenants)} tenant(s)"
            )
        )
        for tenant in tenants[:10]:
            console.print(Text(f"  {tenant}: {wave['reasons'][tenant]}"))
        if len(tenants) > 10:
            console.print(Text(f"  and {len(tenants) - 10} more"))
    for clash in body["conflicts"]:
        kind = "blocking" if clash["blocking"] else "warning"
        console.print(Text(f"{kind}: {clash['message']}"))


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    change_id: ChangeId,
    not_before: Annotated[
        str | None,
        typer.Option("--not-before", metavar="ISO", help="Earliest start (default now)."),
    ] = None,
    horizon: Annotated[
        str | None,
        typer.Option("--horizon", metavar="DURATION", help="How far to look, e.g. 90d."),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            metavar="DURATION",
            help="Each wave's length (default planned end - planned start, else 1h).",
        ),
    ] = None,
    reason: Reason = None,
    if_version: IfVersion = None,
    as_json: JsonFlag = False,
) -> None:
    """Book the change at its earliest slots (in waves when one slot does not fit every
    tenant) and move it to scheduled; a scheduled change is rescheduled."""
    from changegate.cli.audit import parse_instant
    from changegate.services import calendar as calendar_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    found = calendar_service.schedule(
        app_.engine,
        app_.catalog(),
        state.context(),
        change_id,
        not_before=parse_instant(not_before, "--not-before"),
        horizon=_duration_option(horizon, "--horizon"),
        duration=_duration_option(duration, "--duration"),
        expected_version=if_version,
        reason=reason,
    )
    body = found.as_dict()
    if as_json:
        output.emit_json(body)
        return
    _schedule_human(body)


@app.command("start-check")
def start_check(
    ctx: typer.Context,
    change_id: ChangeId,
    wave: Annotated[int, typer.Option("--wave", min=1, help="The wave (default 1).")] = 1,
    at: Annotated[
        str | None, typer.Option("--at", metavar="ISO", help="The instant (default now).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """May the wave start now (or --at)? Exit 0 when the calendar allows it, 2 when not."""
    from changegate.cli.audit import parse_instant
    from changegate.services import calendar as calendar_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    found = calendar_service.may_start(
        app_.engine,
        app_.catalog(),
        state.context(),
        change_id,
        wave=wave,
        at=parse_instant(at, "--at"),
    )
    body = found.as_dict()
    if as_json:
        output.emit_json(body)
    else:
        verdict = "may start" if found.allowed else "may not start"
        output.out(
            f"{body['change_id']} wave {body['wave']}/{body['waves']} {verdict}: {body['reason']}"
        )
        if not found.allowed:
            roles = body["override_roles"]
            output.out(f"override: {', '.join(roles)}" if roles else "no override (a blackout)")
    if not found.allowed:
        raise typer.Exit(2)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    change_id: ChangeId,
    reason: Reason = None,
    if_version: IfVersion = None,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a change (from any state before review)."""
    _move(
        ctx, change_id, ChangeState.CANCELED, as_json=as_json, if_version=if_version, reason=reason
    )


@app.command("hold")
def hold(
    ctx: typer.Context,
    change_id: ChangeId,
    reason: Reason = None,
    if_version: IfVersion = None,
    as_json: JsonFlag = False,
) -> None:
    """Put a change on hold; `resume` returns it to where it was."""
    _move(
        ctx, change_id, ChangeState.ON_HOLD, as_json=as_json, if_version=if_version, reason=reason
    )


@app.command("resume")
def resume(
    ctx: typer.Context,
    change_id: ChangeId,
    reason: Reason = None,
    if_version: IfVersion = None,
    as_json: JsonFlag = False,
) -> None:
    """Take a change off hold, back to the state it was held from."""
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    service_ctx = state.context()
    kwargs: dict[str, Any] = {"reason": reason}
    if if_version is not None:
        kwargs["expected_version"] = if_version
    app_ = state.app()
    moved = change_service.resume(app_.engine, app_.catalog(), service_ctx, change_id, **kwargs)
    _print_result(moved, as_json)


@app.command("comment")
def comment(
    ctx: typer.Context,
    change_id: ChangeId,
    message: Annotated[
        str, typer.Option("-m", "--message", metavar="TEXT", help="The comment; - reads stdin.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Add a comment to a change's discussion."""
    from changegate.services import changes as change_service

    state = runtime.json_mode(ctx, as_json)
    if message == STDIN:
        message = sys.stdin.read(100_000)
    service_ctx = state.context()
    stored = change_service.comment(state.app().engine, service_ctx, change_id, message)
    if as_json:
        output.emit_json(stored)
        return
    output.out(f"comment #{stored['id']} added to {stored['change_id']}")


@app.command("consent")
def consent(
    ctx: typer.Context,
    change_id: ChangeId,
    tenant: Annotated[str, typer.Option("--tenant", metavar="TENANT", help="Your tenant.")],
    comment: Annotated[
        str | None, typer.Option("--comment", metavar="TEXT", help="Kept with the consent.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """As a customer approver of TENANT, consent to this change running during a freeze of
    yours that lets it through only with consent (exit 2 for anyone else)."""
    from changegate.services import calendar as calendar_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    given = calendar_service.consent(
        app_.engine, app_.catalog(), state.context(), change_id, tenant, comment
    )
    if as_json:
        output.emit_json(given)
        return
    output.out(f"{given['person']} consented to {given['change_id']} for tenant {tenant}")
