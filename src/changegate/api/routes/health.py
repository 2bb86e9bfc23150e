"""/healthz and /readyz: public probes for process managers and load balancers."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from changegate import __version__, bootstrap
from changegate.api import problems, schemas
from changegate.api.auth import application
from changegate.store import db

router = APIRouter(tags=["health"])
log = logging.getLogger("changegate.api")

AppDep = Annotated[bootstrap.App, Depends(application)]


@router.get(
    "/healthz", summary="Liveness", response_model=None, responses={200: {"model": schemas.Health}}
)
def healthz() -> JSONResponse:
    """The process answers; touches neither the database nor the catalog."""
    return JSONResponse({"status": "ok", "version": __version__})


def readiness_checks(app: bootstrap.App) -> dict[str, str]:
    """Each readiness check and its outcome; `ok` when it passed."""
    checks: dict[str, str] = {}
    try:
        current = db.is_current(app.engine)
    except Exception:  # any failure to reach the database means not ready
        log.warning("readiness: the database is unreachable", exc_info=True)
        checks["database"] = "unreachable"
        checks["schema"] = "unknown"
    else:
        checks["database"] = "ok"
        checks["schema"] = (
            "ok" if current else (f"not at {db.head_revision()}: run `changegate db upgrade`")
        )
    try:
        checks["catalog"] = "ok" if app.catalog().digest else "not loaded"
    except Exception:  # a catalog that cannot be loaded means not ready
        log.warning("readiness: the catalog is not loaded", exc_info=True)
        checks["catalog"] = "not loaded"
    return checks


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=None,
    responses={200: {"model": schemas.Readiness}, **schemas.problem_responses(503)},
)
def readyz(request: Request, app: AppDep) -> JSONResponse:
    """Ready when the database answers, its schema is current and the catalog is loaded."""
    checks = readiness_checks(app)
    if all(outcome == "ok" for outcome in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(f"{name}: {outcome}" for name, outcome in checks.items() if outcome != "ok")
    return problems.ProblemResponse(
        problems.document(
            status=503,
            slug="not-ready",
            title="Not ready",
            detail=f"not ready ({failing})",
            instance=request.url.path,
            extra={"checks": checks},
        ),
        status_code=503,
    )
