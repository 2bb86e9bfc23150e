"""The platform catalog: tiers, environments, clusters, services, tenants, teams, people, windows,
the risk and approval policies and the standard change templates.

The catalog is code: YAML documents in the platform's Git repository, one entity each
(`apiVersion: changegate.io/v1`, `kind`, `metadata.name`, `spec`). This module knows their
shape and the rules that tie them together; it never reads a file. `build` takes parsed
documents (anything shaped like `DocumentLike`), validates every one of them, resolves every
reference and reports every problem at once, each with its file, line and field.

Adding a kind is one spec model and one `KindInfo` entry in `REGISTRY`.
"""

from __future__ import annotations

import builtins
import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from changegate.domain import conflicts, gitops, validation
from changegate.domain.changes import Category, ChangeType
from changegate.domain.policy import config as policy_config
from changegate.errors import InvalidInput, NotFound, Problem

API_VERSION = "changegate.io/v1"

ID_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_GLOB_CHARS = frozenset("*?[")
MAX_DURATION = timedelta(days=366)
# Above this many candidates a "did you mean" hint costs more than it helps.
_SUGGEST_LIMIT = 2000


# --------------------------------------------------------------------------- field types


def _invalid(message: str) -> PydanticCustomError:
    """A ValueError whose message pydantic shows as written, without "Value error, "."""
    return PydanticCustomError("catalog", message)


def _unique(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        seen: set[Any] = set()
        repeated: dict[Any, None] = {}
        for item in items:
            if item in seen:
                repeated[item] = None
            seen.add(item)
        raise _invalid(f"listed more than once: {', '.join(map(str, repeated))}")
    return items


@lru_cache(maxsize=1024)
def _known_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _timezone(name: str) -> str:
    if not _known_timezone(name):
        raise _invalid(f"unknown IANA timezone {name!r} (e.g. Europe/Brussels, UTC)")
    return name


def _image(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        raise _invalid("an image needs a tag or a digest, e.g. registry/odoo:17.0@sha256:...")
    return ref


_SHORT_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_duration(text: str) -> timedelta:
    """`4h`, `90m`, `1h30m`, `2d`, or ISO 8601 `PT4H`, `P1DT2H` to a positive timedelta."""
    if match := _SHORT_DURATION.match(text):
        days, hours, minutes, seconds = match.groups()
        weeks = None
    elif match := _ISO_DURATION.match(text):
        weeks, days, hours, minutes, seconds = match.groups()
    else:
        raise _invalid(f"not a duration: {text!r} (e.g. 4h, 90m, 1h30m, 2d or PT4H)")
    parts = (weeks, days, hours, minutes, seconds)
    if all(part is None for part in parts):
        raise _invalid(f"not a duration: {text!r} (e.g. 4h, 90m, 1h30m, 2d or PT4H)")
    weeks_n, days_n, hours_n, minutes_n, seconds_n = (int(part or 0) for part in parts)
    if max(weeks_n, days_n, hours_n, minutes_n, seconds_n) > 10**6:
        raise _invalid(f"duration {text!r} is longer than {MAX_DURATION.days} days")
    value = timedelta(
        weeks=weeks_n, days=days_n, hours=hours_n, minutes=minutes_n, seconds=seconds_n
    )
    if value <= timedelta(0):
        raise _invalid("a duration must be longer than zero")
    if value > MAX_DURATION:
        raise _invalid(f"duration {text!r} is longer than {MAX_DURATION.days} days")
    return value


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta):
        return value
    raise _invalid("a duration is text, e.g. 4h, 90m, 1h30m or PT4H")


def _when(value: Any) -> Any:
    # JSON has no dates: a string is a date (YYYY-MM-DD) or a datetime, nothing looser.
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise _invalid("a date or datetime is text, e.g. 2026-12-18 or 2026-12-18T22:00:00Z")
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(
            f"not an ISO 8601 date or datetime: {value!r} (e.g. 2026-12-18 or "
            "2026-12-18T22:00:00+01:00)"
        ) from None


_RRULE_DAY = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_RRULE_UNTIL = re.compile(r"^\d{8}(T\d{6}Z?)?$")
_RRULE_FREQ = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# RFC 5545 BYxxx parts: (lowest, highest, negative values allowed)
_RRULE_RANGES: dict[str, tuple[int, int, bool]] = {
    # RFC 5545 allows 60 for a leap second; Python datetimes (and dateutil) have none.
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}


_RRULE_MAX = {"INTERVAL": 1000, "COUNT": 10_000}


def _rrule_number(part: str, text: str, low: int, high: int, signed: bool) -> None:
    sign, digits = (text[0], text[1:]) if signed and text[:1] in "+-" else ("", text)
    if not digits.isdigit() or not low <= int(digits) <= high:
        allowed = f"±{low}..{high}" if signed else f"{low}..{high}"
        raise _invalid(f"{part}={sign}{digits} is out of range ({allowed})")


def rrule_parts(text: str) -> dict[str, str]:
    """A checked recurrence rule as {part: value}, e.g. {"FREQ": "WEEKLY", "BYDAY": "SU"}."""
    parts: dict[str, str] = {}
    for item in text.removeprefix("RRULE:").split(";"):
        name, _, value = item.partition("=")
        parts[name] = value
    return parts


def check_rrule(text: str) -> str:
    """Validate an RFC 5545 recurrence rule (`FREQ=WEEKLY;BYDAY=SU;BYHOUR=2`)."""
    body = text.removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise _invalid(f"rrule part {item!r} is not NAME=VALUE")
        if name in parts:
            raise _invalid(f"rrule part {name} is given twice")
        parts[name] = value
    if parts.get("FREQ") not in _RRULE_FREQ:
        raise _invalid(f"rrule needs FREQ= one of {', '.join(_RRULE_FREQ)}")
    for name, value in parts.items():
        if name == "FREQ":
            continue
        if name in ("INTERVAL", "COUNT"):
            if not value.isdigit() or int(value) < 1:
                raise _invalid(f"rrule {name} must be a positive integer")
            if int(value) > _RRULE_MAX[name]:
                raise _invalid(f"rrule {name} must be at most {_RRULE_MAX[name]:,}")
        elif name == "UNTIL":
            if not _RRULE_UNTIL.match(value):
                raise _invalid("rrule UNTIL must be YYYYMMDD or YYYYMMDDTHHMMSS[Z]")
        elif name == "WKST":
            if value not in _WEEKDAYS:
                raise _invalid(f"rrule WKST must be one of {', '.join(_WEEKDAYS)}")
        elif name == "BYDAY":
            for day in value.split(","):
                match = _RRULE_DAY.match(day)
                if not match or (match.group(2) and not 1 <= int(match.group(2)) <= 53):
                    raise _invalid(f"rrule BYDAY {day!r} is not like MO, -1FR or 2TU")
        elif name in _RRULE_RANGES:
            low, high, signed = _RRULE_RANGES[name]
            for number in value.split(","):
                _rrule_number(name, number, low, high, signed)
        else:
            raise _invalid(f"rrule part {name} is not supported")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _invalid("rrule takes COUNT or UNTIL, not both")
    return text


_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    (
        "month",
        1,
        12,
        ("", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    ),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


def _cron_value(token: str, what: str, low: int, high: int, names: tuple[str, ...]) -> int:
    upper = token.upper()
    if upper in names and upper:
        return names.index(upper)
    if not token.isdigit() or not low <= int(token) <= high:
        raise _invalid(f"cron {what} {token!r} is not in {low}-{high}")
    return int(token)


def check_cron(text: str) -> str:
    """Validate a five-field cron expression (minute hour day-of-month month day-of-week)."""
    fields = text.split()
    if len(fields) != 5:
        raise _invalid(f"cron needs 5 fields (minute hour day month weekday), got {len(fields)}")
    for token, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in token.split(","):
            base, slash, step = item.partition("/")
            if slash and (not step.isdigit() or int(step) < 1):
                raise _invalid(f"cron {what} step {step!r} must be a positive integer")
            if base == "*":
                continue
            first, dash, last = base.partition("-")
            start = _cron_value(first, what, low, high, names)
            if dash and _cron_value(last, what, low, high, names) < start:
                raise _invalid(f"cron {what} range {base!r} runs backwards")
    return text


EntityId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
# A reference in a window's scope: an id, or a glob over ids (* ? [...]).
IdPattern = Annotated[str, StringConstraints(pattern=r"^[a-z0-9*?\[\]!-]{1,63}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=63)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#][^\s]*$", max_length=2048)]
Timezone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_timezone)]
Version = Annotated[str, StringConstraints(pattern=r"^v?\d{1,4}(\.\d{1,4}){0,2}$")]
KubernetesVersion = Annotated[str, StringConstraints(pattern=r"^1\.\d{1,2}(\.\d{1,3})?$")]
OdooSeries = Annotated[str, StringConstraints(pattern=r"^\d{2}\.0$")]
OdooModule = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
DatabaseName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
Image = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+"
        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$",
        max_length=512,
    ),
    AfterValidator(_image),
]
Address = Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]*:\d{1,5}(/(tcp|udp))?$")]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
When = Annotated[datetime | date, BeforeValidator(_when)]
RRule = Annotated[str, StringConstraints(max_length=1000), AfterValidator(check_rrule)]
Cron = Annotated[str, StringConstraints(max_length=200), AfterValidator(check_cron)]
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}"
        r"[A-Za-z0-9])?$"
    ),
]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
]


