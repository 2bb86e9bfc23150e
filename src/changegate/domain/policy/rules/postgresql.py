"""PostgreSQL checks: restarts, settings that lose or corrupt data, major version upgrades.

Inputs are `postgresql.conf` files (Format.POSTGRESQL_CONF: `{parameter: value}`, names in
lower case, quotes removed) and the cluster specs of the operators the platform may run:

- CloudNativePG `postgresql.cnpg.io/v1` `Cluster`: `spec.postgresql.parameters`; the major
  version from `spec.imageCatalogRef.major` or the tag of `spec.imageName`
  (`ghcr.io/cloudnative-pg/postgresql:16.4` is 16).
- Zalando `acid.zalan.do/v1` `postgresql`: `spec.postgresql.parameters` and
  `spec.postgresql.version`.
- Crunchy PGO `postgres-operator.crunchydata.com/v1beta1` `PostgresCluster`:
  `spec.config.parameters` (PGO 5.8 and later) and
  `spec.patroni.dynamicConfiguration.postgresql.parameters`; the major version from
  `spec.postgresVersion`.

**Which catalog service a document is.** A catalog Service of type postgresql whose id is:
the document's annotation `changegate.io/service`; else its `metadata.name`; else, for a
configuration file, its file name before `.postgresql.conf` (`pg-main.postgresql.conf`); a name
may also carry a suffix after the id (`pg-main-tuning.postgresql.conf`, the longest id followed
by `-` or `.` wins); else, for a file, the name of the folder it is in
(`pg-main/postgresql.conf`). When no service matches, rules that judge a *change* say so in
their message and judge what they can without the current state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import Document, Format, Hit, Path, Severity, rule

if TYPE_CHECKING:
    from changegate.domain.catalog import Catalog, Entity, ServiceSpec, TenantSpec

SERVICE_ANNOTATION = "changegate.io/service"
DATABASE_UPGRADE = "database-upgrade"

# Parameters of context `postmaster` (pg_settings.context; PGC_POSTMASTER in PostgreSQL's
# guc_tables.c): a new value takes effect only when the server restarts. Sources: the output of
# `postgres --describe-config` of PostgreSQL 15 (context column `postmaster`) for the base list,
# and the server configuration chapter of the PostgreSQL 16, 17 and 18 documentation ("This
# parameter can only be set at server start") for what was added or changed since.
# name -> (first major version where it needs a restart, last one; None = still does)
_ANY = (0, None)
POSTMASTER: dict[str, tuple[int, int | None]] = {
    **dict.fromkeys(
        (
            "archive_mode",
            "autovacuum_freeze_max_age",
            "autovacuum_multixact_freeze_max_age",
            "bonjour",
            "bonjour_name",
            "cluster_name",
            "config_file",
            "data_directory",
            "data_sync_retry",
            "dynamic_shared_memory_type",
            "event_source",
            "external_pid_file",
            "hba_file",
            "hot_standby",
            "huge_pages",
            "ident_file",
            "ignore_invalid_pages",
            "jit_provider",
            "listen_addresses",
            "logging_collector",
            "max_connections",
            "max_files_per_process",
            "max_locks_per_transaction",
            "max_logical_replication_workers",
            "max_pred_locks_per_transaction",
            "max_prepared_transactions",
            "max_replication_slots",
            "max_wal_senders",
            "max_worker_processes",
            "port",
            "recovery_target",
            "recovery_target_action",
            "recovery_target_inclusive",
            "recovery_target_lsn",
            "recovery_target_name",
            "recovery_target_time",
            "recovery_target_timeline",
            "recovery_target_xid",
            "shared_buffers",
            "shared_memory_type",
            "shared_preload_libraries",
            "superuser_reserved_connections",
            "track_activity_query_size",
            "track_commit_timestamp",
            "unix_socket_directories",
            "unix_socket_group",
            "unix_socket_permissions",
            "wal_buffers",
            "wal_level",
            "wal_log_hints",
        ),
        _ANY,
    ),
    # Reloadable since 13 (primary_*), 15 (restore_command) and 18 (autovacuum_max_workers,
    # whose ceiling moved to autovacuum_worker_slots); removed in 17 (old_snapshot_threshold).
    "primary_conninfo": (0, 12),
    "primary_slot_name": (0, 12),
    "restore_command": (0, 14),
    "old_snapshot_threshold": (0, 16),
    "autovacuum_max_workers": (0, 17),
    "huge_page_size": (14, None),
    "min_dynamic_shared_memory": (14, None),
    "wal_decode_buffer_size": (15, None),
    "reserved_connections": (16, None),
    "debug_io_direct": (16, None),
    "max_notify_queue_pages": (17, None),
    **dict.fromkeys(
        (
            "commit_timestamp_buffers",
            "multixact_member_buffers",
            "multixact_offset_buffers",
            "notify_buffers",
            "serializable_buffers",
            "subtransaction_buffers",
            "transaction_buffers",
        ),
        (17, None),
    ),
    **dict.fromkeys(
        (
            "autovacuum_worker_slots",
            "io_method",
            "io_max_concurrency",
            "io_max_combine_limit",
            "max_active_replication_origins",
        ),
        (18, None),
    ),
}

# --------------------------------------------------------------------------- values


def text_of(value: Any) -> str | None:
    """A parameter value as PostgreSQL reads it; None for values no parameter can take."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return None


