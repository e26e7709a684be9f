"""A step's optional `resources` (where it may run on a cluster): checked like any field of model output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import PlanValidationError
from orchestrator.plan.model import MAX_RESOURCES
from orchestrator.plan.validate import load_plan, validate_plan
from orchestrator.toolbox import default_registry

REGISTRY = default_registry()


def plan(resources: object) -> dict[str, object]:
    return {"steps": [{"id": "gpu_step", "tool": "format_report", "args": {"text": "x"}, "resources": resources}]}


@settings(deadline=None, max_examples=50)
@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-:./]{0,20}", fullmatch=True),
        st.one_of(st.floats(min_value=0.01, max_value=1.0), st.integers(min_value=1, max_value=64).map(float)),
        max_size=MAX_RESOURCES,
    )
)
def test_well_formed_resources_are_kept_as_written(resources: dict[str, float]) -> None:
    compiled = validate_plan(plan(resources), REGISTRY)
    assert compiled.steps["gpu_step"].step.resources == (resources or {})


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"GPU": 0}, "amount must be a positive number"),
        ({"GPU": -1}, "amount must be a positive number"),
        ({"GPU": float("inf")}, "not finite"),
        ({"GPU": 1.5}, "amounts above 1 must be whole numbers"),
        ({"bad name": 1}, "resource name 'bad name'"),
        ({"x" * 65: 1}, "at most 64 characters"),
        ({f"r{i}": 1 for i in range(MAX_RESOURCES + 1)}, f"at most {MAX_RESOURCES} resources"),
        ({"GPU": "one"}, "valid number"),
        (["GPU"], "valid dictionary"),
    ],
)
def test_bad_resources_are_one_issue_naming_the_step_and_field(resources: object, message: str) -> None:
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(plan(resources), default_registry())
    issue = caught.value.issues[0]
    assert issue.step_id == "gpu_step" and issue.field.startswith(".resources") and message in issue.message


def test_a_plan_file_with_bad_resources_points_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(plan({"GPU": 2.5}), indent=2))
    with pytest.raises(PlanValidationError) as caught:
        load_plan(path, default_registry())
    assert caught.value.issues[0].line is not None and "whole numbers" in str(caught.value)
