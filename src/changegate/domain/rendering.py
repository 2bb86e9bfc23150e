"""Rendering a wave: a change's container images rewritten in a tenant's GitOps files.

The rollout worker lists the repository's tree, keeps the files of each wave tenant
(`tenant_files`: the paths whose deciding rule captures that tenant), reads them, and hands
their bytes with the change's images to `render_images`; it commits the rewrites it gets back.

A file's references are found by image **repository** (registry and path, without tag and
digest), compared normalised: `odoo`, `library/odoo`, `docker.io/odoo` and
`index.docker.io/library/odoo` are one repository; `odoo-tools` is another. Each reference
found is set to the change's tag and digest, keeping the file's spelling of the repository
(it names the same image, and the diff stays one token). Three forms are rewritten:

1. `image: <ref>` scalars (plain, single- or double-quoted, `"image": "<ref>"` in JSON), in any
   manifest: workloads, Rollouts, Helm values where the image is one string. The new value is
   exactly the change's reference: a digest the change does not give is dropped (it pinned the
   old image), as is the tag when the change gives only a digest.
2. Kustomize (and Flux `Kustomization`) `images:` entries, `- name: <repo>` with `newName`,
   `newTag` and/or `digest`: matched by `newName` or else `name`; `newName` is kept, `newTag`
   and `digest` are set to the change's (a missing line is added after the entry's last
   name line, `digest` after `newTag`, with the entry's indentation; one the change does not
   give is removed, because kustomize would still apply it).
3. Helm values `image:` block mappings with `repository` (and optionally `registry`, read as
   `registry/repository` as the Bitnami charts do), `tag` and `digest`, keys in any order:
   `tag` is set (added after `repository` when absent) and `digest` is set, or added after
   `tag` at the same indentation when the chart's values have none (a chart that does not
   read `digest` ignores it; the tag still names the release). A digest the change does not
   give empties an existing `digest` (`""`, the charts' "none"); a change with only a digest
   leaves the tag alone, because charts fall back to their appVersion without one.

Files are edited as text, never parsed and dumped again: comments, order, quoting and layout
stay. A rewritten value keeps its quoting; a plain value YAML would read as something other
than a string (`17.0`, `2024-11-20`, `yes`) is written double-quoted. Comment lines and trailing
comments are never touched. YAML block scalars are read as YAML too, so Helm values inlined in
an Argo CD Application (`values: |`) are rendered. Files whose first character is `{` or `[` are
scanned as JSON.

Not handled (left as they are): flow mappings (`image: {repository: …}`), anchors and aliases,
values split across lines, Argo CD's `kustomize.images` strings (`name=newName:tag`), image
parts in separate keys other than the Helm `image` mapping (`imageTag:`, `global.imageRegistry`),
and Helm templates. Every scan is a single pass over the text, linear in its size; regular
expressions are only applied to one line, or to a bounded value, and cannot backtrack
catastrophically. Everything here is pure: the worker reads Git and hands the bytes in.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from changegate import errors
from changegate.domain import gitops

MAX_FILE_BYTES = 1024 * 1024
# A name is at most 255 characters, a tag 128 and a digest 135 (sha512): longer is no reference.
MAX_REFERENCE_LENGTH = 512
RENDERED_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# Bodies of quoted scalars after the opening quote, up to and including the closing one
# (the "unrolled loop": no two ways to match the same text, so no backtracking blow-up).
_DOUBLE_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"')
_SINGLE_BODY = re.compile(r"[^']*(?:''[^']*)*'")
_YAML_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_JSON_LITERAL = re.compile(r'[^\s,:{}\[\]"]+')
# Plain scalars that YAML 1.1 or 1.2 reads as a number, a timestamp or a sexagesimal.
_NUMBER_LIKE = re.compile(r"[-+.0-9][-+.0-9_:a-fA-FoOxXtTzZ ]*")
_NON_STRING_WORDS = frozenset(
    {"", "~", "null", "true", "false", "yes", "no", "y", "n", "on", "off"}
)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})

_HELM_KEYS = frozenset({"repository", "registry", "tag", "digest"})
_KUSTOMIZE_KEYS = frozenset({"name", "newName", "newTag", "digest"})


# --------------------------------------------------------------------------- tenant files


def tenant_files(
    rules: Sequence[gitops.PathRule], paths: Iterable[str], tenants: str | Collection[str]
) -> list[str]:
    """The paths whose deciding rule (the last that matches) captures one of `tenants` (one
    id, or several: each path is matched once), sorted.

    Ignored paths are never a tenant's, and neither is a path a later, more general rule
    decides (that rule's target owns it).
    """
    wanted = {tenants} if isinstance(tenants, str) else set(tenants)
    found: set[str] = set()
    for path in paths:
        match = gitops.match_path(rules, path)
        if match is not None and not match.rule.ignore and match.captures.get("tenant") in wanted:
            found.add(path)
    return sorted(found)


# --------------------------------------------------------------------------- references


@dataclass(frozen=True, slots=True)
class Reference:
    """An image reference split into its repository (as written), tag and digest."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def text(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}{tag}{digest}"

    @property
    def key(self) -> str:
        return repository_key(self.repository)


def parse_reference(text: str) -> Reference | None:
    """`registry/odoo:17.0@sha256:…` split, or None when the text is no image reference."""
    if not text or len(text) > MAX_REFERENCE_LENGTH:
        return None
    name, at, digest = text.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return None
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            return None
    if not _is_repository(name):
        return None
    return Reference(name, tag, digest or None)


def _has_host(first: str) -> bool:
    """Whether a reference's first component is a registry host (Docker's rule)."""
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def _is_repository(name: str) -> bool:
    parts = name.split("/")
    if len(parts) > 1 and _has_host(parts[0]):
        if not _HOST.fullmatch(parts[0]):
            return False
        parts = parts[1:]
    return all(_COMPONENT.fullmatch(part) for part in parts)


def repository_key(repository: str) -> str:
    """The repository normalised: Docker Hub's host and `library/` spelled out."""
    first, slash, rest = repository.partition("/")
    if slash and _has_host(first):
        host, path = first.lower(), rest
    else:
        host, path = DOCKER_HUB, repository
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return f"{host}/{path}"


def _wanted(images: Sequence[tuple[str, str | None]]) -> dict[str, Reference]:
    """The change's images by normalised repository; InvalidInput names the bad entry."""
    wanted: dict[str, Reference] = {}
    for index, (ref, digest) in enumerate(images):
        where = f"images[{index}]"
        parsed = parse_reference(ref.strip())
        if parsed is None:
            raise errors.InvalidInput(
                [errors.Problem(f"not an image reference: {ref!r}", field=where)]
            )
        if digest:
            if not _DIGEST.fullmatch(digest):
                raise errors.InvalidInput(
                    [errors.Problem(f"not a sha256 or sha512 digest: {digest!r}", field=where)]
                )
            if parsed.digest and parsed.digest != digest:
                raise errors.InvalidInput(
                    [errors.Problem(f"{ref!r} holds another digest than {digest}", field=where)]
                )
            parsed = Reference(parsed.repository, parsed.tag, digest)
        if parsed.tag is None and parsed.digest is None:
            raise errors.InvalidInput(
                [errors.Problem(f"{ref!r} names neither a tag nor a digest", field=where)]
            )
        known = wanted.get(parsed.key)
        if known is not None and (known.tag, known.digest) != (parsed.tag, parsed.digest):
            raise errors.InvalidInput(
                [
                    errors.Problem(
                        f"{parsed.text!r} and {known.text!r} are the same repository",
                        field=where,
                    )
                ]
            )
        wanted[parsed.key] = parsed
    return wanted


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One file rendered: its bytes before and after, and each reference replaced, in order."""

    path: str
    before: bytes
    after: bytes
    replaced: tuple[tuple[str, str], ...]  # (old ref, new ref), one per place rewritten


@dataclass(frozen=True, slots=True)
class Rendered:
    """The files that changed, sorted by path, and those not read with the reason."""

    rewrites: list[Rewrite] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def render_images(files: Mapping[str, bytes], images: Sequence[tuple[str, str | None]]) -> Rendered:
    """Set every reference to the change's image repositories to the change's tag and digest.

    `images` holds (reference, digest) pairs as a change's artifacts do; the reference may
    carry a tag and even the digest. Files that would not change are left out, so rendering
    twice gives nothing the second time. Files that are not YAML or JSON by name, larger than
    `MAX_FILE_BYTES`, binary (a NUL byte) or not UTF-8 are skipped, with the reason.
    """
    wanted = _wanted(images)
    rewrites: list[Rewrite] = []
    skipped: list[tuple[str, str]] = []
    for path in sorted(files):
        data = files[path]
        reason = _unreadable(path, data)
        if reason is not None:
            skipped.append((path, reason))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append((path, "not UTF-8"))
            continue
        if not wanted:
            continue
        after, replaced = _render_text(text, wanted)
        if replaced and after != text:
            rewrites.append(Rewrite(path, data, after.encode("utf-8"), tuple(replaced)))
    return Rendered(rewrites, skipped)


def _unreadable(path: str, data: bytes) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if not (name.lower().endswith(RENDERED_SUFFIXES) or gitops.is_kustomization(path)):
        return "not a YAML or JSON file"
    if len(data) > MAX_FILE_BYTES:
        return f"larger than {MAX_FILE_BYTES} bytes"
    if b"\x00" in data:
        return "binary (holds a NUL byte)"
    return None


def _render_text(text: str, wanted: Mapping[str, Reference]) -> tuple[str, list[tuple[str, str]]]:
    start = 1 if text.startswith("\ufeff") else 0
    eol = "\r\n" if "\r\n" in text else "\n"
    editor = _Editor(text, wanted, eol)
    first = len(text) - len(text[start:].lstrip())
    if first < len(text) and text[first] in "{[":
        _scan_json(text, first, editor)
    else:
        _scan_yaml(text, start, editor)
    return editor.result()


# --------------------------------------------------------------------------- editing


@dataclass(frozen=True, slots=True)
class _Scalar:
    """A scalar value in the text: its content and where its token lies.

    style: plain, single, double (YAML or JSON strings), json (an unquoted JSON literal) or
    null (a YAML key with no value: the token is empty, just after the colon).
    """

    value: str
    start: int
    end: int
    style: str
    line_start: int = 0  # YAML: the line holding it, newline included
    line_end: int = 0
    alone: bool = False  # YAML: the key begins its line (no `- `): the line can be removed


def _null(scalar: _Scalar | None) -> str | None:
    """The scalar's value, None when absent or YAML/JSON null (or the empty string)."""
    if scalar is None or scalar.value == "":
        return None
    if scalar.style in ("plain", "null", "json") and scalar.value in _NULLS:
        return None
    return scalar.value


def _needs_quotes(value: str) -> bool:
    return value.lower() in _NON_STRING_WORDS or bool(_NUMBER_LIKE.fullmatch(value))


def _emit(value: str, style: str) -> str:
    """The value as a token in the scalar's style; a plain one YAML would misread is quoted."""
    if style == "single":
        return f"'{value}'"
    if style in ("double", "json"):
        return f'"{value}"'
    token = f'"{value}"' if _needs_quotes(value) else value
    return f" {token}" if style == "null" else token


@dataclass(slots=True)
class _Block:
    """The scalar fields of a mapping that may be an image: a Helm `image:` or a kustomize entry.

    column is the YAML indentation of its keys (None in JSON); broken when a field it needs
    is not a plain scalar or comes twice, so it is left alone.
    """

    names: frozenset[str]
    column: int | None = None
    fields: dict[str, _Scalar] = field(default_factory=dict)
    broken: bool = False
    last_null: bool = False

    def record(self, key: str | None, scalar: _Scalar | None) -> None:
        if key is None or key not in self.names:
            self.last_null = False
            return
        self.last_null = scalar is not None and scalar.style == "null"
        if scalar is None or key in self.fields:
            self.broken = True
        else:
            self.fields[key] = scalar


class _Editor:
    """The edits of one file, decided per reference found, applied in one pass at the end."""

    def __init__(self, text: str, wanted: Mapping[str, Reference], eol: str) -> None:
        self.text = text
        self.wanted = wanted
        self.eol = eol
        self.edits: list[tuple[int, int, int, str]] = []  # start, end, order, replacement
        self.replaced: list[tuple[int, str, str]] = []  # position, old, new

    # ---- the three forms

    def image(self, scalar: _Scalar) -> None:
        """Form 1: an `image:` scalar."""
        if scalar.style == "null":
            return
        found = parse_reference(scalar.value)
        if found is None:
            return
        want = self.wanted.get(found.key)
        if want is None:
            return
        new = Reference(found.repository, want.tag, want.digest).text
        if new != scalar.value:
            self._set(scalar, new)
            self.replaced.append((scalar.start, scalar.value, new))

    def kustomize(self, block: _Block) -> None:
        """Form 2: a kustomize `images:` entry, matched by newName or else name."""
        fields = block.fields
        name = fields.get("name")
        if block.broken or name is None or not fields.keys() & {"newName", "newTag", "digest"}:
            return
        new_name = fields.get("newName")
        want: Reference | None = None
        for candidate in (new_name, name):
            found = parse_reference(candidate.value) if candidate is not None else None
            if found is not None and found.tag is None and found.digest is None:
                want = self.wanted.get(found.key)
                if want is not None:
                    break
        if want is None:
            return
        effective = _null(new_name) or name.value
        tag_field, digest_field = fields.get("newTag"), fields.get("digest")
        tag, digest = _null(tag_field), _null(digest_field)
        if (tag, digest) == (want.tag, want.digest):
            return
        anchor = max((f for f in (name, new_name) if f is not None), key=lambda f: f.start)
        if want.tag != tag:
            if want.tag is None:
                assert tag_field is not None
                self._remove(tag_field)
            elif tag_field is not None:
                self._set(tag_field, want.tag)
            else:
                self._add(anchor, block.column, "newTag", want.tag)
        if want.digest != digest:
            if want.digest is None:
                assert digest_field is not None
                self._remove(digest_field)
            elif digest_field is not None:
                self._set(digest_field, want.digest)
            else:
                self._add(tag_field or anchor, block.column, "digest", want.digest)
        old = Reference(effective, tag, digest).text
        new = Reference(effective, want.tag, want.digest).text
        self.replaced.append((name.start, old, new))

    def helm(self, block: _Block) -> None:
        """Form 3: a Helm values `image:` mapping (registry, repository, tag, digest)."""
        fields = block.fields
        repository = fields.get("repository")
        if block.broken or repository is None or _null(repository) is None:
            return
        registry = _null(fields.get("registry"))
        name = f"{registry.rstrip('/')}/{repository.value}" if registry else repository.value
        found = parse_reference(name)
        if found is None or found.tag is not None or found.digest is not None:
            return
        want = self.wanted.get(found.key)
        if want is None:
            return
        tag_field, digest_field = fields.get("tag"), fields.get("digest")
        tag, digest = _null(tag_field), _null(digest_field)
        new_tag = want.tag if want.tag is not None else tag
        if (tag, digest) == (new_tag, want.digest):
            return
        if new_tag != tag:
            assert new_tag is not None
            if tag_field is not None:
                self._set(tag_field, new_tag)
            else:
                self._add(repository, block.column, "tag", new_tag)
        if want.digest != digest:
            assert digest_field is not None or want.digest is not None
            if digest_field is not None:
                self._set(digest_field, want.digest or "")
            else:
                assert want.digest is not None
                self._add(tag_field or repository, block.column, "digest", want.digest)
        old = Reference(name, tag, digest).text
        new = Reference(name, new_tag, want.digest).text
        self.replaced.append((repository.start, old, new))

    # ---- edits

    def _edit(self, start: int, end: int, replacement: str) -> None:
        self.edits.append((start, end, len(self.edits), replacement))

    def _set(self, scalar: _Scalar, value: str) -> None:
        self._edit(scalar.start, scalar.end, _emit(value, scalar.style))

    def _remove(self, scalar: _Scalar) -> None:
        """Drop a field: its line when it has one to itself, else its value becomes `""`."""
        if scalar.alone:
            self._edit(scalar.line_start, scalar.line_end, "")
        else:
            self._edit(scalar.start, scalar.end, _emit("", "double"))

    def _add(self, after: _Scalar, column: int | None, key: str, value: str) -> None:
        """A new field after another: its own line at the block's indentation, or in JSON a
        member just after that field's value."""
        if column is None:
            self._edit(after.end, after.end, f', "{key}": "{value}"')
            return
        style = after.style if after.style in ("single", "double") else "plain"
        line = f"{' ' * column}{key}: {_emit(value, style)}{self.eol}"
        if after.line_end == len(self.text) and not self.text.endswith("\n"):
            line = self.eol + line.removesuffix(self.eol)
        self._edit(after.line_end, after.line_end, line)

    def result(self) -> tuple[str, list[tuple[str, str]]]:
        """The edited text (insertions before a removal at the same place) and the pairs."""
        edits = sorted(self.edits, key=lambda e: (e[0], e[1] != e[0], e[2]))
        parts: list[str] = []
        cursor = 0
        for start, end, _order, replacement in edits:
            if start < cursor:  # overlapping edits cannot come from one scan; keep the first
                continue
            parts.append(self.text[cursor:start])
            parts.append(replacement)
            cursor = end
        parts.append(self.text[cursor:])
        pairs = [(old, new) for _position, old, new in sorted(self.replaced)]
        return "".join(parts), pairs


# --------------------------------------------------------------------------- YAML


@dataclass(frozen=True, slots=True)
class _Line:
    """A significant YAML line: where its first character is, the `- ` it opens with, its key
    and the key's scalar value (None when the value is not a plain or quoted scalar)."""

    column: int
    dash: bool
    dashes: int
    key: str | None = None
    key_column: int = 0
    value: _Scalar | None = None


def _skip_blanks(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos] in " \t":
        pos += 1
    return pos


def _parse_line(text: str, start: int, end: int, line_end: int) -> _Line | None:
    """The line from start to end (without its line break), or None for a blank or comment."""
    pos = start
    while pos < end and text[pos] == " ":
        pos += 1
    if pos == end or text[pos] == "#":
        return None
    column = pos - start
    dashes = 0
    while text[pos] == "-" and (pos + 1 == end or text[pos + 1] in " \t"):
        dashes += 1
        pos = _skip_blanks(text, pos + 1, end)
        if pos == end:
            return _Line(column, True, dashes)
    if text[pos] == "#":
        return _Line(column, dashes > 0, dashes)
    if text[pos] in "\"'":
        body = (_DOUBLE_BODY if text[pos] == '"' else _SINGLE_BODY).match(text, pos + 1, end)
        if body is None:
            return _Line(column, dashes > 0, dashes)
        key, after_key = text[pos + 1 : body.end() - 1], body.end()
    else:
        plain = _YAML_KEY.match(text, pos, end)
        if plain is None:
            return _Line(column, dashes > 0, dashes)
        key, after_key = plain.group(), plain.end()
    key_column = pos - start
    colon = _skip_blanks(text, after_key, end)
    if colon == end or text[colon] != ":" or (colon + 1 < end and text[colon + 1] not in " \t"):
        return _Line(column, dashes > 0, dashes)
    colon += 1
    value = _parse_value(text, colon, end, start, line_end, dashes == 0)
    return _Line(column, dashes > 0, dashes, key, key_column, value)


def _parse_value(
    text: str, colon: int, end: int, line_start: int, line_end: int, alone: bool
) -> _Scalar | None:
    pos = _skip_blanks(text, colon, end)

    def scalar(value: str, start: int, stop: int, style: str) -> _Scalar:
        return _Scalar(value, start, stop, style, line_start, line_end, alone)

    if pos == end or text[pos] == "#":
        return scalar("", colon, colon, "null")
    first = text[pos]
    if first in "\"'":
        body = (_DOUBLE_BODY if first == '"' else _SINGLE_BODY).match(text, pos + 1, end)
        if body is None:
            return None  # runs on to the next line
        rest = _skip_blanks(text, body.end(), end)
        if rest < end and text[rest] == ",":  # JSON-looking YAML
            rest = _skip_blanks(text, rest + 1, end)
        if rest < end and text[rest] != "#":
            return None
        raw = text[pos + 1 : body.end() - 1]
        if first == "'":
            return scalar(raw.replace("''", "'"), pos, body.end(), "single")
        return scalar(raw, pos, body.end(), "double")
    if first in "|>{[&*!%@`":
        return None  # block scalar, flow collection, anchor, alias, tag: not one value
    stop = end
    for marker in (" #", "\t#"):
        found = text.find(marker, pos, stop)
        if found >= 0:
            stop = found
    raw = text[pos:stop].rstrip(" \t")
    return scalar(raw, pos, pos + len(raw), "plain")


class _HelmFrame:
    """The lines below an `image:` key with no value on its line."""

    def __init__(self, column: int) -> None:
        self.column = column
        self.block = _Block(_HELM_KEYS)

    def closed_by(self, line: _Line) -> bool:
        return line.column <= self.column

    def take(self, line: _Line) -> None:
        block = self.block
        if block.column is None:
            if line.dash or line.key is None:
                block.broken = True  # a sequence or a scalar: not a Helm image mapping
            block.column = line.column
        if line.column == block.column:
            if line.dash or line.key is None:
                block.broken = True
            else:
                block.record(line.key, line.value)
        elif line.column > block.column:
            if block.last_null:
                block.broken = True  # `tag:` followed by a nested block
        else:
            block.broken = True

    def finish(self, editor: _Editor) -> None:
        editor.helm(self.block)


class _ImagesFrame:
    """The lines below an `images:` key with no value on its line: kustomize entries."""

    def __init__(self, column: int) -> None:
        self.column = column
        self.dash_column: int | None = None
        self.entries: list[_Block] = []
        self.broken = False

    def closed_by(self, line: _Line) -> bool:
        if line.column != self.column:
            return line.column < self.column
        # A sequence may sit at its key's own indentation (`images:` then `- name: …`).
        return not line.dash or self.dash_column not in (None, self.column)

    def take(self, line: _Line) -> None:
        if self.dash_column is None:
            if not line.dash:
                self.broken = True
            self.dash_column = line.column
        if line.dash and line.column == self.dash_column:
            entry = _Block(_KUSTOMIZE_KEYS, column=line.key_column)
            if line.dashes != 1 or line.key is None:
                entry.broken = True  # `- odoo`, `- - …`, or `-` alone
            else:
                entry.record(line.key, line.value)
            self.entries.append(entry)
            return
        if not self.entries or line.column <= self.dash_column:
            self.broken = True
            return
        entry = self.entries[-1]
        if line.column == entry.column and not line.dash and line.key is not None:
            entry.record(line.key, line.value)
        elif entry.column is not None and line.column > entry.column:
            if entry.last_null:
                entry.broken = True
        else:
            entry.broken = True

    def finish(self, editor: _Editor) -> None:
        if self.broken:
            return
        for entry in self.entries:
            editor.kustomize(entry)


def _scan_yaml(text: str, start: int, editor: _Editor) -> None:
    """One pass over the lines; `image:`/`images:` blocks are followed by indentation."""
    frames: list[_HelmFrame | _ImagesFrame] = []
    size = len(text)
    pos = start
    while pos < size:
        newline = text.find("\n", pos)
        end = size if newline < 0 else newline
        line_end = size if newline < 0 else newline + 1
        if end > pos and text[end - 1] == "\r":
            end -= 1
        line_start, pos = pos, line_end
        if text.startswith(("---", "..."), line_start) and (
            line_start + 3 == end or text[line_start + 3] in " \t"
        ):
            while frames:
                frames.pop().finish(editor)
            continue
        line = _parse_line(text, line_start, end, line_end)
        if line is None:
            continue
        while frames and frames[-1].closed_by(line):
            frames.pop().finish(editor)
        if frames:
            frames[-1].take(line)
        value = line.value
        if line.key == "image" and value is not None:
            if value.style == "null":
                frames.append(_HelmFrame(line.key_column))
            else:
                editor.image(value)
        elif line.key == "images" and value is not None and value.style == "null":
            frames.append(_ImagesFrame(line.key_column))
    while frames:
        frames.pop().finish(editor)


# --------------------------------------------------------------------------- JSON


@dataclass(slots=True)
class _JsonContainer:
    """An open object or array: the key it sits under, its current key, its image block."""

    is_object: bool
    under: str | None
    key: str | None = None
    expect_key: bool = False
    block: _Block | None = None
    role: str | None = None  # helm or kustomize


def _scan_json(text: str, start: int, editor: _Editor) -> None:
    """One pass over the tokens, tracking the containers open."""
    stack: list[_JsonContainer] = []
    size = len(text)
    pos = start
    while pos < size:
        char = text[pos]
        top = stack[-1] if stack else None
        if char in " \t\r\n:":
            pos += 1
        elif char == ",":
            if top is not None and top.is_object:
                top.expect_key = True
            pos += 1
        elif char in "{[":
            under = top.key if top is not None and top.is_object else None
            container = _JsonContainer(char == "{", under, expect_key=char == "{")
            if top is not None and top.is_object and top.block is not None:
                top.block.record(top.key, None)  # a container where a scalar is needed
            if char == "{" and top is not None:
                if top.is_object and top.key == "image":
                    container.role, container.block = "helm", _Block(_HELM_KEYS)
                elif not top.is_object and top.under == "images":
                    container.role, container.block = "kustomize", _Block(_KUSTOMIZE_KEYS)
            stack.append(container)
            pos += 1
        elif char in "}]":
            if stack:
                closed = stack.pop()
                if closed.block is not None and closed.role == "helm":
                    editor.helm(closed.block)
                elif closed.block is not None:
                    editor.kustomize(closed.block)
            pos += 1
        elif char == '"':
            body = _DOUBLE_BODY.match(text, pos + 1)
            if body is None:
                return
            raw = text[pos + 1 : body.end() - 1]
            if top is not None and top.is_object and top.expect_key:
                top.key, top.expect_key = raw, False
            elif top is not None and top.is_object:
                _json_value(editor, top, _Scalar(raw, pos, body.end(), "double"))
            pos = body.end()
        else:
            literal = _JSON_LITERAL.match(text, pos)
            if literal is None:  # a stray character
                pos += 1
                continue
            if top is not None and top.is_object and not top.expect_key:
                _json_value(editor, top, _Scalar(literal.group(), pos, literal.end(), "json"))
            pos = literal.end()


def _json_value(editor: _Editor, container: _JsonContainer, scalar: _Scalar) -> None:
    if container.block is not None:
        container.block.record(container.key, scalar)
    if container.key == "image" and scalar.style == "double":
        editor.image(scalar)
