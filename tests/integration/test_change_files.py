"""Hostile change files: each gets a clear error naming file and line, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from changegate import bootstrap
from changegate.adapters import yamlsource
from changegate.domain import catalog as catalog_model
from changegate.errors import InvalidInput, PayloadTooLarge
from changegate.services import changes as change_service
from changegate.store.schema import audit_events
from changegate.store.schema import changes as changes_table
from tests.conftest import ctx_for
from tests.factories import change_yaml

BOMB = """apiVersion: changegate.io/v1
kind: ChangeRequest
spec:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def counts(app: bootstrap.App) -> tuple[int, int]:
    with app.engine.connect() as conn:
        return (
            int(conn.execute(sa.select(sa.func.count()).select_from(changes_table)).scalar_one()),
            int(conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one()),
        )


def file_it(app: bootstrap.App, catalog: catalog_model.Catalog, path: Path) -> None:
    documents = yamlsource.load_file(path, display=path.name, max_bytes=1024 * 1024)
    spec = change_service.spec_from_documents(documents, path.name)
    change_service.create(app.engine, catalog, ctx_for(catalog, "alice"), spec, source=path.name)


CASES: dict[str, tuple[bytes, int | None, str]] = {
    "malformed": (
        b"apiVersion: changegate.io/v1\nkind: ChangeRequest\nspec: [unclosed\n",
        4,
        "expected",
    ),
    "duplicate-key": (
        change_yaml().replace("  category:", "  category: kubernetes\n  category:", 1).encode(),
        None,
        "duplicate key",
    ),
    "invalid-utf8": (
        b"apiVersion: changegate.io/v1\nkind: ChangeRequest\nspec:\n  title: caf\xe9\n",
        4,
        "UTF-8",
    ),
    "alias-bomb": (BOMB.encode(), None, "alias"),
    "wrong-type": (change_yaml(title=["not", "a", "string"]).encode(), 4, "valid string"),
    "unknown-field": (change_yaml(colour="red").encode(), None, "unknown field"),
    "python-tag": (
        b"apiVersion: changegate.io/v1\nkind: ChangeRequest\n"
        b"spec: !!python/object/apply:os.system ['id']\n",
        3,
        "tag",
    ),
    "wrong-kind": (
        change_yaml().replace("kind: ChangeRequest", "kind: Tenant").encode(),
        2,
        "must be ChangeRequest",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_change_file_is_refused_and_nothing_written(
    case: str, app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    raw, line, words = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(raw)
    before = counts(app)
    with pytest.raises(InvalidInput) as caught:
        file_it(app, catalog, path)
    problem = caught.value.problems[0]
    assert problem.file == path.name
    assert problem.line is not None
    if line is not None:
        assert problem.line == line, caught.value.problems
    assert words.lower() in str(caught.value).lower()
    assert counts(app) == before


def test_injection_strings_are_stored_verbatim_not_executed(
    app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    nasty = "'; DROP TABLE changes; -- <script>alert(1)</script> {{7*7}} $(id)"
    path = tmp_path / "nasty.yaml"
    path.write_text(change_yaml(title=nasty[:200], justification=nasty), encoding="utf-8")
    file_it(app, catalog, path)
    stored = change_service.get(app.engine, ctx_for(catalog, "alice"), "CHG-1")
    assert stored.spec.justification == nasty
    assert counts(app)[0] == 1


def test_dangling_references_name_the_file(
    app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "dangling.yaml"
    path.write_text(change_yaml(targets={"tenants": ["ghost"]}), encoding="utf-8")
    before = counts(app)
    with pytest.raises(InvalidInput) as caught:
        file_it(app, catalog, path)
    assert caught.value.problems[0].file == "dangling.yaml"
    assert caught.value.problems[0].field == "targets.tenants[0]"
    assert counts(app) == before


def test_huge_file_is_refused_before_reading(
    app: bootstrap.App, catalog: catalog_model.Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:  # 50 MB, sparse: refused by its size, never read
        handle.truncate(50 * 1024 * 1024)
    before = counts(app)
    with pytest.raises(PayloadTooLarge, match=r"huge\.yaml"):
        file_it(app, catalog, path)
    assert counts(app) == before
