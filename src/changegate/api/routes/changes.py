"""/api/v1/changes: file, list, read, edit and move change requests; comments and history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from changegate import bootstrap
from changegate.api import auth, pages, schemas
from changegate.api.auth import application, requires
from changegate.api.problems import PreconditionFailed, fields_under
from changegate.domain import canonical, changes
from changegate.domain.changes import Category, ChangeFilter, ChangeRequest, ChangeState, ChangeType
from changegate.domain.permissions import Permission
from changegate.errors import InvalidInput, Problem, StaleWrite
from changegate.services import audit as audit_service
from changegate.services import changes as changes_service
from changegate.services.context import Context

router = APIRouter(prefix="/api/v1/changes", tags=["changes"], route_class=auth.PermissionRoute)

AppDep = Annotated[bootstrap.App, Depends(application)]
ChangeId = Annotated[
    str,
    Path(description="the change id, `CHG-12` (or just `12`)", max_length=32, examples=["CHG-12"]),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='the ETag you read, e.g. `"3"`; a stale one gets 412'),
]
Reading = Annotated[Context, Depends(requires(Permission.CHANGES_READ))]
Creating = Annotated[Context, Depends(requires(Permission.CHANGES_CREATE))]
Editing = Annotated[Context, Depends(requires(Permission.CHANGES_EDIT))]
Moving = Annotated[Context, Depends(requires(Permission.CHANGES_TRANSITION))]
Commenting = Annotated[Context, Depends(requires(Permission.CHANGES_COMMENT))]

_READ_ERRORS = schemas.problem_responses(401, 403, 404, 422)
_WRITE_ERRORS = schemas.problem_responses(401, 403, 404, 409, 412, 413, 422)


def canonical_id(text: str) -> str:
    """The canonical id (`CHG-12`) for a path parameter; a malformed one names the parameter."""
    try:
        return changes.format_id(changes.parse_id(text))
    except InvalidInput as exc:
        raise InvalidInput(
            [Problem(p.message, field="path.change_id") for p in exc.problems]
        ) from exc


def change_body(change: ChangeRequest) -> dict[str, Any]:
    """`ChangeRequest.as_dict()` plus the states the change may move to now."""
    data = change.as_dict()
    data["allowed_next"] = [state.value for state in changes.allowed_next(change)]
    return data


def etag(change: ChangeRequest) -> str:
    """The change's strong entity tag: its version, quoted."""
    return f'"{change.version}"'


