"""HTTP probes against a real HTTP server in the test answering like Odoo's /web/health."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from changegate.adapters import probes


class Handler(BaseHTTPRequestHandler):
    db_up = True
    legacy = False  # an Odoo build that ignores db_server_status

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/web/health":
            body: dict[str, Any] = {"status": "pass"}
            status = 200
            if "db_server_status=1" in query and not Handler.legacy:
                body["db_server_status"] = Handler.db_up
                if not Handler.db_up:
                    body["status"] = "fail"
                    status = 500
            self._send(status, json.dumps(body).encode(), "application/json")
        elif path == "/web/login":
            self._send(200, b"<html>login</html>", "text/html")
        elif path == "/slow/web/login":
            time.sleep(0.4)
            self._send(200, b"<html>login</html>", "text/html")
        elif path == "/hang/web/health":
            time.sleep(3)
            self._send(200, b"{}", "application/json")
        elif path == "/html/web/health":
            self._send(200, b"<html>maintenance</html>", "text/html")
        else:
            self._send(503, b"unavailable", "text/plain")

    def _send(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (a timeout test)
            self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    Handler.db_up, Handler.legacy = True, False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_odoo_health_passes_and_checks_the_database(server: str) -> None:
    ok = probes.odoo_health(server)
    assert ok.passed and ok.status == 200 and ok.url.endswith("/web/health")
    db = probes.odoo_health(server + "/", db_server_status=True)
    assert db.passed and db.url.endswith("/web/health?db_server_status=1")
    Handler.db_up = False
    down = probes.odoo_health(server, db_server_status=True)
    assert not down.passed and down.status == 500
    assert "cannot reach its PostgreSQL" in down.reason


def test_an_odoo_that_ignores_db_server_status_fails_that_probe(server: str) -> None:
    Handler.legacy = True
    found = probes.odoo_health(server, db_server_status=True)
    assert not found.passed and "no db_server_status" in found.reason
    assert probes.odoo_health(server).passed


def test_timeouts_errors_and_non_json(server: str) -> None:
    slow = probes.odoo_health(server + "/hang", timeout=0.5)
    assert not slow.passed and "no answer within 0.5 s" in slow.reason
    html = probes.odoo_health(server + "/html")
    assert not html.passed and "not Odoo's health JSON" in html.reason
    error = probes.odoo_health(server + "/nothing")
    assert not error.passed and error.status == 503
    refused = probes.odoo_health("http://127.0.0.1:9")
    assert not refused.passed and "unreachable" in refused.reason
    assert not probes.odoo_health("file:///etc/passwd").passed


def test_login_page_within_n_ms(server: str) -> None:
    fast = probes.login_page(server + "/web/login", within_ms=2000)
    assert fast.passed and fast.elapsed_ms is not None
    slow = probes.login_page(server + "/slow/web/login", within_ms=100, timeout=5)
    assert not slow.passed and "over the 100 ms limit" in slow.reason
    missing = probes.login_page(server + "/nope", within_ms=1000)
    assert not missing.passed and "HTTP 503" in missing.reason


def test_series_support() -> None:
    assert probes.supports_web_health("15.0") and not probes.supports_web_health("14.0")
    assert probes.supports_db_server_status("17.0")
    assert probes.supports_db_server_status("saas-17.2")
    assert not probes.supports_db_server_status("15.0")
    assert not probes.supports_db_server_status("garbage")