_TRUE_WORDS = ("true", "yes", "on")
_FALSE_WORDS = ("false", "no", "off")


def pg_bool(value: Any) -> bool | None:
    """A boolean as PostgreSQL's parse_bool reads it, or None when it is not one.

    Any case; `1` and `0`; and any unique prefix of true, false, yes, no, on, off (so `t`,
    `fal`, `y`, but `o` is ambiguous and `of` means off).
    """
    text = text_of(value)
    if text is None:
        return None
    word = text.strip().lower()
    if word in ("1", "0"):
        return word == "1"
    if not word:
        return None
    trues = [w for w in _TRUE_WORDS if w.startswith(word)]
    falses = [w for w in _FALSE_WORDS if w.startswith(word)]
    if trues and not falses:
        return True
    if falses and not trues:
        return False
    return None


# synchronous_commit is an enum: exact names (any case), booleans spelled out, no prefixes.
_SYNCHRONOUS_COMMIT_OFF = frozenset({"off", "false", "no", "0"})

_QUANTITY = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([a-z]*)$")
_MEMORY = {"": None, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_TIME = {"us": 1, "ms": 1000, "s": 10**6, "min": 60 * 10**6, "h": 3600 * 10**6, "d": 86400 * 10**6}


def _normal(text: str) -> str:
    return re.sub(r"\s*,\s*", ",", text.strip().strip("'\"").strip()).lower()


def _quantity(text: str) -> tuple[str, float] | None:
    match = _QUANTITY.match(text)
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2)
    if unit == "":
        return ("", number)
    if unit in _MEMORY:
        return ("memory", number * (_MEMORY[unit] or 1))
    if unit in _TIME:
        return ("time", number * _TIME[unit])
    return None


def same_value(one: Any, other: Any) -> bool:
    """Whether two written values mean the same setting (8GB = 8192MB, on = true, 400 = 400.0).

    A bare number and a number with a unit are never the same: the bare one is in the
    parameter's own unit, which only the server knows.
    """
    first, second = text_of(one), text_of(other)
    if first is None or second is None:
        return False
    a, b = _normal(first), _normal(second)
    if a == b:
        return True
    bool_a, bool_b = pg_bool(a), pg_bool(b)
    if bool_a is not None and bool_b is not None:
        return bool_a == bool_b
    qa, qb = _quantity(a), _quantity(b)
    return qa is not None and qa == qb


_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?")


def major_of(value: Any) -> tuple[int, ...] | None:
    """The major version of a version text or number: 16.4 -> (16,), 9.6.24 -> (9, 6)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (value,) if value > 0 else None
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        return None
    match = _VERSION.match(value.strip())
    if match is None:
        return None
    first = int(match.group(1))
    if first >= 10 or match.group(2) is None:
        return (first,) if first > 0 else None
    return (first, int(match.group(2)))


def show_major(major: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in major)


def _image_major(image: str) -> tuple[int, ...] | None:
    """The major version in a PostgreSQL image's tag: `postgresql:16.4-bookworm` -> 16."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in name:
        return None
    return major_of(name.split(":", 1)[1])


# --------------------------------------------------------------------------- catalog


def _basename(file: str) -> str:
    return file.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _folder(file: str) -> str:
    parts = file.replace("\\", "/").rstrip("/").split("/")
    return parts[-2] if len(parts) > 1 else ""


def _longest_id(name: str, known: Mapping[str, Entity[ServiceSpec]]) -> str | None:
    """The id the name is, or the longest id followed by `-` or `.` that it starts with."""
    if name in known:
        return name
    for index in range(len(name) - 1, 0, -1):
        if name[index] in "-." and name[:index] in known:
            return name[:index]
    return None


