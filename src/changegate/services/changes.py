"""Use cases on change requests. Each opens one transaction and writes its audit events in it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from changegate.domain import catalog as catalog_model
from changegate.domain import changes, validation
from changegate.domain.changes import (
    ChangeFilter,
    ChangeRequest,
    ChangeSpec,
    ChangeState,
    CloseCode,
)
from changegate.domain.permissions import Permission
from changegate.errors import InvalidInput, InvalidTransition, Problem, Refused, StaleWrite
from changegate.services import assessments, calendar, lifecycle
from changegate.services import audit as audit_service
from changegate.services.context import Context
from changegate.store import approvals as approval_store
from changegate.store import changes as change_store
from changegate.store import db

__all__ = ["ChangeFilter"]

E = TypeVar("E", ChangeState, CloseCode)


def spec_from_documents(documents: Sequence[catalog_model.DocumentLike], source: str) -> ChangeSpec:
    """The ChangeSpec in a change file: one `kind: ChangeRequest` document with a spec."""
    docs = [d for d in documents if d.data is not None]
    if len(docs) != 1:
        raise InvalidInput(
            [
                Problem(
                    f"expected exactly one ChangeRequest document, found {len(docs)}",
                    file=source,
                    line=1,
                )
            ]
        )
    doc = docs[0]
    if not isinstance(doc.data, dict):
        raise InvalidInput(
            [Problem("a change document must be a mapping", file=doc.file, line=doc.line)]
        )
    problems = []
    for key in sorted(set(doc.data) - {"apiVersion", "kind", "metadata", "spec"}):
        problems.append(
            Problem("unknown field", file=doc.file, line=doc.locate((key,)), field=str(key))
        )
    if doc.data.get("apiVersion") != changes.API_VERSION:
        problems.append(
            Problem(
                f"must be {changes.API_VERSION}",
                file=doc.file,
                line=doc.locate(("apiVersion",)),
                field="apiVersion",
            )
        )
    if doc.data.get("kind") != changes.KIND:
        problems.append(
            Problem(
                f"must be {changes.KIND}", file=doc.file, line=doc.locate(("kind",)), field="kind"
            )
        )
    metadata = doc.data.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"labels"}):
        problems.append(
            Problem(
                "only `labels` is allowed in metadata",
                file=doc.file,
                line=doc.locate(("metadata",)),
                field="metadata",
            )
        )
    if "spec" not in doc.data:
        problems.append(
            Problem("required field is missing", file=doc.file, line=doc.line, field="spec")
        )
    else:
        try:
            spec = validation.validate_plain(
                ChangeSpec,
                doc.data["spec"],
                source=doc.file,
                locate=doc.locate,
                prefix=("spec",),
            )
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)
    return spec


def check_references(catalog: catalog_model.Catalog, spec: ChangeSpec) -> list[Problem]:
    """Every id a change names must exist in the catalog it is filed against."""
    problems = []

    def missing(field: str, kind: str, ids: Sequence[str], known: Mapping[str, Any]) -> None:
        for index, value in enumerate(ids):
            if value not in known:
                problems.append(
                    Problem(f"no {kind} {value!r} in the catalog", field=f"{field}[{index}]")
                )

    if spec.environment not in catalog.environments:
        problems.append(
            Problem(
                f"no environment {spec.environment!r} in the catalog (known: "
                f"{', '.join(catalog.environments)})",
                field="environment",
            )
        )
    missing("targets.tenants", "tenant", spec.targets.tenants, catalog.tenants)
    missing("targets.services", "service", spec.targets.services, catalog.services)
    missing("targets.clusters", "cluster", spec.targets.clusters, catalog.clusters)
    for index, selector in enumerate(spec.targets.selectors):
        if selector.tier and selector.tier not in catalog.tiers:
            problems.append(
                Problem(
                    f"no tier {selector.tier!r} in the catalog",
                    field=f"targets.selectors[{index}].tier",
                )
            )
        if selector.cluster and selector.cluster not in catalog.clusters:
            problems.append(
                Problem(
                    f"no cluster {selector.cluster!r} in the catalog",
                    field=f"targets.selectors[{index}].cluster",
                )
            )
    if spec.targets.is_empty():
        problems.append(
            Problem(
                "a change needs at least one target (tenants, services, clusters or selectors)",
                field="targets",
            )
        )
    if spec.template is not None and spec.template not in catalog.standard_templates:
        known = ", ".join(catalog.standard_templates) or "none"
        problems.append(
            Problem(
                f"no standard template {spec.template!r} in the catalog (known: {known})",
                field="template",
            )
        )
    if spec.implementer is not None:
        person = catalog.person(spec.implementer)
        if person is None:
            problems.append(
                Problem(f"no person {spec.implementer!r} in the catalog", field="implementer")
            )
        elif "implementer" not in person.spec.roles:
            problems.append(
                Problem(
                    f"{spec.implementer} does not hold the implementer role", field="implementer"
                )
            )
    return problems


def _checked(catalog: catalog_model.Catalog, spec: ChangeSpec, source: str | None) -> None:
    problems = check_references(catalog, spec)
    if problems:
        raise InvalidInput([Problem(p.message, file=source, field=p.field) for p in problems])


def _audit(
    conn: sa.Connection, ctx: Context, action: str, change_id: str, before: Any, after: Any
) -> None:
    audit_service.record(conn, ctx, action, "change", change_id, before, after)


def create(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    spec: ChangeSpec,
    *,
    source: str | None = None,
    also: Callable[[sa.Connection, ChangeRequest], None] | None = None,
) -> ChangeRequest:
    """File a new change as a draft, requested by the acting person.

    `also` runs in the creating transaction after `change.created` is appended (so after
    the audit head's lock is taken): what it writes commits with the change, what it raises
    rolls the change back (`services.drift.open_change` records its findings so)."""
    ctx.actor.require(Permission.CHANGES_CREATE)
    _checked(catalog, spec, source)
    now = ctx.now()
    draft = changes.new_change(0, spec, ctx.actor.id, now).evolve(catalog_digest=catalog.digest)
    with db.transaction(engine) as conn:
        stored = change_store.insert(conn, draft)
        _audit(conn, ctx, "change.created", stored.id, None, stored.as_dict())
        if also is not None:
            also(conn, stored)
    return stored


def get(engine: sa.Engine, ctx: Context, change_id: str) -> ChangeRequest:
    ctx.actor.require(Permission.CHANGES_READ)
    with engine.connect() as conn:
        return change_store.get(conn, changes.parse_id(change_id))


def list_changes(
    engine: sa.Engine, ctx: Context, flt: ChangeFilter
) -> tuple[list[ChangeRequest], int]:
    ctx.actor.require(Permission.CHANGES_READ)
    with engine.connect() as conn:
        return change_store.list_changes(conn, flt)


def _check_version(change: ChangeRequest, expected_version: int | None) -> int:
    """The version the guarded UPDATE must find: the caller's, or the one just read."""
    if expected_version is not None and expected_version != change.version:
        raise StaleWrite(change.id, expected_version, change.version)
    return change.version


def edit(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    patch: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> ChangeRequest:
    """Change some fields of a change.

    A material edit in Assess, Authorize or Scheduled sends the change back
    (`domain.changes.edit`): the `change.edited` event names the fields, the state it left
    and the approvals of the old content that stood and no longer count."""
    ctx.actor.require(Permission.CHANGES_EDIT)
    number = changes.parse_id(change_id)
    with db.transaction(engine) as conn:
        current = change_store.get(conn, number)
        version = _check_version(current, expected_version)
        edited = changes.edit(current, patch, ctx.now())
        if edited is current:
            return current  # nothing differs: no write, no event
        _checked(catalog, edited.spec, None)
        change_store.update(conn, edited, version)
        old, new = current.as_dict(), edited.as_dict()
        fields = changes.changed_fields(current.spec, edited.spec)
        before = {k: old[k] for k in fields} | {
            "version": current.version,
            "content_hash": current.content_hash,
        }
        after = {k: new[k] for k in fields} | {
            "version": edited.version,
            "content_hash": edited.content_hash,
        }
        if edited.content_hash != current.content_hash:
            now = ctx.now()
            voided = [
                a.person
                for a in approval_store.of_change(conn, number)
                if a.content_hash == current.content_hash and not a.is_expired(now)
            ]
            if voided or edited.state is not current.state:
                after["approvals_invalidated"] = voided
        if edited.state is not current.state:
            before["state"] = current.state.value
            after["state"] = edited.state.value
            after["reason"] = (
                f"material edit of {', '.join(f for f in fields if f in changes.MATERIAL_FIELDS)}"
                f" in {current.state.value}: back to {edited.state.value}"
            )
        _audit(conn, ctx, "change.edited", edited.id, before, after)
    return edited


def transition(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    to: ChangeState | str,
    *,
    expected_version: int | None = None,
    close_code: CloseCode | str | None = None,
    close_notes: str | None = None,
    reason: str | None = None,
    override_calendar: str | None = None,
) -> ChangeRequest:
    """Move a change through its lifecycle; illegal moves name the allowed next states.

    The gates of `lifecycle.apply_transition` hold: Assess -> Authorize needs a current
    assessment, Authorize -> Scheduled an authorized change, Scheduled -> Implementing the
    calendar's leave (or `override_calendar`, a reason, from someone who may override).
    Authorize -> Scheduled books the change: it is `calendar.schedule` with its defaults
    (the earliest slots from now)."""
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    validation.check_texts(
        reason=reason, close_notes=close_notes, override_calendar=override_calendar
    )
    target = _enum(ChangeState, to, "to")
    code = _enum(CloseCode, close_code, "close_code") if close_code is not None else None
    number = changes.parse_id(change_id)
    if target is ChangeState.SCHEDULED and not (code or close_notes or override_calendar):
        with engine.connect() as conn:
            state = change_store.get(conn, number).state
        if state is ChangeState.AUTHORIZE:
            booked = calendar.schedule(
                engine,
                catalog,
                ctx,
                changes.format_id(number),
                expected_version=expected_version,
                reason=reason,
            )
            return booked.change
    with db.transaction(engine) as conn:
        current = change_store.get(conn, number)
        _check_version(current, expected_version)
        return lifecycle.apply_transition(
            conn,
            catalog,
            ctx,
            current,
            target,
            close_code=code,
            close_notes=close_notes,
            reason=reason,
            override_calendar=override_calendar,
        )


def _enum(kind: type[E], value: Any, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput([Problem(f"{value!r} is not one of: {allowed}", field=field)]) from None


def submit(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    *,
    gitops_workdir: Path | None = None,
    **kwargs: Any,
) -> ChangeRequest:
    """Send a draft on its way: normal and standard to Assess, emergency to Authorize.

    A standard change is assessed at once: when a template covers it, the assessment moves
    it on to Authorize, authorized (`assessments.assess`, its GitOps commits read from the
    clone at `gitops_workdir`); otherwise it waits in Assess to be approved like a normal
    change, and the `change.assessed` event says why.
    """
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    with engine.connect() as conn:
        current = change_store.get(conn, changes.parse_id(change_id))
    target = changes.SUBMIT_TARGET[current.spec.type]
    if current.state is not ChangeState.DRAFT:
        raise InvalidTransition(
            current.id,
            current.state.value,
            target.value,
            [s.value for s in changes.allowed_next(current)],
        )
    kwargs.setdefault("expected_version", current.version)
    moved = transition(engine, catalog, ctx, change_id, target, **kwargs)
    if moved.spec.type is not changes.ChangeType.STANDARD:
        return moved
    assessments.assess(engine, catalog, ctx, moved.id, gitops_workdir=gitops_workdir)
    return get(engine, ctx, moved.id)


def resume(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    **kwargs: Any,
) -> ChangeRequest:
    """Take a change off hold, back to the state it was held from."""
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    with engine.connect() as conn:
        current = change_store.get(conn, changes.parse_id(change_id))
    if current.state is not ChangeState.ON_HOLD or current.held_from is None:
        raise Refused(f"{current.id} is {current.state.value}, not on-hold; nothing to resume")
    kwargs.setdefault("expected_version", current.version)
    return transition(engine, catalog, ctx, change_id, current.held_from, **kwargs)


def comment(engine: sa.Engine, ctx: Context, change_id: str, body: str) -> dict[str, Any]:
    """Add a comment to a change's discussion."""
    ctx.actor.require(Permission.CHANGES_COMMENT)
    text = body.strip()
    if not text:
        raise InvalidInput([Problem("a comment needs some text", field="body")])
    validation.check_texts(limit=20_000, body=text)
    number = changes.parse_id(change_id)
    with db.transaction(engine) as conn:
        change_store.get(conn, number)
        stored = change_store.add_comment(conn, number, ctx.actor.id, text, ctx.now())
        _audit(
            conn,
            ctx,
            "change.commented",
            changes.format_id(number),
            None,
            {"comment_id": stored["id"], "body": text},
        )
    return stored


def comments(engine: sa.Engine, ctx: Context, change_id: str) -> list[dict[str, Any]]:
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change_store.get(conn, number)
        return change_store.comments(conn, number)
