"""Manifests read with ast.literal_eval only, Odoo's defaults, migration scripts and imports."""

from __future__ import annotations

import textwrap

import pytest

from changegate.domain.odoo import manifest
from changegate.domain.odoo.addons import MigrationScript, Stage
from changegate.errors import InvalidInput, PayloadTooLarge

SOURCE = "addons/sale_ext/__manifest__.py"


def parse(text: str, *, name: str = "sale_ext", series: str | None = None) -> dict[str, object]:
    return manifest.parse_manifest(textwrap.dedent(text), name=name, source=SOURCE, series=series)


def refusal(text: str, **kwargs: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(text, **kwargs)
    for problem in caught.value.problems:
        assert problem.file == SOURCE
    return caught.value


# ---------------------------------------------------------------------------- parse_manifest


def test_defaults_are_odoo_s() -> None:
    parsed = parse("{'name': 'Sale extension'}")
    assert parsed["version"] == "1.0"
    assert parsed["depends"] == []
    assert parsed["auto_install"] is False
    assert parsed["installable"] is True
    assert parsed["application"] is False
    assert parsed["external_dependencies"] == {}
    assert parsed["license"] == "LGPL-3"
    assert parsed["author"] == "Odoo S.A."
    assert parsed["category"] == "Uncategorized"
    assert parsed["sequence"] == 100
    assert parsed["data"] == []
    assert parsed["name"] == "Sale extension"


def test_declared_values_win_and_comments_are_fine() -> None:
    parsed = parse(
        """\
        # Copyright 2024 Someone
        # -*- coding: utf-8 -*-
        {
            "name": "Sale extension",  # a comment
            "version": "17.0.1.2.0",
            "license": "AGPL-3",
            "depends": ["sale", "stock"],
            "external_dependencies": {"python": ["openupgradelib"], "bin": ["wkhtmltopdf"]},
            "installable": False,
            "data": ("views/a.xml",),
            "price": 9.99,
            "countries": {"be", "fr"},
        }
        """
    )
    assert parsed["version"] == "17.0.1.2.0"
    assert parsed["license"] == "AGPL-3"
    assert parsed["depends"] == ["sale", "stock"]
    assert parsed["installable"] is False
    assert parsed["external_dependencies"]["python"] == ["openupgradelib"]  # type: ignore[index]


def test_leading_blanks_are_accepted_as_literal_eval_accepts_them() -> None:
    assert (
        manifest.parse_manifest("  \t{'version': '2.0'}", name="x", source=SOURCE)["version"]
        == "2.0"
    )


def test_defaults_are_not_shared_between_manifests() -> None:
    first = parse("{}")
    first["data"].append("x.xml")  # type: ignore[attr-defined]
    assert parse("{}")["data"] == []


def test_number_versions_read_as_text() -> None:
    assert parse("{'version': 1.0}")["version"] == "1.0"


@pytest.mark.parametrize(
    ("declared", "kept"),
    [("True", True), ("False", False), ("['sale']", ["sale"]), ("[]", []), ("('sale',)", ["sale"])],
)
def test_auto_install_keeps_its_form(declared: str, kept: object) -> None:
    assert (
        parse(f"{{'depends': ['sale', 'stock'], 'auto_install': {declared}}}")["auto_install"]
        == kept
    )


def test_auto_install_triggers_must_be_dependencies() -> None:
    error = refusal("{'depends': ['sale'], 'auto_install': ['sale', 'stock', 'crm']}")
    assert error.problems[0].field == "auto_install"
    assert "crm, stock" in error.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{'version': ['1.0']}", "version"),
        ("{'version': True}", "version"),
        ("{'depends': 'sale'}", "depends"),
        ("{'depends': ['sale', 3]}", "depends"),
        ("{'auto_install': 'yes'}", "auto_install"),
        ("{'installable': 'yes'}", "installable"),
        ("{'external_dependencies': ['requests']}", "external_dependencies"),
        ("{'external_dependencies': {'python': 'requests'}}", "external_dependencies.python"),
    ],
)
def test_keys_odoo_would_choke_on(text: str, field: str) -> None:
    assert refusal(text).problems[0].field == field


