"""Pre-change PostgreSQL backups and disaster-recovery drills: the pure rules.

No I/O and no clock here (instants are arguments). The adapter (`adapters.pgbackup`) runs
pg_dump / pg_restore / psql; the service (`services.backups`) records what they did. This
module decides the names and the verdicts:

    where(catalog, tenant) -> Location        the libpq service and database of a tenant
    filestore_ref(catalog, tenant, at)        the object-storage location of its filestore
    scratch_name(tenant, at)                  the drill's throw-away database name
    check_copy_name(name, original)           a database name a copy may be restored into
    verdict(...) -> Verdict                   a drill against the tier's RPO and RTO

docs/backups.md describes the whole feature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from changegate.domain import canonical
from changegate.domain import catalog as catalog_model
from changegate.errors import InvalidInput, NotFound, Problem

# PostgreSQL's identifier limit, and the database names the catalog accepts.
_MAX_IDENTIFIER = 63
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SCRATCH_PREFIX = "cg_drill_"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a tenant's database lives: the catalog's PostgreSQL service id (used as the
    libpq service name) and the database name."""

    tenant: str
    service: str
    database: str
    tier: str


def where(catalog: catalog_model.Catalog, tenant: str) -> Location:
    """The database of `tenant`; NotFound for a tenant the catalog does not know."""
    entity = catalog.tenants.get(tenant)
    if entity is None:
        raise NotFound(f"unknown tenant {tenant!r}: not among the catalog's tenants")
    spec = entity.spec
    return Location(
        tenant=entity.id,
        service=spec.database.service,
        database=spec.database.name,
        tier=spec.tier,
    )


def filestore_ref(catalog: catalog_model.Catalog, tenant: str, at: datetime) -> str | None:
    """The object-storage location of the tenant's filestore as of `at`, or None.

    A reference, not a snapshot: changegate records where the filestore lives (the first
    object-storage service among the tenant's `services`, prefix = the tenant id) and the
    instant; bringing the files back to that instant is the storage system's job (bucket
    versioning, or the provider's snapshots). Form: `<provider>://<bucket>/<tenant>@<instant>`.
    """
    entity = catalog.tenants.get(tenant)
    if entity is None:
        return None
    for service_id in entity.spec.services:
        service = catalog.services.get(service_id)
        if service is None or service.spec.object_storage is None:
            continue
        storage = service.spec.object_storage
        return f"{storage.provider}://{storage.bucket}/{entity.id}@{canonical.to_utc_text(at)}"
    return None


def scratch_name(tenant: str, at: datetime) -> str:
    """`cg_drill_<tenant>_<yyyymmddhhmmss>`: a drill's scratch database, within 63 bytes.

    The tenant id's hyphens become underscores; a long id is shortened so that the instant,
    which keeps two drills apart, always fits.
    """
    stamp = canonical.as_utc(at).strftime("%Y%m%d%H%M%S")
    room = _MAX_IDENTIFIER - len(SCRATCH_PREFIX) - len(stamp) - 1
    return f"{SCRATCH_PREFIX}{tenant.replace('-', '_')[:room]}_{stamp}"


def check_copy_name(name: str, original: str) -> str:
    """A database name a backup may be restored into as a copy: valid, not the original."""
    if not _DATABASE_NAME.match(name):
        raise InvalidInput(
            [
                Problem(
                    "a database name is lowercase letters, digits and _, at most 63, not "
                    f"starting with a digit: {name!r}",
                    field="into",
                )
            ]
        )
    if name == original:
        raise InvalidInput(
            [
                Problem(
                    f"{name!r} is the tenant's own database: restore without `into` to "
                    "restore into it",
                    field="into",
                )
            ]
        )
    return name


@dataclass(frozen=True, slots=True)
class Verdict:
    """A drill's outcome against the tier's targets, each reason named."""

    passed: bool
    rpo_met: bool
    rto_met: bool
    checked: bool
    reasons: tuple[str, ...]


def verdict(
    *,
    backup_age_minutes: float,
    restore_ms: int | None,
    rpo_minutes: int,
    rto_minutes: int,
    tables_expected: int,
    tables_restored: int | None,
    error: str | None = None,
) -> Verdict:
    """Did the drill meet the tier's promises?

    RPO: the backup restored is at most `rpo_minutes` old when the drill starts (the data a
    disaster at that instant would lose). RTO: the restore took at most `rto_minutes`.
    Checked: the restore succeeded and the scratch database holds at least the tables the
    archive's table of contents lists. Passed when all three hold.
    """
    reasons: list[str] = []
    rpo_met = backup_age_minutes <= rpo_minutes
    if not rpo_met:
        reasons.append(
            f"the latest backup is {backup_age_minutes:.1f} min old, over the tier's RPO of "
            f"{rpo_minutes} min"
        )
    rto_met = restore_ms is not None and restore_ms <= rto_minutes * 60_000
    if restore_ms is None:
        reasons.append("the restore did not complete")
    elif not rto_met:
        reasons.append(
            f"the restore took {restore_ms / 60_000:.1f} min, over the tier's RTO of "
            f"{rto_minutes} min"
        )
    checked = error is None and tables_restored is not None and tables_restored >= tables_expected
    if error is not None:
        reasons.append(f"the drill failed: {error}")
    elif tables_restored is not None and tables_restored < tables_expected:
        reasons.append(f"the copy has {tables_restored} tables, the backup lists {tables_expected}")
    return Verdict(
        passed=rpo_met and rto_met and checked,
        rpo_met=rpo_met,
        rto_met=rto_met,
        checked=checked,
        reasons=tuple(reasons),
    )


@dataclass(frozen=True, slots=True)
class BackupRecord:
    """One backup taken by changegate: the file, its checksum, and what it belongs to."""

    id: int
    tenant: str
    service: str
    database: str
    change_id: str | None
    path: str
    sha256: str
    size_bytes: int
    created_at: datetime
    duration_ms: int
    toc_entries: int
    toc_tables: int
    filestore_ref: str | None
    taken_by: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (API responses and the CLI's --json)."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "service": self.service,
            "database": self.database,
            "change_id": self.change_id,
            "path": self.path,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "created_at": canonical.to_utc_text(self.created_at),
            "duration_ms": self.duration_ms,
            "toc_entries": self.toc_entries,
            "toc_tables": self.toc_tables,
            "filestore_ref": self.filestore_ref,
            "taken_by": self.taken_by,
        }


@dataclass(frozen=True, slots=True)
class DrillRecord:
    """One DR drill: which backup, how long the restore took, what the copy held, and the
    verdict against the tier's RPO and RTO at the time."""

    id: int
    backup_id: int
    tenant: str
    started_at: datetime
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
    reasons: tuple[str, ...]
    run_by: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (API responses and the CLI's --json)."""
        return {
            "id": self.id,
            "backup_id": self.backup_id,
            "tenant": self.tenant,
            "started_at": canonical.to_utc_text(self.started_at),
            "scratch_database": self.scratch_database,
            "restore_ms": self.restore_ms,
            "tables": self.tables,
            "rows": self.rows,
            "backup_age_minutes": round(self.backup_age_minutes, 2),
            "rpo_minutes": self.rpo_minutes,
            "rto_minutes": self.rto_minutes,
            "rpo_met": self.rpo_met,
            "rto_met": self.rto_met,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "run_by": self.run_by,
        }
