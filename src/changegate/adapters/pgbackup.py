"""PostgreSQL backups with the standard client tools: pg_dump, pg_restore and psql.

Credentials never pass through changegate. Every connection is the libpq connection string
`service=<service> dbname=<database> application_name=changegate`: the service's host, port
and user come from libpq's connection service file (`PGSERVICEFILE`, set from
CHANGEGATE_PG_SERVICE_FILE, else libpq's default `~/.pg_service.conf`), and its password from
that file or `~/.pgpass` (libpq's rules). Every tool runs with `--no-password` (never a prompt),
a timeout, its stderr kept to a bounded tail with anything like `password=...` masked.

    dump(service, dbname, target_dir) -> BackupFile     pg_dump -Fc, streamed and checksummed
    verify(path) -> Toc                                 pg_restore --list: is it restorable?
    restore(path, service, dbname, into=None) -> str    into the original (sessions ended
                                                        first), or into a new copy
    check(service, dbname) -> DatabaseCheck             tables and exact row counts
    drop_database(service, dbname, name)                for scratch copies

A missing tool, an unknown service or an unreachable server is a clear error naming what to
fix; nothing half-written is ever left under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from changegate.errors import ChangegateError, Conflict, PermanentError, TemporaryError

CHUNK = 1024 * 1024
STDERR_TAIL = 2000
# Dumps and restores of large databases take long; catalog queries do not.
DEFAULT_TIMEOUT = 6 * 3600.0
DEFAULT_QUERY_TIMEOUT = 120.0
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SECRET = re.compile(r"(?i)(password\s*[=:]\s*)('[^']*'|\S+)")
_TOC_LINE = re.compile(r"^\d+;\s+\d+\s+\d+\s+(?P<rest>.*)$")
# Exact counts of every ordinary table's rows, in one statement (query_to_xml runs a count per
# table); partitioned parents count as tables but not again as rows.
_CHECK_SQL = """
SELECT count(*),
       coalesce(sum(CASE WHEN c.relkind = 'r' THEN (xpath('/row/c/text()', query_to_xml(
           format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
           false, true, '')))[1]::text::bigint END), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
"""


class ToolMissing(PermanentError):
    """A PostgreSQL client tool is not installed where changegate looks for it."""


@dataclass(frozen=True, slots=True)
class BackupFile:
    """A finished dump: where it is, its SHA-256 and size, and when pg_dump ran."""

    path: Path
    sha256: str
    size: int
    started: datetime
    finished: datetime


@dataclass(frozen=True, slots=True)
class Toc:
    """What `pg_restore --list` read from an archive: its entries, and its tables."""

    entries: int
    tables: int


@dataclass(frozen=True, slots=True)
class DatabaseCheck:
    """What a database holds: its tables, and the exact number of rows in them."""

    tables: int
    rows: int


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def conninfo(service: str, dbname: str) -> str:
    """The libpq connection string of a database on a service (no secret in it, ever)."""
    return (
        f"service={_quote(_checked(service, _SERVICE, 'service'))} "
        f"dbname={_quote(_checked(dbname, _NAME, 'database'))} application_name=changegate"
    )


def _checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise PermanentError(f"not a valid {what} name: {value!r}")
    return value


def _quote(value: str) -> str:
    """A libpq connection-string value, quoted ('...' with \\ and ' escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return '"' + _checked(name, _NAME, "database").replace('"', '""') + '"'


def _literal(name: str) -> str:
    return "'" + _checked(name, _NAME, "database").replace("'", "''") + "'"


def _tail(raw: bytes) -> str:
    """The end of a tool's stderr, decoded, with anything like a password masked."""
    text = raw[-STDERR_TAIL:].decode("utf-8", errors="replace").strip()
    return _SECRET.sub(r"\1***", text)


class PgBackup:
    """The PostgreSQL client tools, configured once (bootstrap) and shared."""

    def __init__(
        self,
        *,
        service_file: Path | None = None,
        bin_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.service_file = service_file
        self.bin_dir = bin_dir
        self.timeout = timeout
        self.query_timeout = query_timeout
        self._environ = dict(os.environ if environ is None else environ)

    # -- the tools ---------------------------------------------------------------------------

    def _tool(self, name: str) -> str:
        found = shutil.which(name, path=str(self.bin_dir) if self.bin_dir else None)
        if found is None:
            where = f" in {self.bin_dir}" if self.bin_dir else " on PATH"
            raise ToolMissing(
                f"{name} not found{where}: install the PostgreSQL client tools "
                "(Debian: postgresql-client), at least as new as the server"
            )
        return found

    def _env(self) -> dict[str, str]:
        env = dict(self._environ)
        if self.service_file is not None:
            env["PGSERVICEFILE"] = str(self.service_file)
        env.setdefault("PGCONNECT_TIMEOUT", "10")
        return env

    def _failure(self, tool: str, what: str, returncode: int, stderr: str) -> Exception:
        """The error for a tool that failed: what to fix, where it can be said."""
        detail = stderr or f"exit status {returncode}"
        message = f"{tool} could not {what}: {detail}"
        lowered = stderr.lower()
        if "definition of service" in lowered or "service file" in lowered:
            where = self.service_file or "libpq's default (~/.pg_service.conf)"
            return PermanentError(
                f"{message}. Each catalog PostgreSQL service needs a [section] of that name in "
                f"the connection service file ({where}; set CHANGEGATE_PG_SERVICE_FILE)"
            )
        if "already exists" in lowered:
            return Conflict(message)
        if (
            "could not connect" in lowered
            or "connection refused" in lowered
            or "timeout expired" in lowered
            or "the database system is" in lowered
        ):
            return TemporaryError(message, delay=30.0)
        return PermanentError(message)

    def _run(
        self, argv: Sequence[str], *, what: str, timeout: float, stdin: str | None = None
    ) -> str:
        """Run a tool to its end; its stdout, or the error naming what failed."""
        tool = Path(argv[0]).name
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(  # noqa: S603 - argv is built here, never a shell
                list(argv),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self._env(),
            )
            try:
                out, _ = process.communicate(
                    stdin.encode() if stdin is not None else None, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise TemporaryError(
                    f"{tool} could not {what} within {timeout:.0f} s: stopped", delay=60.0
                ) from None
            stderr.seek(0)
            errors = _tail(stderr.read())
        if process.returncode != 0:
            raise self._failure(tool, what, process.returncode, errors)
        return out.decode("utf-8", errors="replace")

    def _psql(self, service: str, dbname: str, sql: str, *, what: str) -> str:
        argv = [
            self._tool("psql"),
            "--no-password",
            "--no-psqlrc",
            "--quiet",
            "--tuples-only",
            "--no-align",
            "--field-separator=|",
            "--set=ON_ERROR_STOP=1",
            "--dbname",
            conninfo(service, dbname),
            "--file=-",
        ]
        return self._run(argv, what=what, timeout=self.query_timeout, stdin=sql)

    # -- the port ----------------------------------------------------------------------------

    def dump(self, service: str, dbname: str, target_dir: Path) -> BackupFile:
        """`pg_dump -Fc` of `dbname` on `service` into a new file under `target_dir`.

        The archive is streamed through SHA-256 into `.<name>.partial`, flushed to disk and
        renamed: a file under its final name is always complete. Ownership and privileges
        stay in the archive (pg_restore decides on restore). Any failure removes the partial
        file.
        """
        argv = [
            self._tool("pg_dump"),
            "--no-password",
            "--format=custom",
            "--dbname",
            conninfo(service, dbname),
        ]
        target_dir.mkdir(parents=True, exist_ok=True)
        started = datetime.now(UTC)
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        final = target_dir / f"{dbname}-{stamp}-{secrets.token_hex(3)}.dump"
        partial = target_dir / f".{final.name}.partial"
        digest = hashlib.sha256()
        size = 0
        timed_out = threading.Event()
        try:
            with tempfile.TemporaryFile() as stderr, partial.open("xb") as out:
                process = subprocess.Popen(  # noqa: S603 - argv is built here, never a shell
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=self._env(),
                )

                def _stop() -> None:
                    timed_out.set()
                    process.kill()

                watchdog = threading.Timer(self.timeout, _stop)
                watchdog.start()
                try:
                    size = _copy(process.stdout, out, digest.update)
                    process.wait()
                finally:
                    watchdog.cancel()
                    if process.stdout is not None:
                        process.stdout.close()
                    if process.poll() is None:
                        process.kill()
                        process.wait()
                out.flush()
                os.fsync(out.fileno())
                stderr.seek(0)
                errors = _tail(stderr.read())
            if timed_out.is_set():
                raise TemporaryError(
                    f"pg_dump could not dump {dbname} within {self.timeout:.0f} s: stopped",
                    delay=60.0,
                )
            if process.returncode != 0:
                raise self._failure("pg_dump", f"dump {dbname}", process.returncode, errors)
            os.replace(partial, final)
            _fsync_dir(target_dir)
        finally:
            partial.unlink(missing_ok=True)
        return BackupFile(
            path=final.resolve(),
            sha256=digest.hexdigest(),
            size=size,
            started=started,
            finished=datetime.now(UTC),
        )

    def verify(self, path: Path) -> Toc:
        """Read the archive's table of contents with `pg_restore --list`: it is restorable."""
        if not path.is_file():
            raise PermanentError(f"no backup file at {path}")
        argv = [self._tool("pg_restore"), "--list", str(path)]
        listing = self._run(argv, what=f"read {path.name}", timeout=self.query_timeout)
        entries = tables = 0
        for line in listing.splitlines():
            match = _TOC_LINE.match(line)
            if match is None:
                continue
            entries += 1
            rest = match.group("rest")
            if rest.startswith("TABLE ") and not rest.startswith("TABLE DATA "):
                tables += 1
        if entries == 0:
            raise PermanentError(f"{path.name} lists no entries: not a usable pg_dump archive")
        return Toc(entries=entries, tables=tables)

    def terminate_sessions(self, service: str, dbname: str) -> int:
        """End every other session on `dbname`; how many were ended."""
        # The name is checked against the catalog's database-name pattern, then quoted.
        where = f"datname = {_literal(dbname)} AND pid <> pg_backend_pid()"
        sql = f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {where};"  # noqa: S608
        out = self._psql(service, dbname, sql, what=f"end the sessions on {dbname}")
        return int(out.strip() or 0)

    def create_database(self, service: str, connect_to: str, name: str) -> None:
        """CREATE DATABASE `name` (connected to `connect_to`); Conflict when it exists."""
        self._psql(service, connect_to, f"CREATE DATABASE {_ident(name)};", what=f"create {name}")

    def drop_database(self, service: str, connect_to: str, name: str) -> None:
        """DROP DATABASE IF EXISTS `name` WITH (FORCE) (connected to `connect_to`)."""
        self._psql(
            service,
            connect_to,
            f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE);",
            what=f"drop {name}",
        )

    def restore(self, path: Path, service: str, dbname: str, *, into: str | None = None) -> str:
        """Restore the archive; the database restored into.

        `into` None: into `dbname` itself, after ending its other sessions, with
        `--clean --if-exists` in one transaction (all or nothing), ownership as dumped.
        Objects created after the backup and not in it are left alone.
        `into` a name: CREATE DATABASE it (Conflict when it exists), then restore in one
        transaction with `--no-owner` (the copy belongs to the restoring role); a failed
        restore drops the copy again.
        """
        if not path.is_file():
            raise PermanentError(f"no backup file at {path}")
        pg_restore = self._tool("pg_restore")
        common = [pg_restore, "--no-password", "--single-transaction", "--exit-on-error"]
        if into is None:
            self.terminate_sessions(service, dbname)
            argv = [*common, "--clean", "--if-exists", "--dbname", conninfo(service, dbname)]
            self._run([*argv, str(path)], what=f"restore {dbname}", timeout=self.timeout)
            return dbname
        self.create_database(service, dbname, into)
        argv = [*common, "--no-owner", "--dbname", conninfo(service, into), str(path)]
        try:
            self._run(argv, what=f"restore into {into}", timeout=self.timeout)
        except BaseException:
            with contextlib.suppress(ChangegateError):
                self.drop_database(service, dbname, into)
            raise
        return into

    def check(self, service: str, dbname: str) -> DatabaseCheck:
        """How many tables `dbname` holds, and exactly how many rows are in them."""
        out = self._psql(service, dbname, _CHECK_SQL + ";", what=f"check {dbname}").strip()
        tables, rows = out.split("|")
        return DatabaseCheck(tables=int(tables), rows=int(rows))


def _copy(source: IO[bytes] | None, target: IO[bytes], update: Callable[[bytes], None]) -> int:
    """Copy a stream to a file through a digest's `update`; the bytes copied."""
    assert source is not None  # stdout=PIPE always gives a stream
    size = 0
    while chunk := source.read(CHUNK):
        update(chunk)
        target.write(chunk)
        size += len(chunk)
    return size


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
