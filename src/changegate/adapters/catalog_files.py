"""Load a catalog folder: find its YAML and JSON files, parse, digest, note the Git commit, build.

The digest is taken over the files' bytes (with their relative paths), so it names exactly
the input every assessment was made with, whatever the parser makes of it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from changegate.adapters import yamlsource
from changegate.domain import analysis, catalog
from changegate.errors import InvalidInput, Problem

SUFFIXES = frozenset({".yaml", ".yml", ".json"})
DEFAULT_MAX_FILES = 100_000
GIT_TIMEOUT_SECONDS = 10.0


def find_files(root: Path, *, max_files: int = DEFAULT_MAX_FILES) -> list[tuple[str, Path]]:
    """(relative display path, path) of every catalog file under root, sorted by path.

    Hidden files and folders (`.git`, `.github`, editor files) are skipped, and so is any
    symlink leading outside root, so a catalog cannot pull in files from elsewhere.
    """
    real_root = root.resolve()
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            path = Path(folder, name)
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                continue
            found.append((path.relative_to(root).as_posix(), path))
            if len(found) > max_files:
                raise InvalidInput(
                    [Problem(f"more than {max_files} catalog files", file=str(root))]
                )
    found.sort()
    return found


def git_state(directory: Path) -> tuple[str | None, bool]:
    """(HEAD commit, dirty) of the Git work tree holding directory; (None, False) outside one.

    Git is asked with a timeout; a missing git or a folder outside any repository is not an
    error, the catalog simply has no commit.
    """
    git = shutil.which("git")
    if git is None:
        return None, False
    try:
        # A fixed argv and no shell: the folder is an argument, never parsed as a command.
        head = subprocess.run(  # noqa: S603
            [git, "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
        if head.returncode != 0:
            return None, False
        # A folder inside a work tree but not tracked by it (ignored, never added) is not
        # described by HEAD: record no commit rather than a misleading one.
        tracked = subprocess.run(  # noqa: S603
            [git, "-C", str(directory), "ls-files", "--", "."],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
        if tracked.returncode != 0 or not tracked.stdout.strip():
            return None, False
        status = subprocess.run(  # noqa: S603
            [git, "-C", str(directory), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, False
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return head.stdout.strip() or None, dirty


def load_catalog(
    directory: Path,
    *,
    max_file_bytes: int = yamlsource.DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> catalog.Catalog:
    """Load and validate every catalog file under directory; one InvalidInput lists all problems.

    Files that cannot be parsed are reported together with each other's problems; only
    when every file parses is the catalog validated (whose problems are also all reported).
    """
    if not directory.is_dir():
        raise InvalidInput([Problem("catalog directory does not exist", file=str(directory))])
    files = find_files(directory, max_files=max_files)
    if not files:
        raise InvalidInput(
            [Problem("no catalog files (*.yaml, *.yml, *.json) found", file=str(directory))]
        )
    commit, dirty = git_state(directory)
    with yamlsource.collector_paused():
        documents, digest = _parse_all(files, max_file_bytes)
        templates = [doc for doc in documents if _is_analysis_template(doc.data)]
        entities = [doc for doc in documents if not _is_analysis_template(doc.data)]
        built = catalog.build(
            entities, digest=digest, commit=commit, root=str(directory), dirty=dirty
        )
    _check_templates(built, templates)
    return built


ANALYSIS_KINDS = frozenset({"AnalysisTemplate", "ClusterAnalysisTemplate"})


def _is_analysis_template(data: object) -> bool:
    """Argo Rollouts analysis templates live in the catalog folder beside the entities; the
    GitOpsRepository's rollout names them by path (docs/rollout.md)."""
    return (
        isinstance(data, dict)
        and str(data.get("apiVersion", "")).startswith("argoproj.io/")
        and data.get("kind") in ANALYSIS_KINDS
    )


def _check_templates(built: catalog.Catalog, templates: list[yamlsource.SourceDocument]) -> None:
    """Every analysis template the GitOpsRepository names exists and is valid (a template
    in the folder that nothing names is still checked, so a typo shows before it is used)."""
    problems: list[Problem] = []
    by_file: dict[str, list[yamlsource.SourceDocument]] = {}
    for doc in templates:
        by_file.setdefault(doc.file or "", []).append(doc)
        try:
            analysis.parse_template(doc.data, source=doc.file, locate=doc.locate)
        except InvalidInput as exc:
            problems += exc.problems
    repo = built.gitops_repository
    if repo is not None:
        for index, ref in enumerate(repo.spec.rollout.analysis):
            found = by_file.get(ref.template, [])
            if len(found) != 1:
                what = "no AnalysisTemplate" if not found else f"{len(found)} AnalysisTemplates"
                problems.append(
                    Problem(
                        f"{what} in {ref.template!r}: a rollout's template is one "
                        "argoproj.io AnalysisTemplate file in the catalog folder",
                        file=repo.file,
                        line=repo.line,
                        field=f"spec.rollout.analysis[{index}].template",
                    )
                )
    if problems:
        raise InvalidInput(problems)


def _parse_all(
    files: list[tuple[str, Path]], max_file_bytes: int
) -> tuple[list[yamlsource.SourceDocument], str]:
    """Every document of every file and the folder's digest; problems of all files at once."""
    digest = hashlib.sha256()
    documents: list[yamlsource.SourceDocument] = []
    problems: list[Problem] = []
    for display, path in files:
        try:
            raw = yamlsource.read_bytes(path, display=display, max_bytes=max_file_bytes)
            documents += yamlsource.load_bytes(raw, display=display)
        except InvalidInput as exc:
            problems += exc.problems
            continue
        # Length-prefixed so that no two different folders can hash alike.
        name = display.encode("utf-8")
        digest.update(b"%d:%b%d:" % (len(name), name, len(raw)))
        digest.update(raw)
    if problems:
        raise InvalidInput(problems)
    return documents, "sha256:" + digest.hexdigest()
