"""Reading addons: synthetic addons folders, a real Git repository at two refs, wheels.

The synthetic trees are written for this project. The last tests read real OCA addon wheels
of series 16.0 downloaded at test time with `pip download --no-deps` into a cache
(CHANGEGATE_TEST_WHEELS, default ~/.cache/changegate-test-wheels); they skip only when the
package registry cannot be reached, and never under CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from changegate.adapters import addon_checksums
from changegate.adapters import addons as reader
from changegate.domain.odoo import versions
from changegate.domain.odoo.addons import Addon, AddonSet, Stage
from changegate.errors import InvalidInput, PayloadTooLarge
from tests.integration.test_gitops_git import commit, git

SERIES = "16.0"


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def manifest_text(version: str, depends: list[str], **extra: object) -> str:
    fields = {"name": "x", "version": version, "depends": depends, "license": "AGPL-3", **extra}
    return "# synthetic addon for changegate's tests\n" + repr(fields) + "\n"


# An addons path at "release 1" and "release 2" of an imaginary provider's addons repository.
RELEASE_1: dict[str, str | bytes] = {
    "sale_ext/__manifest__.py": manifest_text("16.0.1.0.0", ["sale"]),
    "sale_ext/__init__.py": "",
    "sale_ext/migrations/16.0.1.0.0/pre-init.py": "def migrate(cr, version):\n    pass\n",
    "stock_ext/__manifest__.py": manifest_text("1.0", ["stock"]),
    "stock_ext/migrations/1.0/post-fill.py": "import logging\n",
    "bridge/__manifest__.py": manifest_text(
        "16.0.1.0.0", ["sale_ext", "stock_ext"], auto_install=True
    ),
    "README.md": "# addons\n",
    "setup/sale_ext/setup.py": "import setuptools\n",
}
RELEASE_2: dict[str, str | bytes] = {
    **RELEASE_1,
    # a version whose order differs lexically and numerically, a dependency added, scripts
    "sale_ext/__manifest__.py": manifest_text("16.0.1.10.0", ["sale", "account"]),
    "sale_ext/migrations/16.0.1.9.0/pre-rename.py": (
        "from openupgradelib import openupgrade\n\ndef migrate(cr, version):\n    pass\n"
    ),
    "sale_ext/migrations/16.0.1.10.0/post-recompute.py": "from odoo import api, SUPERUSER_ID\n",
    "sale_ext/migrations/16.0.1.10.0/helpers.py": "import not_a_script\n",
    "sale_ext/migrations/0.0.0/end-invariants.py": "import psycopg2\n",
    "sale_ext/migrations/tests/pre-test.py": "import pytest\n",
    "sale_ext/migrations/next/pre-draft.py": "import draft\n",
    "sale_ext/upgrades/1.10.0/pre-series-less.py": "from odoo.upgrade import util\n",
    # auto_install in list form, and an addon new in this release
    "stock_ext/__manifest__.py": manifest_text("1.1", ["stock"]),
    "crm_ext/__manifest__.py": manifest_text(
        "16.0.1.0.0", ["crm", "sale_ext"], auto_install=["crm"]
    ),
    # an old-style manifest, a hidden folder and a folder without a manifest
    "legacy/__openerp__.py": manifest_text("1.0", ["base"]),
    ".git-hooks/__manifest__.py": manifest_text("1.0", []),
    "docs/index.md": "# docs\n",
}
REMOVED_IN_2 = ["stock_ext/migrations/1.0/post-fill.py"]  # a migrations folder that disappears


def scripts_of(addon: Addon) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(s.path, s.version, s.stage.value, s.imports) for s in addon.migrations]


def check_release_2(found: AddonSet, source_of: str) -> None:
    assert sorted(found.addons) == ["bridge", "crm_ext", "legacy", "sale_ext", "stock_ext"]
    assert found.series == SERIES
    sale = found.addons["sale_ext"]
    assert sale.version == "16.0.1.10.0"
    assert sale.depends == ("sale", "account")
    assert sale.source == source_of + "sale_ext"
    assert scripts_of(sale) == [
        ("migrations/0.0.0/end-invariants.py", "0.0.0", "end", ("psycopg2",)),
        ("migrations/16.0.1.0.0/pre-init.py", "16.0.1.0.0", "pre", ()),
        ("migrations/16.0.1.10.0/post-recompute.py", "16.0.1.10.0", "post", ("odoo",)),
        ("migrations/16.0.1.9.0/pre-rename.py", "16.0.1.9.0", "pre", ("openupgradelib",)),
        ("upgrades/1.10.0/pre-series-less.py", "1.10.0", "pre", ("odoo",)),
    ]
    assert found.addons["stock_ext"].migrations == ()
    assert found.addons["bridge"].auto_install is True
    assert found.addons["crm_ext"].auto_install == ("crm",)
    assert found.addons["legacy"].version == "1.0"
    # what Odoo would run updating sale_ext from release 1 to release 2, stage by stage
    installed = versions.adapt_version("16.0.1.0.0", SERIES)
    pre = versions.scripts_to_run(sale.migrations, installed, sale.version, SERIES, Stage.PRE)
    assert [s.path for s in pre] == [
        "migrations/16.0.1.9.0/pre-rename.py",
        "upgrades/1.10.0/pre-series-less.py",
    ]
    end = versions.scripts_to_run(sale.migrations, installed, sale.version, SERIES, Stage.END)
    assert [s.path for s in end] == ["migrations/0.0.0/end-invariants.py"]


# ---------------------------------------------------------------------------- folders


@pytest.fixture
def addons_path(tmp_path: Path) -> Path:
    root = tmp_path / "addons"
    write(root, RELEASE_2)
    for removed in REMOVED_IN_2:
        (root / removed).unlink()
    return root


def test_from_folder(addons_path: Path) -> None:
    found = reader.from_folder(addons_path, SERIES)
    check_release_2(found, f"{addons_path}/")
    assert found.source == str(addons_path)


def test_from_folder_checksums_behind_a_flag(addons_path: Path) -> None:
    write(
        addons_path / "sale_ext",
        {"i18n/fr.po": "msgid x\n", "i18n/de.po": "msgid y\n", "static/a.js": "x"},
    )
    assert all(a.checksum is None for a in reader.from_folder(addons_path, SERIES).addons.values())
    found = reader.from_folder(addons_path, SERIES, checksums=True, languages=["fr_BE"])
    for name, addon in found.addons.items():
        expected = addon_checksums.checksum_folder(addons_path / name, languages=["fr_BE"])
        assert addon.checksum == expected
    german = reader.from_folder(addons_path, SERIES, checksums=True, languages=["de_DE"])
    assert german.addons["sale_ext"].checksum != found.addons["sale_ext"].checksum
    assert german.addons["bridge"].checksum == found.addons["bridge"].checksum


def test_from_folder_18_ignores_openerp_manifests(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "new/__manifest__.py": manifest_text("18.0.1.0.0", []),
            "old/__openerp__.py": manifest_text("1.0", []),
            "other/__manifest__.py": manifest_text("17.0.1.0.0", []),
        },
    )
    found = reader.from_folder(tmp_path, "18.0")
    assert sorted(found.addons) == ["new", "other"]
    assert not found.addons["other"].installable  # 18.0: another series is not installable


def test_from_folders_first_path_wins(tmp_path: Path) -> None:
    write(tmp_path / "custom", {"sale_ext/__manifest__.py": manifest_text("16.0.2.0.0", [])})
    write(tmp_path / "oca", RELEASE_1)
    found = reader.from_folders([tmp_path / "custom", tmp_path / "oca"], SERIES)
    assert found.addons["sale_ext"].version == "16.0.2.0.0"
    assert found.addons["sale_ext"].source == f"{tmp_path}/custom/sale_ext"
    assert "bridge" in found.addons


def test_from_folder_follows_symlinked_addons(tmp_path: Path) -> None:
    write(tmp_path / "src", RELEASE_1)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "sale_ext").symlink_to(tmp_path / "src" / "sale_ext")
    found = reader.from_folder(tmp_path / "linked", SERIES)
    assert list(found.addons) == ["sale_ext"]
    assert len(found.addons["sale_ext"].migrations) == 1


@pytest.mark.parametrize(
    ("files", "file", "field", "message"),
    [
        (
            {"bad/__manifest__.py": "{'name': 'x', 'version': open('/etc/passwd').read()}"},
            "bad/__manifest__.py",
            "version",
            "not a literal",
        ),
        (
            {"bad/__manifest__.py": manifest_text("15.0.1.0.0", []).replace("15.0", "16.x")},
            "bad/__manifest__.py",
            "version",
            "invalid version '16.x.1.0.0'",
        ),
        (
            {"bad/__manifest__.py": b"{'name': '\xff'}"},
            "bad/__manifest__.py",
            None,
            "not UTF-8",
        ),
        (
            {
                "bad/__manifest__.py": manifest_text("1.0", []),
                "bad/migrations/1.1/pre-broken.py": "def migrate(cr, version)\n",
            },
            "bad/migrations/1.1/pre-broken.py",
            None,
            "syntax error",
        ),
        (
            {"bad/__manifest__.py": manifest_text("1.0", ["a"], auto_install=["b"])},
            "bad/__manifest__.py",
            "auto_install",
            "not in depends: b",
        ),
    ],
)
def test_from_folder_errors_name_file_and_field(
    tmp_path: Path, files: dict[str, str | bytes], file: str, field: str | None, message: str
) -> None:
    write(tmp_path, files)
    with pytest.raises(InvalidInput) as caught:
        reader.from_folder(tmp_path, "17.0")
    problem = caught.value.problems[0]
    assert problem.file is not None
    assert problem.file.endswith(file)
    if field is not None:
        assert problem.field == field
    assert message in caught.value.message


def test_from_folder_17_refuses_another_series_version(tmp_path: Path) -> None:
    write(tmp_path, {"old/__manifest__.py": manifest_text("16.0.1.0.0", [])})
    with pytest.raises(InvalidInput) as caught:
        reader.from_folder(tmp_path, "17.0")
    assert caught.value.problems[0].field == "version"
    assert caught.value.problems[0].file == str(tmp_path / "old" / "__manifest__.py")


def test_from_folder_bounds_sizes(tmp_path: Path) -> None:
    big = "{'description': '" + "x" * (1024 * 1024) + "'}"
    write(tmp_path, {"big/__manifest__.py": big})
    with pytest.raises(PayloadTooLarge) as caught:
        reader.from_folder(tmp_path, SERIES)
    assert caught.value.problems[0].file == str(tmp_path / "big" / "__manifest__.py")


def test_from_folder_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such folder"):
        reader.from_folder(tmp_path / "missing", SERIES)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="not a folder"):
        reader.from_folder(tmp_path / "file", SERIES)
    with pytest.raises(InvalidInput):
        reader.from_folder(tmp_path, "16")


# ---------------------------------------------------------------------------- git


@pytest.fixture
def addons_repo(tmp_path: Path) -> Path:
    """A real repository: release 1 tagged r1, release 2 on main, addons under `addons/`."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo / "addons", RELEASE_1)
    commit(repo, "release 1")
    git(repo, "tag", "r1")
    write(repo / "addons", RELEASE_2)
    for removed in REMOVED_IN_2:
        (repo / "addons" / removed).unlink()
    (repo / "addons" / "sale_ext" / "static").mkdir()
    (repo / "addons" / "sale_ext" / "static" / "icon.png").write_bytes(b"\x89PNG\x00\x01")
    commit(repo, "release 2")
    return repo


