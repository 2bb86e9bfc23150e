"""Safe YAML (and JSON) loading into plain Python, with the line of every problem.

Parsing is libyaml's composer (C) followed by our own constructor, which builds plain dicts,
lists and scalars directly from the node tree. Doing it ourselves is faster than PyYAML's
constructor and lets us refuse what a catalog must never contain: custom or Python tags,
non-string keys, duplicate keys, documents that expand past a node budget through aliases
(billion laughs) and absurd nesting. Every check is linear in the file's size, and at most
MAX_PROBLEMS problems are kept per file (then one saying how many more there were), so a
hostile file costs no more to refuse than a good one of its size costs to load.

Each document's nodes are dropped as soon as its data is built: holding a whole catalog's
node trees (a million nodes for 10,000 tenants) costs hundreds of megabytes and makes
Python's cyclic garbage collector rescan them over and over, which once took 6x longer than
the parse itself. A document keeps its file's bytes instead and composes them again only
when an error has to be mapped back to a line.
"""

from __future__ import annotations

import codecs
import gc
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from changegate.errors import InvalidInput, PayloadTooLarge, Problem

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_NODES = 2_000_000
MAX_DEPTH = 200
# Problems kept per file; past these, only a count ("... and N more problems").
MAX_PROBLEMS = 100

# libyaml when available; the pure-Python loader gives the same nodes, only slower.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Plain scalars short enough to remember their resolved tag, and how many to remember.
_RESOLVED_MAX_LENGTH = 64
_RESOLVED_MAX_ENTRIES = 50_000
_resolved: dict[tuple[str, tuple[bool, bool]], str] = {}


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader with scalar tags remembered: libyaml's composer asks the Python
    resolver (a list of regular expressions) for every scalar, and manifests repeat the
    same keys and values thousands of times. The answer depends only on the value and on
    whether it was plain, so a bounded table gives the very same tags 20% faster."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode and len(value) <= _RESOLVED_MAX_LENGTH:
            key = (value, implicit)
            tag = _resolved.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_resolved) >= _RESOLVED_MAX_ENTRIES:
                    _resolved.clear()
                _resolved[key] = tag
            return tag
        return str(super().resolve(kind, value, implicit))


_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_NULL = _TAG + "null"
_BOOL = _TAG + "bool"
_INT = _TAG + "int"
_FLOAT = _TAG + "float"
_TIMESTAMP = _TAG + "timestamp"
_MAP = _TAG + "map"
_SEQ = _TAG + "seq"
_MERGE = _TAG + "merge"

# PyYAML's own scalar rules (hex, octal, sexagesimal, underscores, .inf, .nan, yes/no) so
# that a value means here what it means to every other YAML 1.1 tool.
_SAFE = SafeConstructor()

# A collection being built: meeting it again below itself means a recursive alias.
_BUILDING = object()


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _TooLarge(Exception):
    """The document expands past the node budget; building stops at once."""


