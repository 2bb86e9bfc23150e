"""Redis checks: eviction and persistence of what Odoo keeps there, authentication, passwords.

Inputs are `redis.conf` files (Format.REDIS_CONF: `{directive: value}`, directives in lower
case, repeated `save`, `user`, `include`... values joined with a newline) and Kubernetes
ConfigMaps holding a Redis configuration under a data key named `redis.conf` or ending in
`.redis.conf` (as the common Helm charts render it), read the same way; a finding on a
ConfigMap points at that data key.

**Which catalog service a document is**: as for PostgreSQL (postgresql.py): the annotation
`changegate.io/service`, the ConfigMap's name or the file's name before `.redis.conf` (the id
itself, or the id followed by `-` or `.`), or the folder a file is in, naming a Service of type
redis.

**Whether a Redis holds Odoo sessions.** The catalog has no field for it, so: the catalog
service has a label `usage` or an annotation `changegate.io/usage` whose value mentions
`session` (`usage: sessions`); or the service id, the ConfigMap's or file's name mentions
`session` (`redis-sessions`); or the ConfigMap itself carries that label or annotation. A
Redis known to hold sessions makes eviction and lost persistence errors; otherwise they are
warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from changegate.domain.catalog import MaxmemoryPolicy
from changegate.domain.policy import configfiles
from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import Document, Format, Hit, Path, Severity, rule
from changegate.domain.policy.rules.postgresql import service_for, services_of

if TYPE_CHECKING:
    from changegate.domain.catalog import Entity, ServiceSpec

USAGE_KEYS = ("usage", "changegate.io/usage")
# Directives that may be written several times and all count (as the input adapter joins them).
REPEATED = configfiles.REDIS_REPEATED
POLICIES: frozenset[str] = frozenset(get_args(MaxmemoryPolicy))
# `$NAME` / `${NAME}`: a value templated at deploy time (envsubst, a chart's start script).
_PLACEHOLDER = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")


def parse_redis_conf(text: str) -> dict[str, str]:
    """Directives of a redis.conf text, read as the input adapter reads a redis.conf file."""
    return configfiles.redis(text).values


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """One Redis configuration: where it is written, its directives, its catalog service."""

    document: Document
    settings: Mapping[str, str]
    key: str  # the ConfigMap data key it is under, "" for a redis.conf file
    service: Entity[ServiceSpec] | None

    def path(self, directive: str) -> Path:
        """Where a directive is (the data key for a ConfigMap; the file for a missing one)."""
        if self.key:
            return ("data", self.key)
        return (directive,) if directive in self.settings else ()

    @property
    def name(self) -> str:
        return self.document.name or self.document.file

    def get(self, directive: str) -> str | None:
        return self.settings.get(directive)


def _is_redis_key(key: object) -> bool:
    return isinstance(key, str) and (key.lower() == "redis.conf" or key.endswith(".redis.conf"))


def configs(changeset: ChangeSet, context: CheckContext) -> list[RedisConfig]:
    """Every Redis configuration of the change set, with its catalog service."""
    known = services_of(context.catalog, "redis")
    found: list[RedisConfig] = []
    for document in changeset.of_format(Format.REDIS_CONF):
        data = document.data if isinstance(document.data, dict) else {}
        settings = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
        service = service_for(document, known, suffix=".redis.conf")
        found.append(RedisConfig(document, settings, "", service))
    for document in changeset.of_kind("ConfigMap"):
        data = document.get("data")
        if not isinstance(data, dict):
            continue
        for key, text in data.items():
            if _is_redis_key(key) and isinstance(text, str):
                service = service_for(document, known)
                found.append(RedisConfig(document, parse_redis_conf(text), key, service))
    return found


def _usage(labels: object, annotations: object) -> str | None:
    for what, mapping in (("label", labels), ("annotation", annotations)):
        if not isinstance(mapping, dict):
            continue
        for key in USAGE_KEYS:
            value = mapping.get(key)
            if isinstance(value, str) and "session" in value.lower():
                return f"{what} {key}={value}"
    return None


def holds_sessions(config: RedisConfig) -> str | None:
    """Why this Redis is known to hold Odoo sessions, or None when nothing says it does."""
    service = config.service
    if service is not None:
        marked = _usage(service.labels, service.annotations)
        if marked:
            return f"catalog service {service.id} has {marked}"
        if "session" in service.id.lower():
            return f"catalog service {service.id} is named for sessions"
    document = config.document
    if document.format is Format.KUBERNETES:
        marked = _usage(document.metadata.get("labels"), document.metadata.get("annotations"))
        if marked:
            return f"the ConfigMap has {marked}"
    if "session" in config.name.lower():
        return f"{config.name} is named for sessions"
    return None


# --------------------------------------------------------------------------- rules


@rule(
    "redis.maxmemory-policy",
    "Redis eviction does not log Odoo users out",
    Severity.WARNING,
    rationale=(
        "When Redis reaches maxmemory, an evicting policy deletes keys to make room: "
        "allkeys-* picks any key, volatile-* any key with an expiry, and Redis session "
        "stores for Odoo set one on every session. On a Redis holding Odoo sessions, every "
        "evicted session is a user logged out mid-work; on a cache, changing the policy "
        "changes what stays cached."
    ),
    remediation=(
        "Use maxmemory-policy noeviction on a Redis holding sessions (size maxmemory for "
        "the sessions, and alert on used memory), or keep sessions in a Redis of their own; "
        "record any intended policy change in the catalog service's "
        "spec.redis.maxmemory_policy."
    ),
)
def maxmemory_policy(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset, context):
        written = config.get("maxmemory-policy")
        policy = (written or "noeviction").strip().lower()
        shown = (
            f"maxmemory-policy {policy}"
            if written is not None
            else "maxmemory-policy is not set, so Redis uses noeviction"
        )
        path = config.path("maxmemory-policy")
        if policy not in POLICIES:
            yield Hit(
                config.document,
                path,
                f"maxmemory-policy {written!r} is not a Redis policy: Redis refuses to start",
            )
            continue
        sessions = holds_sessions(config)
        if policy != "noeviction" and sessions:
            yield Hit(
                config.document,
                path,
                f"{shown} evicts keys when memory is full, and this Redis holds Odoo sessions "
                f"({sessions}): evicted sessions log users out",
                severity=Severity.ERROR,
            )
            continue
        service = config.service
        settings = service.spec.redis if service is not None else None
        if service is not None and settings is not None:
            if settings.maxmemory_policy != policy:
                yield Hit(
                    config.document,
                    path,
                    f"{shown}: a change from {settings.maxmemory_policy} (catalog service "
                    f"{service.id}); check what it evicts before memory fills up",
                )
        elif policy != "noeviction":
            yield Hit(
                config.document,
                path,
                f"{shown} evicts keys when memory is full; no catalog service matches this "
                "configuration, so changegate cannot tell whether it holds Odoo sessions "
                "(eviction would log users out) or whether the policy changed",
            )


def _rdb_disabled(save: str | None) -> bool:
    """`save ""` turns snapshots off; a later `save <seconds> <changes>` turns them on again."""
    if save is None:
        return False  # Redis's default snapshots
    return not save.split("\n")[-1].strip()


@rule(
    "redis.persistence-disabled",
    "Redis keeps its data across restarts",
    Severity.WARNING,
    rationale=(
        'With `save ""` and `appendonly no` Redis keeps nothing on disk: a restart, an '
        "eviction of the pod or a failover starts empty. For a cache that is a slower hour; "
        "for Odoo sessions it logs every user out, and anything queued in it is lost."
    ),
    remediation=(
        "Keep RDB snapshots (`save 3600 1 300 100 60 10000`) or turn on `appendonly yes` "
        "(both for sessions); if the Redis is a pure cache, record persistence none in the "
        "catalog service's spec.redis.persistence."
    ),
)
def persistence_disabled(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset, context):
        appendonly = (config.get("appendonly") or "no").strip().lower()
        if not _rdb_disabled(config.get("save")) or appendonly == "yes":
            continue
        path = config.path("save")
        sessions = holds_sessions(config)
        service = config.service
        settings = service.spec.redis if service is not None else None
        if sessions:
            yield Hit(
                config.document,
                path,
                'save "" and appendonly no: nothing is written to disk, and this Redis holds '
                f"Odoo sessions ({sessions}): a restart logs every user out",
                severity=Severity.ERROR,
            )
        elif service is None or settings is None:
            yield Hit(
                config.document,
                path,
                'save "" and appendonly no: nothing is written to disk, so a restart starts '
                "empty (no catalog service matches this configuration to tell whether that "
                "is intended)",
            )
        elif settings.persistence != "none":
            yield Hit(
                config.document,
                path,
                'save "" and appendonly no turn persistence off; the catalog service '
                f"{service.id} records {settings.persistence}",
            )


def _acl_requires_auth(users: str | None) -> bool:
    """Whether the `user default ...` lines make unauthenticated connections unusable."""
    if not users:
        return False
    # The default user starts as `on nopass ~* &* +@all`: anyone connecting is it.
    enabled, nopass, seen = True, True, False
    for line in users.split("\n"):
        words = line.split()
        if not words or words[0] != "default":
            continue
        seen = True
        for word in words[1:]:
            lower = word.lower()
            if lower == "on":
                enabled = True
            elif lower == "off":
                enabled = False
            elif lower == "nopass":
                nopass = True
            elif lower in ("resetpass", "reset"):
                nopass = False
                enabled = enabled and lower != "reset"
            elif word.startswith((">", "#")):
                nopass = False  # adding a password clears nopass
    # Without nopass, the default user authenticates only with one of its passwords (none at
    # all after resetpass); switched off, it cannot be used.
    return seen and (not enabled or not nopass)


@rule(
    "redis.no-authentication",
    "Redis requires authentication",
    Severity.ERROR,
    rationale=(
        "Without requirepass or ACL users with passwords, and with protected-mode no, any "
        "pod that can reach the Redis port reads and writes everything in it: Odoo "
        "sessions (taking over logged-in users) and the cached data of every tenant."
    ),
    remediation=(
        "Set a password for the default user (requirepass, or `user default on #<sha256> "
        "...` ACL rules) loaded from a Secret-mounted include, or an aclfile; keep "
        "protected-mode yes until then, and restrict the port with a NetworkPolicy."
    ),
)
def no_authentication(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset, context):
        if (config.get("protected-mode") or "yes").strip().lower() != "no":
            continue
        if (config.get("requirepass") or "").strip() or config.get("aclfile"):
            continue
        if config.get("include") or _acl_requires_auth(config.get("user")):
            continue  # an included file may set the password; changegate cannot see it
        if config.key:
            yield Hit(
                config.document,
                config.path("protected-mode"),
                f"{config.key}: protected-mode no with no requirepass, ACL password or "
                "aclfile: anyone reaching the port has full access, unless the server's "
                "command line adds --requirepass or --aclfile",
                severity=Severity.WARNING,
            )
        else:
            yield Hit(
                config.document,
                config.path("protected-mode"),
                "protected-mode no with no requirepass, ACL password or aclfile: anyone "
                "reaching the port has full access",
            )


def _literal(value: str | None) -> bool:
    text = (value or "").strip()
    return bool(text) and _PLACEHOLDER.match(text) is None


_SECRET_DIRECTIVES = ("requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass")


@rule(
    "redis.password-in-config",
    "No Redis password is written in a committed configuration",
    Severity.WARNING,
    rationale=(
        "A password in redis.conf or a ConfigMap is readable by everyone with access to the "
        "repository, its history and its clones, and by anyone who may read ConfigMaps in "
        "the namespace; rotating it means rewriting history."
    ),
    remediation=(
        "Move the password to a Secret (External Secrets, SealedSecrets or SOPS) mounted as "
        "a file and loaded with `include /etc/redis/secret/auth.conf`, or passed as "
        "--requirepass from an environment variable; write ACL users with `#<sha256>` hashes "
        "instead of `>password`."
    ),
)
def password_in_config(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset, context):
        where = f"{config.key}: " if config.key else ""
        for directive in _SECRET_DIRECTIVES:
            if _literal(config.get(directive)):
                yield Hit(
                    config.document,
                    config.path(directive),
                    f"{where}{directive} holds a literal password",
                )
        for line in (config.get("user") or "").split("\n"):
            words = line.split()
            if words and any(word.startswith(">") and len(word) > 1 for word in words[1:]):
                yield Hit(
                    config.document,
                    config.path("user"),
                    f"{where}ACL user {words[0]} has a literal password (>...)",
                )


RULES = (maxmemory_policy, persistence_disabled, no_authentication, password_in_config)
