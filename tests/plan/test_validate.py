from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import PlanLoadError, PlanValidationError
from orchestrator.plan import check_plan, load_plan, validate_plan
from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.source import Limits
from orchestrator.registry import ToolRegistry

GOOD: dict[str, Any] = {
    "goal": "receipt",
    "inputs": {"image_path": {"type": "string"}},
    "steps": [
        {"id": "ocr", "tool": "ocr", "args": {"image_path": "input:image_path"}},
        {"id": "parse", "tool": "parse", "args": {"text": "step:ocr.text"}},
        {"id": "label", "tool": "label", "for_each": "step:parse.items", "args": {"text": "item:name"}},
        {"id": "sum", "tool": "add", "args": {"a": "step:parse.total", "b": "step:parse.items[0].price"}},
        {
            "id": "report",
            "tool": "label",
            "args": {"text": "Spent {{step:sum}} at {{step:parse.merchant}}"},
            "depends_on": ["label"],
        },
    ],
    "output": "step:report",
}


def issues_of(plan: dict[str, Any], registry: ToolRegistry) -> list[PlanIssue]:
    compiled, issues = check_plan(plan, registry)
    assert compiled is None, "expected the plan to be rejected"
    return issues


def with_steps(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"goal": "g", "steps": list(steps), **extra}


def test_a_valid_plan_compiles_with_dependencies_and_critical_path(registry: ToolRegistry) -> None:
    compiled = validate_plan(GOOD, registry)
    assert compiled.steps["parse"].deps == ("ocr",)
    assert set(compiled.steps["report"].deps) == {"sum", "parse", "label"}
    assert compiled.critical_path[:2] == ["ocr", "parse"] and compiled.critical_path[-1] == "report"
    assert compiled.critical_path[2] in ("label", "sum")  # two chains of length 4 tie
    assert compiled.summary() == "valid: 5 steps, critical path 4"


def test_unknown_tool_is_reported_with_the_nearest_names(registry: ToolRegistry) -> None:
    [issue] = issues_of(with_steps({"id": "a", "tool": "parze", "args": {"text": "x"}}), registry)
    assert (issue.code, issue.step_id, issue.field) == ("unknown_tool", "a", "tool")
    assert "'parse'" in (issue.hint or "")


def test_duplicate_ids_are_reported(registry: ToolRegistry) -> None:
    issues = issues_of(
        with_steps({"id": "a", "tool": "add", "args": {"a": 1}}, {"id": "a", "tool": "add", "args": {"a": 2}}), registry
    )
    assert [i.code for i in issues] == ["duplicate_id"]


def test_unknown_and_missing_fields_name_the_step(registry: ToolRegistry) -> None:
    issues = issues_of(with_steps({"id": "a", "tool": "add", "args": {"a": 1}, "retry": 3}, {"tool": "add"}), registry)
    codes = {(i.code, i.step_id) for i in issues}
    assert ("unknown_field", "a") in codes
    assert ("missing_field", "#1") in codes
    unknown = next(i for i in issues if i.code == "unknown_field")
    assert "retries" in (unknown.hint or "")


def test_references_to_unknown_steps_and_undeclared_inputs_are_reported(registry: ToolRegistry) -> None:
    issues = issues_of(
        with_steps(
            {"id": "a", "tool": "label", "args": {"text": "step:ocrr.text", "labels": ["input:nope"]}},
            {"id": "b", "tool": "ocr", "args": {"image_path": "input:path"}},
        ),
        registry,
    )
    assert {(i.code, i.step_id) for i in issues} >= {("unknown_step", "a"), ("unknown_input", "b")}


def test_a_field_the_output_schema_lacks_is_reported(registry: ToolRegistry) -> None:
    plan = with_steps(
        {"id": "p", "tool": "parse", "args": {"text": "t"}},
        {"id": "x", "tool": "add", "args": {"a": "step:p.items[0].cost"}},
    )
    [issue] = issues_of(plan, registry)
    assert issue.code == "unknown_field" and issue.step_id == "x"
    assert "no field 'cost'" in issue.message and "name, price" in issue.message


def test_a_cycle_is_printed_as_a_path(registry: ToolRegistry) -> None:
    plan = with_steps(
        {"id": "a", "tool": "add", "args": {"a": "step:c"}},
        {"id": "b", "tool": "add", "args": {"a": "step:a"}},
        {"id": "c", "tool": "add", "args": {"a": "step:b"}},
    )
    [issue] = issues_of(plan, registry)
    assert issue.code == "cycle"
    assert issue.message.startswith("dependency cycle: ")
    path = issue.message.removeprefix("dependency cycle: ").split(" -> ")
    assert path[0] == path[-1] and set(path) == {"a", "b", "c"}


