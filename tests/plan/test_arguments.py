"""Literal arguments are checked against the tool's whole JSON Schema before anything runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

from orchestrator.plan import check_plan
from orchestrator.plan.issues import PlanIssue
from orchestrator.registry import ToolKind, ToolRegistry, ToolSpec


@pytest.fixture
def tools() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    async def pick(
        count: Annotated[int, Field(ge=1, le=10)],
        tags: Annotated[list[str], Field(max_length=3)],
        mode: Literal["fast", "slow"] = "fast",
        code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "ABC",
        flag: bool = False,
        ratio: float = 0.5,
    ) -> int:
        """Pick."""
        return count

    return registry


def only_issue(plan_args: dict[str, Any], tools: ToolRegistry) -> PlanIssue:
    compiled, issues = check_plan({"steps": [{"id": "s", "tool": "pick", "args": plan_args}]}, tools)
    assert compiled is None
    assert len(issues) == 1, issues
    return issues[0]


GOOD = {"count": 3, "tags": ["a"]}


def test_valid_literals_pass(tools: ToolRegistry) -> None:
    compiled, issues = check_plan({"steps": [{"id": "s", "tool": "pick", "args": GOOD}]}, tools)
    assert issues == [] and compiled is not None


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ({**GOOD, "count": True}, "args.count", 'true is not of type "integer"'),  # a boolean is not an integer
        ({**GOOD, "flag": 1}, "args.flag", 'is not of type "boolean"'),
        ({**GOOD, "count": 0}, "args.count", "less than the minimum of 1"),
        ({**GOOD, "count": 11}, "args.count", "greater than the maximum of 10"),
        ({**GOOD, "mode": "medium"}, "args.mode", '"medium" is not one of'),
        ({**GOOD, "code": "abc"}, "args.code", "does not match"),
        ({**GOOD, "tags": ["a", "b", "c", "d"]}, "args.tags", "has more than 3 items"),
        ({**GOOD, "tags": ["a", 5]}, "args.tags[1]", 'is not of type "string"'),
        ({**GOOD, "ratio": "0.5"}, "args.ratio", 'is not of type "number"'),
        ({**GOOD, "count": "3"}, "args.count", 'is not of type "integer"'),  # no quiet coercion of text
    ],
)
def test_a_literal_that_breaks_the_schema_names_the_step_and_field(
    tools: ToolRegistry, args: dict[str, Any], field: str, words: str
) -> None:
    issue = only_issue(args, tools)
    assert (issue.code, issue.step_id, issue.field) == ("invalid_arg", "s", field)
    assert words in issue.message


class SchemaOnlyTool:
    """A tool known only by its JSON Schema, as an MCP server's tools are: there is no Python type to ask."""

    def __init__(self) -> None:
        self.calls = 0
        self._spec = ToolSpec(
            name="remote_search",
            kind=ToolKind.MCP,
            description="Search somewhere else.",
            input_schema={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 50},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "where": {"type": "object", "properties": {"site": {"enum": ["a.example", "b.example"]}}},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def invoke(self, args: Mapping[str, Any]) -> Any:
        self.calls += 1
        return {"hits": []}

    def check_value(self, arg: str, value: Any) -> str | None:
        return None  # it has no checks of its own: the JSON Schema is all there is


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"query": ""}, "args.query"),
        ({"query": "x" * 51}, "args.query"),
        ({"query": "x", "limit": 1000}, "args.limit"),
        ({"query": "x", "where": {"site": "evil.example"}}, "args.where.site"),
    ],
)
def test_a_tool_known_only_by_its_json_schema_is_held_to_it(args: dict[str, Any], field: str) -> None:
    tool = SchemaOnlyTool()
    registry = ToolRegistry({"remote_search": tool})
    compiled, issues = check_plan({"steps": [{"id": "q", "tool": "remote_search", "args": args}]}, registry)
    assert compiled is None and [(i.code, i.field) for i in issues] == [("invalid_arg", field)]
    assert tool.calls == 0
