"""Dockerfile checks: non-root USER, HEALTHCHECK, no unchecked remote ADD, pinned base images.

A Dockerfile document's data is `{"instructions": [{"instruction", "value", "line"}, ...]}`
with continuation lines joined (policy_inputs). Stages are split at each FROM; a FROM naming an
earlier stage (`FROM build`) inherits that stage's USER, HEALTHCHECK and ENV, as Docker does.

Build arguments: `${VAR}`, `$VAR`, `${VAR:-word}` and `${VAR:+word}` are expanded with the
defaults written in the Dockerfile (global ARGs before the first FROM for FROM lines; a stage's
ARG and ENV for its own instructions). `--build-arg` values given at build time cannot be seen
here; a reference that stays unresolved is reported as not checkable rather than guessed.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import Document, Format, Hit, Severity, rule
from changegate.domain.policy.rules.images import parse_reference

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)
_HEX_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(slots=True)
class Expanded:
    """A value with build arguments replaced; `missing` names those with no value."""

    text: str
    missing: tuple[str, ...] = ()


def expand(text: str, values: Mapping[str, str | None]) -> Expanded:
    """Dockerfile variable substitution with the values known from the file itself."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain") or ""
        value = values.get(name)
        op, word = match.group("op"), match.group("word") or ""
        if op is not None and op.endswith("-"):
            return value if value else word
        if op is not None and op.endswith("+"):
            return word if value else ""
        if value is None:
            missing.append(name)
            return match.group(0)
        return value

    return Expanded(_VARIABLE.sub(replace, text), tuple(dict.fromkeys(missing)))


def _words(value: str) -> list[str]:
    try:
        return shlex.split(value, posix=True)
    except ValueError:
        return value.split()


def _assignments(value: str, *, legacy_env: bool = False) -> list[tuple[str, str | None]]:
    """`ARG A=1 B` / `ENV A=1 B="two words"` (and legacy `ENV NAME value with spaces`)."""
    words = _words(value)
    if not words:
        return []
    if legacy_env and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    found: list[tuple[str, str | None]] = []
    for word in words:
        name, sep, default = word.partition("=")
        if name:
            found.append((name, default if sep else None))
    return found


@dataclass(slots=True)
class User:
    index: int
    written: str
    expanded: Expanded


@dataclass(slots=True)
class Stage:
    """One build stage: its FROM and what is known of its instructions."""

    index: int  # the FROM instruction's index
    written: str  # the image as written after FROM's flags
    image: Expanded  # with the global ARG defaults
    alias: str
    base: Stage | None  # an earlier stage this one starts from
    env: dict[str, str | None] = field(default_factory=dict)  # ENV at the end of the stage
    users: list[User] = field(default_factory=list)
    healthchecks: list[tuple[int, str]] = field(default_factory=list)

    def chain(self) -> list[Stage]:
        """This stage and the earlier stages it is built on, nearest first."""
        found = [self]
        while found[-1].base is not None and found[-1].base not in found:
            found.append(found[-1].base)
        return found


def _instructions(document: Document) -> list[tuple[int, str, str]]:
    items = document.get("instructions")
    found: list[tuple[int, str, str]] = []
    if not isinstance(items, list):
        return found
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        name, value = item.get("instruction"), item.get("value")
        if isinstance(name, str) and isinstance(value, str):
            found.append((index, name.upper(), value))
    return found


def _from_parts(value: str) -> tuple[str, str]:
    """(image, alias) of `FROM [--platform=...] image [AS name]`."""
    words = [w for w in value.split() if not w.startswith("--")]
    if not words:
        return "", ""
    alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
    return words[0], alias