def test_from_git_reads_two_refs(addons_repo: Path) -> None:
    before = reader.from_git(addons_repo, "r1", SERIES, under="addons")
    after = reader.from_git(addons_repo, "main", SERIES, under="addons/")
    head = git(addons_repo, "rev-parse", "HEAD")
    assert after.source == f"{addons_repo}@{head}"
    check_release_2(after, "main:addons/")

    assert sorted(before.addons) == ["bridge", "sale_ext", "stock_ext"]
    assert before.addons["sale_ext"].version == "16.0.1.0.0"
    assert before.addons["sale_ext"].depends == ("sale",)
    assert before.addons["sale_ext"].source == "r1:addons/sale_ext"
    assert scripts_of(before.addons["stock_ext"]) == [
        ("migrations/1.0/post-fill.py", "1.0", "post", ("logging",))
    ]
    # the version rules across the two refs
    assert versions.compare(after.addons["sale_ext"].version, "16.0.1.9.0") == 1
    assert versions.is_newer(after.addons["stock_ext"].version, "16.0.1.0", SERIES)
    assert not versions.is_newer(after.addons["bridge"].version, "16.0.1.0.0", SERIES)


def test_from_git_at_the_root_and_errors(addons_repo: Path, tmp_path: Path) -> None:
    assert reader.from_git(addons_repo, "main", SERIES).addons == {}  # addons are one level down
    with pytest.raises(InvalidInput, match="unknown commit"):
        reader.from_git(addons_repo, "no-such-ref", SERIES)
    with pytest.raises(InvalidInput, match="not a folder of the repository"):
        reader.from_git(addons_repo, "main", SERIES, under="../elsewhere")
    with pytest.raises(InvalidInput, match="not a Git repository"):
        reader.from_git(tmp_path, "main", SERIES)

    write(addons_repo / "addons", {"evil/__manifest__.py": "{'version': exec('1')}"})
    commit(addons_repo, "a manifest with code")
    with pytest.raises(InvalidInput) as caught:
        reader.from_git(addons_repo, "main", SERIES, under="addons")
    assert caught.value.problems[0].file == "main:addons/evil/__manifest__.py"
    assert caught.value.problems[0].field == "version"


