"""`changegate check` and `changegate policy ...`: the policy gates from the command line.

`check` reads files, folders and stdin and needs no database: it runs in any CI job with the
platform catalog checked out (or without one: then the defaults apply, with no environments,
tenants or waivers). Exit codes: 0 passed, 1 an input could not be read, 2 error-level
findings remain (the "refused by a rule" code of the CLI contract).
"""

from __future__ import annotations

import gc
import sys
import textwrap
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from changegate import __version__
from changegate.cli import output, runtime
from changegate.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from changegate.domain import catalog as catalog_model
    from changegate.domain.policy.engine import Report, Waiver

app = typer.Typer(help="Policy gates: the rules, the waivers.", no_args_is_help=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"


def _catalog(state: runtime.CliState, *, needed: bool) -> catalog_model.Catalog | None:
    """The configured catalog; None when none is configured and ./platform does not exist."""
    from changegate import bootstrap

    directory = state.catalog_dir
    if not state.catalog_configured and not directory.exists() and not needed:
        return None
    return bootstrap.load_catalog(state.require_settings(), directory)


def render(report: Report, form: OutputFormat) -> str:
    """The report in a machine format (JSON, SARIF 2.1.0, JUnit XML).

    File names are already as the user wants them shown (relative to --base when given):
    SARIF marks relative ones as under %SRCROOT%, the repository root.
    """
    from changegate.domain.policy import formats

    if form is OutputFormat.JSON:
        return output.to_json(report.as_dict())
    if form is OutputFormat.SARIF:
        return output.to_json(formats.sarif(report, tool_version=__version__))
    return formats.junit(report)


def _say(text: str) -> None:
    """A line of the report, wrapped to the terminal (continuation lines indented)."""
    width = max(output.console().width, 40)
    output.out(textwrap.fill(text, width, subsequent_indent="  ", break_on_hyphens=False))


def print_report(report: Report) -> None:
    """The terminal table, grouped by resource, then the summary and what needs attention."""
    from changegate.domain.policy.engine import by_resource

    rows: list[list[str]] = []
    for label, findings in by_resource(report.findings).items():
        for index, finding in enumerate(findings):
            status = finding.severity.value
            if finding.status.value == "waived":
                status = f"waived ({finding.waiver})"
            elif finding.waiver_expired:
                status = f"{status}, waiver {finding.waiver} EXPIRED"
            rows.append(
                [
                    label if index == 0 else "",
                    status,
                    finding.rule,
                    finding.where,
                    finding.message,
                ]
            )
    if rows:
        output.print_table(
            [
                output.Column("RESOURCE", min_width=16, max_width=48, wrap=True),
                output.Column("SEVERITY", min_width=7),
                output.Column("RULE", min_width=10, max_width=40),
                output.Column("WHERE", drop=1, min_width=10, max_width=48, wrap=True),
                output.Column("MESSAGE", min_width=20, wrap=True),
            ],
            rows,
        )
    for waiver in report.expired_waivers:
        _say(
            f"EXPIRED WAIVER {waiver.id} ({waiver.spec.rule}, owner {waiver.spec.owner}) "
            f"ended {waiver.spec.expires.isoformat()}: it no longer applies "
            f"({waiver.file}:{waiver.line})"
        )
    for waiver in report.refused_waivers:
        _say(
            f"waiver {waiver.id} does not apply: rule {waiver.spec.rule} is non-waivable "
            f"({waiver.file}:{waiver.line})"
        )
    for waiver in report.orphan_waivers:
        _say(f"orphan waiver {waiver.id}: matched no finding ({waiver.file}:{waiver.line})")
    for notice in report.notices:
        _say(f"note: {notice}")
    for problem in report.problems:
        where = problem.get("file") or "-"
        if problem.get("line"):
            where += f":{problem['line']}"
        _say(f"error: {where}: {problem['message']}")
    summary = report.summary
    _say(
        f"{summary.documents} documents, {summary.rules_run} rules: {summary.passed} rules "
        f"passed; findings failed: {summary.failed} ({summary.errors} errors, "
        f"{summary.warnings} warnings, {summary.infos} info), waived: {summary.waived}, "
        f"failing on an expired waiver: {summary.expired}"
    )
    verdict = "PASSED" if report.passed else "FAILED"
    if report.problems:
        verdict += f": {len(report.problems)} inputs could not be read"
    elif report.failing_errors:
        verdict += f": {len(report.failing_errors)} error-level findings are not waived"
    _say(verdict)


def exit_code(report: Report) -> int:
    """1 when an input could not be read, 2 when unwaived errors remain, else 0."""
    if report.problems:
        return 1
    return 2 if report.failing_errors else 0


def check_command(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH...",
            help="Files and folders to check; `-` reads YAML from stdin (helm template, "
            "kustomize build).",
        ),
    ],
    env: Annotated[
        str | None,
        typer.Option("--env", metavar="ENV", help="The target environment (catalog id)."),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", metavar="TENANT", help="The tenant the files are for."),
    ] = None,
    form: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.TABLE,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the --format output to FILE (the table still goes to stdout).",
        ),
    ] = None,
    base: Annotated[
        Path | None,
        typer.Option(
            "--base",
            metavar="DIR",
            help="Show file names relative to DIR (the repository root; default: as given).",
        ),
    ] = None,
    stdin_name: Annotated[
        str,
        typer.Option(
            "--stdin-name",
            metavar="NAME",
            help="The file name findings on stdin carry (e.g. charts/odoo); SARIF needs one.",
        ),
    ] = "-",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Check manifests, plans, Dockerfiles, reports and configs against the policy gates.

    Exits 0 when no error-level finding remains unwaived, 2 when one does, 1 when an input
    cannot be read.
    """
    from changegate.services import policy

    # A one-shot process that keeps everything it reads until it exits: Python's cyclic
    # collector would only rescan the thousands of (acyclic) documents over and over.
    gc.disable()
    state = runtime.json_mode(ctx, as_json or form is OutputFormat.JSON)
    if as_json:
        form = OutputFormat.JSON
    if output_file is not None and form is OutputFormat.TABLE:
        raise InvalidInput(
            [Problem("--output needs --format json, sarif or junit", field="output")]
        )
    catalog = _catalog(state, needed=env is not None or tenant is not None)
    report = policy.check_paths(
        catalog,
        paths,
        now=datetime.now(UTC),
        environment=env,
        tenant=tenant,
        stdin=sys.stdin.buffer if "-" in paths else None,
        stdin_name=stdin_name,
        base=base,
        max_bytes=state.require_settings().max_file_bytes,
    )
    if output_file is not None:
        output_file.write_text(render(report, form) + "\n", encoding="utf-8")
        print_report(report)
    elif form is OutputFormat.TABLE:
        print_report(report)
    else:
        sys.stdout.write(render(report, form) + "\n")
    raise typer.Exit(exit_code(report))


@app.command("rules")
def rules_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the rule reference as Markdown.")
    ] = False,
) -> None:
    """List every rule that applies: built-in packs, plugins and the catalog's CEL rules."""
    from changegate.domain.policy import engine
    from changegate.services import policy

    state = runtime.json_mode(ctx, as_json)
    catalog = _catalog(state, needed=False)
    ruleset = policy.rules_of(catalog)
    infos = [each.info for each in ruleset.rules]
    if as_json:
        output.emit_json(
            [
                {
                    **engine.rule_dict(info),
                    "severity": ruleset.severity(info).value,
                    "waivable": info.waivable and info.id not in ruleset.non_waivable,
                }
                for info in infos
            ]
        )
        return
    if markdown:
        sys.stdout.write(rules_markdown(infos))
        return
    output.print_table(
        [
            output.Column("RULE", min_width=12),
            output.Column("SEVERITY", min_width=7),
            output.Column("TITLE", min_width=20, wrap=True),
            output.Column("ALIASES", drop=1, min_width=10, wrap=True),
        ],
        [
            [info.id, ruleset.severity(info).value, info.title, output.joined(info.aliases)]
            for info in infos
        ],
    )


