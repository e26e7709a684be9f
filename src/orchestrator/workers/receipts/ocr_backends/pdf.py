"""Read a PDF with pypdfium2: a page's text layer when it has one, else the page rendered and OCR'd.

A page counts as text when its text layer holds at least `MIN_TEXT_CHARS` letters or digits; fewer (a
scan, or a scan with only a page-number stamp) and the page is rendered at `dpi` and read by the OCR
back-end. Text-layer lines carry their boxes (in pixels at `dpi`, like a rendered page) and go through the
same row grouping as OCR output, so an item and its amount end on one line even when the PDF writes the
price column after the item column. Pages are joined with a blank line.

PDFium is not thread-safe: every call into it, for any document, holds one process-wide lock, and the
lock is released while an OCR engine reads a rendered page.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from orchestrator.errors import ConfigurationError, ToolError
from orchestrator.rules.models import OcrLine, OcrResult
from orchestrator.workers.receipts.ocr_backends._layout import reading_order
from orchestrator.workers.receipts.ocr_backends.base import OCR_EXTRA_HINT, ImageOcrBackend

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

PDF_SUFFIXES = frozenset({".pdf"})
"""Files with these suffixes are read by :func:`read_pdf` (unless the back-end reads PDFs itself)."""

DEFAULT_MAX_PAGES = 50
DEFAULT_DPI = 200
MIN_TEXT_CHARS = 10
"""A page's text layer is used when it has at least this many letters or digits."""
MAX_RENDER_SIDE = 4000
"""A rendered page's longer side is at most this many pixels, however large the page claims to be."""

_PDFIUM_LOCK = threading.Lock()
_LOAD_ERRORS = {1: "unknown error", 2: "cannot open the file", 3: "not in PDF format, or corrupted"}
"""PDFium's ``FPDF_ERR_*`` codes for a document that does not load (4 and 5 are password and security)."""


async def read_pdf(
    path: Path,
    ocr: ImageOcrBackend | None,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
    dpi: int = DEFAULT_DPI,
) -> OcrResult:
    """Read the first `max_pages` pages of the PDF at `path`, page by page.

    Args:
        path: the PDF.
        ocr: the back-end that reads pages without a text layer; None reads text layers only, and a page
            without one is an error.
        max_pages: pages after this many are left out (a warning is logged).
        dpi: the resolution pages are rendered at for OCR.

    Returns:
        The pages' text joined with a blank line. ``backend`` says how the pages were read, in page order:
        ``pdf-text`` (text layers only), ``pdf-rapidocr`` (every page OCR'd), ``pdf-text+rapidocr``.

    Raises:
        ConfigurationError: pypdfium2 is not installed, or a page needs OCR and `ocr` is None.
        ToolError: the PDF is encrypted, corrupt or has no pages (not retryable), or OCR failed.
    """
    document = await anyio.to_thread.run_sync(_open, path)
    try:
        count = len(document)
        if count > max_pages:
            logger.warning("%s: reading the first %d of %d pages (OCR_PDF_MAX_PAGES)", path, max_pages, count)
        texts: list[str] = []
        lines: list[OcrLine] = []
        methods: list[str] = []
        for index in range(min(count, max_pages)):
            source = f"{path} page {index + 1}"
            page = await anyio.to_thread.run_sync(_read_page, document, path, index, dpi)
            if not isinstance(page, OcrResult):
                if ocr is None:
                    raise ConfigurationError(f"{source}: no text layer; read this PDF with rapidocr or tesseract")
                page = await ocr.read_image(page, source)
            if page.text.strip():
                texts.append(page.text.strip("\n"))
            lines.extend(page.lines)
            methods.append(page.backend)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_close, document)
    backend = "pdf-" + "+".join(dict.fromkeys(methods))
    return OcrResult(text="\n\n".join(texts), lines=lines, backend=backend, source=str(path))


@contextmanager
def _pdfium_errors(path: Path, what: str) -> Iterator[None]:
    """Hold the PDFium lock; a PDFium failure becomes a non-retryable ToolError naming `path`."""
    import pypdfium2

    with _PDFIUM_LOCK:
        try:
            yield
        except pypdfium2.PdfiumError as exc:
            raise ToolError(f"{path}: {what} ({exc})", retryable=False, details={"path": str(path)}) from exc


def _open(path: Path) -> Any:
    try:
        import pypdfium2
        import pypdfium2.raw as pdfium_c
    except ImportError as exc:
        raise ConfigurationError(f"cannot read {path}: PDF support needs pypdfium2; {OCR_EXTRA_HINT}") from exc
    with _PDFIUM_LOCK:
        # Loaded through the C API: PdfDocument(path) also rejects a document without pages, but then reports
        # whatever error code an earlier load left behind.
        raw = pdfium_c.FPDF_LoadDocument(os.fsencode(path) + b"\0", None)
        if not raw:
            code = pdfium_c.FPDF_GetLastError()
            if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
                problem = "the PDF is encrypted (password-protected); remove the password and try again"
            else:
                problem = f"not a readable PDF (PDFium: {_LOAD_ERRORS.get(code, f'error {code}')})"
            raise ToolError(f"{path}: {problem}", retryable=False, details={"path": str(path)})
        document = pypdfium2.PdfDocument(raw)
        if len(document) == 0:
            document.close()
            raise ToolError(f"{path}: the PDF has no pages", retryable=False, details={"path": str(path)})
    return document


def _close(document: Any) -> None:
    with _PDFIUM_LOCK:
        document.close()


def _read_page(document: Any, path: Path, index: int, dpi: int) -> OcrResult | Image:
    """The page's text layer as a result (backend ``text``), or, when it has too little text, the page rendered."""
    with _pdfium_errors(path, f"cannot read page {index + 1}"):
        page = document[index]
        try:
            width, height = page.get_size()
            scale = min(dpi / 72, MAX_RENDER_SIDE / max(width, height, 1.0))
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
                if sum(ch.isalnum() for ch in text) >= MIN_TEXT_CHARS:
                    lines = reading_order(_text_lines(textpage, text, height, scale))
                    joined = "\n".join(line.text for line in lines)
                    return OcrResult(text=joined, lines=lines, backend="text", source=f"{path} page {index + 1}")
            finally:
                textpage.close()
            bitmap = page.render(scale=scale)
            try:
                image: Image = bitmap.to_pil().convert("RGB")  # a copy that outlives the bitmap
            finally:
                bitmap.close()
            return image
        finally:
            page.close()


def _text_lines(textpage: Any, text: str, height: float, scale: float) -> list[OcrLine]:
    """PDFium's lines, each with the box around its characters (top-left origin, pixels at `scale`)."""
    boxed = len(text) == textpage.count_chars()  # else characters and indices do not line up
    lines: list[OcrLine] = []
    chars: list[str] = []
    box: list[float] | None = None
    for index, char in enumerate(text + "\n"):
        if char not in "\r\n":
            chars.append(char)
            if boxed and not char.isspace():
                left, bottom, right, top = textpage.get_charbox(index, loose=True)
                edges = [left * scale, (height - top) * scale, right * scale, (height - bottom) * scale]
                box = edges if box is None else [*map(min, box[:2], edges[:2]), *map(max, box[2:], edges[2:])]
            continue
        line = "".join(chars).strip()
        if line:
            lines.append(OcrLine(text=line, box=[round(v, 1) for v in box] if box else None))
        chars, box = [], None
    return lines