def _ids(limit: int) -> Any:
    """An optional list field (empty by default) of at most `limit` items."""
    return Field(default_factory=list, max_length=limit)


IdList = Annotated[list[EntityId], AfterValidator(_unique)]
PatternList = Annotated[list[IdPattern], AfterValidator(_unique)]
SlugList = Annotated[list[Slug], AfterValidator(_unique)]


# --------------------------------------------------------------------------- enums


class ClusterMode(StrEnum):
    """Whether a cluster hosts many customers or one."""

    SHARED = "shared"
    DEDICATED = "dedicated"


class ServiceType(StrEnum):
    """The kinds of shared service a tenant can depend on."""

    POSTGRESQL = "postgresql"
    REDIS = "redis"
    TRAEFIK = "traefik"
    OBJECT_STORAGE = "object-storage"
    MONITORING = "monitoring"


class Criticality(StrEnum):
    """How much breaks when a shared service breaks."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class DeploymentModel(StrEnum):
    """How a tenant is isolated: shared Odoo, own namespace, or own cluster."""

    MULTI_TENANT = "multi-tenant"
    DEDICATED_NAMESPACE = "dedicated-namespace"
    DEDICATED_CLUSTER = "dedicated-cluster"


class Role(StrEnum):
    """What a person may do in change control; permissions.py maps roles to permissions."""

    REQUESTER = "requester"
    IMPLEMENTER = "implementer"
    APPROVER = "approver"
    CAB = "cab"
    PLATFORM_LEAD = "platform-lead"
    EMERGENCY_APPROVER = "emergency-approver"
    CUSTOMER_APPROVER = "customer-approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


class ContactRole(StrEnum):
    """Why a customer contact is listed."""

    BUSINESS_OWNER = "business-owner"
    TECHNICAL = "technical"
    BILLING = "billing"
    SECURITY = "security"
    ESCALATION = "escalation"


class WindowType(StrEnum):
    """An allow window opens time for changes; a deny window closes it."""

    ALLOW = "allow"
    DENY = "deny"


class WindowPurpose(StrEnum):
    """Why a window exists; allow windows are maintenance or release, deny ones the rest."""

    MAINTENANCE = "maintenance"
    RELEASE = "release"
    FREEZE = "freeze"
    BLACKOUT = "blackout"


_PURPOSES_BY_TYPE = {
    WindowType.ALLOW: (WindowPurpose.MAINTENANCE, WindowPurpose.RELEASE),
    WindowType.DENY: (WindowPurpose.FREEZE, WindowPurpose.BLACKOUT),
}


# --------------------------------------------------------------------------- specs


class Reference(NamedTuple):
    """A field of a spec that names another entity: where it is, which kind, which id."""

    path: tuple[str | int, ...]
    kind: str
    id: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Spec(_Strict):
    """Base of every kind's spec; lists the references the catalog must resolve."""

    def references(self) -> Iterator[Reference]:
        """Every id this spec names, with the path (from the document's root) that names it."""
        return iter(())


def _refs(kind: str, name: str, ids: Iterable[str]) -> Iterator[Reference]:
    for index, ident in enumerate(ids):
        yield Reference(("spec", name, index), kind, ident)


class TierSpec(Spec):
    """A service tier: what the customer was promised, and how much a failure weighs."""

    display_name: Name
    description: Text = ""
    availability_target: float = Field(gt=0, le=100)
    rpo_minutes: int = Field(ge=0, le=525_600)
    rto_minutes: int = Field(ge=0, le=525_600)
    risk_weight: float = Field(gt=0, le=100)


class EnvironmentSpec(Spec):
    """A stage of promotion (dev, staging, prod); lower order comes first."""

    display_name: Name
    description: Text = ""
    order: int = Field(ge=0, le=1000)
    production: bool = False


class NodePool(_Strict):
    """A group of identical Kubernetes nodes."""

    name: Slug
    machine_type: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    min_nodes: int = Field(ge=0, le=10_000)
    max_nodes: int = Field(ge=0, le=10_000)

    @model_validator(mode="after")
    def _bounds(self) -> NodePool:
        if self.max_nodes < self.min_nodes:
            raise _invalid("max_nodes must be at least min_nodes")
        return self


class ClusterSpec(Spec):
    """A Kubernetes cluster, shared by many tenants or dedicated to one customer."""

    display_name: Name | None = None
    description: Text = ""
    mode: ClusterMode
    environment: EntityId
    region: Slug
    zones: SlugList = Field(min_length=1, max_length=20)
    kubernetes_version: KubernetesVersion
    provider: Slug | None = None
    owner: EntityId | None = None
    node_pools: list[NodePool] = Field(default_factory=list, max_length=100)

    @field_validator("node_pools")
    @classmethod
    def _pool_names(cls, pools: list[NodePool]) -> list[NodePool]:
        _unique([pool.name for pool in pools])
        return pools

    def references(self) -> Iterator[Reference]:
        yield Reference(("spec", "environment"), "Environment", self.environment)
        if self.owner is not None:
            yield Reference(("spec", "owner"), "Team", self.owner)


def _scalar(value: Any) -> Any:
    # One clear message rather than one per member of a str | bool | int | float union.
    if not isinstance(value, str | bool | int | float):
        raise _invalid("a parameter value is text, a number or a boolean")
    return value


Scalar = Annotated[str | bool | int | float, BeforeValidator(_scalar)]


class PostgresqlBackup(_Strict):
    """Where and for how long a PostgreSQL cluster's backups are kept."""

    object_storage: EntityId
    retention_days: int = Field(ge=1, le=3650)


class PostgresqlSettings(_Strict):
    """A PostgreSQL cluster run by an operator."""

    version: Version
    instances: int = Field(ge=1, le=9)
    operator: Slug | None = None
    parameters: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.]{0,62}$")], Scalar
    ] = Field(default_factory=dict, max_length=500)
    backup: PostgresqlBackup | None = None


# Redis's eviction policies (`maxmemory-policy`), as the catalog and the policy rules know them.
MaxmemoryPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


class RedisSettings(_Strict):
    """A Redis deployment used for cache, sessions and queues."""

    version: Version
    mode: Literal["standalone", "sentinel", "cluster"] = "standalone"
    replicas: int = Field(default=0, ge=0, le=20)
    maxmemory_policy: MaxmemoryPolicy = "noeviction"
    persistence: Literal["none", "rdb", "aof", "rdb+aof"] = "rdb"


class Entrypoint(_Strict):
    """A Traefik entrypoint: a name and the address it listens on."""

    name: Slug
    address: Address


class TraefikSettings(_Strict):
    """A Traefik ingress: entrypoints and the ACME resolvers issuing its certificates."""

    version: Version
    entrypoints: list[Entrypoint] = Field(min_length=1, max_length=50)
    certificate_resolvers: SlugList = Field(default_factory=list, max_length=20)

    @field_validator("entrypoints")
    @classmethod
    def _entrypoint_names(cls, entrypoints: list[Entrypoint]) -> list[Entrypoint]:
        _unique([entrypoint.name for entrypoint in entrypoints])
        return entrypoints


class ObjectStorageSettings(_Strict):
    """An object storage bucket for backups and static assets."""

    provider: Slug
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    region: Slug
    endpoint: Url | None = None


class MonitoringSettings(_Strict):
    """The observability stack changes are verified against."""

    prometheus_url: Url
    alertmanager_url: Url | None = None
    grafana_url: Url | None = None
    retention_days: int | None = Field(default=None, ge=1, le=3650)


# The section of a service spec that carries each type's settings.
_SECTIONS: dict[ServiceType, str] = {
    ServiceType.POSTGRESQL: "postgresql",
    ServiceType.REDIS: "redis",
    ServiceType.TRAEFIK: "traefik",
    ServiceType.OBJECT_STORAGE: "object_storage",
    ServiceType.MONITORING: "monitoring",
}
_SECTION_TYPES = {name: kind for kind, name in _SECTIONS.items()}
# Region-wide services need not live on a cluster.
_CLUSTERLESS = frozenset({ServiceType.OBJECT_STORAGE, ServiceType.MONITORING})