class _Builder:
    """Turns one file's composed nodes into plain Python, collecting every problem."""

    __slots__ = ("count", "display", "dropped", "lines", "max_nodes", "memo", "problems")

    def __init__(self, display: str, max_nodes: int, *, lines: bool = False) -> None:
        self.display = display
        self.max_nodes = max_nodes
        # id(collection) -> (the collection, its keys' or items' lines), when asked for:
        # locating many paths later costs no second parse. Holding the collection keeps
        # its id from being reused.
        self.lines: LineTable | None = {} if lines else None
        self.count = 0
        # collection node -> (value, expanded size): an alias costs its full size but is
        # built once, so alias bombs are caught in linear time and memory.
        self.memo: dict[Node, Any] = {}
        self.problems: list[Problem] = []
        self.dropped = 0

    def problem(self, node: Node, message: str) -> None:
        self.add(Problem(message, file=self.display, line=_line(node)))

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.dropped += 1

    def all_problems(self) -> list[Problem]:
        """The problems kept, and one counting those that were not."""
        if not self.dropped:
            return self.problems
        more = Problem(f"... and {self.dropped} more problems", file=self.display)
        return [*self.problems, more]

    def build(self, node: Node, depth: int) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            self.count += 1
            tag = node.tag
            if tag == _STR:
                return node.value
            return self.scalar(cast(ScalarNode, node), tag)
        seen = self.memo.get(node)
        if seen is not None:
            if seen is _BUILDING:
                self.problem(node, "an alias refers to a node that contains it (recursive)")
                return None
            value, size = seen
            self.count += size
            self.check_budget(node)
            return value
        if depth >= MAX_DEPTH:
            self.problem(node, f"nested deeper than {MAX_DEPTH} levels")
            raise _TooLarge
        before = self.count
        self.count += 1
        self.memo[node] = _BUILDING
        if cls is MappingNode:
            value = self.mapping(cast(MappingNode, node), depth + 1)
        elif cls is SequenceNode:
            if node.tag != _SEQ:
                self.problem(node, f"unsupported tag {_short_tag(node.tag)}")
            value = [self.build(item, depth + 1) for item in node.value]
            if self.lines is not None:
                self.lines[id(value)] = (value, array("I", [_line(item) for item in node.value]))
        else:  # pragma: no cover - PyYAML has no other node class
            raise TypeError(cls)
        self.memo[node] = (value, self.count - before)
        self.check_budget(node)
        return value

    def check_budget(self, node: Node) -> None:
        if self.count > self.max_nodes:
            self.problem(
                node, f"document expands to more than {self.max_nodes} nodes (alias bomb?)"
            )
            raise _TooLarge

    def scalar(self, node: ScalarNode, tag: str) -> Any:
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return _SAFE.construct_yaml_bool(node)
        if tag == _INT:
            return _SAFE.construct_yaml_int(node)
        if tag == _FLOAT:
            return _SAFE.construct_yaml_float(node)
        if tag == _TIMESTAMP:
            # Kept as written: validation decides what a date or an instant means here.
            return node.value
        self.problem(node, f"unsupported tag {_short_tag(tag)}")
        return None

    def mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            self.problem(node, f"unsupported tag {_short_tag(node.tag)}")
        result: dict[str, Any] = {}
        # key -> its first key node, built at the first duplicate only: linear, and nothing
        # to pay on the hot path of mappings without duplicates.
        first_keys: dict[str, Node] | None = None
        merges: list[Node] | None = None
        # A scalar's line is its own; a collection's is its key's (block collections start
        # on the line after their key).
        key_lines: dict[str, int] | None = {} if self.lines is not None else None
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode or key_node.tag != _STR:
                if key_node.tag == _MERGE:
                    merges = merges or []
                    merges.append(value_node)
                    continue
                self.key_problem(key_node)
                continue
            key = key_node.value
            if key in result:
                if first_keys is None:
                    first_keys = _first_keys(node)
                first = first_keys[key]
                self.problem(key_node, f"duplicate key {key!r} (first at line {_line(first)})")
            self.count += 1
            result[key] = self.build(value_node, depth)
            if key_lines is not None:
                shown = value_node if value_node.__class__ is ScalarNode else key_node
                key_lines[key] = _line(shown)
        if merges:
            # The merged keys' lines first; the mapping's own keys override them.
            merged_lines: dict[str, int] = {}
            result = self.merge(merges, result, depth, merged_lines)
            if key_lines is not None:
                key_lines = {**merged_lines, **key_lines}
        if self.lines is not None and key_lines is not None:
            # In the mapping's own key order (an array of lines, a fraction of a dict's
            # memory); a merged mapping's keys come in another order, so it keeps the dict.
            compact = merges is None
            table = array("I", key_lines.values()) if compact else key_lines
            self.lines[id(result)] = (result, table)
        return result

    def key_problem(self, key_node: Node) -> None:
        if key_node.__class__ is ScalarNode:
            shown = f"{key_node.value!r} ({_short_tag(key_node.tag)})"
            self.problem(key_node, f"key {shown} must be a string; quote it")
        else:
            self.problem(key_node, "a key must be a string, not a mapping or a list")

    def merge(
        self,
        merges: list[Node],
        explicit: dict[str, Any],
        depth: int,
        key_lines: dict[str, int],
    ) -> dict[str, Any]:
        # PyYAML semantics: keys written in the mapping win over merged ones, and among
        # `<<: [*a, *b]` the earlier source wins.
        sources: list[Node] = []
        for value_node in merges:
            if value_node.__class__ is SequenceNode:
                sources.extend(value_node.value)
            else:
                sources.append(value_node)
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if source.__class__ is not MappingNode:
                self.problem(source, "a merge key (<<) takes a mapping or a list of mappings")
                continue
            value = self.build(source, depth)
            if isinstance(value, dict):
                merged.update(value)
                if self.lines is not None and id(value) in self.lines:
                    key_lines.update(_key_lines(value, self.lines[id(value)][1]))
        merged.update(explicit)
        return merged


