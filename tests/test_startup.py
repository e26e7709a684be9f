"""Start-up: the commands a user runs many times a day import no heavy module (time is not asserted here;
``orchestrator bench startup`` measures it as ratios)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"

HEAVY = (
    "httpx",
    "httpcore",
    "openai",
    "anthropic",
    "torch",
    "numpy",
    "transformers",
    "sentence_transformers",
    "onnxruntime",
    "rapidocr_onnxruntime",
    "pytesseract",
    "PIL",
    "pypdfium2",
    "lmformatenforcer",
    "mcp",
    "asyncio",
    "orchestrator.providers.ollama",
    "orchestrator.providers.openai",
    "orchestrator.providers.anthropic",
    "orchestrator.small_model_worker.worker",
    "orchestrator.small_model_worker.backends",
    "orchestrator.planner",
    "orchestrator.executor",
    "orchestrator.embeddings",
    "orchestrator.rules.receipt",
    "orchestrator.rules.categories",
)
"""Modules `validate`, `tools` and `--help` must not load: model providers and SDKs, torch, OCR engines,
HTTP clients, the event loop, and the parts of orchestrator that only running a plan needs."""


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


_RUNNER = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["orchestrator", *sys.argv[2:]]
try:
    runpy.run_module("orchestrator", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def imported_by(*args: str, tmp: Path | None = None) -> set[str]:
    """The modules `orchestrator ARGS` has loaded when it exits: ``python -m orchestrator`` as users run it,
    with ``sys.modules`` read at exit (``-X importtime`` would miss modules loaded by ``importlib``)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "modules.json"
        proc = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(out), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads(out.read_text())
    assert report["code"] in (0, None), proc.stderr[-2000:]
    names = set(report["modules"])
    assert "orchestrator.cli" in names  # the runner ran the CLI
    return names


def heavy_in(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY))


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_text((REPO / "examples" / "example_plan_hybrid.json").read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_validate_imports_no_heavy_module(plan: Path) -> None:
    names = imported_by("validate", str(plan))
    assert heavy_in(names) == []
    assert "orchestrator.plan.validate" in names and "orchestrator.workers.receipts.tools" in names


def test_tools_and_help_import_no_heavy_module() -> None:
    assert heavy_in(imported_by("tools")) == []
    help_names = imported_by("--help")
    assert heavy_in(help_names) == []
    assert "orchestrator.toolbox" not in help_names and "orchestrator.plan.validate" not in help_names


def test_the_heavy_check_sees_a_heavy_import() -> None:
    # `run` needs the executor and the event loop: the check must notice them there.
    proc_names = imported_by("schema")
    assert "orchestrator.plan.model" in proc_names
    assert heavy_in({"httpx._client", "orchestrator.executor.engine", "json"}) == [
        "httpx._client",
        "orchestrator.executor.engine",
    ]


def test_bench_startup_reports_medians_and_ratios_for_each_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "bench", "startup", "--rounds", "1", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["rounds"] == 1 and report["baseline_median_s"] > 0 and report["floor_ratio"] > 0
    assert [row["command"] for row in report["rows"]] == [
        "orchestrator --help",
        "orchestrator validate PLAN",
        "orchestrator tools",
    ]
    for row in report["rows"]:
        assert row["median_s"] > 0 and row["ratio"] > 0 and row["cpu_ratio"] > 0 and row["target"] == 3.0
        assert row["met"] == (row["ratio"] <= 3.0)


def test_a_command_loads_only_its_own_command_module(plan: Path) -> None:
    names = imported_by("validate", str(plan))
    assert not any(n.startswith("orchestrator.commands.") and n != "orchestrator.commands._common" for n in names)
    assert "orchestrator.commands.bench" in imported_by("bench", "--help")


@pytest.mark.parametrize(
    ("argv", "commands"),
    [
        (["validate", "p.json"], []),
        (["tools", "--json"], []),
        (["plan", "x"], ["plan"]),
        (["bench", "startup"], ["bench"]),
        (["eval", "receipts", "d"], ["eval"]),
        (["--help"], None),
        ([], None),
        (["nonsense"], None),
        (["--help", "validate"], None),
    ],
)
def test_which_command_modules_main_loads(argv: list[str], commands: list[str] | None) -> None:
    from orchestrator.cli import _commands_for

    assert _commands_for(argv) == commands


def test_the_overview_help_still_lists_every_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "validate", "tools", "schema", "plan", "ask", "batch", "bench", "fake-model", "eval"):
        assert f" {command} " in proc.stdout, command
