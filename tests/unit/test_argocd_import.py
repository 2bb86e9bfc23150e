"""Argo CD sync windows to changegate Windows: translation, notes, and errors naming
file, line and field. The output must load as a catalog (the sample platform plus it)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from changegate.adapters import argocd, catalog_files
from changegate.errors import InvalidInput, Problem

PROJECT = """\
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: odoo.prod
  namespace: argocd
spec:
  description: Production Odoo tenants
  sourceRepos: ['*']
  destinations:
  - namespace: '*'
    server: https://kubernetes.default.svc
  syncWindows:
  - kind: allow
    schedule: '0 2 * * SUN'
    duration: 4h
    timeZone: Europe/Berlin
    applications: ['litware-*', '{tyrell,nakatomi}-*']
    clusters: [eu-west-prod-1, 'https://kubernetes.default.svc']
    syncOverrun: true
    description: Weekly maintenance, CAB-1234
  - kind: deny
    schedule: '0 22 * * 5'
    duration: 1h30m
    namespaces: [default]
    manualSync: true
  - kind: deny
    schedule: '0 0 1 * ?'
    duration: 24h
    applications: ['*']
    clusters: ['eu-*']
    namespaces: [odoo]
    andOperator: true
    syncOverrun: true
  - kind: allow
    schedule: '30 9 * * 2-4'
    duration: 2.5h
    timeZone: America/New_York
    clusters: ['us-east-prod-1']
  - kind: allow
    schedule: '0 3 * * *'
    duration: 1h
