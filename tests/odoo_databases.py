"""Scratch PostgreSQL databases shaped like an Odoo database, as far as changegate reads one.

Only the tables and columns `changegate.adapters.odoo_db` reads, with Odoo's names and types
(`ir_module_module.name/state/latest_version`, `ir_config_parameter.key/value`,
`res_lang.code/active`), plus the NOT NULL columns around them that Odoo has too. libpq
reaches the database through a service file written by the test (password included), as
changegate reaches tenant databases.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

ODOO_TABLES = """
CREATE TABLE ir_module_module (
    id serial PRIMARY KEY,
    name varchar NOT NULL UNIQUE,
    state varchar,
    latest_version varchar,
    auto_install boolean,
    demo boolean
);
CREATE TABLE ir_config_parameter (
    id serial PRIMARY KEY,
    key varchar NOT NULL UNIQUE,
    value text NOT NULL
);
CREATE TABLE res_lang (
    id serial PRIMARY KEY,
    name varchar NOT NULL UNIQUE,
    code varchar NOT NULL UNIQUE,
    active boolean
);
"""
CHECKSUMS_KEY = "module_auto_update.installed_checksums"


class OdooDatabase:
    """One scratch database on the test server: its name, and helpers to shape its rows."""

    def __init__(self, server: sa.URL, name: str) -> None:
        self.server = server
        self.name = name

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host=self.server.host,
            port=self.server.port,
            user=self.server.username,
            password=self.server.password,
            dbname=self.name,
            autocommit=True,
        )

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] | None = None) -> None:
        with self.connect() as conn:
            conn.execute(sql, params)

    def create_odoo_tables(self) -> None:
        with self.connect() as conn:
            conn.execute(ODOO_TABLES)

    def set_modules(self, modules: Mapping[str, tuple[str, str | None]]) -> None:
        """Replace the module rows: name -> (state, latest_version)."""
        with self.connect() as conn:
            conn.execute("DELETE FROM ir_module_module")
            for name, (state, version) in modules.items():
                conn.execute(
                    "INSERT INTO ir_module_module (name, state, latest_version) "
                    "VALUES (%s, %s, %s)",
                    (name, state, version),
                )

    def set_checksums(self, value: Mapping[str, Any] | str | None) -> None:
        """Store the checksums parameter (a mapping as JSON, a string as is; None: none)."""
        with self.connect() as conn:
            conn.execute("DELETE FROM ir_config_parameter WHERE key = %s", (CHECKSUMS_KEY,))
            if value is not None:
                text = value if isinstance(value, str) else json.dumps(value)
                conn.execute(
                    "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)",
                    (CHECKSUMS_KEY, text),
                )

    def set_languages(self, languages: Mapping[str, bool]) -> None:
        """Replace the language rows: code -> active."""
        with self.connect() as conn:
            conn.execute("DELETE FROM res_lang")
            for code, active in languages.items():
                conn.execute(
                    "INSERT INTO res_lang (name, code, active) VALUES (%s, %s, %s)",
                    (f"Language {code}", code, active),
                )


def write_service_file(path: Path, server: sa.URL, *sections: str) -> Path:
    """A libpq connection service file with one section per name, all on the test server."""
    path.write_text(
        "\n".join(
            f"[{section}]\nhost={server.host}\nport={server.port or 5432}\n"
            f"user={server.username}\npassword={server.password}\n"
            for section in sections or ("pg-1",)
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


@contextmanager
def scratch_database(server_url: str, prefix: str = "cg_odoo") -> Iterator[OdooDatabase]:
    """A new empty database on the test server, dropped afterwards."""
    server = sa.make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(
        host=server.host,
        port=server.port,
        user=server.username,
        password=server.password,
        dbname=server.database or "postgres",
        autocommit=True,
    )
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield OdooDatabase(server, name)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