class ServiceSpec(Spec):
    """A shared service tenants depend on; the section named after its type holds settings."""

    type: ServiceType
    display_name: Name | None = None
    description: Text = ""
    criticality: Criticality
    environment: EntityId
    cluster: EntityId | None = None
    owner: EntityId | None = None
    postgresql: PostgresqlSettings | None = None
    redis: RedisSettings | None = None
    traefik: TraefikSettings | None = None
    object_storage: ObjectStorageSettings | None = Field(default=None, alias="object-storage")
    monitoring: MonitoringSettings | None = None

    @field_validator("postgresql", "redis", "traefik", "object_storage", "monitoring")
    @classmethod
    def _only_own_section(cls, value: Any, info: ValidationInfo) -> Any:
        kind, name = info.data.get("type"), info.field_name or ""
        if value is not None and kind is not None and _SECTIONS[kind] != name:
            section = _SECTION_TYPES[name].value
            raise _invalid(f"a {kind.value} service takes no {section} section")
        return value

    @model_validator(mode="after")
    def _own_section_and_cluster(self) -> ServiceSpec:
        if getattr(self, _SECTIONS[self.type]) is None:
            raise _invalid(f"a {self.type.value} service needs a {self.type.value} section")
        if self.cluster is None and self.type not in _CLUSTERLESS:
            raise _invalid(f"a {self.type.value} service needs a cluster")
        return self

    def settings(self) -> BaseModel:
        """The settings section for this service's type."""
        section: BaseModel = getattr(self, _SECTIONS[self.type])
        return section

    def references(self) -> Iterator[Reference]:
        yield Reference(("spec", "environment"), "Environment", self.environment)
        if self.cluster is not None:
            yield Reference(("spec", "cluster"), "Cluster", self.cluster)
        if self.owner is not None:
            yield Reference(("spec", "owner"), "Team", self.owner)
        if self.postgresql is not None and self.postgresql.backup is not None:
            path = ("spec", "postgresql", "backup", "object_storage")
            yield Reference(path, "Service", self.postgresql.backup.object_storage)


class TenantDatabase(_Strict):
    """Where a tenant's Odoo database lives."""

    service: EntityId
    name: DatabaseName


class OdooSettings(_Strict):
    """What Odoo a tenant runs: series, image and installed modules."""

    series: OdooSeries
    image: Image
    modules: Annotated[list[OdooModule], AfterValidator(_unique)] = Field(
        default_factory=list, max_length=2000
    )


class Contact(_Strict):
    """A person at the customer to inform."""

    name: Name
    email: Email
    role: ContactRole


class TenantSpec(Spec):
    """A customer's Odoo deployment: where it runs, what it uses, who approves changes."""

    display_name: Name
    description: Text = ""
    tier: EntityId
    environment: EntityId
    deployment_model: DeploymentModel
    cluster: EntityId
    namespace: EntityId
    database: TenantDatabase
    services: IdList = _ids(100)
    odoo: OdooSettings
    business_services: SlugList = _ids(100)
    timezone: Timezone
    contacts: list[Contact] = Field(default_factory=list, max_length=50)
    approvers: IdList = _ids(50)
    # The tenant's Odoo base URL: the rollout's HTTP probes ask it (docs/rollout.md).
    url: Url | None = None

    def references(self) -> Iterator[Reference]:
        yield Reference(("spec", "tier"), "Tier", self.tier)
        yield Reference(("spec", "environment"), "Environment", self.environment)
        yield Reference(("spec", "cluster"), "Cluster", self.cluster)
        yield Reference(("spec", "database", "service"), "Service", self.database.service)
        yield from _refs("Service", "services", self.services)
        yield from _refs("Person", "approvers", self.approvers)


class TeamSpec(Spec):
    """A team of people; the owner of clusters and services."""

    display_name: Name
    description: Text = ""
    lead: EntityId | None = None
    email: Email | None = None

    def references(self) -> Iterator[Reference]:
        if self.lead is not None:
            yield Reference(("spec", "lead"), "Person", self.lead)


class PersonSpec(Spec):
    """Someone who requests, implements, approves or audits changes."""

    display_name: Name
    email: Email
    teams: IdList = _ids(50)
    roles: Annotated[list[Role], AfterValidator(_unique)] = Field(min_length=1, max_length=20)
    tenants: IdList = _ids(10_000)

    def references(self) -> Iterator[Reference]:
        yield from _refs("Team", "teams", self.teams)
        yield from _refs("Tenant", "tenants", self.tenants)


class WindowScope(_Strict):
    """What a window covers: everything (global) or the listed ids and globs."""

    global_: bool = Field(default=False, alias="global")
    clusters: PatternList = _ids(10_000)
    services: PatternList = _ids(10_000)
    tiers: PatternList = _ids(100)
    tenants: PatternList = _ids(100_000)

    @model_validator(mode="after")
    def _selects_something(self) -> WindowScope:
        listed = self.clusters or self.services or self.tiers or self.tenants
        if self.global_ and listed:
            raise _invalid("a global scope covers everything; drop the lists or global")
        if not self.global_ and not listed:
            raise _invalid("the scope selects nothing: set global: true or list ids")
        return self


class WindowExempt(_Strict):
    """Changes a deny window does not hold back, by change type or category.

    With `consent`, an exempted change still starts on an affected tenant only once a
    customer approver of that tenant has consented to this content of the change.
    """

    types: Annotated[list[ChangeType], AfterValidator(_unique)] = Field(default_factory=list)
    categories: Annotated[list[Category], AfterValidator(_unique)] = Field(default_factory=list)
    consent: bool = False


class GeneratorKind(StrEnum):
    """The ERP-aware schedules: closing days at the end of a period, or public holidays."""

    MONTH_END = "month-end"
    QUARTER_END = "quarter-end"
    YEAR_END = "year-end"
    HOLIDAYS = "holidays"


class WindowGenerator(_Strict):
    """An ERP-aware schedule whose occurrences are whole local days.

    `month-end`, `quarter-end` and `year-end` take the last `business_days` business days
    (Monday to Friday, minus the days of the `holidays` calendar when given) of every month,
    of March, June, September and December, or of December. `holidays` takes every day of
    the HolidayCalendar named by `calendar`. Consecutive days make one occurrence.
    """

    kind: GeneratorKind
    business_days: int | None = Field(default=None, ge=1, le=23)
    holidays: EntityId | None = None
    calendar: EntityId | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> WindowGenerator:
        kind = self.kind.value
        if self.kind is GeneratorKind.HOLIDAYS:
            if self.calendar is None:
                raise _invalid("a holidays generator needs calendar: <HolidayCalendar id>")
            if self.business_days is not None or self.holidays is not None:
                raise _invalid("a holidays generator takes calendar only")
        else:
            if self.business_days is None:
                raise _invalid(f"a {kind} generator needs business_days, e.g. 3")
            if self.calendar is not None:
                raise _invalid(
                    f"a {kind} generator names its holiday calendar with holidays:, not calendar:"
                )
        return self

    def calendar_id(self) -> str | None:
        """The HolidayCalendar this generator reads, if any."""
        return self.calendar if self.kind is GeneratorKind.HOLIDAYS else self.holidays


class WindowSpec(Spec):
    """A maintenance or release window (allow) or a freeze or blackout (deny).

    Exactly one schedule: `rrule` or `cron` with a `duration`, an ERP-aware `generator`, or a
    dated `start` and `end`. An `rrule` may take a `start` as its DTSTART. Naive times are in
    the window's timezone. domain/calendar.py computes the occurrences (docs/calendar.md).
    """

    type: WindowType
    purpose: WindowPurpose
    description: Text = ""
    reason: Text = ""
    timezone: Timezone
    rrule: RRule | None = None
    cron: Cron | None = None
    generator: WindowGenerator | None = None
    start: When | None = None
    end: When | None = None
    duration: Duration | None = None
    scope: WindowScope
    match: Literal["any", "all"] = "any"
    exempt: WindowExempt = Field(default_factory=WindowExempt)
    allow_overrun: bool = False

    @model_validator(mode="after")
    def _schedule(self) -> WindowSpec:
        if self.purpose not in _PURPOSES_BY_TYPE[self.type]:
            allowed = " or ".join(p.value for p in _PURPOSES_BY_TYPE[self.type])
            raise _invalid(f"an {self.type.value} window's purpose is {allowed}")
        schedules = [
            name for name in ("rrule", "cron", "generator") if getattr(self, name) is not None
        ]
        if self.end is not None or (self.start is not None and not schedules):
            schedules.append("start/end")
        if len(schedules) != 1:
            given = ", ".join(schedules) if schedules else "none"
            raise _invalid(
                "give exactly one schedule: rrule, cron, generator, or start and end "
                f"(given: {given})"
            )
        if schedules[0] == "start/end":
            self._check_dates()
        elif schedules[0] == "generator":
            if self.duration is not None:
                raise _invalid("a generator window takes no duration: it covers whole days")
            if self.start is not None:
                raise _invalid("a generator window takes no start")
        else:
            if self.duration is None:
                raise _invalid(f"a window with {schedules[0]} needs a duration, e.g. 4h")
            if self.cron is not None and self.start is not None:
                raise _invalid("a cron window takes no start")
            if self.rrule is not None and self.start is None and "COUNT" in rrule_parts(self.rrule):
                raise _invalid("an rrule with COUNT counts from its start: give start (DTSTART)")
        return self

    def _check_dates(self) -> None:
        if self.start is None or self.end is None:
            raise _invalid("a dated window needs both start and end")
        if self.duration is not None:
            raise _invalid("a dated window takes start and end, not a duration")
        if isinstance(self.start, datetime) is not isinstance(self.end, datetime):
            raise _invalid("start and end must both be dates or both be datetimes")
        if isinstance(self.start, datetime) and isinstance(self.end, datetime):
            if (self.start.tzinfo is None) is not (self.end.tzinfo is None):
                raise _invalid("start and end must both have an offset, or neither")
            if self.end <= self.start:
                raise _invalid("end must be after start")
        elif self.end < self.start:
            raise _invalid("end must not be before start (a date end is inclusive)")

    def references(self) -> Iterator[Reference]:
        # Globs select whatever matches; only a plain id must exist.
        for name, kind in (
            ("clusters", "Cluster"),
            ("services", "Service"),
            ("tiers", "Tier"),
            ("tenants", "Tenant"),
        ):
            for index, ident in enumerate(getattr(self.scope, name)):
                if not _GLOB_CHARS.intersection(ident):
                    yield Reference(("spec", "scope", name, index), kind, ident)
        if self.generator is not None:
            calendar = self.generator.calendar_id()
            if calendar is not None:
                field = "calendar" if self.generator.kind is GeneratorKind.HOLIDAYS else "holidays"
                yield Reference(("spec", "generator", field), "HolidayCalendar", calendar)


