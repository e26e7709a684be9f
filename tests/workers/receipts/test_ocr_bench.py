"""measure_ocr: documents per second for a back-end (the fast text back-end here; no engine loads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.bench.ocr import measure_ocr
from orchestrator.errors import ConfigurationError, ToolError

pytestmark = pytest.mark.anyio


@pytest.fixture
def documents(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(3):
        path = tmp_path / f"r{i}.txt"
        path.write_text(f"SHOP {i}\nTOTAL {i}.00\n", encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_measure_ocr_reports_throughput(documents: list[Path], concurrency: int):
    result = await measure_ocr(documents, "text", concurrency=concurrency)
    assert result["backend"] == "text"
    assert result["n"] == 3
    assert isinstance(result["seconds"], float) and result["seconds"] >= 0
    assert isinstance(result["docs_per_s"], float) and result["docs_per_s"] >= 0
    assert set(result) == {"backend", "n", "seconds", "docs_per_s", "warmup_seconds"}


async def test_measure_ocr_of_nothing_is_zero(tmp_path: Path):
    result = await measure_ocr([], "text")
    assert (result["n"], result["warmup_seconds"]) == (0, 0.0)


async def test_measure_ocr_rejects_an_unknown_back_end(documents: list[Path]):
    with pytest.raises(ConfigurationError, match="unknown OCR back-end"):
        await measure_ocr(documents, "nope")


async def test_measure_ocr_stops_at_a_document_that_fails(documents: list[Path], tmp_path: Path):
    with pytest.raises(ToolError, match="no such file"):
        await measure_ocr([*documents, tmp_path / "missing.txt"], "text", warmup=False)


async def test_measure_ocr_needs_a_positive_concurrency(documents: list[Path]):
    with pytest.raises(ValueError, match="concurrency"):
        await measure_ocr(documents, "text", concurrency=0)
