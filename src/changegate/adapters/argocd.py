"""Import Argo CD sync windows: an AppProject's `spec.syncWindows` as changegate Windows.

Argo CD (pkg/apis/application/v1alpha1, `SyncWindow`) and changegate agree on the shape of
a window (allow or deny, a five-field cron start, a duration, a timezone, selectors ORed
unless `andOperator`) and on the rule (deny beats allow; with allow windows only an active
one allows). They differ deliberately in a few places, which the import reports as notes
rather than hiding:

- Intervals. Argo CD asks its cron library for the next start *after* `now - duration`
  and calls the window active when that start is *before* `now`: the start instant itself
  is outside the window. changegate's occurrences are half-open `[start, start + duration)`:
  the start instant is inside.
- Timezones. Argo CD takes the zone's UTC offset once, at the moment it evaluates
  (`time.Now()` on the controller or API server), and runs the cron schedule in UTC shifted
  by that fixed offset, even when it checks another instant (an operation's start time for
  `syncOverrun`). changegate computes each occurrence in the window's own zone with the
  offset in force at that occurrence, so the two disagree around DST changes.
- Selectors. Applications become tenants (an application's name must be the tenant's id);
  clusters stay clusters by name, while an Argo CD cluster given by its API server URL has no
  changegate equivalent; namespaces have none either. `manualSync` has no equivalent: a
  changegate decision names the role that may override it instead.

Nothing here touches the network or the catalog: the documents are returned for a person
to review and commit to the platform repository.
"""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from changegate.adapters import yamlsource
from changegate.domain import catalog as catalog_model
from changegate.domain import godurations, validation
from changegate.errors import InvalidInput, Problem

ARGO_API_GROUP = "argoproj.io/"
ANNOTATION = "changegate.io/imported-from"
# changegate's scope patterns: ids and the glob characters * ? [ ] !
_PATTERN = re.compile(r"^[a-z0-9*?\[\]!-]{1,63}$")
_BRACES = re.compile(r"\{([^{}]*)\}")
# At most this many patterns from one brace expression, so `{a,b}{c,d}...` cannot explode.
_MAX_EXPANSION = 256

TENANTS_NOTE = (
    "applications became tenants: each application name must be a changegate tenant id (a "
    "plain id must exist in the catalog), or a glob over tenant ids; edit the scope where "
    "your applications are named otherwise"
)
INTERVAL_NOTE = (
    "intervals: Argo CD treats a window as active strictly after its cron start "
    "(`schedule.Next(now - duration)` must be before `now`), so the start instant itself is "
    "outside it; changegate occurrences are half-open [start, start + duration): the start "
    "instant is inside, the end instant outside"
)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The Window documents made from an AppProject's sync windows, and where they differ."""

    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """`{documents, notes}`, as `windows import-argocd --json` prints it."""
        return {"documents": self.documents, "notes": self.notes}


class SyncWindow(BaseModel):
    """One entry of an AppProject's `spec.syncWindows`, as Argo CD's CRD types it."""

    # Newer Argo CD releases may add fields: those are ignored, with a note.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True, populate_by_name=True)

    kind: str | None = None
    schedule: str | None = None
    duration: str | None = None
    applications: list[str] | None = None
    namespaces: list[str] | None = None
    clusters: list[str] | None = None
    manual_sync: bool | None = Field(default=None, alias="manualSync")
    time_zone: str | None = Field(default=None, alias="timeZone")
    and_operator: bool | None = Field(default=None, alias="andOperator")
    description: str | None = None
    sync_overrun: bool | None = Field(default=None, alias="syncOverrun")


_KNOWN_FIELDS = frozenset(
    {
        "kind",
        "schedule",
        "duration",
        "applications",
        "namespaces",
        "clusters",
        "manualSync",
        "timeZone",
        "andOperator",
        "description",
        "syncOverrun",
    }
)


