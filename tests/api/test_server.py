"""`server.run`: loopback only while development-mode auth is on, and no secrets in the logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from changegate import bootstrap
from changegate.api import server
from changegate.errors import Refused
from changegate.store import db


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Captures uvicorn.run calls instead of serving."""
    calls: list[dict[str, Any]] = []

    def fake_run(app: Any, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(server.uvicorn, "run", fake_run)
    return calls


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert server.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "", "example.com", "192.168.1.1"])
def test_public_hosts(host: str) -> None:
    assert not server.is_loopback(host)


def test_refuses_a_public_bind_in_development_mode(
    app: bootstrap.App, served: list[dict[str, Any]]
) -> None:
    with pytest.raises(Refused) as raised:
        server.run(app, "0.0.0.0", 8080)
    assert "development mode" in str(raised.value)
    assert "CHANGEGATE_ALLOW_DEV_AUTH_ON_PUBLIC_BIND" in str(raised.value)
    assert served == []


def test_public_bind_when_explicitly_allowed(
    app: bootstrap.App, served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    app.settings.allow_dev_auth_on_public_bind = True
    with caplog.at_level(logging.INFO, logger="changegate.api"):
        server.run(app, "0.0.0.0", 9000)
    assert served[0]["host"] == "0.0.0.0"
    assert served[0]["port"] == 9000
    assert any(
        "development-mode auth" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )


def test_serves_on_loopback_and_logs_no_password(
    app: bootstrap.App,
    served: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app.settings.database_url = "postgresql://changegate:s3cr3t-pw@db.internal:5432/changegate"
    with caplog.at_level(logging.DEBUG):
        server.run(app, "::1", 8123)
    assert served[0]["host"] == "::1"
    assert served[0]["log_level"] == "info"
    assert served[0]["app"].title == "changegate"
    printed = capsys.readouterr().err
    assert "http://[::1]:8123" in printed
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "http://[::1]:8123" in logged
    assert "db.internal" in logged
    assert "s3cr3t-pw" not in logged + printed


def test_display_url_hides_the_password() -> None:
    assert "secret" not in db.display_url("postgresql://u:secret@h/db")
    assert "secret" not in db.display_url("postgresql://u:secret@h:notaport/db")
    assert db.display_url("sqlite:///x.db") == "sqlite:///x.db"
