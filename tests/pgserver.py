"""Find or start a PostgreSQL server for tests and benchmarks.

CHANGEGATE_TEST_PG_URL wins when set. Otherwise, as root on Debian, the local cluster is started
with `pg_ctlcluster` and a throwaway password role is created (sockets use peer auth, TCP needs
a password). Returns None when neither works.
"""

from __future__ import annotations

import os
import shutil
import subprocess

PG_ROLE = "changegate_test"
PG_PASSWORD = "changegate_test_pw"


def server_url() -> str | None:
    return os.environ.get("CHANGEGATE_TEST_PG_URL") or _start_local_postgres()


def _start_local_postgres() -> str | None:
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        return None
    run = subprocess.run
    status = run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    line = next(iter(status.stdout.splitlines()), None)
    if line is None:
        return None
    version, name, port = line.split()[:3]
    if "online" not in line:
        run(["pg_ctlcluster", version, name, "start"], check=False, capture_output=True)
    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_ROLE}') THEN "
        f"CREATE ROLE {PG_ROLE} LOGIN CREATEDB PASSWORD '{PG_PASSWORD}'; END IF; END $$; "
        # DROP DATABASE ... WITH (FORCE) may have to stop an autovacuum worker in it.
        f"GRANT pg_signal_backend TO {PG_ROLE};"
    )
    made = run(
        ["runuser", "-u", "postgres", "--", "psql", "-p", port, "-qAtc", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        return None
    return f"postgresql+psycopg://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
