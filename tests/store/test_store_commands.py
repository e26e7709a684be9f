"""`run`, `batch`, `runs`, `runs show`, `cost`, `resume` and `report`, run as a user runs them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ._cli import PLAN, REPO, clean_env, cli, cli_json, receipts


def test_run_is_recorded_and_listed_shown_and_costed(tmp_path: Path) -> None:
    receipt = REPO / "examples/receipts/grocery.txt"
    proc = cli("run", str(PLAN), "--input", f"image_path={receipt}")
    assert proc.returncode == 0, proc.stderr
    assert "recorded as run" in proc.stderr
    [run] = cli_json("runs")
    assert run["kind"] == "run" and run["status"] == "succeeded" and run["documents"] == 1
    shown = cli_json("runs", "show", run["id"][:8])  # a unique prefix is enough
    assert [s["step"] for s in shown["steps"]] == ["ocr", "parse", "categorize", "totals", "report"]
    assert shown["steps"][1]["modes"] == ["keyword"] and all(s["attempts"] == 1 for s in shown["steps"])
    ledger = cli_json("cost", run["id"])
    assert ledger["documents_done"] == 1 and ledger["planner_calls"] == 0 and ledger["model_calls"] == 0
    assert ledger["items_per_tier"]["keyword"] == 11  # the grocery receipt's items, all answered by keywords
    assert ledger["large_model_per_document"]["model"] == "gpt-4o"
    assert ledger["large_model_per_document"]["usd_per_1000_docs"] > 0
    text = cli("cost", run["id"])
    assert text.returncode == 0 and "per 1,000 documents" in text.stdout and "keyword 11" in text.stdout
    listing = cli("runs")
    assert run["id"] in listing.stdout and "succeeded" in listing.stdout


def test_no_store_records_nothing(tmp_path: Path) -> None:
    proc = cli("run", str(PLAN), "--input", f"image_path={REPO / 'examples/receipts/cafe.txt'}", "--no-store")
    assert proc.returncode == 0, proc.stderr
    assert "recorded as run" not in proc.stderr
    assert cli_json("runs") == []


def test_unknown_run_ids_are_user_errors(tmp_path: Path) -> None:
    for args in (("runs", "show", "feedbeef"), ("cost", "feedbeef"), ("resume", "feedbeef")):
        proc = cli(*args)
        assert proc.returncode == 2 and "no run 'feedbeef'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_failed_run_resumes_reusing_its_finished_steps(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("hello", encoding="utf-8")
    missing = tmp_path / "later.txt"  # named in a template, so not checked up front: the step fails
    plan = {
        "goal": "list, read, report",
        "inputs": {"folder": {"type": "string"}, "base": {"type": "string"}},
        "steps": [
            {"id": "files", "tool": "list_files", "args": {"source": "input:folder"}},
            {"id": "ocr", "tool": "receipt_ocr", "args": {"image_path": "{{input:base}}/later.txt"}},
            {"id": "report", "tool": "format_report",
             "args": {"title": "r", "text": "{{step:ocr.text}}", "data": {"files": "step:files"}}},
        ],
        "output": "step:report",
    }  # fmt: skip
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    first = cli("run", str(plan_path), "--input", f"folder={folder}", "--input", f"base={tmp_path}", "--json")
    assert first.returncode == 1
    rid = json.loads(first.stdout)["run_id"]
    assert json.loads(first.stdout)["steps"]["ocr"]["status"] == "failed"
    missing.write_text("SHOP\nTotal 3.00\n", encoding="utf-8")
    (folder / "b.txt").write_text("new", encoding="utf-8")  # would change list_files' output if it ran again
    second = cli("resume", rid, "--json")
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["run_id"] == rid and result["status"] == "succeeded"
    assert result["steps"]["files"]["modes"] == ["reused"]
    assert result["steps"]["files"]["output"] == [str(folder / "a.txt")]  # the recorded output, not a new listing
    assert result["steps"]["ocr"]["status"] == "succeeded"
    shown = cli_json("runs", "show", rid)
    assert shown["status"] == "succeeded" and shown["sessions"] == 2
    assert {s["step"]: s["session"] for s in shown["steps"]} == {"files": 1, "ocr": 2, "report": 2}
    again = cli("resume", rid)
    assert again.returncode == 0 and "already succeeded" in again.stderr


def test_batch_records_each_document_and_reports_headline_figures(tmp_path: Path) -> None:
    docs = receipts(tmp_path / "docs", 12)
    out = tmp_path / "out.jsonl"
    report = tmp_path / "report.html"
    proc = cli("batch", str(PLAN), str(docs), "--input", "image_path", "--out", str(out), "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "docs/s; 0 planner call(s), 0 worker model call(s)" in proc.stderr and "per 1,000 docs" in proc.stderr
    [run] = cli_json("runs")
    assert run["kind"] == "batch" and run["documents"] == run["documents_done"] == 12
    assert len(out.read_text().splitlines()) == 12
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and run["id"] in page
    assert "<script src" not in page and "<link" not in page  # everything is inline
    db = sqlite3.connect(Path(clean_env()["ORCHESTRATOR_HOME"]) / "runs.sqlite")
    per_step = dict(db.execute("SELECT step_id, COUNT(*) FROM steps GROUP BY step_id").fetchall())
    db.close()
    assert per_step == {"ocr": 12, "parse": 12, "categorize": 12, "totals": 12, "report": 12}


def test_report_command_writes_the_page_and_needs_a_known_run(tmp_path: Path) -> None:
    proc = cli("run", str(PLAN), "--input", f"image_path={REPO / 'examples/receipts/cafe.txt'}")
    assert proc.returncode == 0
    [run] = cli_json("runs")
    page = tmp_path / "r.html"
    made = cli("report", run["id"], "--html", str(page))
    assert made.returncode == 0 and f"report: {page}" in made.stderr
    assert "echarts" in page.read_text(encoding="utf-8") and "dagre" in page.read_text(encoding="utf-8")
    bad = cli("report", run["id"], "--html", str(tmp_path / "no" / "such" / "dir" / "r.html"))
    assert bad.returncode == 2 and "cannot write it" in bad.stderr


def test_ask_records_its_planner_calls_and_plan(tmp_path: Path) -> None:
    from orchestrator.bench.planner import RECEIPT_PLAN
    from orchestrator.testing.fake_llm import FakeLLMServer

    with FakeLLMServer(default=json.dumps(RECEIPT_PLAN)) as server:
        env = clean_env(PLANNER_PROVIDER="openai", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=server.openai_url,
                        PLANNER_MODEL="gpt-4o")  # fmt: skip
        proc = cli("ask", "Sum up what this slip says, by category", "--input",
                   f"image_path={REPO / 'examples/receipts/cafe.txt'}", env=env)  # fmt: skip
        calls = len(server.requests)
    assert proc.returncode == 0, proc.stderr
    [run] = cli_json("runs", env=env)
    assert run["kind"] == "ask" and run["status"] == "succeeded"
    ledger = cli_json("cost", run["id"], env=env)
    assert ledger["planner_calls"] == calls == 1 and ledger["planner_cost_usd"] > 0
    shown = cli_json("runs", "show", run["id"], env=env)
    assert {s["step"] for s in shown["steps"]} == {s["id"] for s in RECEIPT_PLAN["steps"]}
    again = cli("resume", run["id"], env=env)
    assert again.returncode == 0 and "already succeeded" in again.stderr
