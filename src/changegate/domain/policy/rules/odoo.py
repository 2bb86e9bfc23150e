"""Odoo server configuration checks: database manager, master password, proxy mode, database
filter, workers, database user.

Inputs are `odoo.conf` files (Format.ODOO_CONF: the `[options]` section, option names in lower
case, values as written) and Kubernetes ConfigMaps holding an Odoo configuration under a data
key named `odoo.conf`, ending in `.odoo.conf`, or `.odoorc`, read the same way; a finding on a
ConfigMap points at that data key. "Production" is the check's context (`--env` of a production
environment, or the change's environment).

**Booleans as Odoo reads them.** Up to Odoo 18.0, a value in odoo.conf becomes a boolean only
when it is exactly `True`, `true`, `False` or `false`; any other value stays text, and Odoo
tests its truth: `list_db = 0` or `proxy_mode = no` are *true*, an empty value is false.
From 19.0, boolean options take `1/yes/true/on` and `0/no/false/off` in any case and refuse
anything else at startup. These rules accept a value only when every series reads it the way
the rule needs (`list_db = False`, `proxy_mode = True`), and say why otherwise. The master
password is compared to passlib's `$pbkdf2-sha512$` hashes, the only scheme besides plaintext
that Odoo's `crypt_context` accepts. Values like `$NAME` or `${NAME}` are taken as
placeholders filled at deploy time and are not judged as passwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from changegate.domain.policy import configfiles
from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import Document, Format, Hit, Path, Severity, rule

HASH_PREFIX = "$pbkdf2-sha512$"
# Database roles that are superusers on the PostgreSQL images and operators in use (the
# `postgres` role of CloudNativePG, Zalando and Crunchy, which Odoo's server refuses: "Using the
# database user 'postgres' is a security risk, aborting") or by common naming; the catalog does
# not record roles, so any other name is taken as an ordinary role.
SUPERUSERS = frozenset({"postgres", "root", "admin", "administrator", "superuser"})
# dbfilter values that select every database, as no filter does.
MATCH_ALL = frozenset({"", ".*", "^.*$", ".*$", "^.*", ".+", "^.+$", ".+$", "^.+"})
_PLACEHOLDER = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")


def parse_odoo_conf(text: str) -> dict[str, str]:
    """The [options] section of an odoo.conf text (names in lower case, values stripped)."""
    return configfiles.odoo(text).values


@dataclass(frozen=True, slots=True)
class OdooBool:
    """How Odoo series read one boolean option value."""

    legacy: bool  # up to 18.0: True/true, False/false, else the truth of the text
    modern: bool | None  # from 19.0: 1/yes/true/on, 0/no/false/off (any case); None = refused

    @property
    def agreed(self) -> bool | None:
        """The value when every series reads it the same, else None."""
        return self.legacy if self.modern == self.legacy else None


def odoo_bool(value: str) -> OdooBool:
    """A boolean option's value as every Odoo series reads it (see the module docstring)."""
    lower = value.lower()
    if value in ("True", "true"):
        legacy = True
    elif value in ("False", "false"):
        legacy = False
    else:
        legacy = value != ""
    modern: bool | None
    if lower in ("1", "yes", "true", "on"):
        modern = True
    elif lower in ("0", "no", "false", "off") or value == "None":
        modern = False
    else:
        modern = None
    return OdooBool(legacy, modern)


def _disagreement(where: str, option: str, value: str, reading: OdooBool) -> str:
    old = "true" if reading.legacy else "false"
    if reading.modern is None:
        new = "refuses it at startup"
    else:
        new = f"reads {'true' if reading.modern else 'false'}"
    return (
        f"{where}{option} = {value!r} is read as {old} by Odoo 18.0 and earlier (only True and "
        f"False are booleans there) while Odoo 19.0 {new}"
    )


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class OdooConfig:
    """One Odoo configuration: where it is written and its [options]."""

    document: Document
    options: Mapping[str, str]
    key: str  # the ConfigMap data key it is under, "" for an odoo.conf file

    def path(self, option: str) -> Path:
        """Where an option is (the data key for a ConfigMap; the file for a missing one)."""
        if self.key:
            return ("data", self.key)
        return (option,) if option in self.options else ()

    def get(self, option: str) -> str | None:
        return self.options.get(option)

    @property
    def where(self) -> str:
        """`key: ` for a configuration in a ConfigMap, else nothing."""
        return f"{self.key}: " if self.key else ""

    def written(self, option: str) -> str:
        """`option = 'value'` or `option is not set`, prefixed with the ConfigMap key."""
        value = self.get(option)
        shown = f"{option} is not set" if value is None else f"{option} = {value!r}"
        return self.where + shown


