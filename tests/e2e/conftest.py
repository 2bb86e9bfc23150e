"""Fixtures shared by the CLI tests: a CLI on a fresh SQLite file, and the API on the same file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api.app import create_app
from changegate.settings import Settings
from tests.e2e.test_cli_harness import Cli, make_cli


@pytest.fixture
def cli(tmp_path: Path, sample_dir: Path) -> Cli:
    """The console script in a temporary folder, with its own SQLite file and the sample."""
    return make_cli(tmp_path, sample_dir)


@pytest.fixture
def calm_cli(tmp_path: Path, calm_sample_dir: Path) -> Cli:
    """The console script on the sample without windows (whole lifecycles, any date)."""
    return make_cli(tmp_path, calm_sample_dir)


def _client_for(cli: Cli) -> Iterator[TestClient]:
    cli("db", "upgrade")
    assert cli.catalog_dir is not None
    app = bootstrap.create(Settings(database_url=cli.database_url, catalog_dir=cli.catalog_dir))
    with TestClient(create_app(app)) as test_client:
        yield test_client
    app.engine.dispose()


@pytest.fixture
def client(cli: Cli) -> Iterator[TestClient]:
    """The API in-process on the CLI's own SQLite file and catalog."""
    yield from _client_for(cli)


@pytest.fixture
def calm_client(calm_cli: Cli) -> Iterator[TestClient]:
    """The API in-process on `calm_cli`'s SQLite file and catalog (no windows)."""
    yield from _client_for(calm_cli)
