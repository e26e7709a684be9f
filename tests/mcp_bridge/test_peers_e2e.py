"""End to end, as a user runs it: plans that mix third-party MCP servers from PyPI (time, git, fetch) with
local tools, `orchestrator mcp check`, and what is left behind after failures and Ctrl-C (nothing)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BIN, no_orphans, peer, write_config

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ORCHESTRATOR_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def write_plan(tmp_path: Path, plan: dict[str, Any]) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    return path


@pytest.fixture
def page() -> Iterator[str]:
    """A page served on 127.0.0.1 only, for mcp-server-fetch."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body><h1>Receipts policy</h1><p>Keep every receipt for 7 years.</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/policy"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_plan_mixing_time_git_and_fetch_servers_with_local_tools_validates_and_runs(
    tmp_path: Path, repo: Path, page: str
) -> None:
    config = write_config(
        tmp_path,
        {
            "time": {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]},
            "git": {"command": str(BIN / "mcp-server-git"), "args": ["--repository", str(repo)]},
            "fetch": {"command": str(BIN / "mcp-server-fetch"), "args": ["--ignore-robots-txt", "--allow-private-ips"]},
        },
    )
    plan = write_plan(
        tmp_path,
        {
            "goal": "a status note",
            "inputs": {"repo": {"type": "string"}, "url": {"type": "string"}},
            "steps": [
                {"id": "now", "tool": "time.get_current_time", "args": {"timezone": "Asia/Tokyo"}},
                {"id": "status", "tool": "git.git_status", "args": {"repo_path": "input:repo"}},
                {"id": "log", "tool": "git.git_log", "args": {"repo_path": "input:repo", "max_count": 1}},
                {"id": "policy", "tool": "fetch.fetch", "args": {"url": "input:url"}},
                {"id": "rule", "tool": "format_report", "args": {"text": "Policy read: {{step:policy}}"}},
                {
                    "id": "note",
                    "tool": "format_report",
                    "args": {"text": "{{step:now.timezone}} {{step:now.day_of_week}} | {{step:status}} | {{step:log}}"},
                },
            ],
            "output": {"note": "step:note", "policy": "step:policy", "rule": "step:rule"},
        },
    )
    home = tmp_path / "home"
    valid = cli("validate", "--mcp-config", str(config), str(plan), home=home)
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.strip().startswith("valid: 6 steps")
    inputs = ["-i", f"repo={repo}", "-i", f"url={page}"]
    proc = cli("run", str(plan), "--json", "--mcp-config", str(config), *inputs, home=home)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout)
    note = result["output"]["note"]
    assert note.startswith("Asia/Tokyo ") and "new.txt" in note and "first commit" in note
    assert "Keep every receipt for 7 years." in result["output"]["policy"]
    assert "Keep every receipt for 7 years." in result["output"]["rule"]  # a local tool read the fetched page
    assert result["steps"]["now"]["modes"] == ["mcp:time"] and result["steps"]["status"]["kind"] == "mcp"
    tools = json.loads(cli("tools", "--json", "--mcp-config", str(config), home=home).stdout)
    hints = {spec["name"]: spec["annotations"] for spec in tools}
    assert hints["git.git_status"]["read_only"] is True
    assert (hints["git.git_reset"]["read_only"], hints["git.git_reset"]["destructive"]) == (False, True)
    assert (hints["git.git_add"]["destructive"], hints["git.git_add"]["idempotent"]) == (False, True)
    assert hints["time.get_current_time"]["read_only"] is True


def test_validate_reads_cached_tool_lists_and_starts_no_server(tmp_path: Path, marker: str) -> None:
    starts = tmp_path / "starts.txt"
    config = write_config(tmp_path, {"peer": peer(marker, starts)})
    plan = write_plan(tmp_path, {"steps": [{"id": "a", "tool": "peer.add", "args": {"a": 1}}]})
    for _ in range(3):
        proc = cli("validate", "--mcp-config", str(config), str(plan), home=tmp_path / "home")
        assert proc.returncode == 0, proc.stderr
    assert len(starts.read_text().splitlines()) == 1