def services_of(catalog: Catalog | None, service_type: str) -> dict[str, Entity[ServiceSpec]]:
    """The catalog's services of one type (`postgresql`, `redis`) by id."""
    if catalog is None:
        return {}
    return {
        ident: entity
        for ident, entity in catalog.services.items()
        if entity.spec.type.value == service_type
    }


def service_for(
    document: Document, known: Mapping[str, Entity[ServiceSpec]], *, suffix: str = ""
) -> Entity[ServiceSpec] | None:
    """The catalog service a document configures (see the module docstring for the rules).

    `suffix` is the file-name ending to drop before matching (`.postgresql.conf`).
    """
    if not known:
        return None
    if document.format is Format.KUBERNETES:
        annotations = document.metadata.get("annotations")
        if isinstance(annotations, dict):
            named = annotations.get(SERVICE_ANNOTATION)
            if isinstance(named, str) and named in known:
                return known[named]
        found = _longest_id(document.name, known) if document.name else None
        return known[found] if found is not None else None
    base = _basename(document.file)
    if suffix and base.lower().endswith(suffix):
        base = base[: -len(suffix)]
    found = _longest_id(base, known) if base else None
    if found is None:
        folder = _folder(document.file)
        found = folder if folder in known else None
    return known[found] if found is not None else None


def tenants_on(catalog: Catalog | None, service: str) -> tuple[Entity[TenantSpec], ...]:
    """The tenants whose database is on a PostgreSQL service."""
    if catalog is None:
        return ()
    return catalog.index.tenants_by_database_service.get(service, ())


def listing(names: list[str], limit: int = 3) -> str:
    """`a, b, c and 4 more`."""
    shown = ", ".join(names[:limit])
    more = len(names) - limit
    return f"{shown} and {more} more" if more > 0 else shown


# --------------------------------------------------------------------------- clusters


@dataclass(frozen=True, slots=True)
class Setting:
    """One parameter as written: its name (lower case), its value, where it is."""

    name: str
    value: str
    path: Path


@dataclass(frozen=True, slots=True)
class Cluster:
    """A PostgreSQL cluster as one document describes it."""

    document: Document
    what: str  # "CloudNativePG Cluster", "postgresql.conf"...
    settings: tuple[Setting, ...]
    major: tuple[int, ...] | None  # the version the document asks for, when it says
    major_path: Path
    service: Entity[ServiceSpec] | None

    @property
    def catalog_major(self) -> tuple[int, ...] | None:
        settings = self.service.spec.postgresql if self.service is not None else None
        return major_of(settings.version) if settings is not None else None

    @property
    def current(self) -> Mapping[str, Any]:
        """The parameters the catalog records for the service (as running now)."""
        settings = self.service.spec.postgresql if self.service is not None else None
        return settings.parameters if settings is not None else {}


def _settings(document: Document, *path: str) -> list[Setting]:
    found = document.get(*path)
    if not isinstance(found, dict):
        return []
    settings = []
    for name, value in found.items():
        text = text_of(value)
        if isinstance(name, str) and text is not None:
            settings.append(Setting(name.lower(), text, (*path, name)))
    return settings


def _operator(document: Document) -> tuple[str, list[Setting], Any, Path] | None:
    """(what, settings, version value, where the version is) of an operator's cluster spec."""
    group = document.api_version.split("/", 1)[0]
    kind = document.kind
    if group == "postgresql.cnpg.io" and kind == "Cluster":
        settings = _settings(document, "spec", "postgresql", "parameters")
        catalog_major = document.get("spec", "imageCatalogRef", "major")
        if catalog_major is not None:
            return (
                "CloudNativePG Cluster",
                settings,
                catalog_major,
                (
                    "spec",
                    "imageCatalogRef",
                    "major",
                ),
            )
        image = document.get("spec", "imageName")
        version = _image_major(image) if isinstance(image, str) else None
        return "CloudNativePG Cluster", settings, version, ("spec", "imageName")
    if group == "acid.zalan.do" and kind == "postgresql":
        settings = _settings(document, "spec", "postgresql", "parameters")
        path: Path = ("spec", "postgresql", "version")
        return "Zalando postgresql", settings, document.get(*path), path
    if group == "postgres-operator.crunchydata.com" and kind == "PostgresCluster":
        settings = _settings(document, "spec", "config", "parameters")
        settings += _settings(
            document, "spec", "patroni", "dynamicConfiguration", "postgresql", "parameters"
        )
        return (
            "Crunchy PostgresCluster",
            settings,
            document.get("spec", "postgresVersion"),
            (
                "spec",
                "postgresVersion",
            ),
        )
    return None


