"""`changegate worker`: run rollout steps claimed from the database (docs/rollout.md).

Registered by `cli.main`. The GitOps repository is a local clone whose remote is `origin`
(--workdir, else CHANGEGATE_GITOPS_WORKDIR); commits go to --branch (else
CHANGEGATE_GITOPS_BRANCH, else the catalog's GitOpsRepository branch, else main). SIGTERM and
SIGINT stop the loop after the step in hand.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from changegate.cli import output, runtime


def worker_command(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run the steps due now, then exit.")] = False,
    poll: Annotated[
        float,
        typer.Option("--poll", metavar="SECONDS", min=0.01, help="Wait between empty polls."),
    ] = 1.0,
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", metavar="N", min=1, help="Exit after running N steps."),
    ] = None,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            metavar="SECONDS",
            min=0.1,
            help="How long a claimed step is this worker's before another may retry it.",
        ),
    ] = 60.0,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            metavar="DIR",
            help="A clone of the GitOps repository (its remote is origin); else "
            "CHANGEGATE_GITOPS_WORKDIR.",
        ),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            help="The branch to commit to; else CHANGEGATE_GITOPS_BRANCH, else the catalog's "
            "GitOpsRepository branch, else main.",
        ),
    ] = None,
) -> None:
    """Claim due rollout steps from the database and run them (several workers may run)."""
    from changegate import worker as worker_loop
    from changegate.services import rollout as rollout_service

    state = runtime.state(ctx)
    app = state.app()
    delivery = app.delivery(workdir=workdir, branch=branch)

    def report(turn: rollout_service.Turn) -> None:
        output.out(
            f"{turn.change_id} wave {turn.wave}/{turn.waves} {turn.kind.value}: {turn.outcome}"
        )

    loop = worker_loop.Worker(
        app.engine,
        app.catalog,
        delivery,
        lease=timedelta(seconds=lease),
        clock=app.clock,
        report=report,
        note=output.note,
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        loop.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    count = loop.run(once=once, poll=poll, max_steps=max_steps)
    output.out(f"worker {loop.name}: {count} step(s) run")
