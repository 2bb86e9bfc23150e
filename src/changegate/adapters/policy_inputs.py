"""Policy inputs: files, folders and stdin read into `Document`s, one file at a time.

What a file is comes from its name first (Dockerfile, postgresql.conf, redis.conf, odoo.conf,
*.toml), then from each document's content: Kubernetes objects (apiVersion and kind; `List`s
are expanded), Terraform plans (`format_version` with resource changes), Trivy and Grype
reports, Prometheus rule files (`groups`), Traefik dynamic configuration (`http`, `tcp`,
`udp`, `tls`). YAML and JSON go through the safe loader of `yamlsource` (libyaml, line numbers,
alias-bomb and depth limits); JSON that YAML 1.1 cannot read is read by `json` instead.

Every problem is collected with its file and line and the remaining inputs are still read, so a
CI run reports everything at once; a folder walk skips hidden folders and files it does not
recognise (counted in a notice), while a file named on the command line must be readable.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from changegate.adapters import yamlsource
from changegate.domain.policy import configfiles
from changegate.domain.policy.model import Document, Format, Locator
from changegate.domain.policy.model import Path as DocPath
from changegate.errors import InvalidInput, Problem

DEFAULT_MAX_BYTES = yamlsource.DEFAULT_MAX_BYTES
STDIN = "-"
# Suffixes a folder walk reads; anything else in a folder is skipped.
_DATA_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".toml"})
_SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__"})
_BINARY_PROBE = 8192


@dataclass(slots=True)
class Inputs:
    """What was read: the documents, the problems (file, line), and what was skipped."""

    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    files: int = 0


def kind_of_name(name: str) -> Format | None:
    """The format a file's name alone decides, or None to look at its content."""
    lower = name.lower()
    if lower == "dockerfile" or lower.startswith("dockerfile.") or lower.endswith(".dockerfile"):
        return Format.DOCKERFILE
    if lower.endswith("postgresql.conf") or lower == "postgresql.auto.conf":
        return Format.POSTGRESQL_CONF
    if lower.endswith("redis.conf"):
        return Format.REDIS_CONF
    if lower.endswith("odoo.conf") or lower == ".odoorc":
        return Format.ODOO_CONF
    return None


def is_input_name(path: str) -> bool:
    """Whether a file is a policy input by its name, as a folder walk decides: YAML, JSON,
    TOML, or a Dockerfile or configuration file known by name. `path` is a POSIX path."""
    name = PurePosixPath(path)
    return name.suffix.lower() in _DATA_SUFFIXES or kind_of_name(name.name) is not None


def _wanted_in_folder(path: Path) -> bool:
    return is_input_name(path.as_posix())


def _walk(folder: Path) -> Iterator[Path]:
    """Files under folder in a stable order, skipping hidden and vendored folders."""
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _SKIPPED_FOLDERS:
            continue
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


def load_paths(
    paths: Sequence[str],
    *,
    stdin: BinaryIO | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    base: Path | None = None,
    stdin_name: str = STDIN,
) -> Inputs:
    """Read every path (a file, a folder, or `-` for stdin) into documents.

    `base`, when given, is the folder displayed names are relative to (the platform
    repository), so findings name `clusters/prod/app.yaml`, not an absolute path.
    `stdin_name` names what stdin holds (`charts/odoo`): code-scanning views need a file.
    """
    inputs = Inputs()
    with yamlsource.collector_paused():
        _load_all(inputs, paths, stdin, max_bytes, base, stdin_name)
    return inputs


def _load_all(
    inputs: Inputs,
    paths: Sequence[str],
    stdin: BinaryIO | None,
    max_bytes: int,
    base: Path | None,
    stdin_name: str,
) -> None:
    for text in paths:
        if text == STDIN:
            if stdin is None:
                inputs.problems.append(Problem("no standard input to read", file=stdin_name))
                continue
            raw = stdin.read(max_bytes + 1)
            if len(raw) > max_bytes:
                inputs.problems.append(
                    Problem(f"input is over the limit of {max_bytes} bytes", file=stdin_name)
                )
                continue
            _add(inputs, raw, stdin_name, None, explicit=True, stream=True)
            continue
        path = Path(text)
        if path.is_dir():
            skipped = 0
            for found in _walk(path):
                if not _wanted_in_folder(found):
                    skipped += 1
                    continue
                _read(inputs, found, _display(found, base), max_bytes, explicit=False)
            if skipped:
                inputs.notices.append(
                    f"{_display(path, base)}: {skipped} files skipped (not a recognised "
                    "policy input by name)"
                )
        elif path.exists():
            _read(inputs, path, _display(path, base), max_bytes, explicit=True)
        else:
            inputs.problems.append(Problem("no such file or folder", file=text))


