"""Addon checksums equal to click-odoo-update's, from bytes in memory and from real folders.

Where the expected values come from: `REFERENCE` was computed by click-odoo-contrib 1.24's own
`click_odoo_contrib._addon_hash.addon_hash`, installed from PyPI into a throwaway virtualenv
outside this project, over the very folders `write_tree` writes here, with the exclude
patterns read from that release's `update.py` (and from 1.16.0's for "before-1.17"). The
procedure is in docs/odoo-checksums.md. `UPSTREAM_SAMPLE` re-creates the sample addon of
click-odoo-contrib's own tests/test_addon_hash.py, whose expected value is published there.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from changegate.adapters import addon_checksums
from changegate.domain.odoo import checksum
from changegate.errors import InvalidInput, NotFound, PayloadTooLarge

PO = b'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'

# A realistic addon: code, views, data, a binary file, compiled files, static assets, tests,
# translations of several languages in i18n and i18n_extra, a migration, a file at the top
# whose name sorts after every folder.
LAYOUT: dict[str, bytes] = {
    "__init__.py": b"from . import models\n",
    "__manifest__.py": b"{'name': 'Sale extra', 'version': '17.0.1.2.0', 'depends': ['sale']}\n",
    "README.rst": b"==========\nSale extra\n==========\n\nExtra fields on sales orders.\n",
    "models/__init__.py": b"from . import sale_order\n",
    "models/sale_order.py": (
        b"from odoo import fields, models\n\n\nclass SaleOrder(models.Model):\n"
        b"    _inherit = 'sale.order'\n\n    note_extra = fields.Text()\n"
    ),
    "models/__pycache__/__init__.cpython-311.pyc": b"\xa7\r\r\n" + bytes(12),
    "models/__pycache__/sale_order.cpython-311.pyc": b"\xa7\r\r\n" + bytes(range(256)),
    "views/sale_order_views.xml": b"<odoo>\n  <record id='view' model='ir.ui.view'/>\n</odoo>\n",
    "security/ir.model.access.csv": b"id,name,model_id:id,group_id:id,perm_read\n",
    "data/mail_template.xml": b"<odoo>\n  <record id='mail' model='mail.template'/>\n</odoo>\n",
    "data/logo.bin": bytes(range(256)) * 4,
    "static/description/icon.png": b"\x89PNG\r\n\x1a\n" + bytes(64),
    "static/src/js/widget.js": b"/** @odoo-module */\n",
    "tests/__init__.py": b"from . import test_sale\n",
    "tests/test_sale.py": b"def test_nothing():\n    pass\n",
    "i18n/sale_extra.pot": PO,
    "i18n/fr.po": PO + b'msgid "Note"\nmsgstr "Remarque"\n',
    "i18n/fr_BE.po": PO + b'msgid "Note"\nmsgstr "Note (BE)"\n',
    "i18n/de.po": PO + b'msgid "Note"\nmsgstr "Notiz"\n',
    "i18n/es.po": PO + b'msgid "Note"\nmsgstr "Nota"\n',
    "i18n/es_AR.po": PO + b'msgid "Note"\nmsgstr "Nota (AR)"\n',
    "i18n_extra/de_CH.po": PO + b'msgid "Street"\nmsgstr "Strasse"\n',
    "i18n_extra/fr.po": PO + b'msgid "Street"\nmsgstr "Rue"\n',
    "i18n_extra/es.po": PO + b'msgid "Street"\nmsgstr "Calle"\n',
    "i18n_extra/extra.pot": PO,
    "migrations/17.0.1.2.0/pre-migrate.py": b"def migrate(cr, version):\n    pass\n",
    "readme/DESCRIPTION.md": b"Extra fields on sales orders.\n",
    "zz_last_at_top.txt": b"a file at the top is hashed before every folder\n",
}

# The corners: hidden files, case, look-alike names, nested i18n/static/tests folders,
# __pycache__ with a non-compiled file, non-ASCII names, a name that is not UTF-8 (excluded,
# so it is harmless), names that sort differently as paths and as walk order.
EDGES: dict[str, bytes] = {
    ".gitignore": b"*.pyc\n",
    ".hidden/.keep": b"",
    "empty.txt": b"",
    "B.txt": b"upper case sorts before lower case\n",
    "a.txt": b"a\n",
    "a-b/x.txt": b"dash\n",
    "a.b/x.txt": b"dot\n",
    "a/x.txt": b"a folder's files come before its sub-folders\n",
    "a/b/c/deep.xml": b"<odoo/>\n",
    "a/b/c.txt": b"c\n",
    "a/b/c.d/e.txt": b"e\n",
    "données/équipe.xml": "<odoo><!-- équipe --></odoo>\n".encode(),
    "données/ß.txt": "ß\n".encode(),
    "i18n/.po": b"a hidden file, not a .po file\n",
    "i18n/fr.po.orig": b"not a .po file\n",
    "i18n/de.PO": b"the extension is case-sensitive\n",
    "i18n/de.po": PO + b'msgid "a"\nmsgstr "de"\n',
    "i18n/sr@latin.po": PO + b'msgid "a"\nmsgstr "sr@latin"\n',
    "i18n/zh_CN.po": PO + b'msgid "a"\nmsgstr "zh_CN"\n',
    "i18n/pt_BR.po": PO + b'msgid "a"\nmsgstr "pt_BR"\n',
    "i18n/sub/de.po": b"deeper than i18n: never filtered\n",
    "i18n/sub/x.pot": b"i18n/*.pot matches deeper files too\n",
    "i18n_extra/nl_NL.po": PO + b'msgid "a"\nmsgstr "nl"\n',
    "sub/i18n/de.po": b"not the top-level i18n folder\n",
    "sub/static/x.js": b"not the top-level static folder\n",
    "sub/tests/t.py": b"not the top-level tests folder\n",
    "models/tests/test_x.py": b"not the top-level tests folder\n",
    "__pycache__/notes.txt": b"only *.pyc files are excluded from __pycache__\n",
    "__pycache__/x.cpython-311.pyc": b"\xa7\r\r\n",
    "X.PYC": b"patterns are case-sensitive\n",
    "legacy.pyo": b"\x03\xf3\r\n",
    "compiled_\udcff.pyc": b"a file name that is not UTF-8, excluded",
    "static.txt": b"static/* needs the slash\n",
    "tests.py": b"tests/* needs the slash\n",
}

EMPTY_FOLDERS = ("empty_dir", "a/empty", "i18n/empty", "static/empty")

# The exclude patterns of each case, by name; "custom" is a system parameter value.
PATTERNS: dict[str, tuple[str, ...]] = {
    "default": checksum.DEFAULT_EXCLUDE_PATTERNS,
    "before-1.17": checksum.BEFORE_1_17_EXCLUDE_PATTERNS,
    "custom": checksum.parse_exclude_patterns("*.pyc, *.pyo ,static/*,i18n/*.pot,data/*.bin"),
}
CUSTOM_PARAM = "*.pyc, *.pyo ,static/*,i18n/*.pot,data/*.bin"

TREES: dict[str, dict[str, bytes]] = {"layout": LAYOUT, "edges": EDGES, "nothing": {}}

# (tree, active languages, patterns) -> the hex digest click-odoo-contrib 1.24 computed.
# Trees are written with EMPTY_FOLDERS; "layout+links" is LAYOUT with LINKS (folders only).
REFERENCE: dict[tuple[str, tuple[str, ...], str], str] = {
    ("layout", (), "default"): "575083acb38115b65b309a2c0d91997e0e4a092b",
    ("layout", ("en_US",), "default"): "6eae58cdf19b866d133a6fd578f3f958d5854165",
    ("layout", ("fr_FR",), "default"): "2e7e734f7e77eb0e897ab2ea4ca0c74e2f2ffba2",
    ("layout", ("en_US", "fr_BE", "de_CH"), "default"): "92f576c1091439201291dcc5eac08385178d43d9",
    ("layout", ("fr_FR",), "before-1.17"): "0a11811b64f11c0fd003e08aefd377f97f12ebc6",
    ("layout", ("fr_FR",), "custom"): "78e2fd0f811c34409fae580f1c788da7b418b253",
    ("edges", (), "default"): "a6ac10abcc7f7ace48a4ac74a8ef9452f4b0404e",
    (
        "edges",
        ("de_DE", "sr@latin", "zh_CN"),
        "default",
    ): "6dd7703d329c33401f792473e62d8e8fb5ea74c6",
    ("edges", ("pt_BR", "en_US"), "default"): "11d18d7c638de91fbfaa560b25633be81e11fac1",
    ("edges", ("fr_FR",), "before-1.17"): "9ebf302a85213185d9466ff24f692a5310ce69ad",
    ("nothing", (), "default"): "da39a3ee5e6b4b0d3255bfef95601890afd80709",
}
LINKED_REFERENCE: dict[tuple[str, tuple[str, ...], str], str] = {
    ("layout+links", ("fr_FR",), "default"): "c54b5899b32f9b82d3636679f9afc0cc0161d028",
}

# Symlinks (link -> target, relative to the addon folder; "/" targets are outside it).
LINKS: dict[str, str] = {
    "linked_models": "models",  # a folder: listed by os.walk, never entered
    "views/alias.xml": "../data/mail_template.xml",  # a file: its target's bytes count
    "outside.txt": "/OUTSIDE/readme.txt",  # a file outside the addon folder
    "static/dangling.js": "missing.js",  # broken but excluded: never opened
}
OUTSIDE = b"a file outside the addon folder\n"


def write_tree(
    top: Path,
    files: Mapping[str, bytes],
    *,
    folders: tuple[str, ...] = (),
    links: Mapping[str, str] | None = None,
    outside: Path | None = None,
) -> Path:
    """Write an addon folder: files, empty folders, symlinks; returns `top`."""
    top.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        target = os.fsencode(top / rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(content)
    for rel in folders:
        (top / rel).mkdir(parents=True, exist_ok=True)
    for rel, target in (links or {}).items():
        link_to = target
        if target.startswith("/OUTSIDE/"):
            assert outside is not None
            outside.mkdir(parents=True, exist_ok=True)
            (outside / "readme.txt").write_bytes(OUTSIDE)
            link_to = str(outside / "readme.txt")
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).symlink_to(link_to)
    return top


def test_the_sample_of_click_odoo_contribs_own_tests() -> None:
    # tests/test_addon_hash.py in acsone/click-odoo-contrib: the walk with and without the
    # default exclusions, and the checksum with its patterns and keep_langs=["fr_FR", "nl"].
    assert checksum.selected_paths(
        UPSTREAM_SAMPLE, languages=[], exclude_patterns=["*/__pycache__/*"]
    ) == [
        "README.rst",
        "data/f1.xml",
        "data/f2.xml",
        "i18n/en.po",
        "i18n/en_US.po",
        "i18n/fr.po",
        "i18n/fr_BE.po",
        "i18n/test.pot",
        "i18n_extra/en.po",
        "i18n_extra/fr.po",
        "i18n_extra/nl_NL.po",
        "models/stuff.py",
        "models/stuff.pyc",
        "models/stuff.pyo",
        "static/src/some.js",
    ]
    assert checksum.selected_paths(UPSTREAM_SAMPLE, languages=["fr_FR", "nl"]) == [
        "README.rst",
        "data/f1.xml",
        "data/f2.xml",
        "i18n/fr.po",
        "i18n/fr_BE.po",
        "i18n_extra/fr.po",
        "i18n_extra/nl_NL.po",
        "models/stuff.py",
    ]
    value = checksum.addon_checksum(
        reversed(list(UPSTREAM_SAMPLE.items())),
        languages=["fr_FR", "nl"],
        exclude_patterns=["*.pyc", "*.pyo", "*.pot", "static/*"],
    )
    assert value == "fecb89486c8a29d1f760cbd01c1950f6e8421b14"


UPSTREAM_SAMPLE: dict[str, bytes] = {
    "README.rst": b"Test data for addon_hash module.\n",
    "data/f1.xml": b"<odoo/>\n",
    "data/f2.xml": b"<odoo/>\n",
    "i18n/en.po": b"en text\n",
    "i18n/en_US.po": b"en_US\n",
    "i18n/fr.po": b"fr\n",
    "i18n/fr_BE.po": b"fr_BE\n",
    "i18n/test.pot": b"...\n",
    "i18n_extra/en.po": b"en\n",
    "i18n_extra/fr.po": b"fr\n",
    "i18n_extra/nl_NL.po": b"nl_NL\n",
    "models/stuff.py": b"1+1\n",
    "models/stuff.pyc": b"\x03\xf3\r\n(compiled; excluded, so its bytes do not matter)",
    "models/stuff.pyo": b"\x03\xf3\r\n(optimised; excluded, so its bytes do not matter)",
    "static/src/some.js": b"/* Javascript */\n",
}


def reference_params(
    reference: Mapping[tuple[str, tuple[str, ...], str], str],
) -> list[Any]:
    return [
        pytest.param(name, languages, patterns, expected, id="-".join([name, *languages, patterns]))
        for (name, languages, patterns), expected in reference.items()
    ]


@pytest.mark.parametrize(("name", "languages", "patterns", "expected"), reference_params(REFERENCE))
def test_in_memory_equals_click_odoo_update(
    name: str, languages: tuple[str, ...], patterns: str, expected: str
) -> None:
    files = list(TREES[name].items())
    random.Random(name).shuffle(files)  # callers may pass files in any order
    value = checksum.addon_checksum(files, languages=languages, exclude_patterns=PATTERNS[patterns])
    assert value == expected


@pytest.mark.parametrize(("name", "languages", "patterns", "expected"), reference_params(REFERENCE))
def test_folder_equals_click_odoo_update(
    tmp_path: Path, name: str, languages: tuple[str, ...], patterns: str, expected: str
) -> None:
    top = write_tree(tmp_path / "addon", TREES[name], folders=EMPTY_FOLDERS)
    value = addon_checksums.checksum_folder(
        top, languages=languages, exclude_patterns=PATTERNS[patterns]
    )
    assert value == expected


@pytest.mark.parametrize(
    ("name", "languages", "patterns", "expected"), reference_params(LINKED_REFERENCE)
)
def test_symlinks_as_click_odoo_update_walks_them(
    tmp_path: Path, name: str, languages: tuple[str, ...], patterns: str, expected: str
) -> None:
    top = write_tree(
        tmp_path / "addon", LAYOUT, folders=EMPTY_FOLDERS, links=LINKS, outside=tmp_path / "else"
    )
    value = addon_checksums.checksum_folder(
        top, languages=languages, exclude_patterns=PATTERNS[patterns]
    )
    assert value == expected
    # The addon folder itself may be a symlink (addons paths are often symlink farms).
    (tmp_path / "farm").mkdir()
    (tmp_path / "farm" / "sale_extra").symlink_to(top)
    linked = addon_checksums.checksum_folder(
        tmp_path / "farm" / "sale_extra", languages=languages, exclude_patterns=PATTERNS[patterns]
    )
    assert linked == expected


def test_walk_order_lists_a_folders_files_before_its_sub_folders() -> None:
    assert checksum.walk_order(["a/b/c.txt", "b.txt", "a/x.txt", "a.txt", "a/b/a.txt", "B/z"]) == [
        "a.txt",
        "b.txt",
        "B/z",
        "a/x.txt",
        "a/b/a.txt",
        "a/b/c.txt",
    ]


def test_the_selection_of_the_corner_cases() -> None:
    # The list click-odoo-contrib 1.24's `_addon_hash._walk` gave for this folder.
    kept = checksum.selected_paths(EDGES, languages=["de_DE", "sr@latin"])
    assert kept == [
        ".gitignore",
        "B.txt",
        "X.PYC",
        "a.txt",
        "empty.txt",
        "static.txt",
        "tests.py",
        ".hidden/.keep",
        "__pycache__/notes.txt",
        "a/x.txt",
        "a/b/c.txt",
        "a/b/c/deep.xml",
        "a/b/c.d/e.txt",
        "a-b/x.txt",
        "a.b/x.txt",
        "données/ß.txt",
        "données/équipe.xml",
        "i18n/.po",
        "i18n/de.PO",
        "i18n/de.po",
        "i18n/fr.po.orig",
        "i18n/sr@latin.po",
        "i18n/sub/de.po",
        "models/tests/test_x.py",
        "sub/i18n/de.po",
        "sub/static/x.js",
        "sub/tests/t.py",
    ]


@pytest.mark.parametrize(
    ("path", "languages", "excluded"),
    [
        ("i18n/fr_BE.po", ["fr_FR"], False),
        ("i18n_extra/fr.po", ["fr_BE"], False),
        ("i18n/de.po", ["fr_FR"], True),
        ("i18n/de.po", [], False),  # no active language: every .po counts
        ("i18n/sr@latin.po", ["sr_RS"], True),  # the stem is cut at "_" only
        ("i18n/sub/de.po", ["fr_FR"], False),
        ("sub/i18n/de.po", ["fr_FR"], False),
        ("i18n/de.pot", [], True),
        ("i18n/sub/de.pot", [], True),  # fnmatch's * crosses "/"
        ("models/__pycache__/x.pyc", [], True),
        ("X.PYC", [], False),
        ("static/description/icon.png", [], True),
        ("models/static/x.js", [], False),
        ("tests/test_a.py", [], True),
        (".gitignore", [], False),
    ],
)
def test_is_excluded(path: str, languages: list[str], excluded: bool) -> None:
    assert checksum.is_excluded(path, languages) is excluded


def test_the_same_version_with_different_content_has_a_different_checksum(
    tmp_path: Path,
) -> None:
    before = write_tree(tmp_path / "v1" / "sale_extra", LAYOUT)
    languages = ["en_US", "fr_FR"]
    base = addon_checksums.checksum_folder(before, languages=languages)

    def changed(rel: str, content: bytes) -> str:
        files = {**LAYOUT, rel: content}
        top = write_tree(tmp_path / f"v-{len(os.listdir(tmp_path))}" / "sale_extra", files)
        assert (top / "__manifest__.py").read_bytes() == LAYOUT["__manifest__.py"]
        return addon_checksums.checksum_folder(top, languages=languages)

    # Counted: code, an active language's translations, a new empty file, a renamed file.
    assert changed("models/sale_order.py", LAYOUT["models/sale_order.py"] + b"\n") != base
    assert changed("i18n/fr_BE.po", PO) != base
    assert changed("data/new_empty.xml", b"") != base
    renamed = {k: v for k, v in LAYOUT.items() if k != "data/logo.bin"}
    renamed["data/logo2.bin"] = LAYOUT["data/logo.bin"]
    assert checksum.addon_checksum(renamed.items(), languages=languages) != base
    # Not counted: tests, static assets, compiled files, an inactive language, the .pot.
    assert changed("tests/test_sale.py", b"def test_more():\n    pass\n") == base
    assert changed("static/src/js/widget.js", b"/* new */\n") == base
    assert changed("models/__pycache__/sale_order.cpython-311.pyc", b"\x00") == base
    assert changed("i18n/de.po", PO) == base
    assert changed("i18n/sale_extra.pot", PO + PO) == base


def test_languages_count_by_their_part_before_the_underscore() -> None:
    values = {
        checksum.addon_checksum(LAYOUT.items(), languages=codes)
        for codes in (["fr_FR"], ["fr_BE"], ["fr"], ["fr_FR", "fr_BE"])
    }
    assert len(values) == 1
    assert checksum.addon_checksum(LAYOUT.items(), languages=["de_DE"]) not in values


@pytest.mark.parametrize(
    "files",
    [
        [("a.xml", b""), ("a.xml", b"x")],
        [("/etc/passwd", b"")],
        [("a/../b.xml", b"")],
        [("./a.xml", b"")],
        [("a//b.xml", b"")],
        [("", b"")],
        [("models/\udcff.py", b"a file name that is not UTF-8, not excluded")],
    ],
)
def test_invalid_inputs_are_refused(files: list[tuple[str, bytes]]) -> None:
    with pytest.raises(InvalidInput):
        checksum.addon_checksum(files, languages=[])


def test_an_excluded_name_that_is_not_utf8_is_harmless() -> None:
    with_it = checksum.addon_checksum([("a.py", b"1"), ("\udcff.pyc", b"")], languages=[])
    assert with_it == checksum.addon_checksum([("a.py", b"1")], languages=[])


def test_exclude_patterns_as_the_system_parameter_writes_them() -> None:
    assert checksum.parse_exclude_patterns(" *.pyc,static/* , tests/*") == (
        "*.pyc",
        "static/*",
        "tests/*",
    )
    assert checksum.parse_exclude_patterns("*.pyc,") == ("*.pyc", "")
    assert checksum.is_excluded("a.pyc", [], exclude_patterns=()) is False


def test_refused_folders_and_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        addon_checksums.checksum_folder(tmp_path / "missing", languages=[])
    top = write_tree(tmp_path / "addon", {"a.py": b"1", "static/big.js": b"x" * 100})
    # Excluded files are never opened: a FIFO or a dangling link under static/ is fine.
    os.mkfifo(top / "static" / "pipe")
    (top / "static" / "dangling.js").symlink_to("missing.js")
    assert addon_checksums.checksum_folder(top, languages=[], max_file_bytes=10) == (
        checksum.addon_checksum([("a.py", b"1")], languages=[])
    )
    with pytest.raises(PayloadTooLarge):
        addon_checksums.checksum_folder(top, languages=[], max_files=3)
    (top / "big.xml").write_bytes(b"x" * 11)
    with pytest.raises(PayloadTooLarge):
        addon_checksums.checksum_folder(top, languages=[], max_file_bytes=10)
    (top / "big.xml").unlink()
    (top / "dangling.xml").symlink_to("missing.xml")
    with pytest.raises(InvalidInput, match=r"dangling\.xml: cannot read"):
        addon_checksums.checksum_folder(top, languages=[])
    (top / "dangling.xml").unlink()
    os.mkfifo(top / "pipe.xml")
    with pytest.raises(InvalidInput, match=r"pipe\.xml: not a regular file"):
        addon_checksums.checksum_folder(top, languages=[])
    (top / "pipe.xml").unlink()
    with open(os.fsencode(top) + b"/\xff.xml", "wb") as handle:
        handle.write(b"a name that is not UTF-8, hashed: click-odoo-update fails too")
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        addon_checksums.checksum_folder(top, languages=[])


# A tree as nested folders, walked the plain way (files sorted, then folders sorted, depth
# first): the order walk_order must give for the flat list of the same paths.
NAMES = st.sampled_from(["a", "b", "B", "a.b", "a-b", "ab", "é", "_", ".h", "i18n", "z"])
FOLDERS = st.recursive(
    st.dictionaries(NAMES, st.just(None), max_size=4),
    lambda children: st.dictionaries(NAMES, st.none() | children, max_size=4),
    max_leaves=30,
)


def nested_walk(folder: Mapping[str, Any], prefix: str = "") -> list[str]:
    files = sorted(name for name, child in folder.items() if child is None)
    folders = sorted(name for name, child in folder.items() if child is not None)
    out = [prefix + name for name in files]
    for name in folders:
        out += nested_walk(folder[name], f"{prefix}{name}/")
    return out


@given(FOLDERS, st.randoms())
def test_walk_order_is_the_nested_walk(folder: dict[str, Any], rng: random.Random) -> None:
    expected = nested_walk(folder)
    shuffled = list(expected)
    rng.shuffle(shuffled)
    assert checksum.walk_order(shuffled) == expected


@given(st.dictionaries(st.sampled_from(sorted(LAYOUT)), st.binary(max_size=20)), st.randoms())
def test_the_order_files_are_given_in_does_not_matter(
    changes: dict[str, bytes], rng: random.Random
) -> None:
    files = list({**LAYOUT, **changes}.items())
    before = checksum.addon_checksum(files, languages=["fr_FR"])
    rng.shuffle(files)
    assert checksum.addon_checksum(files, languages=["fr_FR"]) == before


def test_a_folder_that_cannot_be_listed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.walk would skip it silently and click-odoo-update would hash what is left; a
    # checksum of part of an addon is worse than none. (chmod cannot deny root, so fake it.)
    top = write_tree(tmp_path / "addon", {"a.py": b"1", "models/b.py": b"2"})
    real_scandir = os.scandir

    def scandir(path: str) -> Any:
        if path.endswith("models"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InvalidInput, match="models: cannot list: Permission denied"):
        addon_checksums.checksum_folder(top, languages=[])