def change_response(
    change: ChangeRequest, status_code: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The change as JSON with its ETag."""
    return JSONResponse(
        change_body(change),
        status_code=status_code,
        headers={"ETag": etag(change), **(headers or {})},
    )


def parse_if_match(value: str | None) -> int | None:
    """`"3"` (or `3`) to 3; absent or `*` to None; anything else is invalid input."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if text.isdigit() and text.isascii() and len(text) <= 18:
        return int(text)
    raise InvalidInput(
        [
            Problem(
                f'If-Match must be one strong ETag of the change, e.g. "3" (got {value[:80]!r})',
                field="header.If-Match",
            )
        ]
    )


def expected_version(if_match: str | None, body_version: int | None) -> tuple[int | None, bool]:
    """The version the write must find, and whether it came from If-Match (412) or not (409)."""
    header = parse_if_match(if_match)
    if header is not None and body_version is not None and header != body_version:
        raise InvalidInput(
            [
                Problem(
                    f"If-Match names version {header} but the body names version {body_version}",
                    field="body.version",
                )
            ]
        )
    if header is not None:
        return header, True
    return body_version, False


@contextmanager
def precondition(from_header: bool) -> Iterator[None]:
    """A stale write is 412 when its version came from If-Match, 409 otherwise."""
    try:
        yield
    except StaleWrite as exc:
        if from_header and not isinstance(exc, PreconditionFailed):
            raise PreconditionFailed.from_stale(exc) from exc
        raise


@router.get(
    "",
    summary="List changes",
    response_model=None,
    responses={200: {"model": schemas.ChangePage}, **_READ_ERRORS},
)
def list_changes(
    *,
    request: Request,
    ctx: Reading,
    app: AppDep,
    state: Annotated[list[ChangeState] | None, Query(description="repeatable")] = None,
    change_type: Annotated[ChangeType | None, Query(alias="type")] = None,
    category: Category | None = None,
    environment: Annotated[str | None, Query(max_length=128)] = None,
    requester: Annotated[str | None, Query(max_length=128)] = None,
    tenant: Annotated[str | None, Query(max_length=128)] = None,
    service: Annotated[str | None, Query(max_length=128)] = None,
    cluster: Annotated[str | None, Query(max_length=128)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the title")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> JSONResponse:
    """Changes matching every given filter, newest first, one page at a time."""
    flt = ChangeFilter(
        states=tuple(dict.fromkeys(s.value for s in state or ())),
        type=change_type.value if change_type else None,
        category=category.value if category else None,
        environment=environment,
        requester=requester,
        tenant=tenant,
        service=service,
        cluster=cluster,
        text=q or None,
        limit=limit,
        offset=offset,
    )
    items, total = changes_service.list_changes(app.engine, ctx, flt)
    following = offset + len(items)
    return JSONResponse(
        {
            "items": [change_body(change) for change in items],
            "total": total,
            "limit": limit,
            "offset": offset,
            "next": (
                pages.url_with(request, offset=following, limit=limit)
                if following < total and items
                else None
            ),
        }
    )


@router.post(
    "",
    summary="File a change (as a draft)",
    status_code=201,
    response_model=None,
    responses={201: {"model": schemas.ChangeOut}, **_WRITE_ERRORS},
    openapi_extra={"x-changegate-body": "ChangeIn"},
)
def create_change(
    ctx: Creating,
    app: AppDep,
    body: Annotated[dict[str, Any], Body(description="the spec of a change file")],
) -> JSONResponse:
    """File a new draft change requested by the acting person; returns it with its Location."""
    with fields_under("body"):
        spec = changes.validate_spec(body, source=None)
        created = changes_service.create(app.engine, app.catalog(), ctx, spec)
    return change_response(created, 201, {"Location": f"{router.prefix}/{created.id}"})


@router.get(
    "/{change_id}",
    summary="Show a change",
    response_model=None,
    responses={200: {"model": schemas.ChangeOut}, **_READ_ERRORS},
)
def get_change(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """One change, with the states it may move to and its version as ETag."""
    return change_response(changes_service.get(app.engine, ctx, canonical_id(change_id)))


@router.patch(
    "/{change_id}",
    summary="Edit a change",
    response_model=None,
    responses={200: {"model": schemas.ChangeOut}, **_WRITE_ERRORS},
    openapi_extra={"x-changegate-body": "ChangePatch"},
)
def edit_change(
    change_id: ChangeId,
    ctx: Editing,
    app: AppDep,
    body: Annotated[dict[str, Any], Body(description="spec fields to change, and `version`")],
    if_match: IfMatch = None,
) -> JSONResponse:
    """Change some spec fields; material ones only in draft. Guarded by If-Match or version."""
    number = canonical_id(change_id)
    patch = dict(body)
    body_version = patch.pop("version", None)
    if body_version is not None and (type(body_version) is not int or body_version < 1):
        raise InvalidInput([Problem("version must be a positive integer", field="body.version")])
    if not patch:
        raise InvalidInput(
            [Problem("nothing to change: name at least one spec field", field="body")]
        )
    expected, from_header = expected_version(if_match, body_version)
    with precondition(from_header), fields_under("body"):
        edited = changes_service.edit(
            app.engine, app.catalog(), ctx, number, patch, expected_version=expected
        )
    return change_response(edited)


@router.get(
    "/{change_id}/transitions",
    summary="Where a change may go next",
    response_model=None,
    responses={200: {"model": schemas.TransitionsOut}, **_READ_ERRORS},
)
def get_transitions(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """The change's state, version and allowed next states."""
    change = changes_service.get(app.engine, ctx, canonical_id(change_id))
    return JSONResponse(
        {
            "id": change.id,
            "state": change.state.value,
            "held_from": change.held_from.value if change.held_from else None,
            "version": change.version,
            "allowed_next": [state.value for state in changes.allowed_next(change)],
        },
        headers={"ETag": etag(change)},
    )


@router.post(
    "/{change_id}/transitions",
    summary="Move a change to another state",
    response_model=None,
    responses={200: {"model": schemas.ChangeOut}, **_WRITE_ERRORS},
)
def post_transition(
    change_id: ChangeId,
    ctx: Moving,
    app: AppDep,
    body: schemas.TransitionIn,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Move the change to `to`; an illegal move is 409 naming the allowed next states."""
    number = canonical_id(change_id)
    expected, from_header = expected_version(if_match, body.version)
    with precondition(from_header), fields_under("body"):
        moved = changes_service.transition(
            app.engine,
            app.catalog(),
            ctx,
            number,
            body.to,
            expected_version=expected,
            close_code=body.close_code,
            close_notes=body.close_notes,
            reason=body.reason,
            override_calendar=body.override_calendar,
        )
    return change_response(moved)


ActionBody = Annotated[schemas.ActionIn | None, Body()]


def _action(
    *,
    app: bootstrap.App,
    ctx: Context,
    text: str,
    body: schemas.ActionIn | None,
    if_match: str | None,
    action: str,
) -> JSONResponse:
    number = canonical_id(text)
    expected, from_header = expected_version(if_match, body.version if body else None)
    kwargs: dict[str, Any] = {"reason": body.reason if body else None}
    if expected is not None:
        kwargs["expected_version"] = expected
    with precondition(from_header), fields_under("body"):
        if action == "submit":
            moved = changes_service.submit(
                app.engine,
                app.catalog(),
                ctx,
                number,
                gitops_workdir=app.gitops_workdir,
                **kwargs,
            )
        elif action == "resume":
            moved = changes_service.resume(app.engine, app.catalog(), ctx, number, **kwargs)
        else:
            target = ChangeState.CANCELED if action == "cancel" else ChangeState.ON_HOLD
            moved = changes_service.transition(
                app.engine, app.catalog(), ctx, number, target, **kwargs
            )
    return change_response(moved)


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": schemas.ChangeOut},
    **_WRITE_ERRORS,
}


# The four lifecycle shortcuts share one endpoint shape; each is registered under its own path,
# summary and docstring so the OpenAPI document and the permission walk see four operations.
_ACTIONS = (
    (
        "submit",
        "Submit a draft",
        "Send a draft on: normal and standard to assess, emergency to authorize.",
    ),
    ("cancel", "Cancel a change", "Cancel a change that is not final yet."),
    (
        "hold",
        "Put a change on hold",
        "Put a change on hold; resume brings it back to the state it was held from.",
    ),
    (
        "resume",
        "Take a change off hold",
        "Take a change off hold, back to the state it was held from.",
    ),
)


def _register_action(action: str, summary: str, doc: str) -> None:
    def endpoint(
        change_id: ChangeId,
        ctx: Moving,
        app: AppDep,
        body: ActionBody = None,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        return _action(
            app=app, ctx=ctx, text=change_id, body=body, if_match=if_match, action=action
        )

    endpoint.__name__ = endpoint.__qualname__ = action
    endpoint.__doc__ = doc
    router.post(
        f"/{{change_id}}/{action}",
        summary=summary,
        response_model=None,
        responses=_ACTION_RESPONSES,
    )(endpoint)


for _name, _summary, _doc in _ACTIONS:
    _register_action(_name, _summary, _doc)


def comment_body(comment: dict[str, Any]) -> dict[str, Any]:
    """A stored comment as JSON, its instant in the one UTC text form."""
    return {**comment, "created_at": canonical.to_utc_text(comment["created_at"])}


@router.get(
    "/{change_id}/comments",
    summary="A change's discussion",
    response_model=None,
    responses={200: {"model": schemas.CommentList}, **_READ_ERRORS},
)
def list_comments(change_id: ChangeId, ctx: Reading, app: AppDep) -> JSONResponse:
    """The change's comments, oldest first."""
    found = changes_service.comments(app.engine, ctx, canonical_id(change_id))
    return JSONResponse({"items": [comment_body(c) for c in found]})


@router.post(
    "/{change_id}/comments",
    summary="Comment on a change",
    status_code=201,
    response_model=None,
    responses={201: {"model": schemas.CommentOut}, **_WRITE_ERRORS},
)
def add_comment(
    change_id: ChangeId, ctx: Commenting, app: AppDep, body: schemas.CommentIn
) -> JSONResponse:
    """Add a comment; it is recorded in the audit trail too."""
    number = canonical_id(change_id)
    with fields_under("body"):
        stored = changes_service.comment(app.engine, ctx, number, body.body)
    return JSONResponse(comment_body(stored), status_code=201)


@router.get(
    "/{change_id}/history",
    summary="A change's audit events",
    response_model=None,
    responses={200: {"model": schemas.AuditPage}, **_READ_ERRORS},
)
def history(
    *,
    request: Request,
    change_id: ChangeId,
    ctx: Reading,
    app: AppDep,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """The audit events of this change, in sequence order."""
    change = changes_service.get(app.engine, ctx, canonical_id(change_id))
    events = audit_service.events(
        app.engine, ctx, object_id=change.id, after_seq=after_seq, limit=limit
    )
    return JSONResponse(pages.audit_page(request, [e.as_dict() for e in events], limit))
