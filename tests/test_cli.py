"""End-to-end: the `orchestrator` command and run_demo.py, run as a user runs them (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOOD = {
    "goal": "totals",
    "inputs": {"amount": {"type": "number"}},
    "steps": [
        {"id": "tax", "tool": "calculate_tax", "args": {"amount": "input:amount", "rate": 0.1}},
        {"id": "total", "tool": "calculate_totals", "args": {"items": ["step:tax.gross", 5]}},
        {"id": "report", "tool": "format_report", "args": {"text": "Total {{step:total.total}}"}},
    ],
    "output": "step:report",
}


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2) if not isinstance(data, str) else data)
    return path


def test_validate_accepts_a_good_plan_and_prints_its_shape(tmp_path: Path) -> None:
    proc = cli("validate", str(write(tmp_path, "p.json", GOOD)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "valid: 3 steps, critical path 3"


def test_validate_lists_every_problem_with_step_and_position_and_no_traceback(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(GOOD))
    bad["steps"][0]["tool"] = "calculate_taxes"
    bad["steps"][1]["args"]["items"] = ["step:tx.gross"]
    bad["steps"].append({"id": "report", "tool": "format_report"})
    proc = cli("validate", str(write(tmp_path, "bad.json", bad)))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "3 problems" in proc.stderr
    assert "step 'tax' tool: unknown tool 'calculate_taxes' (did you mean 'calculate_tax'" in proc.stderr
    assert "step 'total'" in proc.stderr and "unknown step 'tx'" in proc.stderr
    assert "step id 'report' is used more than once" in proc.stderr


def test_validate_reports_broken_json_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.json", '{"steps": [\n  {"id": "a" "tool": "x"}\n]}')
    proc = cli("validate", str(path))
    assert proc.returncode == 2 and f"{path}:2:14: invalid JSON" in proc.stderr


def test_run_json_prints_only_the_run_result(tmp_path: Path) -> None:
    proc = cli("run", str(write(tmp_path, "p.json", GOOD)), "--input", "amount=10", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "succeeded"
    assert result["output"] == "Total 16.0\n"
    assert result["steps"]["tax"]["output"]["gross"] == 11.0
    assert set(result["steps"]["total"]) >= {"status", "output", "error", "started_s", "duration_s", "attempts"}


def test_run_shows_progress_and_the_output_for_people(tmp_path: Path) -> None:
    proc = cli("run", str(write(tmp_path, "p.json", GOOD)), "-i", "amount=10")
    assert proc.returncode == 0, proc.stderr
    assert "run succeeded" in proc.stdout and "Total 16.0" in proc.stdout
    assert "calculate_tax" in proc.stderr  # the live step table


def test_a_missing_input_is_a_user_error_not_a_traceback(tmp_path: Path) -> None:
    proc = cli("run", str(write(tmp_path, "p.json", GOOD)))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: missing input 'amount'") and "Traceback" not in proc.stderr


def test_a_failing_step_exits_1_and_says_which_and_why(tmp_path: Path) -> None:
    plan = {
        "steps": [
            {"id": "t", "tool": "calculate_tax", "args": {"amount": 5, "rate": 3}},
            {"id": "after", "tool": "format_report", "args": {"text": "{{step:t.gross}}"}},
        ]
    }
    proc = cli("run", str(write(tmp_path, "p.json", plan)), "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["status"] == "partial"
    assert "rate must be a fraction" in result["steps"]["t"]["error"]
    assert result["steps"]["after"] == result["steps"]["after"] | {
        "status": "skipped",
        "error": "dependency 't' failed",
    }


def test_tools_json_is_the_catalog_with_schemas() -> None:
    proc = cli("tools", "--json")
    assert proc.returncode == 0
    catalog = {t["name"]: t for t in json.loads(proc.stdout)}
    assert catalog["calculate_tax"]["kind"] == "function"
    assert catalog["calculate_tax"]["input_schema"]["required"] == ["amount", "rate"]
    assert catalog["small_model"]["kind"] == "small_model"
    assert "properties" in catalog["line_item_parser"]["output_schema"] or catalog["line_item_parser"]["output_schema"]


def test_schema_prints_the_plan_json_schema() -> None:
    proc = cli("schema")
    schema = json.loads(proc.stdout)
    assert schema["title"] == "Plan" and "steps" in schema["required"]


@pytest.mark.slow
def test_bench_json_reports_every_dag_and_step_kind_and_the_real_plan_rows() -> None:
    proc = cli("bench", "--json", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    rows = figures["scheduler"]
    assert {(r["dag"], r["step"]) for r in rows} == {
        (d, s) for d in ("chain", "fanout", "layered") for s in ("noop", "sleep10ms")
    }
    for row in rows:
        assert row["makespan_s"] >= row["ideal_s"] > -1
        assert {"floor_makespan_s", "overhead_us_per_step", "floor_overhead_us_per_step", "met"} <= set(row)
    real = figures["real_plans"]
    assert [r["dag"] for r in real] == ["chain", "fanout", "layered"]
    for row in real:
        assert row["us_per_step"] > 0 and row["floor_us_per_step"] > 0 and row["validate_us_per_step"] > 0
        assert row["ratio"] == pytest.approx(row["us_per_step"] / row["floor_us_per_step"])
        assert row["met"] == (row["time_met"] and row["memory_met"])
        assert row["time_met"] == (row["ratio"] <= 2.0)
    assert figures["all_met"] == all(r["met"] for r in rows + real)


def test_unknown_command_is_a_usage_error() -> None:
    proc = cli("frobnicate")
    assert proc.returncode == 2 and "No such command" in proc.stderr


PLUGIN = '''
import asyncio
from pathlib import Path


def register_tools(registry):
    @registry.tool
    async def block_until_cancelled(marker: str) -> None:
        """Write the marker file, then wait until cancelled."""
        Path(marker).write_text("started")
        try:
            await asyncio.sleep(3600)
        finally:
            Path(marker + ".unwound").write_text("yes")
'''


def install_plugin(root: Path) -> None:
    """A tool plugin found through the `orchestrator.tools` entry-point group, as a user would install one."""
    (root / "blockplug").mkdir()
    (root / "blockplug" / "__init__.py").write_text(PLUGIN)
    meta = root / "blockplug-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: blockplug\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text("[orchestrator.tools]\nblockplug = blockplug\n")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_ctrl_c_cancels_running_steps_and_says_what_stopped(tmp_path: Path, json_flag: list[str]) -> None:
    import os
    import signal
    import time

    install_plugin(tmp_path)
    marker = tmp_path / "started"
    plan = write(
        tmp_path,
        "p.json",
        {
            "steps": [
                {"id": "b", "tool": "block_until_cancelled", "args": {"marker": str(marker)}},
                {"id": "after", "tool": "format_report", "args": {"text": "never"}, "depends_on": ["b"]},
            ]
        },
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", str(plan), *json_flag],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():  # wait for the step to be running, not for a fixed time
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted: 0 finished; 1 cancelled (b); 1 not started (after). Nothing is left running." in err
    assert "Traceback" not in err and out == ""
    assert (tmp_path / "started.unwound").exists()  # the tool's cleanup ran: it was cancelled, not abandoned


def test_tools_from_an_installed_plugin_are_listed(tmp_path: Path) -> None:
    import os

    install_plugin(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "tools", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(tmp_path)),
    )
    assert "block_until_cancelled" in {t["name"] for t in json.loads(proc.stdout)}
