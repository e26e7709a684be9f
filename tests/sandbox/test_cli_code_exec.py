"""code_exec as a user meets it: the orchestrator command in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.sandbox.launcher import SandboxConfig

from .conftest import REPO, sandbox_uid_processes


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data, indent=2))
    return str(path)


TOTALS = {
    "goal": "totals",
    "steps": [
        {"id": "prices", "tool": "code_exec", "args": {"code": "result = [1.25 * n for n in range(1, 5)]"}},
        {
            "id": "total",
            "tool": "code_exec",
            "args": {
                "code": "print('adding', len(p))\nresult = round(sum(p), 2)",
                "inputs": {"p": "step:prices.result"},
            },
        },
    ],
    "output": "step:total",
}


def test_run_json_gives_the_code_result_and_output(tmp_path: Path, bwrap_config: SandboxConfig) -> None:
    proc = cli("run", write(tmp_path, TOTALS), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["output"] == {"result": 12.5, "stdout": "adding 4\n", "stderr": "", "isolation": "bwrap"}
    assert result["steps"]["total"]["modes"] == ["code:bwrap"]
    assert sandbox_uid_processes(bwrap_config) == []


def test_validate_names_a_limit_above_the_maximum_and_its_setting(tmp_path: Path) -> None:
    data = {
        "goal": "x",
        "steps": [{"id": "big", "tool": "code_exec", "args": {"code": "result = 1", "limits": {"memory_mb": 4096}}}],
    }
    proc = cli("validate", write(tmp_path, data), env={"CODE_EXEC_MAX_LIMITS": "memory_mb=1024"})
    assert proc.returncode == 2
    assert "step 'big' args.limits" in proc.stderr
    assert "limits.memory_mb=4096 is above the operator's maximum 1024 (set by CODE_EXEC_MAX_LIMITS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_limits_setting_is_one_error_and_exit_2() -> None:
    proc = cli("tools", env={"CODE_EXEC_LIMITS": "timeout_s=999"})
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "error: CODE_EXEC_LIMITS: timeout_s=999 is above the operator's maximum 60 (CODE_EXEC_MAX_LIMITS)"
    )


def test_strict_isolation_without_bwrap_fails_the_run_with_the_remedy(tmp_path: Path) -> None:
    proc = cli(
        "run", write(tmp_path, TOTALS), env={"CODE_EXEC_ISOLATION": "strict", "CODE_EXEC_BWRAP": "/nonexistent/bwrap"}
    )
    assert proc.returncode == 1
    assert "CODE_EXEC_ISOLATION=strict: full isolation is not available" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_without_bwrap_the_run_works_and_says_isolation_is_reduced(tmp_path: Path) -> None:
    proc = cli("run", write(tmp_path, TOTALS), "--json", env={"CODE_EXEC_BWRAP": "/nonexistent/bwrap"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"]["isolation"] == "process"
    assert proc.stderr.count("REDUCED ISOLATION") == 1


def test_the_expense_policy_example_flags_items_with_code_exec(bwrap_config: SandboxConfig) -> None:
    proc = cli(
        "run", "examples/expense_policy_check.json", "--input", "image_path=examples/receipts/restaurant.txt", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    items = result["steps"]["categorize"]["output"]["items"]
    parse = result["steps"]["parse"]["output"]
    policy = result["steps"]["policy"]["output"]["result"]
    # the same policy, computed here independently
    limits = {"food": 15.0, "beverage": 8.0, "other": 15.0}
    flagged = [
        i["name"]
        for i in items
        if i["category"] in ("alcohol", "entertainment") or i["amount"] > limits.get(i["category"], 1e9)
    ]
    assert [f["item"] for f in policy["flags"]] == flagged and flagged
    rate = parse["tax"] / parse["subtotal"]
    over = sum(
        i["amount"] - limits[i["category"]]
        for i in items
        if i["amount"] > limits.get(i["category"], 1e9) and i["category"] in limits
    )
    refused = sum(i["amount"] for i in items if i["category"] == "alcohol")
    gross = sum(i["amount"] for i in items) * (1 + rate)
    assert abs(policy["reimbursable"] - (gross - (over + refused) * (1 + rate))) < 0.02
    assert result["steps"]["policy"]["modes"] == ["code:bwrap"]
    assert "reimbursable" in result["output"]


def test_bench_code_prints_latency_figures_as_json() -> None:
    proc = cli("bench", "code", "--repeats", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    kinds = {(r["isolation"], r["start"], r["snippet"]) for r in figures["rows"]}
    assert ("process", "cold", "list 10k") in kinds and ("process", "pooled", "trivial") in kinds
    assert all(r["p50_ms"] > 0 and r["p95_ms"] >= r["p50_ms"] for r in figures["rows"])
    assert figures["baseline"]["p50_ms"] > 0 and "met" in figures["target"]


def test_ctrl_c_during_a_code_step_leaves_nothing_running(tmp_path: Path, bwrap_config: SandboxConfig) -> None:
    data = {
        "goal": "slow",
        "steps": [
            {
                "id": "sleep",
                "tool": "code_exec",
                "args": {"code": "import time\ntime.sleep(60)", "limits": {"timeout_s": 60}},
            }
        ],
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", write(tmp_path, data)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not sandbox_uid_processes(bwrap_config) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        assert sandbox_uid_processes(bwrap_config), "the sandbox never started"
        time.sleep(0.3)  # the code is now sleeping inside the sandbox
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert sandbox_uid_processes(bwrap_config) == []
