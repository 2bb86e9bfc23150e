"""Sync and health from Argo CD's API: `GET /api/v1/applications/{name}`.

The application's JSON (Argo CD's `v1alpha1.Application`) is read at these fields:

- `status.sync.status` (Synced, OutOfSync, Unknown) and `status.sync.revision` (the commit
  the application is compared with; `status.sync.revisions[0]` for a multi-source one);
- `status.health.status` (Healthy, Progressing, Degraded, Suspended, Missing, Unknown) and
  `status.health.message`;
- `status.operationState.phase` (Running, Succeeded, Failed, Error, Terminating) and
  `status.operationState.message`.

The bearer token is read from the environment variable the caller names (by default
`ARGOCD_AUTH_TOKEN`, the name Argo CD's own CLI reads), or passed in; it is sent in the
`Authorization` header only and never appears in a message, a repr or a log line. A 404 is an
application Argo CD does not know: health Missing. Every other failure (unreachable, a
timeout, 401/403, a body that is not the application JSON) is a StatusUnavailable saying why.

Only the standard library is used (urllib). Tests run this adapter against a small HTTP
stand-in speaking the same JSON (tests/integration/test_argocd_status.py); no Argo CD runs here.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from changegate.domain import health

DEFAULT_TOKEN_ENV = "ARGOCD_AUTH_TOKEN"  # noqa: S105 - a variable name, not a secret
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
USER_AGENT = "changegate-delivery"


@dataclass(frozen=True, slots=True)
class ArgoCDStatus:
    """One Argo CD API server (`https://argocd.example.com`): implements DeliveryStatus."""

    address: str
    token_env: str = DEFAULT_TOKEN_ENV
    token: str | None = field(default=None, repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # A CA bundle for a private CA; TLS verification is never switched off.
    ca_file: str | None = None
    # The Argo CD app namespace when apps live outside the control plane's namespace.
    app_namespace: str | None = None

    def _token(self) -> str | None:
        if self.token:
            return self.token
        value = os.environ.get(self.token_env, "").strip()
        return value or None

    def _url(self, app: str) -> str:
        parts = urllib.parse.urlsplit(self.address.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise health.StatusUnavailable(
                f"Argo CD address {self.address!r} is not an http(s) URL"
            )
        if not app or "/" in app or len(app) > 253:
            raise health.StatusUnavailable(f"not an application name: {app!r}")
        path = parts.path.rstrip("/") + "/api/v1/applications/" + urllib.parse.quote(app, "")
        query = (
            urllib.parse.urlencode({"appNamespace": self.app_namespace})
            if self.app_namespace
            else ""
        )
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))

    def application_status(self, app: str) -> health.AppStatus:
        url = self._url(app)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        token = self._token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        where = f"Argo CD at {self.address}"
        try:
            with urllib.request.urlopen(  # noqa: S310 - the scheme is checked in _url
                request, timeout=self.timeout_seconds, context=context
            ) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code == 404:
                return health.AppStatus(
                    app,
                    health.SyncStatus.UNKNOWN,
                    health.HealthStatus.MISSING,
                    message=f"Argo CD does not know application {app!r}{message}",
                )
            if exc.code in (401, 403):
                hint = "" if token else f" (no token: set {self.token_env})"
                raise health.StatusUnavailable(
                    f"{where} refused to show application {app!r}: HTTP {exc.code}{message}{hint}"
                ) from None
            raise health.StatusUnavailable(
                f"{where} answered HTTP {exc.code} for application {app!r}{message}"
            ) from None
        except urllib.error.URLError as exc:
            raise health.StatusUnavailable(f"{where} is unreachable: {exc.reason}") from None
        except TimeoutError:
            raise health.StatusUnavailable(
                f"{where} did not answer within {self.timeout_seconds:g} s"
            ) from None
        except OSError as exc:
            raise health.StatusUnavailable(f"{where}: {exc.strerror or exc}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise health.StatusUnavailable(f"{where}: the answer is over {MAX_RESPONSE_BYTES} B")
        try:
            data = json.loads(raw)
        except ValueError:
            raise health.StatusUnavailable(f"{where}: the answer is not JSON") from None
        return parse_application(app, data)


def _error_message(exc: urllib.error.HTTPError) -> str:
    """Argo CD's gRPC-gateway error body `{"error", "code", "message"}`, shortened."""
    try:
        body = json.loads(exc.read(64 * 1024))
    except (ValueError, OSError):
        return ""
    if isinstance(body, dict):
        text = body.get("message") or body.get("error")
        if isinstance(text, str) and text:
            return f": {text[:300]}"
    return ""


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def parse_application(app: str, data: Any) -> health.AppStatus:
    """An Argo CD Application's JSON as an AppStatus; StatusUnavailable when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("status", {}), dict):
        raise health.StatusUnavailable(f"the answer for {app!r} is not an Argo CD Application")
    name = _get(data, "metadata", "name")
    if isinstance(name, str) and name and name != app:
        raise health.StatusUnavailable(f"asked for application {app!r}, got {name!r}")
    revision = _get(data, "status", "sync", "revision")
    if not isinstance(revision, str) or not revision:
        revisions = _get(data, "status", "sync", "revisions")
        revision = (
            revisions[0]
            if isinstance(revisions, list) and revisions and isinstance(revisions[0], str)
            else None
        )
    message = _get(data, "status", "health", "message")
    operation_message = _get(data, "status", "operationState", "message")
    return health.AppStatus(
        app=app,
        sync=health.sync_status(_get(data, "status", "sync", "status")),
        health=health.health_status(_get(data, "status", "health", "status")),
        revision=revision or None,
        message=message if isinstance(message, str) else "",
        operation=health.operation_phase(_get(data, "status", "operationState", "phase")),
        operation_message=operation_message if isinstance(operation_message, str) else "",
    )