def _first_keys(node: MappingNode) -> dict[str, Node]:
    """Each string key of a mapping and the key node where it is first written."""
    first: dict[str, Node] = {}
    for key_node, _ in node.value:
        if key_node.__class__ is ScalarNode and key_node.tag == _STR:
            first.setdefault(key_node.value, key_node)
    return first


def _decode(raw: bytes, display: str) -> bytes:
    """Strict UTF-8 check; a BOM is dropped. Returns the bytes libyaml will read."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise InvalidInput(
            [
                Problem(
                    f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at column {column}",
                    file=display,
                    line=line,
                )
            ]
        ) from None
    return raw


def _reader_problem(exc: yaml.reader.ReaderError, text: bytes, display: str) -> Problem:
    # libyaml counts the offset in bytes, the pure-Python reader in characters.
    if _BaseLoader is yaml.SafeLoader:
        before = text.decode("utf-8")[: exc.position]
    else:
        before = text[: exc.position].decode("utf-8", "replace")
    column = len(before) - before.rfind("\n")
    return Problem(
        f"invalid YAML: character #x{exc.character:04x} is not allowed at column {column}",
        file=display,
        line=before.count("\n") + 1,
    )


def _yaml_problem(exc: yaml.YAMLError, display: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError):
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            what = f"{exc.problem} ({exc.context})"
    else:
        what = str(exc)
    line = int(mark.line) + 1 if mark is not None else None
    if mark is not None:
        what = f"{what} at column {int(mark.column) + 1}"
    return Problem(f"invalid YAML: {what}", file=display, line=line)


def _compose(text: bytes) -> Iterator[Node]:
    return yaml.compose_all(text, Loader=_Loader)


# id(collection) -> (collection, its lines): a list's items' lines, a mapping's keys' lines
# in key order, or {key: line} for a mapping with merge keys (another order).
LineTable = dict[int, tuple[Any, Any]]


def _key_lines(mapping: dict[str, Any], table: Any) -> dict[str, int]:
    """{key: line} of a mapping from its recorded lines."""
    return dict(table) if isinstance(table, dict) else dict(zip(mapping, table, strict=True))


# A mapping node's keys (first key node and value node of each) and its merge values.
_KeyIndex = tuple[dict[str, tuple[Node, Node]], list[Node]]


class _ComposedFile:
    """A file's bytes, composed again (once) only when a line has to be found.

    Each mapping looked into is indexed by key once, so locating every one of a large
    mapping's keys (a problem for each of 50,000 unknown fields) stays linear.
    """

    __slots__ = ("_keys", "_nodes", "text")

    def __init__(self, text: bytes) -> None:
        self.text = text
        self._nodes: list[Node] | None = None
        self._keys: dict[Node, _KeyIndex] = {}

    def node(self, index: int) -> Node:
        if self._nodes is None:
            self._nodes = list(_compose(self.text))
        return self._nodes[index]

    def child(self, node: Node, step: str | int) -> tuple[Node | None, Node] | None:
        """The (key node, value node) under node for one path step, following merge keys."""
        if node.__class__ is MappingNode and isinstance(step, str):
            keys, merges = self._key_index(node)
            found = keys.get(step)
            if found is not None:
                return found
            for merged in merges:
                sources = merged.value if merged.__class__ is SequenceNode else [merged]
                for source in sources:
                    child = self.child(source, step)
                    if child is not None:
                        return child
            return None
        if node.__class__ is SequenceNode and isinstance(step, int) and 0 <= step < len(node.value):
            return None, node.value[step]
        return None

    def _key_index(self, node: Node) -> _KeyIndex:
        index = self._keys.get(node)
        if index is None:
            keys: dict[str, tuple[Node, Node]] = {}
            merges: list[Node] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    merges.append(value_node)
                elif key_node.__class__ is ScalarNode:
                    keys.setdefault(key_node.value, (key_node, value_node))
            index = self._keys[node] = (keys, merges)
        return index


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One document of a YAML or JSON file, as plain data, able to find its own lines."""

    file: str
    index: int
    line: int
    data: Any
    source: _ComposedFile = field(repr=False, compare=False)
    # Lines recorded while loading (`load_bytes(..., lines=True)`): no second parse.
    lines: LineTable | None = field(default=None, repr=False, compare=False)

    @property
    def node(self) -> Node:
        """The document's composed node tree, for locating errors."""
        return self.source.node(self.index)

    def locate(self, path: tuple[str | int, ...]) -> int | None:
        """The 1-based line of the value at path; its nearest ancestor's when the path ends.

        A key's line is given for a mapping or list value, since block collections start on
        the line after their key.
        """
        if self.lines is not None:
            return self._recorded(path)
        node = self.node
        line = _line(node)
        for step in path:
            found = self.source.child(node, step)
            if found is None:
                break
            key_node, node = found
            line = _line(key_node if key_node is not None else node)
            if key_node is not None and node.__class__ is ScalarNode:
                line = _line(node)
        return line

    def _recorded(self, path: tuple[str | int, ...]) -> int | None:
        """`locate` from the lines recorded while loading."""
        assert self.lines is not None
        value, line = self.data, self.line
        for step in path:
            entry = self.lines.get(id(value))
            if entry is None or entry[0] is not value:
                break
            table = entry[1]
            try:
                if isinstance(value, dict) and not isinstance(table, dict):
                    line = table[list(value).index(step)]
                else:
                    line = table[step]
                value = value[step]
            except (KeyError, IndexError, TypeError, ValueError):
                break
        return line


