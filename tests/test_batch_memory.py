"""Flat memory: a batch reads its documents lazily and streams its results, so 10x the documents is not 10x
the memory. Measured as a ratio of peak resident memory of `orchestrator batch` subprocesses (never a time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.batch import DocumentResult, DocumentSource, run_batch
from orchestrator.plan.validate import validate_plan
from orchestrator.toolbox import default_registry

REPO = Path(__file__).resolve().parents[1]
PLAN = {
    "inputs": {"path": {"type": "string"}},
    "steps": [
        {"id": "read", "tool": "receipt_ocr", "args": {"image_path": "input:path"}},
        {"id": "report", "tool": "format_report", "args": {"text": "{{step:read.text}}", "title": "{{input:path}}"}},
    ],
    "output": "step:report",
}
TEXT = "CORNER CAFE\n1 Latte 4.50\n1 Muffin 3.25\nTOTAL 7.75\n" * 4


def peak_rss_kib(args: list[str], log: Path) -> int:
    """Run the CLI and return its peak resident memory (KiB), from the kernel's accounting of that child."""
    with log.open("w") as err:
        env = {**os.environ, "ORCHESTRATOR_HOME": str(log.parent / "home")}  # the run store is on, as by default
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args], cwd=REPO, stdout=err, stderr=err, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, log.read_text()
    return int(usage.ru_maxrss)


def test_peak_memory_from_1000_to_10000_documents_grows_at_most_20_percent(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    peaks = {}
    for n in (1000, 10000):
        folder = tmp_path / f"docs{n}"
        folder.mkdir()
        for i in range(n):
            (folder / f"r{i:05d}.txt").write_text(TEXT)
        out = tmp_path / f"out{n}.jsonl"
        peaks[n] = peak_rss_kib(
            ["batch", str(plan), str(folder), "--input", "path", "--out", str(out), "--concurrency", "16"],
            tmp_path / "log",
        )
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == n and all(row["status"] == "succeeded" for row in rows)
    assert peaks[10000] <= 1.2 * peaks[1000], peaks


@pytest.mark.anyio
async def test_documents_are_pulled_as_workers_free_up_not_all_at_once(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"r{i:02d}.txt").write_text(TEXT)
    pulled = 0

    def documents() -> Iterator[Path]:
        nonlocal pulled
        for path in DocumentSource(str(tmp_path)):
            pulled += 1
            yield path

    seen_when_first_finished: list[int] = []

    def on_document(record: DocumentResult) -> None:
        if not seen_when_first_finished:
            seen_when_first_finished.append(pulled)

    summary = await run_batch(
        validate_plan(PLAN, default_registry()), documents(), "path", concurrency=4, on_document=on_document
    )
    assert summary.succeeded == summary.total == 50
    assert seen_when_first_finished[0] <= 4 + 4 + 1  # the workers' documents and a bounded queue, not all 50


def test_a_folder_source_counts_and_yields_without_a_list(tmp_path: Path) -> None:
    for name in ("a.txt", "b.md", "c.png", "d.PDF", "notes.csv"):
        (tmp_path / name).write_text("x")
    source = DocumentSource(str(tmp_path))
    assert source.count() == 2 and sorted(p.name for p in source) == ["c.png", "d.PDF"]  # images win
    (tmp_path / "c.png").unlink()
    (tmp_path / "d.PDF").unlink()
    texts = DocumentSource(str(tmp_path))
    assert texts.count() == 2 and sorted(p.name for p in texts) == ["a.txt", "b.md"]
    assert sorted(p.name for p in DocumentSource(str(tmp_path / "*.csv"))) == ["notes.csv"]