"""


def imported(text: str = PROJECT, **kwargs: str) -> argocd.ImportResult:
    return argocd.import_sync_windows(text, "project.yaml", **kwargs)


def problems(text: str) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        imported(text)
    return caught.value.problems


def only_problem(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def notes_for(result: argocd.ImportResult, index: int) -> list[str]:
    return [note for note in result.notes if f"spec.syncWindows[{index}] " in note]


def with_window(window: str) -> str:
    """An AppProject with one sync window, given as YAML lines under `syncWindows:`."""
    head = PROJECT.split("  syncWindows:\n", maxsplit=1)[0]
    return head + "  syncWindows:\n" + window


# ------------------------------------------------------------------ translation


def test_each_window_becomes_a_changegate_window() -> None:
    result = imported()
    names = [doc["metadata"]["name"] for doc in result.documents]
    # The second window selects only a namespace and the last one nothing: not imported.
    assert names == ["argocd-odoo-prod-0", "argocd-odoo-prod-2", "argocd-odoo-prod-3"]
    first, second, third = result.documents
    assert first == {
        "apiVersion": "changegate.io/v1",
        "kind": "Window",
        "metadata": {
            "name": "argocd-odoo-prod-0",
            "annotations": {"changegate.io/imported-from": "argocd:odoo.prod/syncWindows[0]"},
        },
        "spec": {
            "type": "allow",
            "purpose": "maintenance",
            "description": "Argo CD AppProject odoo.prod, syncWindows[0]: Weekly maintenance, "
            "CAB-1234",
            "timezone": "Europe/Berlin",
            "cron": "0 2 * * SUN",
            "duration": "4h",
            "scope": {
                "clusters": ["eu-west-prod-1"],
                "tenants": ["litware-*", "tyrell-*", "nakatomi-*"],
            },
            "allow_overrun": True,
        },
    }
    assert second["spec"]["type"] == "deny"
    assert second["spec"]["purpose"] == "freeze"
    assert second["spec"]["timezone"] == "UTC"  # Argo CD's default when timeZone is absent
    assert second["spec"]["cron"] == "0 0 1 * *"  # `?` is `*` to Argo CD's cron library
    assert second["spec"]["match"] == "all"  # andOperator
    assert second["spec"]["scope"] == {"clusters": ["eu-*"], "tenants": ["*"]}
    assert "allow_overrun" not in second["spec"]  # deny overrun has no equivalent
    assert second["spec"]["reason"].startswith("Argo CD deny sync window")
    assert third["spec"]["duration"] == "2h30m"
    assert third["spec"]["timezone"] == "America/New_York"
    assert "match" not in third["spec"]


def test_the_output_loads_into_the_sample_platform(tmp_path: Path, sample_dir: Path) -> None:
    platform = tmp_path / "platform"
    shutil.copytree(sample_dir, platform)
    result = imported()
    (platform / "argocd-windows.yaml").write_text(argocd.to_yaml(result.documents))
    catalog = catalog_files.load_catalog(platform)
    for document in result.documents:
        window = catalog.windows[document["metadata"]["name"]]
        assert window.file == "argocd-windows.yaml"
        assert window.spec.cron == document["spec"]["cron"]
    allow = catalog.windows["argocd-odoo-prod-0"].spec
    assert allow.duration == timedelta(hours=4)
    assert allow.allow_overrun is True
    assert catalog.windows["argocd-odoo-prod-2"].spec.match == "all"


def test_notes_name_each_deliberate_difference_once_per_window() -> None:
    result = imported()
    # Said once for the whole import.
    assert result.notes[0].startswith("project.yaml: intervals: ")
    assert "start instant itself is outside" in result.notes[0]
    assert "[start, start + duration)" in result.notes[0]
    assert result.notes[1].startswith("project.yaml: applications became tenants")

    first = notes_for(result, 0)
    assert all(note.startswith("project.yaml:13: spec.syncWindows[0] ") for note in first)
    assert any("https://kubernetes.default.svc" in n and "API server URL" in n for n in first)
    # Europe/Berlin has DST: Argo's offset at time.Now() versus ours per occurrence.
    (tz_note,) = [n for n in first if "timezone Europe/Berlin" in n]
    assert "time.Now()" in tz_note and "offset in force at each occurrence" in tz_note

    namespace_only = notes_for(result, 1)
    assert any("namespaces default have no changegate equivalent" in n for n in namespace_only)
    assert any("manualSync" in n and "no such switch" in n for n in namespace_only)
    assert any("not imported" in n for n in namespace_only)
    # UTC has no DST: no timezone note.
    assert not any("timezone" in n for n in namespace_only)

    anded = notes_for(result, 2)
    assert any("wider than in Argo CD" in n for n in anded)
    assert any("syncOverrun on a deny window" in n for n in anded)

    empty = notes_for(result, 4)
    assert any("matches nothing in Argo CD, and matches nothing in changegate" in n for n in empty)
    assert any("not imported" in n for n in empty)
    for index in range(5):
        kinds = [note.split("): ", 1)[1].split(" ")[0] for note in notes_for(result, index)]
        assert len(kinds) == len(set(kinds)), notes_for(result, index)


def test_as_dict_is_documents_and_notes() -> None:
    result = imported()
    assert result.as_dict() == {"documents": result.documents, "notes": result.notes}


def test_the_timezone_default_applies_where_timezone_is_absent() -> None:
    result = imported(timezone_default="Europe/Brussels")
    assert result.documents[1]["spec"]["timezone"] == "Europe/Brussels"
    assert result.documents[0]["spec"]["timezone"] == "Europe/Berlin"


def test_names_are_deterministic_and_fit_an_id() -> None:
    assert argocd.window_name("default", 0) == "argocd-default-0"
    long = argocd.window_name("a" * 200 + ".example", 12)
    assert len(long) <= 63 and long.endswith("-12")
    assert long == argocd.window_name("a" * 200 + ".example", 12)
    assert long != argocd.window_name("a" * 200 + ".other", 12)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("30m", 1800),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("90s", 90),
        ("2h45m30s", 9930),
        ("1500ms", None),
        ("0", None),
        ("-1h", None),
        ("3600", None),
        ("1d", None),
        ("", None),
    ],
)
def test_go_durations(text: str, seconds: int | None) -> None:
    if seconds is None:
        with pytest.raises(ValueError, match="duration"):
            argocd.go_duration(text)
    else:
        assert argocd.go_duration(text) == timedelta(seconds=seconds)
        assert argocd.go_duration(argocd.duration_text(timedelta(seconds=seconds))) == timedelta(
            seconds=seconds
        )


def test_brace_alternatives_become_patterns() -> None:
    assert argocd.expand_braces("{a,b}-{x,y}") == ["a-x", "a-y", "b-x", "b-y"]
    assert argocd.expand_braces("plain") == ["plain"]
    with pytest.raises(ValueError, match="more than"):
        argocd.expand_braces("{a,b}" * 10)


def test_patterns_changegate_cannot_hold_are_dropped_with_a_note() -> None:
    result = imported(
        with_window(
            "  - kind: allow\n"
            "    schedule: '0 1 * * *'\n"
            "    duration: 1h\n"
            "    applications: [Guestbook, 'shop.prod', good-app]\n"
        )
    )
    assert result.documents[0]["spec"]["scope"] == {"tenants": ["good-app"]}
    assert any("applications Guestbook, shop.prod cannot be" in note for note in result.notes)


def test_other_documents_are_skipped_with_a_note() -> None:
    application = "---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x}\n"
    result = imported(PROJECT + application)
    assert len(result.documents) == 3
    assert any("is a Application, not an AppProject; skipped" in n for n in result.notes)


def test_a_project_without_windows_imports_nothing() -> None:
    result = imported(PROJECT.split("  syncWindows:\n", maxsplit=1)[0])
    assert result.documents == [] and result.notes == []


# ------------------------------------------------------------------ errors


def test_bad_yaml_names_file_and_line() -> None:
    problem = only_problem("apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nspec: [\n")
    assert problem.file == "project.yaml"
    assert problem.line is not None and problem.message.startswith("invalid YAML")


def test_an_alias_bomb_is_refused() -> None:
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        previous = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        bomb.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    problem = only_problem("\n".join(bomb) + "\n")
    assert "alias bomb" in problem.message
    assert problem.file == "project.yaml" and problem.line is not None


def test_duplicate_keys_are_refused() -> None:
    problem = only_problem(
        with_window(
            "  - kind: allow\n    kind: deny\n    schedule: '0 1 * * *'\n    duration: 1h\n"
        )
    )
    assert problem.line == 14 and "duplicate key 'kind'" in problem.message


def test_no_appproject_is_an_error() -> None:
    problem = only_problem("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert "no Argo CD AppProject" in problem.message and problem.file == "project.yaml"


def test_wrong_types_and_values_name_file_line_and_field() -> None:
    text = with_window(
        "  - kind: sometimes\n"  # line 13
        "    schedule: '0 25 * * *'\n"
        "    duration: 1h\n"
        "    applications: [x]\n"
        "  - kind: allow\n"  # line 17, index 1
        "    schedule: '0 1 * * *'\n"
        "    duration: 3600\n"
        "    applications: shop\n"
        "    manualSync: 'yes'\n"
        "  - kind: deny\n"  # index 2
        "    schedule: '0 1 * *'\n"
        "    duration: 1x\n"
        "    timeZone: Mars/Olympus\n"
        "    applications: [x]\n"
    )
    found = {(p.line, p.field): p.message for p in problems(text)}
    assert found[(13, "spec.syncWindows[0].kind")] == "kind must be allow or deny (got 'sometimes')"
    assert "hour '25'" in found[(14, "spec.syncWindows[0].schedule")]
    assert found[(19, "spec.syncWindows[1].duration")] == "Input should be a valid string"
    assert found[(20, "spec.syncWindows[1].applications")] == "Input should be a valid array"
    assert found[(21, "spec.syncWindows[1].manualSync")] == "Input should be a valid boolean"
    assert "5 fields" in found[(23, "spec.syncWindows[2].schedule")]
    assert "not a Go duration" in found[(24, "spec.syncWindows[2].duration")]
    assert "Mars/Olympus" in found[(25, "spec.syncWindows[2].timeZone")]
    assert all(p.file == "project.yaml" for p in problems(text))


def test_missing_fields_are_errors() -> None:
    found = problems(with_window("  - applications: [x]\n"))
    fields = {p.field for p in found}
    assert fields == {
        "spec.syncWindows[0].kind",
        "spec.syncWindows[0].schedule",
        "spec.syncWindows[0].duration",
    }


def test_sub_second_and_too_long_durations_are_errors() -> None:
    for duration, message in (("1500ms", "whole number of seconds"), ("9000h", "366 days")):
        text = with_window(
            f"  - kind: allow\n    schedule: '0 1 * * *'\n    duration: {duration}\n"
            "    applications: [x]\n"
        )
        problem = only_problem(text)
        assert problem.field == "spec.syncWindows[0].duration"
        assert message in problem.message


def test_a_project_needs_a_name_and_a_list_of_windows() -> None:
    text = "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nspec:\n  syncWindows: {}\n"
    found = {p.field: p for p in problems(text)}
    assert set(found) == {"metadata.name", "spec.syncWindows"}
    assert found["spec.syncWindows"].line == 4


def test_the_same_project_twice_is_an_error() -> None:
    problem = only_problem(PROJECT + "---\n" + PROJECT)
    assert "the same AppProject appears twice" in problem.message


def test_an_unknown_default_timezone_is_an_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        imported(timezone_default="Nowhere/Land")
    assert caught.value.problems[0].field == "timezone_default"


def test_cron_tz_prefixes_are_refused() -> None:
    problem = only_problem(
        with_window(
            "  - kind: allow\n    schedule: 'CRON_TZ=Asia/Tokyo 0 1 * * *'\n    duration: 1h\n"
            "    applications: [x]\n"
        )
    )
    assert "CRON_TZ" in problem.message and problem.field == "spec.syncWindows[0].schedule"
