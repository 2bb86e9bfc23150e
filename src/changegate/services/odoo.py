"""`odoo plan`: read two addon sets, each tenant's installed modules, and plan the upgrade.

Addon sources (`--from`, `--to`): a folder of addons (several separated by commas, like
Odoo's addons path), `git:<ref>` read from a repository (`--repo`), or `wheels:<folder>` of
OCA wheels. Installed modules come from the catalog (each tenant's `odoo.modules`, versions
taken from the addons before) or, with `from_db`, from the tenant's database
(`ir_module_module`, through its libpq service). The plans are `domain.odoo.plan`; the Jobs
`domain.odoo.jobs`; applying a plan to a draft change sets what it implies
(docs/odoo-plan.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from changegate.adapters import addons as addon_readers
from changegate.adapters import odoo_db
from changegate.domain import backups as backup_rules
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import Category, ChangeRequest
from changegate.domain.odoo import jobs as job_model
from changegate.domain.odoo import plan as plan_model
from changegate.domain.odoo.addons import AddonSet, Installed
from changegate.domain.permissions import Permission
from changegate.errors import InvalidInput, NotFound, Problem
from changegate.services import changes as change_service
from changegate.services.context import Context


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the addons before and after come from, and how to read them."""

    before: str
    after: str
    repo: Path | None = None
    to_series: str | None = None  # a major upgrade: the series of the addons after


def read_addons(
    text: str,
    series: str,
    *,
    repo: Path | None,
    checksums: bool,
    languages: Collection[str],
    field: str,
) -> AddonSet:
    """One addon source (see the module doc)."""
    value = text.strip()
    if value.startswith("git:"):
        if repo is None:
            raise InvalidInput([Problem("a git: source needs --repo PATH", field=field)])
        return addon_readers.from_git(repo, value.removeprefix("git:"), series)
    if value.startswith("wheels:"):
        folder = Path(value.removeprefix("wheels:"))
        if not folder.is_dir():
            raise InvalidInput([Problem(f"no folder {folder}", field=field)])
        return addon_readers.from_wheels(
            sorted(folder.glob("*.whl")), series, checksums=checksums, languages=languages
        )
    paths = [Path(part) for part in value.split(",") if part.strip()]
    missing = [str(p) for p in paths if not p.is_dir()]
    if not paths or missing:
        raise InvalidInput(
            [Problem(f"not an addons folder: {', '.join(missing) or value!r}", field=field)]
        )
    return addon_readers.from_folders(paths, series, checksums=checksums, languages=languages)


def tenants_of(
    catalog: catalog_model.Catalog,
    wanted: Sequence[str],
    every: bool,
    *,
    series: str | None = None,
) -> list[str]:
    """The tenants to plan: those named, or all (`--all`) of the given series; NotFound for
    an unknown one. One run reads the addons for one series: `--all` over tenants of several
    series is refused unless `series` picks them (an addons tree of 17.0 read as 16.0 or
    18.0 gives wrong versions, or is refused), and so is a named tenant of another series."""
    if every:
        chosen = sorted(catalog.tenants)
    elif not wanted:
        raise InvalidInput([Problem("name a tenant (--tenant T) or --all", field="tenant")])
    else:
        unknown = [t for t in wanted if t not in catalog.tenants]
        if unknown:
            raise NotFound(f"unknown tenant(s): {', '.join(unknown)}")
        chosen = list(dict.fromkeys(wanted))
    of = {t: catalog.tenants[t].spec.odoo.series for t in chosen}
    if series is not None:
        if every:
            chosen = [t for t in chosen if of[t] == series]
            if not chosen:
                raise NotFound(f"no tenant runs Odoo {series}")
            return chosen
        other = [f"{t} ({of[t]})" for t in chosen if of[t] != series]
        if other:
            raise InvalidInput(
                [Problem(f"not on Odoo {series}: {', '.join(other)}", field="series")]
            )
        return chosen
    found = sorted(set(of.values()))
    if len(found) > 1:
        raise InvalidInput(
            [
                Problem(
                    f"the tenants run several Odoo series ({', '.join(found)}); plan one at a "
                    "time with --series SERIES",
                    field="series",
                )
            ]
        )
    return chosen


