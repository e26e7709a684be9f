"""The MCP client as a tool source, against a real MCP server (orchestrator.testing.mcp_peer) over stdio:
names, schemas, annotations, calls, errors, crashes, restarts, timeouts, limits, the cache, no orphans."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ToolError, ToolTimeout
from orchestrator.executor import run_compiled
from orchestrator.mcp_bridge.config import McpConfig
from orchestrator.mcp_bridge.source import McpToolSource
from orchestrator.plan.validate import validate_plan
from orchestrator.registry import ToolRegistry
from orchestrator.run_scope import run_scope
from orchestrator.toolbox import default_registry

from .conftest import no_orphans, peer, processes_with

pytestmark = pytest.mark.anyio


def source(tmp_path: Path, servers: dict[str, Any]) -> McpToolSource:
    return McpToolSource(McpConfig.model_validate({"mcpServers": servers}), cache_dir=tmp_path / "cache")


def registry_with(src: McpToolSource) -> ToolRegistry:
    registry = default_registry(mcp=False)
    for tool in src.tools():
        registry.add(tool)
    return registry


def test_a_servers_tools_become_mcp_tools_with_its_schemas_and_annotations(tmp_path: Path, marker: str) -> None:
    tools = {t.spec.name: t.spec for t in source(tmp_path, {"peer": peer(marker)}).tools()}
    assert {"peer.add", "peer.echo", "peer.slow", "peer.fail", "peer.crash", "peer.write_note"} <= set(tools)
    add = tools["peer.add"]
    assert add.kind.value == "mcp" and add.description == "Add two numbers."
    assert add.input_schema["required"] == ["a"] and add.input_schema["properties"]["b"]["default"] == 0.0
    assert add.output_schema["properties"]["total"]["type"] == "number"
    assert (add.annotations.read_only, add.annotations.destructive, add.annotations.open_world) == (True, False, False)
    note = tools["peer.write_note"].annotations
    assert (note.read_only, note.destructive, note.idempotent) == (False, True, False)
    assert tools["peer.fail"].annotations.read_only is False  # no hints: MCP's defaults
    assert no_orphans(marker)


def test_tool_lists_are_cached_so_a_second_source_starts_no_server(tmp_path: Path, marker: str) -> None:
    starts = tmp_path / "starts.txt"
    first = source(tmp_path, {"peer": peer(marker, starts)}).tools()
    again = source(tmp_path, {"peer": peer(marker, starts)}).tools()
    assert [t.spec for t in first] == [t.spec for t in again]
    assert len(starts.read_text().splitlines()) == 1
    changed = peer(marker, starts)
    changed["args"] = [*changed["args"], "--marker", marker + "-2"]
    source(tmp_path, {"peer": changed}).tools()  # other args: another server, listed anew
    assert len(starts.read_text().splitlines()) == 2


async def test_a_plan_mixing_mcp_and_local_tools_runs_on_one_connection(tmp_path: Path, marker: str) -> None:
    starts = tmp_path / "starts.txt"
    registry = registry_with(source(tmp_path, {"peer": peer(marker, starts)}))
    plan = {
        "steps": [
            {"id": "sum", "tool": "peer.add", "args": {"a": 2, "b": 3.5}},
            {"id": "twice", "tool": "peer.add", "args": {"a": "step:sum.total", "b": "step:sum.total"}},
            {"id": "say", "tool": "peer.echo", "args": {"text": "total {{step:twice.total}}"}},
            {"id": "tax", "tool": "calculate_tax", "args": {"amount": "step:twice.total", "rate": 0.1}},
        ],
        "output": {"said": "step:say", "gross": "step:tax.gross"},
    }
    result, _ = await run_compiled(validate_plan(plan, registry), {})
    assert result.status == "succeeded", result.steps
    assert result.output == {"said": "total 11.0", "gross": 12.1}
    assert result.steps["sum"].output == {"total": 5.5, "terms": 2}
    assert result.steps["sum"].modes == ("mcp:peer",)
    assert len(starts.read_text().splitlines()) == 2  # one to list (then cached), one for the whole run
    assert no_orphans(marker)


def test_literal_arguments_are_checked_against_the_servers_schema_before_the_run(tmp_path: Path, marker: str) -> None:
    registry = registry_with(source(tmp_path, {"peer": peer(marker)}))
    plan = {"steps": [{"id": "sum", "tool": "peer.add", "args": {"a": "many"}}]}
    with pytest.raises(Exception, match=r"step 'sum' args\.a: .*many.* is not of type .number."):
        validate_plan(plan, registry)


async def test_a_tool_error_names_server_and_tool_and_the_run_goes_on(tmp_path: Path, marker: str) -> None:
    registry = registry_with(source(tmp_path, {"peer": peer(marker)}))
    plan = {
        "steps": [
            {"id": "bad", "tool": "peer.fail", "args": {"reason": "disk on fire"}},
            {"id": "after", "tool": "peer.echo", "args": {"text": "step:bad"}},
            {"id": "other", "tool": "peer.echo", "args": {"text": "independent"}},
        ]
    }
    result, _ = await run_compiled(validate_plan(plan, registry), {})
    assert result.status == "partial"
    bad = result.steps["bad"]
    assert bad.status == "failed" and "mcp server 'peer', tool 'fail'" in (bad.error or "")
    assert "disk on fire" in (bad.error or "")
    assert result.steps["after"].status == "skipped" and result.steps["other"].output == "independent"
    assert no_orphans(marker)


async def test_a_server_killed_mid_call_is_a_clear_error_on_error_holds_and_nothing_is_left(
    tmp_path: Path, marker: str
) -> None:
    calls = tmp_path / "calls.txt"
    registry = registry_with(source(tmp_path, {"peer": peer(marker, calls=calls)}))
    plan = {
        "steps": [
            {"id": "long", "tool": "peer.slow", "args": {"seconds": 60}},
            {"id": "needs_long", "tool": "peer.add", "args": {"a": "step:long.pid"}},
            {"id": "local", "tool": "calculate_tax", "args": {"amount": 10, "rate": 0.5}},
        ]
    }
    compiled = validate_plan(plan, registry)

    async def kill_when_running() -> None:
        while not calls.exists():  # the call has reached the server
            await asyncio.sleep(0.05)
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)

    killer = asyncio.create_task(kill_when_running())
    result, _ = await run_compiled(compiled, {})
    await killer
    long = result.steps["long"]
    assert long.status == "failed"
    assert "mcp server 'peer', tool 'slow': the server crashed or closed the connection during the call" in (
        long.error or ""
    )
    assert result.steps["needs_long"].status == "skipped" and result.steps["local"].status == "succeeded"
    assert no_orphans(marker)


async def test_a_crashed_server_is_restarted_for_later_calls_a_bounded_number_of_times(
    tmp_path: Path, marker: str
) -> None:
    starts = tmp_path / "starts.txt"
    tools = {t.spec.name: t for t in source(tmp_path, {"peer": peer(marker, starts, max_restarts=1)}).tools()}
    async with run_scope():
        with pytest.raises(ToolError, match=r"crashed or closed the connection during the call; .*1 restart left"):
            await tools["peer.crash"].invoke({})
        assert (await tools["peer.add"].invoke({"a": 1}))["total"] == 1.0  # restarted
        with pytest.raises(ToolError, match="crashed"):
            await tools["peer.crash"].invoke({})
        with pytest.raises(ToolError, match=r"stopped 2 times; not restarting it again \(max_restarts=1\)"):
            await tools["peer.add"].invoke({"a": 1})
    assert len(starts.read_text().splitlines()) == 3  # the listing, then two in the run
    assert no_orphans(marker)


async def test_a_call_past_the_servers_timeout_is_a_tool_timeout_naming_it(tmp_path: Path, marker: str) -> None:
    tools = {t.spec.name: t for t in source(tmp_path, {"peer": peer(marker, timeout_s=3)}).tools()}
    async with run_scope():
        with pytest.raises(ToolTimeout, match=r"mcp server 'peer', tool 'slow': no answer within 3s"):
            await tools["peer.slow"].invoke({"seconds": 30})
        assert (await tools["peer.echo"].invoke({"text": "still here"})) == "still here"
    assert no_orphans(marker)


async def test_the_servers_concurrency_limit_holds_across_a_for_each(tmp_path: Path, marker: str) -> None:
    registry = registry_with(source(tmp_path, {"peer": peer(marker, concurrency=2)}))
    plan = {
        "steps": [{"id": "many", "tool": "peer.slow", "for_each": "input:xs", "args": {"seconds": 1.0}}],
        "inputs": {"xs": {"type": "array"}},
    }
    result, _ = await run_compiled(validate_plan(plan, registry), {"xs": list(range(6))})
    assert result.status == "succeeded"
    assert max(r["peak"] for r in result.steps["many"].output) == 2
    assert no_orphans(marker)


def test_servers_that_are_missing_or_fail_to_start_add_no_tools_and_say_why(tmp_path: Path, marker: str) -> None:
    broken = peer(marker)
    broken["args"] = [*broken["args"], "--fail-start"]
    src = source(tmp_path, {"gone": {"command": "no-such-mcp-server-xyz"}, "broken": broken, "peer": peer(marker)})
    names = {t.spec.name for t in src.tools()}
    assert "peer.add" in names and not any(n.startswith(("gone.", "broken.")) for n in names)
    assert "mcp server 'gone': cannot start: command 'no-such-mcp-server-xyz' not found on PATH" in src.errors["gone"]
    assert "mcp server 'broken': failed to start" in src.errors["broken"]
    assert "refusing to start (--fail-start)" in src.errors["broken"]  # the server's own stderr
    assert no_orphans(marker)
