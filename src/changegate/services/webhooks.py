"""GitHub and GitLab webhooks: verify, deduplicate, file or update the change, answer the gate.

`receive` takes one delivery (provider, headers with lower-cased names, raw body):

1. verify it (`domain.webhooks`): Unverified (the door answers 401) unless signed or tokened;
2. claim it by its delivery id and body digest: a repeat gets the first answer back, marked
   `replayed`, and files nothing;
3. a push to the GitOps repository's branch, or a pull/merge request into it: find the change
   filed for this head (or this request) and update it when the request moved, or file one
   through `gitops.from_git` as the configured webhook person, from the configured clone
   (fetched first). Without a clone or person the delivery is recorded and answered 202 with
   the reason;
4. answer the change's deployment gate: `allowed` when it is scheduled (the calendar allows a
   start now) or implementing, else `prevented` with the reason (not authorized and why,
   authorized but not scheduled, the calendar's block, or a final state).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from changegate.adapters import git as git_adapter
from changegate.domain import catalog as catalog_model
from changegate.domain import changes as changes_model
from changegate.domain import webhooks
from changegate.domain.changes import ChangeRequest, ChangeState
from changegate.errors import ChangegateError, InvalidInput, Problem
from changegate.services import changes as change_service
from changegate.services import context as context_service
from changegate.services import gitops as gitops_service
from changegate.services import lifecycle
from changegate.services.context import Context, utcnow
from changegate.store import changes as change_store
from changegate.store import db
from changegate.store import webhooks as store

# States in which nothing may be deployed for the change (it is done, or held).
STOPPED = frozenset(
    {ChangeState.REVIEW, ChangeState.CLOSED, ChangeState.CANCELED, ChangeState.ON_HOLD}
)
EVENT_HEADERS = {"github": "x-github-event", "gitlab": "x-gitlab-event"}
SPEC_FIELDS = ("title", "category", "environment", "targets", "artifacts")


@dataclass(frozen=True)
class Config:
    """What the webhooks are configured with (secrets as plain strings: keep them out of
    logs and messages)."""

    github_secret: str | None = None
    gitlab_token: str | None = None
    gitlab_signing_token: str | None = None
    person: str | None = None
    workdir: Path | None = None

    def configured(self, provider: webhooks.Provider) -> bool:
        return bool(self.github_secret if provider == "github" else self.gitlab_token)


@dataclass
class Answer:
    """The HTTP status and JSON body answered to a delivery."""

    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


def verify(
    config: Config,
    provider: webhooks.Provider,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> None:
    """Unverified unless the delivery carries the configured signature or token."""
    if provider == "github":
        webhooks.verify_github(config.github_secret or "", body, headers.get("x-hub-signature-256"))
        return
    webhooks.verify_gitlab_token(config.gitlab_token or "", headers.get("x-gitlab-token"))
    if config.gitlab_signing_token:
        webhooks.verify_standard_webhook(config.gitlab_signing_token, body, headers, now)


def receive(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    config: Config,
    provider: webhooks.Provider,
    headers: Mapping[str, str],
    body: bytes,
    *,
    request_id: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Answer:
    """Handle one delivery (see the module docstring). Raises webhooks.Unverified for an
    inauthentic one and InvalidInput for a malformed one; nothing is recorded for either."""
    now = clock()
    verify(config, provider, headers, body, now)
    try:
        delivery = webhooks.delivery_id(provider, headers)
    except webhooks.BadPayload as exc:
        raise InvalidInput([Problem(str(exc), field="headers")]) from None
    event_name = headers.get(EVENT_HEADERS[provider]) or ""
    digest = webhooks.body_digest(body)
    with db.transaction(engine) as conn:
        found = store.find(conn, provider, delivery, digest)
        if found is None:
            try:
                with conn.begin_nested():
                    row_id = store.claim(
                        conn,
                        provider=provider,
                        delivery_id=delivery,
                        body_sha256=digest,
                        event=event_name,
                        received_at=now,
                    )
            except sa.exc.IntegrityError:
                found = store.find(conn, provider, delivery, digest)
    if found is not None:
        return _repeat(found, delivery)
    base = {"provider": provider, "event": event_name[:64], "delivery": delivery}
    try:
        answer = _handle(engine, catalog, config, provider, event_name, body, request_id, clock)
    except BaseException:
        with db.transaction(engine) as conn:
            store.forget(conn, row_id)
        raise
    answer.body = {**base, "replayed": False, **answer.body}
    with db.transaction(engine) as conn:
        store.answer(conn, row_id, answer.status_code, answer.body)
    return answer


def _repeat(found: store.Delivery, delivery: str) -> Answer:
    if found.status_code is None or found.response is None:
        return Answer(
            409,
            {
                "status": "in-progress",
                "reason": "this delivery is being processed; retry later",
                "delivery": delivery,
            },
        )
    return Answer(found.status_code, {**found.response, "replayed": True})


def _handle(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    config: Config,
    provider: webhooks.Provider,
    event_name: str,
    body: bytes,
    request_id: str | None,
    clock: Callable[[], datetime],
) -> Answer:
    try:
        parsed = webhooks.parse(provider, event_name, body)
    except webhooks.BadPayload as exc:
        return Answer(202, {"status": "ignored", "reason": f"malformed payload: {exc}"})
    if isinstance(parsed, webhooks.Ignored):
        return Answer(202, {"status": "ignored", "reason": parsed.reason})
    event = parsed
    shown = {"request": event.as_dict()}
    repository = catalog.gitops_repository
    if repository is None:
        return _ignored(shown, "the catalog declares no GitOpsRepository")
    spec = repository.spec
    if not webhooks.same_repository(spec.url, event.repo_urls):
        return _ignored(shown, f"not the GitOps repository ({spec.url})")
    if event.branch != spec.branch:
        return _ignored(shown, f"not the GitOps branch {spec.branch!r}")
    repo_key = webhooks.normalise_url(spec.url)
    with engine.connect() as conn:
        existing = _existing(conn, provider, repo_key, event)
        if existing is not None and existing[1] == event.head_sha:
            change = change_store.get(conn, existing[0])
            return _answer(conn, catalog, change, "existing", shown, clock())
    if not config.person:
        return _recorded(shown, "CHANGEGATE_WEBHOOK_PERSON is not set: no change can be filed")
    if config.workdir is None:
        return _recorded(shown, "CHANGEGATE_GITOPS_WORKDIR is not set: the commits cannot be read")
    try:
        ctx = context_service.context_for(
            catalog, config.person, request_id or uuid.uuid4().hex, clock=clock
        )
        repo = git_adapter.Repository(config.workdir)
        range_text = _range(repo, event)
    except ChangegateError as exc:
        return _recorded(shown, str(exc))
    try:
        if existing is None:
            change, _ = gitops_service.from_git(
                engine, catalog, ctx, config.workdir, range_text, title=event.title or None
            )
            status, code = "created", 201
        else:
            change = _update(engine, catalog, ctx, config.workdir, existing[0], range_text, event)
            status, code = "updated", 200
    except ChangegateError as exc:
        return Answer(
            200,
            {
                **shown,
                "status": "refused",
                "change_id": changes_model.format_id(existing[0]) if existing else None,
                "gate": {"state": "prevented", "reason": f"no change could be filed: {exc}"},
            },
        )
    with db.transaction(engine) as conn:
        store.link(
            conn,
            change_number=change.number,
            provider=provider,
            repository=repo_key,
            request_key=event.key,
            head_sha=event.head_sha,
            at=ctx.now(),
        )
    with engine.connect() as conn:
        answered = _answer(conn, catalog, change, status, shown, ctx.now())
    answered.status_code = code
    return answered


def _ignored(shown: dict[str, Any], reason: str) -> Answer:
    return Answer(202, {**shown, "status": "ignored", "reason": reason})


def _recorded(shown: dict[str, Any], reason: str) -> Answer:
    return Answer(202, {**shown, "status": "recorded", "reason": reason})


def _existing(
    conn: sa.Connection, provider: str, repo_key: str, event: webhooks.Event
) -> tuple[int, str] | None:
    """(change number, head it was filed for) for this request or this head, or None."""
    if event.kind == "pull_request":
        found = store.change_for_request(conn, provider, repo_key, event.key)
        if found is not None:
            return found
    number = store.change_for_head(conn, repo_key, event.head_sha)
    return (number, event.head_sha) if number is not None else None


def _fetch(repo: git_adapter.Repository, event: webhooks.Event) -> None:
    """Fetch the branch (and the request's head) from `origin`, when the clone has one."""
    if "origin" not in repo.remotes():
        return
    refspecs = [f"+refs/heads/{event.branch}:refs/remotes/origin/{event.branch}"]
    if event.kind == "pull_request" and event.number is not None:
        kind = "pull" if event.provider == "github" else "merge-requests"
        refspecs.append(f"+refs/{kind}/{event.number}/head:refs/changegate/{kind}/{event.number}")
    if not repo.fetch_refs("origin", refspecs) and len(refspecs) > 1:
        repo.fetch_refs("origin", refspecs[:1])


def _range(repo: git_adapter.Repository, event: webhooks.Event) -> str:
    """The commit range the event's change is made of: before..after for a push, the merge
    base with the target branch..head for a request. InvalidInput when a commit is missing."""
    _fetch(repo, event)
    head = repo.resolve(event.head_sha)
    if event.kind == "push":
        assert event.before_sha is not None
        return f"{repo.resolve(event.before_sha)}..{head}"
    base = event.base_sha
    if base is None:
        tracking = f"refs/remotes/origin/{event.branch}"
        base = tracking if repo.has_ref(tracking) else f"refs/heads/{event.branch}"
    merge_base = repo.merge_base(repo.resolve(base), head)
    if merge_base is None:
        raise InvalidInput(
            [Problem(f"{head[:12]} shares no history with {event.branch}", field="range")]
        )
    return f"{repo.resolve(merge_base)}..{head}"


def _update(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    workdir: Path,
    number: int,
    range_text: str,
    event: webhooks.Event,
) -> ChangeRequest:
    """Edit the request's change to the new head's content (a material edit sends an
    assessed or approved change back: its approvals no longer count)."""
    found = gitops_service.diff(catalog, workdir, range_text)
    spec = gitops_service.spec_from_diff(found, title=event.title or None)
    dumped = spec.model_dump(mode="json")
    patch = {name: dumped[name] for name in SPEC_FIELDS}
    return change_service.edit(engine, catalog, ctx, changes_model.format_id(number), patch)


def gate(
    conn: sa.Connection, catalog: catalog_model.Catalog, change: ChangeRequest, now: datetime
) -> dict[str, Any]:
    """The deployment gate of a change now: `allowed`, or `prevented` with the reason."""
    state = change.state
    if state is ChangeState.IMPLEMENTING:
        return _gate(True, f"{change.id} is implementing", change)
    if state is ChangeState.SCHEDULED:
        check = lifecycle.start_check(conn, catalog, change, now)
        if check.allowed:
            return _gate(True, f"{change.id} is scheduled and {check.reason}", change)
        return _gate(False, f"{change.id} may not start now: {check.reason}", change)
    if state in STOPPED:
        return _gate(False, f"{change.id} is {state.value}", change)
    found = lifecycle.authorization(conn, catalog, change, now)
    if not found.authorized:
        return _gate(False, f"{change.id} is not authorized: {found.reason}", change)
    return _gate(False, f"{change.id} is authorized but {state.value}: schedule it first", change)


def _gate(allowed: bool, reason: str, change: ChangeRequest) -> dict[str, Any]:
    return {
        "state": "allowed" if allowed else "prevented",
        "reason": reason,
        "change_state": change.state.value,
    }


def _answer(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    status: str,
    shown: dict[str, Any],
    now: datetime,
) -> Answer:
    current = change_store.get(conn, change.number)
    return Answer(
        200,
        {
            **shown,
            "status": status,
            "change_id": current.id,
            "gate": gate(conn, catalog, current, now),
        },
    )
