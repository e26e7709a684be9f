"""The `receipt_ocr` tool: read a receipt or invoice image, PDF (or a text file) into lines of text.

Back-end choice: the explicit argument, else settings ``ocr_backend`` (env ``OCR_BACKEND``), else
``rapidocr``. A ``.txt`` or ``.md`` file always passes through as text, whatever back-end is asked for.
A PDF is read page by page (see ``ocr_backends/pdf.py``): a page's text layer when it has one, else the
page rendered and read by a local back-end (rapidocr, tesseract); the ``text`` back-end reads text layers
only, and back-ends that take PDFs themselves (azure) get the file as it is.
Back-ends are created once per process and reused, so an engine loads once; register your own (or a
differently configured built-in) with :func:`register_ocr_backend`.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from pathlib import Path

from orchestrator.context import report_mode
from orchestrator.errors import ConfigurationError
from orchestrator.registry import tool
from orchestrator.rules.models import OcrResult
from orchestrator.settings import current_settings
from orchestrator.workers.receipts.ocr_backends import (
    PDF_SUFFIXES,
    TEXT_SUFFIXES,
    AzureReadBackend,
    ImageOcrBackend,
    OcrBackend,
    RapidOcrBackend,
    TesseractBackend,
    TextBackend,
    read_pdf,
)
from orchestrator.workers.receipts.ocr_backends.base import check_file

DEFAULT_BACKEND = "rapidocr"

_FACTORIES: dict[str, Callable[[], OcrBackend]] = {
    "rapidocr": RapidOcrBackend,
    "tesseract": TesseractBackend,
    "azure": AzureReadBackend,
    "text": TextBackend,
}
_instances: dict[str, OcrBackend] = {}
_instances_lock = threading.Lock()


def ocr_backend_names() -> list[str]:
    """The names `receipt_ocr(backend=...)` accepts, sorted."""
    return sorted(_FACTORIES.keys() | _instances.keys())


def get_ocr_backend(name: str) -> OcrBackend:
    """The back-end registered under `name` (created on first use, then reused).

    Raises:
        ConfigurationError: no back-end has that name; the message lists the valid ones.
    """
    key = name.strip().lower()
    with _instances_lock:
        backend = _instances.get(key)
        if backend is None:
            factory = _FACTORIES.get(key)
            if factory is None:
                names = ocr_backend_names()
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigurationError(f"unknown OCR back-end {name!r}; {hint}valid back-ends: {', '.join(names)}")
            backend = _instances[key] = factory()
    return backend


def register_ocr_backend(backend: OcrBackend, *, replace: bool = False) -> None:
    """Make `backend` available under ``backend.name``; `replace=True` swaps out an existing one."""
    key = backend.name.strip().lower()
    with _instances_lock:
        if not replace and (key in _instances or key in _FACTORIES):
            raise ConfigurationError(f"an OCR back-end named {key!r} exists; pass replace=True to swap it")
        _instances[key] = backend


def resolve_backend_name(path: Path, backend: str | None = None) -> str:
    """Which back-end reads `path`: ``text`` for text files, else `backend`, settings, ``rapidocr``."""
    name = backend or current_settings().ocr_backend or DEFAULT_BACKEND
    get_ocr_backend(name)  # an unknown name is an error even when a text file makes it moot
    return "text" if path.suffix.lower() in TEXT_SUFFIXES else name


async def read_document(path: Path, backend: str | None = None) -> OcrResult:
    """Read a document with the chosen OCR back-end.

    Args:
        path: an image (PNG, JPEG, TIFF, ...), a PDF, or a .txt/.md file, which passes through as text.
        backend: rapidocr, tesseract, azure or text; default settings ``ocr_backend`` (env OCR_BACKEND).

    Raises:
        ConfigurationError: an unknown back-end, or one that is not installed or not configured.
        ToolError: the file is missing, not a readable image, or an encrypted, corrupt or empty PDF (not
            retryable), or the engine failed.
    """
    path = Path(path)
    name = resolve_backend_name(path, backend)
    check_file(path)
    reader = get_ocr_backend(name)
    if path.suffix.lower() in PDF_SUFFIXES and isinstance(reader, ImageOcrBackend | TextBackend):
        ocr = reader if isinstance(reader, ImageOcrBackend) else None
        return await read_pdf(path, ocr, max_pages=current_settings().ocr_pdf_max_pages)
    return await reader.read(path)


@tool(kind="function", read_only=True, destructive=False, idempotent=True, open_world=True)
async def receipt_ocr(image_path: str, backend: str | None = None) -> OcrResult:
    """Read the text of a receipt or invoice image or PDF, as lines in reading order with boxes and confidences.

    A .txt or .md file passes through as text; a PDF's text layer is read directly, scanned pages are OCR'd.
    Use this first on any receipt or invoice image or PDF.

    Args:
        image_path: path of the image (PNG, JPEG, TIFF, ...), PDF or text file to read.
        backend: OCR engine: rapidocr (default, local), tesseract (local), azure (Azure AI Vision), or
            text; leave empty to use the configured default.
    """
    result = await read_document(Path(image_path), backend)
    report_mode(result.backend)
    return result