def test_mcp_check_lists_each_servers_tools_or_its_error(tmp_path: Path, marker: str) -> None:
    config = write_config(tmp_path, {"peer": peer(marker), "gone": {"command": "no-such-mcp-server-xyz"}})
    proc = cli("mcp", "check", "--mcp-config", str(config), "--json", home=tmp_path / "home")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    reports = {r["server"]: r for r in json.loads(proc.stdout)}
    assert reports["peer"]["ok"] and "peer.add" in {t["name"] for t in reports["peer"]["tools"]}
    assert not reports["gone"]["ok"] and "not found on PATH" in reports["gone"]["error"]
    table = cli("mcp", "check", "--mcp-config", str(config), home=tmp_path / "home")
    assert "peer.echo" in table.stdout and "failed" in table.stdout
    assert no_orphans(marker)


def test_a_plan_naming_a_server_that_cannot_start_is_one_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"gone": {"command": "no-such-mcp-server-xyz"}})
    plan = write_plan(tmp_path, {"steps": [{"id": "a", "tool": "gone.do_it"}]})
    proc = cli("run", str(plan), "--mcp-config", str(config), home=tmp_path / "home")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "mcp server 'gone': cannot start: command 'no-such-mcp-server-xyz' not found" in proc.stderr
    assert "step 'a' tool: unknown tool 'gone.do_it'" in proc.stderr
    bad = cli("run", str(plan), "--mcp-config", str(tmp_path / "missing.json"), home=tmp_path / "home")
    assert bad.returncode == 2 and "no such MCP config file" in bad.stderr


def test_a_failed_run_stops_the_servers_it_started(tmp_path: Path, marker: str) -> None:
    config = write_config(tmp_path, {"peer": peer(marker)})
    plan = write_plan(
        tmp_path,
        {
            "steps": [
                {"id": "bad", "tool": "peer.fail", "args": {"reason": "no"}, "on_error": "fail"},
                {"id": "long", "tool": "peer.slow", "args": {"seconds": 120}},
            ]
        },
    )
    proc = cli("run", str(plan), "--mcp-config", str(config), home=tmp_path / "home")
    assert proc.returncode == 1 and "mcp server 'peer', tool 'fail': Error executing tool fail: no" in proc.stdout
    assert no_orphans(marker)


def test_ctrl_c_during_an_mcp_call_exits_130_and_leaves_no_process(tmp_path: Path, marker: str) -> None:
    calls = tmp_path / "calls.txt"
    config = write_config(tmp_path, {"peer": peer(marker, calls=calls)})
    plan = write_plan(tmp_path, {"steps": [{"id": "long", "tool": "peer.slow", "args": {"seconds": 120}}]})
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ORCHESTRATOR_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", str(plan), "--mcp-config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not calls.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert no_orphans(marker)


def test_a_batch_starts_each_server_once_for_every_document(tmp_path: Path, marker: str) -> None:
    starts = tmp_path / "starts.txt"
    config = write_config(tmp_path, {"peer": peer(marker, starts)})
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(4):
        (docs / f"d{n}.txt").write_text(f"document {n}")
    plan = write_plan(
        tmp_path,
        {
            "inputs": {"path": {"type": "string"}},
            "steps": [{"id": "say", "tool": "peer.echo", "args": {"text": "{{input:path}}"}}],
            "output": "step:say",
        },
    )
    proc = cli("batch", str(plan), str(docs), "--input", "path", "--mcp-config", str(config), home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert sorted(line["output"] for line in lines) == [str(docs / f"d{n}.txt") for n in range(4)]
    assert len(starts.read_text().splitlines()) == 2  # one to list the tools, one for the whole batch
    assert no_orphans(marker)
