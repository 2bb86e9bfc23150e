"""`changegate drift`: the GitOps repository against the cluster, and commits nobody authorized
(docs/health-and-drift.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from changegate.cli import output, runtime
from changegate.errors import ChangegateError, InvalidInput, Problem

if TYPE_CHECKING:
    from changegate.domain.changes import ChangeRequest
    from changegate.domain.drift import DriftReport, UnauthorizedCommit

REFUSED_EXIT = 2


def _kubectl_kinds(objects: list[Any]) -> list[str]:
    """`kind.version.group` names for `kubectl get`, from the desired objects."""
    kinds: set[str] = set()
    for item in objects:
        api_version, kind = str(item.obj.get("apiVersion")), str(item.obj.get("kind"))
        group, _, version = api_version.rpartition("/")
        kinds.add(f"{kind.lower()}.{version}.{group}" if group else kind.lower())
    return sorted(kinds)


def drift_command(
    ctx: typer.Context,
    repo: Annotated[
        Path,
        typer.Option("--repo", metavar="PATH", help="A local clone of the GitOps repository."),
    ],
    live: Annotated[
        Path | None,
        typer.Option(
            "--live",
            metavar="SNAPSHOT.json",
            help="Live objects exported with `kubectl get ... -o json` (a List).",
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            metavar="FILE",
            help="Read the live objects with kubectl and this kubeconfig (else $KUBECONFIG).",
        ),
    ] = None,
    range_: Annotated[
        str | None,
        typer.Option(
            "--range",
            metavar="A..B",
            help="Check every commit of A..B on governed paths for an authorized Change-Id.",
        ),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", metavar="REV", help="The desired state's commit (default: branch)."),
    ] = None,
    namespace: Annotated[
        str,
        typer.Option("--default-namespace", help="The namespace of manifests that name none."),
    ] = "default",
    open_change: Annotated[
        bool,
        typer.Option(
            "--open-change",
            help="File one emergency change (a draft, you the requester) recording what was "
            "found and no change records yet.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Report drifted, missing and unmanaged objects (desired at the repository's head against
    live), and commits on governed paths without an authorized Change-Id (or, when the
    repository requires them, a good signature by an allowed key). Exit 2 when any is found,
    0 when none, 1 for bad input."""
    from changegate import bootstrap
    from changegate.adapters import kubectl
    from changegate.domain.permissions import Permission
    from changegate.services import changes as change_service
    from changegate.services import drift as drift_service
    from changegate.services import rollout as rollout_service

    state = runtime.json_mode(ctx, as_json)
    settings = state.require_settings()
    if open_change:
        # Refused before any work: the findings would be found for nothing.
        state.context().actor.require(Permission.CHANGES_CREATE)
    kube = None if live is not None else kubectl.Kubectl.configured(kubeconfig)
    if live is None and kube is None and range_ is None:
        raise InvalidInput(
            [
                Problem(
                    "nothing to check: give --live SNAPSHOT.json, --kubeconfig FILE "
                    "(or set KUBECONFIG), or --range A..B",
                    field="live",
                )
            ]
        )
    body: dict[str, Any] = {"repository": str(repo)}
    found = False
    catalog = (
        state.catalog()
        if range_ is not None or open_change
        else bootstrap.load_catalog(settings, state.catalog_dir)
    )
    report: DriftReport | None = None
    commits: list[UnauthorizedCommit] = []
    context_lines: list[str] = []
    if live is not None or kube is not None:
        desired = drift_service.desired_at_head(catalog, repo, ref)
        if live is not None:
            objects = kubectl.read_snapshot(live)
            source = str(live)
        else:
            assert kube is not None
            objects = kube.get(_kubectl_kinds(desired.objects))
            source = f"kubectl ({kube.kubeconfig})"
        report = drift_service.live_drift(desired, objects, default_namespace=namespace)
        found = found or report.found
        context_lines.append(
            f"desired at {str(desired.commit)[:12]} against {source}: "
            f"{report.compared} objects compared"
        )
        body["desired_commit"] = desired.commit
        body["live_source"] = source
        body["drift"] = report.as_dict()
        body["notices"] = desired.notices
    if range_ is not None:
        engine, service_ctx = state.app().engine, state.context()

        def lookup(change_id: str) -> ChangeRequest | None:
            return change_service.get(engine, service_ctx, change_id)

        def made_by_rollout(change_id: str) -> set[str]:
            try:
                return rollout_service.recorded_commits(engine, service_ctx, change_id)
            except InvalidInput:
                return set()  # not a change id: the Change-Id check reports it

        commits, governed = drift_service.unauthorized_commits(
            catalog,
            repo,
            range_,
            lookup,
            catalog_dir=state.catalog_dir,
            rollout_commits=made_by_rollout,
        )
        found = found or bool(commits)
        body["range"] = range_
        body["governed_commits"] = governed
        body["unauthorized_commits"] = [c.as_dict() for c in commits]
        context_lines.append(f"range {range_}: {governed} commits on governed paths")
    body["found"] = found
    if open_change and found:
        app_ = state.app()
        try:
            opened = drift_service.open_change(
                app_.engine,
                catalog,
                state.context(),
                repo,
                report=report,
                commits=commits,
                context_lines=context_lines,
            )
        except ChangegateError:
            if not as_json:
                _human(body)  # what was found, before the error saying why nothing was filed
            raise
        body["change"] = opened.as_dict()
    if as_json:
        output.emit_json(body)
    else:
        _human(body)
    if found:
        raise typer.Exit(REFUSED_EXIT)


