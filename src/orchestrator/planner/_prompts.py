"""The planner's prompts: Markdown templates in ``prompts/`` (package data), filled with ``string.Template``.

``$name`` placeholders keep the templates readable next to the JSON they talk about (no brace escaping).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any, get_args

from orchestrator.plan.issues import PlanIssue
from orchestrator.plan.model import InputType, plan_json_schema
from orchestrator.plan.schemas import json_type
from orchestrator.registry import ToolRegistry

_VALUE_PREVIEW = 120


@cache
def template(name: str) -> Template:
    """The prompt template ``prompts/<name>.md``."""
    return Template(files("orchestrator.planner").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8"))


def catalog_json(registry: ToolRegistry) -> str:
    """The tool catalog exactly as ``orchestrator tools --json`` prints it."""
    return json.dumps([spec.model_dump(mode="json") for spec in registry.catalog()], indent=2, ensure_ascii=False)


def system_prompt(registry: ToolRegistry) -> str:
    """Who the planner is, the plan format and its JSON Schema, the rules, and the tool catalog."""
    schema = json.dumps(plan_json_schema())  # compact: the schema is for the model, and tokens cost
    return template("system").substitute(schema=schema, catalog=catalog_json(registry))


def input_type(value: Any) -> InputType:
    """The plan input type of a context value ("any" for null or what JSON cannot hold)."""
    kind = json_type(value)
    return kind if kind in get_args(InputType) else "any"  # type: ignore[return-value]


def describe_inputs(context: Mapping[str, Any] | None) -> str:
    """One line per context key: its name, inferred type and a preview of its value."""
    if not context:
        return "(none: the plan takes no inputs; declare none)"
    lines = []
    for name, value in context.items():
        preview = json.dumps(value, ensure_ascii=False, default=str)
        if len(preview) > _VALUE_PREVIEW:
            preview = preview[:_VALUE_PREVIEW] + "..."
        lines.append(f"- `{name}` ({input_type(value)}), e.g. {preview}")
    return "\n".join(lines)


def request_prompt(request: str, context: Mapping[str, Any] | None) -> str:
    """The user message: the request and the context keys that become plan inputs."""
    return template("request").substitute(request=request.strip(), inputs=describe_inputs(context))


def repair_prompt(issues: Sequence[PlanIssue], *, truncated: bool = False) -> str:
    """The validator's findings, sent back for another attempt."""
    lines = [f"- {issue.render()}" for issue in issues]
    if truncated:
        lines.append("- the answer was cut off at the output limit: write a shorter plan (fewer, broader steps)")
    return template("repair").substitute(issues="\n".join(lines))


def replan_prompt(*, reason: str, plan: str, failed: str, completed: str, inputs: str) -> str:
    """The message asking for a revised plan after a failure or the user's feedback."""
    return template("replan").substitute(reason=reason, plan=plan, failed=failed, completed=completed, inputs=inputs)