def _day(value: Any) -> Any:
    # A holiday is a whole day: a date, never a datetime.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _invalid(f"not an ISO 8601 date: {value!r} (e.g. 2026-12-25)")


Day = Annotated[date, BeforeValidator(_day)]


class Holiday(_Strict):
    """One public holiday: a date and its name."""

    date: Day
    name: Name


class HolidayCalendarSpec(Spec):
    """Public holidays as data, kept in the catalog (no network): the days a window's
    `holidays` generator blocks, or that month/quarter/year-end generators skip as
    non-business days."""

    display_name: Name
    description: Text = ""
    dates: list[Holiday] = Field(default_factory=list, max_length=5000)

    @field_validator("dates")
    @classmethod
    def _unique_dates(cls, holidays: list[Holiday]) -> list[Holiday]:
        seen: dict[date, Holiday] = {}
        for holiday in holidays:
            first = seen.setdefault(holiday.date, holiday)
            if first is not holiday:
                raise _invalid(
                    f"{holiday.date.isoformat()} is listed more than once "
                    f"({first.name!r} and {holiday.name!r})"
                )
        return holidays

    def days(self) -> frozenset[date]:
        """Every date of the calendar."""
        return frozenset(holiday.date for holiday in self.dates)


# --------------------------------------------------------------------------- risk policy

# Risk points: every weight of the policy is a whole number of points on the 0-100 scale.
Points = Annotated[int, Field(ge=0, le=100)]
# What a closed change adds to its team's success score: a bonus or a penalty.
Bonus = Annotated[int, Field(ge=0, le=100)]
Penalty = Annotated[int, Field(ge=-100, le=0)]

# The inherent risk of each category: the defaults a RiskPolicy's `categories` overrides
# one by one (docs/risk.md explains the table).
DEFAULT_CATEGORY_POINTS: dict[Category, int] = {
    Category.APPLICATION_RELEASE: 6,
    Category.MODULE_UPDATE: 6,
    Category.ODOO_UPGRADE: 15,
    Category.INFRASTRUCTURE: 10,
    Category.KUBERNETES: 10,
    Category.SECURITY_PATCH: 6,
    Category.DATABASE_CONFIG: 10,
    Category.DATABASE_MIGRATION: 15,
    Category.DATABASE_UPGRADE: 15,
    Category.REDIS_CONFIG: 6,
    Category.INGRESS_CONFIG: 8,
    Category.SECRETS_ROTATION: 8,
    Category.BACKUP_POLICY: 6,
    Category.MONITORING: 3,
    Category.TENANT_CONFIG: 2,
}


class RiskThresholds(_Strict):
    """The lowest score of each class above low; a score below `medium` is low."""

    medium: int = Field(default=25, ge=1, le=100)
    high: int = Field(default=50, ge=1, le=100)
    critical: int = Field(default=75, ge=1, le=100)

    @model_validator(mode="after")
    def _rising(self) -> RiskThresholds:
        if not self.medium < self.high < self.critical:
            raise _invalid(
                f"thresholds must rise: medium < high < critical (got {self.medium}, "
                f"{self.high}, {self.critical})"
            )
        return self


class BlastRadiusPoints(_Strict):
    """Points for the affected tenants, each weighing its tier's `risk_weight`."""

    per_tier_weight: float = Field(default=1.0, ge=0, le=100)
    max: Points = 20
    platform_wide: Points = 10


class CriticalityPoints(_Strict):
    """Points added for the criticality of the affected service."""

    low: Points = 0
    medium: Points = 1
    high: Points = 3
    critical: Points = 5


class ComponentPoints(_Strict):
    """Points for the most critical kind of component a change touches."""

    database: Points = 15
    ingress: Points = 10
    cache: Points = 6
    storage: Points = 6
    monitoring: Points = 3
    application: Points = 3
    criticality: CriticalityPoints = Field(default_factory=CriticalityPoints)


def _merge_categories(value: dict[Category, int]) -> dict[Category, int]:
    # A policy names only the categories it changes; the rest keep their defaults.
    merged = DEFAULT_CATEGORY_POINTS | value
    return {category: merged[category] for category in Category}


class EnvironmentPoints(_Strict):
    """Points for the environment: production or not, or a fixed value per environment."""

    production: Points = 10
    non_production: Points = 2
    overrides: dict[EntityId, Points] = Field(default_factory=dict, max_length=1000)


class RollbackPoints(_Strict):
    """Points for a rollback that is missing, unrehearsed or impossible."""

    no_plan: Points = 10
    untested: Points = 5
    irreversible: Points = 10


class EvidencePoints(_Strict):
    """Points for missing evidence: test plan, test results, the same artifacts in staging."""

    no_test_plan: Points = 4
    no_test_evidence: Points = 3
    staging_unverified: Points = 5
    staging_unknown: Points = 0


class FindingPoints(_Strict):
    """Points per policy finding, by severity, up to `max`."""

    error: Points = 10
    warning: Points = 3
    max: Points = 20


class ConflictPoints(_Strict):
    """Points per calendar conflict, blocking or not, up to `max`."""

    blocking: Points = 10
    warning: Points = 3
    max: Points = 15


class IncidentPoints(_Strict):
    """What an incident caused by a change adds to its team's success score, by severity."""

    p1: Penalty = -10
    p2: Penalty = -5
    p3: Penalty = -2
    p4: Penalty = 0
    p5: Penalty = 0


class HistoryPoints(_Strict):
    """The team's change success score over a rolling period, and how it turns into risk.

    Each closed change of the team in the change's category scores its close code plus its
    incidents; the risk points are minus the score times `risk_per_score`, at most
    `max_penalty` and at least minus `max_bonus`.
    """

    period_days: int = Field(default=90, ge=1, le=3650)
    successful: Bonus = 3
    successful_with_issues: Penalty = -2
    unsuccessful: Penalty = -5
    incidents: IncidentPoints = Field(default_factory=IncidentPoints)
    risk_per_score: float = Field(default=1.0, ge=0, le=100)
    max_penalty: Points = 15
    max_bonus: Points = 5


class RiskPolicySpec(Spec):
    """The weights and class thresholds of risk scoring; every field has a default.

    A catalog holds at most one RiskPolicy; without one the defaults apply (docs/risk.md).
    """

    description: Text = ""
    thresholds: RiskThresholds = Field(default_factory=RiskThresholds)
    blast_radius: BlastRadiusPoints = Field(default_factory=BlastRadiusPoints)
    components: ComponentPoints = Field(default_factory=ComponentPoints)
    categories: Annotated[dict[Category, Points], AfterValidator(_merge_categories)] = Field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_POINTS)
    )
    environment: EnvironmentPoints = Field(default_factory=EnvironmentPoints)
    rollback: RollbackPoints = Field(default_factory=RollbackPoints)
    evidence: EvidencePoints = Field(default_factory=EvidencePoints)
    policy_findings: FindingPoints = Field(default_factory=FindingPoints)
    calendar_conflicts: ConflictPoints = Field(default_factory=ConflictPoints)
    history: HistoryPoints = Field(default_factory=HistoryPoints)

    def references(self) -> Iterator[Reference]:
        for ident in self.environment.overrides:
            yield Reference(("spec", "environment", "overrides", ident), "Environment", ident)


# --------------------------------------------------------------------------- approval policy

# The risk classes by name, lowest first: the values of risk.RiskClass, which the catalog
# cannot import (risk imports the catalog); a unit test keeps the two in step.
RISK_CLASSES: tuple[str, ...] = ("low", "medium", "high", "critical")
RiskClassName = Literal["low", "medium", "high", "critical"]

