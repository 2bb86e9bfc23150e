"""Module drift of a tenant database, and the approved baselines it is compared with
(docs/odoo.md, "Module drift").

`check` reads the tenant's database (`adapters.odoo_db`, through the catalog's PostgreSQL
service and database name) and compares it (`domain.odoo.drift.compare`) with the catalog's
`odoo.modules` and with the tenant's latest baseline.

A baseline is the installed state someone recorded as approved: `record_snapshot` reads the
database and appends one `odoo.modules-recorded` audit event (object type `odoo-modules`,
object id the tenant) holding the modules, versions, stored checksums and languages, and,
when given, the change that produced them. Changes do not carry module versions, so this is
where approved versions live; the latest such event of the tenant is its baseline. Naming a
change requires it to be closed successful and to touch the tenant (its impact); recording
without one is allowed, and says so in the audit trail and in every later report. A database
with modules in a pending state (an operation not finished) is never recorded.

Permissions: `check` and `baseline` need `changes:read`; `record_snapshot` needs
`changes:transition`. The database is read outside any transaction of changegate's own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa

from changegate.adapters import odoo_db
from changegate.domain import backups, changes, impact
from changegate.domain import catalog as catalog_model
from changegate.domain.odoo import drift
from changegate.domain.odoo.addons import AddonSet
from changegate.domain.permissions import Permission
from changegate.errors import InvalidInput, Problem, Refused
from changegate.services import audit as audit_service
from changegate.services.context import Context
from changegate.store import audit as audit_store
from changegate.store import changes as change_store
from changegate.store import db

Reader = Callable[[str, str], drift.DatabaseModules]
"""(service, database name) -> what the database records; `database_reader` in production."""

SUCCESSFUL = frozenset({changes.CloseCode.SUCCESSFUL, changes.CloseCode.SUCCESSFUL_WITH_ISSUES})


def database_reader(
    service_file: Path | None, *, timeout: float = odoo_db.DEFAULT_STATEMENT_TIMEOUT
) -> Reader:
    """The reader of tenant databases through libpq's service file (CHANGEGATE_PG_SERVICE_FILE)."""
    return functools.partial(odoo_db.read, service_file=service_file, timeout=timeout)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A baseline just recorded, and the drift it acknowledged (against the previous one)."""

    baseline: drift.Baseline
    acknowledged: drift.ModuleDrift


def _latest(conn: sa.Connection, tenant: str) -> drift.Baseline | None:
    event = audit_store.latest_of_objects(conn, drift.BASELINE_OBJECT, [tenant]).get(tenant)
    if event is None or event.action != drift.BASELINE_ACTION:
        return None
    return drift.Baseline.from_body(
        event.after, recorded_at=event.occurred_at, recorded_by=event.actor, seq=event.seq
    )


def baseline(engine: sa.Engine, ctx: Context, tenant: str) -> drift.Baseline | None:
    """The tenant's latest recorded baseline, or None when none was recorded."""
    ctx.actor.require(Permission.CHANGES_READ)
    with engine.connect() as conn:
        return _latest(conn, tenant)


def _approved(catalog: catalog_model.Catalog, tenant: str, addons: AddonSet | None) -> list[str]:
    spec = catalog.tenants[tenant].spec
    if addons is not None and addons.series != spec.odoo.series:
        raise InvalidInput(
            [
                Problem(
                    f"the addons given are of series {addons.series}; {tenant} runs "
                    f"{spec.odoo.series}",
                    field="addons",
                )
            ]
        )
    return list(spec.odoo.modules)


def check(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    tenant: str,
    *,
    read: Reader,
    addons: AddonSet | None = None,
) -> drift.ModuleDrift:
    """Compare what the tenant's database has installed with its catalog modules (and what
    they need, when `addons` are given) and its latest baseline."""
    ctx.actor.require(Permission.CHANGES_READ)
    location = backups.where(catalog, tenant)
    approved = _approved(catalog, location.tenant, addons)
    with engine.connect() as conn:
        latest = _latest(conn, location.tenant)
    database = read(location.service, location.database)
    return drift.compare(
        location.tenant, database, approved=approved, baseline=latest, addons=addons
    )


def _producing_change(
    conn: sa.Connection, catalog: catalog_model.Catalog, tenant: str, change_id: str
) -> str:
    """The change's id, once it is checked to be closed successful and to touch the tenant."""
    change = change_store.get(conn, changes.parse_id(change_id))
    if change.state is not changes.ChangeState.CLOSED or change.close_code not in SUCCESSFUL:
        closed = f"closed {change.close_code.value}" if change.close_code else change.state.value
        raise Refused(
            f"{change.id} is {closed}: only a change closed successful approves what a "
            "database has installed"
        )
    if tenant not in impact.analyze(catalog, change.spec).tenants:
        raise Refused(f"{change.id} does not touch {tenant}: it cannot approve its modules")
    return change.id


def record_snapshot(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    tenant: str,
    *,
    read: Reader,
    change_id: str | None = None,
    addons: AddonSet | None = None,
) -> Recorded:
    """Record what the tenant's database has installed now as its approved baseline (one
    audited event), naming the closed change that produced it when given."""
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    location = backups.where(catalog, tenant)
    approved = _approved(catalog, location.tenant, addons)
    if change_id is not None:
        with engine.connect() as conn:
            _producing_change(conn, catalog, location.tenant, change_id)
    database = read(location.service, location.database)
    if database.pending:
        listed = ", ".join(f"{name} ({state})" for name, state in sorted(database.pending.items()))
        raise Refused(
            f"{location.database} has modules an operation left unfinished: {listed}. Finish "
            "or undo it (an interrupted upgrade: restore the backup) before recording a baseline"
        )
    with db.transaction(engine) as conn:
        produced_by = (
            _producing_change(conn, catalog, location.tenant, change_id)
            if change_id is not None
            else None
        )
        previous = _latest(conn, location.tenant)
        acknowledged = drift.compare(
            location.tenant, database, approved=approved, baseline=previous, addons=addons
        )
        recorded = drift.Baseline.of(
            location.tenant,
            database.installed,
            change_id=produced_by,
            recorded_at=ctx.now(),
            recorded_by=ctx.actor.id,
        )
        event = audit_service.record(
            conn,
            ctx,
            drift.BASELINE_ACTION,
            drift.BASELINE_OBJECT,
            location.tenant,
            {"audit_seq": previous.seq} if previous is not None else None,
            recorded.body(),
        )
    stored = replace(recorded, recorded_at=event.occurred_at, seq=event.seq)
    return Recorded(baseline=stored, acknowledged=acknowledged)
