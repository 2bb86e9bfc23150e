"""The FastAPI application: routes, problem+json errors, request ids and body limits.

Another door to the same services as the CLI: every route resolves the acting person, checks
its declared permission and calls one service function, which checks it again.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from changegate import __version__, bootstrap
from changegate.api import auth, middleware, problems, schemas
from changegate.api.routes import (
    approvals,
    assessments,
    audit,
    backups,
    calendar,
    catalog,
    changes,
    health,
    impact,
    policy,
    reports,
    retrospectives,
    rollouts,
    schedules,
    webhooks,
)

DESCRIPTION = """\
The change control plane's HTTP API. Errors are RFC 9457 `application/problem+json` carrying
the message the CLI prints. Development mode: the acting person is named by the
`X-Changegate-User` header (served on loopback only unless explicitly allowed).
Each operation's `x-permission` names the permission it requires.
"""

_BODY_MARKER = "x-changegate-body"


class ChangegateAPI(FastAPI):
    """FastAPI with an OpenAPI document that also describes the change bodies and problems."""

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document, built once."""
        if self.openapi_schema is None:
            self.openapi_schema = document(self)
        return self.openapi_schema


def _add_model(components: dict[str, Any], model: type[BaseModel], name: str) -> None:
    schema = model.model_json_schema(ref_template=schemas.REF + "{model}")
    for def_name, definition in schema.pop("$defs", {}).items():
        components.setdefault(def_name, definition)
    schema["title"] = name
    components[name] = schema


def document(app: FastAPI) -> dict[str, Any]:
    """Generate the OpenAPI document, then add the schemas FastAPI cannot infer.

    Change bodies are validated by the domain (strict JSON rules), so their schemas are added
    here from the domain model, and each operation marked with `x-changegate-body` gets its
    request body from them.
    """
    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    _add_model(components, schemas.ChangeIn, "ChangeIn")
    _add_model(components, schemas.Problem, "Problem")
    patch = copy.deepcopy(components["ChangeIn"])
    patch.pop("required", None)
    patch["title"] = "ChangePatch"
    patch["description"] = "Some fields of a change spec, and optionally the version read."
    patch["properties"]["version"] = {
        "type": "integer",
        "minimum": 1,
        "description": "the version you read; a stale one is refused (409)",
    }
    components["ChangePatch"] = patch
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            name = operation.pop(_BODY_MARKER, None) if isinstance(operation, dict) else None
            if name:
                operation["requestBody"] = schemas.body_schema(name)["requestBody"]
    return spec


def create_app(app: bootstrap.App) -> FastAPI:
    """The ASGI application serving `app`; the catalog is loaded now, so a broken one fails fast.

    Raises whatever loading the catalog raises (InvalidInput naming file, line and field), and
    RuntimeError if a /api/v1 route was added without a permission, or a route taking a body
    without the strict JSON parsing of `jsonbody.StrictJSONRoute`.
    """
    app.catalog()
    api = ChangegateAPI(
        title="changegate",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.changegate = app
    problems.install(api)
    for module in (
        changes,
        impact,
        assessments,
        approvals,
        retrospectives,
        reports,
        catalog,
        calendar,
        schedules,
        policy,
        backups,
        rollouts,
        audit,
        health,
        webhooks,
    ):
        api.include_router(module.router)
    undeclared = auth.undeclared_routes(api)
    if undeclared:
        raise RuntimeError(f"routes without a declared permission: {', '.join(undeclared)}")
    loose = auth.loose_body_routes(api)
    if loose:
        raise RuntimeError(f"routes parsing their JSON body loosely: {', '.join(loose)}")
    # add_middleware puts each new one outside the previous: the request id wraps everything.
    api.add_middleware(problems.CrashGuard)
    api.add_middleware(middleware.BodyLimit, max_bytes=app.settings.max_body_bytes)
    api.add_middleware(middleware.RequestId)
    return api