def _is_odoo_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lower = key.lower()
    return lower in ("odoo.conf", ".odoorc") or lower.endswith(".odoo.conf")


def configs(changeset: ChangeSet) -> list[OdooConfig]:
    """Every Odoo configuration of the change set."""
    found: list[OdooConfig] = []
    for document in changeset.of_format(Format.ODOO_CONF):
        data = document.data if isinstance(document.data, dict) else {}
        options = {
            name: text
            for name, value in data.items()
            if isinstance(name, str) and (text := _text(value)) is not None
        }
        found.append(OdooConfig(document, options, ""))
    for document in changeset.of_kind("ConfigMap"):
        data = document.get("data")
        if not isinstance(data, dict):
            continue
        for key, text in data.items():
            if _is_odoo_key(key) and isinstance(text, str):
                found.append(OdooConfig(document, parse_odoo_conf(text), key))
    return found


def _outside(context: CheckContext) -> Severity | None:
    """The severity of a production-grade finding outside production: a warning."""
    return None if context.production else Severity.WARNING


# --------------------------------------------------------------------------- rules


@rule(
    "odoo.list-db",
    "The database manager is disabled in production",
    Severity.ERROR,
    rationale=(
        "With list_db enabled (Odoo's default), /web/database/manager and the database "
        "selector are served to anyone: the list of databases leaks every customer's name, "
        "and the manager's create, duplicate, backup, restore and drop stand behind the master "
        "password alone."
    ),
    remediation=(
        "Set list_db = False in the [options] section (exactly False: up to Odoo 18.0 a value "
        "like 0 or no counts as true) and create databases through the platform's tooling."
    ),
)
def list_db(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    if not context.production:
        return
    for config in configs(changeset):
        value = config.get("list_db")
        if value is None:
            message = f"{config.written('list_db')}: Odoo's default exposes the database manager"
        else:
            reading = odoo_bool(value)
            if reading.agreed is False:
                continue
            if reading.agreed is True:
                message = f"{config.written('list_db')} exposes the database manager"
            else:
                message = _disagreement(config.where, "list_db", value, reading)
        yield Hit(config.document, config.path("list_db"), message)


@rule(
    "odoo.admin-passwd",
    "The Odoo master password is not the default and not in clear text",
    Severity.ERROR,
    rationale=(
        "The master password (admin_passwd) guards the database manager: whoever has it can "
        "back up, duplicate, restore or drop any database of the instance. Odoo's default is "
        "admin, which every scanner tries; written in clear text in a committed file it is "
        "known to everyone who can read the repository."
    ),
    remediation=(
        "Set admin_passwd to a $pbkdf2-sha512$ hash of a long random password (Odoo writes "
        "one when the password is changed from the database manager, or hash it with "
        "passlib's pbkdf2_sha512), or leave it empty (admin_passwd =) to refuse every "
        "master-password operation; keep the file itself in a Secret."
    ),
)
def admin_passwd(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset):
        value = config.get("admin_passwd")
        path = config.path("admin_passwd")
        if value is None or value == "admin":
            yield Hit(
                config.document,
                path,
                f"{config.written('admin_passwd')}: the master password is Odoo's default, admin",
                severity=_outside(context),
            )
        elif value in ("False", "false"):
            yield Hit(
                config.document,
                path,
                f"{config.written('admin_passwd')}: Odoo 18.0 and earlier refuse every master "
                "password, but Odoo 19.0 ignores False here and falls back to the default, "
                "admin; leave the value empty to refuse every master password",
                severity=_outside(context),
            )
        elif value and not value.startswith(HASH_PREFIX) and not _PLACEHOLDER.match(value):
            yield Hit(
                config.document,
                path,
                f"{config.where}admin_passwd is a clear-text password, not a {HASH_PREFIX} hash",
                severity=Severity.WARNING,
            )


@rule(
    "odoo.proxy-mode",
    "Odoo runs in proxy mode behind Traefik",
    Severity.ERROR,
    rationale=(
        "Every Odoo of the platform is reached through Traefik, which terminates TLS. Without "
        "proxy_mode, Odoo ignores the X-Forwarded-Proto and X-Forwarded-For headers Traefik "
        "sets: it builds http:// URLs for redirects and links, and sees every request coming "
        "from Traefik's address, so the per-address login cooldown locks everyone out at "
        "once and logs name the wrong client."
    ),
    remediation=(
        "Set proxy_mode = True in the [options] section, and keep Odoo's port reachable only "
        "from Traefik (NetworkPolicy), since proxy mode trusts the forwarded headers."
    ),
)
def proxy_mode(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset):
        value = config.get("proxy_mode")
        if value is None:
            message = f"{config.written('proxy_mode')}: Odoo ignores the headers Traefik sets"
        else:
            reading = odoo_bool(value)
            if reading.agreed is True:
                continue
            if reading.agreed is False:
                message = f"{config.written('proxy_mode')}: Odoo ignores the headers Traefik sets"
            else:
                message = _disagreement(config.where, "proxy_mode", value, reading)
        yield Hit(config.document, config.path("proxy_mode"), message, severity=_outside(context))


def _databases(value: str | None) -> list[str]:
    if value is None or value in ("False", "false", "None"):
        return []
    return [name for part in value.split(",") if (name := part.strip())]


@rule(
    "odoo.dbfilter",
    "An Odoo serving several databases filters them by host",
    Severity.ERROR,
    rationale=(
        "When db_name does not name exactly one database, an Odoo instance serves every "
        "database its PostgreSQL user can reach; without a dbfilter the database of a "
        "request is not tied to its host, so a visitor of one customer's address can reach, "
        "or be sent to, another customer's database."
    ),
    remediation=(
        "Set db_name to the one database of the instance, or set dbfilter to a pattern that "
        "selects the database from the host (e.g. dbfilter = ^%d$ when databases are named "
        "after the first label of the host)."
    ),
)
def dbfilter(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset):
        databases = _databases(config.get("db_name"))
        if len(databases) == 1:
            continue
        value = config.get("dbfilter")
        if value is not None and value.strip() not in MATCH_ALL:
            continue
        if databases:
            serves = f"db_name lists {len(databases)} databases ({', '.join(databases[:3])}"
            serves += ", ...)" if len(databases) > 3 else ")"
        else:
            serves = "db_name names no database, so every database the user can see is served"
        yield Hit(
            config.document,
            config.path("dbfilter"),
            f"{config.written('dbfilter')} while {serves}",
            severity=_outside(context),
        )


@rule(
    "odoo.workers",
    "Odoo runs with workers in production",
    Severity.ERROR,
    rationale=(
        "With workers = 0 Odoo runs its threaded server: one process serves every request "
        "and runs the cron jobs, the per-request memory and time limits (limit_memory_*, "
        "limit_time_*) do not apply, so one heavy report slows down or kills the whole "
        "instance."
    ),
    remediation=(
        "Set workers to at least 2 in production (about 2 per CPU plus one), with "
        "max_cron_threads and the limit_memory_* and limit_time_* options sized for the pod."
    ),
)
def workers(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    if not context.production:
        return
    for config in configs(changeset):
        value = config.get("workers")
        path = config.path("workers")
        if value is None or value in ("False", "false"):
            yield Hit(
                config.document,
                path,
                f"{config.written('workers')}: Odoo runs its threaded server (workers 0)",
            )
            continue
        try:
            count = int(value.strip())
        except ValueError:
            yield Hit(
                config.document,
                path,
                f"{config.written('workers')} is not a number: Odoo refuses to start",
            )
            continue
        if count <= 0:
            yield Hit(
                config.document,
                path,
                f"{config.written('workers')}: Odoo runs its threaded server, not "
                "multi-processing workers",
            )


@rule(
    "odoo.db-superuser",
    "Odoo connects to PostgreSQL as an ordinary role",
    Severity.ERROR,
    rationale=(
        "A superuser role can read and change every database of the cluster, run programs on "
        "the database server (COPY ... PROGRAM) and turn off safeguards; on a shared cluster, "
        "one Odoo code-injection flaw would then reach every tenant. Odoo needs only a role "
        "that owns its own database (and CREATEDB where it creates them). Odoo itself refuses "
        "to start as postgres, but not as other superuser roles."
    ),
    remediation=(
        "Give each instance its own role without SUPERUSER (the operator's managed roles, "
        "e.g. CloudNativePG spec.managed.roles) and set db_user to it; keep the password in a "
        "Secret."
    ),
)
def db_superuser(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for config in configs(changeset):
        value = config.get("db_user")
        role = value.strip().lower() if value is not None else ""
        if role not in SUPERUSERS:
            continue
        if value is not None and value.strip() == "postgres":
            consequence = "PostgreSQL's superuser role; Odoo refuses to start with it"
        else:
            consequence = "a PostgreSQL superuser role by its name"
        yield Hit(
            config.document, config.path("db_user"), f"{config.written('db_user')}: {consequence}"
        )


RULES = (list_db, admin_passwd, proxy_mode, dbfilter, workers, db_superuser)
