"""/api/v1/webhooks: GitHub and GitLab push and pull/merge-request deliveries.

- `POST /webhooks/github` verifies `X-Hub-Signature-256` (CHANGEGATE_WEBHOOK_GITHUB_SECRET),
- `POST /webhooks/gitlab` verifies `X-Gitlab-Token` (CHANGEGATE_WEBHOOK_GITLAB_TOKEN) and, when
  CHANGEGATE_WEBHOOK_GITLAB_SIGNING_TOKEN is set, the `webhook-signature` header too.

These routes authenticate by the sender's signature, not as a person: they declare
`auth.signed_webhook` (published as `x-authentication`) instead of a permission, and act as
CHANGEGATE_WEBHOOK_PERSON, whose permissions the services check. A provider without a
configured secret answers 404 (the endpoint does not exist on this server); a bad or missing
signature 401; a malformed delivery id 422. Otherwise the answer is the JSON of
`services.webhooks.receive`: 201 a change filed, 200 a change found or updated (or refused,
with the reason in the gate), 202 an event ignored or recorded without a change; a repeated
delivery gets its first answer again with `replayed: true` (docs/webhooks.md).
Secrets are never logged nor echoed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from changegate import bootstrap
from changegate.api import auth, problems, schemas
from changegate.domain import webhooks as webhook_model
from changegate.errors import NotFound
from changegate.services import webhooks as webhook_service

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=auth.PermissionRoute)

AppDep = Annotated[bootstrap.App, Depends(auth.application)]
NAMES = {"github": "GitHub", "gitlab": "GitLab"}

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "a change found, updated or refused, with its gate"},
    201: {"description": "a change filed, with its gate"},
    202: {"description": "an event ignored, or recorded without a change, with the reason"},
    409: {"description": "the same delivery is being processed right now"},
    **schemas.problem_responses(401, 404, 413, 422),
}


async def _deliver(
    provider: webhook_model.Provider, request: Request, app: bootstrap.App
) -> JSONResponse:
    config = app.webhook_config()
    if not config.configured(provider):
        raise NotFound(f"no {NAMES[provider]} webhook is configured on this server")
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        answer = await run_in_threadpool(
            webhook_service.receive,
            app.engine,
            app.catalog(),
            config,
            provider,
            headers,
            body,
            request_id=auth.request_id(request),
            clock=app.clock,
        )
    except webhook_model.Unverified as exc:
        message = f"the {NAMES[provider]} delivery is not authentic: {exc}"
        raise problems.Unauthenticated(message) from None
    return JSONResponse(answer.body, status_code=answer.status_code)


@router.post(
    "/github",
    summary="A GitHub push or pull_request delivery",
    response_model=None,
    responses=_ANSWERS,
)
async def github(
    request: Request,
    app: AppDep,
    _signed: Annotated[str, Depends(auth.signed_webhook("github"))],
) -> JSONResponse:
    """Verify, deduplicate and act on a GitHub delivery; answer the change's deployment gate
    (`gate.state` allowed or prevented, `gate.reason`)."""
    return await _deliver("github", request, app)


@router.post(
    "/gitlab",
    summary="A GitLab Push Hook or Merge Request Hook delivery",
    response_model=None,
    responses=_ANSWERS,
)
async def gitlab(
    request: Request,
    app: AppDep,
    _signed: Annotated[str, Depends(auth.signed_webhook("gitlab"))],
) -> JSONResponse:
    """Verify, deduplicate and act on a GitLab delivery; answer the change's deployment gate
    (`gate.state` allowed or prevented, `gate.reason`)."""
    return await _deliver("gitlab", request, app)