def rules_markdown(infos: list[Any]) -> str:
    """docs/policy-rules.md: every rule with its rationale, remediation and aliases."""
    lines = [
        "# Policy rules",
        "",
        "Generated by `changegate policy rules --markdown` from the rules themselves; a test",
        "checks that this page matches them. How checks, waivers and outputs work:",
        "[policy.md](policy.md).",
        "",
    ]
    pack = None
    for info in infos:
        if info.pack != pack:
            pack = info.pack
            lines += [f"## {pack}", ""]
        lines += [f"### `{info.id}` — {info.title}", ""]
        waivable = "" if info.waivable else "; not waivable"
        lines += [f"Severity: **{info.severity.value}**{waivable}.", ""]
        lines += [info.rationale, "", f"Remediation: {info.remediation}", ""]
        if info.aliases:
            lines += ["Equivalent checks: " + ", ".join(f"`{a}`" for a in info.aliases), ""]
    return "\n".join(lines)


def _waiver_row(waiver: Waiver, now: datetime) -> dict[str, Any]:
    left = waiver.spec.expires - now
    state = "active" if waiver.spec.active(now) else "expired"
    return {**waiver.as_dict(), "state": state, "days_left": max(left.days, 0)}


@app.command("waivers")
def waivers_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the catalog's waivers: rule, selector, owner, expiry; expired ones stand out."""
    from changegate.services import policy

    state = runtime.json_mode(ctx, as_json)
    catalog = _catalog(state, needed=True)
    now = datetime.now(UTC)
    rows = [_waiver_row(w, now) for w in policy.waivers_of(catalog)]
    if as_json:
        output.emit_json(rows)
        return
    if not rows:
        output.out("no waivers in the catalog")
        return
    output.print_table(
        [
            output.Column("WAIVER", min_width=10),
            output.Column("RULE", min_width=10),
            output.Column("SELECTOR", drop=2, min_width=10, wrap=True),
            output.Column("OWNER", drop=1),
            output.Column("EXPIRES", min_width=10),
            output.Column("STATE"),
        ],
        [
            [
                row["id"],
                row["rule"],
                output.joined(f"{k}={v}" for k, v in row["selector"].items()),
                row["owner"],
                row["expires"],
                row["state"].upper() if row["state"] == "expired" else row["state"],
            ]
            for row in rows
        ],
    )


def change_policy_command(
    ctx: typer.Context,
    change_id: Annotated[str, typer.Argument(metavar="CHANGE", help="CHG-<n>")],
    form: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.TABLE,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """The policy gate's report of the change's latest assessment (`change assess` runs it)."""
    from changegate.services import policy

    state = runtime.json_mode(ctx, as_json or form is OutputFormat.JSON)
    app = state.app()
    stored = policy.latest_report(app.engine, state.context(), change_id)
    if as_json or form is OutputFormat.JSON:
        output.emit_json(stored.as_dict())
    elif form is OutputFormat.TABLE:
        output.out(
            f"{change_id.upper()}: policy gate of assessment {stored.assessment_id}, checked "
            f"{stored.created_at.isoformat()} (content {stored.content_hash[:19]})"
        )
        print_report(stored.report)
    else:
        sys.stdout.write(render(stored.report, form) + "\n")


def register(root: typer.Typer, change_app: typer.Typer) -> None:
    """`changegate check`, `changegate policy ...` and `changegate change policy`."""
    root.command("check")(check_command)
    root.add_typer(app, name="policy")
    change_app.command("policy")(change_policy_command)
