"""The stdio wire: one JSON-RPC message per line, and a server process that is always stopped, with its group."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio
import pytest
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCNotification, JSONRPCRequest

from orchestrator.mcp_bridge.wire import LineReader, StdioProcess

pytestmark = pytest.mark.anyio


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_lines_become_messages_bad_lines_their_errors_and_blank_lines_nothing() -> None:
    stream = asyncio.StreamReader()
    stream.feed_data(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n\n   \nnot json\n')
    stream.feed_data(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    stream.feed_eof()
    reader = LineReader(stream)
    first = await reader.receive()
    assert isinstance(first, SessionMessage) and isinstance(first.message, JSONRPCRequest)
    reader.push_back(first)  # looked at, then read again
    assert await reader.receive() is first
    assert isinstance(await reader.receive(), ValueError)  # the dispatcher answers or logs it; reading goes on
    last = await reader.receive()
    assert isinstance(last, SessionMessage) and isinstance(last.message, JSONRPCNotification)
    assert [item async for item in reader] == []  # end of file ends the iteration
    with pytest.raises(anyio.EndOfStream):
        await reader.receive()


async def test_what_a_server_leaves_in_its_process_group_is_killed_when_it_stops() -> None:
    with tempfile.TemporaryFile("w+") as log:
        script = "sleep 300 & echo $! >&2; read line"  # leaves a child behind, exits once stdin closes
        async with StdioProcess("sh", ["-c", script], env=dict(os.environ), stderr=log, grace_s=5) as (_, __):
            for _ in range(200):
                log.seek(0)
                if log.read().strip():
                    break
                await asyncio.sleep(0.02)
        log.seek(0)
        child = int(log.read().split()[0])
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    left = alive(child)
    if left:
        os.kill(child, 9)  # not left behind even when the test fails
    assert not left


async def test_a_server_that_ignores_stdin_and_sigterm_is_killed_within_the_grace_periods() -> None:
    script = 'trap "" TERM; while :; do sleep 0.05; done'
    process = StdioProcess("sh", ["-c", script], env=dict(os.environ), grace_s=0.3)
    t0 = time.monotonic()
    async with process:
        pid = process.pid
    assert pid is not None and not alive(pid)
    assert time.monotonic() - t0 < 10  # two grace periods and a kill, not a hang


def test_a_server_is_started_to_die_with_its_parent_unless_it_cannot_be_found(tmp_path: Path) -> None:
    import shutil

    from orchestrator.mcp_bridge.wire import dies_with_parent

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs util-linux's setpriv")
    python = shutil.which("python3") or sys.executable
    got = dies_with_parent(["python3", "-V"], {"PATH": str(Path(python).parent)})
    assert got[:4] == [setpriv, "--pdeathsig", "TERM", "--"] and got[5:] == ["-V"]
    assert Path(got[4]).name == "python3"
    # not found: left as it is, so starting it fails naming the command, as before
    assert dies_with_parent(["no-such-server-xyz", "a"], {"PATH": str(tmp_path)}) == ["no-such-server-xyz", "a"]
    script = tmp_path / "server.sh"
    script.write_text("#!/bin/sh\n")
    assert dies_with_parent(["./server.sh"], {}, str(tmp_path)) == ["./server.sh"]  # not executable
    script.chmod(0o755)
    assert Path(dies_with_parent(["./server.sh"], {}, str(tmp_path))[4]) == tmp_path / "server.sh"
