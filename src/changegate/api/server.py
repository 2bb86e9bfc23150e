"""Serve the API with uvicorn, refusing a public bind while development-mode auth is on."""

from __future__ import annotations

import ipaddress
import logging
import sys

import uvicorn

from changegate import bootstrap
from changegate.api.app import create_app
from changegate.errors import Refused
from changegate.store import db

log = logging.getLogger("changegate.api")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; anything else may be reachable by others."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere


def url_for(host: str, port: int) -> str:
    """The base URL for a bind address (IPv6 literals in brackets)."""
    name = host.strip("[]")
    shown = f"[{name}]" if ":" in name else name
    return f"http://{shown}:{port}"


def check_bind(app: bootstrap.App, host: str) -> None:
    """Refuse a non-loopback bind unless development-mode auth was allowed there on purpose."""
    if is_loopback(host) or app.settings.allow_dev_auth_on_public_bind:
        return
    raise Refused(
        f"refusing to serve on {host}: the API is in development mode, where anyone who can "
        "reach it may act as any catalog person through the X-Changegate-User header. Bind "
        "to 127.0.0.1, ::1 or localhost, or set CHANGEGATE_ALLOW_DEV_AUTH_ON_PUBLIC_BIND=true "
        "if the network in front of it is trusted",
        override_by="CHANGEGATE_ALLOW_DEV_AUTH_ON_PUBLIC_BIND=true",
    )


def run(app: bootstrap.App, host: str, port: int) -> None:
    """Serve the API on host:port until interrupted."""
    check_bind(app, host)
    fastapi_app = create_app(app)
    url = url_for(host, port)
    log.warning(
        "development-mode auth is on: the X-Changegate-User header names the acting person%s",
        "" if is_loopback(host) else f" (allowed on the public bind {host})",
    )
    log.info(
        "serving %s (database %s, catalog %s)",
        url,
        db.display_url(app.settings.database_url),
        app.catalog_dir,
    )
    print(f"changegate API on {url} (OpenAPI at {url}/openapi.json)", file=sys.stderr)
    uvicorn.run(fastapi_app, host=host.strip("[]"), port=port, log_level="info")
