"""The `changegate` command: `changegate <noun> <verb>`, calling the same services as the API.

Exit codes (the contract in ARCHITECTURE.md): 0 ok, 1 invalid input (usage errors included),
2 refused by a rule, 3 conflict or stale write, 4+ internal error. One handler, in `main()`,
maps every ChangegateError through `errors.shape`.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from changegate import __version__
from changegate.cli import analysis as analysis_cli
from changegate.cli import approvals as approvals_cli
from changegate.cli import audit as audit_cli
from changegate.cli import backups as backups_cli
from changegate.cli import catalog as catalog_cli
from changegate.cli import changes as changes_cli
from changegate.cli import drift as drift_cli
from changegate.cli import gitops as gitops_cli
from changegate.cli import odoo as odoo_cli
from changegate.cli import odoo_plan as odoo_plan_cli
from changegate.cli import output, reports, runtime
from changegate.cli import policy as policy_cli
from changegate.cli import retrospectives as retrospectives_cli
from changegate.cli import rollouts as rollouts_cli
from changegate.cli import windows as windows_cli
from changegate.cli import worker as worker_cli
from changegate.errors import ChangegateError

if TYPE_CHECKING:
    from changegate import bootstrap
    from changegate import worker as worker_loop

app = typer.Typer(
    name="changegate",
    help="Change control for Odoo platforms on Kubernetes: file, move and audit changes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(catalog_cli.app, name="catalog")
app.add_typer(changes_cli.app, name="change")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(reports.app, name="report")
app.add_typer(retrospectives_cli.app, name="retrospective")
app.add_typer(windows_cli.app, name="windows")
app.add_typer(analysis_cli.app, name="analysis")
app.add_typer(gitops_cli.app, name="gitops")
app.add_typer(backups_cli.app, name="backup")
app.add_typer(rollouts_cli.app, name="rollout")
app.add_typer(odoo_cli.app, name="odoo")
odoo_cli.app.command("plan")(odoo_plan_cli.plan_command)
app.command("calendar")(windows_cli.calendar_command)
app.command("worker")(worker_cli.worker_command)
app.command("drift")(drift_cli.drift_command)
approvals_cli.register(app, changes_cli.app)
policy_cli.register(app, changes_cli.app)
gitops_cli.register(changes_cli.app)

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _version(value: bool) -> None:
    if value:
        output.out(f"changegate {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    as_person: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="PERSON",
            help="The acting person, a catalog Person id (else CHANGEGATE_USER).",
        ),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog",
            metavar="DIR",
            help="The platform catalog folder (else CHANGEGATE_CATALOG_DIR, else ./platform).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="SQLAlchemy database URL (else CHANGEGATE_DATABASE_URL, "
            "else sqlite:///changegate.db).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Change control for Odoo platforms on Kubernetes: file, move and audit changes."""
    state = ctx.ensure_object(runtime.CliState)
    state.settings = runtime.build_settings(
        person=as_person, catalog=catalog, database_url=database_url
    )
    state.person = state.settings.user
    state.catalog_configured = state.settings.catalog_dir is not None
    ctx.call_on_close(state.close)


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the sample platform.")],
    tenants: Annotated[
        int, typer.Option("--tenants", min=1, max=100_000, help="How many tenants.")
    ] = 48,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that already exist.")
    ] = False,
) -> None:
    """Write a sample platform catalog (tiers, clusters, services, tenants, people, windows)."""
    from changegate.adapters import sample_platform

    written = sample_platform.write_sample(directory, tenants=tenants, force=force)
    files = sorted(written)
    output.out(
        f"wrote a sample platform with {tenants} tenants to {directory}/ ({len(files)} files):"
    )
    for path in files:
        output.out(f"  {path.relative_to(directory)}")
    output.out("")
    output.out("next steps:")
    output.out(f"  export CHANGEGATE_CATALOG_DIR={directory}")
    output.out("  changegate catalog validate")
    output.out("  changegate catalog show tenants")
    output.out("  changegate --as alice change create -f change.yaml   (see docs/changes.md)")
    output.out("  changegate serve")


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (else CHANGEGATE_HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port (else CHANGEGATE_PORT)."),
    ] = None,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", metavar="DIR", help="The catalog folder.")
    ] = None,
) -> None:
    """Serve the HTTP API; writes the sample platform to ./platform first if there is none."""
    state = runtime.state(ctx)
    settings = state.require_settings()
    if catalog is not None:
        settings = settings.model_copy(update={"catalog_dir": catalog})
        state.settings = settings
        state.catalog_configured = True
    directory = state.catalog_dir
    if not state.catalog_configured and not directory.exists():
        from changegate.adapters import sample_platform

        sample_platform.write_sample(directory)
        output.note(
            f"no catalog configured and no ./{directory} yet: wrote the sample "
            f"platform there (changegate init)"
        )
    bind_host = host or settings.host
    bind_port = port or settings.port
    from changegate.api import server

    application = state.app()
    loaded = application.catalog()
    output.note(f"catalog {directory} ({loaded.digest})")
    server.check_bind(application, bind_host)
    embedded = embed_worker(application)
    try:
        # server.run prints the URL once it has checked the bind address; Ctrl-C stops it.
        server.run(application, bind_host, bind_port)
    finally:
        if embedded is not None:
            embedded.stopping = True