def test_code_is_refused_never_run() -> None:
    error = refusal(
        """\
        {
            'name': 'x',
            'version': __import__('os').system('touch /tmp/odoo_a_pwned') or '1.0',
        }
        """
    )
    problem = error.problems[0]
    assert problem.field == "version"
    assert problem.line == 3
    assert "not a literal" in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("['name']", "one dict literal"),
        ("dict(name='x')", "one dict literal"),
        ("{'a': 1}\n{'b': 2}", "not a Python literal"),
        ("{'name': 'x',", "not a Python literal"),
        ("{'name': f'{x}'}", "not a literal"),
        ("{**base, 'name': 'x'}", "unpacking"),
        ("{1: 'x'}", "not a string"),
        ("{'depends': [name]}", "not a literal"),
    ],
)
def test_not_a_literal_dict(text: str, message: str) -> None:
    assert message in refusal(text).message


def test_syntax_errors_carry_their_line() -> None:
    error = refusal("{\n 'name': 'x',\n 'version': '1.0' '\n}")
    assert error.problems[0].line is not None
    assert error.problems[0].line >= 3


def test_size_is_bounded() -> None:
    text = "{'description': '" + "x" * manifest.MAX_MANIFEST_BYTES + "'}"
    with pytest.raises(PayloadTooLarge) as caught:
        manifest.parse_manifest(text, name="big", source=SOURCE)
    assert caught.value.problems[0].file == SOURCE


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    text = "{'data': " + "[" * 5000 + "]" * 5000 + "}"
    refusal(text)


def test_series_19_depends_on_base_and_finds_an_author() -> None:
    parsed = parse("{'maintainer': 'ACME'}", series="19.0")
    assert parsed["depends"] == ["base"]
    assert parsed["author"] == "ACME"
    assert parse("{}", name="base", series="19.0")["depends"] == []
    assert parse("{}", series="18.0")["depends"] == []


# ---------------------------------------------------------------------------- scripts


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("migrations/17.0.1.1/pre-migrate.py", ("migrations", "17.0.1.1", Stage.PRE)),
        ("migrations/1.1/post-migration.py", ("migrations", "1.1", Stage.POST)),
        ("migrations/0.0.0/end-invariants.py", ("migrations", "0.0.0", Stage.END)),
        ("upgrades/17.0.1.1/pre-10-fix.py", ("upgrades", "17.0.1.1", Stage.PRE)),
        ("migrations/16.0.2.0.0/post-migrate.py", ("migrations", "16.0.2.0.0", Stage.POST)),
        ("migrations/17.0.1.1/helpers.py", None),  # loaded by no stage
        ("migrations/17.0.1.1/premigrate.py", None),  # the dash is part of the prefix
        ("migrations/17.0.1.1/pre-x.txt", None),
        ("migrations/17.0.1.1/.pre-x.py", None),  # glob skips hidden files
        ("migrations/17.0.1.1/sub/pre-x.py", None),  # only files directly in the folder
        ("migrations/tests/pre-x.py", None),
        ("migrations/next/pre-x.py", None),  # not a version: Odoo warns and skips
        ("migrations/pre-x.py", None),
        ("migration/17.0.1.1/pre-x.py", None),
        ("upgrade/17.0.1.1/pre-x.py", None),
    ],
)
def test_script_stage(path: str, expected: tuple[str, str, Stage] | None) -> None:
    assert manifest.script_stage(path) == expected


def test_imported_packages_from_the_syntax_tree() -> None:
    code = textwrap.dedent(
        """\
        import logging
        import odoo.tools.sql as sql
        from openupgradelib import openupgrade
        from odoo.addons.base.models import res_partner
        from . import helpers
        from .lib import x
        import importlib


        def migrate(cr, version):
            import psycopg2.extras
            mod = importlib.import_module("dateutil.relativedelta")
            other = __import__("requests")
            local = __import__(".local")
        """
    ).encode()
    assert manifest.imported_packages(code, source="x.py") == (
        "dateutil",
        "importlib",
        "logging",
        "odoo",
        "openupgradelib",
        "psycopg2",
        "requests",
    )


