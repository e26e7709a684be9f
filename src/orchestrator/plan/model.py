"""The execution-plan format: what a planner writes and what the executor runs.

```json
{
  "goal": "Process this receipt and categorize items",
  "inputs": {"image_path": {"type": "string", "description": "receipt image or text file"}},
  "steps": [
    {"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "input:image_path"}},
    {"id": "parse", "tool": "line_item_parser", "args": {"text": "step:ocr.text"}}
  ],
  "output": "step:parse"
}
```

References inside `args` (and `for_each`, `output`):
- `step:<id>` or `step:<id>.<field>[<n>]...`: that step's output (or a part of it), of whatever type;
- `input:<name>[.<path>]`: a run input;
- `item` or `item:<path>`: inside a `for_each` step, the current element (or a part of it);
- `{{step:...}}`, `{{input:...}}`, `{{item:...}}` inside a longer string: the value's text.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
RESOURCE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-:./]{0,63}$")
MAX_RESOURCES = 16
MAX_RESOURCE_AMOUNT = 2.0**50  # "memory" is in bytes

InputType = Literal["string", "number", "integer", "boolean", "array", "object", "any"]


class InputSpec(BaseModel):
    """A declared run input."""

    model_config = ConfigDict(extra="forbid")

    type: InputType = "string"
    description: str | None = None
    default: Any = None
    required: bool | None = Field(default=None, description="defaults to true unless a default is given")

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None


class Step(BaseModel):
    """One call of one tool."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=STEP_ID_PATTERN, max_length=64, description="unique within the plan")
    tool: str = Field(min_length=1, description="a tool name from the catalog")
    args: dict[str, Any] = Field(default_factory=dict, description="arguments; values may hold references")
    depends_on: list[str] = Field(default_factory=list, description="extra ordering beyond references")
    for_each: str | list[Any] | None = Field(
        default=None, description="map the step over this list (usually a step: reference); item: is the element"
    )
    retries: int = Field(default=0, ge=0, le=10, description="extra attempts for retryable errors")
    timeout_s: float | None = Field(default=None, gt=0, le=86_400, description="per attempt")
    on_error: Literal["fail", "continue"] = Field(
        default="continue",
        description="continue: skip dependents, let independent branches finish; fail: stop the whole run",
    )
    resources: dict[str, float] | None = Field(
        default=None,
        description='run only on a worker that has these, e.g. {"GPU": 1} or a custom resource (--executor ray)',
    )
    description: str | None = None

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if len(value) > MAX_RESOURCES:
            raise ValueError(f"at most {MAX_RESOURCES} resources, got {len(value)}")
        for name, amount in value.items():
            if not RESOURCE_NAME_PATTERN.match(name):
                raise ValueError(f"resource name {name[:70]!r}: letters, digits and _-:./, at most 64 characters")
            if not math.isfinite(amount) or amount <= 0 or amount > MAX_RESOURCE_AMOUNT:
                raise ValueError(f"resource {name!r}: amount must be a positive number, got {amount}")
            if amount > 1 and amount != int(amount):
                raise ValueError(f"resource {name!r}: amounts above 1 must be whole numbers, got {amount}")
        return value


class Plan(BaseModel):
    """A DAG of steps; dependencies come from references and `depends_on`."""

    model_config = ConfigDict(extra="forbid")

    goal: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    output: Any = Field(default=None, description="what the run returns; may hold references")

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of the plan format (printed by `orchestrator schema`, given to the planner)."""
    return Plan.model_json_schema()