def clusters(changeset: ChangeSet, context: CheckContext) -> list[Cluster]:
    """Every PostgreSQL cluster the change set configures, with its catalog service."""
    known = services_of(context.catalog, "postgresql")
    found: list[Cluster] = []
    for document in changeset.of_format(Format.POSTGRESQL_CONF):
        data = document.data if isinstance(document.data, dict) else {}
        written = tuple(
            Setting(name.lower(), text, (name,))
            for name, value in data.items()
            if isinstance(name, str) and (text := text_of(value)) is not None
        )
        service = service_for(document, known, suffix=".postgresql.conf")
        found.append(Cluster(document, "postgresql.conf", written, None, (), service))
    for document in changeset.of_kind("Cluster", "postgresql", "PostgresCluster"):
        described = _operator(document)
        if described is None:
            continue
        what, settings, version, path = described
        major = version if isinstance(version, tuple) else major_of(version)
        service = service_for(document, known)
        found.append(Cluster(document, what, tuple(settings), major, path, service))
    return found


# --------------------------------------------------------------------------- rules


def _restart_scope(name: str, major: tuple[int, ...] | None) -> tuple[bool, str]:
    """Whether a parameter needs a restart on that major version, and a note when the
    version is unknown and the answer depends on it."""
    bounds = POSTMASTER.get(name)
    if bounds is None:
        return False, ""
    first, last = bounds
    if major is None:
        if last is not None:
            return True, f" (on PostgreSQL {last} and older)"
        if first:
            return True, f" (on PostgreSQL {first} and later)"
        return True, ""
    number = major[0]
    return first <= number and (last is None or number <= last), ""


def _tenant_impact(context: CheckContext, service: str) -> str:
    tenants = tenants_on(context.catalog, service)
    if not tenants:
        return f"the catalog lists no tenant database on {service}"
    names = [tenant.id for tenant in tenants]
    count = f"{len(names)} tenant{'s' if len(names) != 1 else ''}"
    return f"a restart is an outage for the {count} on {service} ({listing(names)})"


