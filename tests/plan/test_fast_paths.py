"""The fast paths give exactly what the general ones give (hypothesis properties)."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from orchestrator.errors import ToolError
from orchestrator.plan.limits import Limits
from orchestrator.plan.refs import (
    DictNode,
    ListNode,
    Literal_,
    Node,
    RefNode,
    ResolveError,
    _parse_slow,
    compile_value,
    follow,
    parse_ref,
    resolve,
)
from orchestrator.plan.source import _values_ok, check_values
from orchestrator.registry import FunctionTool, to_jsonable

names = st.text(alphabet="ab_-1Z.é[]0 \n", min_size=0, max_size=8)


@settings(max_examples=400, deadline=None)
@given(body=names, prefix=st.sampled_from(["step:", "input:", "item:", "item", "step", ""]))
def test_the_reference_parser_shortcut_agrees_with_the_grammar(body: str, prefix: str) -> None:
    text = prefix + body
    assert parse_ref(text) == _parse_slow(text)


# --- resolving ------------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "value"]), inner, max_size=3)
    ),
    max_leaves=8,
)
refs = st.builds(
    lambda name, path: f"step:{name}" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in path),
    st.sampled_from(["x", "y", "missing"]),
    st.lists(st.sampled_from(["a", "b", "value"]) | st.integers(-2, 2), max_size=2),
)
arg_trees = st.recursive(
    json_scalars | refs,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["p", "q"]), inner, max_size=2),
    max_leaves=6,
)


def reference_resolve(node: Node, outputs: dict[str, Any]) -> Any:
    """The plainest reading of the format: what the executor's resolver must agree with."""
    if isinstance(node, Literal_):
        return node.value
    if isinstance(node, RefNode):
        return follow(outputs[node.ref.name], node.ref.path, origin=f"step:{node.ref.name}")
    if isinstance(node, DictNode):
        return {k: reference_resolve(v, outputs) for k, v in node.items}
    if isinstance(node, ListNode):
        return [reference_resolve(v, outputs) for v in node.items]
    raise AssertionError(node)


def outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except ResolveError:
        return ("resolve_error",)
    except KeyError:
        return ("key_error",)


@settings(max_examples=300, deadline=None)
@given(tree=arg_trees, x=json_values, y=json_values)
def test_resolving_a_compiled_tree_agrees_with_the_plain_reading(tree: Any, x: Any, y: Any) -> None:
    outputs = {"x": x, "y": y}
    node = compile_value(tree)
    assert outcome(lambda: resolve(node, (outputs, {}, None))) == outcome(lambda: reference_resolve(node, outputs))


# --- the guarded direct call ----------------------------------------------------------------------------


async def echo(
    a: int,
    b: float,
    c: str | None = None,
    d: list[int] | None = None,
    e: dict[str, bool] | None = None,
    f: Literal["x", "y"] = "x",
    g: Any = None,
) -> dict[str, Any]:
    """Say what arrived, with its types."""
    seen = {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g}
    return {k: [type(v).__name__, v] for k, v in seen.items()}


TOOL = FunctionTool(echo)
anything = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.text(max_size=2) | st.just("x")
values = {
    "a": st.integers(-10, 10) | anything,
    "b": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10, 10) | anything,
    "c": st.text(max_size=3) | anything,
    "d": st.lists(st.integers(-3, 3), max_size=3) | st.lists(anything, max_size=2) | anything,
    "e": st.dictionaries(st.text(max_size=2), st.booleans(), max_size=2) | anything,
    "f": st.sampled_from(["x", "y", "z"]) | anything,
    "g": json_values,
}


async def called(call: Any, args: dict[str, Any]) -> Any:
    try:
        return ("ok", TOOL.dump(await call(args)))
    except ToolError:
        return ("invalid",)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_guarded_direct_call_gives_what_full_validation_gives(data: st.DataObject) -> None:
    chosen = data.draw(st.sets(st.sampled_from(sorted(values)), min_size=0))
    args = {name: data.draw(values[name]) for name in sorted(chosen | {"a", "b"})}
    direct = TOOL.direct_call(frozenset(args))
    assert direct is not None
    got = asyncio.run(called(direct, dict(args)))
    expected = asyncio.run(called(TOOL.start, dict(args)))
    if got[0] == "ok" and expected[0] == "ok" and isinstance(args["b"], float) and math.isnan(args["b"]):
        return
    assert got == expected