# ---------------------------------------------------------------------------- wheels


def make_wheel(
    folder: Path,
    dist: str,
    version: str,
    addons: dict[str, dict[str, str]],
    *,
    root: str = "odoo/addons",
) -> Path:
    """A wheel laid out as setuptools-odoo and whool lay them out."""
    path = folder / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for addon, files in addons.items():
            for relative, content in files.items():
                archive.writestr(f"{root}/{addon}/{relative}", content)
        archive.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\nSummary: x\n\nReadme\n",
        )
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


def test_synthetic_wheels(tmp_path: Path) -> None:
    sale = make_wheel(
        tmp_path,
        "odoo-addon-sale_ext",
        "16.0.1.10.0.4",  # four commits after the manifest's version changed
        {
            "sale_ext": {
                "__manifest__.py": manifest_text("16.0.1.10.0", ["sale"]),
                "migrations/16.0.1.9.0/pre-rename.py": "from openupgradelib import openupgrade\n",
            }
        },
    )
    stock = make_wheel(
        tmp_path,
        "odoo-addon-stock-ext",
        "16.0.1.1",
        {"stock_ext": {"__manifest__.py": manifest_text("16.0.1.1", ["stock"])}},
    )
    found = reader.from_wheels([sale, stock], SERIES)
    assert sorted(found.addons) == ["sale_ext", "stock_ext"]
    assert found.addons["sale_ext"].version == "16.0.1.10.0"
    assert found.addons["sale_ext"].source == sale.name
    assert scripts_of(found.addons["sale_ext"]) == [
        ("migrations/16.0.1.9.0/pre-rename.py", "16.0.1.9.0", "pre", ("openupgradelib",))
    ]
    assert found.source == f"{sale.name},{stock.name}"


