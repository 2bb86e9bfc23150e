"""`changegate serve` as a real process: sample catalog on first run, the API answering."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_cli_harness import TIMEOUT_SECONDS, command, make_cli

# How long to wait for the server to answer before giving up (a hang guard, not a test).
STARTUP_GUARD_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, user: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"X-Changegate-User": user} if user else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def wait_until_up(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_GUARD_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"changegate serve exited with {process.returncode}")
        try:
            if get(url)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    pytest.fail("changegate serve did not answer")


def test_serve_writes_the_sample_and_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
    env["CHANGEGATE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'changegate.db'}"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command(), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(process, f"{base}/healthz")
            status, body = get(f"{base}/api/v1/changes", user="alice")
            assert status == 200
            assert isinstance(body, dict)
            assert body["items"] == []
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text()
    assert (tmp_path / "platform" / "people.yaml").is_file()
    assert "wrote the sample platform there" in text
    assert f"http://127.0.0.1:{port}" in text


def test_serve_refuses_a_public_bind_in_development_mode(tmp_path: Path, sample_dir: Path) -> None:
    cli = make_cli(tmp_path, sample_dir)
    refused = cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), expect=2)
    assert "refusing to serve on 0.0.0.0" in refused.stderr
