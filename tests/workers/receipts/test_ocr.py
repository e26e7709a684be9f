"""receipt_ocr: back-end selection, text passthrough, errors, the tool surface. No OCR engine is loaded here."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.context import StepContext, step_reporter
from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.settings import Settings, use_settings
from orchestrator.toolbox import default_registry
from orchestrator.workers.receipts import ocr
from orchestrator.workers.receipts.ocr import (
    get_ocr_backend,
    ocr_backend_names,
    read_document,
    receipt_ocr,
    register_ocr_backend,
    resolve_backend_name,
)
from orchestrator.workers.receipts.ocr_backends import OcrBackend, RapidOcrBackend, TesseractBackend
from orchestrator.workers.receipts.ocr_backends._layout import group_rows, reading_order

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


class EchoBackend:
    """A back-end that reads nothing: it reports which file it was given."""

    def __init__(self, name: str = "echo"):
        self.name = name
        self.paths: list[Path] = []

    async def read(self, path: Path) -> OcrResult:
        self.paths.append(path)
        return OcrResult(text=path.name, lines=[OcrLine(text=path.name)], backend=self.name, source=str(path))


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch):
    """Fresh back-end instances and default settings (no OCR_BACKEND from the environment or .env)."""
    monkeypatch.setattr(ocr, "_instances", {})
    with use_settings(Settings()):
        yield


@pytest.fixture
def receipt_txt(tmp_path: Path) -> Path:
    path = tmp_path / "receipt.txt"
    path.write_text("BLUE HERON CAFE\n\nLatte 2 x 3.50      7.00\r\nTOTAL   $29.16\n", encoding="utf-8")
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "receipt.png"
    path.write_bytes((EXAMPLES / "receipts" / "cafe.png").read_bytes())
    return path


# -- selection --------------------------------------------------------------------------------------


def test_the_default_back_end_is_rapidocr(image: Path):
    assert resolve_backend_name(image) == "rapidocr"


def test_settings_choose_the_back_end_when_no_argument_is_given(image: Path):
    with use_settings(ocr_backend="tesseract"):
        assert resolve_backend_name(image) == "tesseract"


def test_an_explicit_back_end_beats_settings(image: Path):
    with use_settings(ocr_backend="tesseract"):
        assert resolve_backend_name(image, "azure") == "azure"


def test_text_files_pass_through_whatever_back_end_is_asked_for(tmp_path: Path):
    for suffix in (".txt", ".md", ".TXT"):
        assert resolve_backend_name(tmp_path / f"r{suffix}", "tesseract") == "text"


def test_back_end_names_are_case_and_space_insensitive():
    assert isinstance(get_ocr_backend(" Tesseract "), TesseractBackend)


def test_a_back_end_is_created_once_and_reused():
    first = get_ocr_backend("rapidocr")
    assert isinstance(first, RapidOcrBackend)
    assert get_ocr_backend("rapidocr") is first


def test_every_built_in_back_end_implements_the_protocol():
    for name in ("rapidocr", "tesseract", "azure", "text"):
        assert isinstance(get_ocr_backend(name), OcrBackend)


def test_an_unknown_back_end_is_an_error_listing_the_valid_ones():
    with pytest.raises(ConfigurationError) as info:
        get_ocr_backend("tesserac")
    message = str(info.value)
    assert "'tesserac'" in message
    assert "did you mean 'tesseract'" in message
    assert "azure, rapidocr, tesseract, text" in message


async def test_an_unknown_back_end_is_an_error_even_for_a_text_file(receipt_txt: Path):
    with pytest.raises(ConfigurationError, match="unknown OCR back-end 'paddle'"):
        await read_document(receipt_txt, "paddle")


async def test_an_unknown_back_end_from_settings_is_an_error(image: Path):
    with use_settings(ocr_backend="nope"), pytest.raises(ConfigurationError, match="valid back-ends"):
        await read_document(image)


async def test_a_registered_back_end_can_be_selected_by_name(image: Path):
    echo = EchoBackend()
    register_ocr_backend(echo)
    result = await read_document(image, "echo")
    assert result.backend == "echo"
    assert echo.paths == [image]
    assert "echo" in ocr_backend_names()


def test_registering_over_an_existing_name_needs_replace():
    with pytest.raises(ConfigurationError, match="replace=True"):
        register_ocr_backend(EchoBackend("tesseract"))
    replacement = EchoBackend("tesseract")
    register_ocr_backend(replacement, replace=True)
    assert get_ocr_backend("tesseract") is replacement


async def test_settings_can_select_a_registered_back_end(image: Path):
    register_ocr_backend(EchoBackend())
    with use_settings(ocr_backend="echo"):
        result = await read_document(image)
    assert result.backend == "echo"


# -- text passthrough -------------------------------------------------------------------------------


async def test_a_text_file_passes_through_split_into_lines(receipt_txt: Path):
    result = await read_document(receipt_txt, "rapidocr")
    assert result.backend == "text"
    assert result.source == str(receipt_txt)
    assert [line.text for line in result.lines] == ["BLUE HERON CAFE", "Latte 2 x 3.50      7.00", "TOTAL   $29.16"]
    assert all(line.box is None and line.confidence is None for line in result.lines)
    assert result.text == "BLUE HERON CAFE\n\nLatte 2 x 3.50      7.00\nTOTAL   $29.16\n"


async def test_a_byte_order_mark_is_dropped(tmp_path: Path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffTOTAL 9.00\n".encode())
    result = await read_document(path)
    assert result.lines == [OcrLine(text="TOTAL 9.00")]


async def test_the_sample_text_files_read_as_text():
    result = await read_document(EXAMPLES / "receipts" / "cafe.txt")
    assert result.lines[0].text == "BLUE HERON CAFE"
    assert any("$29.16" in line.text for line in result.lines)


async def test_a_text_file_that_is_not_utf8_is_an_error_naming_it(tmp_path: Path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\xe9 total 9.00".encode("latin-1"))
    with pytest.raises(ToolError, match="not UTF-8") as info:
        await read_document(path)
    assert str(path) in str(info.value)
    assert info.value.retryable is False


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["rapidocr", "tesseract", "azure", "text", None])
async def test_a_missing_file_is_a_non_retryable_error_naming_it(tmp_path: Path, backend: str | None):
    missing = tmp_path / "nope" / "receipt.png"
    with pytest.raises(ToolError) as info:
        await read_document(missing, backend)
    assert str(missing) in str(info.value)
    assert "no such file" in str(info.value)
    assert info.value.retryable is False


async def test_a_directory_is_not_a_document(tmp_path: Path):
    with pytest.raises(ToolError, match="is a directory"):
        await read_document(tmp_path, "tesseract")


@pytest.mark.parametrize("backend", ["rapidocr", "tesseract"])
async def test_a_file_that_is_not_an_image_is_a_non_retryable_error_naming_it(tmp_path: Path, backend: str):
    bad = tmp_path / "receipt.png"
    bad.write_bytes(b"this is not a PNG at all")
    with pytest.raises(ToolError, match="not a readable image") as info:
        await read_document(bad, backend)
    assert str(bad) in str(info.value)
    assert info.value.retryable is False


@pytest.mark.parametrize("backend", ["rapidocr", "tesseract"])
async def test_a_truncated_image_is_a_non_retryable_error_naming_it(tmp_path: Path, image: Path, backend: str):
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    with pytest.raises(ToolError, match="not a readable image") as info:
        await read_document(image, backend)
    assert str(image) in str(info.value)
    assert info.value.retryable is False


async def test_a_missing_tesseract_program_says_how_to_install_it(image: Path, monkeypatch: pytest.MonkeyPatch):
    pytesseract = pytest.importorskip("pytesseract")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/bin/tesseract")
    with pytest.raises(ConfigurationError) as info:
        await read_document(image, "tesseract")
    message = str(info.value)
    assert str(image) in message
    assert "apt-get install tesseract-ocr" in message
    assert "/nonexistent/bin/tesseract" in message


async def test_a_missing_rapidocr_package_says_how_to_install_it(image: Path, monkeypatch: pytest.MonkeyPatch):
    import sys

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # makes the import fail
    with pytest.raises(ConfigurationError) as info:
        await read_document(image, "rapidocr")
    assert str(image) in str(info.value)
    assert 'pip install "orchestrator[ocr]"' in str(info.value)


async def test_a_missing_pytesseract_package_says_how_to_install_it(image: Path, monkeypatch: pytest.MonkeyPatch):
    import sys

    monkeypatch.setitem(sys.modules, "pytesseract", None)
    with pytest.raises(ConfigurationError, match=r'pip install "orchestrator\[ocr\]"'):
        await TesseractBackend().read(image)


# -- the tool ---------------------------------------------------------------------------------------


def test_receipt_ocr_is_a_registered_function_tool():
    spec = default_registry(plugins=False).get("receipt_ocr").spec
    assert spec.kind == "function"
    assert spec.input_schema["required"] == ["image_path"]
    assert "backend" in spec.input_schema["properties"]
    assert "image_path" in spec.input_schema["properties"]
    assert spec.input_schema["properties"]["image_path"]["description"].startswith("path of the image")
    assert set(spec.output_schema["properties"]) >= {"text", "lines", "backend", "source"}


async def test_the_tool_returns_json_and_reports_its_mode(receipt_txt: Path):
    context = StepContext(run_id="r1", step_id="ocr")
    token = step_reporter.set(context)
    try:
        out = await default_registry(plugins=False).get("receipt_ocr").invoke({"image_path": str(receipt_txt)})
    finally:
        step_reporter.reset(token)
    assert out["backend"] == "text"
    assert out["lines"][0] == {"text": "BLUE HERON CAFE", "box": None, "confidence": None, "angle": None}
    assert context.modes == ["text"]


async def test_the_tool_function_stays_a_plain_coroutine(receipt_txt: Path):
    result = await receipt_ocr(str(receipt_txt))
    assert isinstance(result, OcrResult)


async def test_the_tool_rejects_unexpected_arguments(receipt_txt: Path):
    with pytest.raises(ToolError, match="invalid arguments"):
        await default_registry(plugins=False).get("receipt_ocr").invoke({"image_path": str(receipt_txt), "engine": "x"})


# -- reading order ----------------------------------------------------------------------------------


def _line(text: str, x1: float, y1: float, x2: float, y2: float, confidence: float = 0.9) -> OcrLine:
    return OcrLine(text=text, box=[x1, y1, x2, y2], confidence=confidence)


def test_boxes_on_one_visual_row_are_read_left_to_right_and_merged():
    lines = [
        _line("7.00", 500, 102, 560, 124, 0.8),  # the price column, detected first and a little lower
        _line("TOTAL", 20, 150, 100, 172),
        _line("Latte 2 x 3.50", 20, 100, 200, 122, 1.0),
    ]
    merged = reading_order(lines)
    assert [line.text for line in merged] == ["Latte 2 x 3.50 7.00", "TOTAL"]
    assert merged[0].box == [20, 100, 560, 124]
    assert merged[0].confidence == pytest.approx(0.9)


def test_rows_can_be_kept_as_separate_lines():
    lines = [_line("7.00", 500, 100, 560, 122), _line("Latte", 20, 101, 200, 123)]
    assert [line.text for line in reading_order(lines, merge_rows=False)] == ["Latte", "7.00"]


def test_boxes_that_barely_overlap_vertically_are_different_rows():
    rows = group_rows([_line("a", 0, 0, 50, 20), _line("b", 60, 14, 120, 34)])
    assert [[line.text for line in row] for row in rows] == [["a"], ["b"]]


def test_lines_without_boxes_keep_their_order_after_the_boxed_ones():
    lines = [OcrLine(text="x"), _line("a", 0, 0, 50, 20), OcrLine(text="y")]
    assert [line.text for line in reading_order(lines)] == ["a", "x", "y"]