def stages(document: Document) -> list[Stage]:
    """The build stages of a Dockerfile document, in order."""
    global_args: dict[str, str | None] = {}
    found: list[Stage] = []
    by_alias: dict[str, Stage] = {}
    scope: dict[str, str | None] = {}
    for index, instruction, value in _instructions(document):
        if instruction == "FROM":
            written, alias = _from_parts(value)
            image = expand(written, global_args)
            base = by_alias.get(image.text.lower()) if written else None
            stage = Stage(index, written, image, alias.lower(), base)
            if base is not None:
                stage.env.update(base.env)
            found.append(stage)
            if stage.alias:
                by_alias[stage.alias] = stage
            scope = dict(stage.env)
            continue
        if not found:
            if instruction == "ARG":
                global_args.update(_assignments(value))
            continue
        stage = found[-1]
        if instruction == "ARG":
            for name, default in _assignments(value):
                # `ARG NAME` in a stage brings the global default into it.
                scope[name] = default if default is not None else global_args.get(name)
        elif instruction == "ENV":
            for name, text in _assignments(value, legacy_env=True):
                resolved = expand(text or "", scope)
                scope[name] = stage.env[name] = resolved.text
        elif instruction == "USER":
            stage.users.append(User(index, value, expand(value.strip(), scope)))
        elif instruction == "HEALTHCHECK":
            stage.healthchecks.append((index, value))
    return found


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name == "root" or (name.isdigit() and int(name) == 0)


def _dockerfiles(changeset: ChangeSet) -> Iterator[tuple[Document, list[Stage]]]:
    for document in changeset.of_format(Format.DOCKERFILE):
        found = stages(document)
        if found:
            yield document, found


