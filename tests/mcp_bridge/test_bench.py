"""`orchestrator bench mcp --json`: the figures are there and sane (no wall-time threshold: the machine is shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_mcp_reports_overhead_and_rates_per_transport(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "bench", "mcp", "--calls", "20", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "ORCHESTRATOR_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    rows = {row["transport"]: row for row in figures["rows"]}
    assert set(rows) == {"in-process", "stdio", "http"}
    for name in ("stdio", "http"):
        row = rows[name]
        assert row["per_call_ms"] > rows["in-process"]["per_call_ms"] > 0
        assert row["cpu_ms"] > 0 and set(row["calls_per_s"]) == {"1", "8", "32"}
        assert all(rate > 0 for rate in row["calls_per_s"].values())


def test_bench_mcp_rejects_an_unknown_transport() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "bench", "mcp", "--transports", "pigeon"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 2 and "unknown pigeon" in proc.stderr and "Traceback" not in proc.stderr
