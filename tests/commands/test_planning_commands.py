"""`orchestrator plan` and `orchestrator ask`, through cli.main as the console script runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli
from orchestrator.commands.planning import parse_context
from orchestrator.errors import InputError
from orchestrator.settings import Settings, use_settings
from orchestrator.testing.fake_llm import FakeLLMServer

KEY = "sk-test-key"
REQUEST = "Add 10% tax to the amount and report the gross"
PLAN: dict[str, Any] = {
    "goal": "tax",
    "inputs": {"amount": {"type": "number"}},
    "steps": [
        {"id": "tax", "tool": "calculate_tax", "args": {"amount": "input:amount", "rate": 0.1}},
        {"id": "report", "tool": "format_report", "args": {"text": "Gross {{step:tax.gross}}"}},
    ],
    "output": "step:report",
}


@pytest.fixture(autouse=True, scope="module")
def commands_registered() -> None:
    if not {"plan", "ask"} <= {command.name for command in cli.app.registered_commands}:
        cli.register_commands(["plan", "ask"])


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY, default=PLAN) as server:
        yield server


@pytest.fixture
def openai_settings(fake: FakeLLMServer, tmp_path: Path) -> Iterator[Settings]:
    pinned = Settings(
        orchestrator_home=tmp_path / "home",
        openai_api_key=KEY,
        openai_base_url=fake.openai_url,
        ollama_api_url="http://127.0.0.1:9",
    )
    with use_settings(pinned):
        yield pinned


@pytest.fixture
def offline_settings(tmp_path: Path) -> Iterator[Settings]:
    with use_settings(Settings(orchestrator_home=tmp_path / "home", ollama_api_url="http://127.0.0.1:9")) as pinned:
        yield pinned


@pytest.mark.usefixtures("openai_settings")
def test_plan_writes_a_validated_plan_and_says_which_planner_and_what_it_cost(
    fake: FakeLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"

    code = cli.main(["plan", REQUEST, "--input", "amount=100", "--out", str(out), "--no-reuse"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(out.read_text())["steps"][0]["tool"] == "calculate_tax"
    assert "planner: openai gpt-4o (OPENAI_API_KEY is set)" in captured.err
    assert "valid: 2 steps, critical path 2; planning: 1 call," in captured.err
    assert captured.out == "" and len(fake.requests) == 1


@pytest.mark.usefixtures("openai_settings")
def test_plan_prints_only_the_plan_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", REQUEST, "-i", "amount=100", "--provider", "openai", "--no-reuse"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == "step:report"


@pytest.mark.usefixtures("openai_settings")
def test_ask_json_prints_the_plan_the_run_result_and_the_planning_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["ask", REQUEST, "--input", "amount=100", "--json", "--no-reuse"])

    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert payload["result"]["status"] == "succeeded" and "Gross 110" in payload["result"]["output"]
    assert payload["planning"]["usage"]["calls"] == 1 and payload["planning"]["usage"]["cost_usd"] > 0
    assert payload["result"]["usage"]["cost_usd"] == pytest.approx(payload["planning"]["usage"]["cost_usd"])
    assert payload["plan"]["steps"][1]["id"] == "report"


@pytest.mark.usefixtures("openai_settings")
def test_ask_shows_progress_results_and_cost(fake: FakeLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["ask", REQUEST, "--input", "amount=100"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "run succeeded" in captured.out and "Gross 110" in captured.out
    assert "planning: 1 call," in captured.out
    assert "calculate_tax" in captured.err and "planner: openai gpt-4o" in captured.err


@pytest.mark.usefixtures("openai_settings")
def test_a_planner_that_keeps_failing_is_a_message_and_exit_code_1(
    fake: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.default = {"steps": [{"id": "x", "tool": "no_such_tool"}]}

    code = cli.main(["plan", REQUEST, "--input", "amount=1", "--no-reuse"])

    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "failed: the planner gave no valid plan in 3 attempts" in err and "unknown tool 'no_such_tool'" in err


@pytest.mark.usefixtures("offline_settings")
def test_with_nothing_configured_an_unknown_request_is_a_user_error_saying_what_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["ask", "Write a sonnet about invoices"])

    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "error: no stored plan serves" in err and "OPENAI_API_KEY" in err and "PLANNER_PROVIDER=ollama" in err


@pytest.mark.usefixtures("offline_settings")
def test_a_malformed_input_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", REQUEST, "--input", "amount"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_inputs_are_json_values_when_they_parse_and_text_otherwise() -> None:
    assert parse_context(["n=5", "rate=0.1", "ok=true", "tags=[1,2]", "path=a b.txt", "id=007", 's="x"']) == {
        "n": 5,
        "rate": 0.1,
        "ok": True,
        "tags": [1, 2],
        "path": "a b.txt",
        "id": "007",
        "s": '"x"',
    }
    with pytest.raises(InputError):
        parse_context(["=1"])