def test_a_script_that_does_not_parse_is_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        manifest.imported_packages(b"def migrate(cr, version)\n    pass\n", source="a/pre-x.py")
    assert caught.value.problems[0].file == "a/pre-x.py"
    assert caught.value.problems[0].line == 1


def test_scripts_honour_coding_cookies() -> None:
    code = "# -*- coding: latin-1 -*-\nimport openupgradelib\n# café\n".encode("latin-1")
    assert manifest.imported_packages(code, source="x.py") == ("openupgradelib",)


# ---------------------------------------------------------------------------- addon_from


FILES = {
    "migrations/17.0.1.1/pre-migrate.py": b"from openupgradelib import openupgrade\n",
    "migrations/17.0.1.1/post-migrate.py": b"from odoo import api\n",
    "migrations/17.0.1.1/README.txt": b"not run",
    "migrations/0.0.0/end-check.py": b"",
    "upgrades/1.2/pre-x.py": b"import requests\n",
    "models/sale.py": b"this is not even python",
    "__manifest__.py": b"{}",
}


def test_addon_from_builds_the_shared_shape() -> None:
    parsed = parse(
        "{'version': '17.0.1.2', 'depends': ['sale', 'stock'], 'auto_install': ['sale'],"
        " 'external_dependencies': {'python': ['requests']}}"
    )
    addon = manifest.addon_from("sale_ext", parsed, FILES, source="addons/sale_ext", series="17.0")
    assert addon.name == "sale_ext"
    assert addon.version == "17.0.1.2"
    assert addon.depends == ("sale", "stock")
    assert addon.auto_install == ("sale",)
    assert addon.installable is True
    assert addon.external_python == ("requests",)
    assert addon.checksum is None
    assert addon.source == "addons/sale_ext"
    assert addon.migrations == (
        MigrationScript("migrations", "0.0.0", Stage.END, "migrations/0.0.0/end-check.py", ()),
        MigrationScript(
            "migrations", "17.0.1.1", Stage.POST, "migrations/17.0.1.1/post-migrate.py", ("odoo",)
        ),
        MigrationScript(
            "migrations",
            "17.0.1.1",
            Stage.PRE,
            "migrations/17.0.1.1/pre-migrate.py",
            ("openupgradelib",),
        ),
        MigrationScript("upgrades", "1.2", Stage.PRE, "upgrades/1.2/pre-x.py", ("requests",)),
    )


def test_addon_from_version_checks_follow_the_series() -> None:
    other_series = parse("{'version': '16.0.1.0.0'}")
    # 17.0 refuses the manifest ("invalid manifest")
    with pytest.raises(InvalidInput) as caught:
        manifest.addon_from("x", other_series, {}, source="addons/x", series="17.0")
    assert caught.value.problems[0].field == "version"
    assert caught.value.problems[0].file == "addons/x"
    # 18.0 keeps it but marks it not installable
    assert not manifest.addon_from("x", other_series, {}, source="x", series="18.0").installable
    # 16.0 prefixes anything
    assert manifest.addon_from("x", other_series, {}, source="x", series="16.0").installable
    # an addon that is not installable is not checked
    retired = parse("{'version': '16.0.1.0.0', 'installable': False}")
    assert not manifest.addon_from("x", retired, {}, source="x", series="17.0").installable
    # without a series nothing is checked
    assert manifest.addon_from("x", other_series, {}, source="x").version == "16.0.1.0.0"


def test_addon_from_refuses_odd_names() -> None:
    with pytest.raises(InvalidInput):
        manifest.addon_from("my-addon", parse("{}"), {}, source="x")


def test_manifest_names_per_series() -> None:
    assert manifest.manifest_names("16.0") == ("__manifest__.py", "__openerp__.py")
    assert manifest.manifest_names("17.0") == ("__manifest__.py", "__openerp__.py")
    assert manifest.manifest_names("18.0") == ("__manifest__.py",)