# The roles an approval group may ask for. Customer approvers are asked for per tenant
# (`customer_approvers`); requesters, implementers, auditors and admins approve nothing.
APPROVING_ROLES: tuple[Role, ...] = (
    Role.APPROVER,
    Role.CAB,
    Role.PLATFORM_LEAD,
    Role.EMERGENCY_APPROVER,
)


def _approving_role(role: Role) -> Role:
    if role is Role.CUSTOMER_APPROVER:
        raise _invalid(
            "customer approvers are asked for per tenant: use customer_approvers: "
            "dedicated-tenants (or all-tenants) instead of role"
        )
    if role not in APPROVING_ROLES:
        allowed = ", ".join(r.value for r in APPROVING_ROLES)
        raise _invalid(f"a {role.value} approves nothing; the role is one of {allowed}")
    return role


ApprovingRole = Annotated[Role, AfterValidator(_approving_role)]


class CustomerApprovers(StrEnum):
    """Which affected tenants need their own customer approvers' consent."""

    DEDICATED_TENANTS = "dedicated-tenants"  # dedicated-namespace and dedicated-cluster
    ALL_TENANTS = "all-tenants"


class ApprovalMatch(_Strict):
    """When a rule applies: every condition given holds; a list holds for any of its values.

    An empty match holds for every change. `deployment_models` holds when at least one
    affected tenant has one of the models; `risk_classes` never holds for a change that has
    not been assessed; `production` is the change environment's flag (an environment the
    catalog does not know counts as production).
    """

    types: Annotated[list[ChangeType], AfterValidator(_unique)] = Field(
        default_factory=list, max_length=3
    )
    categories: Annotated[list[Category], AfterValidator(_unique)] = Field(
        default_factory=list, max_length=50
    )
    risk_classes: Annotated[list[RiskClassName], AfterValidator(_unique)] = Field(
        default_factory=list, max_length=4
    )
    environments: IdList = _ids(1000)
    deployment_models: Annotated[list[DeploymentModel], AfterValidator(_unique)] = Field(
        default_factory=list, max_length=3
    )
    production: bool | None = None


class ApprovalGroup(_Strict):
    """Who must approve: `count` people holding `role`, or `count` customer approvers of each
    affected tenant that `customer_approvers` selects (one of the two)."""

    role: ApprovingRole | None = None
    customer_approvers: CustomerApprovers | None = None
    count: int = Field(default=1, ge=1, le=20)

    @model_validator(mode="after")
    def _one_of(self) -> ApprovalGroup:
        if (self.role is None) is (self.customer_approvers is None):
            raise _invalid("a group gives role or customer_approvers (exactly one of them)")
        return self

    @property
    def key(self) -> str:
        """`cab`, or `customer-approvers:dedicated-tenants`: what the group asks for."""
        if self.role is not None:
            return self.role.value
        assert self.customer_approvers is not None
        return f"customer-approvers:{self.customer_approvers.value}"


class ApprovalRule(_Strict):
    """A named rule: when it applies, and the groups whose approvals it then requires."""

    name: Slug
    description: Text = ""
    when: ApprovalMatch = Field(default_factory=ApprovalMatch)
    require: list[ApprovalGroup] = Field(min_length=1, max_length=20)

    @field_validator("require")
    @classmethod
    def _distinct_groups(cls, groups: list[ApprovalGroup]) -> list[ApprovalGroup]:
        _unique([group.key for group in groups])
        return groups


class RetrospectiveReview(_Strict):
    """The review every emergency change gets after the fact: by whom, and how soon."""

    within: Duration = Field(default=timedelta(hours=48))
    role: ApprovingRole = Role.CAB


def _rule(name: str, description: str, when: ApprovalMatch, *groups: ApprovalGroup) -> ApprovalRule:
    return ApprovalRule(name=name, description=description, when=when, require=list(groups))


_PLANNED = [ChangeType.NORMAL, ChangeType.STANDARD]

# The rules without an ApprovalPolicy (docs/approvals.md has the table). A standard change
# here is one no template covers: it is approved like a normal change.
DEFAULT_APPROVAL_RULES: tuple[ApprovalRule, ...] = (
    _rule(
        "low-risk",
        "A low-risk change: one peer approver.",
        ApprovalMatch(types=_PLANNED, risk_classes=["low"]),
        ApprovalGroup(role=Role.APPROVER),
    ),
    _rule(
        "medium-risk",
        "A medium-risk change: one approver.",
        ApprovalMatch(types=_PLANNED, risk_classes=["medium"]),
        ApprovalGroup(role=Role.APPROVER),
    ),
    _rule(
        "high-risk",
        "A high-risk change: a platform lead and a CAB member.",
        ApprovalMatch(types=_PLANNED, risk_classes=["high"]),
        ApprovalGroup(role=Role.PLATFORM_LEAD),
        ApprovalGroup(role=Role.CAB),
    ),
    _rule(
        "critical-risk",
        "A critical change: a CAB quorum of two, a platform lead, and the customer "
        "approvers of every affected dedicated tenant whose business services are touched.",
        ApprovalMatch(types=_PLANNED, risk_classes=["critical"]),
        ApprovalGroup(role=Role.CAB, count=2),
        ApprovalGroup(role=Role.PLATFORM_LEAD),
        ApprovalGroup(customer_approvers=CustomerApprovers.DEDICATED_TENANTS),
    ),
    _rule(
        "emergency",
        "An emergency change: one emergency approver now, a CAB retrospective after.",
        ApprovalMatch(types=[ChangeType.EMERGENCY]),
        ApprovalGroup(role=Role.EMERGENCY_APPROVER),
    ),
)


class ApprovalPolicySpec(Spec):
    """Who must approve which change, and for how long an approval holds.

    A catalog holds at most one ApprovalPolicy; without one the defaults apply. Every rule
    whose `when` holds applies, and their requirements add up (docs/approvals.md). `rules`
    left out means the default rules; given, they replace the defaults unless
    `include_default_rules` keeps the defaults first.
    """

    description: Text = ""
    rules: Annotated[list[ApprovalRule], Field(min_length=1, max_length=500)] | None = None
    include_default_rules: bool = False
    expire_after: Duration = Field(default=timedelta(days=14))
    retrospective: RetrospectiveReview = Field(default_factory=RetrospectiveReview)

    @model_validator(mode="after")
    def _rule_names(self) -> ApprovalPolicySpec:
        if self.include_default_rules and self.rules is None:
            raise _invalid("include_default_rules adds the defaults to rules; give rules too")
        names = [rule.name for rule in self.effective_rules()]
        if len(set(names)) != len(names):
            defaults = {rule.name for rule in DEFAULT_APPROVAL_RULES}
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    clash = (
                        " (a default rule's name)"
                        if self.include_default_rules and (name in defaults)
                        else ""
                    )
                    raise _invalid(f"rule name {name!r} is used twice{clash}")
                seen.add(name)
        return self

    def effective_rules(self) -> tuple[ApprovalRule, ...]:
        """The rules that apply, in order: the defaults, the given rules, or both."""
        if self.rules is None:
            return DEFAULT_APPROVAL_RULES
        if self.include_default_rules:
            return (*DEFAULT_APPROVAL_RULES, *self.rules)
        return tuple(self.rules)

    def references(self) -> Iterator[Reference]:
        for index, rule in enumerate(self.rules or ()):
            for position, ident in enumerate(rule.when.environments):
                path = ("spec", "rules", index, "when", "environments", position)
                yield Reference(path, "Environment", ident)


# --------------------------------------------------------------------------- standard templates


class CountRange(_Strict):
    """From `min` to `max` items, both included."""

    min: int = Field(default=0, ge=0, le=100_000)
    max: int = Field(default=0, ge=0, le=100_000)

    @model_validator(mode="after")
    def _ordered(self) -> CountRange:
        if self.max < self.min:
            raise _invalid(f"max ({self.max}) must be at least min ({self.min})")
        return self


class TargetShape(_Strict):
    """What a change from a template may target. Nothing by default: a template allows only
    what it names (how many tenants, services, clusters; selectors; the service types)."""

    tenants: CountRange = Field(default_factory=CountRange)
    services: CountRange = Field(default_factory=CountRange)
    clusters: CountRange = Field(default_factory=CountRange)
    selectors: bool = False
    service_types: Annotated[list[ServiceType], AfterValidator(_unique)] = Field(
        default_factory=list, max_length=len(ServiceType)
    )

    @model_validator(mode="after")
    def _allows_something(self) -> TargetShape:
        if not (self.tenants.max or self.services.max or self.clusters.max or self.selectors):
            raise _invalid(
                "the template allows no target: give a max for tenants, services "
                "or clusters, or selectors: true"
            )
        return self


