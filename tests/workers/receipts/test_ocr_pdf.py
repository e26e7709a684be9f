"""receipt_ocr on PDFs: text layers read directly, scanned pages rendered and OCR'd, bad PDFs named in one line.

The PDFs are built here: text-layer ones by hand in raw PDF syntax (Helvetica), scans with Pillow from the
sample receipt images.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

import anyio
import pytest
from PIL import Image

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.settings import Settings, use_settings
from orchestrator.workers.receipts import ocr
from orchestrator.workers.receipts.ocr import get_ocr_backend, read_document, register_ocr_backend
from orchestrator.workers.receipts.ocr_backends import ImageOcrBackend, RapidOcrBackend
from orchestrator.workers.receipts.tools import line_item_parser

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"

needs_rapidocr = pytest.mark.skipif(find_spec("rapidocr_onnxruntime") is None, reason='needs "orchestrator[ocr]"')
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs apt-get install tesseract-ocr")

Run = tuple[float, float, str]
"""A line of text on a page: x and y of its baseline in points (origin bottom left), and the text."""

INVOICE_PAGE_1: list[Run] = [
    (40, 740, "ACME OFFICE SUPPLY"),
    (40, 722, "Invoice INV-2024-0042"),
    (40, 704, "Date: 2024-03-05"),
    # The amounts are written after the item names, as a column: they still end up on the items' rows.
    (40, 660, "Printer Paper 2 x 6.50"),
    (40, 642, "Stapler"),
    (400, 660, "13.00"),
    (400, 642, "8.50"),
]
INVOICE_PAGE_2: list[Run] = [
    (40, 740, "Subtotal"),
    (400, 740, "21.50"),
    (40, 722, "Tax"),
    (400, 722, "1.72"),
    (40, 704, "TOTAL"),
    (400, 704, "23.22"),
    (40, 660, "Thank you for your business"),
]


def raw_pdf(objects: dict[int, str], trailer: str = "") -> bytes:
    """A PDF file from numbered objects (1 must be the catalog), with a correct cross-reference table."""
    out = b"%PDF-1.4\n"
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n{objects[number]}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offsets[n]:010d} 00000 n \n" for n in sorted(objects)).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R {trailer}>>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def text_pdf(pages: Sequence[Sequence[Run]]) -> bytes:
    """US Letter pages of 11 pt Helvetica text; a page with no runs has no content at all (like a blank scan)."""
    objects = {1: "<< /Type /Catalog /Pages 2 0 R >>", 3: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    kids = []
    for i, runs in enumerate(pages):
        page, content = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page} 0 R")
        stream = "".join(f"BT /F1 11 Tf {x} {y} Td ({text}) Tj ET\n" for x, y, text in runs)
        objects[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>"
        )
        objects[content] = f"<< /Length {len(stream)} >>\nstream\n{stream}endstream"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    return raw_pdf(objects)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class PageReader:
    """An OCR back-end that reads rendered pages: it keeps each image and answers ``SCANNED <source>``."""

    name = "pages"

    def __init__(self) -> None:
        self.images: list[tuple[tuple[int, int], str]] = []

    async def read(self, path: Path) -> OcrResult:
        raise AssertionError(f"read({path}) called; a PDF's pages should come through read_image")

    async def read_image(self, image: Image.Image, source: str) -> OcrResult:
        self.images.append((image.size, source))
        line = OcrLine(text=f"SCANNED {source}", box=[0, 0, 10, 10], confidence=0.9)
        return OcrResult(text=line.text, lines=[line], backend=self.name, source=source)


class EchoBackend:
    """A back-end without ``read_image``: it gets the file itself, as azure does."""

    name = "echo"

    async def read(self, path: Path) -> OcrResult:
        return OcrResult(text=path.name, backend=self.name, source=str(path))


@pytest.fixture(autouse=True)
def fresh_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations and engines do not leak between tests (tests/conftest.py pins default settings)."""
    monkeypatch.setattr(ocr, "_instances", {})