def installed_of(
    catalog: catalog_model.Catalog,
    tenant: str,
    *,
    from_db: bool,
    service_file: Path | None,
) -> Installed:
    """A tenant's installed modules: its database (`from_db`) or the catalog's list."""
    location = backup_rules.where(catalog, tenant)
    if from_db:
        found = odoo_db.read_installed(
            location.service, location.database, service_file=service_file
        )
        if found.checksums is None:
            # A database that never stored checksums: click-odoo-update reads that as none
            # stored and updates every installed module; the checksum policy says the same.
            found = dataclasses.replace(found, checksums={})
        return found
    modules = catalog.tenants[tenant].spec.odoo.modules
    return Installed(dict.fromkeys(modules), source="catalog")


def plan(
    catalog: catalog_model.Catalog,
    ctx: Context,
    sources: Sources,
    tenants: Sequence[str],
    *,
    policy: plan_model.Policy = plan_model.Policy.VERSION,
    from_db: bool = False,
    service_file: Path | None = None,
    provided: Collection[str] = (),
) -> list[plan_model.TenantPlan]:
    """One plan per tenant, each tenant's addons read for its series. Checksums are computed
    whenever the addons can give them (folders, wheels; not `git:`), whatever the policy, so
    that the two policies are shown side by side where they disagree."""
    ctx.actor.require(Permission.CATALOG_READ)
    if policy is plan_model.Policy.CHECKSUM:
        for text, field in ((sources.before, "from"), (sources.after, "to")):
            if text.strip().startswith("git:"):
                raise InvalidInput(
                    [
                        Problem(
                            "--policy checksum needs addons folders or wheels: a git: "
                            "source gives no checksums (check the ref out and pass the folder)",
                            field=field,
                        )
                    ]
                )
    cache: dict[tuple[str, str, tuple[str, ...]], AddonSet] = {}

    def addons(text: str, series: str, languages: tuple[str, ...], field: str) -> AddonSet:
        key = (text, series, languages)
        if key not in cache:
            cache[key] = read_addons(
                text,
                series,
                repo=sources.repo,
                checksums=not text.strip().startswith("git:"),
                languages=languages,
                field=field,
            )
        return cache[key]

    plans = []
    for tenant in tenants:
        spec = catalog.tenants[tenant].spec
        installed = installed_of(catalog, tenant, from_db=from_db, service_file=service_file)
        languages = tuple(sorted(installed.languages))
        series = spec.odoo.series
        before = addons(sources.before, series, languages, "from")
        after = addons(sources.after, sources.to_series or series, languages, "to")
        plans.append(
            plan_model.plan_tenant(
                tenant,
                spec.database.name,
                installed,
                before,
                after,
                policy=policy,
                provided=provided,
            )
        )
    return plans


def job_documents(
    catalog: catalog_model.Catalog,
    plans: Sequence[plan_model.TenantPlan],
    *,
    tool: job_model.Tool,
    image: str | None = None,
    kubectl_image: str = job_model.DEFAULT_KUBECTL_IMAGE,
) -> dict[str, str]:
    """Per tenant, the YAML of its drain and upgrade Jobs (the tenant's catalog image unless
    `image` names the new one: the rollout rewrites it to the change's image when the Jobs
    are committed in the tenant's GitOps folder)."""
    found = {}
    for tenant_plan in plans:
        spec = catalog.tenants[tenant_plan.tenant].spec
        documents = job_model.upgrade_jobs(
            tenant_plan,
            namespace=spec.namespace,
            image=image or spec.odoo.image,
            tool=tool,
            kubectl_image=kubectl_image,
        )
        found[tenant_plan.tenant] = render_documents(documents)
    return found


