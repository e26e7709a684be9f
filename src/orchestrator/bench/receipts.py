"""Receipt throughput: parse + categorize from text through the executor, and OCR per back-end from images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.batch import run_batch
from orchestrator.bench.ocr import measure_ocr
from orchestrator.errors import OrchestratorError
from orchestrator.plan.validate import validate_plan
from orchestrator.toolbox import default_registry

TEXT_PIPELINE = {
    "goal": "parse and categorize a receipt from its text",
    "inputs": {"path": {"type": "string"}},
    "steps": [
        {"id": "read", "tool": "receipt_ocr", "args": {"image_path": "input:path"}},
        {"id": "parse", "tool": "line_item_parser", "args": {"text": "step:read.text"}},
        {"id": "categorize", "tool": "expense_categorizer", "args": {"items": "step:parse.items"}},
    ],
    "output": "step:categorize.totals",
}


def default_folder() -> Path:
    """The shared SROIE receipts when they are beside the repository, else the bundled examples."""
    shared = Path(__file__).resolve().parents[3].parent / "shared/data/receipts/sroie"
    return shared if shared.is_dir() else Path(__file__).resolve().parents[3] / "examples/receipts"


async def measure_text_pipeline(texts: list[Path], *, concurrency: int = 8, rounds: int = 3) -> dict[str, Any]:
    """Receipts per second for read-text -> parse -> categorize, each receipt a full plan run (best of rounds)."""
    compiled = validate_plan(TEXT_PIPELINE, default_registry())
    best: dict[str, Any] = {}
    for _ in range(rounds):
        summary = await run_batch(compiled, texts, "path", concurrency=concurrency)
        if summary.failed:
            raise OrchestratorError(f"{summary.failed} receipts failed in the text benchmark")
        if not best or summary.docs_per_s > best["docs_per_s"]:
            best = {"n": summary.total, "seconds": summary.duration_s, "docs_per_s": summary.docs_per_s}
    return {"pipeline": "text: parse + categorize", "concurrency": concurrency, **best}


async def measure_ocr_backends(images: list[Path], backends: list[str]) -> list[dict[str, Any]]:
    """Documents per second for each OCR back-end; a back-end that is not available says why."""
    rows: list[dict[str, Any]] = []
    for backend in backends:
        try:
            rows.append(dict(await measure_ocr(images, backend)))
        except OrchestratorError as exc:
            rows.append({"backend": backend, "n": 0, "error": str(exc)})
    return rows
