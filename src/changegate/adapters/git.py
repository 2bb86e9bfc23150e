"""Git, read-only: resolve a commit range, list the files it changes, read blobs at a commit.

Every call is one `git` process with a fixed argv (never a shell) and a timeout. Paths come
back NUL-separated (`-z`), so names with spaces, quotes, tabs or line breaks arrive as they
are. Blobs are read with `git cat-file` (plumbing: no textconv, no filters, no pager), their
size checked first so a huge file is skipped rather than read.

Every failure is an InvalidInput naming the repository and what was asked: not a Git
repository, an unknown commit, a malformed range, git missing or too slow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from changegate.errors import InvalidInput, PermanentError, Problem

GIT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_BLOB_BYTES = 4 * 1024 * 1024
# A batch of blob reads holds at most this many bytes in memory at once.
_BATCH_BYTES = 64 * 1024 * 1024
MAX_CHANGED_FILES = 10_000
MAX_COMMITS = 1000
_REV = re.compile(r"^[A-Za-z0-9._/@{}^~+-]{1,255}$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SUBMODULE = "160000"
_SYMLINK = "120000"


class Status(StrEnum):
    """How a file changed between two commits."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    COPIED = "copied"
    TYPE_CHANGED = "type-changed"


_STATUS = {
    "A": Status.ADDED,
    "M": Status.MODIFIED,
    "D": Status.DELETED,
    "R": Status.RENAMED,
    "C": Status.COPIED,
    "T": Status.TYPE_CHANGED,
}


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """One changed file: its path at B (at A when deleted), the old path of a rename, and
    the blob ids and modes on each side (an all-zero id where the side has no file)."""

    status: Status
    path: str
    old_path: str | None
    old_blob: str
    new_blob: str
    old_mode: str
    new_mode: str

    @property
    def regular_at_new(self) -> bool:
        """A regular file at B (not deleted, not a symlink or submodule)."""
        return self.status is not Status.DELETED and self.new_mode not in (_SUBMODULE, _SYMLINK)

    @property
    def regular_at_old(self) -> bool:
        return self.status is not Status.ADDED and self.old_mode not in (_SUBMODULE, _SYMLINK)


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True, slots=True)
class Blob:
    """A blob read (content) or skipped (content None, with the reason)."""

    content: bytes | None
    size: int
    skipped: str | None = None


def _fail(message: str, field: str = "repo") -> InvalidInput:
    return InvalidInput([Problem(message, field=field)])


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """A commit: its id, subject, whole message and the files it touches."""

    sha: str
    subject: str
    message: str
    paths: list[str]