def rehearsal_documents(
    catalog: catalog_model.Catalog,
    plans: Sequence[plan_model.TenantPlan],
    *,
    tool: job_model.Tool,
    image: str | None = None,
) -> dict[str, str]:
    """Per tenant of a major upgrade, the YAML of the Job that rehearses it in staging on a
    restored copy of its database."""
    return {
        tenant_plan.tenant: render_documents(
            [
                job_model.rehearsal_job(
                    tenant_plan,
                    namespace=catalog.tenants[tenant_plan.tenant].spec.namespace,
                    image=image or catalog.tenants[tenant_plan.tenant].spec.odoo.image,
                    tool=tool,
                )
            ]
        )
        for tenant_plan in plans
        if tenant_plan.major
    }


_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def render_documents(documents: Sequence[dict[str, Any]]) -> str:
    """Manifests as one multi-document YAML text, keys in their order (libyaml when there)."""
    return yaml.dump_all(documents, Dumper=_DUMPER, sort_keys=False)


def apply_to_change(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    plans: Sequence[plan_model.TenantPlan],
) -> ChangeRequest:
    """Record what the plans imply on a change (an edit, audited; material, so the change
    goes back to draft from assess/authorize/scheduled): its category, irreversibility
    (a rollback restores the backups: the rollout backs the databases up first) and the
    plan's summary in its implementation plan.

    The category is only ever raised (`raised_category`): a plan that runs `-u` or `-i`
    makes a change that does not touch databases a module-update (the rollout then backs
    the databases up), migration scripts make it a database-migration, a major upgrade an
    odoo-upgrade; a change already filed in a category at least as strong keeps it."""
    effects = plan_model.change_effects(plans)
    if effects["errors"]:
        raise InvalidInput(
            [Problem("the plan has errors: " + "; ".join(effects["errors"]), field="plan")]
        )
    current = change_service.get(engine, ctx, change_id)
    summary = summary_text(plans, effects)
    runs = any(p.update or p.install or p.auto_install for p in plans) or effects["irreversible"]
    category = current.spec.category
    if runs:
        category = raised_category(category, Category(effects["category"]))
    patch: dict[str, Any] = {
        "category": category.value,
        "implementation_plan": _replace_section(current.spec.implementation_plan, summary),
    }
    if effects["irreversible"]:
        patch["rollback_plan"] = {
            **current.spec.rollback_plan.model_dump(mode="json"),
            "irreversible": True,
        }
    return change_service.edit(engine, catalog, ctx, change_id, patch)


# How strongly a category says the change rewrites tenant databases: a plan never lowers it.
_DATABASE_RANK = {
    Category.MODULE_UPDATE: 1,
    Category.DATABASE_MIGRATION: 2,
    Category.DATABASE_UPGRADE: 2,
    Category.ODOO_UPGRADE: 3,
}


def raised_category(current: Category, planned: Category) -> Category:
    """The planned category when it says more about the databases than the current one."""
    if _DATABASE_RANK.get(planned, 0) > _DATABASE_RANK.get(current, 0):
        return planned
    return current


_BEGIN = "<!-- changegate odoo plan -->"
_END = "<!-- /changegate odoo plan -->"


def _replace_section(text: str, summary: str) -> str:
    block = f"{_BEGIN}\n{summary}\n{_END}"
    if _BEGIN in text and _END in text:
        head, _, rest = text.partition(_BEGIN)
        _, _, tail = rest.partition(_END)
        return f"{head}{block}{tail}"
    return f"{text.rstrip()}\n\n{block}".lstrip()


def summary_text(plans: Sequence[plan_model.TenantPlan], effects: dict[str, Any]) -> str:
    """The plan in a few lines, for the change's implementation plan."""
    lines = [f"Odoo upgrade plan ({len(plans)} tenant database(s)):"]
    for tenant_plan in plans:
        modules = ", ".join(u.module for u in tenant_plan.update) or "nothing"
        scripts = len(tenant_plan.scripts)
        lines.append(
            f"- {tenant_plan.tenant} ({tenant_plan.database}): update {modules}"
            + (f"; install {', '.join(tenant_plan.install)}" if tenant_plan.install else "")
            + (f"; {scripts} migration script(s)" if scripts else "")
        )
    for reason in dict.fromkeys(effects["reasons"]):
        lines.append(f"Why: {reason}")
    return "\n".join(lines)