@pytest.fixture
def invoice_pdf(tmp_path: Path) -> Path:
    return write(tmp_path / "invoice.pdf", text_pdf([INVOICE_PAGE_1, INVOICE_PAGE_2]))


@pytest.fixture
def scanned_pdf(tmp_path: Path) -> Path:
    """The cafe receipt as an image-only PDF, at 200 dpi like a scanner would write it."""
    path = tmp_path / "scan.pdf"
    with Image.open(EXAMPLES / "receipts" / "cafe.png") as image:
        image.save(path, "PDF", resolution=200)
    return path


@pytest.fixture
def pages() -> PageReader:
    reader = PageReader()
    register_ocr_backend(reader)
    return reader


# -- text layer ---------------------------------------------------------------------------------------


async def test_a_text_layer_is_read_directly_without_loading_an_ocr_engine(invoice_pdf: Path):
    result = await read_document(invoice_pdf)  # the default back-end, rapidocr
    assert result.backend == "pdf-text"
    assert result.source == str(invoice_pdf)
    engine = get_ocr_backend("rapidocr")
    assert isinstance(engine, RapidOcrBackend) and engine._engine is None
    assert [line.text for line in result.lines] == [
        "ACME OFFICE SUPPLY",
        "Invoice INV-2024-0042",
        "Date: 2024-03-05",
        "Printer Paper 2 x 6.50 13.00",
        "Stapler 8.50",
        "Subtotal 21.50",
        "Tax 1.72",
        "TOTAL 23.22",
        "Thank you for your business",
    ]


async def test_pages_are_joined_in_order_with_a_blank_line(invoice_pdf: Path):
    result = await read_document(invoice_pdf)
    first, second = result.text.split("\n\n")
    assert first.startswith("ACME OFFICE SUPPLY\n") and first.endswith("Stapler 8.50")
    assert second.startswith("Subtotal 21.50\n") and second.endswith("Thank you for your business")


async def test_the_parser_gets_the_invoice_from_the_text_layer(invoice_pdf: Path):
    parsed = await line_item_parser((await read_document(invoice_pdf)).text)
    assert parsed.merchant == "ACME OFFICE SUPPLY"
    assert parsed.date == "2024-03-05"
    assert (parsed.subtotal, parsed.tax, parsed.total) == (21.50, 1.72, 23.22)
    assert [(item.name, item.amount) for item in parsed.items] == [("Printer Paper", 13.0), ("Stapler", 8.5)]


async def test_text_layer_lines_carry_boxes_in_pixels_at_200_dpi(invoice_pdf: Path):
    result = await read_document(invoice_pdf)
    first = result.lines[0]
    assert first.confidence is None
    assert first.box is not None
    x1, y1, x2, y2 = first.box
    assert x1 == pytest.approx(40 * 200 / 72, abs=3)  # 40 pt from the left edge
    assert y2 == pytest.approx((792 - 740) * 200 / 72, abs=10)  # the baseline, 52 pt from the top
    assert x1 < x2 and y1 < y2


async def test_the_text_back_end_reads_text_layers(invoice_pdf: Path):
    assert (await read_document(invoice_pdf, "text")).backend == "pdf-text"


# -- scanned pages ------------------------------------------------------------------------------------


async def test_a_scanned_page_is_rendered_at_200_dpi_for_the_ocr_back_end(scanned_pdf: Path, pages: PageReader):
    result = await read_document(scanned_pdf, "pages")
    assert result.backend == "pdf-pages"
    assert result.source == str(scanned_pdf)
    assert result.text == f"SCANNED {scanned_pdf} page 1"
    [(size, source)] = pages.images
    assert size == pytest.approx((600, 680), abs=2)  # the scan's own pixels: 3 x 3.4 inches at 200 dpi
    assert source == f"{scanned_pdf} page 1"


async def test_text_and_scanned_pages_mix_in_page_order(tmp_path: Path, pages: PageReader):
    pdf = write(tmp_path / "mixed.pdf", text_pdf([INVOICE_PAGE_1, [], INVOICE_PAGE_2]))
    result = await read_document(pdf, "pages")
    assert result.backend == "pdf-text+pages"
    texts = result.text.split("\n\n")
    assert texts[0].startswith("ACME OFFICE SUPPLY")
    assert texts[1] == f"SCANNED {pdf} page 2"
    assert texts[2].startswith("Subtotal 21.50")
    assert [source for _size, source in pages.images] == [f"{pdf} page 2"]