def test_self_dependency_is_reported(registry: ToolRegistry) -> None:
    issues = issues_of(with_steps({"id": "a", "tool": "add", "args": {"a": "step:a"}, "depends_on": ["a"]}), registry)
    assert {i.code for i in issues} == {"self_dependency"}


def test_args_are_checked_against_the_input_schema(registry: ToolRegistry) -> None:
    plan = with_steps(
        {"id": "m", "tool": "add", "args": {"b": 1}},
        {"id": "w", "tool": "add", "args": {"a": "lots"}},
        {"id": "u", "tool": "add", "args": {"a": 1, "c": 2}},
        {"id": "t", "tool": "parse", "args": {"text": "step:w"}},
    )
    found = {(i.code, i.step_id) for i in issues_of(plan, registry)}
    assert found == {("missing_arg", "m"), ("invalid_arg", "w"), ("unknown_arg", "u"), ("invalid_arg", "t")}


def test_item_outside_for_each_is_reported(registry: ToolRegistry) -> None:
    [issue] = issues_of(with_steps({"id": "a", "tool": "label", "args": {"text": "item:name"}}), registry)
    assert issue.code == "item_outside_for_each"


def test_item_paths_are_checked_against_the_element_schema(registry: ToolRegistry) -> None:
    plan = with_steps(
        {"id": "p", "tool": "parse", "args": {"text": "t"}},
        {"id": "l", "tool": "label", "for_each": "step:p.items", "args": {"text": "item:nam"}},
    )
    [issue] = issues_of(plan, registry)
    assert issue.code == "unknown_field" and "no field 'nam'" in issue.message


def test_every_problem_is_listed_not_just_the_first(registry: ToolRegistry) -> None:
    plan = with_steps(
        {"id": "a", "tool": "nope"}, {"id": "a", "tool": "add"}, {"id": "c", "tool": "add", "args": {"a": "step:zz"}}
    )
    codes = [i.code for i in issues_of(plan, registry)]
    assert {"unknown_tool", "duplicate_id", "unknown_step"} <= set(codes)


def test_size_limits_give_a_clear_error_instead_of_a_crash(registry: ToolRegistry) -> None:
    limits = Limits(max_steps=3, max_string=10)
    many = with_steps(*({"id": f"s{i}", "tool": "add", "args": {"a": 1}} for i in range(5)))
    [issue] = check_plan(many, registry, limits=limits)[1]
    assert issue.code == "too_large" and "5 steps" in issue.message
    long = with_steps({"id": "a", "tool": "label", "args": {"text": "x" * 50}})
    [issue] = check_plan(long, registry, limits=limits)[1]
    assert issue.code == "too_large" and issue.step_id == "a"


def test_deeply_nested_json_is_refused_without_recursion(tmp_path: Path, registry: ToolRegistry) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"steps": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(PlanLoadError, match="nests 50001 levels deep"):
        load_plan(path, registry)


def test_invalid_json_names_file_line_and_column(tmp_path: Path, registry: ToolRegistry) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "steps": [\n    {"id": "a",, "tool": "add"}\n  ]\n}\n')
    with pytest.raises(PlanLoadError) as info:
        load_plan(path, registry)
    assert (info.value.line, info.value.column) == (3, 16)
    assert str(info.value).startswith(f"{path}:3:16: invalid JSON")


def test_issues_from_a_file_carry_line_and_column(tmp_path: Path, registry: ToolRegistry) -> None:
    path = tmp_path / "plan.json"
    path.write_text(
        json.dumps(
            with_steps({"id": "a", "tool": "add", "args": {"a": 1}}, {"id": "b", "tool": "ad", "args": {"a": 1}}),
            indent=2,
        )
    )
    with pytest.raises(PlanValidationError) as info:
        load_plan(path, registry)
    [issue] = info.value.issues
    assert issue.code == "unknown_tool"
    lines = path.read_text().splitlines()
    assert lines[issue.line - 1][issue.column - 1 :].startswith('"ad"')  # type: ignore[operator]
    assert str(path) in str(info.value)


def test_a_missing_plan_file_is_a_clear_error(tmp_path: Path, registry: ToolRegistry) -> None:
    with pytest.raises(PlanLoadError, match="no such file"):
        load_plan(tmp_path / "missing.json", registry)
