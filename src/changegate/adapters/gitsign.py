"""Signed commits: `git verify-commit` against a private keyring of the allowed keys only.

`keyring(keys)` makes a temporary GNUPGHOME (mode 0700, removed afterwards) and imports
each configured ASCII-armoured OpenPGP public key into it with `gpg --batch --import`. The
user's own keyring, agent and keyservers are never consulted: the home holds only those keys,
and its gpg.conf says `no-autostart` (no gpg-agent is started: verifying needs none) and
`no-auto-key-retrieve` (an unknown signer is not fetched from anywhere).

`Keyring.verify(repo, sha)` reads the commit object first: no `gpgsig` header is
**unsigned**; an SSH or X.509 signature is refused as such. Otherwise it runs
`git verify-commit --raw <sha>` with GNUPGHOME pointing at the private home (and
`gpg.program` pinned to the gpg found on PATH) and judges gpg's status lines (`judge`):
only a `VALIDSIG` whose fingerprint (or primary-key fingerprint) belongs to an imported key
passes; `BADSIG` is a **bad signature**, `ERRSIG` with code 9 an **unknown key**, an expired
or revoked key or an expired signature fails with that reason. git's exit code is not
trusted on its own: it depends on gpg's trust model, the fingerprint does not.

Every failure to set the keyring up is an InvalidInput naming the key file and the catalog
field (`spec.signing.keys[i]`): a missing or unreadable file, a private key, a file with no
public key in it, gpg missing from PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from changegate.errors import InvalidInput, Problem

GPG_TIMEOUT_SECONDS = 30.0
MAX_KEY_BYTES = 1024 * 1024
_STATUS = "[GNUPG:] "
_GPG_CONF = "no-autostart\nno-auto-key-retrieve\ntrust-model always\n"
_PUBLIC_ARMOUR = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
_PRIVATE_ARMOUR = b"-----BEGIN PGP PRIVATE KEY BLOCK-----"
_PGP_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
_OTHER_SIGNATURES = {
    "-----BEGIN SSH SIGNATURE-----": "an SSH signature",
    "-----BEGIN SIGNED MESSAGE-----": "an X.509 signature",
}
# ERRSIG return codes (gpg's doc/DETAILS).
_ERRSIG_CODES = {"4": "an unsupported algorithm", "9": "a missing public key"}


@dataclass(frozen=True, slots=True)
class KeyFile:
    """One configured public key file: where it is, how to name it, its catalog field."""

    path: Path
    shown: str
    field: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a commit's signature is acceptable, and why (`unsigned`, `unknown key FPR`...)."""

    ok: bool
    reason: str
    fingerprint: str | None = None


def _problem(key: KeyFile, message: str) -> InvalidInput:
    return InvalidInput([Problem(f"{key.shown}: {message}", field=key.field)])


def _first_line(raw: bytes) -> str:
    for line in raw.decode("utf-8", "replace").splitlines():
        text = line.strip()
        if text and not text.startswith(_STATUS.strip()):
            return text.removeprefix("gpg: ").removeprefix("fatal: ").removeprefix("error: ")
    return "no message"


def judge(status: str, known: Mapping[str, str]) -> Verdict:
    """The verdict on gpg's `--status-fd` lines for one signature.

    `known` maps the fingerprints (primary keys and subkeys, upper case) of the imported
    keys to the file each came from.
    """
    by_name: dict[str, list[list[str]]] = {}
    for line in status.splitlines():
        record = line[len(_STATUS) :].split() if line.startswith(_STATUS) else []
        if record:
            by_name.setdefault(record[0], []).append(record[1:])
    if "BADSIG" in by_name:
        keyid = by_name["BADSIG"][0][0] if by_name["BADSIG"][0] else "?"
        return Verdict(False, f"bad signature (key {keyid})")
    if "ERRSIG" in by_name:
        fields = by_name["ERRSIG"][0]
        keyid = fields[0] if fields else "?"
        code = fields[5] if len(fields) > 5 else "?"
        fingerprint = fields[6] if len(fields) > 6 and fields[6] != "-" else keyid
        if code == "9":
            return Verdict(False, f"unknown key {fingerprint.upper()}", fingerprint.upper())
        why = _ERRSIG_CODES.get(code, f"gpg error {code}")
        return Verdict(False, f"bad signature (not checkable: {why}, key {fingerprint})")
    valid = by_name.get("VALIDSIG")
    if len(by_name.get("NEWSIG", [])) > 1:
        return Verdict(False, "bad signature (more than one signature)")
    if not valid:
        return Verdict(False, "bad signature (gpg reported no valid signature)")
    fields = valid[0]
    signing = fields[0].upper() if fields else ""
    primary = fields[9].upper() if len(fields) > 9 else signing
    for name, reason in (
        ("REVKEYSIG", "signed by revoked key"),
        ("EXPKEYSIG", "signed by expired key"),
        ("EXPSIG", "expired signature by key"),
    ):
        if name in by_name:
            return Verdict(False, f"{reason} {primary}", primary)
    if "GOODSIG" not in by_name:
        return Verdict(False, "bad signature (gpg reported no good signature)")
    source = known.get(signing) or known.get(primary)
    if source is None:
        return Verdict(False, f"unknown key {primary}", primary)
    return Verdict(True, f"signed by {primary} ({source})", primary)