async def test_a_page_with_only_a_stamp_counts_as_scanned(tmp_path: Path, pages: PageReader):
    pdf = write(tmp_path / "stamped.pdf", text_pdf([[(500, 20, "Page 1")]]))
    result = await read_document(pdf, "pages")
    assert result.backend == "pdf-pages"


async def test_the_text_back_end_does_not_ocr_a_scanned_page(tmp_path: Path):
    pdf = write(tmp_path / "mixed.pdf", text_pdf([INVOICE_PAGE_1, []]))
    with pytest.raises(ConfigurationError) as info:
        await read_document(pdf, "text")
    message = str(info.value)
    assert message == f"{pdf} page 2: no text layer; read this PDF with rapidocr or tesseract"


async def test_a_back_end_that_reads_pdfs_itself_gets_the_file(invoice_pdf: Path):
    register_ocr_backend(EchoBackend())
    result = await read_document(invoice_pdf, "echo")
    assert (result.backend, result.text) == ("echo", "invoice.pdf")


def test_the_local_engines_read_rendered_pages_and_azure_reads_pdfs_itself():
    assert isinstance(get_ocr_backend("rapidocr"), ImageOcrBackend)
    assert isinstance(get_ocr_backend("tesseract"), ImageOcrBackend)
    assert not isinstance(get_ocr_backend("azure"), ImageOcrBackend)


async def test_pdfs_read_at_the_same_time_each_get_their_own_pages(tmp_path: Path):
    pdfs = [
        write(tmp_path / f"{n}.pdf", text_pdf([[(40, 740, f"Invoice number {n} page {p}")] for p in (1, 2)]))
        for n in range(6)
    ]
    results: dict[int, str] = {}

    async def read(n: int) -> None:
        results[n] = (await read_document(pdfs[n])).text

    async with anyio.create_task_group() as tg:
        for n in range(len(pdfs)):
            tg.start_soon(read, n)
    assert results == {n: f"Invoice number {n} page 1\n\nInvoice number {n} page 2" for n in range(len(pdfs))}


# -- the page limit -----------------------------------------------------------------------------------


async def test_pages_past_the_limit_are_left_out_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    pdf = write(tmp_path / "long.pdf", text_pdf([[(40, 740, f"Page {n} of the long invoice")] for n in (1, 2, 3)]))
    with use_settings(ocr_pdf_max_pages=2), caplog.at_level(logging.WARNING):
        result = await read_document(pdf)
    assert result.text == "Page 1 of the long invoice\n\nPage 2 of the long invoice"
    assert f"{pdf}: reading the first 2 of 3 pages (OCR_PDF_MAX_PAGES)" in caplog.messages


def test_the_page_limit_is_read_from_the_environment():
    assert Settings().ocr_pdf_max_pages == 50
    assert Settings.from_env({"OCR_PDF_MAX_PAGES": "5"}, dotenv=None).ocr_pdf_max_pages == 5
    with pytest.raises(ConfigurationError, match="OCR_PDF_MAX_PAGES"):
        Settings.from_env({"OCR_PDF_MAX_PAGES": "0"}, dotenv=None)


# -- bad PDFs -----------------------------------------------------------------------------------------