def embed_worker(application: bootstrap.App) -> worker_loop.Worker | None:
    """Start serve's rollout worker in a thread, when a GitOps working copy is configured
    and CHANGEGATE_WORKER_EMBEDDED is not false; say either way on stderr."""
    from changegate import worker as worker_loop

    settings = application.settings
    if settings.gitops_workdir is None:
        output.note(
            "no rollout worker in this process: CHANGEGATE_GITOPS_WORKDIR is unset (set it to "
            "a clone of the GitOps repository, or run `changegate worker` elsewhere)"
        )
        return None
    if not settings.worker_embedded:
        output.note(
            "no rollout worker in this process: CHANGEGATE_WORKER_EMBEDDED is false (run "
            "`changegate worker`)"
        )
        return None
    delivery = application.delivery()
    loop = worker_loop.Worker(
        application.engine,
        application.catalog,
        delivery,
        clock=application.clock,
        note=output.note,
    )
    worker_loop.run_in_thread(loop)
    output.note(
        f"rollout worker {loop.name} runs in this process: it commits waves to "
        f"{delivery.target.branch} through {settings.gitops_workdir}"
    )
    return loop


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the database migrations (needed for PostgreSQL; SQLite migrates itself)."""
    from changegate.store import db

    settings = runtime.state(ctx).require_settings()
    engine = db.make_engine(settings.database_url)
    try:
        revision = db.upgrade(engine)
    finally:
        engine.dispose()
    output.out(f"{db.display_url(settings.database_url)} is at revision {revision} (head)")


def _usage_error(exc: typer.TyperException, as_json: bool) -> int:
    """Click's usage errors exit 1 here: 2 is reserved for `refused by a rule`."""
    usage_ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        # A bare `changegate` or `changegate change`: the help is the answer. Typer's Rich
        # help is printed while the exception is made; plain help is its message.
        text = exc.format_message()
        if text.strip():
            output.out(text)
        return 0
    if usage_ctx is not None:
        output.note(usage_ctx.get_usage())
        output.note(f"Try '{usage_ctx.command_path} --help' for help.")
    return output.report_internal(exc.format_message(), as_json=as_json, slug="usage", code=1)


def _debug(exc: BaseException) -> None:
    """With CHANGEGATE_DEBUG=1, the traceback on stderr (secrets scrubbed all the same)."""
    if os.environ.get("CHANGEGATE_DEBUG") == "1":
        output.note("".join(traceback.format_exception(exc)).rstrip())


def _internal(exc: BaseException, as_json: bool) -> int:
    import sqlalchemy as sa

    _debug(exc)
    if isinstance(exc, sa.exc.DBAPIError):
        detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "failed"
        message = f"database error: {detail}"
    else:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        message = f"internal error ({type(exc).__name__}){': ' + first if first else ''}"
    if os.environ.get("CHANGEGATE_DEBUG") != "1":
        message += " (set CHANGEGATE_DEBUG=1 for the traceback)"
    return output.report_internal(message, as_json=as_json)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on argv and return the exit code (no sys.exit; for tests and embedding)."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = runtime.CliState()
    # Errors raised before a command runs (settings, usage) still answer --json in JSON.
    wants_json = "--json" in (args[: args.index("--")] if "--" in args else args)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="changegate", standalone_mode=False, obj=state)
        return result if isinstance(result, int) else 0
    except ChangegateError as exc:
        _debug(exc)
        return output.report_error(exc, as_json=state.json or wants_json)
    except typer.TyperException as exc:
        return _usage_error(exc, wants_json)
    except typer.Abort:
        output.note("aborted")
        return 1
    except KeyboardInterrupt:
        output.note("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more on a closed pipe.
        _silence_stdout()
        return 0
    except Exception as exc:
        return _internal(exc, state.json or wants_json)
    finally:
        state.close()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        return


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script `changegate`."""
    sys.exit(run(argv))
