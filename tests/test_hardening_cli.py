"""End-to-end, as a user runs it (a subprocess): bad settings and input files are exit 2 with one line before
anything runs; confined file access; long output cut; batch input names; and hostile planner answers
through `orchestrator plan` / `orchestrator ask` against a fake provider server speaking OpenAI's API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.fake_llm import FakeLLMServer, Reply

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-test-key"
PROVIDER_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "PLANNER_PROVIDER",
    "PLANNER_MODEL",
    "OCR_BACKEND",
    "SMALL_MODEL_BACKEND",
    "USE_SMALL_MODEL",
    "FILE_ACCESS",
    "ALLOWED_PATHS",
)


def cli(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), environment.get("PYTHONPATH", "")])
    environment["OLLAMA_API_URL"] = "http://127.0.0.1:9"
    if home is not None:
        environment["ORCHESTRATOR_HOME"] = str(home)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


EXAMPLE = str(REPO / "examples" / "example_plan_hybrid.json")


# -- settings and input files: exit 2, one line, before anything runs --------------------------------


@pytest.mark.parametrize(
    ("variable", "value"), [("OCR_BACKEND", "nonsense"), ("SMALL_MODEL_BACKEND", "nonsense"), ("FILE_ACCESS", "open")]
)
def test_an_unknown_setting_is_exit_2_with_one_line(variable: str, value: str, tmp_path: Path) -> None:
    proc = cli(
        "run",
        EXAMPLE,
        "--input",
        f"image_path={REPO}/examples/receipts/cafe.txt",
        env={variable: value, "USE_SMALL_MODEL": "true"},
        home=tmp_path,
    )
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert variable in line and value in line and proc.stdout == ""


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [("missing.png", None, "no such file"), ("broken.png", "not an image", "not a readable image")],
)
def test_a_missing_or_corrupt_input_file_is_exit_2_before_any_step_runs(
    tmp_path: Path, name: str, content: str | None, why: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    proc = cli("run", EXAMPLE, "--input", f"image_path={path}", home=tmp_path / "home")
    assert proc.returncode == 2
    assert one_line(proc.stderr) == f"error: --input image_path={path}: {why}" or why in one_line(proc.stderr)
    assert "ocr" not in proc.stderr  # no step table: nothing ran


def test_batch_checks_its_input_name_before_drawing_a_progress_bar(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.txt", "TOTAL 3.50")
    proc = cli("batch", EXAMPLE, str(tmp_path / "docs"), "--input", "image", home=tmp_path / "home")
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "--input image: the plan has no input of that name (declared: image_path)" in line


# -- file access --------------------------------------------------------------------------------------


def test_a_plan_reading_outside_the_allowed_folders_fails_that_step_and_leaks_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    write(tmp_path / "secret" / "key.txt", "PRIVATE KEY MATERIAL")
    plan = write(
        work / "plan.json",
        {
            "steps": [{"id": "read", "tool": "load_documents", "args": {"source": "../secret/key.txt"}}],
            "output": "step:read",
        },
    )
    proc = cli("run", str(plan), "--json", cwd=work, home=tmp_path / "home")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["status"] == "failed"
    assert "leaves the allowed folders through '..'" in result["steps"]["read"]["error"]
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr

    allowed = cli(
        "run", str(plan), "--json", cwd=work, env={"ALLOWED_PATHS": str(tmp_path / "secret")}, home=tmp_path / "home"
    )
    assert allowed.returncode == 0 and "PRIVATE KEY" in allowed.stdout


def test_a_plans_relative_default_resolves_against_the_plans_folder_from_any_working_directory(
    tmp_path: Path,
) -> None:
    write(tmp_path / "plans" / "data" / "r.txt", "CORNER CAFE\nLatte 3.50\nTOTAL 3.50\n")
    plan = write(
        tmp_path / "plans" / "p.json",
        {
            "inputs": {"path": {"type": "string", "default": "data/r.txt"}},
            "steps": [{"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "input:path"}}],
            "output": "step:ocr.text",
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli("run", str(plan), "--json", cwd=elsewhere, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert "Latte 3.50" in json.loads(proc.stdout)["output"]


def test_a_very_long_output_is_cut_in_the_terminal_with_a_note_saying_where_all_of_it_is(tmp_path: Path) -> None:
    text = "".join(f"line {i} " + "x" * 60 + "\n" for i in range(2_000))
    write(tmp_path / "big.txt", text)
    plan = write(
        tmp_path / "p.json",
        {
            "inputs": {"p": {"type": "string"}},
            "steps": [{"id": "read", "tool": "load_documents", "args": {"source": "input:p"}}],
            "output": "step:read[0].text",
        },
    )
    proc = cli("run", str(plan), "--input", f"p={tmp_path / 'big.txt'}", cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert "line 5 " in proc.stdout and "line 1999 " not in proc.stdout
    assert "output cut:" in proc.stdout and "see all of it with --json, or --out FILE" in proc.stdout

    out = tmp_path / "result.json"
    saved = cli(
        "run",
        str(plan),
        "--input",
        f"p={tmp_path / 'big.txt'}",
        "--out",
        str(out),
        cwd=tmp_path,
        home=tmp_path / "home",
    )
    assert f"all of it is in {out}" in saved.stdout
    assert json.loads(out.read_text())["output"] == text


def test_a_file_over_max_document_bytes_named_on_the_command_line_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "r.txt", "TOTAL 3.50\n" * 1_000)
    proc = cli(
        "run", EXAMPLE, "--input", f"image_path={tmp_path / 'r.txt'}", env={"MAX_DOCUMENT_BYTES": "1000"}, home=tmp_path
    )
    assert proc.returncode == 2
    assert "11.0 kB is over the 1.0 kB limit (MAX_DOCUMENT_BYTES)" in one_line(proc.stderr)


# -- hostile planner answers through the CLI -----------------------------------------------------------

PARSE_PLAN: dict[str, Any] = {
    "goal": "parse the receipt text",
    "inputs": {"text": {"type": "string"}},
    "steps": [{"id": "parse", "tool": "line_item_parser", "args": {"text": "input:text"}}],
    "output": "step:parse.total",
}
RECEIPT = "CORNER CAFE\nLatte 3.50\nTOTAL 3.50"


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


def planner_env(fake: FakeLLMServer) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.openai_url, "PLANNER_PROVIDER": "openai"}


def test_plan_two_refusals_exit_1_saying_the_model_declined(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.enqueue("I'm sorry, but I can't help with that.", "I must decline this request.")
    proc = cli(
        "plan", "parse the receipt text", "--input", "text=x", "--no-reuse", env=planner_env(fake), home=tmp_path
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert "declined to plan this request" in proc.stderr and "Traceback" not in proc.stderr
    assert len(fake.requests) == 2


def test_plan_two_objects_are_fed_back_then_the_repaired_plan_is_written(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.enqueue(f"{json.dumps(PARSE_PLAN)}\n{json.dumps(PARSE_PLAN)}", PARSE_PLAN)
    proc = cli(
        "plan", "parse the receipt text", "--input", "text=x", "--no-reuse", env=planner_env(fake), home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["steps"][0]["tool"] == "line_item_parser"
    assert "2 separate JSON objects" in fake.requests[1].last_user_text


def test_ask_reads_a_plan_behind_a_think_block_after_a_truncated_answer(fake: FakeLLMServer, tmp_path: Path) -> None:
    text = json.dumps(PARSE_PLAN)
    fake.enqueue(
        Reply("<think>the user wants</think>" + text[:40], finish_reason="length"), "<think>{x}</think>" + text
    )
    proc = cli(
        "ask",
        "parse the receipt text",
        "--input",
        f"text={RECEIPT}",
        "--json",
        "--no-reuse",
        env=planner_env(fake),
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["result"]["status"] == "succeeded" and payload["result"]["output"] == 3.5
    assert payload["planning"]["attempts"] == 2
    assert "cut off at the output limit" in fake.requests[1].last_user_text


@pytest.mark.parametrize("source", ["../../../../../../etc/passwd", "/etc"])
def test_ask_with_a_model_written_plan_reading_system_files_reads_nothing(
    fake: FakeLLMServer, tmp_path: Path, source: str
) -> None:
    tool = "list_files" if source == "/etc" else "load_documents"
    hostile = {
        "goal": "read it",
        "inputs": {"text": {"type": "string"}, "where": {"type": "string", "default": source}},
        "steps": [{"id": "read", "tool": tool, "args": {"source": "input:where"}}],
        "output": "step:read",
    }
    fake.enqueue(hostile, hostile, hostile)  # the plan, and the same again when asked to replan
    proc = cli(
        "ask",
        "read it",
        "--input",
        "text=x",
        "--json",
        "--no-reuse",
        env=planner_env(fake),
        home=tmp_path,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["result"]["steps"]["read"]["status"] == "failed"
    assert "allowed folders" in payload["result"]["steps"]["read"]["error"]
    assert "root:" not in proc.stdout and "passwd" not in json.dumps(payload["result"]["output"])


def test_ask_checks_a_named_document_before_any_model_call(fake: FakeLLMServer, tmp_path: Path) -> None:
    missing = tmp_path / "receipt.png"
    proc = cli("ask", "read this receipt", "--input", f"image_path={missing}", env=planner_env(fake), home=tmp_path)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == f"error: --input image_path={missing}: no such file"
    assert fake.requests == []


def test_a_small_model_that_cannot_be_set_up_is_said_once_and_the_keywords_answer(tmp_path: Path) -> None:
    proc = cli(
        "run",
        EXAMPLE,
        "--input",
        f"image_path={REPO}/examples/receipts/cafe.txt",
        env={"USE_SMALL_MODEL": "true", "SMALL_MODEL_BACKEND": "azure"},
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    mentions = [line for line in proc.stderr.splitlines() if "AZURE_AI_ENDPOINT" in line]
    assert len(mentions) == 1 and "keyword rules answer" in mentions[0]