CATALOG = {1: "<< /Type /Catalog /Pages 2 0 R >>"}
ENCRYPTED = raw_pdf(
    CATALOG
    | {
        2: "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        # Standard security handler; /U does not match the empty password, so a password is needed.
        4: f"<< /Filter /Standard /V 1 /R 2 /O <{'11' * 32}> /U <{'22' * 32}> /P -4 >>",
    },
    trailer=f"/Encrypt 4 0 R /ID [<{'ab' * 16}> <{'ab' * 16}>] ",
)
NO_PAGES = raw_pdf(CATALOG | {2: "<< /Type /Pages /Kids [] /Count 0 >>"})


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(ENCRYPTED, "the PDF is encrypted (password-protected)", id="encrypted"),
        pytest.param(NO_PAGES, "the PDF has no pages", id="no-pages"),
        pytest.param(b"%PDF-1.4\nthis is not a PDF body at all", "not a readable PDF", id="corrupt"),
        pytest.param((EXAMPLES / "receipts" / "cafe.png").read_bytes(), "not a readable PDF", id="png-named-pdf"),
    ],
)
@pytest.mark.parametrize("backend", ["rapidocr", "tesseract", "text"])
async def test_a_bad_pdf_is_a_one_line_non_retryable_error_naming_it(
    tmp_path: Path, data: bytes, problem: str, backend: str
):
    pdf = write(tmp_path / "bad.pdf", data)
    with pytest.raises(ToolError) as info:
        await read_document(pdf, backend)
    message = str(info.value)
    assert message.startswith(f"{pdf}: {problem}")
    assert "\n" not in message
    assert info.value.retryable is False
    assert info.value.details == {"path": str(pdf)}


async def test_a_missing_pypdfium2_package_says_how_to_install_it(invoice_pdf: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # makes the import fail
    with pytest.raises(ConfigurationError) as info:
        await read_document(invoice_pdf)
    assert str(invoice_pdf) in str(info.value)
    assert 'pip install "orchestrator[ocr]"' in str(info.value)


# -- real engines on a scan ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [pytest.param("rapidocr", marks=needs_rapidocr), pytest.param("tesseract", marks=needs_tesseract)],
)
async def test_the_local_engines_read_a_scanned_pdf(tmp_path: Path, scanned_pdf: Path, backend: str):
    two_pages = tmp_path / "two.pdf"
    with Image.open(EXAMPLES / "receipts" / "cafe.png") as cafe, Image.open(EXAMPLES / "receipts" / "grocery.png") as g:
        cafe.save(two_pages, "PDF", resolution=200, save_all=True, append_images=[g])
    result = await read_document(two_pages, backend)
    assert result.backend == f"pdf-{backend}"
    cafe_text, grocery_text = result.text.split("\n\n")
    assert "BLUE HERON CAFE" in cafe_text and "$29.16" in cafe_text
    assert "GREEN VALLEY MARKET" in grocery_text and "$53.24" in grocery_text
    parsed = await line_item_parser(cafe_text)
    assert (parsed.merchant, parsed.total) == ("BLUE HERON CAFE", 29.16)


# -- end to end ---------------------------------------------------------------------------------------


def run_hybrid_plan(pdf: Path) -> subprocess.CompletedProcess[str]:
    plan = str(EXAMPLES / "example_plan_hybrid.json")
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", plan, "--input", f"image_path={pdf}", "--json"],
        cwd=REPO,
        env={**os.environ, "OCR_BACKEND": "rapidocr"},  # whatever the developer's .env says
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_hybrid_plan_runs_on_a_text_pdf_invoice(invoice_pdf: Path):
    proc = run_hybrid_plan(invoice_pdf)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "succeeded"
    assert result["steps"]["ocr"]["modes"] == ["pdf-text"]
    assert result["steps"]["parse"]["output"]["total"] == 23.22
    assert "ACME OFFICE SUPPLY" in result["output"]


@pytest.mark.slow
@needs_rapidocr
def test_the_hybrid_plan_runs_on_a_scanned_pdf_receipt(scanned_pdf: Path):
    proc = run_hybrid_plan(scanned_pdf)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["steps"]["ocr"]["modes"] == ["pdf-rapidocr"]
    assert result["steps"]["parse"]["output"]["total"] == 29.16


def test_an_encrypted_pdf_fails_its_step_with_one_line_and_no_traceback(tmp_path: Path):
    proc = run_hybrid_plan(write(tmp_path / "locked.pdf", ENCRYPTED))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    error = json.loads(proc.stdout)["steps"]["ocr"]["error"]
    assert f"{tmp_path / 'locked.pdf'}: the PDF is encrypted (password-protected)" in error
    assert "\n" not in error
