"""A compiled plan holds little per step: shared reference paths and argument names, a bounded cache."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.executor import execute_plan
from orchestrator.plan import refs
from orchestrator.plan.limits import Limits
from orchestrator.plan.refs import DictNode, ListNode, Literal_, RefNode, compile_value, parse_ref, resolve
from orchestrator.plan.source import _values_ok, check_values
from orchestrator.plan.validate import validate_plan
from orchestrator.registry import ToolRegistry


async def combine(n: int, values: list[int]) -> dict[str, int]:
    """Add up the values, plus n."""
    return {"value": sum(values) + n}


def registry() -> ToolRegistry:
    reg = ToolRegistry()
    reg.tool(combine)
    return reg


def plan(width: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"id": "source", "tool": "combine", "args": {"n": 1, "values": []}}]
    steps += [
        {"id": f"w{i}", "tool": "combine", "args": {"n": i, "values": ["step:source.value"]}} for i in range(width)
    ]
    steps.append(
        {"id": "sink", "tool": "combine", "args": {"n": 0, "values": [f"step:w{i}.value" for i in range(width)]}}
    )
    return {"goal": "compact", "steps": steps}


def test_steps_with_the_same_argument_names_share_one_tuple_of_keys_and_paths() -> None:
    compiled = validate_plan(plan(20), registry())
    assert type(compiled.steps["source"].args) is Literal_  # no reference: the arguments are a literal
    nodes = [cs.args for sid, cs in compiled.steps.items() if sid != "source"]
    assert all(type(node) is DictNode for node in nodes)
    assert len({id(node.keys) for node in nodes if isinstance(node, DictNode)}) == 1
    sink = compiled.steps["sink"].args
    assert isinstance(sink, DictNode) and sink.keys == ("n", "values")
    values = sink.values[1]
    assert isinstance(values, ListNode)
    paths = {id(child.ref.path) for child in values.items if isinstance(child, RefNode)}
    assert len(paths) == 1  # twenty references to `.value`, one path tuple


def test_a_dict_node_still_reads_as_key_node_pairs() -> None:
    node = compile_value({"a": "step:x.v", "b": 2, "c": ["step:x"]})
    assert isinstance(node, DictNode)
    assert node.keys == ("a", "b", "c")
    assert [k for k, _ in node.items] == ["a", "b", "c"]
    assert node.items[1] == ("b", Literal_(2))
    assert resolve(node, ({"x": {"v": 5}}, {}, None)) == {"a": 5, "b": 2, "c": [{"v": 5}]}


def test_the_shared_path_cache_is_bounded_in_entries_and_name_length() -> None:
    saved = dict(refs._FIELD_PATHS)
    refs._FIELD_PATHS.clear()
    try:
        for i in range(refs._FIELD_PATHS_MAX + 500):
            assert parse_ref(f"step:a.f{i}") == refs.Ref("step", "a", (f"f{i}",))
        assert len(refs._FIELD_PATHS) == refs._FIELD_PATHS_MAX
        refs._FIELD_PATHS.clear()
        long_name = "x" * (refs._FIELD_NAME_MAX + 1)
        assert parse_ref(f"step:a.{long_name}") == refs.Ref("step", "a", (long_name,))
        assert long_name not in refs._FIELD_PATHS
    finally:
        refs._FIELD_PATHS.clear()
        refs._FIELD_PATHS.update(saved)


def test_a_compact_plan_runs_to_the_same_results_as_the_plain_arithmetic() -> None:
    width = 50
    result = asyncio.run(execute_plan(plan(width), registry=registry()))
    assert result.ok
    assert result.steps["w3"].output == {"value": 1 + 3}
    assert result.steps["sink"].output == {"value": sum(1 + i for i in range(width))}


@settings(max_examples=300, deadline=None)
@given(
    value=st.recursive(
        st.text(alphabet="ab\x00\ud800é ", max_size=6) | st.integers() | st.none() | st.booleans(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
        max_leaves=12,
    )
)
def test_the_quick_values_pass_agrees_with_the_full_one_on_strings(value: Any) -> None:
    data = {"goal": "g", "steps": [{"id": "a", "tool": "t", "args": {"v": value}}]}
    limits = Limits(max_string=5)
    assert _values_ok(data, limits) == (check_values(data, limits) == [])
