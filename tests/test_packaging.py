"""The built wheel carries what the package reads at run time (prompts, keyword data, seed plans)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_builds_and_carries_its_data_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [wheel] = tmp_path.glob("orchestrator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "orchestrator/py.typed",
        "orchestrator/rules/data/language.json",
        "orchestrator/rules/data/categories.json",
        "orchestrator/rules/data/receipt_lexicon.json",
        "orchestrator/planner/prompts/system.md",
        "orchestrator/planner/seeds/example_plan_hybrid.json",
    ):
        assert needed in names, f"{needed} is missing from the wheel"
