"""/api/v1 backups: pre-change PostgreSQL backups, restores and DR drills.

- `GET /backups` (`tenant`, `change_id`, `limit`) and `GET /backups/{id}`: `changes:read`,
- `POST /tenants/{tenant}/backups` `{change_id?}`: take one (201), `changes:transition`,
- `POST /backups/{id}/copies` `{into}`: restore into a new database (201), `changes:transition`,
- `POST /backups/{id}/restore`: restore over the tenant's own database, `backups:restore`,
- `POST /tenants/{tenant}/drills` `{backup_id?}`: a DR drill (201), `changes:transition`,
- `GET /drills` (`tenant`, `limit`): the drills recorded, `changes:read`.

The work runs within the request (a dump or restore of a large database takes long: put the
timeout of any proxy in front accordingly). Bodies are what the CLI's `--json` prints
(docs/backups.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from changegate.api import auth, schemas
from changegate.api.auth import requires
from changegate.api.problems import fields_under
from changegate.api.routes.changes import AppDep, Moving, Reading
from changegate.domain.permissions import Permission
from changegate.services import backups as backup_service
from changegate.services.context import Context

router = APIRouter(prefix="/api/v1", tags=["backups"], route_class=auth.PermissionRoute)

Restoring = Annotated[Context, Depends(requires(Permission.BACKUPS_RESTORE))]
BackupId = Annotated[int, Path(ge=1, description="the backup's id")]
TenantId = Annotated[str, Path(max_length=63, description="the tenant (catalog id)")]
Limit = Annotated[int, Query(ge=1, le=1000)]


class TakeIn(BaseModel):
    """The body of POST /tenants/{tenant}/backups."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    change_id: StrictStr | None = Field(
        default=None, max_length=32, description="attach the backup to this change"
    )


class CopyIn(BaseModel):
    """The body of POST /backups/{id}/copies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    into: StrictStr = Field(max_length=63, description="the new database; must not exist")


class DrillIn(BaseModel):
    """The body of POST /tenants/{tenant}/drills (optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backup_id: StrictInt | None = Field(default=None, ge=1, description="default: the latest")


class BackupOut(BaseModel):
    """One backup taken by changegate."""

    id: int
    tenant: str
    service: str = Field(description="the catalog PostgreSQL service (libpq service name)")
    database: str
    change_id: str | None
    path: str
    sha256: str
    size_bytes: int
    created_at: str
    duration_ms: int
    toc_entries: int = Field(description="entries `pg_restore --list` read")
    toc_tables: int
    filestore_ref: str | None = Field(
        description="the filestore's object-storage location and instant (a reference)"
    )
    taken_by: str


class DrillOut(BaseModel):
    """One DR drill's evidence."""

    id: int
    backup_id: int
    tenant: str
    started_at: str
    scratch_database: str
    restore_ms: int | None
    tables: int | None
    rows: int | None
    backup_age_minutes: float
    rpo_minutes: int
    rto_minutes: int
    rpo_met: bool
    rto_met: bool
    passed: bool
    reasons: list[str]
    run_by: str


@router.get(
    "/backups",
    summary="Backups, newest first",
    response_model=None,
    responses={200: {"model": list[BackupOut]}, **schemas.problem_responses(401, 403, 422)},
)
def list_backups(
    ctx: Reading,
    app: AppDep,
    tenant: Annotated[str | None, Query(max_length=63)] = None,
    change_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> JSONResponse:
    """Backups, newest first; of one tenant or one change when asked."""
    found = backup_service.list_backups(
        app.engine, ctx, tenant=tenant, change_id=change_id, limit=limit
    )
    return JSONResponse({"items": [record.as_dict() for record in found]})


@router.get(
    "/backups/{backup_id}",
    summary="One backup",
    response_model=None,
    responses={200: {"model": BackupOut}, **schemas.problem_responses(401, 403, 404, 422)},
)
def get_backup(backup_id: BackupId, ctx: Reading, app: AppDep) -> JSONResponse:
    """One backup: file, checksum, size, what it belongs to."""
    return JSONResponse(backup_service.get(app.engine, ctx, backup_id).as_dict())


@router.post(
    "/tenants/{tenant}/backups",
    summary="Take a backup of a tenant's database",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": BackupOut},
        **schemas.problem_responses(401, 403, 404, 413, 422, 500, 503),
    },
)
def post_backup(
    tenant: TenantId, ctx: Moving, app: AppDep, body: TakeIn | None = None
) -> JSONResponse:
    """pg_dump -Fc of the tenant's database, checked with pg_restore --list, recorded."""
    with fields_under("body"):
        record = backup_service.take(
            app.engine,
            app.catalog(),
            ctx,
            tenant,
            tool=app.backup_tool(),
            backup_dir=app.backup_dir,
            change_id=body.change_id if body else None,
        )
    return JSONResponse(record.as_dict(), status_code=201)


@router.post(
    "/backups/{backup_id}/copies",
    summary="Restore a backup into a new database",
    status_code=201,
    response_model=None,
    responses={**schemas.problem_responses(401, 403, 404, 409, 413, 422, 500, 503)},
)
def post_copy(backup_id: BackupId, ctx: Moving, app: AppDep, body: CopyIn) -> JSONResponse:
    """Create `into` and restore the backup there; 409 when `into` exists."""
    with fields_under("body"):
        result = backup_service.restore(
            app.engine, app.catalog(), ctx, backup_id, tool=app.backup_tool(), into=body.into
        )
    return JSONResponse(result, status_code=201)


@router.post(
    "/backups/{backup_id}/restore",
    summary="Restore a backup over the tenant's own database",
    response_model=None,
    responses={**schemas.problem_responses(401, 403, 404, 422, 500, 503)},
)
def post_restore(backup_id: BackupId, ctx: Restoring, app: AppDep) -> JSONResponse:
    """Destructive: ends the database's sessions, then pg_restore --clean in one transaction."""
    result = backup_service.restore(
        app.engine, app.catalog(), ctx, backup_id, tool=app.backup_tool()
    )
    return JSONResponse(result)


@router.post(
    "/tenants/{tenant}/drills",
    summary="Run a DR drill for a tenant",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": DrillOut},
        **schemas.problem_responses(401, 403, 404, 413, 422, 500, 503),
    },
)
def post_drill(
    tenant: TenantId, ctx: Moving, app: AppDep, body: DrillIn | None = None
) -> JSONResponse:
    """Restore the latest backup into a scratch database, check, time, drop; the evidence
    (201 whether it passed or not: `passed` says)."""
    with fields_under("body"):
        record = backup_service.drill(
            app.engine,
            app.catalog(),
            ctx,
            tenant,
            tool=app.backup_tool(),
            backup_id=body.backup_id if body else None,
        )
    return JSONResponse(record.as_dict(), status_code=201)


@router.get(
    "/drills",
    summary="DR drills, newest first",
    response_model=None,
    responses={200: {"model": list[DrillOut]}, **schemas.problem_responses(401, 403, 422)},
)
def list_drills(
    ctx: Reading,
    app: AppDep,
    tenant: Annotated[str | None, Query(max_length=63)] = None,
    limit: Limit = 100,
) -> JSONResponse:
    """The drills recorded; of one tenant when asked."""
    found = backup_service.list_drills(app.engine, ctx, tenant=tenant, limit=limit)
    return JSONResponse({"items": [record.as_dict() for record in found]})
