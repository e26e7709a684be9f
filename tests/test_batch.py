from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.batch import find_documents, resume_set, run_batch
from orchestrator.errors import InputError, ToolError
from orchestrator.plan import validate_plan
from orchestrator.registry import ToolRegistry

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]


def registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool
    def read(path: str) -> str:
        """Read a file, refusing ones named bad*."""
        if Path(path).name.startswith("bad"):
            raise ToolError(f"{path}: unreadable")
        return Path(path).read_text()

    @reg.tool
    def shout(text: str) -> str:
        """Upper-case."""
        return text.upper()

    return reg


PLAN = {
    "inputs": {"path": {"type": "string"}},
    "steps": [
        {"id": "read", "tool": "read", "args": {"path": "input:path"}},
        {"id": "up", "tool": "shout", "args": {"text": "step:read"}},
    ],
    "output": "step:up",
}


def docs(tmp_path: Path) -> list[Path]:
    paths = []
    for name in ("a.txt", "bad.txt", "c.txt"):
        p = tmp_path / name
        p.write_text(name)
        paths.append(p)
    return paths


async def test_a_failing_document_is_recorded_and_the_rest_go_on(tmp_path: Path) -> None:
    out = io.StringIO()
    summary = await run_batch(validate_plan(PLAN, registry()), docs(tmp_path), "path", out=out, concurrency=2)
    rows = {Path(r["document"]).name: r for r in map(json.loads, out.getvalue().splitlines())}
    assert (summary.total, summary.succeeded, summary.failed) == (3, 2, 1)
    assert rows["a.txt"]["output"] == "A.TXT" and rows["c.txt"]["status"] == "succeeded"
    assert rows["bad.txt"]["status"] == "failed"  # no step succeeded
    assert "unreadable" in rows["bad.txt"]["error"] and set(rows["bad.txt"]["failed_steps"]) == {"read", "up"}


async def test_resume_skips_documents_already_done(tmp_path: Path) -> None:
    compiled = validate_plan(PLAN, registry())
    out_path = tmp_path / "out.jsonl"
    with out_path.open("w") as out:
        await run_batch(compiled, docs(tmp_path), "path", out=out)
    skip = resume_set(out_path, True)
    assert {Path(d).name for d in skip} == {"a.txt", "c.txt"}
    out2 = io.StringIO()
    summary = await run_batch(compiled, docs(tmp_path), "path", out=out2, skip=skip)
    assert summary.skipped == 2 and [json.loads(x)["document"] for x in out2.getvalue().splitlines()] == [
        str(tmp_path / "bad.txt")
    ]


async def test_binding_to_an_input_the_plan_lacks_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no input 'file'.*declared: path"):
        await run_batch(validate_plan(PLAN, registry()), docs(tmp_path), "file")


def test_folders_give_images_and_pdfs_before_text_and_globs_match(tmp_path: Path) -> None:
    for name in ("x.jpg", "x.txt", "y.png", "notes.md", "z.PDF"):
        (tmp_path / name).write_text("-")
    assert [p.name for p in find_documents(str(tmp_path))] == ["x.jpg", "y.png", "z.PDF"]
    assert [p.name for p in find_documents(str(tmp_path / "*.txt"))] == ["x.txt"]
    with pytest.raises(InputError, match="no such file or folder"):
        find_documents(str(tmp_path / "missing"))


def test_batch_command_writes_a_line_per_shared_receipt_with_a_progress_bar(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "inputs": {"path": {"type": "string"}},
                "steps": [
                    {"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "input:path"}},
                    {"id": "parse", "tool": "line_item_parser", "args": {"text": "step:ocr.text"}},
                ],
                "output": {"total": "step:parse.total"},
            }
        )
    )
    shared = REPO.parent / "shared/data/receipts/sroie"
    if not shared.is_dir():
        pytest.skip(f"shared data not found at {shared}")
    out = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "batch",
            str(plan),
            str(shared / "*.txt"),
            "--input",
            "path",
            "--out",
            str(out),
            "--concurrency",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(list(shared.glob("*.txt"))) == 100
    assert sum(r["status"] == "succeeded" for r in rows) == 100
    assert "100/100" in proc.stderr and "docs/s" in proc.stderr
    assert "100 succeeded, 0 failed" in proc.stderr


def offline_env(tmp_path: Path) -> dict[str, str]:
    import os
    import socket

    with socket.socket() as s:  # a port nothing listens on: "no Ollama answered"
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    drop = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PLANNER_PROVIDER", "AZURE_OPENAI_API_KEY", "USE_SMALL_MODEL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(ORCHESTRATOR_HOME=str(tmp_path / "home"), OLLAMA_API_URL=f"http://127.0.0.1:{port}")
    return env


def test_batch_with_a_known_request_plans_once_from_the_library_without_a_key(tmp_path: Path) -> None:
    receipts = REPO / "examples/receipts"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "batch",
            "Process this receipt and categorize items",
            str(receipts / "*.txt"),
            "--input",
            "image_path",
            "--out",
            str(tmp_path / "out.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=offline_env(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "plan library" in proc.stderr and "planned once for the whole batch (0 model call(s))" in proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == len(list(receipts.glob("*.txt"))) and all(r["status"] == "succeeded" for r in rows)


def test_batch_with_an_unknown_request_and_no_model_says_what_to_configure(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "batch",
            "Translate these receipts into French haiku",
            str(REPO / "examples/receipts/*.txt"),
            "--input",
            "path",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=offline_env(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "OPENAI_API_KEY" in proc.stderr
