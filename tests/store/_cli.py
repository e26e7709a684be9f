"""Helpers for the store's end-to-end tests: the `orchestrator` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SROIE = REPO.parent / "shared" / "data" / "receipts" / "sroie"
PLAN = REPO / "examples" / "example_plan_hybrid.json"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment with no provider keys or small-model switches, plus `extra` (ORCHESTRATOR_HOME is the
    test's private one, set by the autouse fixture)."""
    drop = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PLANNER_PROVIDER", "AZURE_OPENAI_API_KEY", "USE_SMALL_MODEL",
            "SMALL_MODEL_BACKEND", "OLLAMA_API_URL"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"OLLAMA_API_URL": "http://127.0.0.1:9", "COLUMNS": "200", **extra})
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True, text=True, timeout=timeout, env=env or clean_env(), cwd=REPO,
    )  # fmt: skip


def cli_json(*args: str, env: dict[str, str] | None = None) -> Any:
    proc = cli(*args, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def receipts(folder: Path, n: int) -> Path:
    """`n` receipt text files (the SROIE texts, cycled, each under its own name) in `folder`."""
    texts = sorted(SROIE.glob("*.txt"))
    if not texts:
        pytest.skip(f"no SROIE receipts in {SROIE}")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"r{i:04d}.txt").write_text(texts[i % len(texts)].read_text(encoding="utf-8"), encoding="utf-8")
    return folder
