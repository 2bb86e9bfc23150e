"""`changegate gitops diff` and `changegate change from-git`: changes read from the GitOps
repository's history (docs/gitops.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from changegate.cli import output, runtime
from changegate.domain.changes import Category, ChangeType

if TYPE_CHECKING:
    from changegate.services.gitops import GitOpsDiff

app = typer.Typer(
    help="The GitOps repository: what a commit range changes, mapped to the catalog.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
Repo = Annotated[
    Path,
    typer.Option(
        "--repo",
        metavar="PATH",
        help="A local clone of the GitOps repository the catalog's GitOpsRepository declares.",
    ),
]
Range = Annotated[
    str,
    typer.Argument(
        metavar="A..B",
        help="The commits from A (excluded) to B (included), e.g. main~1..main.",
        show_default=False,
    ),
]
MaxBytes = Annotated[
    int | None,
    typer.Option(
        "--max-file-bytes",
        metavar="N",
        min=1,
        help="Skip reading changed files larger than this (default 4 MiB).",
    ),
]


def _print_diff(found: GitOpsDiff) -> None:
    data = found.as_dict()
    commits = len(found.commits)
    output.out(
        f"{found.from_commit[:12]}..{found.to_commit[:12]} of {found.url} "
        f"({commits} commit{'s' if commits != 1 else ''}, {len(found.files)} "
        f"file{'s' if len(found.files) != 1 else ''})"
    )
    output.out("targets:")
    any_target = False
    for kind, items in data["targets"].items():
        for item in items:
            any_target = True
            output.out(f"  {kind[:-1]} {item['id']}")
            for reason in item["reasons"]:
                output.out(f"    {reason}")
    if not any_target:
        output.out("  (none)")
    if found.images:
        output.out("images:")
        for image, files in found.images:
            output.out(f"  {image.text}  ({', '.join(files)})")
    category = found.category.value or "- (unclear)"
    environment = found.environment.value or "- (unclear)"
    output.out(f"category:    {category}: {found.category.reason}")
    output.out(f"environment: {environment}: {found.environment.reason}")
    ignored = [f.path for f in found.files if f.ignored]
    if ignored:
        output.out(f"ignored: {', '.join(ignored)}")
    if found.unmatched:
        output.out("unmatched:")
        for path, reason in found.unmatched:
            output.out(f"  {path}: {reason}")
    for notice in found.notices:
        output.note(f"notice: {notice}")


@app.command("diff")
def diff_command(
    ctx: typer.Context,
    range_: Range,
    repo: Repo,
    max_file_bytes: MaxBytes = None,
    as_json: JsonFlag = False,
) -> None:
    """Map the files changed in A..B to tenants, services and clusters; list the images and
    digests of the changed manifests; infer the category and environment where clear."""
    from changegate import bootstrap
    from changegate.adapters import git as git_adapter
    from changegate.services import gitops as gitops_service

    state = runtime.json_mode(ctx, as_json)
    catalog = bootstrap.load_catalog(state.require_settings(), state.catalog_dir)
    found = gitops_service.diff(
        catalog,
        repo,
        range_,
        max_blob_bytes=max_file_bytes or git_adapter.DEFAULT_MAX_BLOB_BYTES,
    )
    if as_json:
        output.emit_json(found.as_dict())
        return
    _print_diff(found)


def from_git_command(
    ctx: typer.Context,
    range_: Range,
    repo: Repo,
    title: Annotated[
        str | None,
        typer.Option("--title", metavar="TEXT", help="The title (default: the commit subject)."),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env", metavar="ENV", help="The environment, when the targets do not tell it."
        ),
    ] = None,
    category: Annotated[
        Category | None,
        typer.Option("--category", help="The category, when the files do not tell it."),
    ] = None,
    change_type: Annotated[
        ChangeType, typer.Option("--type", help="The change type.")
    ] = ChangeType.NORMAL,
    allow_unmatched: Annotated[
        bool,
        typer.Option(
            "--allow-unmatched",
            help="File the change even when some changed files map to no catalog entity.",
        ),
    ] = False,
    max_file_bytes: MaxBytes = None,
    as_json: JsonFlag = False,
) -> None:
    """File a change (a draft) from a commit range of the GitOps repository: its targets,
    images and digests, manifests and commits; you are the requester."""
    from changegate.adapters import git as git_adapter
    from changegate.cli.changes import change_json
    from changegate.services import gitops as gitops_service

    state = runtime.json_mode(ctx, as_json)
    app_ = state.app()
    change, found = gitops_service.from_git(
        app_.engine,
        app_.catalog(),
        state.context(),
        repo,
        range_,
        title=title,
        environment=env,
        category=category,
        change_type=change_type,
        allow_unmatched=allow_unmatched,
        max_blob_bytes=max_file_bytes or git_adapter.DEFAULT_MAX_BLOB_BYTES,
    )
    for notice in found.notices:
        output.note(f"notice: {notice}")
    if as_json:
        output.emit_json({**change_json(change), "gitops_diff": found.as_dict()})
        return
    spec = change.spec
    output.out(f"created {change.id}: {spec.title}")
    output.out(
        f"  {spec.category.value} in {spec.environment}; targets: "
        f"{len(spec.targets.tenants)} tenants, {len(spec.targets.services)} services, "
        f"{len(spec.targets.clusters)} clusters; {len(spec.artifacts.images)} images"
    )
    for path, reason in found.unmatched:
        output.note(f"unmatched: {path}: {reason}")


def register(change_app: typer.Typer) -> None:
    """`changegate change from-git`."""
    change_app.command("from-git")(from_git_command)
