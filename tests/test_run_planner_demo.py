"""run_planner_demo.py end to end, as a user runs it (a subprocess), with a fake OpenAI server as the planner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.fake_llm import FakeLLMServer

REPO = Path(__file__).resolve().parents[1]
RECEIPT = REPO / "examples" / "receipts" / "cafe.txt"
REQUEST = "Process this receipt and categorize items"
PROVIDER_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "PLANNER_PROVIDER",
    "PLANNER_MODEL",
    "USE_SMALL_MODEL",
)


def receipt_plan() -> dict[str, Any]:
    """The shipped receipt plan, with its image an input the caller must give."""
    plan: dict[str, Any] = json.loads((REPO / "examples" / "example_plan_hybrid.json").read_text())
    plan["inputs"]["image_path"].pop("default", None)
    return plan


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key="sk-demo", default=json.dumps(receipt_plan(), indent=2), tokens_per_s=2000) as server:
        yield server


def demo(
    *args: str, tmp_path: Path, server: FakeLLMServer | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env["ORCHESTRATOR_HOME"] = str(tmp_path / "home")
    env["OLLAMA_API_URL"] = "http://127.0.0.1:9"  # nothing listens there
    if server is not None:
        env["OPENAI_API_KEY"] = "sk-demo"
        env["OPENAI_BASE_URL"] = server.openai_url
    return subprocess.run(
        [sys.executable, str(REPO / "run_planner_demo.py"), *args],
        cwd=tmp_path,  # no .env from the developer's checkout
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_receipt_request_is_planned_streamed_run_and_costed_and_a_repeat_makes_no_model_call(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    first = demo(REQUEST, "--input", f"image_path={RECEIPT}", tmp_path=tmp_path, server=fake)

    assert first.returncode == 0, first.stderr
    assert len(fake.requests) == 1 and fake.requests[0].stream
    assert "planner: openai gpt-4o (OPENAI_API_KEY is set)" in first.stderr
    assert "plan complete (5 steps;" in first.stderr
    assert "BLUE HERON CAFE" in first.stdout and "run succeeded" in first.stdout
    assert "ocr  receipt_ocr  [function]" in first.stdout  # the plan tree
    assert "planning: 1 call," in first.stdout and "cost: planner $0.0" in first.stdout
    assert "large-model calls: 1" in first.stdout

    second = demo(REQUEST.lower() + ".", "--input", f"image_path={RECEIPT}", tmp_path=tmp_path, server=fake)

    assert second.returncode == 0, second.stderr
    assert len(fake.requests) == 1  # served from the plan library
    assert "no model call" in second.stderr and "large-model calls: 0" in second.stdout
    assert "BLUE HERON CAFE" in second.stdout


def test_with_no_key_and_no_server_a_known_request_is_served_from_the_library(tmp_path: Path) -> None:
    proc = demo(REQUEST, "--input", f"image_path={RECEIPT}", tmp_path=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "planner: library" in proc.stderr and "no model call" in proc.stderr
    assert "BLUE HERON CAFE" in proc.stdout


def test_with_no_key_and_no_server_an_unknown_request_says_what_to_configure(tmp_path: Path) -> None:
    proc = demo("Translate this poem into French", tmp_path=tmp_path)

    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no stored plan serves 'Translate this poem into French'" in proc.stderr
    assert "OPENAI_API_KEY" in proc.stderr and "PLANNER_PROVIDER=ollama" in proc.stderr


def test_the_interactive_loop_plans_runs_and_keeps_a_history(fake: FakeLLMServer, tmp_path: Path) -> None:
    script = "\n".join(
        [
            f":input image_path={RECEIPT}",
            f":plan {REQUEST}",
            ":run",
            ":history",
            "Translate this poem into French",  # the fake plans receipts whatever it is asked: fine here
            ":nonsense",
            ":quit",
            "never read",
        ]
    )
    proc = demo(tmp_path=tmp_path, server=fake, stdin=script + "\n")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("run succeeded") == 2  # :run, then the second request
    assert f"  1  :plan {REQUEST}" in proc.stdout
    assert "unknown command :nonsense" in proc.stderr
    assert len(fake.requests) == 2