class Repository:
    """A local Git repository (a work tree or a bare one), read through the git command."""

    def __init__(self, path: Path, *, timeout: float = GIT_TIMEOUT_SECONDS) -> None:
        self.path = path
        self.timeout = timeout
        git = shutil.which("git")
        if git is None:
            raise _fail("git is not installed (or not on PATH)")
        self._git = git
        if not path.exists():
            raise _fail(f"{path}: no such folder")
        if not path.is_dir():
            raise _fail(f"{path}: not a folder")
        done = self._run(["rev-parse", "--git-dir"], check=False)
        if done.returncode != 0:
            raise _fail(f"{path} is not a Git repository ({_first_line(done.stderr)})")

    # ------------------------------------------------------------------ running git

    def _run(
        self,
        args: Sequence[str],
        *,
        check: bool = True,
        stdin: bytes | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            "LC_ALL": "C",
            "GIT_PAGER": "cat",
            **(extra_env or {}),
        }
        argv = [self._git, "-C", str(self.path), "--no-pager", *args]
        try:
            # A fixed argv and no shell: user input is an argument, never parsed as a command.
            done = subprocess.run(  # noqa: S603
                argv,
                input=stdin,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise _fail(
                f"git {args[0]} in {self.path} took longer than {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise _fail(f"could not run git: {exc.strerror or exc}") from None
        if check and done.returncode != 0:
            raise _fail(f"git {args[0]} failed in {self.path}: {_first_line(done.stderr)}")
        return done

    # ------------------------------------------------------------------ commits

    def resolve(self, revision: str) -> str:
        """The full commit id a revision (sha, branch, tag, HEAD~2) names."""
        if not _REV.match(revision) or revision.startswith("-"):
            raise _fail(f"not a commit: {revision!r}", "range")
        done = self._run(
            ["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], check=False
        )
        sha = done.stdout.decode("ascii", "replace").strip()
        if done.returncode != 0 or not _SHA.match(sha):
            raise _fail(f"unknown commit {revision!r} in {self.path}", "range")
        return sha

    def resolve_range(self, text: str) -> tuple[str, str]:
        """`A..B` to the two full commit ids; `A...B` and lone revisions are refused."""
        value = text.strip()
        if "..." in value:
            raise _fail(
                f"{text!r}: give a two-dot range A..B (the changes from A to B), not A...B",
                "range",
            )
        left, dots, right = value.partition("..")
        if not dots or not left or not right:
            raise _fail(f"{text!r} is not a range: give A..B, e.g. main~1..main", "range")
        return self.resolve(left), self.resolve(right)

    def commits(self, start: str, end: str) -> list[Commit]:
        """The commits in start..end, newest first, at most MAX_COMMITS."""
        done = self._run(
            [
                "log",
                "-z",
                "--no-color",
                f"--max-count={MAX_COMMITS}",
                "--format=%H%x00%s",
                f"{start}..{end}",
                "--",
            ]
        )
        fields = done.stdout.decode("utf-8", "replace").split("\x00")
        return [
            Commit(sha, subject.strip())
            for sha, subject in zip(fields[0::2], fields[1::2], strict=False)
            if _SHA.match(sha.strip())
        ]

    # ------------------------------------------------------------------ changed files

    def changed_files(self, start: str, end: str) -> list[ChangedFile]:
        """Every file that differs between two commits (renames found), in path order."""
        done = self._run(
            [
                "diff",
                "--raw",
                "-z",
                "--no-abbrev",
                "-M",
                "--no-ext-diff",
                "--no-textconv",
                "--no-color",
                start,
                end,
                "--",
            ]
        )
        return _parse_raw(done.stdout)

    # ------------------------------------------------------------------ blobs

    def read_blobs(
        self, ids: Sequence[str], *, max_bytes: int = DEFAULT_MAX_BLOB_BYTES
    ) -> dict[str, Blob]:
        """The blobs by id; one over max_bytes, or binary (a NUL byte), is skipped."""
        wanted = sorted({i for i in ids if _SHA.match(i) and set(i) != {"0"}})
        if not wanted:
            return {}
        sizes = self._sizes(wanted)
        result: dict[str, Blob] = {}
        batch: list[str] = []
        held = 0
        for blob_id in wanted:
            size = sizes.get(blob_id)
            if size is None:
                result[blob_id] = Blob(None, 0, "not a blob in the repository")
            elif size > max_bytes:
                result[blob_id] = Blob(None, size, f"larger than {max_bytes:,} bytes")
            else:
                if held + size > _BATCH_BYTES and batch:
                    result.update(self._contents(batch))
                    batch, held = [], 0
                batch.append(blob_id)
                held += size
        if batch:
            result.update(self._contents(batch))
        return result

    def _sizes(self, ids: Sequence[str]) -> dict[str, int]:
        done = self._run(
            ["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
            stdin="".join(f"{i}\n" for i in ids).encode("ascii"),
        )
        sizes: dict[str, int] = {}
        for line in done.stdout.decode("ascii", "replace").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "blob" and parts[2].isdigit():
                sizes[parts[0]] = int(parts[2])
        return sizes

    def _contents(self, ids: Sequence[str]) -> dict[str, Blob]:
        done = self._run(["cat-file", "--batch"], stdin="".join(f"{i}\n" for i in ids).encode())
        data = done.stdout
        result: dict[str, Blob] = {}
        position = 0
        while position < len(data):
            end = data.index(b"\n", position)
            header = data[position:end].decode("ascii", "replace").split()
            position = end + 1
            if len(header) != 3 or not header[2].isdigit():
                continue  # "<id> missing"
            size = int(header[2])
            content = data[position : position + size]
            position += size + 1
            if b"\x00" in content[:8192]:
                result[header[0]] = Blob(None, size, "binary file")
            else:
                result[header[0]] = Blob(content, size)
        return result

    def tree(self, commit: str) -> list[tuple[str, str]]:
        """(path, blob id) of every regular file at commit."""
        done = self._run(["ls-tree", "-r", "-z", "--full-tree", commit])
        found: list[tuple[str, str]] = []
        for entry in done.stdout.split(b"\x00"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            parts = meta.decode("ascii", "replace").split()
            if len(parts) == 3 and parts[1] == "blob" and parts[0] in ("100644", "100755"):
                found.append((raw_path.decode("utf-8", "replace"), parts[2]))
        return found

    def commit_infos(self, start: str, end: str) -> list[CommitInfo]:
        done = self._run(
            [
                "log",
                "-z",
                "--no-color",
                f"--max-count={MAX_COMMITS}",
                "--format=%H%x1f%s%x1f%B",
                f"{start}..{end}",
                "--",
            ]
        )
        infos: list[CommitInfo] = []
        for record in done.stdout.decode("utf-8", "replace").split("\x00"):
            sha, _, rest = record.strip("\n").partition("\x1f")
            subject, _, message = rest.partition("\x1f")
            if len(sha) >= 40:
                infos.append(CommitInfo(sha, subject.strip(), message, self._touched(sha)))
        return infos

    def _touched(self, sha: str) -> list[str]:
        done = self._run(
            ["diff-tree", "--root", "-r", "-z", "--no-commit-id", "--name-only", "-m", sha]
        )
        return sorted({p.decode("utf-8", "replace") for p in done.stdout.split(b"\x00") if p})

    def remotes(self) -> list[str]:
        """The names of the repository's remotes."""
        done = self._run(["remote"], check=False)
        return done.stdout.decode("ascii", "replace").split()

    def fetch_refs(self, remote: str, refspecs: Sequence[str]) -> bool:
        """Fetch refspecs from remote (no tags); False when git refuses."""
        done = self._run(["fetch", "--quiet", "--no-tags", remote, *refspecs], check=False)
        return done.returncode == 0

    def has_ref(self, ref: str) -> bool:
        """Whether a ref (a branch, a remote-tracking branch) exists."""
        done = self._run(["rev-parse", "--verify", "--quiet", ref], check=False)
        return done.returncode == 0

    def merge_base(self, one: str, other: str) -> str | None:
        """The best common ancestor of two commits, or None when they share none."""
        done = self._run(["merge-base", "--", one, other], check=False)
        text = done.stdout.decode("ascii", "replace").strip()
        return text if done.returncode == 0 and text else None


def _first_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    lines = [line.removeprefix("fatal: ").strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def _parse_raw(output: bytes) -> list[ChangedFile]:
    """`git diff --raw -z` output: `:old_mode new_mode old new STATUS\\0path\\0[path\\0]`."""
    fields = output.split(b"\x00")
    files: list[ChangedFile] = []
    index = 0
    while index < len(fields) and fields[index]:
        meta = fields[index].decode("ascii", "replace").lstrip(":").split()
        index += 1
        if len(meta) != 5:
            raise _fail(f"unexpected git diff output: {fields[index - 1][:80]!r}")
        old_mode, new_mode, old_blob, new_blob, code = meta
        status = _STATUS.get(code[:1])
        if status is None:
            raise _fail(f"unexpected git diff status {code!r}")
        first = _path(fields[index])
        index += 1
        old_path: str | None = None
        path = first
        if status in (Status.RENAMED, Status.COPIED):
            old_path, path = first, _path(fields[index])
            index += 1
        files.append(ChangedFile(status, path, old_path, old_blob, new_blob, old_mode, new_mode))
        if len(files) > MAX_CHANGED_FILES:
            raise _fail(
                f"the range changes more than {MAX_CHANGED_FILES:,} files; file smaller changes",
                "range",
            )
    files.sort(key=lambda f: f.path)
    return files


def _path(raw: bytes) -> str:
    # Git stores names as bytes; an undecodable byte shows as U+FFFD.
    return raw.decode("utf-8", "replace")


# --------------------------------------------------------------------------- writing (rollouts)

GIT_IDENTITY = ("changegate", "changegate@localhost")


@dataclass(frozen=True, slots=True)
class Carry:
    """A commit range whose diff on some paths a commit carries onto the branch."""

    start: str
    end: str
    paths: tuple[str, ...]


class PushRejected(Exception):
    """The remote refused the push (another commit landed first): fetch and try again."""


@dataclass(frozen=True, slots=True)
class PushedCommit:
    """A commit on the remote branch: made now (`created`), or found by its trailers."""

    sha: str
    created: bool


class Clone(Repository):
    """A clone of the GitOps repository whose remote is `origin`, written through plumbing.

    Commits are built from the remote branch's tip with a private index file (never the work
    tree nor its index, so a dirty or busy work tree does not matter and concurrent writers
    do not share an index lock), then pushed to `origin`. `find_by_trailers` finds a commit
    again on the remote branch by its trailers, which makes a retried write idempotent.
    """

    def fetch(self, branch: str) -> str | None:
        """Fetch `origin/<branch>`; its tip, or None when the remote has no such branch."""
        _check_branch(branch)
        done = self._run(["ls-remote", "--heads", "origin", f"refs/heads/{branch}"])
        if not done.stdout.strip():
            return None
        self._run(
            ["fetch", "--quiet", "--no-tags", "origin", f"+refs/heads/{branch}:{_tracking(branch)}"]
        )
        return self.resolve(_tracking(branch))

    def find_by_trailers(self, tip: str, trailers: dict[str, str]) -> str | None:
        """The newest commit reachable from `tip` whose trailers include every given one."""
        args = ["log", "-z", "--no-color", "-F", "--all-match", "--format=%H%x00%(trailers:unfold)"]
        args += [f"--grep={key}: {value}" for key, value in trailers.items()]
        done = self._run([*args, tip, "--"])
        fields = done.stdout.decode("utf-8", "replace").split("\x00")
        for sha, block in zip(fields[0::2], fields[1::2], strict=False):
            found: dict[str, set[str]] = {}
            for line in block.splitlines():
                key, sep, value = line.partition(":")
                if sep:
                    found.setdefault(key.strip(), set()).add(value.strip())
            if all(value in found.get(key, set()) for key, value in trailers.items()):
                return sha.strip()
        return None

    def trailer(self, sha: str, key: str) -> str | None:
        """The value of trailer `key` in commit `sha`'s message (the first), or None."""
        if not _SHA.match(sha) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,63}", key):
            raise _fail(f"not a commit and trailer: {sha!r} {key!r}", "commit")
        done = self._run(
            ["log", "-1", f"--format=%(trailers:key={key},valueonly,unfold)", sha, "--"]
        )
        lines = [line.strip() for line in done.stdout.decode("utf-8", "replace").splitlines()]
        return next((line for line in lines if line), None)

    def commit_file(
        self,
        branch: str,
        path: str,
        content: bytes,
        message: str,
        *,
        trailers: dict[str, str],
        identity: tuple[str, str] = GIT_IDENTITY,
    ) -> PushedCommit:
        """Write one file on the remote branch in one commit (see `commit_files`)."""
        return self.commit_files(
            branch, lambda _tip: {path: content}, message, trailers=trailers, identity=identity
        )

    def commit_files(
        self,
        branch: str,
        files: Callable[[str], Mapping[str, bytes]],
        message: str,
        *,
        trailers: dict[str, str],
        identity: tuple[str, str] = GIT_IDENTITY,
        sign_key: str | None = None,
        carry: Carry | None = None,
    ) -> PushedCommit:
        """Write the files `files(tip)` returns (path -> content, computed from the remote
        branch's tip) in one commit with `message` (which carries the `trailers`) and push
        it; when a commit with those trailers is already on the remote branch, return it and
        write nothing. PushRejected when another push landed first. With `carry`, the diff
        of that range on those paths is applied first (three-way, onto the tip)."""

        def stage(tip: str, env: Mapping[str, str]) -> None:
            if carry is not None and carry.paths:
                self._apply_range(carry, env, branch)
            wanted = sorted(files(tip).items())
            if not wanted:
                return
            blobs = self._hash_objects([content for _path, content in wanted])
            entries = [
                f"100644 {blob}\t{path}\0".encode()
                for (path, _), blob in zip(wanted, blobs, strict=True)
            ]
            # One index update for every file (the index is rewritten once, not per file).
            self._run(
                ["update-index", "-z", "--index-info"], stdin=b"".join(entries), extra_env=env
            )

        return self._write(branch, stage, message, trailers, identity, sign_key)

    def _apply_range(self, carry: Carry, env: Mapping[str, str], branch: str) -> None:
        """Apply `git diff start end -- paths` to the private index, three-way."""
        # The paths come from a range whose author is not trusted: literal, never patterns.
        diff = self._run(
            ["diff", "--binary", "--full-index", carry.start, carry.end, "--", *carry.paths],
            extra_env={"GIT_LITERAL_PATHSPECS": "1"},
        )
        if not diff.stdout:
            return
        applied = self._run(
            ["apply", "--cached", "--3way", "--whitespace=nowarn", "-"],
            stdin=diff.stdout,
            extra_env=env,
            check=False,
        )
        if applied.returncode != 0:
            raise PermanentError(
                f"cannot carry {carry.start[:12]}..{carry.end[:12]} onto {branch}: the branch "
                f"changed the same lines since ({_first_line(applied.stderr)})"
            )

    def _hash_objects(self, contents: Sequence[bytes]) -> list[str]:
        """Write the contents as blobs with one `git hash-object` process (through files in a
        private folder of the git directory, named by position); their ids, in order."""
        git_dir = Path(self._run(["rev-parse", "--absolute-git-dir"]).stdout.decode().strip())
        folder = git_dir / f"changegate-blobs-{os.getpid()}-{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            names = []
            for index, content in enumerate(contents):
                path = folder / str(index)
                path.write_bytes(content)
                names.append(str(path))
            done = self._run(
                ["hash-object", "-w", "--no-filters", "--stdin-paths"],
                stdin=("\n".join(names) + "\n").encode(),
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        found = done.stdout.decode().split()
        if len(found) != len(contents):
            raise _fail(f"git hash-object gave {len(found)} ids for {len(contents)} files")
        return found

    def revert(
        self,
        branch: str,
        commit: str,
        message: str,
        *,
        trailers: dict[str, str],
        identity: tuple[str, str] = GIT_IDENTITY,
        sign_key: str | None = None,
    ) -> PushedCommit:
        """Undo `commit` on top of the remote branch's tip in one commit (its diff applied in
        reverse, three-way, as `git revert` does) and push it; idempotent by `trailers` like
        `commit_files`. InvalidInput when later commits changed the same lines (a conflict a
        person must settle)."""
        if not _SHA.match(commit):
            raise _fail(f"not a commit id: {commit!r}", "commit")

        def stage(tip: str, env: Mapping[str, str]) -> None:
            diff = self._run(["diff", "--binary", "--full-index", f"{commit}^", commit, "--"])
            if not diff.stdout:
                return
            applied = self._run(
                ["apply", "--cached", "--reverse", "--3way", "--whitespace=nowarn", "-"],
                stdin=diff.stdout,
                extra_env=env,
                check=False,
            )
            if applied.returncode != 0:
                raise PermanentError(
                    f"cannot revert {commit[:12]} on {branch}: later commits changed the same "
                    f"lines ({_first_line(applied.stderr)})"
                )

        return self._write(branch, stage, message, trailers, identity, sign_key)

    def _write(
        self,
        branch: str,
        stage: Callable[[str, Mapping[str, str]], None],
        message: str,
        trailers: dict[str, str],
        identity: tuple[str, str],
        sign_key: str | None,
    ) -> PushedCommit:
        """The one write path: fetch, find by trailers, stage into a private index built from
        the tip, commit (signed with `sign_key` when given) and push."""
        tip = self.fetch(branch)
        if tip is None:
            raise _fail(f"origin of {self.path} has no branch {branch!r}")
        existing = self.find_by_trailers(tip, trailers)
        if existing is not None:
            return PushedCommit(existing, created=False)
        git_dir = Path(self._run(["rev-parse", "--absolute-git-dir"]).stdout.decode().strip())
        index = git_dir / f"changegate-index-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            env = {"GIT_INDEX_FILE": str(index)}
            self._run(["read-tree", tip], extra_env=env)
            stage(tip, env)
            tree = self._run(["write-tree"], extra_env=env).stdout.decode().strip()
        finally:
            index.unlink(missing_ok=True)
        name, email = identity
        args = ["-c", f"user.name={name}", "-c", f"user.email={email}", "commit-tree", tree]
        if sign_key:
            args.append(f"-S{sign_key}")
        made = self._run([*args, "-p", tip, "-F", "-"], stdin=message.encode("utf-8"))
        commit = made.stdout.decode().strip()
        pushed = self._run(
            ["push", "--quiet", "--porcelain", "origin", f"{commit}:refs/heads/{branch}"],
            check=False,
        )
        if pushed.returncode != 0:
            raise PushRejected(_first_line(pushed.stderr))
        return PushedCommit(commit, created=True)


def _tracking(branch: str) -> str:
    return f"refs/remotes/origin/{branch}"


def _check_branch(branch: str) -> None:
    if not _REV.match(branch) or branch.startswith("-") or ".." in branch:
        raise _fail(f"not a branch name: {branch!r}", "branch")