def signature_of(commit_object: bytes) -> str | None:
    """The `gpgsig` (or `gpgsig-sha256`) header of a raw commit object, or None."""
    text = commit_object.decode("utf-8", "replace")
    header, _, _ = text.partition("\n\n")
    lines: list[str] | None = None
    for line in header.split("\n"):
        if lines is not None:
            if line.startswith(" "):
                lines.append(line[1:])
                continue
            break
        name, _, value = line.partition(" ")
        if name in ("gpgsig", "gpgsig-sha256"):
            lines = [value]
    return "\n".join(lines) if lines is not None else None


class Keyring:
    """A private GNUPGHOME holding only the configured keys; use it through `keyring()`."""

    def __init__(self, home: Path, gpg: str, known: Mapping[str, str], timeout: float) -> None:
        self.home = home
        self.gpg = gpg
        self.known = dict(known)
        self.timeout = timeout
        git = shutil.which("git")
        if git is None:
            raise InvalidInput([Problem("git is not installed (or not on PATH)", field="repo")])
        self._git = git

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GNUPGHOME": str(self.home),
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PAGER": "cat",
        }

    def _git_run(self, repo: Path, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        argv = [
            self._git,
            # A repository's config must not choose the program that judges its signatures.
            "-c",
            f"gpg.program={self.gpg}",
            "-c",
            f"gpg.openpgp.program={self.gpg}",
            "-C",
            str(repo),
            *args,
        ]
        try:
            # A fixed argv and no shell; the sha is a full hex id from `git log`.
            return subprocess.run(  # noqa: S603
                argv, capture_output=True, timeout=self.timeout, check=False, env=self._env()
            )
        except subprocess.TimeoutExpired:
            raise InvalidInput(
                [
                    Problem(
                        f"git {args[0]} in {repo} took longer than {self.timeout:g} s", field="repo"
                    )
                ]
            ) from None
        except OSError as exc:
            raise InvalidInput(
                [Problem(f"could not run git: {exc.strerror or exc}", field="repo")]
            ) from None

    def verify(self, repo: Path, sha: str) -> Verdict:
        """The verdict on one commit's signature (see the module docstring)."""
        shown = self._git_run(repo, ["cat-file", "commit", sha])
        if shown.returncode != 0:
            raise InvalidInput(
                [
                    Problem(
                        f"cannot read commit {sha} in {repo}: {_first_line(shown.stderr)}",
                        field="range",
                    )
                ]
            )
        signature = signature_of(shown.stdout)
        if signature is None:
            return Verdict(False, "unsigned")
        for marker, what in _OTHER_SIGNATURES.items():
            if signature.startswith(marker):
                return Verdict(False, f"{what}, not OpenPGP: only OpenPGP keys are configured")
        if not signature.startswith(_PGP_SIGNATURE):
            return Verdict(False, "bad signature (not an OpenPGP signature)")
        done = self._git_run(repo, ["verify-commit", "--raw", sha])
        status = done.stderr.decode("utf-8", "replace")
        if _STATUS not in status:
            raise InvalidInput(
                [
                    Problem(
                        f"git verify-commit could not check {sha[:12]} in {repo}: "
                        f"{_first_line(done.stderr)}",
                        field="signing",
                    )
                ]
            )
        return judge(status, self.known)


def _gpg(
    home: Path, gpg: str, args: Sequence[str], stdin: bytes | None, timeout: float
) -> subprocess.CompletedProcess[bytes]:
    argv = [gpg, "--homedir", str(home), "--batch", "--no-tty", *args]
    env = {**os.environ, "GNUPGHOME": str(home), "LC_ALL": "C"}
    # A fixed argv and no shell: the key comes in on stdin.
    return subprocess.run(  # noqa: S603
        argv, input=stdin, capture_output=True, timeout=timeout, check=False, env=env
    )


def _read_key(key: KeyFile) -> bytes:
    if not key.path.exists():
        raise _problem(key, "no such key file")
    if not key.path.is_file():
        raise _problem(key, "not a file")
    try:
        with key.path.open("rb") as handle:
            raw = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise _problem(key, f"cannot read the key file ({exc.strerror or exc})") from None
    if len(raw) > MAX_KEY_BYTES:
        raise _problem(key, f"larger than {MAX_KEY_BYTES:,} bytes: not a public key file")
    if _PRIVATE_ARMOUR in raw:
        raise _problem(
            key, "holds a private key: give the public key (`gpg --armor --export KEYID`)"
        )
    if _PUBLIC_ARMOUR not in raw:
        raise _problem(
            key,
            "not an ASCII-armoured OpenPGP public key (`gpg --armor --export KEYID` makes one)",
        )
    return raw


def _import(home: Path, gpg: str, key: KeyFile, raw: bytes, timeout: float) -> list[str]:
    """Import one key file; the primary fingerprints it brought (IMPORT_OK status lines)."""
    try:
        done = _gpg(home, gpg, ["--status-fd", "1", "--import"], raw, timeout)
    except subprocess.TimeoutExpired:
        raise _problem(key, f"gpg --import took longer than {timeout:g} s") from None
    except OSError as exc:
        raise _problem(key, f"could not run gpg: {exc.strerror or exc}") from None
    found: list[str] = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if line.startswith(_STATUS) and len(parts) >= 4 and parts[1] == "IMPORT_OK":
            found.append(parts[3].upper())
    if not found:
        raise _problem(key, f"gpg imported no public key from it ({_first_line(done.stderr)})")
    return found


def _fingerprints(home: Path, gpg: str, timeout: float) -> dict[str, str]:
    """Every fingerprint in the keyring (primary keys and subkeys) -> its primary's."""
    done = _gpg(home, gpg, ["--with-colons", "--fixed-list-mode", "--list-keys"], None, timeout)
    found: dict[str, str] = {}
    primary: str | None = None
    expect: str | None = None
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            expect = fields[0]
        elif fields[0] == "fpr" and len(fields) > 9 and expect is not None:
            fingerprint = fields[9].upper()
            if expect == "pub":
                primary = fingerprint
            if primary is not None:
                found[fingerprint] = primary
            expect = None
    return found


@contextmanager
def keyring(
    keys: Sequence[KeyFile],
    *,
    timeout: float = GPG_TIMEOUT_SECONDS,
    catalog_file: str | None = None,
) -> Iterator[Keyring]:
    """A private keyring holding exactly `keys`; removed when the block ends.

    `catalog_file` (the GitOpsRepository's file) is named when gpg is not installed.
    """
    gpg = shutil.which("gpg")
    if gpg is None:
        message = "gpg is not installed (or not on PATH): signed commits cannot be verified"
        raise InvalidInput([Problem(message, file=catalog_file, field="spec.signing.required")])
    raws = [(key, _read_key(key)) for key in keys]
    home = Path(tempfile.mkdtemp(prefix="changegate-gpg-"))
    try:
        home.chmod(0o700)
        (home / "gpg.conf").write_text(_GPG_CONF)
        sources: dict[str, str] = {}
        for key, raw in raws:
            for primary in _import(home, gpg, key, raw, timeout):
                sources.setdefault(primary, key.shown)
        known = {
            fingerprint: sources[primary]
            for fingerprint, primary in _fingerprints(home, gpg, timeout).items()
            if primary in sources
        }
        yield Keyring(home, gpg, known, timeout)
    finally:
        shutil.rmtree(home, ignore_errors=True)
