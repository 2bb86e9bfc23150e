"""Odoo's version rules: series prefixing per series, parse_version ordering, migration folders.

The expected values are Odoo's documented behaviour (odoo/modules/module.py adapt_version,
odoo/tools/parse_version.py, odoo/modules/migration.py), not what any library would say.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from changegate.domain.odoo import versions
from changegate.domain.odoo.addons import MigrationScript, Stage
from changegate.errors import InvalidInput

# ---------------------------------------------------------------------------- parse_version


def test_numbers_compare_numerically_not_lexically() -> None:
    assert "16.0.2.6.1" > "16.0.2.11.1"  # what a string sort would say
    assert versions.parse_version("16.0.2.6.1") < versions.parse_version("16.0.2.11.1")
    assert versions.compare("16.0.2.6.1", "16.0.2.11.1") == -1
    assert versions.compare("17.0.10.0.0", "17.0.9.0.0") == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("17.0.1.0", "17.0.1.0.0"),
        ("2.4", "2.4.0"),
        ("17.0.1.0.0", "17.0.1"),
        ("17.0.01.0", "17.0.1.0"),
        ("1.0RC1", "1.0rc1"),
        ("1.0-rc1", "1.0rc1"),
        ("1.0pre1", "1.0c1"),
    ],
)
def test_equal_versions(a: str, b: str) -> None:
    assert versions.parse_version(a) == versions.parse_version(b)
    assert versions.compare(a, b) == 0


def test_internal_zeros_still_count() -> None:
    assert versions.compare("17.0.1.0.1", "17.0.1.1") == -1
    assert versions.compare("17.0.1.0.1", "17.0.1") == 1


@pytest.mark.parametrize(
    "ascending",
    [
        # odoo/tools/parse_version.py's own checks
        (
            "0",
            "4.2",
            "4.2.3.4",
            "5.0.0-alpha",
            "5.0.0-rc1",
            "5.0.0-rc1.1",
            "5.0.0_rc2",
            "5.0.0_rc3",
            "5.0.0",
        ),
        ("5.0.0-0_rc3", "5.0.0-1dev", "5.0.0-1"),
        # dev before any other tag, pre-releases before the release, patch levels after it
        ("1.0dev1", "1.0a1", "1.0b1", "1.0rc1", "1.0", "1.0-1", "1.0.1"),
        # saas series: "saas" and "~" vanish
        ("saas~17.1.1.0", "saas~17.2.1.0", "17.3.1.0", "18.0.1.0"),
    ],
)
def test_odoo_ordering(ascending: tuple[str, ...]) -> None:
    keys = [versions.parse_version(v) for v in ascending]
    assert all(a < b for a, b in itertools.pairwise(keys)), keys


def test_key_shape_is_odoo_s() -> None:
    assert versions.parse_version("17.0.1.0") == ("00000017", "00000000", "00000001", "*final")
    assert versions.parse_version("") == versions.parse_version("0.1")
    assert versions.parse_version(None) == ("00000000", "00000001", "*final")


@given(
    st.lists(st.integers(0, 10**7), min_size=1, max_size=6),
    st.lists(st.integers(0, 10**7), min_size=1, max_size=6),
)
def test_numeric_versions_order_as_integer_tuples(a: list[int], b: list[int]) -> None:
    def trimmed(numbers: list[int]) -> list[int]:
        out = list(numbers)
        while out and out[-1] == 0:
            out.pop()
        return out

    left = ".".join(map(str, a))
    right = ".".join(map(str, b))
    expected = (trimmed(a) > trimmed(b)) - (trimmed(a) < trimmed(b))
    assert versions.compare(left, right) == expected


# ---------------------------------------------------------------------------- adapt_version


@pytest.mark.parametrize(
    ("version", "series", "adapted"),
    [
        # up to 16.0: prefixed unless already of the series, never refused
        ("1.0", "16.0", "16.0.1.0"),
        ("1.0.2", "16.0", "16.0.1.0.2"),
        ("16.0.1.0.0", "16.0", "16.0.1.0.0"),
        ("16.0", "16.0", "16.0.16.0"),
        ("15.0.1.0.0", "16.0", "16.0.15.0.1.0.0"),
        ("1.0.0.1", "14.0", "14.0.1.0.0.1"),
        # 17.0: same prefixing
        ("1.0", "17.0", "17.0.1.0"),
        ("1.0.3", "17.0", "17.0.1.0.3"),
        ("17.0.1.0.0", "17.0", "17.0.1.0.0"),
        ("17.0", "17.0", "17.0.17.0"),
        # 18.0 and later: up to 3 parts prefixed, longer kept as written
        ("1.0", "18.0", "18.0.1.0"),
        ("1.0.3", "18.0", "18.0.1.0.3"),
        ("18.0.1.0.0", "18.0", "18.0.1.0.0"),
        ("1.0.0.1", "18.0", "1.0.0.1"),
        ("17.0.1.0.0", "18.0", "17.0.1.0.0"),
        ("saas~18.1.1.0", "saas~18.1", "saas~18.1.1.0"),
        ("1.0", "saas~18.1", "saas~18.1.1.0"),
    ],
)
def test_adapt_version(version: str, series: str, adapted: str) -> None:
    assert versions.adapt_version(version, series) == adapted


@pytest.mark.parametrize(
    ("version", "series", "message"),
    [
        ("16.0.1.0.0", "17.0", "17.0.x.y.z"),  # another series: 17.0 refuses it
        ("1.0.0.1", "17.0", "x.y, x.y.z"),
        ("1.x", "17.0", "format"),
        ("1", "18.0", "between 2 and 5 parts"),
        ("18.0.1.0.0.1", "18.0", "between 2 and 5 parts"),
        ("1.x", "18.0", "whole number"),
        ("", "16.0", "not a version"),
    ],
)
def test_adapt_version_refusals(version: str, series: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        versions.adapt_version(version, series)
    assert caught.value.problems[0].field == "version"
    assert message in caught.value.message


@pytest.mark.parametrize("series", ["17", "17.1", "v17.0", "saas-17.1", "0.0", ""])
def test_bad_series(series: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        versions.series_major(series)
    assert caught.value.problems[0].field == "series"


def test_series_major() -> None:
    assert versions.series_major("17.0") == 17
    assert versions.series_major("saas~17.2") == 17
    assert versions.series_major("8.0") == 8


def test_belongs_to_and_is_newer() -> None:
    assert versions.belongs_to("18.0.1.0", "18.0")
    assert not versions.belongs_to("17.0.1.0.0", "18.0")
    assert not versions.belongs_to("18.0", "18.0")
    assert versions.is_newer("1.1", "17.0.1.0", "17.0")
    assert versions.is_newer("17.0.2.11.0", "17.0.2.6.1", "17.0")
    assert not versions.is_newer("17.0.1.0", "17.0.1.0.0", "17.0")
    assert not versions.is_newer("1.0", "17.0.1.0", "17.0")


# ---------------------------------------------------------------------------- migration folders


@pytest.mark.parametrize(
    "name",
    [
        "1.1",
        "1.0.2",
        "0.0.0",
        "17.0.1.1",
        "17.0.1.0.0",
        "6.1.1.0",
        "9.0.1.1",
        "8.saas~6.1.0",
        "saas~17.1.1.0",
        "saas~11.3.1.0.0",
    ],
)
def test_migration_folder_names_odoo_reads(name: str) -> None:
    assert versions.is_migration_folder(name)


@pytest.mark.parametrize(
    "name",
    [
        "tests",
        "1",
        "1.0.0.0",  # four parts and no series prefix
        "5.0.1.0",  # no such series
        "17.0.1.0.0.1",  # series then four parts
        "17.1.1.0",  # 17.1 is not a series name
        "saas~10.1.1.0",  # saas~x.y only from 11
        "v1.0",
        "1.0-fix",
        "__pycache__",
    ],
)
def test_migration_folder_names_odoo_skips(name: str) -> None:
    assert not versions.is_migration_folder(name)


def test_folder_version_and_series_less() -> None:
    assert versions.folder_version("1.1", "17.0") == "17.0.1.1"
    assert versions.folder_version("1.0.2", "17.0") == "17.0.1.0.2"
    assert versions.folder_version("17.0.1.1", "17.0") == "17.0.1.1"
    assert versions.folder_version("16.0.1.1", "17.0") == "16.0.1.1"
    assert versions.folder_version("0.0.0", "17.0") == "0.0.0"
    assert versions.is_series_less("1.1")
    assert versions.is_series_less("1.0.2")
    assert not versions.is_series_less("17.0.1.1")
    assert not versions.is_series_less("0.0.0")


@pytest.mark.parametrize(
    ("folder", "installed", "new", "runs"),
    [
        ("17.0.1.1", "17.0.1.0", "17.0.1.2", True),
        ("17.0.1.2", "17.0.1.0", "17.0.1.2", True),  # the new version's own folder runs
        ("17.0.1.0", "17.0.1.0", "17.0.1.2", False),  # the installed one does not
        ("17.0.1.3", "17.0.1.0", "17.0.1.2", False),  # nor a later one
        ("17.0.1.1", "17.0.1.2", "17.0.1.2", False),  # nothing when the version is the same
        ("1.1", "17.0.1.0", "1.2", True),  # series-less folder and manifest version
        ("1.1", "17.0.1.0", "17.0.1.2", True),
        ("17.0.2.11.0", "17.0.2.6.1", "17.0.2.11.0", True),
        ("17.0.2.6.1", "17.0.2.6.1", "17.0.2.11.0", False),
        ("0.0.0", "17.0.1.0", "17.0.1.1", True),  # any version change
        ("0.0.0", "17.0.1.1", "17.0.1.1", False),  # but not without one
        ("0.0.0", "17.0.1.0.0", "17.0.1.0", False),  # trailing zeros are no change
    ],
)
def test_folder_runs(folder: str, installed: str, new: str, runs: bool) -> None:
    assert versions.folder_runs(folder, installed, new, "17.0") is runs


def test_series_less_folders_do_not_rerun_on_a_major_upgrade() -> None:
    # a module at 16.0.2.0 ran its "2.0" script; moving to 17.0.2.0 must not run it again
    assert not versions.folder_runs("2.0", "16.0.2.0", "17.0.2.0", "17.0")
    assert versions.folder_runs("2.1", "16.0.2.0", "17.0.2.1", "17.0")
    # a folder naming the new series runs: 16.0.2.0 < 17.0.2.0 <= 17.0.2.0
    assert versions.folder_runs("17.0.2.0", "16.0.2.0", "17.0.2.0", "17.0")
    # a folder of the old series above the installed version runs too (Odoo compares all)
    assert versions.folder_runs("16.0.2.1", "16.0.2.0", "17.0.2.0", "17.0")


def test_ordered_folders_are_numeric_with_0_0_0_first_then_last() -> None:
    folders = ["17.0.2.11.0", "17.0.2.6.1", "0.0.0", "2.10", "2.9", "junk", "tests"]
    assert versions.ordered_folders(folders, Stage.PRE, "17.0") == [
        "0.0.0",
        "17.0.2.6.1",
        "2.9",
        "2.10",
        "17.0.2.11.0",
    ]
    assert versions.ordered_folders(folders, Stage.POST, "17.0")[-1] == "0.0.0"
    assert versions.ordered_folders(folders, Stage.END, "17.0")[-1] == "0.0.0"


def test_folders_to_run() -> None:
    folders = ["17.0.2.6.1", "17.0.2.9.0", "17.0.2.11.0", "17.0.2.12.0", "0.0.0", "1.0"]
    assert versions.folders_to_run(folders, "17.0.2.6.1", "17.0.2.11.0", "17.0", Stage.PRE) == [
        "0.0.0",
        "17.0.2.9.0",
        "17.0.2.11.0",
    ]
    assert versions.folders_to_run(folders, "17.0.2.6.1", "17.0.2.11.0", "17.0", Stage.END) == [
        "17.0.2.9.0",
        "17.0.2.11.0",
        "0.0.0",
    ]
    assert versions.folders_to_run(folders, "17.0.2.11.0", "17.0.2.11.0", "17.0", Stage.PRE) == []


def test_scripts_to_run_merge_migrations_and_upgrades_by_file_name() -> None:
    def script(folder: str, version: str, name: str, stage: Stage) -> MigrationScript:
        return MigrationScript(folder, version, stage, f"{folder}/{version}/{name}")

    scripts = [
        script("migrations", "1.2", "pre-b.py", Stage.PRE),
        script("upgrades", "1.2", "pre-a.py", Stage.PRE),
        script("migrations", "1.2", "post-a.py", Stage.POST),
        script("migrations", "1.1", "pre-z.py", Stage.PRE),
        script("migrations", "1.0", "pre-old.py", Stage.PRE),
        script("migrations", "0.0.0", "pre-always.py", Stage.PRE),
        script("upgrades", "1.1", "pre-z.py", Stage.PRE),
    ]
    ran = versions.scripts_to_run(scripts, "17.0.1.0", "17.0.1.2", "17.0", Stage.PRE)
    assert [s.path for s in ran] == [
        "migrations/0.0.0/pre-always.py",
        "migrations/1.1/pre-z.py",
        "upgrades/1.1/pre-z.py",
        "upgrades/1.2/pre-a.py",
        "migrations/1.2/pre-b.py",
    ]
    post = versions.scripts_to_run(scripts, "17.0.1.0", "17.0.1.2", "17.0", Stage.POST)
    assert [s.path for s in post] == ["migrations/1.2/post-a.py"]
