"""The harness the CLI end-to-end tests share, and the tests of the process contract itself.

Every test runs the installed `changegate` console script in a real subprocess, in a
temporary working directory, with only the CHANGEGATE_* variables the test gives it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changegate import __version__
from tests.factories import change_yaml

# Guards against a hung child only; no test asserts on time.
TIMEOUT_SECONDS = 120


def command() -> list[str]:
    script = Path(sys.executable).with_name("changegate")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "changegate"]


@dataclass(frozen=True)
class Result:
    """What one run of the CLI produced."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"changegate {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


@dataclass
class Cli:
    """Runs `changegate` against one database and one catalog folder."""

    workdir: Path
    database_url: str
    catalog_dir: Path | None
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        expect: int | None = 0,
        env: dict[str, str] | None = None,
        columns: int = 80,
    ) -> Result:
        """Run the CLI; unless expect is None, fail with its output when the exit code differs."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
        environment.update(
            {
                "CHANGEGATE_DATABASE_URL": self.database_url,
                "COLUMNS": str(columns),
                "LINES": "50",
                "PYTHONIOENCODING": "utf-8",
            }
        )
        if self.catalog_dir is not None:
            environment["CHANGEGATE_CATALOG_DIR"] = str(self.catalog_dir)
        environment.update(self.env)
        environment.update(env or {})
        data = stdin.encode() if isinstance(stdin, str) else stdin
        completed = subprocess.run(
            [*command(), *args],
            cwd=self.workdir,
            env=environment,
            input=data,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        result = Result(
            tuple(args),
            completed.returncode,
            completed.stdout.decode("utf-8"),
            completed.stderr.decode("utf-8"),
        )
        if expect is not None:
            assert result.code == expect, str(result)
        return result


def make_cli(workdir: Path, catalog_dir: Path | None, database_url: str | None = None) -> Cli:
    """A Cli on an SQLite file in workdir (or the given URL)."""
    return Cli(workdir, database_url or f"sqlite:///{workdir / 'changegate.db'}", catalog_dir)


def widest_line(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def sql(url: str, *statements: str) -> None:
    """Run statements on an SQLite database directly, as someone with file access could."""
    with closing(sqlite3.connect(sqlite_path(url))) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def copy_sqlite(source_url: str, target: Path) -> str:
    """Copy an SQLite database (with its WAL files) and return the copy's URL."""
    source = sqlite_path(source_url)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite:///{target}"


# --------------------------------------------------------------------------- the contract


def test_console_script_prints_its_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.stdout.strip() == f"changegate {__version__}"


def test_bare_command_prints_help_and_exits_0(cli: Cli) -> None:
    result = cli()
    assert "change" in result.stdout
    assert "audit" in result.stdout


def test_usage_errors_exit_1_not_2(cli: Cli) -> None:
    """Click would exit 2; our contract keeps 2 for `refused by a rule`."""
    unknown = cli("chnage", "list", expect=1)
    assert "error:" in unknown.stderr
    bad_value = cli("--as", "alice", "change", "transition", "CHG-1", "bogus", "--json", expect=1)
    assert "bogus" in bad_value.stderr
    assert bad_value.json()["error"]["type"] == "usage"


def test_bad_setting_is_invalid_input_naming_the_variable(cli: Cli) -> None:
    result = cli("catalog", "validate", "--json", env={"CHANGEGATE_PORT": "eighty"}, expect=1)
    assert "error: CHANGEGATE_PORT:" in result.stderr
    assert result.json()["error"]["errors"][0]["field"] == "CHANGEGATE_PORT"
    assert "eighty" not in result.stderr


def test_unreachable_database_is_internal_and_hides_the_password(cli: Cli) -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/nothing"
    result = cli("--as", "alice", "--database-url", url, "change", "list", "--json", expect=4)
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert result.json()["error"]["type"] == "internal"
    assert "Traceback" not in result.stderr


def file_change(cli: Cli, name: str = "change.yaml", **overrides: object) -> str:
    """File the factory's change (with overrides) as alice; its id."""
    (cli.workdir / name).write_text(change_yaml(**overrides))
    created = cli("--as", "alice", "change", "create", "-f", name, "--json").json()
    change_id: str = created["id"]
    return change_id


FORWARD = ("draft", "assess", "authorize", "scheduled", "implementing", "review", "closed")


def approve_until_authorized(cli: Cli, change_id: str) -> dict[str, Any]:
    """Approve through the CLI as the first candidate of each missing need until the
    decision is authorized; returns the last decision."""
    decision: dict[str, Any] = cli(
        "--as", "frank", "change", "approvals", change_id, "--json"
    ).json()["decision"]
    while not decision["authorized"]:
        need = next(n for n in decision["needs"] if not n["satisfied"])
        assert need["candidates"], decision["reason"]
        narrow = ["--tenant", need["tenant"]] if need["tenant"] else ["--role", need["role"]]
        person = need["candidates"][0]
        decision = cli("--as", person, "change", "approve", change_id, *narrow, "--json").json()
    return decision


def drive(cli: Cli, change_id: str, target: str, mover: str = "bob") -> dict[str, Any]:
    """Move a change forward through the CLI until it is in `target`: submit (as alice),
    assess, authorize, approve, schedule, implement, review, close; returns its JSON."""
    change: dict[str, Any] = cli("--as", mover, "change", "show", change_id, "--json").json()
    while change["state"] != target:
        state = change["state"]
        if state == "draft":
            change = cli("--as", "alice", "change", "submit", change_id, "--json").json()
            continue
        if state == "assess":
            cli("--as", mover, "change", "assess", change_id, "--json")
            change = cli("--as", mover, "change", "show", change_id, "--json").json()
            if change["state"] != "assess":
                continue
        if state == "authorize":
            approve_until_authorized(cli, change_id)
        following = FORWARD[FORWARD.index(state) + 1]
        extra = ["--close-code", "successful"] if following == "closed" else []
        change = cli(
            "--as", mover, "change", "transition", change_id, following, *extra, "--json"
        ).json()
    return change
