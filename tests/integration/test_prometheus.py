"""Verification against a real Prometheus (Debian's /usr/bin/prometheus): it scrapes a tiny
exporter this test serves, and the analysis drives one metric to Successful and another
to Failed through real instant queries. The adapter's errors are measurements, never
exceptions. Skipped only when the binary is absent and CI is not set."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from changegate.adapters import prometheus
from changegate.domain import analysis
from changegate.domain.analysis import Phase

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"
# Guards against a hung server only; no test asserts on time.
DEADLINE_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Exporter:
    """An HTTP exporter in the text exposition format, serving values the test sets."""

    def __init__(self) -> None:
        self.values = {"odoo_success_ratio": 0.99, "odoo_error_ratio": 0.20}
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines = []
                for name, value in exporter.values.items():
                    lines += [f"# TYPE {name} gauge", f'{name}{{tenant="litware"}} {value}']
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    served = Exporter()
    yield served
    served.close()


@pytest.fixture
def prometheus_url(tmp_path: Path, exporter: Exporter) -> Iterator[str]:
    if not Path(BINARY).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{BINARY} is missing and CI is set: install Debian's prometheus")
        pytest.skip(f"{BINARY} is not installed (apt-get install prometheus)")
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: exporter\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_sample(url, process, tmp_path / "prometheus.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for_sample(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll until the exporter's first sample is queryable (a few seconds after start)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    client = prometheus.Prometheus(url, timeout_seconds=5)
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            if client.query("odoo_success_ratio"):
                return
        except prometheus.QueryError as exc:
            last = str(exc)
        time.sleep(0.25)
    pytest.fail(f"no sample within {DEADLINE_SECONDS}s (last: {last}):\n{log.read_text()}")


def _metric(name: str, query: str, url: str, **fields: object) -> analysis.Metric:
    provider = analysis.Provider(
        prometheus=analysis.PrometheusProvider(address=url, query=query, timeout=10)
    )
    return analysis.Metric(name=name, provider=provider, **fields)  # type: ignore[arg-type]


def test_real_queries_drive_one_metric_to_success_and_another_to_failure(
    prometheus_url: str, exporter: Exporter
) -> None:
    success = _metric(
        "success-rate",
        'odoo_success_ratio{tenant="litware"}',
        prometheus_url,
        interval=timedelta(seconds=1),
        count=3,
        success_condition="len(result) > 0 && result[0] >= 0.95",
    )
    errors = _metric(
        "error-rate",
        'max(odoo_error_ratio{tenant="litware"})',
        prometheus_url,
        interval=timedelta(seconds=1),
        count=3,
        failure_limit=1,
        failure_condition="result[0] > 0.05",
    )
    run = analysis.Run([success])
    while not run.phase.completed:
        run.record("success-rate", prometheus.measure(success))
    assert run.phase is Phase.SUCCESSFUL
    assert run.metrics["success-rate"].measurements[0].value == [0.99]

    run = analysis.Run([errors])
    while not run.phase.completed:
        run.record("error-rate", prometheus.measure(errors))
    assert run.phase is Phase.FAILED
    assert run.metrics["error-rate"].failed == 2
    assert run.metrics["error-rate"].measurements[0].value == [0.2]


def test_a_value_changed_at_the_exporter_changes_the_outcome(
    prometheus_url: str, exporter: Exporter
) -> None:
    m = _metric(
        "success-rate",
        'odoo_success_ratio{tenant="litware"}',
        prometheus_url,
        success_condition="result[0] >= 0.95",
    )
    assert prometheus.measure(m).phase is Phase.SUCCESSFUL
    exporter.values["odoo_success_ratio"] = 0.5
    deadline = time.monotonic() + DEADLINE_SECONDS
    while prometheus.measure(m).phase is not Phase.FAILED:
        assert time.monotonic() < deadline, "the new value never reached Prometheus"
        time.sleep(0.25)


def test_scalar_nan_and_empty_results(prometheus_url: str) -> None:
    scalar = _metric("s", "scalar(vector(0.5))", prometheus_url, success_condition="result < 1")
    measured = prometheus.measure(scalar)
    assert measured.phase is Phase.SUCCESSFUL
    assert measured.value == 0.5
    nan = _metric("n", "vector(0) / 0", prometheus_url, success_condition="result[0] >= 0.95")
    measured = prometheus.measure(nan)
    assert measured.phase is Phase.FAILED
    assert isinstance(measured.value[0], float)
    assert measured.value[0] != measured.value[0]
    empty = _metric("e", "absent_metric_xyz", prometheus_url, success_condition="len(result) == 0")
    assert prometheus.measure(empty).value == []
    assert prometheus.measure(empty).phase is Phase.SUCCESSFUL


def test_errors_are_measurements(prometheus_url: str) -> None:
    bad_query = _metric("q", "sum(", prometheus_url, success_condition="true")
    measured = prometheus.measure(bad_query)
    assert measured.phase is Phase.ERROR
    assert "bad_data" in measured.message
    unreachable = _metric("u", "up", f"http://127.0.0.1:{_free_port()}")
    measured = prometheus.measure(unreachable)
    assert measured.phase is Phase.ERROR
    assert "cannot reach" in measured.message
    not_http = _metric("f", "up", "file:///etc/passwd")
    assert "http(s) URL" in prometheus.measure(not_http).message
    # A string result is not supported, as in Argo's provider.
    text = _metric("t", '"hello"', prometheus_url)
    measured = prometheus.measure(text)
    assert measured.phase is Phase.ERROR
    assert "not supported: string" in measured.message


def test_timeout_is_an_error_measurement() -> None:
    """A server that accepts but never answers: the client's timeout ends the measurement."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = prometheus.Prometheus(f"http://127.0.0.1:{port}", timeout_seconds=0.5)
        with pytest.raises(prometheus.QueryError, match="no answer"):
            client.query("up")


def test_a_server_that_is_not_prometheus(exporter: Exporter) -> None:
    m = _metric("x", "up", f"http://127.0.0.1:{exporter.port}")
    measured = prometheus.measure(m)
    assert measured.phase is Phase.ERROR
    assert "not JSON" in measured.message or "HTTP" in measured.message