class StandardTemplateSpec(Spec):
    """A pre-approved standard change: a change that fits it and whose assessed risk is at
    most `max_risk_class` is authorized without approvals (docs/approvals.md).

    `metadata.name` names the template; `version` goes up whenever its meaning changes, and
    every change authorized from it records the name and version it matched.
    """

    display_name: Name
    description: Text = ""
    version: int = Field(ge=1, le=1_000_000)
    owner: EntityId | None = None
    categories: Annotated[list[Category], AfterValidator(_unique)] = Field(
        min_length=1, max_length=len(Category)
    )
    environments: IdList = _ids(1000)
    targets: TargetShape
    max_risk_class: RiskClassName
    procedure: Text = ""

    def references(self) -> Iterator[Reference]:
        if self.owner is not None:
            yield Reference(("spec", "owner"), "Team", self.owner)
        yield from _refs("Environment", "environments", self.environments)


class SchedulingPolicySpec(conflicts.SchedulingPolicySpec, Spec):
    """How changes are booked: conflict severities, wave size and gap, horizon, the canary
    label (docs/scheduling.md). At most one per catalog; without one the defaults apply."""


# --------------------------------------------------------------------------- entities

SpecT = TypeVar("SpecT", bound=Spec)


class PolicyConfigSpec(policy_config.PolicyConfigSpec, Spec):
    """How strict the policy gates are (docs/policy.md); at most one per catalog."""


class WaiverSpec(policy_config.WaiverSpec, Spec):
    """An accepted, expiring exception to a policy rule (docs/policy.md#waivers)."""

    def references(self) -> Iterator[Reference]:
        yield Reference(("spec", "owner"), "Person", self.owner)
        yield Reference(("spec", "approved_by"), "Person", self.approved_by)


class PolicyRuleSpec(policy_config.PolicyRuleSpec, Spec):
    """A custom policy rule in CEL; its rule id is `custom.<name>` (docs/policy.md)."""


class GitOpsRepositorySpec(gitops.GitOpsRepositorySpec, Spec):
    """The GitOps repository and how its paths map to tenants, services and clusters
    (docs/gitops.md); at most one per catalog."""


class Metadata(_Strict):
    """The entity's id and free-form labels and annotations."""

    name: EntityId
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=100)
    annotations: dict[LabelKey, Annotated[str, StringConstraints(max_length=10_000)]] = Field(
        default_factory=dict, max_length=100
    )


class Document(_Strict, Generic[SpecT]):
    """A whole catalog document: the envelope around one kind's spec."""

    apiVersion: Literal["changegate.io/v1"]
    kind: str
    metadata: Metadata
    spec: SpecT


@dataclass(frozen=True, slots=True, eq=False)
class Entity(Generic[SpecT]):
    """One catalog entity with the place it was defined."""

    kind: str
    id: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: SpecT
    file: str
    line: int

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape used by the API and the CLI's --json."""
        return {
            "kind": self.kind,
            "id": self.id,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "spec": self.spec.model_dump(mode="json", by_alias=True),
            "file": self.file,
            "line": self.line,
        }


class DocumentLike(Protocol):
    """A parsed source document, as the YAML adapter provides it."""

    @property
    def file(self) -> str: ...
    @property
    def index(self) -> int: ...
    @property
    def line(self) -> int: ...
    @property
    def data(self) -> Any: ...
    def locate(self, path: tuple[str | int, ...]) -> int | None: ...


class Finding(NamedTuple):
    """A rule broken by an entity: the field path under the document and what is wrong."""

    entity: Entity[Any]
    path: tuple[str | int, ...]
    message: str


@dataclass(frozen=True, slots=True)
class KindInfo:
    """How one kind is registered: its spec model, its plural, its cross-entity rules."""

    kind: str
    spec: type[Spec]
    plural: str
    aliases: tuple[str, ...] = ()
    check: Callable[[Catalog], Iterable[Finding]] | None = None


# --------------------------------------------------------------------------- the catalog

TenantGroup = tuple[Entity[TenantSpec], ...]


def _add(table: dict[str, list[Any]], key: str, entity: Entity[Any]) -> None:
    found = table.get(key)
    if found is None:
        table[key] = [entity]
    else:
        found.append(entity)


