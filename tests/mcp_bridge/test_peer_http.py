"""Streamable HTTP against a third-party server: ``mcp-proxy`` (PyPI) serving ``mcp-server-time`` (PyPI) over
streamable HTTP on 127.0.0.1, called from a plan beside local tools.

mcp-proxy is built on the MCP SDK 1.x while we use 2.x, so ``make install`` puts it in a venv of its own,
``.venv/peers`` (as a user would install a server with pipx or uvx); the test is skipped without it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import BIN, write_config

REPO = Path(__file__).resolve().parents[2]
PROXY = BIN.parent / "peers" / "bin" / "mcp-proxy"


@pytest.fixture
def time_over_http() -> Iterator[str]:
    """``mcp-proxy --port 0 -- mcp-server-time`` in its own process group; yields its streamable HTTP URL."""
    if not PROXY.exists():
        pytest.skip(f"mcp-proxy is not installed in {PROXY.parent.parent} (make install puts it there)")
    command = [str(PROXY), "--host", "127.0.0.1", "--port", "0", "--", str(BIN / "mcp-server-time")]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [*command, "--local-timezone", "UTC"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            found = None
            deadline = time.monotonic() + 60
            while found is None and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
                log.seek(0)
                found = re.search(rb"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read())
            log.seek(0)
            assert found is not None, f"mcp-proxy did not start: {log.read()[-2000:].decode(errors='replace')}"
            yield found.group(1).decode() + "/mcp"
        finally:
            for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # mcp-server-time, should it outlive the proxy
            except ProcessLookupError:
                pass


def test_a_plan_calls_a_third_party_server_over_streamable_http_beside_local_tools(
    tmp_path: Path, time_over_http: str
) -> None:
    config = write_config(tmp_path, {"clock": {"url": time_over_http, "timeout_s": 30}})
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "goal": "when, and the tax on 100",
                "steps": [
                    {"id": "now", "tool": "clock.get_current_time", "args": {"timezone": "Asia/Tokyo"}},
                    {"id": "tax", "tool": "calculate_tax", "args": {"amount": 100, "rate": 0.2}},
                    {
                        "id": "note",
                        "tool": "format_report",
                        "args": {"text": "{{step:now.timezone}} {{step:now.day_of_week}}: tax {{step:tax.tax}}"},
                    },
                ],
                "output": "step:note",
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ORCHESTRATOR_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "orchestrator", *args, "--mcp-config", str(config)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)

    valid = cli("validate", str(plan))
    assert valid.returncode == 0 and valid.stdout.startswith("valid: 3 steps"), valid.stderr
    bad = plan.with_name("bad.json")
    bad.write_text(plan.read_text().replace('"Asia/Tokyo"', "7"))
    refused = cli("validate", str(bad))  # checked against the server's own input schema, before anything runs
    assert refused.returncode == 2 and "now" in refused.stdout + refused.stderr
    proc = cli("run", str(plan), "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout)
    day = result["steps"]["now"]["output"]["day_of_week"]
    assert result["output"] == f"Asia/Tokyo {day}: tax 20.0\n"
    assert result["steps"]["now"]["kind"] == "mcp" and result["steps"]["now"]["modes"] == ["mcp:clock"]
    assert result["steps"]["tax"]["kind"] != "mcp"
