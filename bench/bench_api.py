"""Change create + submit throughput through the HTTP API, on SQLite and on PostgreSQL.

Starts `changegate serve` as a real process per backend and drives it over loopback with
httpx. The baseline, measured in the same run against the same server, is GET /healthz (the
HTTP floor: routing, middleware, no database), so the ratio says what a create + submit costs
beyond serving a request.

    python bench/bench_api.py [--changes 300] [--clients 4] [--backend sqlite --backend postgresql]

PostgreSQL comes from CHANGEGATE_TEST_PG_URL or the local Debian cluster (as root), like tests.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import pgserver
from tests.factories import change_data

from changegate.adapters import sample_platform
from changegate.store import db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    database_url: str, catalog: Path, workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = os.environ | {
        "CHANGEGATE_DATABASE_URL": database_url,
        "CHANGEGATE_CATALOG_DIR": str(catalog),
    }
    exe = Path(sys.executable).with_name("changegate")
    process = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not become ready")


def run_clients(
    clients: int, per_client: int, work: Callable[[httpx.Client], None], base: str
) -> float:
    """Operations per second with `clients` threads each doing `per_client` operations."""
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client() -> None:
        with httpx.Client(
            base_url=base, headers={"X-Changegate-User": "alice"}, timeout=60
        ) as http:
            barrier.wait()
            try:
                for _ in range(per_client):
                    work(http)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"benchmark failed: {errors[0]!r}")
    return clients * per_client / elapsed


def healthz(http: httpx.Client) -> None:
    http.get("/healthz").raise_for_status()


def create_and_submit(http: httpx.Client) -> None:
    created = http.post("/api/v1/changes", json=change_data())
    created.raise_for_status()
    change: dict[str, Any] = created.json()
    submitted = http.post(
        f"/api/v1/changes/{change['id']}/submit", json={"version": change["version"]}
    )
    submitted.raise_for_status()


def database_for(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    server = pgserver.server_url()
    if server is None:
        raise SystemExit("no PostgreSQL: set CHANGEGATE_TEST_PG_URL or run as root")
    name = f"cg_bench_{uuid.uuid4().hex[:8]}"
    admin = db.make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300, help="create+submit pairs per backend")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        catalog = workdir / "platform"
        sample_platform.write_sample(catalog)
        per_client = max(1, args.changes // args.clients)
        print(f"{args.clients} clients x {per_client} operations each; baseline GET /healthz")
        for backend in backends:
            process, base = start_server(database_for(backend, workdir), catalog, workdir)
            try:
                run_clients(args.clients, 20, create_and_submit, base)  # warm-up
                floor = run_clients(args.clients, per_client * 4, healthz, base)
                pairs = run_clients(args.clients, per_client, create_and_submit, base)
            finally:
                process.terminate()
                process.wait(timeout=30)
            print(
                f"{backend:>10}: create+submit {pairs:8.1f} pairs/s   "
                f"healthz {floor:8.1f} req/s   ratio (pair time / request time) "
                f"{floor / pairs:6.1f}x"
            )


if __name__ == "__main__":
    main()
