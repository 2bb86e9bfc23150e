"""What every command shares: the settings, the acting person, and the App built on demand.

The root callback builds Settings once (pydantic-settings reads CHANGEGATE_*), applies the
global options over it, and stores a CliState on the Click context. Commands that need the
database ask the state for the App, which is created at most once per process; commands
that only read the catalog (`catalog validate`, `catalog show`) never open the database.
"""

from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from changegate.cli import output
from changegate.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from changegate import bootstrap
    from changegate.domain import catalog as catalog_model
    from changegate.services.context import Context
    from changegate.settings import Settings


@dataclass
class CliState:
    """Per-process state: settings, the acting person, --json, the lazily created App."""

    settings: Settings | None = None
    person: str | None = None
    catalog_configured: bool = False
    json: bool = False
    _app: bootstrap.App | None = field(default=None, repr=False)
    _context: Context | None = field(default=None, repr=False)

    def require_settings(self) -> Settings:
        """The settings the root callback built."""
        if self.settings is None:  # pragma: no cover - the callback always runs first
            raise RuntimeError("the root callback did not run")
        return self.settings

    @property
    def catalog_dir(self) -> Path:
        """--catalog, else CHANGEGATE_CATALOG_DIR, else ./platform."""
        from changegate import bootstrap

        return bootstrap.catalog_dir(self.require_settings())

    def app(self) -> bootstrap.App:
        """The App (engine and catalog); opening it migrates an SQLite file on first use."""
        if self._app is None:
            from changegate import bootstrap

            self._app = bootstrap.create(self.require_settings())
        return self._app

    def catalog(self) -> catalog_model.Catalog:
        """The catalog through the App (its load is recorded in the audit trail if new)."""
        return self.app().catalog()

    def context(self) -> Context:
        """The service context for the acting person: --as, else CHANGEGATE_USER.

        One per process, so every audit event a command writes carries the same request id.
        """
        if self._context is None:
            from changegate.services import context

            self._context = context.context_for(
                self.catalog(), self.person, request_id=f"cli-{uuid.uuid4().hex}"
            )
        return self._context

    def close(self) -> None:
        """Release the database connections, if any were opened."""
        if self._app is not None:
            self._app.engine.dispose()
            self._app = None


def build_settings(
    *, person: str | None, catalog: Path | None, database_url: str | None
) -> Settings:
    """Settings from CHANGEGATE_* with the global options applied over them."""
    import pydantic

    from changegate.settings import Settings

    try:
        settings = Settings()
    except pydantic.ValidationError as exc:
        # Name the variable and the rule, never the value (it may be a secret).
        raise InvalidInput(
            [
                Problem(
                    error["msg"],
                    field="CHANGEGATE_" + "_".join(str(part) for part in error["loc"]).upper(),
                )
                for error in exc.errors(include_url=False, include_input=False)
            ]
        ) from None
    updates: dict[str, object] = {}
    if person is not None:
        updates["user"] = person
    if catalog is not None:
        updates["catalog_dir"] = catalog
    if database_url is not None:
        updates["database_url"] = database_url
    if updates:
        settings = settings.model_copy(update=updates)
    remember_url_secret(settings.database_url)
    return settings


def remember_url_secret(url: str) -> None:
    """Keep a database URL's password out of every message."""
    import sqlalchemy as sa

    try:
        password = sa.make_url(url).password
    except (sa.exc.ArgumentError, ValueError):
        return
    if password:
        output.add_secret(str(password))
        output.add_secret(urllib.parse.quote(str(password), safe=""))


def state(ctx: typer.Context) -> CliState:
    """The CliState stored by the root callback."""
    found = ctx.find_object(CliState)
    if found is None:  # pragma: no cover - the callback always stores it
        raise RuntimeError("no CLI state")
    return found


def json_mode(ctx: typer.Context, enabled: bool) -> CliState:
    """Record --json for the error handler, and return the state."""
    current = state(ctx)
    current.json = current.json or enabled
    return current