@rule(
    "postgresql.restart-required",
    "PostgreSQL parameters that need a restart are changed knowingly",
    Severity.WARNING,
    rationale=(
        "Parameters of context postmaster (shared_buffers, max_connections, wal_level, "
        "shared_preload_libraries...) take effect only when PostgreSQL restarts, and the "
        "operator restarts or fails over the cluster to apply them: every connection drops, "
        "so on a shared cluster it is an outage for every tenant whose database is there."
    ),
    remediation=(
        "Plan the change for a maintenance window of every tenant on the cluster (the "
        "message names them), or keep the running value; record the new value in the "
        "catalog service's spec.postgresql.parameters once applied."
    ),
)
def restart_required(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for cluster in clusters(changeset, context):
        major = cluster.major or cluster.catalog_major
        current = cluster.current
        for setting in cluster.settings:
            needed, note = _restart_scope(setting.name, major)
            if not needed:
                continue
            written = f"{setting.name} = {setting.value!r}{note}"
            if cluster.service is None:
                yield Hit(
                    cluster.document,
                    setting.path,
                    f"{written} needs a PostgreSQL restart if it differs from the running "
                    "value (no catalog service matches this document, so changegate cannot "
                    "compare it or name the tenants affected)",
                )
                continue
            service = cluster.service.id
            before = current.get(setting.name)
            if before is not None and same_value(before, setting.value):
                continue
            if before is None:
                was = f"the catalog records no value for {service}, so the running one is unknown"
            else:
                was = f"the catalog records {text_of(before)!r} for {service}"
            yield Hit(
                cluster.document,
                setting.path,
                f"{written} needs a PostgreSQL restart ({was}): {_tenant_impact(context, service)}",
            )


def critical_patterns(context: CheckContext) -> list[str]:
    """The tier patterns that count as critical (the context's and the policy config's)."""
    return sorted({*context.critical_tiers, *context.config.critical_tiers})


def _critical_tenants(context: CheckContext, cluster: Cluster) -> tuple[list[str], bool]:
    """(critical tenants served by the cluster as 'tenant (tier)', whether tenants are known)."""
    patterns = critical_patterns(context)
    if cluster.service is not None:
        tenants = [
            (tenant.id, context.tenant_tiers.get(tenant.id) or tenant.spec.tier)
            for tenant in tenants_on(context.catalog, cluster.service.id)
        ]
        known = True
    else:
        tenant = context.tenant_of(cluster.document.namespace)
        tier = context.tenant_tiers.get(tenant) if tenant else None
        if tier is None and tenant and context.catalog is not None:
            entity = context.catalog.tenants.get(tenant)
            tier = entity.spec.tier if entity is not None else None
        tenants = [(tenant, tier)] if tenant and tier else []
        known = bool(tenants)
    critical = [
        f"{ident} ({tier})"
        for ident, tier in tenants
        if any(fnmatchcase(tier, pattern) for pattern in patterns)
    ]
    return critical, known


@rule(
    "postgresql.dangerous-settings",
    "PostgreSQL keeps the settings that protect data",
    Severity.ERROR,
    rationale=(
        "With fsync off, a crash of the server or its node can leave the database corrupt "
        "beyond repair; with full_page_writes off, pages torn by a crash cannot be restored "
        "from the WAL. synchronous_commit off acknowledges commits before they are on disk, "
        "so a crash loses the last ones: acceptable for some data, not for tenants on a "
        "critical tier, whose invoices and payments would silently disappear."
    ),
    remediation=(
        "Remove the setting or set fsync = on and full_page_writes = on; keep "
        "synchronous_commit = on on clusters serving critical tiers (use SET LOCAL "
        "synchronous_commit = off in the few transactions that may lose their last commit)."
    ),
)
def dangerous_settings(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for cluster in clusters(changeset, context):
        for setting in cluster.settings:
            if setting.name == "fsync" and pg_bool(setting.value) is False:
                yield Hit(
                    cluster.document,
                    setting.path,
                    f"fsync = {setting.value!r}: a crash can corrupt the whole cluster, "
                    "beyond what a restart or the WAL can repair",
                )
            elif setting.name == "full_page_writes" and pg_bool(setting.value) is False:
                yield Hit(
                    cluster.document,
                    setting.path,
                    f"full_page_writes = {setting.value!r}: pages torn by a crash cannot be "
                    "restored from the WAL, so a crash can corrupt data",
                )
            elif (
                setting.name == "synchronous_commit"
                and setting.value.strip().lower() in _SYNCHRONOUS_COMMIT_OFF
            ):
                yield _synchronous_commit(context, cluster, setting)


def _synchronous_commit(context: CheckContext, cluster: Cluster, setting: Setting) -> Hit:
    written = f"synchronous_commit = {setting.value!r}"
    critical, known = _critical_tenants(context, cluster)
    if critical:
        return Hit(
            cluster.document,
            setting.path,
            f"{written} on a cluster serving critical tiers: a crash loses the last "
            f"acknowledged commits of {listing(critical)}",
        )
    if not critical_patterns(context):
        why = "no tier is configured as critical (policy config critical_tiers)"
    elif known:
        why = "no tenant of a critical tier is on this cluster"
    else:
        why = "the tenants on this cluster are not known to the catalog"
    return Hit(
        cluster.document,
        setting.path,
        f"{written}: a crash loses the last acknowledged commits ({why})",
        severity=Severity.INFO,
    )


@rule(
    "postgresql.major-upgrade",
    "A PostgreSQL major version change is filed as a database upgrade",
    Severity.ERROR,
    rationale=(
        "A major version upgrade rewrites the system catalogs (pg_upgrade or a dump and "
        "restore), takes the cluster offline, cannot be rolled back by redeploying the old "
        "image and can change query plans and extension behaviour for every tenant; it needs "
        "the rehearsal, backups and approvals of the database-upgrade category, not those of "
        "a configuration change."
    ),
    remediation=(
        "File the change with category database-upgrade (with a tested backup and a rehearsal "
        "on staging), or keep the major version the catalog records and change only the "
        "minor version."
    ),
)
def major_upgrade(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for cluster in clusters(changeset, context):
        new, current = cluster.major, cluster.catalog_major
        if new is None or current is None or new == current or cluster.service is None:
            continue
        service = cluster.service.id
        move = f"PostgreSQL {show_major(current)} to {show_major(new)} on {service}"
        if new < current:
            yield Hit(
                cluster.document,
                cluster.major_path,
                f"{cluster.what} goes back from {move}: a data directory cannot be opened by "
                "an older major version; restore from a backup taken on that version instead",
            )
        elif context.category is None:
            yield Hit(
                cluster.document,
                cluster.major_path,
                f"{cluster.what} upgrades {move}: file it as a {DATABASE_UPGRADE} change",
                severity=Severity.WARNING,
            )
        elif context.category != DATABASE_UPGRADE:
            yield Hit(
                cluster.document,
                cluster.major_path,
                f"{cluster.what} upgrades {move} in a change filed as {context.category!r}: a "
                f"major upgrade must be filed as {DATABASE_UPGRADE}",
            )


RULES = (restart_required, dangerous_settings, major_upgrade)