def test_wheel_checksums_match_the_installed_folder(tmp_path: Path) -> None:
    files = {
        "__manifest__.py": manifest_text("16.0.1.0.0", ["sale"]),
        "models/sale.py": "from odoo import models\n",
        "i18n/fr.po": "msgid x\n",
        "i18n/de.po": "msgid y\n",
        "static/description/icon.png": "\x89PNG",
        "data/logo.png": "\x89PNG\x00\x01",
    }
    wheel = make_wheel(tmp_path, "odoo-addon-sale_ext", "16.0.1.0.0.2", {"sale_ext": files})
    write(tmp_path / "installed" / "sale_ext", dict(files))
    found = reader.from_wheels([wheel], SERIES, checksums=True, languages=["fr_FR"])
    expected = addon_checksums.checksum_folder(
        tmp_path / "installed" / "sale_ext", languages=["fr_FR"]
    )
    assert found.addons["sale_ext"].checksum == expected
    assert reader.from_wheels([wheel], SERIES).addons["sale_ext"].checksum is None


def test_older_series_wheels(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "odoo14-addon-sale_ext",
        "14.0.1.0.5.dev3",
        {"sale_ext": {"__manifest__.py": manifest_text("14.0.1.0.4", [])}},
    )
    assert reader.from_wheels([wheel], "14.0").addons["sale_ext"].version == "14.0.1.0.4"
    old = make_wheel(
        tmp_path,
        "odoo9-addon-sale_ext",
        "9.0.1.0.4.99.dev2",
        {"sale_ext": {"__openerp__.py": manifest_text("9.0.1.0.4", [])}},
        root="odoo_addons",
    )
    assert reader.from_wheels([old], "9.0").addons["sale_ext"].version == "9.0.1.0.4"


