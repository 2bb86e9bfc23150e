"""Outside programs the policy rules may use: promtool and cosign, run as subprocesses.

`SubprocessTools` implements the `Tools` port of domain/policy/changeset.py. A method returns
None when its program is not on PATH (the rule then says so plainly), otherwise
`(passed, output)`. Every run has a timeout and its output is bounded: it is written to
temporary files and only the first `max_output` bytes of each stream are read back, so a tool
that prints without end costs neither memory nor a hung check. A tool that times out or cannot
be started counts as failed, never as passed.

Secrets: the command line is never put in the output. Values of cosign arguments that carry a
secret (`--registry-password`, `--registry-token`, any flag naming a password, token or secret)
are replaced by `***` wherever the tool's output repeats them. The child inherits the
environment (cosign needs HOME, DOCKER_CONFIG, proxies, SIGSTORE_* settings).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from typing import IO

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT = 16_384
_SECRET_WORDS = ("password", "token", "secret", "passphrase")
_REDACTED = "***"


class SubprocessTools:
    """promtool and cosign found on PATH and run with a timeout."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
        search_path: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`search_path` overrides PATH for finding the programs ("" finds none)."""
        self.timeout = timeout
        self.max_output = max_output
        self.search_path = search_path
        self.env = dict(env) if env is not None else None

    def which(self, program: str) -> str | None:
        """The program's path, or None when it is not installed."""
        path = self.search_path if self.search_path is not None else os.environ.get("PATH", "")
        if not path:
            return None
        return shutil.which(program, path=path)

    def promtool_check_rules(self, path: str) -> tuple[bool, str] | None:
        """(passed, output) of `promtool check rules PATH`; None without promtool."""
        executable = self.which("promtool")
        if executable is None:
            return None
        return self._run("promtool check rules", [executable, "check", "rules", path], ())

    def cosign_verify(self, image: str, arguments: Sequence[str]) -> tuple[bool, str] | None:
        """(verified, output) of `cosign verify ARGUMENTS IMAGE`; None without cosign."""
        executable = self.which("cosign")
        if executable is None:
            return None
        if image.startswith("-"):
            return False, f"refusing to verify an image reference starting with '-': {image!r}"
        command = [executable, "verify", *arguments, image]
        return self._run("cosign verify", command, _secret_values(arguments))

    def _run(self, label: str, command: list[str], secrets: Sequence[str]) -> tuple[bool, str]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                # A session of its own, so a timeout ends the program and anything it started.
                process = subprocess.Popen(  # noqa: S603 - a fixed program, no shell
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self.env,
                    start_new_session=True,
                )
            except OSError as exc:
                return False, f"{label} could not be started: {exc.strerror or type(exc).__name__}"
            try:
                returncode = process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                text = _redact(self._read(out, err), secrets)
                detail = f": {text}" if text else ""
                return False, f"{label} timed out after {self.timeout:g} s{detail}"
            text = _redact(self._read(out, err), secrets)
            return returncode == 0, text

    def _read(self, out: IO[bytes], err: IO[bytes]) -> str:
        parts = []
        for stream in (out, err):
            stream.seek(0)
            data = stream.read(self.max_output + 1)
            text = data[: self.max_output].decode("utf-8", errors="replace")
            if len(data) > self.max_output:
                text += "\n[output truncated]"
            if text.strip():
                parts.append(text.rstrip())
        return "\n".join(parts)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.wait()


def _secret_values(arguments: Sequence[str]) -> list[str]:
    """Values given to flags whose name says they carry a secret."""
    found: list[str] = []
    expecting = False
    for argument in arguments:
        if expecting:
            expecting = False
            if argument:
                found.append(argument)
            continue
        if not argument.startswith("-"):
            continue
        name, sep, value = argument.partition("=")
        if any(word in name.lower() for word in _SECRET_WORDS):
            if sep:
                if value:
                    found.append(value)
            else:
                expecting = True
    return found


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return text
