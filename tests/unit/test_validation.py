"""Strict validation of plain data: NUL characters are refused wherever they are."""

from __future__ import annotations

import json
from typing import Any

import pytest

from changegate.domain import changes, validation
from changegate.errors import InvalidInput, Problem
from tests.factories import change_data

NUL_MESSAGE = "NUL characters (\\0) are not allowed in text"


def spec_problems(data: Any, **options: Any) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        validation.validate_plain(changes.ChangeSpec, data, source="change.yaml", **options)
    return caught.value.problems


def test_nul_in_a_title_is_refused_naming_the_field() -> None:
    [problem] = spec_problems(change_data(title="a\x00b"))
    assert (problem.file, problem.field, problem.message) == ("change.yaml", "title", NUL_MESSAGE)


def test_nul_from_a_json_escape_is_refused() -> None:
    data = json.loads(json.dumps(change_data()).replace("Update sale_stock", "Update\\u0000"))
    assert "\x00" in data["title"]
    [problem] = spec_problems(data)
    assert (problem.field, problem.message) == ("title", NUL_MESSAGE)


def test_nul_in_a_nested_list_names_the_item() -> None:
    data = change_data(targets={"tenants": ["acme", "glo\x00bex"]})
    [problem] = spec_problems(data)
    assert (problem.field, problem.message) == ("targets.tenants[1]", NUL_MESSAGE)
    [problem] = spec_problems(change_data(targets={"tenants": ["\x00"]}))
    assert problem.field == "targets.tenants[0]"


def test_nul_in_a_mapping_key_is_refused_and_shown_escaped() -> None:
    data = change_data(targets={"selectors": [{"tier": "gold"}, {"ti\x00er": "gold"}]})
    [problem] = spec_problems(data)
    assert problem.field == "targets.selectors[1].ti\\0er"
    assert problem.message == NUL_MESSAGE + " (in a key)"
    # The offending key is never echoed raw, whatever else is wrong with the data.
    [problem] = spec_problems({"\x00": 1, "title": 3})
    assert (problem.field, problem.message) == ("\\0", NUL_MESSAGE + " (in a key)")


def test_prefix_and_locator_give_the_document_path_and_line() -> None:
    seen: list[tuple[str | int, ...]] = []

    def locate(path: tuple[str | int, ...]) -> int | None:
        seen.append(path)
        return 42

    data = change_data(test_evidence=["ok", "x\x00"])
    [problem] = spec_problems(data, locate=locate, prefix=("spec",))
    assert problem == Problem(
        NUL_MESSAGE, file="change.yaml", line=42, field="spec.test_evidence[1]"
    )
    assert seen == [("spec", "test_evidence", 1)]


def test_nul_is_reported_instead_of_other_problems() -> None:
    # Text that can never be stored is the first thing to fix; the rest follows.
    [problem] = spec_problems(change_data(title="\x00", category="nope", type=3))
    assert problem.field == "title"


def test_a_written_backslash_u0000_is_plain_text() -> None:
    # JSON writes it as \\u0000: the quick test hits, the walk finds no NUL, text is fine.
    spec = validation.validate_plain(
        changes.ChangeSpec, change_data(title="a\\u0000b"), source=None
    )
    assert spec.title == "a\\u0000b"
    assert validation.find_nul({"a": "\\u0000", "\\u0000": ["\\0"]}) is None


def test_find_nul_follows_document_order() -> None:
    data = {"a": {"x": ["ok", "\x00"]}, "b\x00": "\x00", "c": "\x00"}
    assert validation.find_nul(data) == (("a", "x", 1), False)
    assert validation.find_nul({"a": "ok", "b\x00": "\x00"}) == (("b\x00",), True)
    assert validation.find_nul({"a": "ok", "b": "\x00"}) == (("b",), False)
    assert validation.find_nul("\x00") == ((), False)
    assert validation.find_nul([1, 2.5, None, True, {"k": "v"}]) is None


def test_find_nul_walks_deep_data_without_recursion() -> None:
    data: Any = "\x00"
    for _ in range(20_000):
        data = [{"k": data}]
    found = validation.find_nul(data)
    assert found is not None
    path, is_key = found
    assert (len(path), is_key) == (40_000, False)