def go_duration(text: str) -> timedelta:
    """Parse a Go duration (`1h`, `30m`, `1h30m`, `1.5h`, `90s`) to whole seconds.

    Raises ValueError with the reason: not a duration, not above zero, or not whole seconds
    (changegate windows have a one-second resolution).
    """
    nanos = godurations.nanoseconds(text)
    if nanos is None:
        raise ValueError(f"not a Go duration: {text!r} (e.g. 1h, 30m, 1h30m)")
    if nanos <= 0:
        raise ValueError("a window's duration must be longer than zero")
    if nanos % 10**9:
        raise ValueError(f"duration {text!r} is not a whole number of seconds")
    return timedelta(seconds=int(nanos // 10**9))


def duration_text(value: timedelta) -> str:
    """A changegate duration for value, in hours, minutes and seconds (`1h30m`, `45s`)."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{seconds}s" if seconds else "")
    return "".join(parts)


def expand_braces(pattern: str) -> list[str]:
    """`{a,b}-prod` -> [`a-prod`, `b-prod`]: the alternatives of Argo CD's glob syntax, as
    separate changegate patterns (equivalent, since a scope list matches any of its items)."""
    results = [pattern]
    while True:
        expanded: list[str] = []
        changed = False
        for item in results:
            match = _BRACES.search(item)
            if match is None:
                expanded.append(item)
                continue
            changed = True
            head, tail = item[: match.start()], item[match.end() :]
            expanded.extend(head + choice + tail for choice in match.group(1).split(","))
        results = list(dict.fromkeys(expanded))
        if len(results) > _MAX_EXPANSION:
            raise ValueError(f"{pattern!r} expands to more than {_MAX_EXPANSION} patterns")
        if not changed:
            return results


def window_name(project: str, index: int) -> str:
    """The Window id for syncWindows[index] of a project: `argocd-<project>-<index>`.

    The index is the window's ID in `argocd proj windows list`. A project name that does not
    fit a changegate id (dots, 63 characters) is folded to one, with a short hash when cut.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", project.lower()).strip("-") or "project"
    suffix = f"-{index}"
    room = 63 - len("argocd-") - len(suffix)
    if len(slug) > room:
        digest = hashlib.sha256(project.encode()).hexdigest()[:8]
        slug = slug[: room - 9].rstrip("-") + "-" + digest
    return f"argocd-{slug}{suffix}"


def _offset_varies(timezone: str) -> bool:
    """Whether the zone's UTC offset changes during a year (DST): then Argo CD's fixed offset
    and changegate's per-occurrence one disagree near the changes."""
    zone = zoneinfo.ZoneInfo(timezone)
    year = datetime.now(tz=UTC).year
    offsets = {
        datetime(y, month, 15, 12, tzinfo=UTC).astimezone(zone).utcoffset()
        for y in (year - 1, year, year + 1)
        for month in (1, 4, 7, 10)
    }
    return len(offsets) > 1


class _Project:
    """One AppProject document being turned into Window documents."""

    def __init__(self, doc: yamlsource.SourceDocument, timezone_default: str) -> None:
        self.doc = doc
        self.timezone_default = timezone_default
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.documents: list[dict[str, Any]] = []
        self.name = ""

    def problem(self, message: str, path: tuple[str | int, ...]) -> None:
        self.problems.append(
            Problem(
                message,
                file=self.doc.file,
                line=self.doc.locate(path),
                field=validation.field_path(path),
            )
        )

    def where(self, index: int) -> str:
        line = self.doc.locate(("spec", "syncWindows", index))
        return f"{self.doc.file}:{line}: spec.syncWindows[{index}]"

    def windows(self) -> list[Any]:
        data = self.doc.data
        metadata = data.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or not name:
            self.problem("an AppProject needs metadata.name (text)", ("metadata", "name"))
        else:
            self.name = name
        spec = data.get("spec")
        if spec is None:
            return []
        if not isinstance(spec, dict):
            self.problem("spec must be a mapping", ("spec",))
            return []
        windows = spec.get("syncWindows")
        if windows is None:
            return []
        if not isinstance(windows, list):
            self.problem("syncWindows must be a list", ("spec", "syncWindows"))
            return []
        return windows

    def convert(self) -> None:
        for index, raw in enumerate(self.windows()):
            path: tuple[str | int, ...] = ("spec", "syncWindows", index)
            if not isinstance(raw, dict):
                self.problem("a sync window must be a mapping", path)
                continue
            try:
                window = validation.validate_plain(
                    SyncWindow, raw, source=self.doc.file, locate=self.doc.locate, prefix=path
                )
            except InvalidInput as exc:
                self.problems.extend(exc.problems)
                continue
            self.convert_one(index, window, raw)

    def convert_one(self, index: int, window: SyncWindow, raw: dict[str, Any]) -> None:
        path: tuple[str | int, ...] = ("spec", "syncWindows", index)
        before = len(self.problems)
        notes: list[str] = []
        for extra in sorted(set(raw) - _KNOWN_FIELDS):
            notes.append(f"field {extra!r} is not known to this import; ignored")
        if window.kind not in ("allow", "deny"):
            shown = "missing" if window.kind is None else repr(window.kind)
            self.problem(f"kind must be allow or deny (got {shown})", (*path, "kind"))
        cron = self.cron(window.schedule, (*path, "schedule"))
        duration = self.duration(window.duration, (*path, "duration"))
        timezone = self.timezone(window.time_zone, (*path, "timeZone"))
        if len(self.problems) > before or cron is None or duration is None or timezone is None:
            return
        name = window_name(self.name or "project", index)
        scope, scope_notes = self.scope(window)
        notes.extend(scope_notes)
        if window.manual_sync:
            notes.append(
                "manualSync: Argo CD lets a person sync by hand while this window blocks; "
                "changegate has no such switch (a blocked decision names the role that may "
                "override it; a freeze can exempt change types or categories)"
            )
        if window.sync_overrun and window.kind == "deny":
            notes.append(
                "syncOverrun on a deny window (a sync started before the freeze may go on) "
                "has no changegate equivalent: an active freeze blocks a running "
                "implementation too (its next wave does not start)"
            )
        if _offset_varies(timezone):
            notes.append(
                f"timezone {timezone} changes its UTC offset (DST): Argo CD applies the offset "
                "in force when it evaluates (time.Now()) to every occurrence; changegate uses "
                "the offset in force at each occurrence, so windows near a DST change open "
                "and close apart by the DST shift (usually an hour) in the two tools"
            )
        if not scope:
            notes.append(
                "not imported: nothing is left to select in changegate (a changegate window "
                "with an empty scope is refused); re-scope it by tenants or clusters by hand"
            )
            self.add_notes(index, name, notes)
            return
        self.documents.append(self.document(index, name, window, cron, duration, timezone, scope))
        self.add_notes(index, name, notes)

    def add_notes(self, index: int, name: str, notes: list[str]) -> None:
        where = self.where(index)
        self.notes.extend(f"{where} ({name}): {note}" for note in notes)

    def cron(self, schedule: str | None, path: tuple[str | int, ...]) -> str | None:
        if schedule is None or not schedule.strip():
            self.problem("a sync window needs a schedule (five-field cron)", path)
            return None
        text = " ".join(schedule.split())
        if text.upper().startswith(("CRON_TZ=", "TZ=")):
            self.problem("a CRON_TZ= prefix is not supported here; use timeZone", path)
            return None
        # Argo CD's cron library reads `?` in the day fields as `*`.
        text = " ".join("*" if part == "?" else part for part in text.split(" "))
        try:
            catalog_model.check_cron(text)
        except ValueError as exc:
            self.problem(str(exc), path)
            return None
        return text

    def duration(self, text: str | None, path: tuple[str | int, ...]) -> timedelta | None:
        if text is None:
            self.problem("a sync window needs a duration (e.g. 1h, 30m, 1h30m)", path)
            return None
        try:
            value = go_duration(text)
        except ValueError as exc:
            self.problem(str(exc), path)
            return None
        if value > catalog_model.MAX_DURATION:
            self.problem(
                f"duration {text!r} is longer than {catalog_model.MAX_DURATION.days} days", path
            )
            return None
        return value

    def timezone(self, name: str | None, path: tuple[str | int, ...]) -> str | None:
        # Argo CD falls back to UTC, with a log line, for a zone it cannot load: refused here.
        zone = name or self.timezone_default
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            self.problem(f"unknown IANA timezone {zone!r} (e.g. Europe/Brussels, UTC)", path)
            return None
        return zone

    def scope(self, window: SyncWindow) -> tuple[dict[str, Any], list[str]]:
        notes: list[str] = []
        tenants, dropped_apps = _patterns(window.applications or [])
        clusters: list[str] = []
        urls: list[str] = []
        dropped_clusters: list[str] = []
        named, unusable = _patterns(
            [c for c in window.clusters or [] if not _is_url(c)],
        )
        clusters.extend(named)
        dropped_clusters.extend(unusable)
        urls.extend(c for c in window.clusters or [] if _is_url(c))
        namespaces = window.namespaces or []
        if not (window.applications or window.clusters or namespaces):
            notes.append(
                "selects no applications, clusters or namespaces: it matches nothing in "
                "Argo CD, and matches nothing in changegate"
            )
        if dropped_apps:
            notes.append(
                f"applications {', '.join(dropped_apps)} cannot be changegate tenant ids or "
                "globs (lower-case letters, digits, '-', * ? [ ] !); dropped"
            )
        if urls:
            notes.append(
                f"clusters {', '.join(urls)} are Argo CD API server URLs; changegate names "
                "clusters by id: dropped (add the cluster's id by hand)"
            )
        if dropped_clusters:
            notes.append(
                f"clusters {', '.join(dropped_clusters)} cannot be changegate cluster ids or "
                "globs; dropped"
            )
        if namespaces:
            effect = (
                "the window now applies whatever the namespace (wider than in Argo CD)"
                if window.and_operator
                else "applications selected only by namespace are no longer covered"
            )
            notes.append(
                f"namespaces {', '.join(namespaces)} have no changegate equivalent; dropped: "
                + effect
            )
        scope: dict[str, Any] = {}
        if clusters:
            scope["clusters"] = clusters
        if tenants:
            scope["tenants"] = tenants
        return scope, notes

    def document(
        self,
        index: int,
        name: str,
        window: SyncWindow,
        cron: str,
        duration: timedelta,
        timezone: str,
        scope: dict[str, Any],
    ) -> dict[str, Any]:
        allow = window.kind == "allow"
        origin = f"Argo CD AppProject {self.name}, syncWindows[{index}]"
        description = f"{origin}: {window.description}" if window.description else origin
        spec: dict[str, Any] = {
            "type": "allow" if allow else "deny",
            "purpose": "maintenance" if allow else "freeze",
            "description": description,
        }
        if not allow:
            spec["reason"] = window.description or f"Argo CD deny sync window ({origin})"
        spec |= {
            "timezone": timezone,
            "cron": cron,
            "duration": duration_text(duration),
            "scope": scope,
        }
        if window.and_operator:
            spec["match"] = "all"
        if allow and window.sync_overrun:
            spec["allow_overrun"] = True
        document = {
            "apiVersion": catalog_model.API_VERSION,
            "kind": "Window",
            "metadata": {
                "name": name,
                "annotations": {ANNOTATION: f"argocd:{self.name}/syncWindows[{index}]"},
            },
            "spec": spec,
        }
        # What is emitted must load: check it against the catalog's own Window rules.
        path: tuple[str | int, ...] = ("spec", "syncWindows", index)
        try:
            validation.validate_plain(catalog_model.WindowSpec, spec, source=None)
        except InvalidInput as exc:
            for problem in exc.problems:
                self.problem(f"cannot become a changegate Window: {problem}", path)
        return document


def _is_url(value: str) -> bool:
    return "://" in value or value.startswith(("https:", "http:"))


def _patterns(values: list[str]) -> tuple[list[str], list[str]]:
    """(usable changegate patterns, Argo CD patterns that cannot be one)."""
    usable: list[str] = []
    dropped: list[str] = []
    for value in values:
        try:
            expanded = expand_braces(value)
        except ValueError:
            dropped.append(value)
            continue
        if all(_PATTERN.match(item) for item in expanded):
            usable.extend(item for item in expanded if item not in usable)
        else:
            dropped.append(value)
    return usable, dropped


def _documents(text: str | bytes, source: str) -> list[yamlsource.SourceDocument]:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return [doc for doc in yamlsource.load_bytes(raw, display=source) if doc.data is not None]


def _is_project(doc: yamlsource.SourceDocument) -> bool:
    data = doc.data
    return (
        isinstance(data, dict)
        and data.get("kind") == "AppProject"
        and isinstance(data.get("apiVersion"), str)
        and data["apiVersion"].startswith(ARGO_API_GROUP)
    )


def _projects(
    documents: list[yamlsource.SourceDocument], source: str
) -> Iterator[yamlsource.SourceDocument | str]:
    """Each AppProject document, and a note for every other document (skipped)."""
    for doc in documents:
        if _is_project(doc):
            yield doc
            continue
        data = doc.data
        kind = data.get("kind") if isinstance(data, dict) else None
        shown = f"a {kind}" if isinstance(kind, str) else "not an Argo CD resource"
        yield (
            f"{source}:{doc.line}: document {doc.index + 1} is {shown}, not an AppProject; skipped"
        )


def import_sync_windows(
    text: str | bytes, source: str, *, timezone_default: str = "UTC"
) -> ImportResult:
    """Turn every AppProject's `spec.syncWindows` in text into changegate Window documents.

    Raises InvalidInput naming file, line and field for YAML that cannot be read (bad syntax,
    alias bombs, duplicate keys), a file with no AppProject, and any sync window whose kind,
    schedule, duration, timezone or field types are wrong. The notes say, window by window,
    where changegate's semantics deliberately differ from Argo CD's.
    """
    try:
        zoneinfo.ZoneInfo(timezone_default)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            [Problem(f"unknown IANA timezone {timezone_default!r}", field="timezone_default")]
        ) from None
    documents = _documents(text, source)
    notes: list[str] = []
    problems: list[Problem] = []
    results: list[dict[str, Any]] = []
    found = False
    for item in _projects(documents, source):
        if isinstance(item, str):
            notes.append(item)
            continue
        found = True
        project = _Project(item, timezone_default)
        project.convert()
        problems.extend(project.problems)
        results.extend(project.documents)
        notes.extend(project.notes)
    if not found:
        raise InvalidInput(
            [Problem("no Argo CD AppProject (apiVersion argoproj.io/v1alpha1) found", file=source)]
        )
    names: dict[str, int] = {}
    for document in results:
        name = document["metadata"]["name"]
        names[name] = names.get(name, 0) + 1
    repeated = sorted(name for name, count in names.items() if count > 1)
    if repeated:
        problems.append(
            Problem(f"the same AppProject appears twice: {', '.join(repeated)}", file=source)
        )
    if problems:
        raise InvalidInput(problems)
    if any(document["spec"]["scope"].get("tenants") for document in results):
        notes.insert(0, f"{source}: {TENANTS_NOTE}")
    if results:
        notes.insert(0, f"{source}: {INTERVAL_NOTE}")
    return ImportResult(results, notes)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block-style YAML without anchors, so each document reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """The documents as one multi-document YAML text, fields in catalog order."""
    if not documents:
        return ""
    text: str = yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=100,
    )
    return text
