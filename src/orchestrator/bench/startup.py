"""Start-up time of the command line, as ratios to ``python -c "import pydantic, rich, typer"`` in the same run.

Each round runs the baseline and every command once, as fresh processes, in turn; the figures are medians
over the rounds (not the best round), and each command's ratio is the median of its per-round ratios to the
baseline, so a noisy machine slows both sides of a ratio alike. Every command must exit as it should (0);
a command that fails is an error, never a figure.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from orchestrator.errors import RunError

__all__ = ["BASELINE", "TARGET_RATIO", "StartupReport", "StartupRow", "measure_startup"]

BASELINE: tuple[str, ...] = ("-c", "import pydantic, rich, typer")
"""What the commands are compared with: importing the three libraries the CLI is built on."""

FLOOR: tuple[str, ...] = (
    "-c",
    "import rich.console, typer.main\nfrom pydantic import BaseModel\nclass P(BaseModel):\n    x: int\nP(x=1)",
)
"""For reading the figures, no target: what any pydantic-validating typer command pays before its own code
(pydantic builds its first model, typer its command, rich a console)."""

TARGET_RATIO = 3.0
"""Each command should start within this many times the baseline."""

TIMEOUT_S = 120.0
"""Per process: a command that takes longer is an error (a hang, not a slow start)."""

# A small plan of the built-in tools (the headline receipt pipeline), written to a temporary file.
_PLAN = {
    "goal": "Process this receipt and categorize items",
    "inputs": {"image_path": {"type": "string"}},
    "steps": [
        {"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "input:image_path"}},
        {"id": "parse", "tool": "line_item_parser", "args": {"text": "step:ocr.text"}},
        {"id": "categorize", "tool": "expense_categorizer", "args": {"items": "step:parse.items"}},
        {"id": "totals", "tool": "calculate_totals", "args": {"items": "step:categorize.items"}},
        {"id": "report", "tool": "format_report", "args": {"text": "Spent {{step:totals.total}}"}},
    ],
    "output": "step:report",
}


class StartupRow(BaseModel):
    """One command: its median wall time, the median of its ratios to the baseline, and the target."""

    command: str
    median_s: float
    ratio: float
    cpu_ratio: float
    """The median of its CPU-time ratios (user + system of the process) to the baseline's: less moved by a
    busy machine than wall time. For reading; the target is on :attr:`ratio`."""
    target: float = TARGET_RATIO
    met: bool


class StartupReport(BaseModel):
    """The baseline's median, and one row per command."""

    baseline: str
    baseline_median_s: float
    floor_ratio: float
    """The median ratio of :data:`FLOOR` to the baseline (no target)."""
    rounds: int
    rows: list[StartupRow]


def _timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise RunError(f"bench startup: {' '.join(argv[1:])} did not finish within {TIMEOUT_S:.0f} s") from None
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RunError(f"bench startup: {' '.join(argv[1:])} exited {proc.returncode}: {last}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def measure_startup(rounds: int = 7, *, python: str | None = None) -> StartupReport:
    """Time ``--help``, ``validate PLAN`` and ``tools`` against the baseline, `rounds` times each, interleaved.

    Raises:
        RunError: a command failed or hung.
    """
    python = python or sys.executable
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="orchestrator-startup-") as tmp:
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps(_PLAN), encoding="utf-8")
        commands = {
            "orchestrator --help": ["--help"],
            "orchestrator validate PLAN": ["validate", str(plan)],
            "orchestrator tools": ["tools"],
        }
        base = [python, *BASELINE]
        floor_argv = [python, *FLOOR]
        _timed(base, env)  # warm the file cache (and the bytecode cache) once, for everyone alike
        _timed(floor_argv, env)
        for args in commands.values():
            _timed([python, "-m", "orchestrator", *args], env)
        baseline: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in commands}
        ratios: dict[str, list[float]] = {name: [] for name in commands}
        cpu_ratios: dict[str, list[float]] = {name: [] for name in commands}
        floor: list[float] = []
        for _ in range(rounds):
            b, b_cpu = _timed(base, env)
            baseline.append(b)
            floor.append(_timed(floor_argv, env)[0] / b)
            for name, args in commands.items():
                t, cpu = _timed([python, "-m", "orchestrator", *args], env)
                times[name].append(t)
                ratios[name].append(t / b)
                cpu_ratios[name].append(cpu / b_cpu if b_cpu > 0 else 0.0)
    rows = []
    for name in commands:
        ratio = round(statistics.median(ratios[name]), 2)  # judged as printed: 3.004 is "3.0", and met
        rows.append(
            StartupRow(
                command=name,
                median_s=round(statistics.median(times[name]), 4),
                ratio=ratio,
                cpu_ratio=round(statistics.median(cpu_ratios[name]), 2),
                met=ratio <= TARGET_RATIO,
            )
        )
    return StartupReport(
        baseline='python -c "import pydantic, rich, typer"',
        baseline_median_s=round(statistics.median(baseline), 4),
        floor_ratio=round(statistics.median(floor), 2),
        rounds=rounds,
        rows=rows,
    )
