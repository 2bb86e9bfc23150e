"""`changegate audit ...` and `changegate db upgrade` as real processes, tampering included.

The tampering is done the way an attacker with file access would: sqlite3 on the database.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import stat
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from changegate.domain import audit
from changegate.services.audit import EXPORT_FIELDS
from tests.e2e.test_cli_harness import Cli, copy_sqlite, make_cli, sql, sqlite_path
from tests.factories import change_yaml


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> str:
    """An SQLite database holding a short, intact audit trail; copy it, never change it."""
    workdir = tmp_path_factory.mktemp("trail")
    cli = make_cli(workdir, sample_dir)
    (workdir / "change.yaml").write_text(change_yaml())
    cli("--as", "alice", "change", "create", "-f", "change.yaml")
    cli("--as", "alice", "change", "submit", "CHG-1")
    cli("--as", "alice", "change", "assess", "CHG-1")
    cli("--as", "bob", "change", "comment", "CHG-1", "-m", "scheduled for tonight")
    cli("--as", "carol", "change", "transition", "CHG-1", "on-hold", "--reason", "ok")
    return cli.database_url


@pytest.fixture
def cli(trail: str, tmp_path: Path, sample_dir: Path) -> Cli:
    """A Cli on a fresh copy of the trail."""
    return make_cli(tmp_path, sample_dir, copy_sqlite(trail, tmp_path / "copy.db"))


def count_events(cli: Cli) -> int:
    with closing(sqlite3.connect(sqlite_path(cli.database_url))) as conn:
        return int(conn.execute("SELECT count(*) FROM audit_events").fetchone()[0])


def forge_after(cli: Cli, seq: int) -> None:
    """Insert a well-formed event (correct hash and link) after `seq`, renumbering the rest."""
    with closing(sqlite3.connect(sqlite_path(cli.database_url))) as conn:
        row = conn.execute(
            "SELECT occurred_at, actor, actor_name, action, object_type, object_id, before, "
            "after, request_id, hash FROM audit_events WHERE seq = ?",
            (seq,),
        ).fetchone()
        forged = audit.seal(
            audit.AuditEvent(
                seq=seq + 1,
                occurred_at=datetime.fromisoformat(row[0]).replace(tzinfo=UTC),
                actor="mallory",
                actor_name="Mallory",
                action="change.transitioned",
                object_type="change",
                object_id="CHG-1",
                before={"state": "draft"},
                after={"state": "closed"},
                request_id=None,
                prev_hash=row[9],
            )
        )
        conn.execute("UPDATE audit_events SET seq = -seq WHERE seq > ?", (seq,))
        conn.execute("UPDATE audit_events SET seq = 1 - seq WHERE seq < 0")
        conn.execute(
            "INSERT INTO audit_events (seq, occurred_at, actor, actor_name, action, "
            "object_type, object_id, before, after, request_id, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                forged.seq,
                row[0],
                forged.actor,
                forged.actor_name,
                forged.action,
                forged.object_type,
                forged.object_id,
                json.dumps(forged.before),
                json.dumps(forged.after),
                None,
                forged.prev_hash,
                forged.hash,
            ),
        )
        conn.commit()


def test_verify_an_intact_trail(cli: Cli) -> None:
    human = cli("--as", "frank", "audit", "verify")
    assert human.stdout.startswith(f"audit trail intact: {count_events(cli)} events")
    report = cli("--as", "frank", "audit", "verify", "--json").json()
    assert report["ok"] is True
    assert report["first_bad_seq"] is None
    assert set(report) >= {"ok", "count", "head_hash", "first_bad_seq", "problem", "checkpoint"}


def test_reading_the_trail_needs_audit_permission(cli: Cli) -> None:
    refused = cli("--as", "alice", "audit", "verify", expect=2)
    assert "may not audit:read" in refused.stderr
    assert "auditor" in refused.stderr  # who may


@pytest.mark.parametrize(
    ("tamper", "first_bad", "words"),
    [
        ("update", 3, "altered"),
        ("delete", 3, "missing"),
        ("insert", 5, "altered"),
        ("reorder", 3, "altered"),
    ],
)
def test_verify_names_the_first_bad_event(
    cli: Cli, tamper: str, first_bad: int, words: str
) -> None:
    if tamper == "update":
        sql(cli.database_url, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    elif tamper == "delete":
        sql(cli.database_url, "DELETE FROM audit_events WHERE seq = 3")
    elif tamper == "insert":
        forge_after(cli, 3)  # a forged #4 that links correctly; the old #4, now #5, breaks
    else:
        sql(
            cli.database_url,
            "UPDATE audit_events SET seq = -1 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = 4",
            "UPDATE audit_events SET seq = 4 WHERE seq = -1",
        )
    broken = cli("--as", "frank", "audit", "verify", "--json", expect=2)
    report = broken.json()
    assert report["ok"] is False
    assert report["first_bad_seq"] == first_bad
    assert words in report["problem"]
    assert f"#{first_bad}" in report["problem"]
    assert f"not trustworthy from event #{first_bad}" in broken.stderr
    if tamper == "update":
        assert report["first_bad_event"]["actor"] == "mallory"
        human = cli("--as", "frank", "audit", "verify", expect=2)
        assert human.stdout.startswith(f"audit trail BROKEN at event #{first_bad}: ")
        assert "mallory" in human.stdout


def test_checkpoint_catches_truncation(cli: Cli, tmp_path: Path) -> None:
    keys = cli("audit", "keygen", "--out", "audit.key", "--public", "audit.pub")
    private = (tmp_path / "audit.key").read_text()
    assert "PRIVATE KEY" in private
    assert "PRIVATE KEY" not in keys.stdout + keys.stderr
    assert private.splitlines()[1] not in keys.stdout + keys.stderr
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600
    overwrite = cli("audit", "keygen", "--out", "audit.key", expect=1)
    assert "refusing to overwrite" in overwrite.stderr

    unsigned = cli("--as", "frank", "audit", "checkpoint", expect=1)
    assert "CHANGEGATE_AUDIT_SIGNING_KEY" in unsigned.stderr
    cli(
        "--as",
        "frank",
        "audit",
        "checkpoint",
        "-o",
        "checkpoint.json",
        env={"CHANGEGATE_AUDIT_SIGNING_KEY": "audit.key"},
    )
    document = json.loads((tmp_path / "checkpoint.json").read_text())
    seen = document["checkpoint"]["count"]
    assert seen == count_events(cli) - 1  # the checkpoint itself is recorded after it
    verify_env = {"CHANGEGATE_AUDIT_VERIFY_KEY": "audit.pub"}
    ok = cli(
        "--as",
        "frank",
        "audit",
        "verify",
        "--checkpoint",
        "checkpoint.json",
        "--json",
        env=verify_env,
    ).json()
    assert ok["ok"] is True
    assert ok["checkpoint"]["count"] == seen

    # Cut the last events off: the head row still remembers them...
    sql(cli.database_url, f"DELETE FROM audit_events WHERE seq >= {seen - 1}")
    head = cli("--as", "frank", "audit", "verify", "--json", expect=2).json()
    assert head["first_bad_seq"] == seen - 1
    assert "cut from the end" in head["problem"]
    # ...and once the head row is rewound too, the shorter chain is consistent on its own...
    sql(
        cli.database_url,
        f"UPDATE audit_head SET seq = {seen - 2}, "
        f"hash = (SELECT hash FROM audit_events WHERE seq = {seen - 2})",
    )
    assert cli("--as", "frank", "audit", "verify", "--json").json()["ok"] is True
    # ...but not against the checkpoint kept elsewhere.
    cut = cli(
        "--as",
        "frank",
        "audit",
        "verify",
        "--checkpoint",
        "checkpoint.json",
        "--json",
        env=verify_env,
        expect=2,
    ).json()
    assert cut["ok"] is False
    assert cut["first_bad_seq"] == seen - 1
    assert "truncated" in cut["problem"]

    forged = dict(document, signature=document["signature"][::-1])
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    rejected = cli(
        "--as", "frank", "audit", "verify", "--checkpoint", "forged.json", env=verify_env, expect=1
    )
    assert "does not verify" in rejected.stderr


def test_export_jsonl_and_csv(cli: Cli, tmp_path: Path) -> None:
    before = count_events(cli)
    exported = cli("--as", "frank", "audit", "export", "--format", "jsonl", "-o", "trail.jsonl")
    lines = (tmp_path / "trail.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == list(range(1, before + 2))  # + the export itself
    assert list(events[0]) == sorted(EXPORT_FIELDS)  # canonical JSON: sorted keys
    assert events[-1]["action"] == "audit.exported"
    assert f"exported {len(events)} events to trail.jsonl" in exported.stderr

    as_csv = cli("--as", "frank", "audit", "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert tuple(rows[0]) == EXPORT_FIELDS
    assert len(rows) == before + 2
    assert json.loads(rows[1]["after"])["state"] == "draft"

    future = cli("--as", "frank", "audit", "export", "--since", "2999-01-01T00:00:00Z")
    assert future.stdout == ""
    window = cli(
        "--as",
        "frank",
        "audit",
        "export",
        "--since",
        "2000-01-01T00:00:00Z",
        "--until",
        "2999-01-01T00:00:00+01:00",
    )
    assert len(window.stdout.splitlines()) == before + 4  # four exports so far
    bad = cli("--as", "frank", "audit", "export", "--since", "last tuesday", expect=1)
    assert "--since: not an ISO 8601" in bad.stderr


def test_export_period_rules_are_the_services(cli: Cli) -> None:
    """Naive times and empty periods are refused as the API refuses them, and not recorded."""
    before = count_events(cli)
    refused = {
        ("--since", "2026-01-01T00:00:00"): (
            "error: --since: needs a timezone offset, e.g. 2026-11-01T00:00:00Z"
        ),
        ("--until", "2026-01-01"): (
            "error: --until: needs a timezone offset, e.g. 2026-11-01T00:00:00Z"
        ),
        ("--since", "2026-01-01T00:00:00Z", "--until", "2026-01-01T01:00:00+01:00"): (
            "error: --until: until must be after since"
        ),
        ("--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"): (
            "error: --until: until must be after since"
        ),
    }
    for options, message in refused.items():
        result = cli("--as", "frank", "audit", "export", *options, expect=1)
        assert result.stderr.splitlines() == [message], options
        assert result.stdout == ""
    assert count_events(cli) == before


def test_db_upgrade_on_a_fresh_file(tmp_path: Path, sample_dir: Path) -> None:
    database = tmp_path / "fresh" / "cg.db"
    cli = make_cli(tmp_path, sample_dir, f"sqlite:///{database}")
    first = cli("db", "upgrade")
    assert database.exists()
    assert "is at revision" in first.stdout
    with closing(sqlite3.connect(database)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"changes", "audit_events", "alembic_version"} <= tables
    again = cli("db", "upgrade")
    assert again.stdout == first.stdout
