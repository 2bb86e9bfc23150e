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
from datetime import timedelta
from pathlib import Path

import pytest

from changegate import bootstrap
from changegate.cli import main as cli_main
from changegate.services import rollout as rollout_service
from changegate.settings import Settings
from tests.api.test_rollout_routes import implementing_as
from tests.e2e.test_cli_harness import TIMEOUT_SECONDS, command, make_cli
from tests.integration.test_rollout import at, make_remote, wave_commits

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
    assert "no rollout worker in this process: CHANGEGATE_GITOPS_WORKDIR is unset" in text


def test_serve_refuses_a_public_bind_in_development_mode(tmp_path: Path, sample_dir: Path) -> None:
    cli = make_cli(tmp_path, sample_dir)
    refused = cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), expect=2)
    assert "refusing to serve on 0.0.0.0" in refused.stderr


def test_serve_runs_a_rollout_worker_when_a_gitops_workdir_is_set(
    tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    remote, clone = make_remote(tmp_path)
    url = f"sqlite:///{tmp_path / 'changegate.db'}"
    make_cli(tmp_path, sample_dir, url)("db", "upgrade")
    app = bootstrap.create(Settings(database_url=url, catalog_dir=sample_dir))
    catalog = app.catalog()
    change_id, starts = implementing_as(app, catalog)
    # Started at the first wave's start (its approvals valid then); the embedded worker runs
    # on the real clock, later than every slot: wave 1 goes, then bakes for an hour.
    when = at(catalog, "bob", starts[0])
    rollout_service.start(app.engine, catalog, when, change_id, bake=timedelta(hours=1))
    app.engine.dispose()

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
    env |= {
        "CHANGEGATE_DATABASE_URL": url,
        "CHANGEGATE_CATALOG_DIR": str(sample_dir),
        "CHANGEGATE_GITOPS_WORKDIR": str(clone),
    }
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
            deadline = time.monotonic() + STARTUP_GUARD_SECONDS
            body: object = None
            while time.monotonic() < deadline:
                status, body = get(f"{base}/api/v1/changes/{change_id}/rollout", user="frank")
                assert status == 200, body
                assert isinstance(body, dict)
                if body["current"] == "wave 1/3 bake":
                    break
                time.sleep(0.2)
            assert isinstance(body, dict) and body["current"] == "wave 1/3 bake", body
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert [c["Wave"] for c in wave_commits(remote, change_id)] == ["1/3"]
    text = log.read_text()
    assert "runs in this process: it commits waves to main through" in text


@pytest.mark.parametrize(
    ("workdir", "embedded", "said"),
    [
        (False, True, "CHANGEGATE_GITOPS_WORKDIR is unset"),
        (True, False, "CHANGEGATE_WORKER_EMBEDDED is false"),
    ],
)
def test_serve_says_why_no_worker_runs_in_it(
    tmp_path: Path,
    sample_dir: Path,
    capsys: pytest.CaptureFixture[str],
    workdir: bool,
    embedded: bool,
    said: str,
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'changegate.db'}",
        catalog_dir=sample_dir,
        gitops_workdir=tmp_path if workdir else None,
        worker_embedded=embedded,
    )
    app = bootstrap.create(settings)
    try:
        assert cli_main.embed_worker(app) is None
    finally:
        app.engine.dispose()
    assert f"no rollout worker in this process: {said}" in capsys.readouterr().err
