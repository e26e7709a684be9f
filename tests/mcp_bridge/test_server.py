"""`orchestrator mcp serve` used from the SDK's own client: in memory, over stdio and over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from orchestrator.mcp_bridge.server import build_server
from orchestrator.registry import ToolKind, ToolRegistry
from orchestrator.toolbox import default_registry

from .conftest import no_orphans, peer, write_config

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
RECEIPT = REPO / "examples" / "receipts" / "grocery.txt"
PLAN = {
    "goal": "tax and report",
    "inputs": {"amount": {"type": "number"}},
    "steps": [
        {"id": "tax", "tool": "calculate_tax", "args": {"amount": "input:amount", "rate": 0.1}},
        {"id": "report", "tool": "format_report", "args": {"text": "gross {{step:tax.gross}}"}},
    ],
    "output": "step:report",
}


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


async def test_every_builtin_is_listed_with_its_schemas_annotations_and_the_orchestrator_tools() -> None:
    registry = default_registry(mcp=False)
    async with Client(build_server(registry)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(registry.names()) | {"run_plan", "validate_plan", "plan_and_run"} == set(listed)
    for spec in registry.catalog():
        tool = listed[spec.name]
        assert tool.input_schema == spec.input_schema
        assert tool.annotations is not None and tool.annotations.read_only_hint == spec.annotations.read_only
        assert tool.meta is not None and tool.meta["orchestrator/kind"] == spec.kind.value
        if spec.output_schema.get("type") == "object":
            assert tool.output_schema == spec.output_schema
        else:  # MCP wants an object: a list or a number goes out as {"result": ...}
            assert tool.meta["orchestrator/wrapped"] is True
            assert tool.output_schema is not None and tool.output_schema["required"] == ["result"]
    assert listed["validate_plan"].annotations.read_only_hint is True
    assert listed["run_plan"].annotations.read_only_hint is False


async def test_each_kind_of_tool_answers_with_structured_output_and_its_worker_mode() -> None:
    async with Client(build_server(default_registry(mcp=False))) as client:
        tax = await client.call_tool("calculate_tax", {"amount": 100, "rate": 0.2})
        assert not tax.is_error and tax.structured_content == {"net": 100.0, "tax": 20.0, "gross": 120.0, "rate": 0.2}
        assert json.loads(tax.content[0].text) == tax.structured_content
        mood = await client.call_tool("small_model", {"task": "sentiment", "text": "I love it, great service"})
        assert mood.structured_content["label"] == "positive"
        assert mood.meta is not None and mood.meta["orchestrator/modes"] == ["keyword"]
        synth = await client.call_tool("synthesize", {"instruction": "summarize", "data": [1, 2]})
        assert synth.meta is not None and synth.meta["orchestrator/modes"] == ["fallback"]
        files = await client.call_tool("list_files", {"source": str(RECEIPT)})
        assert files.structured_content == {"result": [str(RECEIPT)]}


async def test_bad_arguments_are_a_tool_error_and_an_unknown_tool_a_protocol_error() -> None:
    async with Client(build_server(default_registry(mcp=False))) as client:
        bad = await client.call_tool("calculate_tax", {"amount": "lots"})
        assert bad.is_error and "invalid arguments: amount" in bad.content[0].text
        assert bad.meta is not None and bad.meta["orchestrator/retryable"] is False
        with pytest.raises(MCPError, match="Unknown tool: no_such_tool"):
            await client.call_tool("no_such_tool", {})


async def test_validate_plan_lists_every_problem_and_run_plan_reports_progress_per_step() -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with Client(build_server(default_registry(mcp=False))) as client:
        bad = {**PLAN, "steps": [{"id": "x", "tool": "calculate_taxes"}, {"id": "x", "tool": "format_report"}]}
        report = (await client.call_tool("validate_plan", {"plan": bad})).structured_content
        assert report["valid"] is False and {i["code"] for i in report["issues"]} >= {"unknown_tool", "duplicate_id"}
        good = (await client.call_tool("validate_plan", {"plan": json.dumps(PLAN)})).structured_content
        assert good == {"valid": True, "summary": "valid: 2 steps, critical path 2", "issues": []}
        args = {"plan": PLAN, "inputs": {"amount": 50}}
        run = await client.call_tool("run_plan", args, progress_callback=on_progress)
        assert run.structured_content["status"] == "succeeded" and run.structured_content["output"] == "gross 55.0\n"
        missing = await client.call_tool("run_plan", {"plan": PLAN})
        assert missing.is_error and "amount" in missing.content[0].text
    assert [p[:2] for p in progress] == [(0, 2), (1, 2), (2, 2)]
    assert progress[1][2] == "step 'tax' finished"


async def test_plan_and_run_plans_offline_from_the_library_and_runs() -> None:
    async with Client(build_server(default_registry(mcp=False))) as client:
        done = await client.call_tool(
            "plan_and_run",
            {"request": "Process this receipt and categorize items", "inputs": {"image_path": str(RECEIPT)}},
        )
    assert not done.is_error, done.content
    assert done.structured_content["result"]["status"] == "succeeded"
    assert done.structured_content["planning"]["source"]
    assert [s["tool"] for s in done.structured_content["plan"]["steps"]][0] == "receipt_ocr"


async def test_a_client_that_disconnects_mid_call_cancels_the_tool_and_the_server_serves_on() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()
    registry = ToolRegistry()

    @registry.tool(kind=ToolKind.FUNCTION)
    async def wait_long(seconds: float) -> float:
        """Wait."""
        started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return seconds

    server = build_server(registry)

    async def call_and_hang() -> None:
        async with Client(server) as client:
            await client.call_tool("wait_long", {"seconds": 60})

    caller = asyncio.create_task(call_and_hang())
    await asyncio.wait_for(started.wait(), 30)
    caller.cancel()  # the client goes away mid-call
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait_for(cancelled.wait(), 30)
    async with Client(server) as client:
        assert (await client.call_tool("wait_long", {"seconds": 0})).structured_content == {"result": 0.0}


async def test_over_stdio_a_host_lists_and_calls_and_a_disconnect_mid_call_leaves_no_process(
    tmp_path: Path, marker: str
) -> None:
    calls = tmp_path / "calls.txt"
    config = write_config(tmp_path, {"peer": peer(marker, calls=calls)})
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "orchestrator", "mcp", "serve", "--mcp-config", str(config)],
        env={"PYTHONPATH": str(REPO / "src"), "ORCHESTRATOR_HOME": str(tmp_path / "home"), "MARK": marker},
    )
    async with Client(params) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"calculate_tax", "run_plan", "peer.add", "peer.slow"} <= names  # ours, and the proxied peer's
        assert (await client.call_tool("peer.add", {"a": 1, "b": 2})).structured_content == {"total": 3.0, "terms": 2}
        run = await client.call_tool("run_plan", {"plan": PLAN, "inputs": {"amount": 10}})
        assert run.structured_content["output"] == "gross 11.0\n"

    async def hang() -> None:
        async with Client(params) as client:
            await client.call_tool("peer.slow", {"seconds": 120})

    caller = asyncio.create_task(hang())
    while not calls.exists():
        await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert no_orphans(marker)  # the peer, started by our server for the call, is gone too
    assert no_orphans(str(config))  # and so is our server


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`orchestrator mcp serve --http 127.0.0.1:0 --token ...` in a subprocess; yields (url, token)."""
    token = "test-token-123"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "mcp", "serve", "--http", "127.0.0.1:0", "--token", token],
        env={**child_env(), "ORCHESTRATOR_HOME": str(tmp_path / "home")},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"serving MCP on (http://127\.0\.0\.1:\d+/mcp) \(bearer token required\)", line)
        assert found, line + proc.stderr.read() if proc.poll() is not None else line
        yield found.group(1), token
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "mcp server stopped" in err and "Traceback" not in err


@asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


async def test_over_http_the_token_is_required_and_a_host_lists_calls_and_runs(http_server: tuple[str, str]) -> None:
    import httpx2

    url, token = http_server
    async with httpx2.AsyncClient() as raw:
        denied = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert denied.status_code == 401
    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 in its own way
        async with http_client(url, "wrong-token") as client:
            await client.list_tools()
    async with http_client(url, token) as client:
        assert "calculate_tax" in {t.name for t in (await client.list_tools()).tools}
        tax = await client.call_tool("calculate_tax", {"amount": 10, "rate": 0.5})
        assert tax.structured_content["gross"] == 15.0
        steps: list[Any] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            steps.append(message)

        run = await client.call_tool("run_plan", {"plan": PLAN, "inputs": {"amount": 1}}, progress_callback=on_progress)
        assert run.structured_content["output"] == "gross 1.1\n"
    assert "step 'report' finished" in steps


def test_http_address_forms_and_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    from orchestrator.commands.mcp import parse_address
    from orchestrator.errors import ConfigurationError

    assert parse_address("8765") == ("127.0.0.1", 8765)
    assert parse_address(":8765") == ("127.0.0.1", 8765)
    assert parse_address("0.0.0.0:1") == ("0.0.0.0", 1)
    assert parse_address("[::1]:9") == ("::1", 9)
    with pytest.raises(ConfigurationError, match="expected HOST:PORT"):
        parse_address("localhost:http")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "mcp", "serve", "--http", f"127.0.0.1:{port}"],
            env={**child_env(), "ORCHESTRATOR_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
