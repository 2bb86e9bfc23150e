"""Alembic environment: runs on the connection changegate hands over (see store.db.upgrade)."""

from __future__ import annotations

from alembic import context

from changegate.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` itself, which we do not ship
    raise RuntimeError("run migrations with `changegate db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