@pytest.mark.parametrize(
    ("wheel_version", "manifest_version", "series", "build"),
    [
        ("16.0.1.0.4", "16.0.1.0.4", "16.0", 0),
        ("16.0.1.0.4.3", "16.0.1.0.4", "16.0", 3),
        ("17.0.2.11.0.12", "17.0.2.11.0", "17.0", 12),
        ("16.0.1.0.5", "16.0.1.0.4", "16.0", None),
        ("16.0.1.0.4.3.1", "16.0.1.0.4", "16.0", None),
        ("14.0.1.0.5.dev3", "14.0.1.0.4", "14.0", 3),
        ("14.0.1.0.4.dev3", "14.0.1.0.4", "14.0", None),
        ("13.0.1.0.4", "13.0.1.0.4", "13.0", 0),
        ("12.0.1.0.4.99.dev7", "12.0.1.0.4", "12.0", 7),
        ("12.0.1.0.4.3", "12.0.1.0.4", "12.0", None),
    ],
)
def test_wheel_build(wheel_version: str, manifest_version: str, series: str, build: int) -> None:
    assert reader.wheel_build(wheel_version, manifest_version, series) == build


def test_wheel_name_prefix() -> None:
    assert reader.wheel_name_prefix("14.0") == "odoo14-addon-"
    assert reader.wheel_name_prefix("15.0") == "odoo-addon-"
    assert reader.wheel_name_prefix("17.0") == "odoo-addon-"


@pytest.mark.parametrize(
    ("dist", "version", "addons", "field", "message"),
    [
        ("odoo14-addon-x", "16.0.1.0.0", {"x": "16.0.1.0.0"}, "Name", "not an OCA addon"),
        ("requests", "16.0.1.0.0", {"x": "16.0.1.0.0"}, "Name", "not an OCA addon"),
        ("odoo-addon-x", "15.0.1.0.0.2", {"x": "15.0.1.0.0"}, "Version", "not of series"),
        ("odoo-addon-x", "16.0.1.0.1", {"x": "16.0.1.0.0"}, "Version", "not the manifest's"),
        ("odoo-addon-y", "16.0.1.0.0", {"x": "16.0.1.0.0"}, "Name", "not in the wheel"),
        ("odoo-addon-x", "16.0.1.0.0", {}, None, "no addon under odoo/addons/"),
    ],
)
def test_wheel_errors(
    tmp_path: Path,
    dist: str,
    version: str,
    addons: dict[str, str],
    field: str | None,
    message: str,
) -> None:
    files = {name: {"__manifest__.py": manifest_text(v, [])} for name, v in addons.items()}
    wheel = make_wheel(tmp_path, dist, version, files)
    with pytest.raises(InvalidInput) as caught:
        reader.from_wheels([wheel], SERIES)
    assert caught.value.problems[0].file == str(wheel)
    assert caught.value.problems[0].field == field
    assert message in caught.value.message


