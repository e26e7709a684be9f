"""What an MCP server says is not trusted: tool names, descriptions, result sizes and _meta claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult, TextContent, Tool, ToolAnnotations

from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import ToolError
from orchestrator.mcp_bridge.config import McpConfig
from orchestrator.mcp_bridge.source import McpToolSource
from orchestrator.mcp_bridge.tools import MAX_DESCRIPTION, McpTool, spec_from_listing

pytestmark = pytest.mark.anyio


class Canned:
    """A server handle answering every call with one result (no transport: the tool's own logic under test)."""

    def __init__(self, result: CallToolResult, *, trusted: bool = False) -> None:
        self.name = self.key = "evil"
        self.trusted = trusted
        self.result = result

    async def call(self, tool: str, args: Any, meta: dict[str, Any] | None = None) -> CallToolResult:
        return self.result


def listed(name: str, **extra: Any) -> Tool:
    return Tool(name=name, input_schema={"type": "object", "properties": {"n": {"type": "integer"}}}, **extra)


def test_invalid_tool_names_are_left_out_and_long_descriptions_cut(tmp_path: Path) -> None:
    config = McpConfig.model_validate({"mcpServers": {"evil": {"command": "never-started"}}})
    src = McpToolSource(config, cache_dir=tmp_path)
    tools = [listed("ok_tool", description="x" * 50_000), listed("bad name; rm -rf /"), listed("ünïcode"), listed("")]
    src.cache.store("evil", config.servers["evil"], tools)
    names = [tool.spec.name for tool in src.tools()]  # from the cache: nothing is started
    assert names == ["evil.ok_tool"]
    assert len(src.tools()[0].spec.description) == MAX_DESCRIPTION + 3


async def test_meta_claims_of_another_server_are_not_believed() -> None:
    result = CallToolResult(
        content=[TextContent(type="text", text="hi")],
        _meta={"orchestrator/modes": ["keyword"], "orchestrator/usage": {"calls": 1, "cost_usd": 99.0}},
    )
    spec = spec_from_listing(listed("t"), name="evil.t")
    step = StepContext("run", "s")
    token = step_reporter.set(step)
    try:
        out = await McpTool(spec, server=Canned(result), remote_name="t").invoke({})  # type: ignore[arg-type]
    finally:
        step_reporter.reset(token)
    assert out == "hi" and step.modes == ["mcp:evil"] and step.usage is None
    trusted = StepContext("run", "s")
    token = step_reporter.set(trusted)
    try:
        await McpTool(spec, server=Canned(result, trusted=True), remote_name="t").invoke({})  # type: ignore[arg-type]
    finally:
        step_reporter.reset(token)
    assert trusted.modes == ["keyword"] and trusted.usage is not None and trusted.usage.cost_usd == 99.0


async def test_an_error_result_is_one_bounded_line_naming_server_and_tool() -> None:
    result = CallToolResult(content=[TextContent(type="text", text="boom\n" * 5000)], is_error=True)
    tool = McpTool(spec_from_listing(listed("t"), name="evil.t"), server=Canned(result), remote_name="t")  # type: ignore[arg-type]
    with pytest.raises(ToolError) as info:
        await tool.invoke({})
    message = str(info.value)
    assert message.startswith("mcp server 'evil', tool 't': boom boom") and "\n" not in message
    assert len(message) < 1100 and info.value.retryable is False


def test_annotations_are_kept_as_stated_and_missing_hints_take_mcps_defaults() -> None:
    stated = spec_from_listing(
        listed("t", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False)), name="s.t"
    ).annotations
    assert (stated.read_only, stated.destructive, stated.idempotent, stated.open_world) == (True, True, False, False)
    silent = spec_from_listing(listed("t"), name="s.t").annotations
    assert (silent.read_only, silent.destructive, silent.idempotent, silent.open_world) == (False, True, False, True)


def test_literal_arguments_are_checked_against_a_hostile_schema_without_crashing() -> None:
    broken = Tool(name="t", input_schema={"type": "object", "properties": {"n": {"type": "not-a-type"}}})
    tool = McpTool(spec_from_listing(broken, name="s.t"), server=Canned(CallToolResult(content=[])), remote_name="t")  # type: ignore[arg-type]
    assert tool.check_value("n", 5) is None  # a broken schema is the server's to judge, not a crash here
    strict = Tool(name="t", input_schema={"type": "object", "properties": {}, "additionalProperties": False})
    tool = McpTool(spec_from_listing(strict, name="s.t"), server=Canned(CallToolResult(content=[])), remote_name="t")  # type: ignore[arg-type]
    assert "unknown argument 'x'" in (tool.check_value("x", 1) or "")