def _human(body: dict[str, Any]) -> None:
    report = body.get("drift")
    if report is not None:
        output.out(
            f"desired {str(body['desired_commit'])[:12]} against {body['live_source']}: "
            f"{report['compared']} objects compared"
        )
        for item in report["drifted"]:
            output.out(f"drifted: {_name(item)} ({item['source']})")
            for diff in item["differences"]:
                if diff["missing"]:
                    output.out(f"  {diff['path']}: missing live")
                elif "desired" in diff:
                    output.out(
                        f"  {diff['path']}: desired {diff['desired']!r}, live {diff['live']!r}"
                    )
                else:
                    output.out(f"  {diff['path']}: differs (value hidden)")
        for item in report["missing"]:
            output.out(f"missing: {_name(item)} ({item['source']})")
        for item in report["unmanaged"]:
            output.out(f"unmanaged: {_name(item)}")
        for text in report["duplicates"]:
            output.note(f"notice: {text}")
        if not (report["drifted"] or report["missing"] or report["unmanaged"]):
            output.out("no drift")
    for notice in body.get("notices", []):
        output.note(f"notice: {notice}")
    if "unauthorized_commits" in body:
        commits = body["unauthorized_commits"]
        output.out(f"{body['range']}: {body['governed_commits']} commits on governed paths")
        for item in commits:
            output.out(f"unauthorized: {item['sha'][:12]} {item['subject']}: {item['reason']}")
            for path in item["paths"]:
                output.out(f"  {path}")
        if not commits:
            output.out("every commit on a governed path names an authorized change")
    opened = body.get("change")
    if opened is not None:
        if opened["status"] == "opened":
            output.out(f"opened {opened['change_id']} (emergency, draft): {opened['title']}")
            output.out(
                f"  {opened['category']} in {opened['environment']}; submit it to have it "
                "authorized and its retrospective opened"
            )
        held = sorted({f["recorded_in"] for f in opened["findings"] if f["recorded_in"]})
        if held:
            output.out(f"recorded already in {', '.join(held)}: not filed again")


def _name(item: dict[str, Any]) -> str:
    where = f"{item['namespace']}/" if item["namespace"] else ""
    return f"{item['kind']} {where}{item['name']} ({item['apiVersion']})"