def _frozen(table: dict[str, list[Any]]) -> dict[str, tuple[Any, ...]]:
    return {key: tuple(entities) for key, entities in table.items()}


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    """Lookup tables over a catalog: who uses what, so a question costs what its answer does.

    Impact analysis asks "which tenants use service X / run on cluster Y / are gold": with
    these tables the cost is the size of the answer, not of the platform. Each maps a key to
    the entities having it, in file order; a key nobody has is absent (use `.get(key, ())`).
    """

    tenants_by_database_service: Mapping[str, TenantGroup]
    """Tenants whose `database.service` is the key."""
    tenants_by_service: Mapping[str, TenantGroup]
    """Tenants listing the key in `services` (`database.service` is indexed apart, above)."""
    tenants_by_cluster: Mapping[str, TenantGroup]
    tenants_by_environment: Mapping[str, TenantGroup]
    tenants_by_tier: Mapping[str, TenantGroup]
    tenants_by_odoo_series: Mapping[str, TenantGroup]
    tenants_by_deployment_model: Mapping[str, TenantGroup]
    """Keyed by the model's value, e.g. `dedicated-cluster`."""
    services_by_cluster: Mapping[str, tuple[Entity[ServiceSpec], ...]]
    """Services hosted on the cluster; region-wide services (no cluster) are in none."""

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogIndex:
        """Build every table in one pass over the tenants and one over the services."""
        by_database: dict[str, list[Any]] = {}
        by_service: dict[str, list[Any]] = {}
        by_cluster: dict[str, list[Any]] = {}
        by_environment: dict[str, list[Any]] = {}
        by_tier: dict[str, list[Any]] = {}
        by_series: dict[str, list[Any]] = {}
        by_model: dict[str, list[Any]] = {}
        for tenant in catalog.tenants.values():
            spec = tenant.spec
            _add(by_database, spec.database.service, tenant)
            for used in spec.services:
                _add(by_service, used, tenant)
            _add(by_cluster, spec.cluster, tenant)
            _add(by_environment, spec.environment, tenant)
            _add(by_tier, spec.tier, tenant)
            _add(by_series, spec.odoo.series, tenant)
            _add(by_model, spec.deployment_model.value, tenant)
        hosted: dict[str, list[Any]] = {}
        for service in catalog.services.values():
            if service.spec.cluster is not None:
                _add(hosted, service.spec.cluster, service)
        return cls(
            tenants_by_database_service=_frozen(by_database),
            tenants_by_service=_frozen(by_service),
            tenants_by_cluster=_frozen(by_cluster),
            tenants_by_environment=_frozen(by_environment),
            tenants_by_tier=_frozen(by_tier),
            tenants_by_odoo_series=_frozen(by_series),
            tenants_by_deployment_model=_frozen(by_model),
            services_by_cluster=_frozen(hosted),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Catalog:
    """The whole platform as validated from one catalog folder, built once and then read."""

    digest: str
    commit: str | None
    root: str
    entities: Mapping[str, Mapping[str, Entity[Any]]]
    dirty: bool = False
    # Built on first use by `index`; not part of the catalog's identity or its constructor.
    _index: CatalogIndex | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def index(self) -> CatalogIndex:
        """Lookup tables (tenants by service, cluster, tier...), built on first use and kept.

        A catalog is read-only once built, so the tables never go stale. Two threads racing
        to the first use both build the same tables; either copy is kept.
        """
        index = self._index
        if index is None:
            index = CatalogIndex.of(self)
            # Frozen dataclass: a cache is the one attribute set after construction.
            object.__setattr__(self, "_index", index)
        return index

    @property
    def tiers(self) -> Mapping[str, Entity[TierSpec]]:
        """Tiers by id, in file order."""
        return self.entities["Tier"]

    @property
    def environments(self) -> Mapping[str, Entity[EnvironmentSpec]]:
        """Environments by id, in file order."""
        return self.entities["Environment"]

    @property
    def clusters(self) -> Mapping[str, Entity[ClusterSpec]]:
        """Clusters by id, in file order."""
        return self.entities["Cluster"]

    @property
    def services(self) -> Mapping[str, Entity[ServiceSpec]]:
        """Shared services by id, in file order."""
        return self.entities["Service"]

    @property
    def tenants(self) -> Mapping[str, Entity[TenantSpec]]:
        """Tenants by id, in file order."""
        return self.entities["Tenant"]

    @property
    def teams(self) -> Mapping[str, Entity[TeamSpec]]:
        """Teams by id, in file order."""
        return self.entities["Team"]

    @property
    def people(self) -> Mapping[str, Entity[PersonSpec]]:
        """People by id, in file order."""
        return self.entities["Person"]

    @property
    def windows(self) -> Mapping[str, Entity[WindowSpec]]:
        """Windows by id, in file order."""
        return self.entities["Window"]

    @property
    def holiday_calendars(self) -> Mapping[str, Entity[HolidayCalendarSpec]]:
        """Holiday calendars by id, in file order."""
        return self.entities["HolidayCalendar"]

    @property
    def risk_policies(self) -> Mapping[str, Entity[RiskPolicySpec]]:
        """Risk policies by id: none or one in a valid catalog."""
        return self.entities["RiskPolicy"]

    @property
    def risk_policy(self) -> Entity[RiskPolicySpec] | None:
        """The catalog's risk policy, or None when the defaults apply."""
        return next(iter(self.risk_policies.values()), None)

    @property
    def approval_policies(self) -> Mapping[str, Entity[ApprovalPolicySpec]]:
        """Approval policies by id: none or one in a valid catalog."""
        return self.entities["ApprovalPolicy"]

    @property
    def approval_policy(self) -> Entity[ApprovalPolicySpec] | None:
        """The catalog's approval policy, or None when the default rules apply."""
        return next(iter(self.approval_policies.values()), None)

    @property
    def scheduling_policy(self) -> Entity[SchedulingPolicySpec] | None:
        """The catalog's scheduling policy, or None when the defaults apply."""
        return next(iter(self.entities["SchedulingPolicy"].values()), None)

    @property
    def gitops_repository(self) -> Entity[GitOpsRepositorySpec] | None:
        """The catalog's GitOps repository, or None when it declares none."""
        return next(iter(self.entities["GitOpsRepository"].values()), None)

    @property
    def standard_templates(self) -> Mapping[str, Entity[StandardTemplateSpec]]:
        """Pre-approved standard change templates by name, in file order."""
        return self.entities["StandardTemplate"]

    @property
    def policy_config(self) -> Entity[PolicyConfigSpec] | None:
        """The catalog's policy gate settings, or None when the defaults apply."""
        return next(iter(self.entities["PolicyConfig"].values()), None)

    @property
    def waivers(self) -> Mapping[str, Entity[WaiverSpec]]:
        """Policy waivers by id, in file order (expired ones included)."""
        return self.entities["Waiver"]

    @property
    def policy_rules(self) -> Mapping[str, Entity[PolicyRuleSpec]]:
        """Custom CEL policy rules by name, in file order."""
        return self.entities["PolicyRule"]

    def get(self, kind: str, id: str) -> Entity[Any]:
        """The entity of that kind and id, or NotFound naming both."""
        name = normalize_kind(kind)
        entity = self.entities[name].get(id)
        if entity is None:
            raise NotFound(f"no {name} {id!r} in the catalog")
        return entity

    def list(self, kind: str) -> builtins.list[Entity[Any]]:
        """Every entity of a kind, in file order."""
        return builtins.list(self.entities[normalize_kind(kind)].values())

    def person(self, id: str) -> Entity[PersonSpec] | None:
        """The person with that id, or None: callers decide whether a stranger is an error."""
        return self.people.get(id)

    def as_dict(self) -> dict[str, Any]:
        """A summary: digest, commit and how many entities of each kind."""
        return {
            "digest": self.digest,
            "commit": self.commit,
            "dirty": self.dirty,
            "root": self.root,
            "counts": {info.plural: len(self.entities[info.kind]) for info in REGISTRY},
        }


# --------------------------------------------------------------------------- rules


def _check_environments(catalog: Catalog) -> Iterator[Finding]:
    first_by_order: dict[int, Entity[EnvironmentSpec]] = {}
    for env in catalog.environments.values():
        first = first_by_order.setdefault(env.spec.order, env)
        if first is not env:
            yield Finding(
                env,
                ("spec", "order"),
                f"order {env.spec.order} is already used by environment {first.id!r}",
            )


def _differ(catalog: Catalog, one: str, other: str) -> bool:
    """Two known environments that differ; an unknown one is already reported as such."""
    known = catalog.environments
    return one != other and one in known and other in known


def _check_services(catalog: Catalog) -> Iterator[Finding]:
    for service in catalog.services.values():
        spec = service.spec
        cluster = catalog.clusters.get(spec.cluster) if spec.cluster else None
        if cluster is not None and _differ(catalog, cluster.spec.environment, spec.environment):
            yield Finding(
                service,
                ("spec", "environment"),
                f"environment {spec.environment!r} differs from cluster "
                f"{cluster.id!r}'s environment {cluster.spec.environment!r}",
            )
        if spec.postgresql is not None and spec.postgresql.backup is not None:
            target = catalog.services.get(spec.postgresql.backup.object_storage)
            if target is not None and target.spec.type is not ServiceType.OBJECT_STORAGE:
                yield Finding(
                    service,
                    ("spec", "postgresql", "backup", "object_storage"),
                    f"{target.id!r} is a {target.spec.type.value} service, not object-storage",
                )


_MODEL_CLUSTER_MODE = {
    DeploymentModel.MULTI_TENANT: ClusterMode.SHARED,
    DeploymentModel.DEDICATED_NAMESPACE: ClusterMode.SHARED,
    DeploymentModel.DEDICATED_CLUSTER: ClusterMode.DEDICATED,
}


def _check_tenants(catalog: Catalog) -> Iterator[Finding]:
    databases: dict[tuple[str, str], Entity[TenantSpec]] = {}
    # (cluster, namespace) -> first tenant there: only multi-tenant Odoo shares a namespace.
    namespaces: dict[tuple[str, str], Entity[TenantSpec]] = {}
    shared = DeploymentModel.MULTI_TENANT
    for tenant in catalog.tenants.values():
        spec = tenant.spec
        yield from _tenant_cluster(catalog, tenant)
        yield from _tenant_services(catalog, tenant)
        yield from _tenant_approvers(catalog, tenant)
        first = databases.setdefault((spec.database.service, spec.database.name), tenant)
        if first is not tenant:
            yield Finding(
                tenant,
                ("spec", "database", "name"),
                f"database {spec.database.name!r} on {spec.database.service!r} already "
                f"belongs to tenant {first.id!r}",
            )
        sharer = namespaces.setdefault((spec.cluster, spec.namespace), tenant)
        if sharer is not tenant and not (
            spec.deployment_model is shared and sharer.spec.deployment_model is shared
        ):
            yield Finding(
                tenant,
                ("spec", "namespace"),
                f"namespace {spec.namespace!r} on {spec.cluster!r} is already used by "
                f"tenant {sharer.id!r}; only multi-tenant tenants share a namespace",
            )


def _tenant_cluster(catalog: Catalog, tenant: Entity[TenantSpec]) -> Iterator[Finding]:
    spec = tenant.spec
    cluster = catalog.clusters.get(spec.cluster)
    if cluster is None:
        return
    expected = _MODEL_CLUSTER_MODE[spec.deployment_model]
    if cluster.spec.mode is not expected:
        yield Finding(
            tenant,
            ("spec", "cluster"),
            f"a {spec.deployment_model.value} tenant needs a {expected.value} "
            f"cluster; {cluster.id!r} is {cluster.spec.mode.value}",
        )
    if _differ(catalog, cluster.spec.environment, spec.environment):
        yield Finding(
            tenant,
            ("spec", "cluster"),
            f"cluster {cluster.id!r} is in environment "
            f"{cluster.spec.environment!r}, the tenant in {spec.environment!r}",
        )


def _tenant_approvers(catalog: Catalog, tenant: Entity[TenantSpec]) -> Iterator[Finding]:
    for index, person_id in enumerate(tenant.spec.approvers):
        person = catalog.people.get(person_id)
        if person is None:
            continue
        if Role.CUSTOMER_APPROVER not in person.spec.roles:
            yield Finding(
                tenant, ("spec", "approvers", index), f"{person_id!r} is not a customer-approver"
            )
        elif tenant.id not in person.spec.tenants:
            yield Finding(
                tenant,
                ("spec", "approvers", index),
                f"{person_id!r} does not list tenant {tenant.id!r} in spec.tenants",
            )


def _tenant_services(catalog: Catalog, tenant: Entity[TenantSpec]) -> Iterator[Finding]:
    spec = tenant.spec
    used: list[tuple[tuple[str | int, ...], str]] = [
        (("spec", "database", "service"), spec.database.service)
    ]
    used += [(("spec", "services", i), ident) for i, ident in enumerate(spec.services)]
    for path, ident in used:
        service = catalog.services.get(ident)
        if service is None:
            continue
        if path[1] == "database" and service.spec.type is not ServiceType.POSTGRESQL:
            yield Finding(
                tenant, path, f"{ident!r} is a {service.spec.type.value} service, not postgresql"
            )
        if _differ(catalog, service.spec.environment, spec.environment):
            yield Finding(
                tenant,
                path,
                f"service {ident!r} is in environment {service.spec.environment!r}, "
                f"the tenant in {spec.environment!r}",
            )


def _check_teams(catalog: Catalog) -> Iterator[Finding]:
    for team in catalog.teams.values():
        lead = catalog.people.get(team.spec.lead) if team.spec.lead else None
        if lead is not None and team.id not in lead.spec.teams:
            yield Finding(
                team,
                ("spec", "lead"),
                f"lead {lead.id!r} is not a member (add {team.id!r} to their teams)",
            )


def _check_people(catalog: Catalog) -> Iterator[Finding]:
    for person in catalog.people.values():
        approves = Role.CUSTOMER_APPROVER in person.spec.roles
        if approves and not person.spec.tenants:
            yield Finding(
                person,
                ("spec", "tenants"),
                "a customer-approver needs the tenants they approve for",
            )
        elif person.spec.tenants and not approves:
            yield Finding(person, ("spec", "tenants"), "only a customer-approver lists tenants")


def _at_most_one(kind: str) -> Callable[[Catalog], Iterator[Finding]]:
    """The check of a kind a catalog holds at most once (a policy)."""

    def check(catalog: Catalog) -> Iterator[Finding]:
        policies = list(catalog.entities[kind].values())
        for extra in policies[1:]:
            first = policies[0]
            yield Finding(
                extra,
                ("metadata", "name"),
                f"a catalog holds at most one {kind}; {first.id!r} is defined at "
                f"{first.file}:{first.line}",
            )

    return check


REGISTRY: tuple[KindInfo, ...] = (
    KindInfo("Tier", TierSpec, "tiers"),
    KindInfo("Environment", EnvironmentSpec, "environments", ("env", "envs"), _check_environments),
    KindInfo("Cluster", ClusterSpec, "clusters"),
    KindInfo("Service", ServiceSpec, "services", (), _check_services),
    KindInfo("Tenant", TenantSpec, "tenants", (), _check_tenants),
    KindInfo("Team", TeamSpec, "teams", (), _check_teams),
    KindInfo("Person", PersonSpec, "people", ("persons",), _check_people),
    KindInfo("Window", WindowSpec, "windows", (), None),
    KindInfo(
        "HolidayCalendar",
        HolidayCalendarSpec,
        "holidaycalendars",
        ("holiday-calendar", "holiday-calendars", "holidays"),
    ),
    KindInfo(
        "RiskPolicy",
        RiskPolicySpec,
        "riskpolicies",
        ("risk-policy", "risk-policies"),
        _at_most_one("RiskPolicy"),
    ),
    KindInfo(
        "ApprovalPolicy",
        ApprovalPolicySpec,
        "approvalpolicies",
        ("approval-policy", "approval-policies"),
        _at_most_one("ApprovalPolicy"),
    ),
    KindInfo(
        "SchedulingPolicy",
        SchedulingPolicySpec,
        "schedulingpolicies",
        ("scheduling-policy", "scheduling-policies"),
        _at_most_one("SchedulingPolicy"),
    ),
    KindInfo(
        "StandardTemplate",
        StandardTemplateSpec,
        "standardtemplates",
        ("standard-template", "standard-templates", "template", "templates"),
    ),
    KindInfo(
        "PolicyConfig",
        PolicyConfigSpec,
        "policyconfigs",
        ("policy-config", "policy-configs"),
        _at_most_one("PolicyConfig"),
    ),
    KindInfo("Waiver", WaiverSpec, "waivers"),
    KindInfo("PolicyRule", PolicyRuleSpec, "policyrules", ("policy-rule", "policy-rules")),
    KindInfo(
        "GitOpsRepository",
        GitOpsRepositorySpec,
        "gitopsrepositories",
        ("gitops-repository", "gitops-repositories", "gitops"),
        _at_most_one("GitOpsRepository"),
    ),
)
KINDS: dict[str, type[BaseModel]] = {info.kind: info.spec for info in REGISTRY}
# The envelope model of each kind, so one validation covers a whole document.
_DOCUMENTS: dict[str, type[Document[Any]]] = {
    info.kind: Document[info.spec]  # type: ignore[name-defined]
    for info in REGISTRY
}
_KIND_NAMES: dict[str, str] = {
    name: info.kind for info in REGISTRY for name in (info.kind.lower(), info.plural, *info.aliases)
}


def normalize_kind(text: str) -> str:
    """`tenants`, `tenant` or `Tenant` to `Tenant`; anything else is InvalidInput."""
    kind = _KIND_NAMES.get(text.strip().lower())
    if kind is None:
        raise InvalidInput(
            [Problem(f"unknown kind {text!r}; expected one of: {', '.join(KINDS)}", field="kind")]
        )
    return kind


# --------------------------------------------------------------------------- building


def _envelope_problems(doc: DocumentLike) -> list[Problem]:
    data = doc.data
    if not isinstance(data, dict):
        return [
            Problem(
                "a catalog document is a mapping with apiVersion, kind, metadata and spec",
                file=doc.file,
                line=doc.line,
            )
        ]
    problems = []
    if data.get("apiVersion") != API_VERSION:
        got = data.get("apiVersion")
        shown = "missing" if got is None else f"{got!r}"
        problems.append(
            Problem(
                f"apiVersion must be {API_VERSION} (got {shown})",
                file=doc.file,
                line=doc.locate(("apiVersion",)),
                field="apiVersion",
            )
        )
    kind = data.get("kind")
    if kind not in KINDS:
        hint = ""
        if isinstance(kind, str) and kind.lower() in _KIND_NAMES:
            hint = f" (did you mean {_KIND_NAMES[kind.lower()]}?)"
        shown = "missing" if kind is None else f"{kind!r}"
        problems.append(
            Problem(
                f"kind is {shown}{hint}; expected one of: {', '.join(KINDS)}",
                file=doc.file,
                line=doc.locate(("kind",)),
                field="kind",
            )
        )
    return problems


def _suggestion(ident: str, candidates: Mapping[str, Any]) -> str:
    if len(candidates) > _SUGGEST_LIMIT:
        return ""
    close = difflib.get_close_matches(ident, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problem(doc: DocumentLike, path: tuple[str | int, ...], message: str) -> Problem:
    return Problem(message, file=doc.file, line=doc.locate(path), field=validation.field_path(path))


@dataclass
class _Build:
    """The state of one build: entities so far, where each came from, problems found."""

    entities: dict[str, dict[str, Entity[Any]]] = field(
        default_factory=lambda: {info.kind: {} for info in REGISTRY}
    )
    sources: dict[tuple[str, str], DocumentLike] = field(default_factory=dict)
    # Every (kind, id) a document claims, valid or not: duplicates are caught either way,
    # and a reference to an invalid entity is not reported again as unknown.
    claimed: dict[tuple[str, str], DocumentLike] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, doc: DocumentLike) -> None:
        duplicate = self.claim(doc)
        envelope = _envelope_problems(doc)
        if envelope:
            self.problems += envelope
            return
        kind: str = doc.data["kind"]
        try:
            parsed = validation.validate_plain(
                _DOCUMENTS[kind], doc.data, source=doc.file, locate=doc.locate
            )
        except InvalidInput as exc:
            self.problems += exc.problems
            return
        if duplicate:
            return
        ident = parsed.metadata.name
        self.entities[kind][ident] = Entity(
            kind,
            ident,
            parsed.metadata.labels,
            parsed.metadata.annotations,
            parsed.spec,
            doc.file,
            doc.line,
        )
        self.sources[(kind, ident)] = doc

    def claim(self, doc: DocumentLike) -> bool:
        """Note the (kind, id) the document claims; True (and a problem) if already taken."""
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
            return False
        kind, ident = data.get("kind"), data["metadata"].get("name")
        if kind not in KINDS or not isinstance(ident, str):
            return False
        first = self.claimed.setdefault((kind, ident), doc)
        if first is doc:
            return False
        self.problems.append(
            _problem(
                doc,
                ("metadata", "name"),
                f"duplicate {kind} id {ident!r}: also defined at {first.file}:{first.line}",
            )
        )
        return True

    def resolve(self) -> None:
        for kind, entities in self.entities.items():
            for entity in entities.values():
                for ref in entity.spec.references():
                    targets = self.entities[ref.kind]
                    if ref.id not in targets and (ref.kind, ref.id) not in self.claimed:
                        self.problems.append(
                            _problem(
                                self.sources[(kind, entity.id)],
                                ref.path,
                                f"unknown {ref.kind} {ref.id!r}{_suggestion(ref.id, targets)}",
                            )
                        )

    def check(self, catalog: Catalog) -> None:
        for info in REGISTRY:
            if info.check is None:
                continue
            for finding in info.check(catalog):
                source = self.sources[(finding.entity.kind, finding.entity.id)]
                self.problems.append(_problem(source, finding.path, finding.message))


def build(
    documents: Sequence[DocumentLike],
    *,
    digest: str,
    commit: str | None,
    root: str,
    dirty: bool = False,
) -> Catalog:
    """Validate documents into a Catalog, or raise one InvalidInput listing every problem.

    Empty documents (data None) are skipped. Problems are sorted by file and line.
    """
    state = _Build()
    for doc in documents:
        if doc.data is not None:
            state.add(doc)
    state.resolve()
    catalog = Catalog(digest=digest, commit=commit, root=root, entities=state.entities, dirty=dirty)
    state.check(catalog)
    if state.problems:
        state.problems.sort(key=lambda p: (p.file or "", p.line or 0, p.field or "", p.message))
        raise InvalidInput(state.problems)
    return catalog
