"""WORKERS_TRANSPORT=mcp: the built-in workers run out of process behind `orchestrator mcp serve`, with the
same plans and the same results as in process (over stdio, and over HTTP with WORKERS_MCP_URL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.executor import prepare_inputs, run_compiled
from orchestrator.plan.validate import load_plan
from orchestrator.registry import ToolRegistry
from orchestrator.run_scope import run_scope
from orchestrator.settings import use_settings
from orchestrator.toolbox import default_registry

from .test_server import http_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
# The example plans, on the text files beside their images (the OCR back-ends are compared elsewhere).
EXAMPLES = {
    "example_plan_hybrid.json": {"image_path": "examples/receipts/grocery.txt"},
    "feedback_analysis.json": {},
    "invoices_duplicates.json": {"folder": "examples/invoices/*.txt"},
    "research_methods.json": {},
}


def comparable(result: Any) -> dict[str, Any]:
    """What a run produced, without timings and run ids."""
    return {
        "status": result.status,
        "output": result.output,
        "steps": {
            sid: (rec.status, rec.output, rec.modes, rec.counts, rec.error, rec.kind, rec.usage)
            for sid, rec in result.steps.items()
        },
    }


async def run_examples(registry: ToolRegistry) -> dict[str, Any]:
    results = {}
    async with run_scope():  # one run for all plans: the workers' server is started once
        for name, inputs in EXAMPLES.items():
            compiled = load_plan(REPO / "examples" / name, registry)
            result, _ = await run_compiled(compiled, prepare_inputs(compiled.plan.inputs, inputs))
            results[name] = comparable(result)
    return results


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the example plans' inputs are relative to the repository


async def test_the_example_plans_give_the_same_results_in_process_and_through_mcp_workers(in_repo: None) -> None:
    local = default_registry()
    # The built-in workers move out of process; code_exec stays here (it is its own sandboxed process already).
    assert all(type(tool).__name__ == "FunctionTool" for tool in local if tool.spec.name != "code_exec")
    with use_settings(workers_transport="mcp"):
        remote = default_registry()
    assert {type(tool).__name__ for tool in remote if tool.spec.name != "code_exec"} == {"McpTool"}
    assert type(remote.get("code_exec")) is type(local.get("code_exec"))
    assert [t.spec for t in local] == [t.spec for t in remote]  # the planner sees the same catalog
    expected = await run_examples(local)
    assert all(r["status"] == "succeeded" for r in expected.values())
    with use_settings(workers_transport="mcp"):
        got = await run_examples(remote)
    assert got == expected


async def test_workers_on_another_host_are_reached_over_http_with_the_token(
    in_repo: None,
    http_server: tuple[str, str],  # noqa: F811 - the fixture
) -> None:
    url, token = http_server
    plan = "example_plan_hybrid.json"
    local = default_registry()
    compiled = load_plan(REPO / "examples" / plan, local)
    inputs = prepare_inputs(compiled.plan.inputs, EXAMPLES[plan])
    expected = comparable((await run_compiled(compiled, inputs))[0])
    with use_settings(workers_transport="mcp", workers_mcp_url=url, orchestrator_mcp_token=token):
        remote = default_registry()
        result, _ = await run_compiled(load_plan(REPO / "examples" / plan, remote), inputs)
    assert comparable(result) == expected
    with use_settings(workers_transport="mcp", workers_mcp_url=url, orchestrator_mcp_token="wrong"):
        denied, _ = await run_compiled(load_plan(REPO / "examples" / plan, default_registry()), inputs)
    assert denied.steps["ocr"].status == "failed"
    assert "mcp server 'workers'" in (denied.steps["ocr"].error or "")


_TIMES = re.compile(r"\d+\.\d+s\b")


@pytest.mark.slow
def test_run_demo_prints_the_same_both_ways() -> None:
    """`python run_demo.py` (OCR on the images included) in process and with WORKERS_TRANSPORT=mcp."""

    def demo(**env: str) -> str:
        proc = subprocess.run(
            [sys.executable, "run_demo.py"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env},
        )
        assert proc.returncode == 0, proc.stderr
        return _TIMES.sub("#s", proc.stdout)

    assert demo(WORKERS_TRANSPORT="mcp") == demo(WORKERS_TRANSPORT="local")


def test_the_cli_json_results_match_both_ways(tmp_path: Path) -> None:
    def run(transport: str) -> dict[str, Any]:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "run",
                "examples/invoices_duplicates.json",
                "--json",
                "-i",
                "folder=examples/invoices/*.txt",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO / "src"),
                "WORKERS_TRANSPORT": transport,
                "ORCHESTRATOR_HOME": str(tmp_path / transport),
            },
        )
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        return {
            "output": data["output"],
            "steps": {k: (v["status"], v["output"], v["modes"]) for k, v in data["steps"].items()},
        }

    assert run("mcp") == run("local")
