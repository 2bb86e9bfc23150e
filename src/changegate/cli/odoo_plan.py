"""`changegate odoo plan`: the module upgrade each tenant database will really run.

Registered by `cli.main` on the `odoo` sub-command. Exit codes: 0 a plan for every tenant;
1 bad input or a plan with errors (a module missing from the new addons); `--json` prints
the plans as `{"plans": [...], "effects": {...}}` (docs/odoo-plan.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from changegate.cli import output, runtime
from changegate.cli.changes import JsonFlag
from changegate.domain.odoo.jobs import DEFAULT_KUBECTL_IMAGE
from changegate.domain.odoo.plan import Policy, TenantPlan


def _human(plan: TenantPlan) -> None:
    major = f" (major: {plan.from_series} -> {plan.to_series})" if plan.major else ""
    output.out(f"{plan.tenant} ({plan.database}, installed from {plan.installed_source}){major}")
    for update in plan.update:
        scripts = sum(len(s) for s in update.scripts.values())
        extra = f"; {scripts} script(s)" if scripts else ""
        output.out(f"  update   {update.module}: {update.reason}{extra}")
        for stage, found in update.scripts.items():
            for script in found:
                output.out(
                    f"             {stage.value:<4} {script.folder}/{script.version}/"
                    f"{script.path.rsplit('/', 1)[-1]}"
                )
    for name in plan.install:
        output.out(f"  install  {name} (a new dependency)")
    for name in plan.auto_install:
        output.out(f"  install  {name} (auto_install)")
    for item in plan.disagreements:
        output.out(
            f"  policies disagree on {item.module}: only {item.updated_by.value} "
            f"updates it ({item.reason})"
        )
    for module, path, package in plan.unprovided_imports:
        output.out(f"  warning  {module} {path} imports {package}: not in the image")
    for name in plan.without_target_version:
        output.out(f"  warning  {name} has no version for {plan.to_series}")
    for error in plan.errors:
        output.out(f"  error    {error}")
    if not (plan.update or plan.install or plan.auto_install or plan.errors):
        output.out("  nothing to update")


def plan_command(
    ctx: typer.Context,
    before: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="SOURCE",
            help="The addons now: a folder (comma-separated for several), git:REF, or wheels:DIR.",
        ),
    ],
    after: Annotated[
        str, typer.Option("--to", metavar="SOURCE", help="The addons after, as --from.")
    ],
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", metavar="TENANT", help="A tenant to plan (repeatable)."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Plan every tenant (of --series, when given).")
    ] = False,
    series: Annotated[
        str | None,
        typer.Option(
            "--series",
            metavar="SERIES",
            help="The Odoo series of the addons --from (e.g. 17.0): --all plans the tenants "
            "running it. Needed when the tenants run several series.",
        ),
    ] = None,
    policy: Annotated[
        Policy, typer.Option("--policy", help="What needs an update: version or checksum.")
    ] = Policy.VERSION,
    repo: Annotated[
        Path | None, typer.Option("--repo", metavar="PATH", help="The repository of git: sources.")
    ] = None,
    to_series: Annotated[
        str | None,
        typer.Option("--to-series", metavar="SERIES", help="A major upgrade: the new series."),
    ] = None,
    from_db: Annotated[
        bool,
        typer.Option(
            "--from-db",
            help="Read installed modules from each tenant's database (ir_module_module) "
            "instead of the catalog.",
        ),
    ] = False,
    provided: Annotated[
        list[str] | None,
        typer.Option(
            "--provided",
            metavar="PACKAGE",
            help="A Python package the image provides (repeatable): scripts may import it.",
        ),
    ] = None,
    jobs: Annotated[
        Path | None,
        typer.Option(
            "--jobs",
            metavar="DIR",
            help="Write each tenant's drain and upgrade Jobs to DIR/<tenant>/odoo-upgrade.yaml.",
        ),
    ] = None,
    tool: Annotated[
        str | None,
        typer.Option(
            "--tool",
            help="The upgrade command in the Job: odoo (-u/-i the plan's modules; the default "
            "with --policy version) or click-odoo-update (updates what changed by checksum; "
            "the default with --policy checksum).",
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            metavar="REF",
            help="The new image for the upgrade Job (else the tenant's catalog image, which "
            "the rollout rewrites to the change's image in the tenant's GitOps folder).",
        ),
    ] = None,
    kubectl_image: Annotated[
        str,
        typer.Option(
            "--kubectl-image",
            metavar="REF",
            help="The drain Job's image (kubectl and a shell); pin it by digest from a "
            "registry your policy allows.",
        ),
    ] = DEFAULT_KUBECTL_IMAGE,
    change: Annotated[
        str | None,
        typer.Option(
            "--change",
            metavar="CHG",
            help="Record what the plan implies on this change (category, irreversible, "
            "the plan in its implementation plan).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Plan the module upgrade per tenant database: updates, installs, scripts, risk."""
    from changegate.domain.odoo import plan as plan_model
    from changegate.errors import InvalidInput, Problem
    from changegate.services import odoo as odoo_service

    if tool is None:
        tool = "click-odoo-update" if policy is Policy.CHECKSUM else "odoo"
    if tool not in ("click-odoo-update", "odoo"):
        raise InvalidInput([Problem("--tool is click-odoo-update or odoo", field="tool")])
    state = runtime.json_mode(ctx, as_json)
    app = state.app()
    catalog = app.catalog()
    context = state.context()
    tenants = odoo_service.tenants_of(catalog, tenant or [], every, series=series)
    sources = odoo_service.Sources(before, after, repo=repo, to_series=to_series)
    plans = odoo_service.plan(
        catalog,
        context,
        sources,
        tenants,
        policy=policy,
        from_db=from_db,
        service_file=app.settings.pg_service_file,
        provided=provided or [],
    )
    effects = plan_model.change_effects(plans)
    if jobs is not None:
        written = odoo_service.job_documents(
            catalog,
            plans,
            tool="odoo" if tool == "odoo" else "click-odoo-update",
            image=image,
            kubectl_image=kubectl_image,
        )
        for name, text in written.items():
            target = jobs / name / "odoo-upgrade.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        rehearsals = odoo_service.rehearsal_documents(
            catalog, plans, tool="odoo" if tool == "odoo" else "click-odoo-update", image=image
        )
        for name, text in rehearsals.items():
            (jobs / name / "odoo-rehearsal.yaml").write_text(text, encoding="utf-8")
        if image is None:
            output.note(
                "the upgrade Jobs run each tenant's current catalog image: commit them in the "
                "tenant's GitOps folder (the rollout sets the change's image) or pass --image"
            )
    recorded = None
    if change is not None:
        recorded = odoo_service.apply_to_change(app.engine, catalog, context, change, plans)
    if as_json:
        body = {"plans": [p.as_dict() for p in plans], "effects": effects}
        if recorded is not None:
            body["change"] = recorded.as_dict()
        output.emit_json(body)
    else:
        for found in plans:
            _human(found)
        output.out(
            f"category {effects['category']}; backup required: "
            f"{'yes' if effects['backup_required'] else 'no'}; window required: "
            f"{'yes' if effects['window_required'] else 'no'}"
            + ("; critical (major upgrade: rehearse in staging)" if effects["critical"] else "")
        )
        if recorded is not None:
            output.out(f"{recorded.id}: {recorded.spec.category.value}, recorded the plan")
    if effects["errors"]:
        raise typer.Exit(1)