def load_bytes(files: Iterable[tuple[str, bytes]], *, commit: str | None = None) -> Inputs:
    """Files already read, as (name shown, content), into documents, as `load_paths` reads a
    file named on the command line; `commit` marks every document and problem with the Git
    commit the files were read at (`git show commit:name` gives the same bytes)."""
    inputs = Inputs()
    with yamlsource.collector_paused():
        for display, raw in files:
            _add(inputs, raw, display, None, explicit=True)
    if commit is not None:
        inputs.documents = [replace(d, commit=commit) for d in inputs.documents]
        inputs.problems = [
            replace(p, message=f"{p.message} (at commit {commit[:12]})") for p in inputs.problems
        ]
    return inputs


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _read(inputs: Inputs, path: Path, display: str, max_bytes: int, *, explicit: bool) -> None:
    try:
        raw = yamlsource.read_bytes(path, display=display, max_bytes=max_bytes)
    except InvalidInput as exc:
        inputs.problems.extend(exc.problems)
        return
    _add(inputs, raw, display, str(path), explicit=explicit)


def _add(
    inputs: Inputs,
    raw: bytes,
    display: str,
    path: str | None,
    *,
    explicit: bool,
    stream: bool = False,
) -> None:
    inputs.files += 1
    if b"\x00" in raw[:_BINARY_PROBE]:
        if explicit:
            inputs.problems.append(
                Problem(
                    "binary file: not a policy input (YAML, JSON, TOML or config)", file=display
                )
            )
        else:
            inputs.notices.append(f"{display}: binary file skipped")
        return
    try:
        documents = parse(raw, display, path=path, stream=stream)
    except InvalidInput as exc:
        inputs.problems.extend(exc.problems)
        return
    unrecognised = [d for d in documents if d is None]
    inputs.documents.extend(d for d in documents if d is not None)
    if unrecognised:
        inputs.notices.append(
            f"{display}: {len(unrecognised)} documents not recognised (no apiVersion and kind, "
            "nor a plan, report, rule file or Traefik configuration); skipped"
        )


def parse(
    raw: bytes, display: str, *, path: str | None = None, stream: bool = False
) -> list[Document | None]:
    """The documents of one input; None for each document of no known format.

    A stream (stdin) is always YAML, whatever it is named. InvalidInput names the file and
    line of every problem.
    """
    by_name = kind_of_name(Path(display).name) if not stream else None
    if by_name is not None:
        text = _text(raw, display)
        return [_CONF_PARSERS[by_name](text, display, path)]
    if not stream and display.lower().endswith(".toml"):
        return [_toml(_text(raw, display), display, path)]
    return list(_structured(raw, display, path))


