"""/api/v1/catalog: the platform catalog as loaded, and reloading it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from changegate import bootstrap
from changegate.api import auth, schemas
from changegate.api.auth import application, requires
from changegate.domain import catalog as catalog_model
from changegate.domain.permissions import Permission
from changegate.errors import InvalidInput, NotFound
from changegate.services.context import Context

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"], route_class=auth.PermissionRoute)

AppDep = Annotated[bootstrap.App, Depends(application)]
Reading = Annotated[Context, Depends(requires(Permission.CATALOG_READ))]
Reloading = Annotated[Context, Depends(requires(Permission.CATALOG_RELOAD))]
Kind = Annotated[str, Path(description="a kind, e.g. `tenants` or `tenant`", max_length=64)]
EntityId = Annotated[str, Path(description="the entity's id", max_length=128)]

_ERRORS = schemas.problem_responses(401, 403, 404, 422)


def kind_name(text: str) -> str:
    """The catalog kind a path segment names; an unknown one is 404 (no such collection)."""
    try:
        return catalog_model.normalize_kind(text)
    except InvalidInput as exc:
        raise NotFound(exc.problems[0].message if exc.problems else str(exc)) from exc


@router.get(
    "",
    summary="The loaded catalog",
    response_model=None,
    responses={200: {"model": schemas.CatalogSummary}, **_ERRORS},
)
def summary(ctx: Reading, app: AppDep) -> JSONResponse:
    """Digest, Git commit and the number of entities of each kind."""
    return JSONResponse(app.catalog().as_dict())


@router.post(
    "/reload",
    summary="Reload the catalog",
    response_model=None,
    responses={200: {"model": schemas.CatalogSummary}, **schemas.problem_responses(401, 403, 422)},
)
def reload(ctx: Reloading, app: AppDep) -> JSONResponse:
    """Load the catalog folder again (audited); a broken catalog is refused, the old one kept."""
    return JSONResponse(app.reload_catalog(ctx).as_dict())


@router.get(
    "/{kind}",
    summary="Catalog entities of one kind",
    response_model=None,
    responses={200: {"model": schemas.EntityList}, **_ERRORS},
)
def list_kind(kind: Kind, ctx: Reading, app: AppDep) -> JSONResponse:
    """Every entity of the kind, in file order."""
    name = kind_name(kind)
    entities = app.catalog().list(name)
    return JSONResponse({"kind": name, "items": [entity.as_dict() for entity in entities]})


@router.get(
    "/{kind}/{entity_id}",
    summary="One catalog entity",
    response_model=None,
    responses={200: {"model": schemas.Entity}, **_ERRORS},
)
def get_entity(kind: Kind, entity_id: EntityId, ctx: Reading, app: AppDep) -> JSONResponse:
    """The entity with its spec and the file and line that define it."""
    return JSONResponse(app.catalog().get(kind_name(kind), entity_id).as_dict())
