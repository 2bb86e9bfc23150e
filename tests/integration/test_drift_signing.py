"""Signed commits on governed paths, checked with the real gpg and `git verify-commit`.

Throwaway keys are made in the test (`gpg --quick-gen-key` into a temporary GNUPGHOME); the
allowed one is exported into the catalog folder, commits are signed with `git commit -S`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeRequest, ChangeState
from changegate.errors import InvalidInput
from changegate.services import drift as drift_service
from tests import catalog_builders as b
from tests.integration.test_drift import CONFIG, GIT_ENV, deployment, write

APP = "clusters/shared-1/tenants/acme/app.yaml"
PATHS = [
    {"pattern": "docs/", "ignore": True},
    {"pattern": "clusters/{cluster}/tenants/{tenant}/**"},
]


def gitops(signing: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": "https://git.example.com/platform/fleet.git", "paths": PATHS}
    if signing is not None:
        spec["signing"] = signing
    return b.doc("GitOpsRepository", "fleet", spec)


def need_gpg() -> str:
    found = shutil.which("gpg")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs gpg (Debian package gnupg) for the signed-commit tests")
        pytest.skip("gpg is not installed")
    return found


@dataclass(frozen=True)
class Signer:
    """A GNUPGHOME holding the secret keys of alice (allowed) and mallory (not)."""

    home: Path
    alice: str
    mallory: str

    def env(self) -> dict[str, str]:
        return {**GIT_ENV, "GNUPGHOME": str(self.home)}

    def git(self, repo: Path, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            env=self.env(),
            capture_output=True,
            check=True,
            timeout=60,
        )
        return done.stdout.decode().strip()

    def commit(self, repo: Path, message: str, key: str | None) -> str:
        self.git(repo, "add", "-A")
        if key is None:
            self.git(repo, "commit", "-q", "--no-gpg-sign", "-m", message)
        else:
            self.git(
                repo,
                "-c",
                "gpg.program=gpg",
                "-c",
                f"user.signingkey={key}",
                "commit",
                "-q",
                "-S",
                "-m",
                message,
            )
        return self.git(repo, "rev-parse", "HEAD")

    def export(self, fingerprint: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["gpg", "--batch", "--armor", "--export", fingerprint],
            env=self.env(),
            capture_output=True,
            check=True,
            timeout=60,
        )
        target.write_bytes(done.stdout)


def _generate(home: Path, uid: str) -> str:
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    listed = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--fingerprint", "--list-secret-keys", uid],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))


@pytest.fixture(scope="module")
def signer() -> Iterator[Signer]:
    need_gpg()
    # A short path: gpg-agent's socket lives in the home and socket paths are short.
    home = Path(tempfile.mkdtemp(prefix="cg-gpg-"))
    home.chmod(0o700)
    try:
        alice = _generate(home, "Alice Signer <alice@example.com>")
        mallory = _generate(home, "Mallory <mallory@example.com>")
        yield Signer(home, alice, mallory)
    finally:
        # Stop the agent key generation and signing started for this home, then remove it.
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"],
            env={**os.environ, "GNUPGHOME": str(home)},
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def catalog_dir(tmp_path: Path, signer: Signer) -> Path:
    folder = tmp_path / "platform"
    signer.export(signer.alice, folder / "keys" / "alice.asc")
    return folder


def catalog_with(signing: dict[str, Any] | None) -> catalog_model.Catalog:
    files = b.platform()
    files["gitops.yaml"] = [gitops(signing)]
    return catalog_model.build(
        b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r"
    )


REQUIRED = {"required": True, "keys": ["keys/alice.asc"]}


def authorized(change_id: str) -> ChangeRequest | None:
    spec: Any = None  # the drift check reads only the state
    number = int(change_id.removeprefix("CHG-"))
    return ChangeRequest(number, spec, "someone", state=ChangeState.IMPLEMENTING)


@pytest.fixture
def repo(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "fleet"
    path.mkdir()
    signer.git(path, "init", "-q", "-b", "main")
    write(path, APP, [deployment(), CONFIG])
    signer.commit(path, "initial\n\nChange-Id: CHG-1\n", signer.alice)
    return path


def test_only_commits_signed_by_a_configured_key_pass(
    repo: Path, signer: Signer, catalog_dir: Path
) -> None:
    base = signer.git(repo, "rev-parse", "HEAD")
    write(repo, APP, [deployment(image="odoo:17.1"), CONFIG])
    good = signer.commit(repo, "release\n\nChange-Id: CHG-7\n", signer.alice)
    write(repo, APP, [deployment(image="odoo:17.2"), CONFIG])
    unsigned = signer.commit(repo, "unsigned\n\nChange-Id: CHG-7\n", None)
    write(repo, APP, [deployment(image="odoo:17.3"), CONFIG])
    stranger = signer.commit(repo, "by mallory\n\nChange-Id: CHG-7\n", signer.mallory)
    write(repo, "docs/notes.md", "ungoverned, unsigned\n")
    signer.commit(repo, "docs", None)
    write(repo, APP, [deployment(image="odoo:17.4"), CONFIG])
    neither = signer.commit(repo, "hand edit", None)

    found, governed = drift_service.unauthorized_commits(
        catalog_with(REQUIRED), repo, f"{base}..main", authorized, catalog_dir=catalog_dir
    )
    assert governed == 4
    by_sha = {c.sha: c for c in found}
    assert good not in by_sha
    assert by_sha[unsigned].reason == "unsigned"
    assert by_sha[unsigned].signature == "unsigned"
    assert by_sha[stranger].reason == f"unknown key {signer.mallory}"
    assert by_sha[neither].reason == "no Change-Id trailer; unsigned"
    assert len(found) == 3
    assert by_sha[stranger].as_dict()["signature"] == f"unknown key {signer.mallory}"


def test_a_signature_that_does_not_match_the_commit_is_a_bad_signature(
    repo: Path, signer: Signer, catalog_dir: Path
) -> None:
    base = signer.git(repo, "rev-parse", "HEAD")
    write(repo, APP, [deployment(image="odoo:17.1"), CONFIG])
    good = signer.commit(repo, "release\n\nChange-Id: CHG-7\n", signer.alice)
    # The same signed object with another message: the signature no longer covers it.
    raw = signer.git(repo, "cat-file", "commit", good).replace("release", "tampered")
    forged = (
        subprocess.run(
            ["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"],
            input=(raw + "\n").encode(),
            env=signer.env(),
            capture_output=True,
            check=True,
            timeout=60,
        )
        .stdout.decode()
        .strip()
    )
    signer.git(repo, "update-ref", "refs/heads/main", forged)
    found, _ = drift_service.unauthorized_commits(
        catalog_with(REQUIRED), repo, f"{base}..main", authorized, catalog_dir=catalog_dir
    )
    assert [c.sha for c in found] == [forged]
    assert found[0].reason == f"bad signature (key {signer.alice[-16:]})"


def test_signatures_are_not_checked_unless_required(repo: Path, signer: Signer) -> None:
    base = signer.git(repo, "rev-parse", "HEAD")
    write(repo, APP, [deployment(image="odoo:17.1"), CONFIG])
    signer.commit(repo, "unsigned\n\nChange-Id: CHG-7\n", None)
    for signing in (None, {"required": False, "keys": ["keys/nowhere.asc"]}):
        found, governed = drift_service.unauthorized_commits(
            catalog_with(signing), repo, f"{base}..main", authorized
        )
        assert (found, governed) == ([], 1)


def test_key_files_that_cannot_be_used_are_named(
    repo: Path, signer: Signer, catalog_dir: Path, tmp_path: Path
) -> None:
    def check(signing: dict[str, Any], folder: Path | None = catalog_dir) -> str:
        with pytest.raises(InvalidInput) as caught:
            drift_service.unauthorized_commits(
                catalog_with(signing), repo, "HEAD..HEAD", authorized, catalog_dir=folder
            )
        return str(caught.value)

    missing = check({"required": True, "keys": ["keys/alice.asc", "keys/bob.asc"]})
    assert f"{catalog_dir / 'keys' / 'bob.asc'}: no such key file" in missing
    assert "spec.signing.keys[1]" in missing
    (catalog_dir / "keys" / "junk.asc").write_text("not a key\n")
    junk = check({"required": True, "keys": ["keys/junk.asc"]})
    assert "junk.asc: not an ASCII-armoured OpenPGP public key" in junk
    broken = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"
    (catalog_dir / "keys" / "broken.asc").write_text(broken)
    assert "broken.asc: gpg imported no public key" in check(
        {"required": True, "keys": ["keys/broken.asc"]}
    )
    secret = subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", signer.alice],
        env=signer.env(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    (catalog_dir / "keys" / "secret.asc").write_bytes(secret)
    assert "secret.asc: holds a private key" in check(
        {"required": True, "keys": ["keys/secret.asc"]}
    )
    (tmp_path / "outside.asc").write_text("x")
    (catalog_dir / "keys" / "link.asc").symlink_to(tmp_path / "outside.asc")
    assert "points outside the catalog folder" in check(
        {"required": True, "keys": ["keys/link.asc"]}
    )
    assert "catalog folder holding the keys is not known" in check(REQUIRED, None)


def test_without_gpg_the_error_says_so(
    repo: Path, catalog_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_git = tmp_path / "bin"
    only_git.mkdir()
    git = shutil.which("git")
    assert git is not None
    (only_git / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(only_git))
    with pytest.raises(InvalidInput, match="gpg is not installed") as caught:
        drift_service.unauthorized_commits(
            catalog_with(REQUIRED), repo, "HEAD..HEAD", authorized, catalog_dir=catalog_dir
        )
    assert caught.value.problems[0].field == "spec.signing.required"
