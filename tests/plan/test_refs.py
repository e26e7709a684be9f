from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.plan.refs import (
    Literal_,
    Ref,
    RefNode,
    ResolveError,
    compile_value,
    looks_like_ref,
    parse_ref,
    resolve,
)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("step:ocr", Ref("step", "ocr")),
        ("step:ocr.text", Ref("step", "ocr", ("text",))),
        ("step:parse.items[0].price", Ref("step", "parse", ("items", 0, "price"))),
        ("step:parse.items[-1]", Ref("step", "parse", ("items", -1))),
        ("input:image_path", Ref("input", "image_path")),
        ("input:cfg.rate", Ref("input", "cfg", ("rate",))),
        ("item", Ref("item", "")),
        ("item:name", Ref("item", "", ("name",))),
        ("item:a.b[2]", Ref("item", "", ("a", "b", 2))),
        ("item:[0]", Ref("item", "", (0,))),
    ],
)
def test_whole_string_references_parse_into_kind_name_and_path(text: str, ref: Ref) -> None:
    assert parse_ref(text) == ref


@pytest.mark.parametrize("text", ["step:", "step:a..b", "hello", "step: ocr", "steps:ocr", "input:1x", "item:"])
def test_strings_that_are_not_references_stay_literal(text: str) -> None:
    assert parse_ref(text) is None
    assert isinstance(compile_value(text), Literal_)


def test_a_near_miss_reference_is_flagged_as_a_likely_typo() -> None:
    assert looks_like_ref("step:a..b")
    assert looks_like_ref("step:")
    assert not looks_like_ref("stepping stones")
    assert not looks_like_ref("step: first do this")


def test_whole_reference_keeps_the_value_type() -> None:
    env = ({"parse": {"items": [{"price": 3.5}]}}, {}, None)
    assert resolve(compile_value("step:parse.items[0].price"), env) == 3.5
    assert resolve(compile_value("step:parse.items"), env) == [{"price": 3.5}]


def test_templates_interpolate_text_inside_longer_strings() -> None:
    env = ({"cat": {"total": 12.5, "ok": True, "tags": ["a"]}, "parse": {"merchant": "Cafe"}}, {"who": "Ann"}, None)
    node = compile_value("Spent {{step:cat.total}} at {{ step:parse.merchant }} for {{input:who}}: {{step:cat.tags}}")
    assert resolve(node, env) == 'Spent 12.5 at Cafe for Ann: ["a"]'
    assert resolve(compile_value("{{step:cat.ok}}"), env) == "true"


def test_references_resolve_anywhere_in_nested_args() -> None:
    env = ({"a": {"x": 1}}, {"n": 2}, {"name": "tea"})
    node = compile_value({"outer": [{"v": "step:a.x"}, "input:n", "literal", {"deep": ["item:name"]}]})
    assert resolve(node, env) == {"outer": [{"v": 1}, 2, "literal", {"deep": ["tea"]}]}


def test_literal_subtrees_compile_to_a_single_literal() -> None:
    node = compile_value({"a": [1, 2, {"b": "text"}], "c": None})
    assert isinstance(node, Literal_)
    assert isinstance(compile_value("step:x"), RefNode)


def test_a_missing_field_at_run_time_names_the_path_and_the_fields_present() -> None:
    env = ({"parse": {"items": [], "total": 1}}, {}, None)
    with pytest.raises(ResolveError, match=r"step:parse\.itemz: no field 'itemz' \(fields: items, total\)"):
        resolve(compile_value("step:parse.itemz"), env)
    with pytest.raises(ResolveError, match="index 0 out of range"):
        resolve(compile_value("step:parse.items[0]"), env)


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_paths = st.lists(st.one_of(_names, st.integers(min_value=-3, max_value=99)), max_size=4)


@given(kind=st.sampled_from(["step", "input"]), name=_names, path=_paths)
def test_printing_a_reference_and_parsing_it_again_round_trips(kind: str, name: str, path: list[str | int]) -> None:
    ref = Ref(kind, name, tuple(path))  # type: ignore[arg-type]
    assert parse_ref(str(ref)) == ref
