"""Read what an Odoo database has installed, with psycopg, in one read-only transaction.

The database is reached as the backups reach it (`changegate.adapters.pgbackup`): the
catalog's PostgreSQL service id is the libpq service name, the catalog's database name the
dbname, and credentials never pass through changegate's configuration. Without a service file
libpq resolves the service itself (PGSERVICEFILE, else `~/.pg_service.conf`, then the
system-wide file). With one (CHANGEGATE_PG_SERVICE_FILE), its `[service]` section is read
here, as libpq reads it, and its keywords are given to libpq: the libpq bundled with psycopg
has no `servicefile` keyword, and setting PGSERVICEFILE in a threaded server's environment is
not safe.

What is read (the columns Odoo has had since 8.0):

    ir_module_module    name, state, latest_version
                        installed: state 'installed', 'to upgrade', 'to remove' (what Odoo
                        itself loads as installed); pending: 'to install', 'to upgrade',
                        'to remove' (an operation not finished)
    ir_config_parameter value of `module_auto_update.installed_checksums`: the JSON object
                        module -> checksum that click-odoo-update (and OCA's
                        module_auto_update) store; `false` entries (no folder when stored)
                        are left out; absent or empty: no checksums (None)
    res_lang            code of the active rows: the installed languages

A database without `ir_module_module` is not an Odoo database (or was never initialised):
a PermanentError. An unreachable server is a TemporaryError; a statement over the timeout too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import pq

from changegate.adapters import pgbackup
from changegate.domain.odoo import drift
from changegate.domain.odoo.addons import Installed
from changegate.errors import PermanentError, TemporaryError

CHECKSUMS_KEY = "module_auto_update.installed_checksums"
DEFAULT_STATEMENT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10
MAX_SERVICE_FILE_BYTES = 1024 * 1024
_TEMPORARY = (
    "connection refused",
    "timeout expired",
    "could not connect",
    "the database system is",
    "too many clients",
    "could not translate host name",
    "server closed the connection",
    "no route to host",
)
_STATES = tuple(dict.fromkeys(drift.INSTALLED_STATES + drift.PENDING_STATES))


def read_installed(
    service: str,
    dbname: str,
    *,
    service_file: Path | None,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> Installed:
    """The modules `dbname` on `service` has installed (with `latest_version`), the checksums
    click-odoo-update stored there, and its active languages."""
    return read(service, dbname, service_file=service_file, timeout=statement_timeout).installed


def read(
    service: str,
    dbname: str,
    *,
    service_file: Path | None,
    timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> drift.DatabaseModules:
    """What `dbname` on `service` records: the installed modules, and the pending ones."""
    where = f"{dbname} on {service}"
    params = connection_params(service, dbname, service_file)
    try:
        conn = psycopg.connect(**params)
    except psycopg.Error as exc:
        raise _connect_failure(where, exc, service_file) from exc
    try:
        conn.read_only = True
        with conn.transaction():
            # Bounded whatever happens: a lock held by a running upgrade must not hang us.
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                (f"{max(1, int(timeout * 1000))}ms",),
            )
            return _read(conn, where)
    except psycopg.errors.QueryCanceled as exc:
        raise TemporaryError(
            f"reading {where} took longer than {timeout:g} s: stopped", delay=60.0
        ) from exc
    except psycopg.OperationalError as exc:
        raise TemporaryError(f"reading {where} failed: {_first_line(exc)}", delay=30.0) from exc
    except psycopg.Error as exc:
        raise PermanentError(f"reading {where} failed: {_first_line(exc)}") from exc
    finally:
        conn.close()


def _read(conn: psycopg.Connection[tuple[Any, ...]], where: str) -> drift.DatabaseModules:
    modules_table, params_table, langs_table = conn.execute(
        "SELECT to_regclass('ir_module_module') IS NOT NULL,"
        " to_regclass('ir_config_parameter') IS NOT NULL,"
        " to_regclass('res_lang') IS NOT NULL"
    ).fetchone() or (False, False, False)
    if not modules_table:
        raise PermanentError(
            f"{where} has no ir_module_module table: not an Odoo database (or one never "
            "initialised); check the tenant's database name in the catalog"
        )
    modules: dict[str, str | None] = {}
    pending: dict[str, str] = {}
    rows = conn.execute(
        "SELECT name, state, latest_version FROM ir_module_module"
        " WHERE state = ANY(%s) ORDER BY name",
        (list(_STATES),),
    ).fetchall()
    for name, state, version in rows:
        if state in drift.INSTALLED_STATES:
            modules[str(name)] = str(version) if version else None
        if state in drift.PENDING_STATES:
            pending[str(name)] = str(state)
    checksums: dict[str, str] | None = None
    if params_table:
        row = conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key = %s", (CHECKSUMS_KEY,)
        ).fetchone()
        if row is not None and row[0]:
            checksums = _checksums(str(row[0]), where)
    languages: tuple[str, ...] = ()
    if langs_table:
        found = conn.execute("SELECT code FROM res_lang WHERE active ORDER BY code").fetchall()
        languages = tuple(str(code) for (code,) in found)
    return drift.DatabaseModules(
        installed=Installed(
            modules=modules, checksums=checksums, languages=languages, source=where
        ),
        pending=pending,
    )


def _checksums(text: str, where: str) -> dict[str, str]:
    """The stored checksums: a JSON object module -> checksum (false: none was computed)."""
    problem = f"ir_config_parameter {CHECKSUMS_KEY!r} in {where}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PermanentError(f"{problem} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PermanentError(
            f"{problem} is not a JSON object of module -> checksum (it is a {type(value).__name__})"
        )
    checksums: dict[str, str] = {}
    for name, checksum in value.items():
        if checksum is False or checksum is None:
            continue
        if not isinstance(checksum, str):
            raise PermanentError(f"{problem}: the checksum of {name!r} is not a string")
        checksums[name] = checksum
    return dict(sorted(checksums.items()))


# -- connecting --------------------------------------------------------------------------------


def connection_params(service: str, dbname: str, service_file: Path | None) -> dict[str, Any]:
    """psycopg's connection keywords for `dbname` on `service` (never logged: a service
    file may hold a password)."""
    # pgbackup.conninfo checks both names and quotes them; its keywords win over the file's.
    params: dict[str, Any] = dict(pg_conninfo.conninfo_to_dict(pgbackup.conninfo(service, dbname)))
    if service_file is not None:
        del params["service"]
        for key, value in service_section(service_file, service).items():
            params.setdefault(key, value)
    params.setdefault("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    return params


def _keywords() -> frozenset[str]:
    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def service_section(path: Path, service: str) -> dict[str, str]:
    """The keywords of the first `[service]` section of a libpq connection service file,
    read by libpq's rules: blank lines and `#` comments skipped, `key=value` lines, the first
    value of a key kept, an unknown keyword or a line without `=` an error."""
    try:
        if path.stat().st_size > MAX_SERVICE_FILE_BYTES:
            raise PermanentError(f"the connection service file {path} is larger than 1 MiB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PermanentError(
            f"cannot read the connection service file {path} (CHANGEGATE_PG_SERVICE_FILE): "
            f"{exc.strerror or exc}"
        ) from exc
    known = _keywords()
    found: dict[str, str] = {}
    inside = seen = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if seen:
                break
            inside = seen = line.endswith("]") and line[1:-1] == service
            continue
        if not inside:
            continue
        key, sep, value = line.partition("=")
        if not sep or key not in known:
            raise PermanentError(f"syntax error in service file {path}, line {number}")
        if key == "service":
            raise PermanentError(
                f"nested service specifications not supported in service file {path}, line {number}"
            )
        found.setdefault(key, value)
    if not seen:
        raise PermanentError(
            f'definition of service "{service}" not found in {path}. Each catalog PostgreSQL '
            "service needs a [section] of that name in the connection service file "
            "(CHANGEGATE_PG_SERVICE_FILE)"
        )
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _connect_failure(
    where: str, exc: psycopg.Error, service_file: Path | None
) -> PermanentError | TemporaryError:
    detail = " ".join(str(exc).split()).removeprefix("connection failed: ")
    message = f"cannot connect to {where}: {detail}"
    lowered = detail.lower()
    if "definition of service" in lowered or "service file" in lowered:
        where_file = service_file or "libpq's default (~/.pg_service.conf)"
        return PermanentError(
            f"{message}. Each catalog PostgreSQL service needs a [section] of that name in "
            f"the connection service file ({where_file}; set CHANGEGATE_PG_SERVICE_FILE)"
        )
    if isinstance(exc, psycopg.OperationalError) and any(t in lowered for t in _TEMPORARY):
        return TemporaryError(message, delay=30.0)
    return PermanentError(message)
