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
from statistics import median
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


ROUNDS = 5
"""Rounds of each measurement; the figures are their medians."""


async def _per_call(
    calls: Sequence[Callable[[], Awaitable[Any]]], n: int, server: int | None = None
) -> list[tuple[float, float]]:
    """For each of `calls`: wall seconds per call and CPU seconds per call (this process's plus the server's,
    whose wall time the machine's load inflates but not its CPU time), the medians over ROUNDS rounds of `n`
    sequential calls. The calls take turns round by round, so a change in the machine's load hits them alike."""
    walls: list[list[float]] = [[] for _ in calls]
    cpus: list[list[float]] = [[] for _ in calls]
    for _ in range(ROUNDS):
        for i, call in enumerate(calls):
            c0 = process_time() + _cpu_s(server)
            t0 = perf_counter()
            for _ in range(n):
                await call()
            walls[i].append((perf_counter() - t0) / n)
            cpus[i].append((process_time() + _cpu_s(server) - c0) / n)
    return [(median(w), median(c)) for w, c in zip(walls, cpus, strict=True)]


async def _rate(call: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> float:
    """Calls per second with `concurrency` calls in flight, over `n` calls (median of 3 rounds)."""

    async def one_round() -> float:
        remaining = n

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await call()

        t0 = perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (perf_counter() - t0)

    return median([await one_round() for _ in range(3)])


def _local_call() -> Callable[[], Awaitable[Any]]:
    from orchestrator.toolbox import default_registry

    tool = default_registry(mcp=False).get(TOOL)
    return lambda: tool.invoke(ARGS)


@asynccontextmanager
async def _http_server(start_timeout_s: float) -> AsyncIterator[tuple[str, int]]:
    """``orchestrator mcp serve --http 127.0.0.1:0`` in a child process (its own process group); yields its URL
    and PID. However the block is left (an error, a timeout, Ctrl-C or SIGTERM cancelling it), the server is
    stopped: SIGINT (uvicorn's graceful stop), then its whole group is terminated and killed, each wait bounded.
    """
    import tempfile

    import anyio

    from orchestrator.mcp_bridge.wire import dies_with_parent, stop_process_group

    with tempfile.TemporaryFile() as errlog:  # a file, not a pipe: the server's stderr can never fill and block
        proc = await asyncio.create_subprocess_exec(
            *dies_with_parent([sys.executable, "-m", "orchestrator", "mcp", "serve", "--http", "127.0.0.1:0"]),
            env={**os.environ, **_child_env()},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errlog,
            start_new_session=True,
        )
        try:
            found = None
            with anyio.move_on_after(start_timeout_s):
                while found is None and proc.returncode is None:
                    await asyncio.sleep(0.05)
                    errlog.seek(0)
                    found = re.search(rb"(http://127\.0\.0\.1:\d+/mcp)", errlog.read())
            if found is None:
                errlog.seek(0)
                said = errlog.read().decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
                why = f"no URL in {start_timeout_s:g}s" if proc.returncode is None else f"exited ({proc.returncode})"
                raise RunError(f"the MCP HTTP server did not start: {why}: {said[0]}")
            yield found.group(1).decode(), proc.pid
        finally:
            with anyio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.send_signal(signal.SIGINT)
                await stop_process_group(proc, grace_s=5.0)


async def _transport_row(
    name: str, config: ServerConfig, n: int, concurrencies: Sequence[int], server_pid: int | None = None
) -> dict[str, Any]:
    from orchestrator.mcp_bridge.tools import McpTool, ServerHandle
    from orchestrator.run_scope import run_scope
    from orchestrator.toolbox import default_registry

    spec = default_registry(mcp=False).get(TOOL).spec
    local = _local_call()
    connection = McpConnection(name, config)
    try:
        async with run_scope():  # the tool's calls share the run's connection, as in a plan
            tool = McpTool(spec, server=ServerHandle(name, lambda: connection, trusted=True), remote_name=TOOL)

            def raw() -> Awaitable[Any]:  # the SDK's call alone, no conversion
                return connection.call(TOOL, ARGS)

            def wrapped() -> Awaitable[Any]:
                return tool.invoke(ARGS)

            before = _children()
            for _ in range(50):  # start the server, warm both sides up
                await wrapped()
                await local()
            if server_pid is None:
                started = _children() - before
                server_pid = min(started) if started else None
            (local_wall, local_cpu), (wall, cpu), (raw_wall, _) = await _per_call([local, wrapped, raw], n, server_pid)
            rates = {str(c): round(await _rate(wrapped, max(n, 4 * c), c), 1) for c in concurrencies}
    finally:
        await connection.aclose()
    return {
        "transport": name,
        "per_call_ms": round(wall * 1000, 3),
        "overhead_ms": round((wall - local_wall) * 1000, 3),
        "cpu_ms": round(cpu * 1000, 3),
        "cpu_overhead_ms": round((cpu - local_cpu) * 1000, 3),
        "sdk_call_ms": round(raw_wall * 1000, 3),
        "in_process_ms": round(local_wall * 1000, 4),
        "calls_per_s": rates,
    }


async def measure_mcp(
    *,
    calls: int = 500,
    concurrencies: Sequence[int] = (1, 8, 32),
    transports: Sequence[str] = ("stdio", "http"),
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Per-call overhead of an MCP tool against the same function in process (measured in turns with it), and
    calls/s at each concurrency. Each transport must finish within `timeout_s`, else a RunError says which."""
    import anyio

    local = _local_call()
    for _ in range(50):
        await local()
    ((local_wall, local_cpu),) = await _per_call([local], calls)
    rows: list[dict[str, Any]] = [
        {
            "transport": "in-process",
            "per_call_ms": round(local_wall * 1000, 4),
            "overhead_ms": 0.0,
            "cpu_ms": round(local_cpu * 1000, 4),
            "cpu_overhead_ms": 0.0,
            "sdk_call_ms": None,
            "in_process_ms": round(local_wall * 1000, 4),
            "calls_per_s": {str(c): round(await _rate(local, max(calls, 4 * c), c), 1) for c in concurrencies},
        }
    ]
    limits: dict[str, Any] = {
        "timeout_s": 60,
        "connect_timeout_s": 120,
        "concurrency": 256,
        "max_restarts": 0,
        "protocol": "handshake",  # as the workers transport connects to our server
    }
    for name in transports:
        try:
            with anyio.fail_after(timeout_s):
                if name == "stdio":
                    args = ["-m", "orchestrator", "mcp", "serve"]
                    stdio = ServerConfig(command=sys.executable, args=args, env=_child_env(), **limits)
                    rows.append(await _transport_row("stdio", stdio, calls, concurrencies))
                else:
                    async with _http_server(limits["connect_timeout_s"]) as (url, pid):
                        http = ServerConfig(url=url, **limits)
                        rows.append(await _transport_row("http", http, calls, concurrencies, pid))
        except TimeoutError:
            raise RunError(
                f"bench mcp: the {name} measurement did not finish within {timeout_s:g}s "
                "(an overloaded machine? try fewer --calls or a larger --timeout)"
            ) from None
    return {"tool": TOOL, "calls": calls, "rows": rows, "target_stdio_overhead_ms": 1.0, "load": _load()}


def _load() -> list[float] | None:
    """The machine's load average (1, 5, 15 min): wall-clock figures mean little on a busy machine."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