@rule(
    "dockerfile.non-root-user",
    "The image runs as a non-root user",
    Severity.ERROR,
    rationale=(
        "A process running as root inside the container is root on the host's kernel: one "
        "container escape or mounted path away from the node and every tenant on it. The last "
        "USER of the final stage decides who the container runs as; without one it runs as "
        "the base image's user, which is root unless the base image says otherwise, and that "
        "cannot be seen from the Dockerfile, so the user must be stated."
    ),
    remediation=(
        "Create an unprivileged user and switch to it at the end of the final stage, e.g. "
        "`RUN useradd --uid 10001 --no-create-home app` then `USER 10001` (a numeric UID also "
        "lets Kubernetes enforce `runAsNonRoot`). Keep the Kubernetes securityContext's "
        "`runAsNonRoot: true` as well."
    ),
    aliases=("CKV_DOCKER_3", "CKV_DOCKER_8", "DS002"),
)
def non_root_user(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document, found in _dockerfiles(changeset):
        final = found[-1]
        user = next(
            (users[-1] for stage in final.chain() if (users := stage.users)),
            None,
        )
        if user is None:
            yield Hit(
                document,
                ("instructions", final.index),
                "the final stage sets no USER, so the container runs as the base image's user "
                "(root unless the base image sets another)",
            )
            continue
        if user.expanded.missing:
            yield Hit(
                document,
                ("instructions", user.index),
                f"USER {user.written} depends on build arguments without a default "
                f"({', '.join(user.expanded.missing)}): whether it is root cannot be checked",
                severity=Severity.INFO,
            )
            continue
        if _is_root(user.expanded.text):
            shown = user.written
            if user.expanded.text != user.written.strip():
                shown += f" ({user.expanded.text})"
            yield Hit(
                document,
                ("instructions", user.index),
                f"the final stage runs as root: USER {shown}",
            )


@rule(
    "dockerfile.healthcheck",
    "The image declares a HEALTHCHECK",
    Severity.INFO,
    rationale=(
        "Kubernetes ignores HEALTHCHECK: it uses the liveness and readiness probes of the pod "
        "spec, which the Kubernetes rules check. The instruction still documents how the image "
        "says it is healthy and is used where the image runs under Docker or Compose "
        "(development, one-off migrations), so its absence is reported as information only."
    ),
    remediation=(
        "Add a HEALTHCHECK to the final stage that probes the service cheaply, e.g. "
        "`HEALTHCHECK --interval=30s --timeout=5s CMD curl -fsS "
        "http://localhost:8069/web/health || exit 1`, and define the same endpoint as the "
        "Kubernetes probes."
    ),
    aliases=("CKV_DOCKER_2", "DS026"),
)
def healthcheck(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document, found in _dockerfiles(changeset):
        final = found[-1]
        declared = next(
            (checks[-1] for stage in final.chain() if (checks := stage.healthchecks)),
            None,
        )
        if declared is None:
            yield Hit(
                document,
                ("instructions", final.index),
                "the final stage declares no HEALTHCHECK",
            )
        elif declared[1].split()[:1] and declared[1].split()[0].upper() == "NONE":
            yield Hit(
                document,
                ("instructions", declared[0]),
                "the final stage disables the health check (HEALTHCHECK NONE)",
            )


def _add_sources(value: str) -> list[str]:
    text = value.strip()
    words: list[str]
    if text.startswith("["):
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = None
        words = [w for w in parsed if isinstance(w, str)] if isinstance(parsed, list) else []
    else:
        words = [w for w in text.split() if not w.startswith("--")]
    return words[:-1] if len(words) >= 2 else []


def _is_git(source: str) -> bool:
    lowered = source.lower()
    location = lowered.split("#", 1)[0].split("?", 1)[0]
    return lowered.startswith(("git@", "git://", "ssh://")) or location.endswith(".git")


def _git_pinned(source: str) -> bool:
    """A full commit hash as the `#ref` or as `?commit=` / `?checksum=` (Dockerfile 1.18)."""
    base, _, fragment = source.partition("#")
    if _HEX_COMMIT.match(fragment.split(":", 1)[0]):
        return True
    for pair in base.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if key in ("commit", "checksum") and _HEX_COMMIT.match(value):
            return True
    return False


@rule(
    "dockerfile.add-remote",
    "ADD does not download unverified remote content",
    Severity.ERROR,
    rationale=(
        "`ADD https://...` fetches whatever the server returns at build time, with no "
        "integrity check: a compromised or changed download goes straight into the image, "
        "and rebuilding the same Dockerfile gives different images. A git source on a branch "
        "or tag moves the same way. ADD is accepted with `--checksum=sha256:...` or, for git, "
        "a full commit hash."
    ),
    remediation=(
        "Download with a checksum: `ADD --checksum=sha256:<hex> https://... /dest` "
        "(Dockerfile syntax 1.6+), or `RUN curl -fsSLo f https://... && echo '<sha256>  f' | "
        "sha256sum -c -`. For local files use COPY; for git sources pin the commit "
        "(`ADD https://host/repo.git#<full commit hash> /src`)."
    ),
    aliases=("CKV_DOCKER_4", "DS005"),
)
def add_remote(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.of_format(Format.DOCKERFILE):
        for index, instruction, value in _instructions(document):
            if instruction != "ADD":
                continue
            checksum = any(w.startswith("--checksum=") for w in value.split())
            for source in _add_sources(value):
                lowered = source.lower()
                if _is_git(source):
                    if checksum or _git_pinned(source):
                        continue
                    yield Hit(
                        document,
                        ("instructions", index),
                        f"ADD fetches git source {source} without pinning a commit",
                    )
                elif lowered.startswith(("http://", "https://")) and not checksum:
                    yield Hit(
                        document,
                        ("instructions", index),
                        f"ADD downloads {source} without verifying a checksum",
                    )


def _base_images(
    changeset: ChangeSet,
) -> Iterator[tuple[Document, Stage]]:
    """Stages starting from an outside image (not scratch, not an earlier stage)."""
    for document, found in _dockerfiles(changeset):
        for stage in found:
            if stage.base is not None or not stage.written:
                continue
            if stage.image.text.lower() == "scratch":
                continue
            yield document, stage


def _shown(stage: Stage) -> str:
    if stage.image.text != stage.written:
        return f"{stage.written} ({stage.image.text} with the ARG defaults)"
    return stage.written


@rule(
    "dockerfile.base-image-tag",
    "Base images name a version tag",
    Severity.WARNING,
    rationale=(
        "`FROM odoo` or `FROM odoo:latest` builds on whatever the registry serves that day: "
        "two builds of the same commit differ, and a base image update ships unreviewed. A "
        "version tag (better: a digest, see dockerfile.base-image-digest) makes the build "
        "repeatable. `FROM scratch` and FROM an earlier stage are fine."
    ),
    remediation=(
        "Name the version: `FROM python:3.11.9-slim-bookworm` instead of `FROM python` or "
        "`python:latest`; when the base is a build argument, give the ARG a pinned default."
    ),
    aliases=("CKV_DOCKER_7", "DS001"),
)
def base_image_tag(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document, stage in _base_images(changeset):
        path = ("instructions", stage.index)
        if stage.image.missing:
            yield Hit(
                document,
                path,
                f"FROM {stage.written} depends on build arguments without a default "
                f"({', '.join(stage.image.missing)}): its pin cannot be checked",
                severity=Severity.INFO,
            )
            continue
        reference = parse_reference(stage.image.text)
        if reference.pinned:
            continue
        if not reference.tag:
            yield Hit(document, path, f"FROM {_shown(stage)} has no tag (Docker pulls latest)")
        elif reference.tag == "latest":
            yield Hit(document, path, f"FROM {_shown(stage)} uses the latest tag")


@rule(
    "dockerfile.base-image-digest",
    "Base images are pinned by digest",
    Severity.INFO,
    rationale=(
        "A version tag can still be re-pushed (security rebuilds of `python:3.11-slim` happen "
        "weekly), so only a digest makes a build exactly repeatable and the base image "
        "reviewable. Reported as information, since digest pins need a bot (Renovate, "
        "Dependabot) to keep them fresh; raise it in the PolicyConfig where repeatable builds "
        "are required. References with no tag or `latest` are reported by "
        "dockerfile.base-image-tag instead."
    ),
    remediation=(
        "Pin the digest next to the tag: `FROM python:3.11.9-slim@sha256:<digest>` (get it "
        "with `crane digest python:3.11.9-slim` or `docker buildx imagetools inspect`), and "
        "let Renovate or Dependabot update it."
    ),
)
def base_image_digest(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document, stage in _base_images(changeset):
        if stage.image.missing:
            continue
        reference = parse_reference(stage.image.text)
        if reference.pinned or not reference.tag or reference.tag == "latest":
            continue
        what = "an invalid digest" if reference.digest else "no digest"
        yield Hit(
            document,
            ("instructions", stage.index),
            f"FROM {_shown(stage)} is pinned by tag only ({what})",
        )


_COMMANDS = re.compile(r"&&|\|\||[;|\n()]")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = frozenset({"sudo", "env", "exec", "command", "nice", "time"})
_NO_RECOMMENDS = re.compile(r"--no-install-recommends|APT::Install-Recommends=(?:false|0)\b")


def _apt_get_install(command: str) -> bool:
    """Whether a shell command runs `apt-get ... install` (not merely mentions it)."""
    words = command.split()
    while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS):
        words.pop(0)
    return bool(words) and words[0].rsplit("/", 1)[-1] == "apt-get" and "install" in words[1:]


@rule(
    "dockerfile.apt-no-recommends",
    "apt-get install skips recommended packages",
    Severity.INFO,
    rationale=(
        "Without `--no-install-recommends`, apt-get installs every recommended package too: "
        "larger images, slower pulls on every node, and more packages for vulnerability "
        "scanners to report and for attackers to use."
    ),
    remediation=(
        "Write `apt-get install -y --no-install-recommends <packages>` and clean the lists in "
        "the same RUN (`&& rm -rf /var/lib/apt/lists/*`)."
    ),
    aliases=("DS029",),
)
def apt_no_recommends(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.of_format(Format.DOCKERFILE):
        for index, instruction, value in _instructions(document):
            if instruction != "RUN" or "apt-get" not in value:
                continue
            for command in _COMMANDS.split(value):
                if _apt_get_install(command) and not _NO_RECOMMENDS.search(command):
                    shown = " ".join(command.split())
                    if len(shown) > 120:
                        shown = shown[:119] + "…"
                    yield Hit(
                        document,
                        ("instructions", index),
                        f"apt-get install without --no-install-recommends: {shown}",
                    )
                    break


RULES = (
    non_root_user,
    healthcheck,
    add_remote,
    base_image_tag,
    base_image_digest,
    apt_no_recommends,
)
