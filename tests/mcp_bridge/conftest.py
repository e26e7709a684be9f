"""Helpers for the MCP tests: configs for the test peer and the third-party servers, and the process table."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent


def processes_with(marker: str) -> list[int]:
    """PIDs of live (not zombie) processes whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def no_orphans(marker: str, wait_s: float = 15.0) -> bool:
    """Whether every process carrying `marker` is gone (waiting a bounded time for it to be reaped)."""
    deadline = time.monotonic() + wait_s
    while processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def peer(marker: str, starts: Path | None = None, calls: Path | None = None, **extra: Any) -> dict[str, Any]:
    """A server entry starting the test peer (orchestrator.testing.mcp_peer) over stdio."""
    args = ["-m", "orchestrator.testing.mcp_peer", "--marker", marker]
    if starts is not None:
        args += ["--starts", str(starts)]
    if calls is not None:
        args += ["--calls", str(calls)]
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {"command": sys.executable, "args": args, "env": {"PYTHONPATH": src}, **extra}


def write_config(tmp_path: Path, servers: dict[str, Any]) -> Path:
    path = tmp_path / "mcp_servers.json"
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


@pytest.fixture
def marker() -> str:
    return f"mcp-test-{uuid.uuid4().hex}"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A temporary git repository with one commit and one untracked file."""
    import subprocess

    path = tmp_path / "repo"
    path.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("config", "user.email", "t@example.com")
    run("config", "user.name", "Test")
    (path / "a.txt").write_text("hello\n")
    run("add", "a.txt")
    run("commit", "-qm", "first commit")
    (path / "new.txt").write_text("untracked\n")
    return path
