"""Who is calling, and may they: the acting person and each route's declared permission.

Development mode: until real authentication arrives, the acting person is named by the
`X-Changegate-User` header and looked up among the catalog's people. That is why the server
refuses to bind beyond loopback unless explicitly allowed (see `server.py`).

Every /api/v1 route takes its context from `requires(permission)`; the permission is both
checked here and by the service the route calls (defence in depth), and it is published in
the OpenAPI operation as `x-permission`.

Webhooks are the one exception: GitHub and GitLab authenticate by a signature over the body,
not as a person. Such a route declares `signed_webhook(provider)` instead (published as
`x-authentication: webhook-signature:<provider>`); the route checker accepts that marker only
under /api/v1/webhooks/, the route verifies the signature before anything else, and the
services it calls act as the configured webhook person, whose permissions they check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from starlette.routing import BaseRoute

from changegate import bootstrap
from changegate.api import jsonbody, middleware, problems
from changegate.domain.permissions import Permission
from changegate.errors import Refused
from changegate.services import context as context_service
from changegate.services.context import Context

USER_HEADER = "X-Changegate-User"
API_PREFIX = "/api/v1"
PERMISSION_ATTRIBUTE = "__changegate_permission__"
WEBHOOK_ATTRIBUTE = "__changegate_webhook__"
WEBHOOK_PREFIX = "/api/v1/webhooks/"

_user_header = APIKeyHeader(
    name=USER_HEADER,
    scheme_name="DevelopmentUser",
    description=(
        "Development mode: the catalog person acting (e.g. `alice`). Only served on loopback "
        "unless CHANGEGATE_ALLOW_DEV_AUTH_ON_PUBLIC_BIND=true."
    ),
    auto_error=False,
)


def application(request: Request) -> bootstrap.App:
    """The wired App serving this request."""
    app = request.app.state.changegate
    assert isinstance(app, bootstrap.App)
    return app


def request_id(request: Request) -> str:
    """The request id the RequestId middleware attached (or a fresh one outside it)."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else middleware.request_id_from(None)


def acting_context(app: bootstrap.App, person: str | None, request_id: str) -> Context:
    """The service context for the named person; 401 when none is named, 403 when unknown."""
    try:
        return context_service.context_for(app.catalog(), person, request_id, clock=app.clock)
    except Refused as exc:
        if not person:
            raise problems.Unauthenticated(str(exc)) from exc
        raise


def requires(permission: Permission) -> Callable[..., Context]:
    """A dependency resolving the acting person and refusing unless they hold `permission`."""

    def dependency(
        request: Request,
        person: Annotated[str | None, Security(_user_header)] = None,
    ) -> Context:
        ctx = acting_context(application(request), person, request_id(request))
        ctx.actor.require(permission)
        return ctx

    dependency.__name__ = f"requires_{permission.value.replace(':', '_')}"
    dependency.__doc__ = f"The acting person, who must hold {permission.value}."
    setattr(dependency, PERMISSION_ATTRIBUTE, permission)
    return dependency


def signed_webhook(provider: str) -> Callable[[], str]:
    """A dependency declaring that a route is authenticated by `provider`'s webhook signature
    (verified by the route itself, before it acts) rather than by a person's permission."""

    def dependency() -> str:
        return provider

    dependency.__name__ = f"signed_webhook_{provider}"
    dependency.__doc__ = f"Authenticated by the {provider} webhook signature."
    setattr(dependency, WEBHOOK_ATTRIBUTE, provider)
    return dependency


def _webhooks_in(dependant: Dependant) -> Iterable[str]:
    found = getattr(dependant.call, WEBHOOK_ATTRIBUTE, None)
    if isinstance(found, str):
        yield found
    for sub in dependant.dependencies:
        yield from _webhooks_in(sub)


def route_webhook(route: APIRoute) -> str | None:
    """The webhook provider whose signature authenticates the route, or None."""
    return next(iter(_webhooks_in(route.dependant)), None)


def _permissions_in(dependant: Dependant) -> Iterable[Permission]:
    found = getattr(dependant.call, PERMISSION_ATTRIBUTE, None)
    if isinstance(found, Permission):
        yield found
    for sub in dependant.dependencies:
        yield from _permissions_in(sub)


def route_permissions(route: APIRoute) -> list[Permission]:
    """The permissions a route requires through its dependencies."""
    return list(dict.fromkeys(_permissions_in(route.dependant)))


class PermissionRoute(jsonbody.StrictJSONRoute):
    """An APIRoute that publishes the permission its dependencies require as `x-permission`.

    Set when the route is made, so the OpenAPI document says it however routers are included.
    Its JSON body, if it takes one, is parsed strictly (`jsonbody`: no repeated keys).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        found = route_permissions(self)
        if found:
            self.openapi_extra = {
                **(self.openapi_extra or {}),
                "x-permission": found[0].value if len(found) == 1 else [p.value for p in found],
            }
        provider = route_webhook(self)
        if provider is not None:
            self.openapi_extra = {
                **(self.openapi_extra or {}),
                "x-authentication": f"webhook-signature:{provider}",
            }


def api_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute under `routes` with its full path, looking inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
            continue
        # Newer FastAPI keeps an included router whole (and resolves it lazily) instead of
        # copying its routes into the app.
        router = getattr(route, "original_router", None)
        if router is not None:
            context = getattr(route, "include_context", None)
            yield from api_routes(router.routes, prefix + str(getattr(context, "prefix", "")))


def loose_body_routes(app: FastAPI) -> list[str]:
    """The routes that take a body without parsing it strictly: each one is a bug."""
    return [
        f"{','.join(sorted(route.methods or ()))} {path}"
        for path, route in api_routes(app.routes)
        if route.body_field is not None and not isinstance(route, jsonbody.StrictJSONRoute)
    ]


def undeclared_routes(app: FastAPI) -> list[str]:
    """The /api/v1 routes that require no permission: each one is a bug. A route under
    /api/v1/webhooks/ may declare `signed_webhook` instead (only there)."""
    return [
        f"{','.join(sorted(route.methods or ()))} {path}"
        for path, route in api_routes(app.routes)
        if path.startswith(API_PREFIX)
        and not route_permissions(route)
        and not (path.startswith(WEBHOOK_PREFIX) and route_webhook(route) is not None)
    ]
