"""The local engines (RapidOCR, Tesseract) on the rendered sample receipts: key words and amounts come through."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import anyio
import pytest

from orchestrator.rules.models import OcrResult
from orchestrator.settings import Settings, use_settings
from orchestrator.workers.receipts import ocr
from orchestrator.workers.receipts.ocr import read_document
from orchestrator.workers.receipts.ocr_backends import RapidOcrBackend

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

needs_rapidocr = pytest.mark.skipif(find_spec("rapidocr_onnxruntime") is None, reason='needs "orchestrator[ocr]"')
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs apt-get install tesseract-ocr")
ENGINES = [
    pytest.param("rapidocr", marks=[pytest.mark.slow, needs_rapidocr]),
    pytest.param("tesseract", marks=[pytest.mark.slow, needs_tesseract]),
]

# What each engine must read on each sample: the merchant, an item with its amount, the total.
EXPECTED = {
    "receipts/cafe.png": ["BLUE HERON CAFE", "Latte", "7.00", "Avocado Toast", "27.00", "2.16", "$29.16"],
    "receipts/grocery.png": ["GREEN VALLEY MARKET", "Sourdough Bread", "5.49", "-1.00", "52.47", "$53.24"],
    "receipts/office_supply.png": ["INV-2024-0117", "Toner Cartridge", "89.99", "159.92", "$171.91"],
    "invoices/scan_2024-02-07_001.png": ["INV-10452", "152.10", "11.03", "$163.13"],
}


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(ocr, "_instances", {})
    with use_settings(Settings()):
        yield


def line_with(result: OcrResult, needle: str) -> int:
    """Index of the first line containing `needle` (spaces ignored), or fail showing what was read."""
    squeezed = needle.replace(" ", "")
    for i, line in enumerate(result.lines):
        if squeezed in line.text.replace(" ", ""):
            return i
    raise AssertionError(f"{needle!r} not found in:\n{result.text}")


@pytest.mark.parametrize("backend", ENGINES)
@pytest.mark.parametrize("sample", sorted(EXPECTED))
async def test_engines_read_the_key_words_and_amounts_of_the_samples(backend: str, sample: str):
    result = await read_document(EXAMPLES / sample, backend)
    assert result.backend == backend
    assert result.source == str(EXAMPLES / sample)
    for needle in EXPECTED[sample]:
        line_with(result, needle)
    assert result.text == "\n".join(line.text for line in result.lines)


@pytest.mark.parametrize("backend", ENGINES)
async def test_engines_give_boxes_and_confidences_in_reading_order(backend: str):
    result = await read_document(EXAMPLES / "receipts" / "cafe.png", backend)
    assert all(line.box is not None and line.confidence is not None for line in result.lines)
    assert all(0 < (line.confidence or 0) <= 1 for line in result.lines)
    tops = [line.box[1] for line in result.lines if line.box]
    assert tops == sorted(tops)
    assert line_with(result, "BLUE HERON") < line_with(result, "Subtotal") < line_with(result, "TOTAL $29.16")
    # An item and its amount sit on one row of the receipt, so they come back as one line.
    assert "7.00" in result.lines[line_with(result, "Latte")].text


@pytest.mark.slow
@needs_rapidocr
async def test_rapidocr_puts_back_the_spaces_between_words():
    with_spaces = await RapidOcrBackend().read(EXAMPLES / "receipts" / "cafe.png")
    assert "BLUE HERON CAFE" in with_spaces.text
    assert "Avocado Toast" in with_spaces.text


@pytest.mark.slow
@needs_rapidocr
async def test_rapidocr_loads_its_engine_once_for_concurrent_reads(monkeypatch: pytest.MonkeyPatch):
    import rapidocr_onnxruntime

    created: list[object] = []
    real = rapidocr_onnxruntime.RapidOCR

    def counting(**options: object) -> object:
        engine = real(**options)
        created.append(engine)
        return engine

    monkeypatch.setattr(rapidocr_onnxruntime, "RapidOCR", counting)
    backend = RapidOcrBackend()
    results: list[OcrResult] = []

    async def read(name: str) -> None:
        results.append(await backend.read(EXAMPLES / "receipts" / name))

    async with anyio.create_task_group() as tg:
        tg.start_soon(read, "cafe.png")
        tg.start_soon(read, "restaurant.png")
    assert len(created) == 1
    assert sorted(Path(r.source).name for r in results) == ["cafe.png", "restaurant.png"]


@pytest.mark.slow
@needs_tesseract
async def test_tesseract_page_segmentation_mode_is_configurable():
    from orchestrator.workers.receipts.ocr_backends import TesseractBackend

    result = await TesseractBackend(psm=4).read(EXAMPLES / "receipts" / "restaurant.png")
    line_with(result, "TRATTORIA LUCA")
    line_with(result, "$90.37")
