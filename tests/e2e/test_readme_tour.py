"""The README's tour runs as written: every command exits as its comment says.

The tour's `sh` block is turned into a bash script: each `changegate` line is followed by a
check of its exit code (0, or N when its comment says "(exit N)"); heredocs and other lines
run as they are. The script runs in an empty folder with the project's `changegate` first
on PATH, on a fresh SQLite database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_EXIT = re.compile(r"\(exit (\d)\)")


def tour_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A five-minute tour", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    return block.splitlines()


def script(lines: list[str]) -> str:
    out = ["set -u"]
    in_heredoc: str | None = None
    for line in lines:
        if in_heredoc is not None:
            out.append(line)
            if line == in_heredoc:
                in_heredoc = None
            continue
        heredoc = re.search(r"<<'(\w+)'", line)
        if heredoc:
            in_heredoc = heredoc.group(1)
            out.append(line)
            continue
        command = line.split("#", 1)[0].strip()
        if not command:
            continue
        expected = EXPECTED_EXIT.search(line)
        code = expected.group(1) if expected else "0"
        # Output is dropped unless the line writes a file itself (sed ... > file).
        out.append(command + (" 2>tour.err" if ">" in command else " >/dev/null 2>tour.err"))
        out.append(
            f'rc=$?; if [ "$rc" -ne {code} ]; then echo "exit $rc, not {code}: '
            f'{command.replace(chr(34), chr(39))}"; cat tour.err; exit 1; fi'
        )
    return "\n".join(out) + "\n"


def test_every_tour_step_exits_as_the_readme_says(tmp_path: Path) -> None:
    lines = tour_block()
    assert any("change approve" in line for line in lines)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEGATE_")}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment["CHANGEGATE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'changegate.db'}"
    environment["COLUMNS"] = "80"
    completed = subprocess.run(
        ["bash", "-c", script(lines)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