def test_the_direct_call_copies_lists_as_validation_does() -> None:
    seen: list[list[int]] = []

    async def keep(items: list[int]) -> None:
        """Keep the list it was given."""
        seen.append(items)

    tool = FunctionTool(keep)
    given = [1, 2]
    direct = tool.direct_call(frozenset({"items"}))
    assert direct is not None
    asyncio.run(direct({"items": given}))  # type: ignore[arg-type]
    assert seen == [[1, 2]] and seen[0] is not given


class Point(BaseModel):
    x: int


def test_no_direct_call_where_validation_would_do_more_than_check_types() -> None:
    async def model_arg(p: Point) -> None:
        """A model argument: validation builds the object."""

    async def constrained(n: Annotated[int, Field(ge=0)]) -> None:
        """A constraint only Pydantic knows at call time."""

    async def mutable_default(n: int, items: list[int] = []) -> None:  # noqa: B006 - the case under test
        """Pydantic copies the default; the function would share its own."""

    def sync(n: int) -> None:
        """Runs in a thread through start()."""

    assert FunctionTool(model_arg).direct_call(frozenset({"p"})) is None
    assert FunctionTool(constrained).direct_call(frozenset({"n"})) is None
    assert FunctionTool(mutable_default).direct_call(frozenset({"n"})) is None
    assert FunctionTool(sync).direct_call(frozenset({"n"})) is None


# --- the value scan --------------------------------------------------------------------------------------

hostile_scalars = (
    json_scalars
    | st.sampled_from(["a\x00b", "\ud800", "x\udfff", "é", "\u202e"])
    | st.sampled_from([math.inf, -math.inf, math.nan, 2**64, -(2**63) - 1, 2**63, 1e308])
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["k", "\x00k", "\ud800"]), inner, max_size=2)
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(value=hostile_values, depth=st.integers(1, 6), length=st.integers(0, 4))
def test_the_quick_value_scan_agrees_with_the_one_that_names_paths(value: Any, depth: int, length: int) -> None:
    limits = Limits(max_depth=depth, max_string=length)
    assert _values_ok(value, limits) == (check_values(value, limits) == [])


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("a\x00b", "NUL"),
        ("\ud800", "lone surrogate"),
        (math.inf, "not finite"),
        (math.nan, "not finite"),
        (2**64, "out of range"),
    ],
)
def test_each_hostile_value_is_named(value: Any, words: str) -> None:
    [(path, code, message)] = check_values({"steps": [{"args": {"v": value}}]})
    assert path == ("steps", 0, "args", "v") and code == "invalid_value" and words in message


class _Plain(TypedDict):
    value: int
    label: str
    ok: bool


async def _plain_tool() -> _Plain:
    return {"value": 1, "label": "a", "ok": True}


_PLAIN_TOOL = FunctionTool(_plain_tool)
_plain_values = st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.none(), st.floats(allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(
    result=st.dictionaries(st.sampled_from(["value", "label", "ok", "other"]), _plain_values, min_size=0, max_size=4),
)
def test_dumping_a_plain_typed_dict_gives_what_the_serializer_gives(result: dict[str, Any]) -> None:
    """The shortcut of FunctionTool.dump (every field, of its exact type, nothing else: a copy) agrees with
    Pydantic's serializer, which it skips; anything else still goes through the serializer."""
    try:
        expected: Any = ("ok", to_jsonable(result, _PLAIN_TOOL._output_adapter))
    except Exception as exc:
        expected = ("error", type(exc))
    try:
        got: Any = ("ok", _PLAIN_TOOL.dump(result))
    except Exception as exc:
        got = ("error", type(exc))
    assert got == expected
    if got[0] == "ok":
        assert list(got[1]) == list(expected[1]) and got[1] is not result  # same order, a copy