def _text(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = Problem(f"not valid UTF-8: byte 0x{raw[exc.start]:02x}", file=display, line=line)
        raise InvalidInput([problem]) from None


# --------------------------------------------------------------------------- YAML and JSON


def classify(data: Any) -> Format | None:
    """The format of one YAML or JSON document by its content."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("apiVersion"), str) and isinstance(data.get("kind"), str):
        return Format.KUBERNETES
    if "format_version" in data and (
        "resource_changes" in data or "planned_values" in data or "terraform_version" in data
    ):
        return Format.TERRAFORM_PLAN
    if "SchemaVersion" in data and ("Results" in data or "ArtifactName" in data):
        return Format.TRIVY
    if "matches" in data and ("source" in data or "descriptor" in data):
        return Format.GRYPE
    if isinstance(data.get("groups"), list):
        return Format.PROMETHEUS_RULES
    if any(key in data for key in ("http", "tcp", "udp", "tls")):
        return Format.TRAEFIK
    return None


def _structured(raw: bytes, display: str, path: str | None) -> Iterator[Document | None]:
    try:
        loaded = yamlsource.load_bytes(raw, display=display, lines=True)
    except InvalidInput as exc:
        if display.lower().endswith(".json"):
            # YAML 1.1 refuses some valid JSON (tabs, "\/"): JSON's own parser decides.
            data = _json(raw, display, exc)
            yield from _documents(display, 0, 1, data, None, path)
            return
        raise
    for source in loaded:
        if source.data is None:
            continue
        yield from _documents(display, source.index, source.line, source.data, source.locate, path)


def _json(raw: bytes, display: str, yaml_error: InvalidInput) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        problem = Problem(f"nested deeper than {yamlsource.MAX_DEPTH} levels", file=display)
        raise InvalidInput([problem]) from None
    except ValueError:
        raise yaml_error from None


def _documents(
    file: str, index: int, line: int, data: Any, locate: Locator | None, path: str | None
) -> Iterator[Document | None]:
    found = classify(data)
    if found is Format.KUBERNETES and _is_list(data):
        for number, item in enumerate(data["items"]):
            prefix: DocPath = ("items", number)
            item_locate = _prefixed(locate, prefix) if locate is not None else None
            item_line = (locate(prefix) if locate is not None else None) or line
            if classify(item) is Format.KUBERNETES:
                yield Document(file, index, item_line, Format.KUBERNETES, item, item_locate, path)
            else:
                yield None
        return
    if found is None:
        yield None
        return
    yield Document(file, index, line, found, data, locate, path)


def _is_list(data: dict[str, Any]) -> bool:
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list)


def _prefixed(locate: Locator, prefix: DocPath) -> Locator:
    return lambda path: locate((*prefix, *path))


# --------------------------------------------------------------------------- TOML


_TOML_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"'-]+)\s*=")


def _toml_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def _toml(text: str, display: str, path: str | None) -> Document | None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise InvalidInput([Problem(f"invalid TOML: {exc}", file=display, line=line)]) from None
    except RecursionError:
        problem = Problem("invalid TOML: nested too deeply", file=display)
        raise InvalidInput([problem]) from None
    if classify(data) is not Format.TRAEFIK:
        return None
    # tomllib keeps no lines: map each table header and key to the line that writes it.
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, content in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(content)
        if header:
            table = _toml_key(header.group(1))
            lines.setdefault(table, number)
            continue
        key = _TOML_KEY.match(content)
        if key:
            lines.setdefault((*table, *_toml_key(key.group(1))), number)

    def locate(target: DocPath) -> int | None:
        steps = tuple(str(step) for step in target if isinstance(step, str))
        for end in range(len(steps), 0, -1):
            if steps[:end] in lines:
                return lines[steps[:end]]
        return None

    return Document(display, 0, 1, Format.TRAEFIK, data, locate, path)


# --------------------------------------------------------------------------- config files


def _config(
    parse: Callable[[str], configfiles.Parsed], format: Format
) -> Callable[[str, str, str | None], Document]:
    """A config-file reader: the shared parser's values, lines, and problems as InvalidInput."""

    def read(text: str, display: str, path: str | None) -> Document:
        parsed = parse(text)
        if parsed.problems:
            problems = [Problem(message, display, line) for line, message in parsed.problems]
            raise InvalidInput(problems[: yamlsource.MAX_PROBLEMS])
        lines = parsed.lines

        def locate(target: DocPath) -> int | None:
            return lines.get(target[0]) if target and isinstance(target[0], str) else None

        return Document(display, 0, 1, format, parsed.values, locate, path)

    return read


def _instruction(parts: list[str], line: int) -> dict[str, Any]:
    whole = " ".join(part for part in parts if part)
    instruction, _, value = whole.partition(" ")
    return {"instruction": instruction.upper(), "value": value.strip(), "line": line}


_HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")


def _dockerfile(text: str, display: str, path: str | None) -> Document:
    """Instructions with continuation lines joined; comments, blank lines, heredocs dropped."""
    instructions: list[dict[str, Any]] = []
    pending: list[str] = []
    start = 0
    heredoc: str | None = None
    for number, content in enumerate(text.splitlines(), start=1):
        if heredoc is not None:
            if content.strip() == heredoc:
                heredoc = None
            continue
        stripped = content.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].rstrip() if continued else stripped)
        if continued:
            continue
        instructions.append(_instruction(pending, start))
        pending = []
        marker = _HEREDOC.search(instructions[-1]["value"])
        if marker:
            heredoc = marker.group(1)
    if pending:
        instructions.append(_instruction(pending, start))
    if not instructions:
        raise InvalidInput([Problem("no instructions: an empty Dockerfile", display, 1)])

    def locate(target: DocPath) -> int | None:
        if len(target) < 2 or target[0] != "instructions" or not isinstance(target[1], int):
            return None
        if 0 <= target[1] < len(instructions):
            line = instructions[target[1]]["line"]
            return line if isinstance(line, int) else None
        return None

    data = {"instructions": instructions}
    return Document(display, 0, 1, Format.DOCKERFILE, data, locate, path)


_CONF_PARSERS = {
    Format.POSTGRESQL_CONF: _config(configfiles.postgresql, Format.POSTGRESQL_CONF),
    Format.REDIS_CONF: _config(configfiles.redis, Format.REDIS_CONF),
    Format.ODOO_CONF: _config(configfiles.odoo, Format.ODOO_CONF),
    Format.DOCKERFILE: _dockerfile,
}


# --------------------------------------------------------------------------- a change's artifacts


def resolve_under(root: Path, relative: str) -> Path:
    """A change's artifact path inside the platform repository; never outside it."""
    candidate = Path(relative)
    if candidate.is_absolute():
        raise InvalidInput(
            [Problem("an artifact path is relative to the platform repository", field=relative)]
        )
    resolved = (root / candidate).resolve()
    base = root.resolve()
    if resolved != base and base not in resolved.parents:
        raise InvalidInput(
            [Problem("the artifact path leads outside the platform repository", field=relative)]
        )
    return resolved


def image_documents(images: Iterable[tuple[str, str | None]]) -> list[Document]:
    """A change's image artifacts as documents the image rules check."""
    return [
        Document("change artifacts", index, 1, Format.IMAGE, {"ref": ref, "digest": digest})
        for index, (ref, digest) in enumerate(images)
    ]