def load_bytes(
    raw: bytes, *, display: str, max_nodes: int = DEFAULT_MAX_NODES, lines: bool = False
) -> list[SourceDocument]:
    """Parse every document in raw; InvalidInput lists every problem with file and line.

    Empty documents are returned with data None: the caller decides whether they matter.
    With `lines`, the line of every key and item is recorded while loading (a little more
    memory), so locating thousands of paths later costs no second parse.
    """
    text = _decode(raw, display)
    # With lines recorded, nothing needs the text again: it is not kept.
    source = _ComposedFile(b"" if lines else text)
    builder = _Builder(display, max_nodes, lines=lines)
    documents: list[SourceDocument] = []
    try:
        for index, node in enumerate(_compose(text)):
            # Anchors do not cross documents; the node budget is for the whole file.
            builder.memo.clear()
            data = builder.build(node, 0)
            documents.append(
                SourceDocument(display, index, _line(node), data, source, builder.lines)
            )
    except yaml.reader.ReaderError as exc:
        builder.add(_reader_problem(exc, text, display))
    except yaml.YAMLError as exc:
        builder.add(_yaml_problem(exc, display))
    except _TooLarge:
        pass
    except RecursionError:
        # Only the pure-Python composer recurses per level; libyaml stops at 1000 levels.
        builder.add(Problem(f"nested deeper than {MAX_DEPTH} levels", file=display))
    if builder.problems:
        raise InvalidInput(builder.all_problems())
    return documents


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while many files are parsed and kept.

    A load allocates hundreds of thousands of long-lived, acyclic objects (documents,
    models, entities); the collector rescans them on each full collection, which made a
    10,000-tenant catalog load about 50% slower and a 2,000-file policy check 80% slower.
    Hardly anything made here forms a cycle (a recursive alias, an exception's traceback);
    those few are collected once the collector runs again. The previous state is restored:
    a caller that had it off keeps it off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_bytes(path: Path, *, display: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A file's bytes, refused by its size before a byte of it is read."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise PayloadTooLarge(
                [Problem(f"file is {size} bytes; the limit is {max_bytes} bytes", file=display)]
            )
        with path.open("rb") as handle:
            # One byte past the limit tells a file that grew since stat() from one that fits.
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        problem = Problem(f"cannot read file: {exc.strerror or exc}", file=display)
        raise InvalidInput([problem]) from None
    if len(raw) > max_bytes:
        raise PayloadTooLarge(
            [Problem(f"file is over the limit of {max_bytes} bytes", file=display)]
        )
    return raw


def load_file(
    path: Path,
    *,
    display: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> list[SourceDocument]:
    """Read and parse one file, refusing it by its size before reading it."""
    shown = display if display is not None else str(path)
    raw = read_bytes(path, display=shown, max_bytes=max_bytes)
    return load_bytes(raw, display=shown, max_nodes=max_nodes)
