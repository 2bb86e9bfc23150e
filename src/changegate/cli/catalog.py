"""`changegate catalog ...`: validate the platform catalog and look inside it.

Neither command opens the database: they read the catalog folder and nothing else, so they
run in CI on a pull request to the platform repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from changegate.cli import output, runtime

if TYPE_CHECKING:
    from changegate.domain import catalog as catalog_model

app = typer.Typer(
    help="The platform catalog: validate it, show its entities.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]

# The columns of `catalog show KIND`, by kind: a column and a dotted path into the spec
# (`a|b` takes the first that is set). Later columns are dropped first on a narrow terminal.
C = output.Column
NAME = C("NAME", drop=5, max_width=32, min_width=10)
COLUMNS: dict[str, tuple[tuple[output.Column, str], ...]] = {
    "Tier": (
        (NAME, "display_name"),
        (C("AVAIL %", drop=4), "availability_target"),
        (C("RPO MIN", drop=3), "rpo_minutes"),
        (C("RTO MIN", drop=2), "rto_minutes"),
        (C("WEIGHT", drop=1), "risk_weight"),
    ),
    "Environment": (
        (NAME, "display_name"),
        (C("ORDER", drop=2), "order"),
        (C("PROD", drop=1), "production"),
    ),
    "Cluster": (
        (C("MODE", drop=2), "mode"),
        (C("ENV", drop=3), "environment"),
        (C("REGION", drop=4), "region"),
        (C("K8S", drop=1), "kubernetes_version"),
        (C("OWNER", drop=6), "owner"),
    ),
    "Service": (
        (C("TYPE", drop=1), "type"),
        (C("CRITICALITY", drop=4), "criticality"),
        (C("ENV", drop=2), "environment"),
        (C("CLUSTER", drop=3), "cluster"),
    ),
    "Tenant": (
        (C("NAME", drop=2, max_width=32, min_width=10), "display_name"),
        (C("TIER", drop=3), "tier"),
        (C("MODEL", drop=5), "deployment_model"),
        (C("CLUSTER", drop=4), "cluster"),
        (C("ODOO", drop=1), "odoo.series"),
    ),
    "Team": (
        (NAME, "display_name"),
        (C("LEAD", drop=1), "lead"),
        (C("EMAIL", drop=6, min_width=10), "email"),
    ),
    "Person": (
        (NAME, "display_name"),
        (C("ROLES", drop=1, min_width=10), "roles"),
        (C("TEAMS", drop=6, min_width=8), "teams"),
    ),
    "Window": (
        (C("TYPE", drop=1), "type"),
        (C("PURPOSE", drop=2), "purpose"),
        (C("TIMEZONE", drop=4, min_width=8), "timezone"),
        (C("SCHEDULE", drop=3, min_width=12), "rrule|cron|start"),
    ),
}
# Ids are what the next command needs: they are never shortened (up to 63 characters).
ID_COLUMN = C("ID", max_width=63)


def _load(state: runtime.CliState, directory: Path | None = None) -> catalog_model.Catalog:
    from changegate import bootstrap

    settings = state.require_settings()
    return bootstrap.load_catalog(settings, directory or state.catalog_dir)


def _cell(spec: dict[str, Any], path: str) -> str:
    for alternative in path.split("|"):
        value: Any = spec
        for part in alternative.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and value != []:
            if isinstance(value, list):
                return ", ".join(str(v) for v in value)
            if isinstance(value, bool):
                return "yes" if value else "no"
            return str(value)
    return "-"


@app.command("validate")
def validate(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(metavar="DIR", help="The catalog folder (default: the configured one)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every file of the catalog; list every problem as file:line: field: message.

    Warnings (on stderr; exit 0) name what is valid but surely a mistake: a window that can
    never open."""
    from changegate.services import calendar as calendar_service
    from changegate.services.context import utcnow

    state = runtime.json_mode(ctx, as_json)
    catalog = _load(state, directory)
    summary = catalog.as_dict()
    warnings = calendar_service.window_warnings(catalog, utcnow())
    for warning in warnings:
        output.note(f"warning: {warning}")
    if as_json:
        output.emit_json({"valid": True, **summary, "warnings": warnings})
        return
    dirty = " (uncommitted changes)" if catalog.dirty else ""
    output.out(f"catalog {catalog.root} is valid")
    output.out(f"digest  {catalog.digest}")
    output.out(f"commit  {catalog.commit or '- (not a Git checkout)'}{dirty}")
    counts = summary["counts"]
    output.out("  ".join(f"{kind}: {count}" for kind, count in counts.items()))


@app.command("show")
def show(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND",
            help="tenants, tenant or Tenant; tiers, clusters, "
            "services, environments, teams, people, windows.",
        ),
    ],
    id_: Annotated[
        str | None, typer.Argument(metavar="ID", help="One entity; all of them if left out.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A table of a kind's entities, or one entity in detail."""
    from changegate.domain import catalog as catalog_model

    state = runtime.json_mode(ctx, as_json)
    name = catalog_model.normalize_kind(kind)
    catalog = _load(state)
    if id_ is not None:
        entity = catalog.get(name, id_)
        if as_json:
            output.emit_json(entity.as_dict())
        else:
            _detail(entity.as_dict())
        return
    entities = catalog.list(name)
    if as_json:
        output.emit_json(
            {"kind": name, "items": [e.as_dict() for e in entities], "total": len(entities)}
        )
        return
    _table(name, [e.as_dict() for e in entities])


def _table(kind: str, entities: list[dict[str, Any]]) -> None:
    columns = COLUMNS.get(kind, ((NAME, "display_name"),))
    rows = [
        [entity["id"], *(_cell(entity["spec"], path) for _, path in columns)] for entity in entities
    ]
    if entities:
        output.print_table([ID_COLUMN, *(column for column, _ in columns)], rows)
    output.note(f"{len(entities)} {kind} entities")


def _detail(entity: dict[str, Any]) -> None:
    import yaml

    console = output.console()
    console.print(
        Text(f"{entity['kind']} {entity['id']}  ({entity['file']}:{entity['line']})", style="bold")
    )
    body: dict[str, Any] = {}
    if entity["labels"]:
        body["labels"] = entity["labels"]
    if entity["annotations"]:
        body["annotations"] = entity["annotations"]
    body["spec"] = entity["spec"]
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=76)
    console.print(Text(text.rstrip("\n"), overflow="fold"))
