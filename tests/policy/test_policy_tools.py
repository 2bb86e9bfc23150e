"""SubprocessTools: finding promtool and cosign, timeouts, bounded output, no secret echoed."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from changegate.adapters.policy_tools import SubprocessTools
from changegate.domain.policy.changeset import Tools

DIGEST = "sha256:" + "a" * 64
IMAGE = f"registry.example.com/odoo@{DIGEST}"


def fake(folder: Path, name: str, script: str) -> None:
    """A fake program: a shell script on a PATH of its own."""
    target = folder / name
    target.write_text("#!/bin/sh\n" + script)
    target.chmod(target.stat().st_mode | stat.S_IXUSR)


def test_it_implements_the_tools_port() -> None:
    tools: Tools = SubprocessTools()
    assert tools is not None


def test_nothing_installed_on_an_empty_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    tools = SubprocessTools()
    assert tools.promtool_check_rules("rules.yaml") is None
    assert tools.cosign_verify(IMAGE, ["--key", "cosign.pub"]) is None


def test_nothing_installed_on_an_explicit_empty_search_path(tmp_path: Path) -> None:
    tools = SubprocessTools(search_path="")
    assert tools.promtool_check_rules(str(tmp_path / "rules.yaml")) is None
    assert tools.cosign_verify(IMAGE, []) is None
    assert SubprocessTools(search_path=str(tmp_path)).cosign_verify(IMAGE, []) is None


def test_promtool_arguments_and_result(tmp_path: Path) -> None:
    fake(tmp_path, "promtool", 'echo "args: $*"\n[ "$3" = good.yml ]\n')
    tools = SubprocessTools(search_path=str(tmp_path))
    assert tools.promtool_check_rules("good.yml") == (True, "args: check rules good.yml")
    passed, output = tools.promtool_check_rules("bad.yml")  # type: ignore[misc]
    assert passed is False
    assert output == "args: check rules bad.yml"


def test_stderr_is_kept_after_stdout(tmp_path: Path) -> None:
    fake(tmp_path, "promtool", 'echo "Checking x"\necho "x: broken" >&2\nexit 1\n')
    result = SubprocessTools(search_path=str(tmp_path)).promtool_check_rules("x")
    assert result == (False, "Checking x\nx: broken")


def test_cosign_arguments_come_before_the_image(tmp_path: Path) -> None:
    fake(tmp_path, "cosign", 'echo "$*"\n')
    tools = SubprocessTools(search_path=str(tmp_path))
    result = tools.cosign_verify(IMAGE, ["--key", "k8s://cosign/pub", "--certificate-identity=x"])
    assert result == (True, f"verify --key k8s://cosign/pub --certificate-identity=x {IMAGE}")


def test_cosign_failure_is_not_verified(tmp_path: Path) -> None:
    fake(tmp_path, "cosign", 'echo "Error: no matching signatures" >&2\nexit 10\n')
    result = SubprocessTools(search_path=str(tmp_path)).cosign_verify(IMAGE, [])
    assert result == (False, "Error: no matching signatures")


def test_an_image_that_looks_like_a_flag_is_refused(tmp_path: Path) -> None:
    fake(tmp_path, "cosign", "exit 0\n")
    verified, output = SubprocessTools(search_path=str(tmp_path)).cosign_verify(  # type: ignore[misc]
        "--allow-insecure-registry", []
    )
    assert verified is False
    assert "refusing" in output


def test_secrets_are_never_echoed(tmp_path: Path) -> None:
    # A tool that repeats its command line (as some error messages do).
    fake(tmp_path, "cosign", 'echo "failed: $*" >&2\nexit 1\n')
    tools = SubprocessTools(search_path=str(tmp_path))
    arguments = [
        "--key",
        "cosign.pub",
        "--registry-password",
        "hunter2-secret",
        "--registry-token=tok-123456",
        "--registry-username",
        "robot",
    ]
    verified, output = tools.cosign_verify(IMAGE, arguments)  # type: ignore[misc]
    assert verified is False
    assert "hunter2-secret" not in output
    assert "tok-123456" not in output
    assert "--registry-password ***" in output
    assert "--registry-token=***" in output
    assert "cosign.pub" in output and "robot" in output


def test_a_timeout_is_a_failure(tmp_path: Path) -> None:
    fake(tmp_path, "promtool", 'echo "started"\nexec sleep 30\n')
    tools = SubprocessTools(search_path=str(tmp_path), timeout=0.5)
    passed, output = tools.promtool_check_rules("rules.yml")  # type: ignore[misc]
    assert passed is False
    assert output == "promtool check rules timed out after 0.5 s: started"


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[0] != "Z"


def test_a_timeout_ends_what_the_program_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    fake(tmp_path, "cosign", f"sleep 30 &\necho $! > {pid_file}\nwait\n")
    tools = SubprocessTools(search_path=str(tmp_path), timeout=0.5)
    verified, _ = tools.cosign_verify(IMAGE, [])  # type: ignore[misc]
    assert verified is False
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(child):
        time.sleep(0.05)
    assert not alive(child), f"the program's child {child} outlived the timeout"


def test_output_is_bounded(tmp_path: Path) -> None:
    fake(tmp_path, "cosign", "head -c 5000000 /dev/zero | tr '\\0' x\nexit 1\n")
    tools = SubprocessTools(search_path=str(tmp_path), max_output=1000)
    verified, output = tools.cosign_verify(IMAGE, [])  # type: ignore[misc]
    assert verified is False
    assert len(output) < 1100
    assert output.endswith("[output truncated]")


def test_a_program_that_cannot_start_is_a_failure(tmp_path: Path) -> None:
    target = tmp_path / "promtool"
    target.write_bytes(b"\x7fELF not really a program")
    target.chmod(0o755)
    passed, output = SubprocessTools(search_path=str(tmp_path)).promtool_check_rules("x")  # type: ignore[misc]
    assert passed is False
    assert output.startswith("promtool check rules could not be started")


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (apt-get install prometheus provides /usr/bin/promtool)",
)
def test_real_promtool(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(
        "groups:\n  - name: g\n    rules:\n      - record: r:up\n        expr: sum(up)\n"
    )
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - record: r:up\n        expr: sum(up\n")
    tools = SubprocessTools()
    passed, output = tools.promtool_check_rules(str(good))  # type: ignore[misc]
    assert passed, output
    assert "SUCCESS" in output
    passed, output = tools.promtool_check_rules(str(bad))  # type: ignore[misc]
    assert not passed
    assert "FAILED" in output
