"""SIGTERM to a command that started MCP servers leaves none of them running (checked in the process table)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), fields[0], cmdline)
    return table


def descendants(pid: int) -> dict[int, str]:
    """The live processes under `pid`, with their command lines."""
    table = _table()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, state, cmdline) in table.items():
            if ppid == parent and child not in found and state != "Z":
                found[child] = cmdline
                frontier.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    table = _table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def start_bench(tmp_path: Path, phase: str) -> tuple[subprocess.Popen[str], dict[int, str]]:
    """`orchestrator bench mcp` measuring over `phase`, once its MCP server is up (pid -> command line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "bench", "mcp", "--calls", "2000", "--transports", phase],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "ORCHESTRATOR_HOME": str(tmp_path)},
    )
    servers: dict[int, str] = {}
    deadline = time.monotonic() + 120
    while not servers and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        servers = {p: c for p, c in descendants(proc.pid).items() if "mcp serve" in c}
    if not servers:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the bench started no MCP server: exit {proc.returncode}: {err[-1000:]}")
    time.sleep(1.0)  # calls under way
    return proc, servers


@pytest.mark.parametrize("phase", ["stdio", "http"])
def test_sigterm_to_bench_mcp_stops_its_servers(tmp_path: Path, phase: str) -> None:
    """The bench is stopped while it measures over `phase`: it exits as interrupted, and every server it
    started (the stdio one, or `mcp serve --http 127.0.0.1:0` in its own process group) is gone."""
    proc, servers = start_bench(tmp_path, phase)
    try:
        everything = set(descendants(proc.pid))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 15
    while alive(everything) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = alive(everything)
    for pid in left:  # do not leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left running: {[servers.get(p, p) for p in left]}"


@pytest.mark.parametrize("phase", ["stdio", "http"])
def test_sigkill_to_bench_mcp_still_stops_its_servers(tmp_path: Path, phase: str) -> None:
    """Even a command killed outright (no cleanup runs) leaves no server: each was started to get SIGTERM from
    the kernel when its parent dies (`setpriv --pdeathsig`), and our server exits on it."""
    if not shutil.which("setpriv"):
        pytest.skip("needs util-linux's setpriv (parent-death signal)")
    proc, servers = start_bench(tmp_path, phase)
    try:
        everything = set(descendants(proc.pid))
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 30
    while alive(set(servers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = alive(everything)
    for pid in left:  # do not leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left & set(servers), f"left running: {[servers[p] for p in left & set(servers)]}"