def test_not_a_wheel_and_duplicates(tmp_path: Path) -> None:
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="not a wheel"):
        reader.from_wheels([junk], SERIES)
    with pytest.raises(InvalidInput, match="no such file"):
        reader.from_wheels([tmp_path / "missing.whl"], SERIES)
    files = {"x": {"__manifest__.py": manifest_text("16.0.1.0.0", [])}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = make_wheel(tmp_path / "a", "odoo-addon-x", "16.0.1.0.0", files)
    two = make_wheel(tmp_path / "b", "odoo-addon-x", "16.0.1.0.0", files)
    with pytest.raises(InvalidInput, match="also in"):
        reader.from_wheels([one, two], SERIES)


def test_wheel_members_are_size_checked(tmp_path: Path) -> None:
    huge = "{'description': '" + "x" * (5 * 1024 * 1024) + "'}"
    wheel = make_wheel(tmp_path, "odoo-addon-x", "16.0.1.0.0", {"x": {"__manifest__.py": huge}})
    with pytest.raises(PayloadTooLarge) as caught:
        reader.from_wheels([wheel], SERIES)
    assert caught.value.problems[0].file == f"{wheel.name}!odoo/addons/x/__manifest__.py"


# ---------------------------------------------------------------------------- real OCA wheels

# Small, stable OCA addons of series 16.0 with migration folders, pinned.
OCA_WHEELS = {
    # 16.0.2.6.1 and 16.0.2.9.0 sort the other way round lexically; 15.0 folders kept
    "queue_job": "16.0.2.11.0",
    # a pre-migration importing openupgradelib; the wheel adds a build number (.9)
    "base_tier_validation": "16.0.4.0.2.9",
    # two folders of the same minor version
    "password_security": "16.0.1.0.4.3",
    # a script named post-migrate.py
    "contract": "16.0.2.15.2.7",
}


def _wheel_cache() -> Path:
    configured = os.environ.get("CHANGEGATE_TEST_WHEELS")
    cache = Path(configured) if configured else Path.home() / ".cache" / "changegate-test-wheels"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _cached(cache: Path, name: str, version: str) -> Path | None:
    found = sorted(cache.glob(f"odoo_addon_{name}-{version}-*.whl"))
    return found[0] if found else None


def _registry_reachable() -> tuple[bool, str]:
    index = os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"
    if urlsplit(index).scheme == "file":
        return True, index
    # Behind a proxy, the proxy is what must answer.
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    parts = urlsplit(proxy or index)
    host = parts.hostname or "pypi.org"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        return False, f"{host}:{port} ({exc})"
    return True, index


@pytest.fixture(scope="session")
def oca_wheels() -> list[Path]:
    cache = _wheel_cache()
    missing = {n: v for n, v in OCA_WHEELS.items() if _cached(cache, n, v) is None}
    if missing:
        reachable, where = _registry_reachable()
        if not reachable:
            message = f"package registry unreachable ({where}): cannot download OCA wheels"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--dest",
                str(cache),
                *(f"odoo-addon-{n}=={v}" for n, v in missing.items()),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"pip download failed:\n{done.stdout}\n{done.stderr}"
    wheels = [_cached(cache, n, v) for n, v in OCA_WHEELS.items()]
    assert all(wheels), f"not downloaded into {cache}: {wheels}"
    return [w for w in wheels if w is not None]


def test_real_oca_wheels(oca_wheels: list[Path]) -> None:
    found = reader.from_wheels(oca_wheels, SERIES)
    assert sorted(found.addons) == sorted(OCA_WHEELS)
    for addon in found.addons.values():
        assert addon.installable
        assert versions.belongs_to(versions.adapt_version(addon.version, SERIES), SERIES)
        assert addon.migrations, addon.name
        assert addon.checksum is None

    queue_job = found.addons["queue_job"]
    assert queue_job.version == "16.0.2.11.0"
    assert "base_sparse_field" in queue_job.depends
    assert queue_job.external_python == ("requests",)
    folders = sorted({s.version for s in queue_job.migrations})
    assert folders == ["15.0.1.1.0", "16.0.2.6.1", "16.0.2.9.0"]
    # updating from 16.0.2.5.0: the two 16.0 folders, in numeric order
    assert versions.folders_to_run(folders, "16.0.2.5.0", queue_job.version, SERIES, Stage.PRE) == [
        "16.0.2.6.1",
        "16.0.2.9.0",
    ]
    assert versions.folders_to_run(folders, "16.0.2.6.1", queue_job.version, SERIES, Stage.PRE) == [
        "16.0.2.9.0"
    ]
    # the version Odoo records after the update: nothing runs again
    assert (
        versions.folders_to_run(folders, "16.0.2.11.0", queue_job.version, SERIES, Stage.PRE) == []
    )
    # coming from 15.0 (a major upgrade) the 15.0.1.1.0 scripts above 15.0.1.0.0 run as well
    from_15 = versions.scripts_to_run(
        queue_job.migrations, "15.0.1.0.0", queue_job.version, SERIES, Stage.PRE
    )
    assert [s.version for s in from_15] == ["15.0.1.1.0", "16.0.2.6.1", "16.0.2.9.0"]

    tier = found.addons["base_tier_validation"]
    assert tier.version == "16.0.4.0.2"
    assert reader.wheel_build("16.0.4.0.2.9", tier.version, SERIES) == 9
    assert [(s.version, s.stage, s.imports) for s in tier.migrations] == [
        ("16.0.3.1.0", Stage.PRE, ("openupgradelib",))
    ]
    flagged = [
        s.path for a in found.addons.values() for s in a.migrations if "openupgradelib" in s.imports
    ]
    assert flagged == ["migrations/16.0.3.1.0/pre-migration.py"]

    contract = found.addons["contract"]
    assert [(s.path, s.stage) for s in contract.migrations] == [
        ("migrations/16.0.2.0.0/post-migrate.py", Stage.POST)
    ]
    password = found.addons["password_security"]
    assert [(s.version, s.stage) for s in password.migrations] == [
        ("16.0.1.0.0", Stage.PRE),
        ("16.0.1.0.2", Stage.POST),
    ]


def test_real_oca_wheel_checksums(oca_wheels: list[Path], tmp_path: Path) -> None:
    found = reader.from_wheels(oca_wheels, SERIES, checksums=True, languages=["en_US", "fr_FR"])
    for wheel in oca_wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith("odoo/addons/"):
                    archive.extract(member, tmp_path)
    for name, addon in found.addons.items():
        folder = tmp_path / "odoo" / "addons" / name
        assert addon.checksum == addon_checksums.checksum_folder(
            folder, languages=["en_US", "fr_FR"]
        )


def test_a_wheel_declaring_too_many_members_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count the zip's end record declares is checked first: a small file declaring
    millions of entries never reaches `zipfile`'s member list."""
    import zipfile

    path = tmp_path / "odoo_addon_many-16.0.1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(12):
            archive.writestr(f"f{index}.txt", b"")
    monkeypatch.setattr(reader, "MAX_WHEEL_MEMBERS", 10)
    assert reader._declared_entries(path) == 12
    opened: list[object] = []
    monkeypatch.setattr(zipfile.ZipFile, "__init__", lambda *a, **k: opened.append(a))
    with pytest.raises(InvalidInput, match="more than 10 members"):
        reader.from_wheels([path], "16.0")
    assert opened == []
