"""The Argo CD adapter against an HTTP stand-in speaking Argo CD's application JSON.

No Argo CD runs here: the stand-in answers `GET /api/v1/applications/{name}` the way Argo CD's
API server does (the Application object; 404 with the gRPC-gateway error body), and checks the
bearer token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from changegate.adapters.argocd_status import ArgoCDStatus
from changegate.domain import health as h

TOKEN = "t0ken-not-for-logs"
SHA = "4e2c1a9b0f8d7e6c5b4a39281706f5e4d3c2b1a0"

APPS: dict[str, dict[str, Any]] = {
    "acme": {
        "metadata": {"name": "acme", "namespace": "argocd"},
        "spec": {"source": {"repoURL": "https://git.example.com/fleet.git", "path": "t/acme"}},
        "status": {
            "sync": {"status": "Synced", "revision": SHA},
            "health": {"status": "Healthy"},
            "operationState": {
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "syncResult": {"revision": SHA},
            },
        },
    },
    "beta": {
        "metadata": {"name": "beta"},
        "status": {
            "sync": {"status": "OutOfSync", "revisions": [SHA, "f" * 40]},
            "health": {"status": "Degraded", "message": "Deployment has timed out"},
            "operationState": {"phase": "Failed", "message": "one or more objects failed"},
        },
    },
    "gamma": {"metadata": {"name": "gamma"}, "status": {}},
}


class Handler(BaseHTTPRequestHandler):
    seen_auth: ClassVar[list[str | None]] = []

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        Handler.seen_auth.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(
                403, {"error": "permission denied", "code": 7, "message": "permission denied"}
            )
            return
        prefix = "/api/v1/applications/"
        name = self.path.split("?")[0].removeprefix(prefix)
        if name == "broken":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>")
            return
        app = APPS.get(name)
        if app is None:
            message = f'applications.argoproj.io "{name}" not found'
            self._send(404, {"error": message, "code": 5, "message": message})
            return
        self._send(200, app)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_statuses_are_mapped(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", TOKEN)
    port: h.DeliveryStatus = ArgoCDStatus(server)
    acme = port.application_status("acme")
    assert (acme.sync, acme.health, acme.revision) == (
        h.SyncStatus.SYNCED,
        h.HealthStatus.HEALTHY,
        SHA,
    )
    assert acme.operation is h.OperationPhase.SUCCEEDED
    beta = port.application_status("beta")
    assert beta.sync is h.SyncStatus.OUT_OF_SYNC and beta.revision == SHA
    assert beta.health is h.HealthStatus.DEGRADED
    assert beta.message == "Deployment has timed out"
    assert beta.operation is h.OperationPhase.FAILED
    gamma = port.application_status("gamma")
    assert (gamma.sync, gamma.health) == (h.SyncStatus.UNKNOWN, h.HealthStatus.UNKNOWN)
    missing = port.application_status("nope")
    assert missing.health is h.HealthStatus.MISSING and "not found" in missing.message
    verdict = h.wave_verdict([acme, beta], SHA)
    assert verdict.verdict is h.Verdict.FAILED


def test_refusals_and_bad_answers_are_unavailable_and_never_show_the_token(
    server: str,
) -> None:
    wrong = ArgoCDStatus(server, token="wrong-" + TOKEN)
    with pytest.raises(h.StatusUnavailable) as caught:
        wrong.application_status("acme")
    assert "HTTP 403" in str(caught.value) and TOKEN not in str(caught.value)
    assert TOKEN not in repr(wrong)
    port = ArgoCDStatus(server, token=TOKEN)
    with pytest.raises(h.StatusUnavailable, match="not JSON"):
        port.application_status("broken")
    with pytest.raises(h.StatusUnavailable, match="not an application name"):
        port.application_status("a/b")
    no_token = ArgoCDStatus(server, token_env="CHANGEGATE_TEST_NO_SUCH_VARIABLE")
    with pytest.raises(h.StatusUnavailable, match="no token: set CHANGEGATE_TEST_NO_SUCH"):
        no_token.application_status("acme")


def test_unreachable_server() -> None:
    port = ArgoCDStatus("http://127.0.0.1:9", token=TOKEN, timeout_seconds=2)
    with pytest.raises(h.StatusUnavailable, match="unreachable"):
        port.application_status("acme")
