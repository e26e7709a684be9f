"""``orchestrator bench mcp``: what a call costs through MCP, against the same function in process.

The function is the built-in ``calculate_tax`` (microseconds of work), so the figures are the transport's
cost: our tool wrapper, the SDK's client and server, JSON-RPC framing, and the pipe (stdio, to
``orchestrator mcp serve`` in a child process) or the local TCP connection (streamable HTTP, to
``orchestrator mcp serve --http 127.0.0.1:0``). Each is measured in this one process against the same
call made in process; calls per second are measured with 1, 8 and 32 calls in flight.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

from orchestrator.errors import RunError
from orchestrator.mcp_bridge.config import ServerConfig
from orchestrator.mcp_bridge.connection import McpConnection

__all__ = ["measure_mcp"]

ARGS = {"amount": 100.0, "rate": 0.08}
TOOL = "calculate_tax"


def _child_env() -> dict[str, str]:
    from orchestrator.settings import current_settings, settings_env

    settings = current_settings()
    env = settings_env(settings.model_copy(update={"workers_transport": "local"}))
    import orchestrator

    env["PYTHONPATH"] = str(Path(orchestrator.__file__).resolve().parents[1])
    return env


def _children() -> set[int]:
    """PIDs of this process's children (Linux; empty elsewhere)."""
    pids: set[int] = set()
    try:
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            pids.update(int(p) for p in (task / "children").read_text().split())
    except OSError:
        pass
    return pids


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process `pid` (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _per_call(call: Callable[[], Awaitable[Any]], n: int, server: int | None = None) -> tuple[float, float]:
    """Wall seconds per call (best of 3 rounds of `n` sequential calls), and CPU seconds per call, this process's
    plus the server's (whose wall time the machine's load inflates, but not its CPU time)."""
    best = float("inf")
    cpu = float("inf")
    for _ in range(3):
        c0 = process_time() + _cpu_s(server)
        t0 = perf_counter()
        for _ in range(n):
            await call()
        best = min(best, (perf_counter() - t0) / n)
        cpu = min(cpu, (process_time() + _cpu_s(server) - c0) / n)
    return best, cpu


async def _rate(call: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> float:
    """Calls per second with `concurrency` calls in flight, over `n` calls."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    t0 = perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (perf_counter() - t0)


@asynccontextmanager
async def _http_server() -> AsyncIterator[tuple[str, int]]:
    """``orchestrator mcp serve --http 127.0.0.1:0`` in a child process; yields its URL and PID."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator",
        "mcp",
        "serve",
        "--http",
        "127.0.0.1:0",
        env={**os.environ, **_child_env()},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 120)).decode(errors="replace")
        found = re.search(r"(http://127\.0\.0\.1:\d+/mcp)", line)
        if not found:
            raise RunError(f"the MCP HTTP server did not start: {line.strip() or 'no output'}")
        yield found.group(1), proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _transport_row(
    name: str,
    config: ServerConfig,
    local: tuple[float, float],
    n: int,
    concurrencies: Sequence[int],
    server_pid: int | None = None,
) -> dict[str, Any]:
    from orchestrator.mcp_bridge.tools import McpTool, ServerHandle
    from orchestrator.run_scope import run_scope
    from orchestrator.toolbox import default_registry

    spec = default_registry(mcp=False).get(TOOL).spec
    connection = McpConnection(name, config)
    async with run_scope():  # the tool's calls share the run's connection, as in a plan
        tool = McpTool(spec, server=ServerHandle(name, lambda: connection, trusted=True), remote_name=TOOL)

        def raw() -> Awaitable[Any]:  # the SDK's call alone, no conversion
            return connection.call(TOOL, ARGS)

        def wrapped() -> Awaitable[Any]:
            return tool.invoke(ARGS)

        before = _children()
        for _ in range(50):  # start the server, warm both sides up
            await wrapped()
        if server_pid is None:
            started = _children() - before
            server_pid = min(started) if started else None
        per_call, cpu = await _per_call(wrapped, n, server_pid)
        per_call_raw, _ = await _per_call(raw, n, server_pid)
        rates = {str(c): round(await _rate(wrapped, max(n, 4 * c), c), 1) for c in concurrencies}
        await connection.aclose()
    return {
        "transport": name,
        "per_call_ms": round(per_call * 1000, 3),
        "overhead_ms": round((per_call - local[0]) * 1000, 3),
        "cpu_ms": round(cpu * 1000, 3),
        "cpu_overhead_ms": round((cpu - local[1]) * 1000, 3),
        "sdk_call_ms": round(per_call_raw * 1000, 3),
        "calls_per_s": rates,
    }


async def measure_mcp(
    *, calls: int = 500, concurrencies: Sequence[int] = (1, 8, 32), transports: Sequence[str] = ("stdio", "http")
) -> dict[str, Any]:
    """Per-call overhead of an MCP tool against the same function in process, and calls/s at each concurrency."""
    from orchestrator.toolbox import default_registry

    local_tool = default_registry(mcp=False).get(TOOL)

    def local_call() -> Awaitable[Any]:
        return local_tool.invoke(ARGS)

    for _ in range(50):
        await local_call()
    local = await _per_call(local_call, calls)
    limits: dict[str, Any] = {"timeout_s": 60, "connect_timeout_s": 120, "concurrency": 256, "max_restarts": 0}
    rows = [
        {
            "transport": "in-process",
            "per_call_ms": round(local[0] * 1000, 4),
            "overhead_ms": 0.0,
            "cpu_ms": round(local[1] * 1000, 4),
            "cpu_overhead_ms": 0.0,
            "sdk_call_ms": None,
            "calls_per_s": {str(c): round(await _rate(local_call, max(calls, 4 * c), c), 1) for c in concurrencies},
        }
    ]
    if "stdio" in transports:
        stdio = ServerConfig(
            command=sys.executable, args=["-m", "orchestrator", "mcp", "serve"], env=_child_env(), **limits
        )
        rows.append(await _transport_row("stdio", stdio, local, calls, concurrencies))
    if "http" in transports:
        async with _http_server() as (url, pid):
            http = ServerConfig(url=url, **limits)
            rows.append(await _transport_row("http", http, local, calls, concurrencies, pid))
    return {"tool": TOOL, "calls": calls, "rows": rows, "target_stdio_overhead_ms": 1.0, "load": _load()}


def _load() -> list[float] | None:
    """The machine's load average (1, 5, 15 min): wall-clock figures mean little on a busy machine."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
